"""Score drift: population stability index of the current scores against a reference period."""

from __future__ import annotations

import numpy as np

BINS = 10
# An empty bin would make PSI infinite; its share is floored here instead, as is usual for PSI.
FLOOR = 1e-4


def psi(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> float | None:
    """PSI = sum((c - r) ln(c / r)) over `bins` quantile bins of the reference; None if either
    side has no finite score. Tied quantiles merge bins, so a constant reference has one bin
    (and so does a reference with fewer distinct values than bins, in part)."""
    ref = _finite(reference)
    cur = _finite(current)
    if len(ref) == 0 or len(cur) == 0:
        return None
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    # right-closed bins: (-inf, q1], (q1, q2], ..., (q_last, inf)
    ref_share = _shares(ref, inner)
    cur_share = _shares(cur, inner)
    return float(((cur_share - ref_share) * np.log(cur_share / ref_share)).sum())


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return np.maximum(counts / len(values), FLOOR)
