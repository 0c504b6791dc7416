"""Click prediction quality per impression: label = clicked, score = the list's score."""

from __future__ import annotations

import numpy as np
import pandas as pd

_EPS = 1e-15


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
    result: dict[str, float | None] = dict.fromkeys(
        (
            "auc",
            "log_loss",
            "classification_accuracy",
            "classification_precision",
            "classification_recall",
        )
    )
    if n == 0:
        return result
    if 0 < positives < n:
        # Mann-Whitney U from average ranks, which scores ties as half a win.
        ranks = pd.Series(s).rank(method="average").to_numpy()
        u = ranks[y].sum() - positives * (positives + 1) / 2
        result["auc"] = float(u / (positives * (n - positives)))
    if s.min() >= 0.0 and s.max() <= 1.0:
        p = np.clip(s, _EPS, 1 - _EPS)
        result["log_loss"] = float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))
    predicted = s >= threshold
    tp = int((predicted & y).sum())
    result["classification_accuracy"] = float((predicted == y).mean())
    if predicted.any():
        result["classification_precision"] = tp / int(predicted.sum())
    if positives:
        result["classification_recall"] = tp / positives
    return result


def auc_from_histogram(scored: np.ndarray, clicked: np.ndarray) -> float | None:
    """AUC from impressions and clicks per score bin, bins in score order: a pair of a click
    and a non-click in one bin counts as a tie (half a win), so the error is at most half the
    share of such pairs (tests/kpis/test_classification.py bounds it)."""
    negatives = scored - clicked
    p, n = int(clicked.sum()), int(negatives.sum())
    if p == 0 or n == 0:
        return None
    below = np.cumsum(negatives) - negatives
    return float((clicked * (below + 0.5 * negatives)).sum() / (p * n))
