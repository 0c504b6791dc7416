"""Reference tests for click-prediction quality (SPEC, "KPI definitions": Classification).

Compared with scikit-learn. SPEC clips probabilities to [1e-15, 1 - 1e-15] for log loss, while
scikit-learn (>= 1.5) clips to the machine epsilon of the dtype (about 2.2e-16): the reference
therefore gets probabilities already clipped to SPEC's bounds, which sklearn's own clip leaves
alone. A score predicts a click when score >= threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from recmon.kpis.classification import classification_metrics

EPS = 1e-15
KEYS = (
    "auc",
    "log_loss",
    "classification_accuracy",
    "classification_precision",
    "classification_recall",
)


def reference(scores: np.ndarray, clicked: np.ndarray, threshold: float) -> dict:
    """scikit-learn on the finite scores, None where SPEC says the value is undefined."""
    keep = np.isfinite(scores)
    s, y = scores[keep], clicked[keep].astype(int)
    out: dict = dict.fromkeys(KEYS)
    if len(s) == 0:
        return out
    if 0 < y.sum() < len(y):
        out["auc"] = roc_auc_score(y, s)
    if s.min() >= 0 and s.max() <= 1:
        out["log_loss"] = log_loss(y, np.clip(s, EPS, 1 - EPS), labels=[0, 1])
    predicted = (s >= threshold).astype(int)
    out["classification_accuracy"] = accuracy_score(y, predicted)
    if predicted.any():
        out["classification_precision"] = precision_score(y, predicted)
    if y.any():
        out["classification_recall"] = recall_score(y, predicted)
    return out


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(KEYS)
    for key in KEYS:
        if want[key] is None:
            assert got[key] is None, key
        else:
            assert got[key] is not None, key
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
            assert isinstance(got[key], float), key


def random_case(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # scores on a coarse grid: many ties, values exactly on the thresholds, 0 and 1 included
    scores = rng.integers(0, 21, size=n) / 20
    clicked = rng.random(n) < 0.15 + 0.7 * scores  # informative but noisy
    return scores, clicked


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.5, 0.75])
def test_matches_sklearn_on_random_scores_with_ties(seed: int, threshold: float) -> None:
    scores, clicked = random_case(seed)
    assert len(np.unique(scores)) < len(scores)  # ties present
    assert (scores == threshold).any() or threshold == 0.3  # the >= edge is exercised
    assert_same(
        classification_metrics(scores, clicked, threshold), reference(scores, clicked, threshold)
    )


@pytest.mark.parametrize("seed", range(4))
def test_matches_sklearn_on_continuous_scores(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    scores = rng.beta(2, 5, size=500)
    clicked = rng.random(500) < scores
    assert_same(classification_metrics(scores, clicked, 0.5), reference(scores, clicked, 0.5))


def test_auc_counts_ties_as_half() -> None:
    # positive and negative share a score: half a correctly ordered pair
    got = classification_metrics(np.array([0.4, 0.4]), np.array([True, False]), 0.5)
    assert got["auc"] == 0.5
    got = classification_metrics(np.array([0.2, 0.4, 0.4, 0.9]), np.array([0, 1, 0, 1]), 0.5)
    assert got["auc"] == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_log_loss_clips_at_1e_minus_15() -> None:
    # confidently wrong on both rows: each costs about -log(1e-15) = 34.54 (1 - (1 - 1e-15) is
    # 1.11e-15 in binary floating point, hence the exact reference below)
    got = classification_metrics(np.array([0.0, 1.0]), np.array([True, False]), 0.5)
    assert got["log_loss"] == pytest.approx((-math.log(EPS) - math.log1p(-(1 - EPS))) / 2)
    assert got["log_loss"] == pytest.approx(-math.log(EPS), rel=1e-3)
    assert got["log_loss"] == pytest.approx(log_loss([1, 0], [EPS, 1 - EPS]))
    # confidently right: the clip keeps it finite and tiny, not exactly zero
    right = classification_metrics(np.array([1.0, 0.0]), np.array([True, False]), 0.5)
    assert 0 < right["log_loss"] < 1e-14


def test_one_class_only_has_no_auc_but_has_log_loss() -> None:
    scores = np.array([0.1, 0.6, 0.3])
    none_clicked = classification_metrics(scores, np.zeros(3, dtype=bool), 0.5)
    assert none_clicked["auc"] is None
    assert none_clicked["log_loss"] == pytest.approx(-np.mean(np.log(1 - scores)))
    assert none_clicked["classification_accuracy"] == pytest.approx(2 / 3)
    assert none_clicked["classification_precision"] == 0.0  # one predicted click, wrong
    assert none_clicked["classification_recall"] is None  # no positives
    all_clicked = classification_metrics(scores, np.ones(3, dtype=bool), 0.5)
    assert all_clicked["auc"] is None
    assert all_clicked["log_loss"] == pytest.approx(-np.mean(np.log(scores)))
    assert all_clicked["classification_recall"] == pytest.approx(1 / 3)
    assert all_clicked["classification_precision"] == 1.0


@pytest.mark.parametrize("outside", [1.5, -0.1, 1 + 1e-12])
def test_score_outside_unit_interval_drops_log_loss_only(outside: float) -> None:
    scores = np.array([0.2, 0.8, outside, 0.4])
    clicked = np.array([False, True, True, False])
    got = classification_metrics(scores, clicked, 0.5)
    assert got["log_loss"] is None
    assert got["auc"] == pytest.approx(roc_auc_score(clicked, scores))
    assert got["classification_accuracy"] is not None
    assert_same(got, reference(scores, clicked, 0.5))


def test_unit_interval_bounds_themselves_are_fine() -> None:
    got = classification_metrics(np.array([0.0, 1.0, 0.5]), np.array([False, True, True]), 0.5)
    assert got["log_loss"] is not None


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_dropped(bad: float) -> None:
    scores = np.array([0.2, bad, 0.8, 0.6, bad, 0.1])
    clicked = np.array([False, True, True, False, False, True])
    got = classification_metrics(scores, clicked, 0.5)
    keep = np.isfinite(scores)
    assert got == classification_metrics(scores[keep], clicked[keep], 0.5)
    assert got["log_loss"] is not None  # an infinite score is dropped, not "outside [0, 1]"
    assert_same(got, reference(scores, clicked, 0.5))


def test_missing_scores_as_none_are_dropped() -> None:
    scores = np.array([0.2, None, 0.8], dtype=object)
    got = classification_metrics(scores, np.array([False, True, True]), 0.5)
    assert got["classification_accuracy"] == 1.0
    assert got["auc"] == 1.0


def test_no_predicted_positives_has_no_precision() -> None:
    scores = np.array([0.1, 0.2, 0.3])
    clicked = np.array([True, False, False])
    got = classification_metrics(scores, clicked, 0.5)
    assert got["classification_precision"] is None
    assert got["classification_recall"] == 0.0
    assert got["classification_accuracy"] == pytest.approx(2 / 3)


def test_threshold_is_inclusive() -> None:
    got = classification_metrics(np.array([0.5, 0.49]), np.array([True, False]), 0.5)
    assert got["classification_accuracy"] == 1.0
    assert got["classification_precision"] == 1.0
    assert got["classification_recall"] == 1.0


@pytest.mark.parametrize(
    "scores",
    [np.array([], dtype=float), np.array([np.nan, np.inf]), np.array([np.nan])],
)
def test_no_usable_rows_gives_all_none(scores: np.ndarray) -> None:
    got = classification_metrics(scores, np.ones(len(scores), dtype=bool), 0.5)
    assert got == dict.fromkeys(KEYS)
