"""What a cycle reads of a source besides the engine's minutes, query by query, timed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from recmon.config import Config
from recmon.kpis.lifecycle import deployed, latest_metrics, recent_versions
from recmon.sources import queries
from recmon.sources.tables import SourceTables
from recmon.sources.validate import FUTURE_TIMESTAMP
from recmon.span import Span

T = TypeVar("T")
Version = tuple[str, str]  # (model, version)
HOUR = timedelta(hours=1)
Hourly = tuple[np.ndarray, np.ndarray]  # clicks, conversions of each hour of a training window


@dataclass
class LifecycleCache:
    """What the lifecycle keeps across cycles. Events of a past hour, once no more can arrive
    for it (it ended A ago): the recent versions' training windows overlap, and an hour is
    counted once; so is a version's whole window once it is past. And which versions are recent
    and deployed, which changes only when the registry does or `now` passes one of its times."""

    hours: dict[datetime, tuple[int, int]] = field(default_factory=dict)
    windows: dict[tuple[Version, datetime, datetime], Hourly] = field(default_factory=dict)
    registry: pd.DataFrame | None = None
    selection: tuple[pd.DataFrame, pd.DataFrame] | None = None  # recent, deployed
    valid: tuple[datetime, datetime] = (datetime.min, datetime.min)  # selection's [from, until)


@dataclass
class Lifecycle:
    versions: pd.DataFrame  # the recent versions of each model (registry rows)
    deployed: pd.DataFrame  # the deployed version of each model
    metrics: pd.DataFrame  # latest offline metric values of the recent versions
    hourly: dict[Version, Hourly]


@dataclass
class CycleData:
    """What a cycle reads besides the engine's minutes: small queries, run every cycle."""

    catalog_size: int
    sessions: bool  # whether the source's interactions have session_id
    lifecycle: Lifecycle | None  # None when the source has no models table
    newest: dict[str, datetime | None] = field(default_factory=dict)  # table -> newest ts
    future: Counter[tuple[str, str]] = field(default_factory=Counter)  # rows dated after now
    durations: dict[str, float] = field(default_factory=dict)  # query -> seconds


class Timer:
    """Runs a query and adds its seconds to its name's total."""

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
    clock: datetime,
    optional: frozenset[str],
    cache: LifecycleCache,
    timed: Timer,
) -> CycleData:
    """`clock`: rows dated after it are future-dated. `optional` names the optional tables and
    columns the source has (see check.Schema)."""
    future: Counter[tuple[str, str]] = Counter()
    newest = {}
    for table in ("recommendations", "interactions"):
        newest[table], future[(table, FUTURE_TIMESTAMP)] = timed(
            f"{table}_freshness",
            lambda table=table: queries.freshness(conn, t, table, span.now, clock),
        )
    lifecycle = None
    if "models" in optional:
        lifecycle = _lifecycle(conn, t, config, span, "model_metrics" in optional, cache, timed)
    return CycleData(
        catalog_size=timed("catalog_size", lambda: queries.catalog_size(conn, t)),
        sessions="interactions.session_id" in optional,
        lifecycle=lifecycle,
        newest=newest,
        future=future,
        durations=timed.durations,
    )


