"""The SQL recmon runs: bounded by time, with bound parameters, reading only what a cycle needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, and_, case, func, select

from recmon.sources.tables import SourceTables

IMPRESSION_COLUMNS = ("request_id", "user_id", "item_id", "rank", "score", "model", "variant", "ts")
EVENT_COLUMNS = ("user_id", "item_id", "event_type", "ts", "value", "request_id")
# Rows without these cannot be attributed or grouped; they are left out.
_REQUIRED = {
    "recommendations": ("request_id", "user_id", "item_id", "rank", "model", "ts"),
    "interactions": ("user_id", "item_id", "event_type", "ts"),
}
_IDS = ("request_id", "user_id", "item_id")


def impressions(conn: Connection, t: SourceTables, start: datetime, end: datetime) -> pd.DataFrame:
    """Recommendation rows with start <= ts <= end."""
    ts = t.col("recommendations", "ts")
    query = select(*t.cols("recommendations", *IMPRESSION_COLUMNS)).where(ts >= start, ts <= end)
    frame = _frame(conn, query, IMPRESSION_COLUMNS, "recommendations")
    frame["rank"] = frame["rank"].astype("int64")
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    frame["model"] = frame["model"].astype(str)
    frame["variant"] = frame["variant"].fillna("default").astype(str)
    return frame


def events(
    conn: Connection, t: SourceTables, event_types: Sequence[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """Interactions of the given types with start <= ts <= end."""
    ts = t.col("interactions", "ts")
    query = select(*t.cols("interactions", *EVENT_COLUMNS)).where(
        ts >= start, ts <= end, t.col("interactions", "event_type").in_(list(event_types))
    )
    frame = _frame(conn, query, EVENT_COLUMNS, "interactions")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    frame["event_type"] = frame["event_type"].astype(str)
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


def _frame(conn: Connection, query: object, columns: Sequence[str], table: str) -> pd.DataFrame:
    rows = conn.execute(query).all()  # type: ignore[call-overload]
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    frame = frame.dropna(subset=list(_REQUIRED[table])).reset_index(drop=True)
    for name in _IDS:
        if name in frame:
            # Ids are compared across tables, so give them one type whatever the database used.
            frame[name] = frame[name].map(str, na_action="ignore")
    frame["ts"] = utc_naive(frame["ts"])
    return frame


def utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (a naive database value is taken to be UTC already)."""
    return pd.to_datetime(values, utc=True).dt.tz_localize(None).astype("datetime64[us]")
