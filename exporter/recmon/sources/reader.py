"""Everything one evaluation of a source reads, query by query, with each query's duration."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import pandas as pd
from sqlalchemy import Connection

from recmon.config import Config
from recmon.kpis.lifecycle import deployed, latest_metrics, recent_versions
from recmon.sources import queries
from recmon.sources.tables import SourceTables
from recmon.sources.validate import FUTURE_TIMESTAMP, InvalidCounts, clean_events, clean_impressions
from recmon.span import Span

T = TypeVar("T")
Version = tuple[str, str]  # (model, version)
# Hourly click and conversion events of a version's training window, kept across cycles once the
# window is over (its counts no longer change), so each version is counted once.
HourlyCache = dict[tuple[str, str, datetime, datetime], pd.DataFrame]


@dataclass
class Lifecycle:
    versions: pd.DataFrame  # the recent versions of each model (registry rows)
    deployed: pd.DataFrame  # the deployed version of each model
    metrics: pd.DataFrame  # latest offline metric values of the recent versions
    hourly: dict[Version, pd.DataFrame]  # index hour, columns click and conversion


@dataclass
class SourceData:
    impressions: pd.DataFrame  # valid rows in [start, horizon], with the item's created_at
    events: pd.DataFrame  # valid interactions of the configured types in [start, horizon]
    event_counts: dict[str, list[int]]  # per event type, per window: [now - W, now)
    catalog_size: int
    reference: pd.DataFrame  # model, variant, score, ts of the drift reference period
    sessions: pd.DataFrame | None  # None when the source has no session_id column
    lifecycle: Lifecycle | None  # None when the source has no models table
    newest: dict[str, datetime | None] = field(default_factory=dict)  # table -> newest ts
    invalid: InvalidCounts = field(default_factory=Counter)
    durations: dict[str, float] = field(default_factory=dict)  # query -> seconds


class _Timer:
    def __init__(self) -> None:
        self.durations: dict[str, float] = {}

    def __call__(self, name: str, run: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return run()
        finally:
            self.durations[name] = self.durations.get(name, 0.0) + time.perf_counter() - started


def read(
    conn: Connection,
    t: SourceTables,
    config: Config,
    span: Span,
    optional: frozenset[str],
    cache: HourlyCache,
) -> SourceData:
    """`optional` names the optional tables and columns the source has (see check.Schema)."""
    timed = _Timer()
    types = sorted({name for names in config.events.values() for name in names})
    offset = config.drift.reference_offset
    invalid: InvalidCounts = Counter()
    newest = {}
    for table in ("recommendations", "interactions"):
        newest[table], invalid[(table, FUTURE_TIMESTAMP)] = timed(
            f"{table}_freshness", lambda table=table: queries.freshness(conn, t, table, span.now)
        )
    impressions = timed(
        "impressions", lambda: queries.impressions(conn, t, span.start, span.horizon)
    )
    events = timed("events", lambda: queries.events(conn, t, types, span.start, span.horizon))
    sessions = None
    if "interactions.session_id" in optional:
        # Sessions that began up to A before the window are read too, so that their start is
        # seen as before the window rather than cut off at it.
        sessions = timed(
            "sessions",
            lambda: queries.sessions(conn, t, span.start - config.attribution_window, span.horizon),
        )
    lifecycle = None
    if "models" in optional:
        lifecycle = _lifecycle(conn, t, config, span, "model_metrics" in optional, cache, timed)
    return SourceData(
        impressions=clean_impressions(impressions, span.start, span.end, invalid),
        events=clean_events(events, span.start, span.end, invalid),
        event_counts=timed(
            "event_counts",
            lambda: queries.event_counts(conn, t, types, span.fast_starts, span.now),
        ),
        catalog_size=timed("catalog_size", lambda: queries.catalog_size(conn, t)),
        reference=timed(
            "reference_scores",
            lambda: queries.reference_scores(conn, t, span.start - offset, span.end - offset),
        ),
        sessions=sessions,
        lifecycle=lifecycle,
        newest=newest,
        invalid=invalid,
        durations=timed.durations,
    )


def _lifecycle(
    conn: Connection,
    t: SourceTables,
    config: Config,
    span: Span,
    has_metrics: bool,
    cache: HourlyCache,
    timed: _Timer,
) -> Lifecycle:
    registry = timed("models", lambda: queries.models(conn, t))
    versions = recent_versions(registry, span.now, config.model_versions)
    keys = list(zip(versions["model"], versions["version"], strict=True))
    metrics = pd.DataFrame(columns=["model", "version", "metric", "value", "ts"])
    if has_metrics:
        metrics = timed("model_metrics", lambda: queries.model_metrics(conn, t, keys, span.now))
    types = {role: config.events[role] for role in ("click", "conversion")}
    hourly: dict[Version, pd.DataFrame] = {}
    live: set[tuple[str, str, datetime, datetime]] = set()
    for row in versions.itertuples():
        if pd.isna(row.training_data_start) or pd.isna(row.training_data_end):
            continue
        start, end = row.training_data_start.to_pydatetime(), row.training_data_end.to_pydatetime()
        key = (row.model, row.version, start, end)
        counts = cache.get(key)
        if counts is None:
            counts = timed(
                "training_hours",
                lambda s=start, e=end: _hourly_roles(conn, t, types, s, min(e, span.now)),
            )
            if end + config.attribution_window <= span.now:
                cache[key] = counts
        live.add(key)
        hourly[(row.model, row.version)] = counts
    for stale in cache.keys() - live:  # versions that left the recent set
        del cache[stale]
    return Lifecycle(versions, deployed(registry, span.now), latest_metrics(metrics), hourly)


def _hourly_roles(
    conn: Connection,
    t: SourceTables,
    types: dict[str, list[str]],
    start: datetime,
    end: datetime,
) -> pd.DataFrame:
    names = sorted({name for names in types.values() for name in names})
    counts = queries.hourly_events(conn, t, names, start, end)
    by_type = counts.pivot_table(
        index="hour", columns="event_type", values="events", aggfunc="sum", fill_value=0
    )
    return pd.DataFrame(
        {
            role: by_type.reindex(columns=names, fill_value=0)[list(set(role_types))].sum(axis=1)
            for role, role_types in types.items()
        },
        index=by_type.index,
    )
