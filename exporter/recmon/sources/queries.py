"""The SQL recmon runs: bounded by time, with bound parameters, reading only what a cycle needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

import pandas as pd
from sqlalchemy import (
    CompoundSelect,
    Connection,
    DateTime,
    Select,
    func,
    select,
    tuple_,
    union,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from recmon.sources.tables import SourceTables

IMPRESSION_COLUMNS = ("request_id", "user_id", "item_id", "rank", "score", "model", "variant", "ts")
EVENT_COLUMNS = ("user_id", "item_id", "event_type", "ts", "value", "request_id")
# Ids are compared across tables and labels must be text, whatever type the database used.
_TEXT = (
    "request_id",
    "user_id",
    "item_id",
    "model",
    "variant",
    "version",
    "metric",
    "event_type",
    "session_id",
)


def impressions(
    conn: Connection, t: SourceTables, start: datetime, end: datetime, horizon: datetime
) -> pd.DataFrame:
    """Recommendation rows with start <= ts < end, and those with end <= ts <= horizon that can
    take a click from them or show during a session that began in [start, end): the later lists
    of the users shown a list in [start, end) who interacted by the horizon, and of the users who
    interacted in [start, end]. Each with its item's created_at from the catalogue (`known_item`
    is null when the catalogue lacks the item)."""
    recs, items = t["recommendations"], t["items"]
    ts, user = t.col("recommendations", "ts"), t.col("recommendations", "user_id")
    columns = (
        *t.cols("recommendations", *IMPRESSION_COLUMNS),
        *t.dimension_cols(),
        t.col("items", "item_id").label("known_item"),
        t.col("items", "created_at").label("created_at"),
    )
    joined = recs.outerjoin(items, t.col("recommendations", "item_id") == t.col("items", "item_id"))
    query = select(*columns).select_from(joined).where(ts >= start, ts < end)
    after = select(*columns).select_from(joined).where(ts >= end, ts <= horizon)
    # Two ANDed semi-joins, not one OR: a database joins an IN (subquery) only at the top of a
    # WHERE, and would otherwise test every row of the horizon against the subquery.
    later = union(
        after.where(user.in_(_shown(t, start, end)), user.in_(_active(t, start, horizon))),
        after.where(user.in_(_active(t, start, end))),
    )
    # (an empty frame's columns have no types to agree with the other's)
    parts = [part for part in (_frame(conn, query), _frame(conn, later)) if not part.empty]
    frame = pd.concat(parts, ignore_index=True) if parts else _frame(conn, query)
    frame["variant"] = frame["variant"].fillna("default")
    frame["created_at"] = utc_naive(frame["created_at"])
    return _dimensions(frame, t)


def events(
    conn: Connection,
    t: SourceTables,
    event_types: Sequence[str],
    start: datetime,
    end: datetime,
    until: datetime,
) -> pd.DataFrame:
    """Interactions of the given types with start <= ts <= until: every one of [start, end),
    and after it those of the users shown a list in [start, end), the only ones that can label
    its impressions or make its requests' relevant items."""
    ts = t.col("interactions", "ts")
    typed = select(*t.cols("interactions", *EVENT_COLUMNS)).where(
        t.col("interactions", "event_type").in_(list(event_types))
    )
    query = union_all(  # (two queries, not an OR: see impressions)
        typed.where(ts >= start, ts < end),
        typed.where(
            ts >= end, ts <= until, t.col("interactions", "user_id").in_(_shown(t, start, end))
        ),
    )
    return _frame(conn, query)


