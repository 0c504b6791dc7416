"""One source's incremental state across cycles: its Minutes, and each window's running totals."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import Connection

from recmon.config import Config
from recmon.incremental.buckets import BUCKET, horizon, minute_range, number, start_of
from recmon.incremental.compute import Summarizer
from recmon.incremental.events import EventCounts
from recmon.incremental.partial import Minute
from recmon.incremental.window import Window
from recmon.sources import queries
from recmon.sources.reader import Timer
from recmon.sources.tables import SourceTables
from recmon.span import Span

# Impressions summarised in one pass, at most (give or take a minute's): bounds the memory of the
# first cycle, whatever the window. A pass holds about 1 KiB per impression at its peak; smaller
# passes cost more queries (on PostgreSQL at 1 million impressions a day, 100,000 took 28% longer
# than 200,000 for a 24h first cycle, whose peak RSS was 0.43 GiB, against 0.63 at 400,000).
CHUNK_ROWS = 200_000


class MinuteStore:
    """Keeps every Minute the windows and their drift references need, by minute number,
    summarising only the minutes it lacks or whose horizon moved, and keeps the windows' totals
    in step with them.

    A new MinuteStore (a restart, a new config) rebuilds everything from the database on its first
    cycle, chunk by chunk."""

    def __init__(self, config: Config, tables: SourceTables, sessions: bool) -> None:
        self.config = config
        self.tables = tables
        self.summarizer = Summarizer(config, tables, sessions)
        self.minutes: dict[int, Minute] = {}
        self._labelled: set[int] = set()  # the minutes kept with labels
        self._open: set[int] = set()  # ... of them, those summarised before their horizon
        self.windows = {
            w.label: Window(config.k, config.comparisons, False) for w in config.windows
        }
        self.references = {w.label: Window(config.k, (), True) for w in config.windows}
        self.types = self.summarizer.types
        self.events = EventCounts(
            self.types, config.attribution_window, config.largest_window.length
        )
        # users and items the kept minutes held when ids were last forgotten (None: before the
        # first cycle, after which every id known is held)
        self._held: tuple[int, int] | None = None

    def update(self, conn: Connection, span: Span, timed: Timer, ahead: Span | None = None) -> None:
        """Bring the Minutes and windows to `span` (its end on the minute grid). With `ahead` (a
        later span whose data is all in the database already: backfill, report), the minutes it
        will need are summarised now too, as of its `now`, in one pass instead of one a cycle."""
        labelled, reference = self._needed(span)
        later_labelled, later_reference = self._needed(ahead) if ahead else (set(), set())
        any_labelled = labelled | later_labelled
        kept = any_labelled | reference | later_reference
        for b in self.minutes.keys() - kept:
            self._put(b, None)
        # Only these minutes can need work: those not kept yet, labelled ones now needed by a
        # reference only (kept as scores only), ones needed labelled but kept as scores only,
        # ones summarised before their horizon, and ones whose horizon is still ahead of `now`
        # (summarised ahead, as of a later time). Every other kept minute is final, so a cycle's
        # cost does not grow with the window.
        tail = number(span.now - self.config.attribution_window - BUCKET)
        looked_at = (
            (kept - self.minutes.keys())
            | ((kept - any_labelled) & self._labelled)
            | (any_labelled - self._labelled)
            | (labelled & self._open)
            | labelled.intersection(range(tail, number(span.end)))
        )
        missing: list[tuple[int, bool]] = []  # summarised as of span.now
        early: list[tuple[int, bool]] = []  # only `ahead` needs them: as of ahead.now
        for b in sorted(looked_at):
            minute = self.minutes.get(b)
            if b not in any_labelled:
                if minute is None:
                    (missing if b in reference else early).append((b, False))
                elif minute.labelled:
                    self._put(b, minute.scores_only())
            elif b in labelled:
                if minute is None or not (
                    minute.labelled and minute.horizon == self._horizon(b, span.now)
                ):
                    missing.append((b, True))
            elif minute is None or not minute.labelled:
                early.append((b, True))
        for runs, now in ((missing, span.now), (early, ahead.now if ahead else span.now)):
            for start, end, labels in _runs(runs):
                chunks = timed("minute_rows", lambda s=start, e=end: self._chunks(conn, s, e))
                for s, e in chunks:
                    got = self.summarizer.minutes(conn, s, e, now, labels, timed)
                    for t, minute in got.items():
                        self._put(number(t), minute)
        offset = self.config.drift.reference_offset
        for window in self.config.windows:
            since = span.end - window.length
            self.windows[window.label].sync(minute_range(since, span.end), self.minutes)
            self.references[window.label].sync(
                minute_range(since - offset, span.end - offset), self.minutes
            )
        timed("event_minutes", lambda: self.events.update(conn, self.tables, span, ahead))
        self._forget_ids()

    def _forget_ids(self) -> None:
        """Once the interners know twice the ids the kept minutes held when they last forgot,
        forget those no kept minute holds now. With users coming and going, ids would pile up for
        the engine's life; this bounds them by twice a window's, at the cost of reading every
        kept minute's codes about once per window's length of churn."""
        users, items = self.summarizer.users, self.summarizer.items
        if self._held is None:
            self._held = (len(users), len(items))
        if len(users) < 2 * max(self._held[0], 1) and len(items) < 2 * max(self._held[1], 1):
            return
        held_users = np.zeros(users.size, dtype=bool)
        held_items = np.zeros(items.size, dtype=bool)
        for minute in self.minutes.values():
            minute.hold(held_users, held_items)
        users.forget(held_users)
        items.forget(held_items)
        self._held = (len(users), len(items))

    def _put(self, b: int, minute: Minute | None) -> None:
        """Keep `minute` as minute b (None: drop it), with the sets that index the kept ones."""
        self._labelled.discard(b)
        self._open.discard(b)
        if minute is None:
            del self.minutes[b]
            return
        self.minutes[b] = minute
        if minute.labelled:
            self._labelled.add(b)
            if minute.horizon < start_of(b) + BUCKET + self.config.attribution_window:
                self._open.add(b)

    def _needed(self, span: Span) -> tuple[set[int], set[int]]:
        """The minutes the windows need labelled, and those only their drift references need
        (scores only): a reference a week back needs a window's length of minutes there, not the
        week between."""
        offset = self.config.drift.reference_offset
        labelled: set[int] = set()
        reference: set[int] = set()
        for window in self.config.windows:
            since = span.end - window.length
            labelled.update(minute_range(since, span.end))
            reference.update(minute_range(since - offset, span.end - offset))
        return labelled, reference - labelled

    def _horizon(self, b: int, now: datetime) -> datetime:
        return horizon(start_of(b), self.config.attribution_window, now)

    def event_counts(self, span: Span) -> dict[str, list[int]]:
        """Per event type, per window: events with ts in [now - W, now)."""
        per_window = [self.events.totals(start, span.now) for start in span.fast_starts]
        return {t: [int(w[i]) for w in per_window] for i, t in enumerate(self.types)}

    def _chunks(
        self, conn: Connection, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """[start, end) cut into ranges of about CHUNK_ROWS impressions (from their count per
        minute, one aggregate query), so that a first cycle over a long window stays small."""
        chunks, begin, rows = [], start, 0
        for minute, n in queries.minute_rows(conn, self.tables, start, end):
            if rows and rows + n > CHUNK_ROWS:
                chunks.append((begin, minute))
                begin, rows = minute, 0
            rows += n
        return [*chunks, (begin, end)]


def _runs(missing: list[tuple[int, bool]]) -> list[tuple[datetime, datetime, bool]]:
    """Consecutive missing minutes of one kind as [start, end) ranges."""
    runs: list[tuple[int, int, bool]] = []
    for b, labelled in missing:
        if runs and runs[-1][1] == b and runs[-1][2] == labelled:
            runs[-1] = (runs[-1][0], b + 1, labelled)
        else:
            runs.append((b, b + 1, labelled))
    return [(start_of(lo), start_of(hi), labelled) for lo, hi, labelled in runs]
