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
from recmon.sources import queries
from recmon.sources.tables import SourceTables
from recmon.sources.validate import FUTURE_TIMESTAMP, InvalidCounts, clean_events, clean_impressions
from recmon.span import Span

T = TypeVar("T")


@dataclass
class SourceData:
    impressions: pd.DataFrame  # valid rows in [start, horizon], with the item's created_at
    events: pd.DataFrame  # valid interactions of the configured types in [start, horizon]
    event_counts: dict[str, list[int]]  # per event type, per window: [now - W, now)
    catalog_size: int
    reference: pd.DataFrame  # model, variant, score, ts of the drift reference period
    sessions: pd.DataFrame | None  # None when the source has no session_id column
    newest: dict[str, datetime | None] = field(default_factory=dict)  # table -> newest ts
    invalid: InvalidCounts = field(default_factory=Counter)
    durations: dict[str, float] = field(default_factory=dict)  # query -> seconds


def read(
    conn: Connection, t: SourceTables, config: Config, span: Span, has_sessions: bool
) -> SourceData:
    durations: dict[str, float] = {}

    def timed(name: str, run: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return run()
        finally:
            durations[name] = time.perf_counter() - started

    types = sorted({name for names in config.events.values() for name in names})
    offset = config.drift.reference_offset
    invalid: InvalidCounts = Counter()
    newest = {}
    for table in ("recommendations", "interactions"):
        newest[table], future = timed(
            f"{table}_freshness", lambda table=table: queries.freshness(conn, t, table, span.now)
        )
        invalid[(table, FUTURE_TIMESTAMP)] = future
    impressions = timed(
        "impressions", lambda: queries.impressions(conn, t, span.start, span.horizon)
    )
    events = timed("events", lambda: queries.events(conn, t, types, span.start, span.horizon))
    return SourceData(
        impressions=clean_impressions(impressions, span.start, span.end, invalid),
        events=clean_events(events, span.start, span.end, invalid),
        event_counts=timed(
            "event_counts", lambda: queries.event_counts(conn, t, types, span.fast_starts, span.now)
        ),
        catalog_size=timed("catalog_size", lambda: queries.catalog_size(conn, t)),
        reference=timed(
            "reference_scores",
            lambda: queries.reference_scores(conn, t, span.start - offset, span.end - offset),
        ),
        # Sessions that began up to A before the window are read too, so that their start is
        # seen as before the window rather than cut off at it.
        sessions=timed(
            "sessions",
            lambda: queries.sessions(conn, t, span.start - config.attribution_window, span.horizon),
        )
        if has_sessions
        else None,
        newest=newest,
        invalid=invalid,
        durations=durations,
    )