def session_events(
    conn: Connection,
    t: SourceTables,
    since: datetime,
    until: datetime,
    start: datetime,
    end: datetime,
) -> pd.DataFrame:
    """session_id, user_id, ts of the interactions with since <= ts <= until of the sessions
    with an interaction in [start, end) (those that may have begun then)."""
    ts, session = t.col("interactions", "ts"), t.col("interactions", "session_id")
    user = t.col("interactions", "user_id")
    began = select(session).where(ts >= start, ts < end, session.is_not(None)).correlate(None)
    query = select(session.label("session_id"), user.label("user_id"), ts.label("ts")).where(
        session.is_not(None), user.is_not(None), ts >= since, ts <= until, session.in_(began)
    )
    return _frame(conn, query)


def _shown(t: SourceTables, start: datetime, end: datetime) -> Select:
    """The users shown a list in [start, end), as a subquery of its own (never correlated)."""
    ts = t.col("recommendations", "ts")
    user = t.col("recommendations", "user_id")
    return select(user).where(ts >= start, ts < end).correlate(None)


def _active(t: SourceTables, start: datetime, end: datetime) -> Select:
    """The users with an interaction in [start, end] (end included: a horizon is)."""
    ts = t.col("interactions", "ts")
    return select(t.col("interactions", "user_id")).where(ts >= start, ts <= end).correlate(None)


def _dimensions(frame: pd.DataFrame, t: SourceTables) -> pd.DataFrame:
    for name in t.dimensions:  # label values are text; a missing one reads "unknown"
        frame[name] = frame[name].map(str, na_action="ignore").fillna("unknown")
    return frame


