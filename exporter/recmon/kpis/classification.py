"""Click prediction quality per impression: label = clicked, score = the list's score."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recmon.kpis.engagement import ratio

_EPS = 1e-15


KEYS = (
    "auc",
    "log_loss",
    "classification_accuracy",
    "classification_precision",
    "classification_recall",
)


def log_loss_terms(scores: np.ndarray, clicked: np.ndarray) -> np.ndarray:
    """Each impression's log loss, its probability clipped to [1e-15, 1 - 1e-15]."""
    p = np.clip(scores, _EPS, 1 - _EPS)
    return -np.where(clicked, np.log(p), np.log1p(-p))


def classification_metrics(
    scores: np.ndarray, clicked: np.ndarray, threshold: float
) -> dict[str, float | None]:
    """AUC, log loss, accuracy, precision and recall; None where undefined.

    Rows with a missing or non-finite score are left out. AUC needs both classes; log loss needs
    every score in [0, 1].
    """
    scores = np.asarray(scores, dtype=float)
    keep = np.isfinite(scores)
    s, y = scores[keep], np.asarray(clicked, dtype=bool)[keep]
    n = len(s)
    positives = int(y.sum())
    auc = None
    if 0 < positives < n:
        # Mann-Whitney U from average ranks, which scores ties as half a win.
        ranks = pd.Series(s).rank(method="average").to_numpy()
        u = ranks[y].sum() - positives * (positives + 1) / 2
        auc = float(u / (positives * (n - positives)))
    predicted = s >= threshold
    return classification_from_counts(
        scored=n,
        positives=positives,
        log_loss=float(log_loss_terms(s, y).sum()),
        out_of_range=int(((s < 0) | (s > 1)).sum()),
        predicted=int(predicted.sum()),
        true_positives=int((predicted & y).sum()),
        correct=int((predicted == y).sum()),
        auc=auc,
    )


def classification_from_counts(
    scored: float,
    positives: float,
    log_loss: float,
    out_of_range: float,
    predicted: float,
    true_positives: float,
    correct: float,
    auc: float | None,
) -> dict[str, float | None]:
    """The KPIs from a window's counts over the impressions with a score (what the incremental
    engine keeps): `log_loss` is the sum of log_loss_terms(), defined only when no score is
    out of [0, 1]."""
    if not scored:
        return dict.fromkeys(KEYS)
    return {
        "auc": auc,
        "log_loss": None if out_of_range else log_loss / scored,
        "classification_accuracy": correct / scored,
        "classification_precision": ratio(true_positives, predicted),
        "classification_recall": ratio(true_positives, positives),
    }


def auc_from_histogram(scored: np.ndarray, clicked: np.ndarray) -> float | None:
    """AUC from impressions and clicks per score bin, bins in score order: a pair of a click
    and a non-click in one bin counts as a tie (half a win), so the error is at most half the
    share of such pairs (tests/kpis/test_histograms.py checks it)."""
    negatives = scored - clicked
    p, n = int(clicked.sum()), int(negatives.sum())
    if p == 0 or n == 0:
        return None
    below = np.cumsum(negatives) - negatives
    return float((clicked * (below + 0.5 * negatives)).sum() / (p * n))
