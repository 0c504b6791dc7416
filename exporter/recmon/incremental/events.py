"""Events per minute and type, for the undelayed counts (the fast signals)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from recmon.incremental.buckets import BUCKET, number, start_of
from recmon.sources import queries
from recmon.sources.tables import SourceTables
from recmon.span import Span


class EventCounts:
    """Per minute of the last `keep`, per type: events with ts in the minute, and the time they
    were counted as of. A minute is counted again while events may still arrive for it (within
    A), like an open Minute; a count as of a later time than needed stays good (it is every
    event in the minute), so with `ahead` the minutes up to ahead.now are counted once."""

    def __init__(self, types: list[str], attribution: timedelta, keep: timedelta) -> None:
        self.types = types
        self.attribution = attribution
        self.keep = keep
        self.first = 0  # the number of the minute in row 0
        self.counts = np.zeros((0, len(types)), dtype=np.int64)
        self.as_of = np.zeros(0, dtype="datetime64[us]")  # NaT: not counted

    def update(
        self, conn: Connection, tables: SourceTables, span: Span, ahead: Span | None
    ) -> None:
        self._cover(number(span.now - self.keep), number(span.now))
        starts = (self.first + np.arange(len(self.as_of))).astype("datetime64[m]")
        final = starts.astype("datetime64[us]") + np.timedelta64(BUCKET + self.attribution)
        now = np.datetime64(span.now, "us")
        # as of t, a minute's count holds until min(its start + 1m + A, now)
        stale = np.isnat(self.as_of) | ((self.as_of < now) & (self.as_of < final))
        if not stale.any():
            return
        row = int(np.argmax(stale))
        until = ahead.now if ahead else span.now
        self._cover(self.first, number(until))
        got = queries.event_minutes(conn, tables, self.types, start_of(self.first + row), until)
        self.counts[row:] = 0
        rows = ((got["minute"] - start_of(self.first)) // BUCKET).to_numpy(dtype=np.int64)
        column = pd.Index(self.types).get_indexer(got["event_type"])
        np.add.at(self.counts, (rows, column), got["events"].to_numpy(dtype=np.int64))
        self.as_of[row:] = np.datetime64(until, "us")

    def _cover(self, first: int, end: int) -> None:
        """Rows for the minutes from `first` to `end` or past it to the last one there (counted
        ahead): those already there kept, new ones uncounted."""
        end = max(end, self.first + len(self.as_of))
        counts = np.zeros((end - first, len(self.types)), dtype=np.int64)
        as_of = np.full(end - first, np.datetime64("NaT"), dtype="datetime64[us]")
        lo, hi = max(first, self.first), min(end, self.first + len(self.as_of))
        if lo < hi:
            counts[lo - first : hi - first] = self.counts[lo - self.first : hi - self.first]
            as_of[lo - first : hi - first] = self.as_of[lo - self.first : hi - self.first]
        self.first, self.counts, self.as_of = first, counts, as_of

    def totals(self, start: datetime, end: datetime) -> np.ndarray:
        """Per type: events with ts in [start, end), of the minutes kept."""
        lo, hi = number(start) - self.first, number(end) - self.first
        return self.counts[max(lo, 0) : max(hi, 0)].sum(axis=0)
