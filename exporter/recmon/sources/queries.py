"""The SQL recmon runs: bounded by time, with bound parameters, reading only what a cycle needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, DateTime, Select, and_, case, func, select, tuple_
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


def impressions(conn: Connection, t: SourceTables, start: datetime, end: datetime) -> pd.DataFrame:
    """Recommendation rows with start <= ts <= end, with their item's created_at from the
    catalogue (`known_item` is null when the catalogue lacks the item)."""
    recs, items = t["recommendations"], t["items"]
    ts = t.col("recommendations", "ts")
    query = (
        select(
            *t.cols("recommendations", *IMPRESSION_COLUMNS),
            *t.dimension_cols(),
            t.col("items", "item_id").label("known_item"),
            t.col("items", "created_at").label("created_at"),
        )
        .select_from(
            recs.outerjoin(items, t.col("recommendations", "item_id") == t.col("items", "item_id"))
        )
        .where(ts >= start, ts <= end)
    )
    frame = _frame(conn, query)
    frame["variant"] = frame["variant"].fillna("default")
    frame["created_at"] = utc_naive(frame["created_at"])
    return _dimensions(frame, t)


def events(
    conn: Connection, t: SourceTables, event_types: Sequence[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """Interactions of the given types with start <= ts <= end."""
    ts = t.col("interactions", "ts")
    query = select(*t.cols("interactions", *EVENT_COLUMNS)).where(
        ts >= start, ts <= end, t.col("interactions", "event_type").in_(list(event_types))
    )
    return _frame(conn, query)


def sessions(conn: Connection, t: SourceTables, start: datetime, end: datetime) -> pd.DataFrame:
    """Sessions as (session_id, user_id, first, last) over their events with start <= ts <= end."""
    ts, session = t.col("interactions", "ts"), t.col("interactions", "session_id")
    user = t.col("interactions", "user_id")
    first, last = func.min(ts), func.max(ts)
    query = (
        select(
            session.label("session_id"),
            user.label("user_id"),
            first.label("first"),
            last.label("last"),
        )
        .where(session.is_not(None), user.is_not(None), ts >= start, ts <= end)
        .group_by(session, user)
    )
    frame = _frame(conn, query)
    frame["first"] = utc_naive(frame["first"])
    frame["last"] = utc_naive(frame["last"])
    return frame


def reference_scores(
    conn: Connection, t: SourceTables, start: datetime, end: datetime
) -> pd.DataFrame:
    """model, variant, score, ts of the rows with a score and start <= ts < end."""
    ts, score = t.col("recommendations", "ts"), t.col("recommendations", "score")
    query = select(
        *t.cols("recommendations", "model", "variant", "score", "ts"), *t.dimension_cols()
    ).where(ts >= start, ts < end, score.is_not(None))
    frame = _frame(conn, query)
    frame["variant"] = frame["variant"].fillna("default")
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    return _dimensions(frame, t)


def _dimensions(frame: pd.DataFrame, t: SourceTables) -> pd.DataFrame:
    for name in t.dimensions:  # label values are text; a missing one reads "unknown"
        frame[name] = frame[name].map(str, na_action="ignore").fillna("unknown")
    return frame


def event_counts(
    conn: Connection,
    t: SourceTables,
    event_types: Sequence[str],
    starts: Sequence[datetime],
    end: datetime,
) -> dict[str, list[int]]:
    """Events per type with ts in [start, end) for each start, in one scan of the longest range."""
    ts = t.col("interactions", "ts")
    event_type = t.col("interactions", "event_type")
    sums = [
        func.coalesce(func.sum(case((ts >= start, 1), else_=0)), 0).label(f"c{i}")
        for i, start in enumerate(starts)
    ]
    query = (
        select(event_type.label("event_type"), *sums)
        .where(and_(ts >= min(starts), ts < end, event_type.in_(list(event_types))))
        .group_by(event_type)
    )
    return {str(row[0]): [int(n) for n in row[1:]] for row in conn.execute(query)}


def catalog_size(conn: Connection, t: SourceTables) -> int:
    return int(conn.execute(select(func.count()).select_from(t["items"])).scalar_one())


def freshness(
    conn: Connection, t: SourceTables, table: str, now: datetime
) -> tuple[datetime | None, int]:
    """The newest ts at or before `now`, and the number of rows dated after it (two index
    range scans on ts, not a table scan)."""
    ts = t.col(table, "ts")
    newest = conn.execute(select(func.max(ts)).where(ts <= now)).scalar_one()
    future = conn.execute(select(func.count()).select_from(t[table]).where(ts > now)).scalar_one()
    value = utc_naive(pd.Series([newest])).iloc[0]
    return (None if pd.isna(value) else value.to_pydatetime()), int(future)


def _frame(conn: Connection, query: Select) -> pd.DataFrame:
    result = conn.execute(query)
    # The driver's rows as they are: SQLAlchemy's per-value result processing (parsing SQLite's
    # timestamp strings one at a time) cost more than the query; utc_naive parses timestamps
    # in one vectorised pass instead.
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    frame = pd.DataFrame.from_records(rows, columns=list(result.keys()))
    for name in _TEXT:
        if name in frame:
            frame[name] = frame[name].map(str, na_action="ignore")
    if "ts" in frame:
        frame["ts"] = utc_naive(frame["ts"])
    return frame


def utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (a naive database value is taken to be UTC already)."""
    parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    return parsed.dt.tz_localize(None).astype("datetime64[us]")


class HourOf(FunctionElement):
    """The timestamp truncated to its hour, in each dialect's own words."""

    type = DateTime()
    inherit_cache = True


@compiles(HourOf)
def _hour_default(element: HourOf, compiler: SQLCompiler, **kw: object) -> str:
    return f"date_trunc('hour', {compiler.process(element.clauses, **kw)})"


@compiles(HourOf, "sqlite")
def _hour_sqlite(element: HourOf, compiler: SQLCompiler, **kw: object) -> str:
    return f"strftime('%Y-%m-%d %H:00:00', {compiler.process(element.clauses, **kw)})"


@compiles(HourOf, "mysql")
@compiles(HourOf, "mariadb")
def _hour_mysql(element: HourOf, compiler: SQLCompiler, **kw: object) -> str:
    ts = compiler.process(element.clauses, **kw)
    return f"DATE_ADD(DATE({ts}), INTERVAL HOUR({ts}) HOUR)"


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
