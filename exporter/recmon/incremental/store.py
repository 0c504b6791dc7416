"""One source's incremental state across cycles: its Minutes, and each window's running totals."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from recmon.config import Config
from recmon.incremental.buckets import BUCKET, grid, horizon
from recmon.incremental.compute import Summarizer
from recmon.incremental.partial import Minute
from recmon.incremental.window import Window
from recmon.sources import queries
from recmon.sources.reader import Timer
from recmon.sources.tables import SourceTables
from recmon.span import Span

# Impressions summarised in one pass, at most (give or take a minute's): bounds the memory of the
# first cycle, whatever the window.
CHUNK_ROWS = 400_000


class MinuteStore:
    """Keeps every Minute the windows and their drift references need, summarising only the
    minutes it lacks or whose horizon moved, and keeps the windows' totals in step with them.

    A new MinuteStore (a restart, a new config) rebuilds everything from the database on its first
    cycle, chunk by chunk."""

    def __init__(self, config: Config, tables: SourceTables, sessions: bool) -> None:
        self.config = config
        self.tables = tables
        self.summarizer = Summarizer(config, tables, sessions)
        self.minutes: dict[datetime, Minute] = {}
        self.windows = {
            w.label: Window(config.k, config.comparisons, False) for w in config.windows
        }
        self.references = {w.label: Window(config.k, (), True) for w in config.windows}
        self.types = self.summarizer.types
        self.events: dict[datetime, np.ndarray] = {}  # minute -> events per type
        self.events_horizon: dict[datetime, datetime] = {}

    def update(self, conn: Connection, span: Span, timed: Timer, ahead: Span | None = None) -> None:
        """Bring the Minutes and windows to `span` (its end on the minute grid). With `ahead` (a
        later span whose data is all in the database already: backfill, report), the minutes it
        will need are summarised now too, as of its `now`, in one pass instead of one a cycle."""
        labelled, reference = self._needed(span)
        later_labelled, later_reference = self._needed(ahead) if ahead else (set(), set())
        any_labelled = labelled | later_labelled
        kept = any_labelled | reference | later_reference
        self.minutes = {b: m for b, m in self.minutes.items() if b in kept}
        missing: list[tuple[datetime, bool]] = []  # summarised as of span.now
        early: list[tuple[datetime, bool]] = []  # only `ahead` needs them: as of ahead.now
        for b in sorted(kept):
            minute = self.minutes.get(b)
            if b not in any_labelled:
                if minute is None:
                    (missing if b in reference else early).append((b, False))
                elif minute.labelled:
                    self.minutes[b] = minute.scores_only()
            elif b in labelled:
                if minute is None or not (
                    minute.labelled and minute.horizon == self._horizon(b, span.now)
                ):
                    missing.append((b, True))
            elif minute is None or not minute.labelled:
                early.append((b, True))
        for runs, now in ((missing, span.now), (early, ahead.now if ahead else span.now)):
            for start, end, labels in _runs(runs):
                chunks = timed("hourly_rows", lambda s=start, e=end: self._chunks(conn, s, e))
                for s, e in chunks:
                    self.minutes.update(self.summarizer.minutes(conn, s, e, now, labels, timed))
        offset = self.config.drift.reference_offset
        for window in self.config.windows:
            since = span.end - window.length
            self.windows[window.label].sync({b: self.minutes[b] for b in grid(since, span.end)})
            self.references[window.label].sync(
                {b: self.minutes[b] for b in grid(since - offset, span.end - offset)}
            )
        timed("event_minutes", lambda: self._count_events(conn, span, ahead))

    def _needed(self, span: Span) -> tuple[set[datetime], set[datetime]]:
        """The minutes the windows need labelled, and those only their drift references need
        (scores only): a reference a week back needs a window's length of minutes there, not the
        week between."""
        offset = self.config.drift.reference_offset
        labelled: set[datetime] = set()
        reference: set[datetime] = set()
        for window in self.config.windows:
            since = span.end - window.length
            labelled.update(grid(since, span.end))
            reference.update(grid(since - offset, span.end - offset))
        return labelled, reference - labelled

    def _horizon(self, b: datetime, now: datetime) -> datetime:
        return horizon(b, self.config.attribution_window, now)

    def _count_events(self, conn: Connection, span: Span, ahead: Span | None) -> None:
        """Events per minute for the undelayed counts, [now - W, now): a minute is counted again
        while events may still arrive for it (within A), like an open Minute. A minute's count
        holds whatever its horizon (it is every event in the minute), so with `ahead` the minutes
        up to ahead.now are counted once, and a count as of a later horizon stays good."""
        oldest = span.now - self.config.largest_window.length
        self.events = {b: n for b, n in self.events.items() if b >= oldest}
        self.events_horizon = {b: h for b, h in self.events_horizon.items() if b >= oldest}
        stale = [
            b
            for b in grid(oldest, span.now)
            if self.events_horizon.get(b, datetime.min) < self._horizon(b, span.now)
        ]
        if not stale:
            return
        now = ahead.now if ahead else span.now
        counts = queries.event_minutes(conn, self.tables, self.types, stale[0], now)
        minutes = list(grid(stale[0], now))
        table = np.zeros((len(minutes), len(self.types)), dtype=np.int64)
        row = ((counts["minute"] - stale[0]) // BUCKET).to_numpy(dtype=np.int64)
        column = pd.Index(self.types).get_indexer(counts["event_type"])
        np.add.at(table, (row, column), counts["events"].to_numpy(dtype=np.int64))
        for b, n in zip(minutes, table, strict=True):
            self.events[b] = n
            self.events_horizon[b] = self._horizon(b, now)

    def event_counts(self, span: Span) -> dict[str, list[int]]:
        """Per event type, per window: events with ts in [now - W, now)."""
        per_window = []
        for start in span.fast_starts:
            rows = [n for b, n in self.events.items() if start <= b < span.now]
            per_window.append(np.sum(rows, axis=0) if rows else np.zeros(len(self.types)))
        return {t: [int(w[i]) for w in per_window] for i, t in enumerate(self.types)}

    def _chunks(
        self, conn: Connection, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """[start, end) cut into ranges of about CHUNK_ROWS impressions (from their count per
        hour, one aggregate query), so that a first cycle over a long window stays small."""
        hours = queries.hourly_rows(conn, self.tables, start, end)
        chunks, begin, rows = [], start, 0
        for hour, n in hours:
            if rows and rows + n > CHUNK_ROWS and begin < max(hour, start):
                chunks.append((begin, max(hour, start)))
                begin, rows = max(hour, start), 0
            rows += n
        return [*chunks, (begin, end)]


def _runs(missing: list[tuple[datetime, bool]]) -> list[tuple[datetime, datetime, bool]]:
    """Consecutive missing minutes of one kind as [start, end) ranges."""
    runs: list[tuple[datetime, datetime, bool]] = []
    for b, labelled in missing:
        if runs and runs[-1][1] == b and runs[-1][2] == labelled:
            runs[-1] = (runs[-1][0], b + BUCKET, labelled)
        else:
            runs.append((b, b + BUCKET, labelled))
    return runs
