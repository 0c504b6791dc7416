"""Engagement per group of impressions: counts, and ratios that are None on an empty denominator."""

from __future__ import annotations

import pandas as pd


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def engagement(impressions: pd.DataFrame) -> dict[str, float | None]:
    """`impressions` has request_id, user_id and the attribution labels of attribute()."""
    return engagement_from_counts(
        requests=impressions["request_id"].nunique(),
        impressions=len(impressions),
        clicks=int(impressions["clicked"].sum()),
        conversions=int(impressions["converted"].sum()),
        watch_seconds=float(impressions["watch_seconds"].sum()),
        users=impressions["user_id"].nunique(),
    )


def engagement_from_counts(
    requests: float,
    impressions: float,
    clicks: float,
    conversions: float,
    watch_seconds: float,
    users: float,
) -> dict[str, float | None]:
    """The engagement KPIs from a window's counts (what the incremental engine keeps)."""
    return {
        "recommendation_requests": requests,
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "ctr_ratio": ratio(clicks, impressions),
        "conversion_ratio": ratio(conversions, impressions),
        "click_conversion_ratio": ratio(conversions, clicks),
        "watch_time_seconds": watch_seconds,
        "active_users": users,
    }
