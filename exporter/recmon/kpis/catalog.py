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
    """`impressions` has item_id, ts and created_at (the item's, from the catalogue)."""
    age = (impressions["ts"] - impressions["created_at"]).dt.total_seconds()
    return catalog_from_counts(
        item_counts=impressions["item_id"].value_counts().to_numpy(),
        catalog_size=catalog_size,
        shown=len(impressions),
        new_items=int((age < new_item_age.total_seconds()).sum()),
        age_seconds=float(age.sum()),
        aged=int(age.notna().sum()),
    )


def catalog_from_counts(
    item_counts: np.ndarray,
    catalog_size: int,
    shown: float,
    new_items: float,
    age_seconds: float,
    aged: float,
) -> dict[str, float | None]:
    """The catalogue KPIs from a window's counts: impressions per recommended item, impressions
    of new items, and the sum of the item ages known (`aged` impressions).

    Coverage divides by the whole catalogue, so it is 0 for no impressions; the others are None.
    """
    return {
        "catalog_coverage_ratio": ratio(float(np.count_nonzero(item_counts)), catalog_size),
        "new_item_share_ratio": ratio(new_items, shown),
        "recommended_item_age_seconds": ratio(age_seconds, aged),
        "gini_index": gini(item_counts[item_counts > 0]),
    }
