"""Benchmark data: the reference schema at a given rate, generated with numpy batch by batch.

recmon's simulator draws a logit for every (user, item) pair, which suits a demo and is far too
slow for 10 million impressions a day. This generator keeps its shape (the same four arms, daily
traffic, position bias, scores that predict clicks, late clicks past the attribution window,
conversions and watches after clicks, organic events, daily retrained versions) but draws each
list from 30 candidates. Events are written once their time has come, as a live system logs
them, so the tables never hold rows from the future.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

DAY = 86400.0
LIST_LENGTH = 10
CANDIDATES = 30
# (model, variant, share of requests, click lift): the simulator's arms.
ARMS = (
    ("popularity", None, 0.2, 1.0),
    ("personal", "control", 0.3, 1.0),
    ("personal", "treatment", 0.3, 1.05),
    ("trending", None, 0.2, 1.0),
)
EVENT_TYPES = np.array(["click", "conversion", "watch"], dtype=object)
SURFACES = np.array(
    ["home", "search", "pdp", "cart", "email", "push", "feed", "category", "checkout", "account"],
    dtype=object,
)
LATE_CLICK_RATE = 0.03  # clicks 1-3 h after the impression, past the attribution window
CONVERSION_RATE = 0.07
WATCH_RATE = 0.35
REQUEST_ID_RATE = 0.7
ORGANIC_CLICKS_PER_REQUEST = 0.1
TRAINING_DAYS = 7

COLUMNS = {
    "recommendations": {
        "request_id": "TEXT",
        "user_id": "TEXT",
        "item_id": "TEXT",
        "rank": "INTEGER",
        "score": "DOUBLE PRECISION",
        "model": "TEXT",
        "model_version": "TEXT",
        "variant": "TEXT",
        "ts": "TIMESTAMP",
        "surface": "TEXT",
    },
    "interactions": {
        "user_id": "TEXT",
        "item_id": "TEXT",
        "event_type": "TEXT",
        "ts": "TIMESTAMP",
        "value": "DOUBLE PRECISION",
        "request_id": "TEXT",
        "session_id": "TEXT",
    },
    "items": {"item_id": "TEXT", "created_at": "TIMESTAMP", "category": "TEXT"},
    "models": {
        "model": "TEXT",
        "version": "TEXT",
        "trained_at": "TIMESTAMP",
        "training_data_start": "TIMESTAMP",
        "training_data_end": "TIMESTAMP",
        "deployed_at": "TIMESTAMP",
    },
    "model_metrics": {
        "model": "TEXT",
        "version": "TEXT",
        "metric": "TEXT",
        "value": "DOUBLE PRECISION",
        "ts": "TIMESTAMP",
    },
}
# The indexes recmon's README asks for: every query is bounded by time.
INDEXES = {
    "recommendations": (("ts",), ("user_id", "item_id", "ts")),
    "interactions": (("ts",), ("user_id", "ts")),
}


@dataclass(frozen=True)
class Scale:
    """Population sizes follow the rate: about four lists a day per user, 20 lists per item."""

    impressions_per_day: int

    @property
    def lists_per_day(self) -> float:
        return self.impressions_per_day / LIST_LENGTH

    @property
    def users(self) -> int:
        return max(500, int(self.lists_per_day // 4))

    @property
    def items(self) -> int:
        return max(400, int(self.lists_per_day // 20))


def _seconds(t: datetime) -> float:
    return (t - datetime(1970, 1, 1)).total_seconds()


def _datetimes(seconds: np.ndarray) -> np.ndarray:
    return (np.asarray(seconds) * 1e6).astype("datetime64[us]")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Stream:
    """The recommender's log as time goes on: `advance(to)` returns what it wrote up to `to`."""

    def __init__(self, scale: Scale, start: datetime, since: datetime, seed: int = 7) -> None:
        """Generates from `start`; the catalogue is older than `since`, the history's start."""
        self.scale, self.start, self.seed = scale, start, seed
        self.clock = _seconds(start)
        self.requests = 0
        self.pending: pd.DataFrame | None = None  # events whose time has not come yet
        rng = np.random.default_rng([seed, 0])
        n_users, n_items = self.scale.users, self.scale.items
        activity = rng.lognormal(0.0, 1.0, n_users)
        self.user_cdf = np.cumsum(activity) / activity.sum()
        # Items are numbered by popularity; the newest 5% arrive during the history.
        self.n_old = int(n_items * 0.95)
        self.popularity = np.floor(5000.0 / (np.arange(n_items) + 1) ** 0.9) + 1
        self.quality = 0.7 * rng.normal(0.0, 1.0, n_items) - 0.3 * np.log1p(np.arange(n_items))
        self.quality -= self.quality.mean()
        fresh = np.sort(rng.uniform(self.clock, self.clock + 15 * DAY, n_items - self.n_old))
        old = _seconds(since) - rng.uniform(0.0, 90 * DAY, self.n_old)
        self.created = np.concatenate([old, fresh])
        self.by_creation = np.argsort(self.created, kind="stable")

    def tables(self, since: datetime, end: datetime) -> dict[str, pd.DataFrame]:
        """The catalogue and model registry from `since` to `end`."""
        category = np.array(["electronics", "books", "fashion", "home", "sports", "toys"])
        rng = np.random.default_rng([self.seed, 1])
        items = pd.DataFrame(
            {
                "item_id": np.arange(self.scale.items),
                "created_at": _datetimes(self.created),
                "category": category[rng.integers(0, len(category), self.scale.items)],
            }
        )
        models, metrics = [], []
        first = int(_seconds(since) // DAY) - TRAINING_DAYS
        for day in range(first, int(_seconds(end) // DAY) + 1):
            for model in dict.fromkeys(arm[0] for arm in ARMS):
                version = _version(day)
                trained, deployed = day * DAY + 2 * 3600, day * DAY + 3 * 3600
                models.append(
                    (model, version, trained, (day - TRAINING_DAYS) * DAY, day * DAY, deployed)
                )
                metrics.append((model, version, "ndcg_at_10", rng.normal(0.15, 0.005), trained))
        registry = pd.DataFrame(models, columns=list(COLUMNS["models"]))
        for column in list(COLUMNS["models"])[2:]:
            registry[column] = _datetimes(registry[column].to_numpy())
        offline = pd.DataFrame(metrics, columns=list(COLUMNS["model_metrics"]))
        offline["ts"] = _datetimes(offline["ts"].to_numpy())
        return {"items": items, "models": registry, "model_metrics": offline}

    def advance(self, to: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Recommendations served in [clock, to) and interactions that happened then."""
        t0, t1 = self.clock, _seconds(to)
        rng = np.random.default_rng([self.seed, 2, int(t0 * 1e3)])
        hour = (t0 + t1) / 2 % DAY / 3600
        expected = (
            self.scale.lists_per_day
            * (t1 - t0)
            / DAY
            * (1 + 0.4 * np.cos(2 * np.pi * (hour - 20) / 24))
        )
        n = int(rng.poisson(expected))
        ts = np.sort(rng.uniform(t0, t1, n))
        arm = rng.choice(len(ARMS), n, p=[a[2] for a in ARMS])
        user = np.minimum(np.searchsorted(self.user_cdf, rng.random(n)), self.scale.users - 1)
        items, scores, clicked = self._lists(rng, arm, user, t0)
        recs = self._recommendations(rng, ts, arm, user, items, scores)
        clicks = pd.DataFrame(
            {
                "user": np.repeat(user, LIST_LENGTH)[clicked],
                "item": items.ravel()[clicked],
                "request": recs["request_id"].to_numpy()[clicked],
                "ts": np.repeat(ts, LIST_LENGTH)[clicked],
            }
        )
        organic = int(rng.poisson(ORGANIC_CLICKS_PER_REQUEST * n))
        clicks = pd.concat(
            [
                clicks,
                pd.DataFrame(
                    {
                        "user": np.minimum(
                            np.searchsorted(self.user_cdf, rng.random(organic)),
                            self.scale.users - 1,
                        ),
                        "item": rng.integers(0, self.n_old, organic),
                        "request": -1,
                        "ts": rng.uniform(t0, t1, organic),
                    }
                ),
            ],
            ignore_index=True,
        )
        events = pd.concat([e for e in (self.pending, self._events(rng, clicks)) if e is not None])
        due = events["ts"] < _datetimes(t1)
        self.pending, self.clock = events[~due], t1
        return recs, events[due].sort_values("ts", kind="stable", ignore_index=True)

    def _lists(
        self, rng: np.random.Generator, arm: np.ndarray, user: np.ndarray, t0: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each request's 10 items (best first), their logged scores and whether each is clicked."""
        n = len(arm)
        candidates = np.empty((n, CANDIDATES), dtype=np.int64)
        popular = arm == 0
        candidates[popular] = _distinct(rng, popular.sum(), 100)  # the most popular items
        trending = arm == 3
        newest = self.by_creation[: np.searchsorted(self.created[self.by_creation], t0)][-300:]
        candidates[trending] = newest[_distinct(rng, trending.sum(), len(newest))]
        personal = ~(popular | trending)
        day = int(t0 // DAY)  # a user's candidates change daily; 104729 is prime, so distinct
        slots = np.arange(CANDIDATES)[None, :] * 104729
        candidates[personal] = (user[personal, None] * 7919 + day * 65537 + slots) % self.n_old
        # True click propensity: item quality and a stable user-item affinity.
        affinity = ((user[:, None] * 2654435761 + candidates * 40503) % 1000) / 1000.0 * 3 - 1.5
        truth = self.quality[candidates] + affinity
        noise = rng.normal(0.0, 1.0, truth.shape)
        estimate = np.where(
            popular[:, None],
            -candidates.astype(float),
            np.where(trending[:, None], 0.5 * self.quality[candidates] + noise, truth + noise),
        )
        order = np.argsort(-estimate, axis=1)[:, :LIST_LENGTH]
        items = np.take_along_axis(candidates, order, 1)
        estimate = np.take_along_axis(estimate, order, 1)
        scores = np.where(
            popular[:, None],
            self.popularity[items],
            _sigmoid(np.where(trending[:, None], 0.5 * estimate - 2.5, estimate - 2.5)),
        )
        lift = np.array([a[3] for a in ARMS])[arm][:, None]
        rank = np.arange(1, LIST_LENGTH + 1)
        p = _sigmoid(np.take_along_axis(truth, order, 1) - 3.8) / np.log2(rank + 1) * lift
        return items, scores, (rng.random(items.shape) < p).ravel()

    def _recommendations(
        self,
        rng: np.random.Generator,
        ts: np.ndarray,
        arm: np.ndarray,
        user: np.ndarray,
        items: np.ndarray,
        scores: np.ndarray,
    ) -> pd.DataFrame:
        n = len(ts)
        request = self.requests + np.arange(n)
        self.requests += n
        surface = np.minimum(rng.geometric(0.3, n) - 1, len(SURFACES) - 1)
        each = np.repeat
        return pd.DataFrame(
            {
                "request_id": each(request, LIST_LENGTH),
                "user_id": each(user, LIST_LENGTH),
                "item_id": items.ravel(),
                "rank": np.tile(np.arange(1, LIST_LENGTH + 1), n),
                "score": np.round(scores.ravel(), 6),
                "arm": each(arm, LIST_LENGTH),
                "ts": _datetimes(each(ts, LIST_LENGTH)),
                "surface": each(surface, LIST_LENGTH),
            }
        )

    def _events(self, rng: np.random.Generator, clicks: pd.DataFrame) -> pd.DataFrame:
        """Clicks (some late), and the conversions and watches that follow some of them."""
        n = len(clicks)
        late = rng.random(n) < LATE_CLICK_RATE
        click_ts = clicks["ts"].to_numpy() + np.where(
            late, rng.uniform(3600, 3 * 3600, n), rng.exponential(300.0, n)
        )
        converts = rng.random(n) < CONVERSION_RATE
        watches = rng.random(n) < WATCH_RATE
        kinds = (  # in the order of EVENT_TYPES
            (np.ones(n, bool), click_ts, np.nan),
            (converts, click_ts + rng.exponential(600.0, n), np.nan),
            (watches, click_ts + rng.exponential(30.0, n), rng.exponential(180.0, n)),
        )
        request = clicks["request"].to_numpy().copy()
        request[rng.random(n) >= REQUEST_ID_RATE] = -1
        frames = []
        for kind, (mask, ts, value) in enumerate(kinds):
            user = clicks["user"].to_numpy()[mask]
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": user,
                        "item_id": clicks["item"].to_numpy()[mask],
                        "kind": kind,
                        "ts": _datetimes(ts[mask]),
                        "value": np.round(value[mask], 3) if np.ndim(value) else value,
                        "request_id": request[mask],  # -1: none
                        # A session: the user's half hour, as a product's sessionizer would see it.
                        "session_id": user * 100_000
                        + (ts[mask] // 1800).astype(np.int64) % 100_000,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def _distinct(rng: np.random.Generator, n: int, pool: int) -> np.ndarray:
    """n rows of CANDIDATES distinct positions in range(pool): a random start and a prime step
    (pool is 100 or 300, whose only prime factors are 2, 3 and 5)."""
    step = rng.choice(np.array([7, 11, 13, 17, 19, 23, 29, 31]), n)[:, None]
    return (rng.integers(0, pool, n)[:, None] + step * np.arange(CANDIDATES)) % pool


def _text(t: datetime) -> str:
    """A timestamp as both databases compare it with their column (SQLite's is text)."""
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def _version(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def decode(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A generated batch (codes and numbers) as rows of the reference schema."""
    if table == "recommendations":
        arm, ts = frame["arm"].to_numpy(), frame["ts"].to_numpy()
        # The version deployed at the impression: retrained daily, live from 03:00.
        day = (ts - np.timedelta64(3, "h")).astype("datetime64[D]")
        frame = frame.assign(
            model=np.array([a[0] for a in ARMS], dtype=object)[arm],
            model_version=day.astype(str).astype(object),
            variant=np.array([a[1] for a in ARMS], dtype=object)[arm],
            surface=SURFACES[frame["surface"].to_numpy()],
        )
    elif table == "interactions":
        request = frame["request_id"].to_numpy()
        frame = frame.assign(
            event_type=EVENT_TYPES[frame["kind"].to_numpy()],
            request_id=np.where(request < 0, None, request.astype(object)),
        )
    return frame[list(COLUMNS[table])]


# PostgreSQL takes the two big tables as binary COPY into numeric staging tables (numpy writes
# that format in one pass), then converts with one INSERT ... SELECT: ten times a text COPY.
_STAGES = {
    "recommendations": (
        {
            "request_id": ">i8",
            "user_id": ">i8",
            "item_id": ">i8",
            "rank": ">i4",
            "score": ">f8",
            "arm": ">i4",
            "ts": ">i8",
            "surface": ">i4",
        },
        "request_id::text, user_id::text, item_id::text, rank, score,"
        " (ARRAY['popularity', 'personal', 'personal', 'trending'])[arm + 1],"
        " to_char(ts - interval '3 hours', 'YYYY-MM-DD'),"
        " (ARRAY[NULL, 'control', 'treatment', NULL])[arm + 1], ts,"
        " (ARRAY[{surfaces}])[surface + 1]",
    ),
    "interactions": (
        {
            "user_id": ">i8",
            "item_id": ">i8",
            "kind": ">i4",
            "ts": ">i8",
            "value": ">f8",
            "request_id": ">i8",
            "session_id": ">i8",
        },
        "user_id::text, item_id::text, (ARRAY['click', 'conversion', 'watch'])[kind + 1], ts,"
        " NULLIF(value, 'NaN'), NULLIF(request_id, -1)::text, session_id::text",
    ),
}
_PG_TYPES = {">i8": "BIGINT", ">i4": "INTEGER", ">f8": "DOUBLE PRECISION"}
_PG_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")


def _binary_copy(frame: pd.DataFrame, fields: dict[str, str]) -> bytes:
    """PostgreSQL's binary COPY format: per row a field count, then each field's length and
    big-endian value; timestamps are microseconds since 2000-01-01."""
    layout = [("count", ">i2")]
    for name, kind in fields.items():
        layout += [(f"{name}_len", ">i4"), (name, kind)]
    rows = np.empty(len(frame), dtype=layout)
    rows["count"] = len(fields)
    for name, kind in fields.items():
        rows[f"{name}_len"] = np.dtype(kind).itemsize
        values = frame[name].to_numpy()
        if name == "ts":
            values = (values.astype("datetime64[us]") - _PG_EPOCH).astype(np.int64)
        rows[name] = values
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    return header + rows.tobytes() + b"\xff\xff"


class Tables:
    """The benchmark tables in one database, named `<prefix><reference name>`.

    PostgreSQL tables are UNLOGGED: reads are the same and the load writes no WAL.
    Indexes are built after the bulk load.
    """

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self.engine = create_engine(url)
        self.sqlite = self.engine.dialect.name == "sqlite"

    def name(self, table: str) -> str:
        return f"{self.prefix}{table}"

    def create(self) -> None:
        unlogged = "" if self.sqlite else "UNLOGGED"
        with self.engine.begin() as conn:
            for table, columns in COLUMNS.items():
                body = ", ".join(f"{c} {t}" for c, t in columns.items())
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.name(table)}")
                conn.exec_driver_sql(f"CREATE {unlogged} TABLE {self.name(table)} ({body})")
            if not self.sqlite:
                for table, (fields, _) in _STAGES.items():
                    body = ", ".join(f"{c} {_PG_TYPES[k]}" for c, k in fields.items())
                    body = body.replace("ts BIGINT", "ts TIMESTAMP")
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.name(table)}_stage")
                    conn.exec_driver_sql(f"CREATE UNLOGGED TABLE {self.name(table)}_stage ({body})")

    def append(self, frames: dict[str, pd.DataFrame]) -> None:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for table, frame in frames.items():
                if len(frame):
                    if self.sqlite:
                        self._insert(cursor, table, frame)
                    else:
                        self._copy(cursor, table, frame)
            raw.commit()
        finally:
            raw.close()

    def _insert(self, cursor: Any, table: str, frame: pd.DataFrame) -> None:
        frame = decode(table, frame)
        for column in frame.columns[frame.dtypes.map(pd.api.types.is_datetime64_any_dtype)]:
            # SQLAlchemy's SQLite DATETIME text, so recmon's bound parameters compare as text.
            text = np.datetime_as_string(frame[column].to_numpy("datetime64[us]"), unit="us")
            frame[column] = np.char.replace(text, "T", " ").astype(object)
        rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False)
        marks = ", ".join("?" * len(frame.columns))
        cursor.executemany(f"INSERT INTO {self.name(table)} VALUES ({marks})", rows)

    def _copy(self, cursor: Any, table: str, frame: pd.DataFrame) -> None:
        if table not in _STAGES:  # the small tables
            buffer = io.StringIO()
            frame.to_csv(buffer, header=False, index=False, date_format="%Y-%m-%d %H:%M:%S.%f")
            with cursor.copy(f"COPY {self.name(table)} FROM STDIN (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
            return
        fields, select = _STAGES[table]
        stage = f"{self.name(table)}_stage"
        with cursor.copy(f"COPY {stage} FROM STDIN (FORMAT binary)") as copy:
            copy.write(_binary_copy(frame, fields))
        surfaces = ", ".join(f"'{s}'" for s in SURFACES)
        cursor.execute(
            f"INSERT INTO {self.name(table)} SELECT {select.format(surfaces=surfaces)} FROM {stage}"
        )
        cursor.execute(f"TRUNCATE {stage}")

    def repeat(self, start: datetime, end: datetime, since: datetime) -> None:
        """Copy the rows of [start, end) back in steps of end - start until `since`, with
        distinct request and session ids."""
        step = (end - start).days
        if step * timedelta(days=1) != end - start:
            raise ValueError("the generated span must be whole days")
        copies = math.ceil((start - since) / (end - start))
        with self.engine.begin() as conn:
            for table in ("recommendations", "interactions"):
                name = self.name(table)
                for k in range(1, copies + 1):
                    days = k * step
                    ts = (
                        f"strftime('%Y-%m-%d %H:%M:%S', ts, '-{days} days') || substr(ts, 20)"
                        if self.sqlite
                        else f"ts - interval '{days} days'"
                    )
                    shifted = {
                        "ts": ts,
                        "request_id": f"request_id || '.{k}'",
                        "session_id": f"session_id || '.{k}'",
                    }
                    select = ", ".join(shifted.get(c, c) for c in COLUMNS[table])
                    lo = max(start, since + timedelta(days=days))  # nothing before `since`
                    conn.execute(
                        text(
                            f"INSERT INTO {name} SELECT {select} FROM {name}"
                            " WHERE ts >= :lo AND ts < :hi"
                        ),
                        {"lo": _text(lo), "hi": _text(end)},
                    )

    def finish(self) -> dict[str, int]:
        """Indexes and planner statistics, after the bulk load; returns the rows per table."""
        rows = {}
        with self.engine.begin() as conn:
            for table, specs in INDEXES.items():
                for columns in specs:
                    index = f"{self.name(table)}_{'_'.join(columns)}_idx"
                    conn.exec_driver_sql(
                        f"CREATE INDEX {index} ON {self.name(table)} ({', '.join(columns)})"
                    )
            for table in COLUMNS:
                conn.exec_driver_sql(f"ANALYZE {self.name(table)}")
                count = conn.exec_driver_sql(f"SELECT count(*) FROM {self.name(table)}")
                rows[table] = int(count.scalar_one())
        return rows

    def drop(self) -> None:
        with self.engine.begin() as conn:
            for table in [*COLUMNS, *(f"{t}_stage" for t in _STAGES)]:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.name(table)}")
        self.engine.dispose()


def build(stream: Stream, targets: list[Tables], since: datetime, end: datetime) -> dict[str, int]:
    """Fill every target with the stream's log from its start to `end`, hour by hour, then
    repeat those days back to `since`: the older days are read only as the long windows and the
    drift reference, and generating them at 10 million impressions a day would take hours.
    Returns the rows written per table."""
    for target in targets:
        target.create()
        target.append(stream.tables(since, end))
    t = stream.start
    while t < end:
        t = min(t + timedelta(hours=1), end)
        recs, events = stream.advance(t)
        for target in targets:
            target.append({"recommendations": recs, "interactions": events})
    rows = {}
    for target in targets:
        target.repeat(stream.start, end, since)
        rows = target.finish()
    return rows