def _lifecycle(
    conn: Connection,
    t: SourceTables,
    config: Config,
    span: Span,
    has_metrics: bool,
    cache: LifecycleCache,
    timed: Timer,
) -> Lifecycle:
    registry = timed("models", lambda: queries.models(conn, t))
    versions, live = _selection(registry, span.now, config.model_versions, cache)
    keys = list(zip(versions["model"], versions["version"], strict=True))
    metrics = pd.DataFrame(columns=["model", "version", "metric", "value", "ts"])
    if has_metrics:
        metrics = timed("model_metrics", lambda: queries.model_metrics(conn, t, keys, span.now))
    windows = {
        (row.model, row.version): (
            row.training_data_start.to_pydatetime(),
            min(row.training_data_end.to_pydatetime(), span.now),
        )
        for row in versions.itertuples()
        if not (pd.isna(row.training_data_start) or pd.isna(row.training_data_end))
    }
    known = {
        key: cache.windows[key] for v, w in windows.items() if (key := (v, *w)) in cache.windows
    }
    todo = {v: w for v, w in windows.items() if (v, *w) not in known}
    hourly = {v: known[(v, *w)] for v, w in windows.items() if (v, *w) in known}
    for version, table in _training_hours(conn, t, config, span.now, todo, cache, timed).items():
        hourly[version] = table
        start, end = todo[version]
        if end + config.attribution_window <= span.now:  # no more events can arrive for it
            known[(version, start, end)] = table
    cache.windows = known
    return Lifecycle(versions, live, latest_metrics(metrics), hourly)


def _selection(
    registry: pd.DataFrame, now: datetime, per_model: int, cache: LifecycleCache
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recent versions and the deployed ones at `now`, kept while neither the registry nor
    the registry times `now` lies between change."""
    start, until = cache.valid
    if (
        cache.selection is not None
        and cache.registry is not None
        and start <= now < until
        and cache.registry.equals(registry)
    ):
        return cache.selection
    times = pd.concat([registry["trained_at"], registry["deployed_at"]]).dropna()
    before, after = times[times <= now], times[times > now]
    cache.registry = registry
    cache.selection = recent_versions(registry, now, per_model), deployed(registry, now)
    cache.valid = (
        before.max().to_pydatetime() if len(before) else datetime.min,
        after.min().to_pydatetime() if len(after) else datetime.max,
    )
    return cache.selection


def _training_hours(
    conn: Connection,
    t: SourceTables,
    config: Config,
    now: datetime,
    windows: dict[Version, tuple[datetime, datetime]],
    cache: LifecycleCache,
    timed: Timer,
) -> dict[Version, Hourly]:
    """Clicks and conversions of each hour of each training window [start, end)."""
    types = {role: config.events[role] for role in ("click", "conversion")}
    hours = {h for start, end in windows.values() for h in _whole_hours(start, end)}
    counts = pd.DataFrame(columns=["click", "conversion"])
    if missing := sorted(h for h in hours if h not in cache.hours):
        counts = timed(
            "training_hours",
            lambda: _hourly_roles(conn, t, types, missing[0], missing[-1] + HOUR),
        )
        for hour in missing:
            if hour + HOUR + config.attribution_window <= now:
                cache.hours[hour] = _pair(counts, hour)
    hourly: dict[Version, Hourly] = {}
    for version, (start, end) in windows.items():
        whole = _whole_hours(start, end)
        pairs = [cache.hours.get(h) or _pair(counts, h) for h in whole]
        # the hours a window covers only in part are counted for it alone
        parts = [(start, whole[0]), (whole[-1] + HOUR, end)] if whole else [(start, end)]
        for lo, hi in parts:
            if lo < hi:
                part = timed(
                    "training_hours", lambda lo=lo, hi=hi: _hourly_roles(conn, t, types, lo, hi)
                )
                pairs.append(_pair(part, _floor(lo)))
        table = np.array(pairs, dtype=float).reshape(-1, 2)
        hourly[version] = (table[:, 0], table[:, 1])
    cache.hours = {h: n for h, n in cache.hours.items() if h in hours}  # only what is pending
    return hourly


def _floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _whole_hours(start: datetime, end: datetime) -> list[datetime]:
    """The hours that lie wholly within [start, end)."""
    first = start if start == _floor(start) else _floor(start) + HOUR
    return [first + i * HOUR for i in range(max(0, (_floor(end) - first) // HOUR))]


def _pair(counts: pd.DataFrame, hour: datetime) -> tuple[int, int]:
    if hour not in counts.index:
        return 0, 0
    return int(counts.at[hour, "click"]), int(counts.at[hour, "conversion"])


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
