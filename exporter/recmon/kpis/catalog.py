"""Catalogue health of one group of impressions: coverage, new items, item age, concentration."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from recmon.kpis.engagement import ratio


def gini(counts: np.ndarray) -> float | None:
    """G = sum((2i - n - 1) x_i) / (n sum(x)) over ascending x, i from 1; None without data."""
    x = np.sort(np.asarray(counts, dtype=float))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return None
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def catalog_health(
    impressions: pd.DataFrame, catalog_size: int, new_item_age: timedelta
) -> dict[str, float | None]:
    """`impressions` has item_id, ts and created_at (the item's, from the catalogue).

    Coverage divides by the whole catalogue, so it is 0 for no impressions; the others are None.
    """
    age = (impressions["ts"] - impressions["created_at"]).dt.total_seconds()
    shown = len(impressions)
    return {
        "catalog_coverage_ratio": ratio(impressions["item_id"].nunique(), catalog_size),
        "new_item_share_ratio": ratio(int((age < new_item_age.total_seconds()).sum()), shown),
        "recommended_item_age_seconds": float(age.mean()) if shown else None,
        "gini_index": gini(impressions["item_id"].value_counts().to_numpy()),
    }
