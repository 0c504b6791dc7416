"""AUC and PSI from score histograms (what the incremental engine keeps) against the exact values
of scikit-learn and psi(), on scores of several shapes and scales: the AUC error within the bound
the histogram itself gives, the PSI error under 0.005 on a thousand scores or more."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from recmon.incremental.buckets import SCORE_CODES, Tally, bin_edges, score_codes
from recmon.kpis.classification import auc_from_histogram
from recmon.kpis.drift import psi, psi_from_histogram

EDGES = bin_edges()
SHAPES = {
    "probabilities": lambda rng, n: np.round(rng.beta(2, 5, n), 6),
    "logits": lambda rng, n: rng.normal(0, 3, n),
    "ranks": lambda rng, n: rng.integers(0, 50, n).astype(float),  # many ties
    "small": lambda rng, n: rng.exponential(1e-4, n),
}


def histogram(scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(score_codes(scores), weights=weights, minlength=SCORE_CODES)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", [1000, 20000])
def test_auc_from_histogram_within_its_bound(shape: str, n: int) -> None:
    rng = np.random.default_rng(n)
    scores = SHAPES[shape](rng, n)
    clicked = rng.random(n) < 1 / (1 + np.exp(-(scores - np.median(scores))))
    scored, hits = histogram(scores), histogram(scores, clicked.astype(float))
    exact = roc_auc_score(clicked, scores)
    # a click and a non-click in one bin are scored as a tie: at most half of such pairs is off
    bound = 0.5 * (hits * (scored - hits)).sum() / (clicked.sum() * (~clicked).sum())
    assert abs(auc_from_histogram(scored, hits) - exact) <= bound + 1e-12
    assert bound < 0.01 if shape != "ranks" else True


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", [1000, 20000])
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_psi_from_histogram_close_to_psi(shape: str, n: int, shift: float) -> None:
    rng = np.random.default_rng(n + int(10 * shift))
    reference = SHAPES[shape](rng, n)
    current = SHAPES[shape](rng, n) * (1 + shift)
    exact = psi(reference, current)
    approx = psi_from_histogram(histogram(reference), histogram(current), EDGES)
    assert approx == pytest.approx(exact, abs=0.005)


def test_histograms_of_nothing_are_undefined() -> None:
    empty = np.zeros(SCORE_CODES)
    one = histogram(np.array([0.5]))
    assert auc_from_histogram(one, empty) is None  # no click
    assert auc_from_histogram(one, one) is None  # no non-click
    assert psi_from_histogram(empty, one, EDGES) is None


def test_a_window_tally_holds_counts_past_32_bits() -> None:
    """A month of one constant score at 72 million impressions a day is one bin of 2.2 billion:
    minutes bring int32 counts, the window's total must not wrap."""
    tally = Tally()
    minute = 50_000  # impressions of one minute, all in bin 3
    for _ in range(30 * 1440):
        tally.add(np.array([3], dtype=np.int32), np.array([minute], dtype=np.int32), +1)
    assert int(tally.counts[3]) == 30 * 1440 * minute > 2**31
    tally.add(np.array([3], dtype=np.int32), np.array([minute], dtype=np.int32), -1)
    assert int(tally.counts[3]) == (30 * 1440 - 1) * minute
