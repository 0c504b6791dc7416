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
    return _index(_counts(ref, inner), _counts(cur, inner))


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)


def _index(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of the counts per bin of both sides."""
    ref_share = np.maximum(reference / reference.sum(), FLOOR)
    cur_share = np.maximum(current / current.sum(), FLOOR)
    return float(((cur_share - ref_share) * np.log(cur_share / ref_share)).sum())


def psi_from_histogram(
    reference: np.ndarray, current: np.ndarray, values: np.ndarray, bins: int = BINS
) -> float | None:
    """psi() from counts per score bin: `values` is each bin's lower edge (ascending), the
    scores of a bin are taken to be its edge. The reference quantiles are interpolated between
    those as psi() interpolates between scores, so the result differs from psi() only by the
    scores that share a bin with a quantile (tests/kpis/test_drift.py bounds it)."""
    ref_n, cur_n = reference.sum(), current.sum()
    if ref_n == 0 or cur_n == 0:
        return None
    position = np.linspace(0, 1, bins + 1)[1:-1] * (ref_n - 1)
    cumulative = np.cumsum(reference)
    below = values[np.searchsorted(cumulative, np.floor(position), side="right")]
    above = values[np.searchsorted(cumulative, np.ceil(position), side="right")]
    quantiles = below + (position - np.floor(position)) * (above - below)
    inner = np.unique(np.searchsorted(values, quantiles, side="right") - 1)
    owner = np.searchsorted(inner, np.arange(len(reference)), side="left")
    return _index(
        np.bincount(owner, reference, len(inner) + 1), np.bincount(owner, current, len(inner) + 1)
    )
