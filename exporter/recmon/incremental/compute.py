"""Summarising a run of minutes: read what their labels depend on, clean, label, aggregate."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from recmon.config import Config
from recmon.incremental.buckets import Interner, ScoreBins, grid, horizon, score_codes
from recmon.incremental.partial import Minute, additive, summarize, summarize_scores
from recmon.kpis.attribution import attribute
from recmon.kpis.ranking import relevant_items, request_metrics
from recmon.sources import queries
from recmon.sources.reader import Timer
from recmon.sources.tables import SourceTables
from recmon.sources.validate import InvalidCounts, clean_events, clean_impressions


class Summarizer:
    """Turns minutes of a source into Minutes; holds the id codes they share."""

    def __init__(self, config: Config, tables: SourceTables, sessions: bool) -> None:
        self.config = config
        self.tables = tables
        self.sessions = sessions
        self.users = Interner()
        self.items = Interner()
        self.bins = ScoreBins()
        self.keys = ["model", "variant", *config.dimensions]
        self.types = sorted({name for names in config.events.values() for name in names})
        self.compared = {m for c in config.comparisons for m in (c.baseline, c.candidate)}

    def minutes(
        self,
        conn: Connection,
        start: datetime,
        end: datetime,
        now: datetime,
        labels: bool,
        timed: Timer,
    ) -> dict[datetime, Minute]:
        """Minutes [start, end), their labels seeing data up to min(minute + 1m + A, now).
        Without `labels`, only the scores (a drift reference older than every window)."""
        a = self.config.attribution_window
        until = min(end + a, now) if labels else end  # the newest data any minute needs
        minutes = {b: Minute(horizon(b, a, now), labels) for b in grid(start, end)}
        invalid: InvalidCounts = Counter()
        t = self.tables
        read = timed("impressions", lambda: queries.impressions(conn, t, start, end, until))
        impressions = clean_impressions(read, start, end, invalid)
        impressions = impressions[impressions["ts"] <= until].reset_index(drop=True)
        if not labels:
            # no user or item codes: the interner would keep a week of ids it never needs
            rows = self._scored(impressions.assign(clicked=False), end)
            summarize_scores(minutes, rows, self.keys)
            return minutes
        got = timed("events", lambda: queries.events(conn, t, self.types, start, end, until))
        events = clean_events(got, start, end, invalid)
        roles = _roles(self.config, events)
        rows = self._scored(pd.concat([impressions, attribute(impressions, roles, a)], axis=1), end)
        rows["user_code"] = self.users.codes(rows["user_id"])
        rows["item_code"] = self.items.codes(rows["item_id"])
        positives = roles.loc[
            roles["role"].isin(self.config.positive_events), ["user_id", "item_id", "ts"]
        ]
        sessions = pd.DataFrame(columns=["minute", *self.keys, "seconds"])
        if self.sessions:
            sessions = self._sessions(conn, start, end, until, impressions, timed)
        summarize(
            minutes,
            rows,
            self.keys,
            additive(
                rows,
                self.config.classification.threshold,
                self.config.new_item_age.total_seconds(),
            ),
            self._ranking(rows, positives),
            sessions,
            self.compared,
            self.config.k,
        )
        for (table, reason, minute), n in invalid.items():
            minutes[minute].invalid[(table, reason)] += n
        return minutes

    def _scored(self, labelled: pd.DataFrame, end: datetime) -> pd.DataFrame:
        """The impressions before `end`, with their minute and score bin code (-1: no score)."""
        rows = labelled[labelled["ts"] < end].copy()
        rows["minute"] = rows["ts"].dt.floor("min")
        scores = rows["score"].to_numpy(dtype=float)
        finite = np.isfinite(scores)
        codes = np.full(len(rows), -1, dtype=np.int64)
        codes[finite] = self.bins.codes(score_codes(scores[finite]))
        rows["score_code"] = codes
        return rows

    def _ranking(self, rows: pd.DataFrame, positives: pd.DataFrame) -> pd.DataFrame:
        requests = rows.groupby("request_id", as_index=False).agg(
            user_id=("user_id", "first"),
            ts=("ts", "min"),
            **{key: (key, "first") for key in self.keys},
        )
        relevant = relevant_items(requests, positives, self.config.attribution_window)
        metrics = request_metrics(rows[["request_id", "item_id", "rank"]], relevant, self.config.k)
        owner = requests.set_index("request_id").loc[metrics.index]
        return metrics.assign(
            minute=owner["ts"].dt.floor("min"), **{k: owner[k] for k in self.keys}
        )

    def _sessions(
        self,
        conn: Connection,
        start: datetime,
        end: datetime,
        until: datetime,
        impressions: pd.DataFrame,
        timed: Timer,
    ) -> pd.DataFrame:
        """Each session that began in [start, end) and each group that served its user during
        it, with its length: last - first over its first A (a session, like a list, is judged
        once A has passed)."""
        a = self.config.attribution_window
        events = timed(
            "session_events",
            lambda: queries.session_events(conn, self.tables, start - a, until, start, end),
        )
        first = events.groupby(["session_id", "user_id"])["ts"].transform("min")
        events = events[events["ts"] <= first + a].assign(first=first)
        spans = events.groupby(["session_id", "user_id"], as_index=False).agg(
            first=("first", "first"), last=("ts", "max")
        )
        spans = spans[(spans["first"] >= start) & (spans["first"] < end)]
        served = spans.merge(impressions[["user_id", "ts", *self.keys]], on="user_id")
        during = served[(served["ts"] >= served["first"]) & (served["ts"] <= served["last"])]
        kept = during.drop_duplicates(["session_id", "user_id", *self.keys])
        return pd.DataFrame(
            {
                "minute": kept["first"].dt.floor("min"),
                **{k: kept[k] for k in self.keys},
                "seconds": (kept["last"] - kept["first"]).dt.total_seconds(),
            }
        )


def _roles(config: Config, events: pd.DataFrame) -> pd.DataFrame:
    """One row per (event, role) its event type maps to."""
    mapping = pd.DataFrame(
        [(t, role) for role, types in config.events.items() for t in types],
        columns=["event_type", "role"],
    )
    return events.merge(mapping, on="event_type")
