"""Reference tests for the score PSI (SPEC, recmon_score_psi: 10 quantile bins of the reference).

Conventions pinned here (decisions, not derived from SPEC's one line):
- the inner bin edges are np.quantile(reference, 0.1, ..., 0.9) (numpy's default linear
  interpolation), deduplicated, so tied quantiles merge bins;
- bins are right-closed: (-inf, q1], (q1, q2], ..., (q_last, inf);
- each side's bin share is floored at 1e-4 (and not renormalised), so an empty bin gives a large
  but finite term instead of an infinite PSI;
- PSI = sum over bins of (cur - ref) * ln(cur / ref);
- NaN and +-inf scores are ignored; a side without a finite score gives None.

Expected values below are written from explicit bin counts; an independent implementation with
pandas.cut on the same edges checks random data.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recmon.kpis.drift import FLOOR, psi

QUANTILES = np.linspace(0, 1, 11)[1:-1]


def psi_from_shares(cur: list[float], ref: list[float]) -> float:
    return sum((c - r) * math.log(c / r) for c, r in zip(cur, ref, strict=True))


def psi_with_pandas(reference, current) -> float:
    ref = pd.Series(reference, dtype=float)
    cur = pd.Series(current, dtype=float)
    ref = ref[np.isfinite(ref)]
    cur = cur[np.isfinite(cur)]
    edges = np.unique(np.quantile(ref, QUANTILES))
    bins = np.concatenate([[-np.inf], edges, [np.inf]])

    def shares(values: pd.Series) -> np.ndarray:
        binned = pd.cut(values, bins=bins, right=True, labels=False)
        counts = binned.value_counts().reindex(range(len(bins) - 1), fill_value=0)
        return np.maximum(counts.to_numpy() / len(values), 1e-4)

    r, c = shares(ref), shares(cur)
    return float(((c - r) * np.log(c / r)).sum())


def test_floor_constant():
    assert FLOOR == 1e-4


def test_identical_distributions_give_zero():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=5000)
    assert psi(scores, scores) == pytest.approx(0.0, abs=1e-12)
    assert psi(scores, rng.permutation(scores)) == pytest.approx(0.0, abs=1e-12)
    # the same distribution twice as often
    assert psi(scores, np.concatenate([scores, scores])) == pytest.approx(0.0, abs=1e-12)


def test_shifted_case_from_explicit_bin_counts():
    reference = np.arange(1, 101, dtype=float)  # edges 10.9, 20.8, ..., 90.1: 10 per bin
    counts = [5, 15, 10, 10, 10, 10, 10, 10, 5, 15]
    current = np.repeat([10 * j + 5 for j in range(10)], counts).astype(float)
    expected = psi_from_shares([c / 100 for c in counts], [0.1] * 10)
    # by hand: 2 * (-0.05 ln 0.5 + 0.05 ln 1.5)
    assert expected == pytest.approx(2 * (-0.05 * math.log(0.5) + 0.05 * math.log(1.5)))
    assert psi(reference, current) == pytest.approx(expected, rel=1e-12)


def test_shift_that_empties_a_bin_uses_the_floor():
    reference = np.arange(1, 101, dtype=float)
    current = reference + 10  # 11..110: nothing <= 10.9, 20 values > 90.1
    # shares: first bin 0 -> 1e-4, eight bins 0.1, last bin 0.2
    expected = (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (0.2 - 0.1) * math.log(2)
    assert psi(reference, current) == pytest.approx(expected, rel=1e-12)


def test_empty_reference_bin_is_finite_with_the_floor():
    # Five 0s and five 1s: the 0.5 quantile interpolates to 0.5, so the inner edges deduplicate
    # to [0, 0.5, 1] and the bin (0, 0.5] holds no reference score.
    reference = np.array([0.0] * 5 + [1.0] * 5)
    assert np.unique(np.quantile(reference, QUANTILES)).tolist() == [0.0, 0.5, 1.0]
    current = np.array([0.0] * 4 + [0.25] * 2 + [1.0] * 4)
    # bins (-inf,0], (0,0.5], (0.5,1], (1,inf): reference 5,0,5,0; current 4,2,4,0
    ref_shares = [0.5, 1e-4, 0.5, 1e-4]
    cur_shares = [0.4, 0.2, 0.4, 1e-4]
    expected = 2 * (-0.1) * math.log(0.8) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert psi_from_shares(cur_shares, ref_shares) == pytest.approx(expected)
    value = psi(reference, current)
    assert math.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-12)


def test_bins_are_right_closed():
    reference = np.arange(11, dtype=float)  # edges 1, 2, 3+, 4, ...: first bin holds 0 and 1
    ref_shares = [2 / 11] + [1 / 11] * 9
    on_edge = psi(reference, np.array([1.0]))  # 1.0 is in (-inf, 1]
    cur_first = [1.0] + [1e-4] * 9
    cur_second = [1e-4, 1.0] + [1e-4] * 8
    assert on_edge == pytest.approx(psi_from_shares(cur_first, ref_shares), rel=1e-12)
    assert psi(reference, np.array([0.5])) == pytest.approx(on_edge, rel=1e-12)
    assert psi(reference, np.array([1.5])) == pytest.approx(
        psi_from_shares(cur_second, ref_shares), rel=1e-12
    )
    assert psi(reference, np.array([1.5])) != pytest.approx(on_edge)


def test_constant_reference():
    reference = np.full(50, 0.3)
    # all inner quantiles are 0.3: bins (-inf, 0.3] and (0.3, inf); the reference fills the first
    assert psi(reference, np.full(7, 0.3)) == pytest.approx(0.0, abs=1e-15)
    assert psi(reference, np.full(7, 0.1)) == pytest.approx(0.0, abs=1e-15)  # same bin
    current = np.array([0.3, 0.9])
    expected = (0.5 - 1.0) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert psi(reference, current) == pytest.approx(expected, rel=1e-12)
    everything_above = (1e-4 - 1.0) * math.log(1e-4) + (1.0 - 1e-4) * math.log(1.0 / 1e-4)
    assert psi(reference, np.full(3, 0.9)) == pytest.approx(everything_above, rel=1e-12)


def test_nan_and_inf_are_ignored():
    rng = np.random.default_rng(3)
    reference = rng.uniform(size=300)
    current = rng.beta(2, 5, size=200)
    clean = psi(reference, current)
    dirty_ref = np.concatenate([reference, [np.nan, np.inf, -np.inf, np.nan]])
    dirty_cur = np.concatenate([[np.nan, np.inf], current, [-np.inf]])
    assert psi(dirty_ref, dirty_cur) == pytest.approx(clean, rel=1e-12)
    # None is how a nullable score column reads when it arrives as objects
    with_none = np.array([*current.tolist(), None], dtype=object)
    assert psi(reference, with_none) == pytest.approx(clean, rel=1e-12)


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        ([], [0.1, 0.2]),
        ([0.1, 0.2], []),
        ([np.nan, np.inf], [0.1]),
        ([0.1], [np.nan, -np.inf]),
        ([], []),
    ],
)
def test_empty_side_is_none(reference, current):
    assert psi(np.array(reference, dtype=float), np.array(current, dtype=float)) is None


@pytest.mark.parametrize("seed", range(12))
def test_agrees_with_pandas_cut(seed):
    rng = np.random.default_rng(seed)
    kind = seed % 4
    if kind == 0:  # continuous
        reference, current = rng.normal(size=400), rng.normal(0.3, 1.2, size=250)
    elif kind == 1:  # few distinct values: ties, merged bins, data on the edges
        reference = rng.integers(0, 4, size=300).astype(float)
        current = rng.integers(0, 6, size=120).astype(float)
    elif kind == 2:  # scores rounded to two decimals, as many models log them
        reference = np.round(rng.beta(2, 5, size=500), 2)
        current = np.round(rng.beta(2, 3, size=500), 2)
    else:  # small samples
        reference = rng.uniform(size=int(rng.integers(1, 15)))
        current = rng.uniform(size=int(rng.integers(1, 15)))
    assert psi(reference, current) == pytest.approx(psi_with_pandas(reference, current), rel=1e-9)


def test_psi_is_nonnegative_and_grows_with_the_shift():
    rng = np.random.default_rng(7)
    reference = rng.normal(size=2000)
    values = [psi(reference, rng.normal(shift, 1, size=2000)) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert all(v >= 0 for v in values)
    assert values == sorted(values)