def event_minutes(
    conn: Connection, t: SourceTables, event_types: Sequence[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """Events per minute and type with start <= ts < end: minute, event_type, events."""
    ts, event_type = t.col("interactions", "ts"), t.col("interactions", "event_type")
    minute = MinuteOf(ts)
    query = (
        select(minute.label("minute"), event_type.label("event_type"), func.count().label("events"))
        .where(ts >= start, ts < end, event_type.in_(list(event_types)))
        .group_by(minute, event_type)
    )
    frame = _frame(conn, query)
    frame["minute"] = utc_naive(frame["minute"])
    return frame


def minute_rows(
    conn: Connection, t: SourceTables, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """Recommendation rows per minute with start <= ts < end, minutes in order."""
    ts = t.col("recommendations", "ts")
    minute = MinuteOf(ts)
    query = (
        select(minute.label("minute"), func.count().label("rows"))
        .where(ts >= start, ts < end)
        .group_by(minute)
        .order_by(minute)
    )
    frame = _frame(conn, query)
    return list(zip(utc_naive(frame["minute"]), frame["rows"].astype(int), strict=True))


def catalog_size(conn: Connection, t: SourceTables) -> int:
    return int(conn.execute(select(func.count()).select_from(t["items"])).scalar_one())


def freshness(
    conn: Connection, t: SourceTables, table: str, now: datetime, clock: datetime
) -> tuple[datetime | None, int]:
    """The newest ts at or before `now`, and the number of rows dated after `clock` (two index
    range scans on ts, not a table scan)."""
    ts = t.col(table, "ts")
    newest = conn.execute(select(func.max(ts)).where(ts <= now)).scalar_one()
    future = conn.execute(select(func.count()).select_from(t[table]).where(ts > clock)).scalar_one()
    value = utc_naive(pd.Series([newest])).iloc[0]
    return (None if pd.isna(value) else value.to_pydatetime()), int(future)


def _frame(conn: Connection, query: Select | CompoundSelect) -> pd.DataFrame:
    result = conn.execute(query)
    # The driver's rows as they are: SQLAlchemy's per-value result processing (parsing SQLite's
    # timestamp strings one at a time) cost more than the query; utc_naive parses timestamps
    # in one vectorised pass instead.
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    frame = pd.DataFrame.from_records(rows, columns=list(result.keys()))
    for name in _TEXT:  # a column the driver gave as text throughout is text already
        if name in frame and not isinstance(frame[name].dtype, pd.StringDtype):
            frame[name] = frame[name].map(str, na_action="ignore")
    if "ts" in frame:
        frame["ts"] = utc_naive(frame["ts"])
    return frame


def utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (a naive database value is taken to be UTC already)."""
    # No cache: deciding whether to cache boxes hundreds of the values one by one, which for
    # aware datetimes (timestamptz) costs 170 times the conversion itself.
    parsed = pd.to_datetime(values, utc=True, format="ISO8601", cache=False)
    return parsed.dt.tz_localize(None).astype("datetime64[us]")


class _Truncated(FunctionElement):
    """A timestamp truncated to its `unit`, in each dialect's own words."""

    type = DateTime()
    inherit_cache = True
    unit: ClassVar[str]


class MinuteOf(_Truncated):
    unit = "minute"
    inherit_cache = True


class HourOf(_Truncated):
    unit = "hour"
    inherit_cache = True


_SQLITE_FORMATS = {"minute": "%Y-%m-%d %H:%M:00", "hour": "%Y-%m-%d %H:00:00"}


@compiles(MinuteOf)
@compiles(HourOf)
def _truncated_default(element: _Truncated, compiler: SQLCompiler, **kw: object) -> str:
    return f"date_trunc('{element.unit}', {compiler.process(element.clauses, **kw)})"


@compiles(MinuteOf, "sqlite")
@compiles(HourOf, "sqlite")
def _truncated_sqlite(element: _Truncated, compiler: SQLCompiler, **kw: object) -> str:
    ts = compiler.process(element.clauses, **kw)
    return f"strftime('{_SQLITE_FORMATS[element.unit]}', {ts})"


@compiles(MinuteOf, "mysql")
@compiles(MinuteOf, "mariadb")
@compiles(HourOf, "mysql")
@compiles(HourOf, "mariadb")
def _truncated_mysql(element: _Truncated, compiler: SQLCompiler, **kw: object) -> str:
    ts = compiler.process(element.clauses, **kw)
    minutes = f" + INTERVAL MINUTE({ts}) MINUTE" if element.unit == "minute" else ""
    return f"(DATE({ts}) + INTERVAL HOUR({ts}) HOUR{minutes})"


def models(conn: Connection, t: SourceTables) -> pd.DataFrame:
    """The model registry: every version."""
    columns = (
        "model",
        "version",
        "trained_at",
        "training_data_start",
        "training_data_end",
        "deployed_at",
    )
    frame = _frame(conn, select(*t.cols("models", *columns)))
    for name in columns[2:]:
        frame[name] = utc_naive(frame[name])
    frame["version"] = frame["version"].map(str, na_action="ignore")
    return frame.dropna(subset=["model", "version"])


def model_metrics(
    conn: Connection, t: SourceTables, versions: Sequence[tuple[str, str]], now: datetime
) -> pd.DataFrame:
    """model, version, metric, value, ts of the given versions' metrics up to `now`."""
    if not versions:
        return pd.DataFrame(columns=["model", "version", "metric", "value", "ts"])
    model, version = t.col("model_metrics", "model"), t.col("model_metrics", "version")
    wanted = tuple_(model, version).in_([tuple(v) for v in versions])
    query = select(*t.cols("model_metrics", "model", "version", "metric", "value", "ts")).where(
        wanted, t.col("model_metrics", "ts") <= now
    )
    frame = _frame(conn, query)
    frame["version"] = frame["version"].map(str, na_action="ignore")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame


def hourly_events(
    conn: Connection, t: SourceTables, event_types: Sequence[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """Events per hour and type with start <= ts < end: hour, event_type, events."""
    ts, event_type = t.col("interactions", "ts"), t.col("interactions", "event_type")
    hour = HourOf(ts)
    query = (
        select(hour.label("hour"), event_type.label("event_type"), func.count().label("events"))
        .where(ts >= start, ts < end, event_type.in_(list(event_types)))
        .group_by(hour, event_type)
    )
    frame = _frame(conn, query)
    frame["hour"] = utc_naive(frame["hour"])
    return frame
