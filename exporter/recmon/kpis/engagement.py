"""Engagement per group of impressions: counts, and ratios that are None on an empty denominator."""

from __future__ import annotations

import pandas as pd


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def engagement(impressions: pd.DataFrame) -> dict[str, float | None]:
    """`impressions` has request_id, user_id and the attribution labels of attribute()."""
    shown = len(impressions)
    clicks = int(impressions["clicked"].sum())
    conversions = int(impressions["converted"].sum())
    return {
        "recommendation_requests": impressions["request_id"].nunique(),
        "impressions": shown,
        "clicks": clicks,
        "conversions": conversions,
        "ctr_ratio": ratio(clicks, shown),
        "conversion_ratio": ratio(conversions, shown),
        "click_conversion_ratio": ratio(conversions, clicks),
        "watch_time_seconds": float(impressions["watch_seconds"].sum()),
        "active_users": impressions["user_id"].nunique(),
    }
