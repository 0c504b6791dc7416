"""Model lifecycle from the registry: which version is deployed, how old, trained on what."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd


def deployed(models: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Per model, the version with the latest deployed_at at or before `now`."""
    live = models[models["deployed_at"].notna() & (models["deployed_at"] <= now)]
    return live.sort_values(["deployed_at", "version"]).drop_duplicates("model", keep="last")


def recent_versions(models: pd.DataFrame, now: datetime, per_model: int) -> pd.DataFrame:
    """Per model, the `per_model` newest versions known at `now` (by deployment, then training);
    a version never deployed nor trained by `now` is left out."""
    known = models.assign(when=models["deployed_at"].fillna(models["trained_at"]))
    known = known[known["when"].notna() & (known["when"] <= now)]
    newest_first = known.sort_values(["when", "version"], ascending=False)
    recent = newest_first.groupby("model").head(per_model).drop(columns="when")
    # The deployed version is always reported, however many newer ones were trained since.
    both = pd.concat([recent, deployed(models, now)])
    return both.drop_duplicates(["model", "version"]).reset_index(drop=True)


def latest_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """The latest value of each (model, version, metric)."""
    return (
        metrics.dropna(subset=["metric", "value"])
        .sort_values("ts")
        .drop_duplicates(["model", "version", "metric"], keep="last")
    )


def anomalous_hours(
    clicks: np.ndarray, conversions: np.ndarray, ratio_floor: float, min_clicks: int
) -> int | None:
    """Hours (counts per hour, aligned) with at least `min_clicks` clicks whose
    conversions/clicks fell below `ratio_floor` times the median of those hours' ratios; None
    when no hour qualifies."""
    busy = clicks >= min_clicks
    if not busy.any():
        return None
    ratios = conversions[busy] / clicks[busy]
    return int((ratios < ratio_floor * np.median(ratios)).sum())
