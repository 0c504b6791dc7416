"""A minute's partial aggregates per group, and how they are made from labelled impressions."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from recmon.kpis.classification import log_loss_terms
from recmon.kpis.ranking import METRICS as RANKING_METRICS

Group = tuple[str, ...]  # (model, variant, *dimension values)

# Additive per group: a window's value is the sum of its minutes'.
BASE_FIELDS = (
    "impressions",
    "clicks",
    "conversions",
    "watch_seconds",
    "requests",
    "scored",  # impressions with a finite score
    "positives",  # ... of them clicked
    "log_loss",  # sum of the per-impression log loss over the scored ones
    "out_of_range",  # scored outside [0, 1]: log loss is then undefined
    "predicted",  # score >= threshold
    "true_positives",
    "correct",
    "aged",  # impressions whose item has a created_at
    "age_seconds",
    "new_items",
    "sessions",
    "session_seconds",
    "evaluated",  # requests with a nonempty relevant set
)


def fields(ks: Sequence[int]) -> tuple[str, ...]:
    return BASE_FIELDS + tuple(f"{m}@{k}" for k in ks for m in RANKING_METRICS)


@dataclass(frozen=True, slots=True)
class Packed:
    """An array kept zlib-compressed: a window keeps every minute's codes and counts, and at a
    busy source most of a minute's items and score bins are distinct, so packed they take about
    a fifth of the memory (docs/scaling.md). With `delta`, the differences are packed: sorted
    codes then compress about as well as counts do."""

    data: bytes
    dtype: np.dtype
    delta: bool

    @classmethod
    def of(cls, array: np.ndarray, delta: bool = False) -> Packed:
        # codes are non-negative int32, so a difference fits the dtype and cumsum undoes it
        raw = np.diff(array, prepend=np.zeros(1, array.dtype)) if delta else array
        return cls(zlib.compress(np.ascontiguousarray(raw).tobytes(), 1), array.dtype, delta)

    def array(self) -> np.ndarray:
        """The array (read only)."""
        raw = np.frombuffer(zlib.decompress(self.data), dtype=self.dtype)
        return np.cumsum(raw, dtype=self.dtype) if self.delta else raw


@dataclass(frozen=True, slots=True)
class Lists:
    """Each user's latest list of one model within a minute (for the comparisons), as packed
    columns: a window holds one for every list of its compared models' users. Only the minute
    orders two lists of a user from different minutes, so no time or request id is kept."""

    users: Packed  # user codes (int32), distinct, ascending
    starts: Packed  # int32, len(users) + 1: user i's list is items[starts[i]:starts[i + 1]]
    items: Packed  # item codes (int32) in rank order, repeats removed, rank <= the largest k
    ranks: Packed  # their ranks (float32: whole numbers from 1)

    def open(self) -> OpenLists:
        return OpenLists(self.starts.array(), self.items.array(), self.ranks.array())


@dataclass(frozen=True, slots=True)
class OpenLists:
    """Lists' columns unpacked."""

    starts: np.ndarray
    items: np.ndarray
    ranks: np.ndarray

    def ranked(self, row: int) -> tuple[list[int], list[float]]:
        lo, hi = self.starts[row], self.starts[row + 1]
        return self.items[lo:hi].tolist(), self.ranks[lo:hi].tolist()


def gather(places: Sequence[tuple[Lists, int]]) -> OpenLists:
    """The lists at `places` (a Lists and a row of it) as one OpenLists whose row j is places[j].
    Each Lists is unpacked once and only the rows asked for are kept: a first cycle asks for
    every user's lists, and a week of unpacked minutes would not fit where their rows do."""
    by_lists: dict[int, tuple[Lists, list[int]]] = {}
    for j, (lists, _) in enumerate(places):
        by_lists.setdefault(id(lists), (lists, []))[1].append(j)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    lengths = np.zeros(len(places), dtype=np.int64)
    for lists, js in by_lists.values():
        opened = lists.open()
        rows = np.array([places[j][1] for j in js])
        lo, n = opened.starts[rows], opened.starts[rows + 1] - opened.starts[rows]
        taken = _ranges(lo, n)
        parts.append((opened.items[taken], opened.ranks[taken]))
        lengths[js] = n
    # the rows are laid out by Lists: move each to place j's position
    laid = np.concatenate([js for _, js in by_lists.values()] or [np.zeros(0, dtype=np.int64)])
    at = np.zeros(len(places), dtype=np.int64)
    at[laid] = np.cumsum(lengths[laid]) - lengths[laid]
    order = _ranges(at, lengths)
    items = np.concatenate([p[0] for p in parts] or [np.zeros(0, dtype=np.int32)])
    ranks = np.concatenate([p[1] for p in parts] or [np.zeros(0, dtype=np.float32)])
    return OpenLists(np.concatenate([[0], np.cumsum(lengths)]), items[order], ranks[order])


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indexes of the ranges [starts[i], starts[i] + lengths[i]) end to end."""
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())


@dataclass
class Minute:
    """What one minute of impressions adds to a window. `horizon` is the newest time its labels
    saw: a minute is reused while that is still its horizon."""

    horizon: datetime
    labelled: bool = True  # False: scores only, for a drift reference older than every window
    # Codes and counts are packed int32: a window keeps every minute's, and codes (ids, score
    # bins) and a minute's counts stay far below 2**31. Codes are distinct and ascending.
    sums: dict[Group, np.ndarray] = field(default_factory=dict)
    users: dict[Group, Packed] = field(default_factory=dict)  # user codes
    items: dict[Group, tuple[Packed, Packed]] = field(default_factory=dict)  # codes, n
    # score bin codes (ScoreBins), impressions in that bin, clicked ones among them
    scores: dict[Group, tuple[Packed, Packed, Packed]] = field(default_factory=dict)
    lists: dict[str, Lists] = field(default_factory=dict)  # by model
    invalid: Counter[tuple[str, str]] = field(default_factory=Counter)

    def hold(self, users: np.ndarray, items: np.ndarray) -> None:
        """Mark the user and item codes this minute holds in `users` and `items` (masks)."""
        for codes in self.users.values():
            users[codes.array()] = True
        for codes, _ in self.items.values():
            items[codes.array()] = True
        for lists in self.lists.values():
            users[lists.users.array()] = True
            items[lists.items.array()] = True

    def scores_only(self) -> Minute:
        """What a drift reference needs of a minute older than every window."""
        return Minute(self.horizon, labelled=False, scores=self.scores)


def split(frame: pd.DataFrame, by: list[str], columns: list[str]) -> Iterator[tuple[tuple, dict]]:
    """(key, {column: array}) for each distinct value of `by`, in one sort."""
    if frame.empty:
        return
    frame = frame.sort_values(by, kind="stable")
    change = np.zeros(len(frame), dtype=bool)
    change[0] = True
    for c in by:  # column by column: a frame-wide to_numpy() would box every timestamp
        column = frame[c].to_numpy()
        change[1:] |= column[1:] != column[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(frame))
    keys = zip(*(frame[c].iloc[starts].tolist() for c in by), strict=True)
    arrays = {c: frame[c].to_numpy() for c in columns}
    for key, a, b in zip(keys, starts, ends, strict=True):
        yield key, {c: values[a:b] for c, values in arrays.items()}


def additive(rows: pd.DataFrame, threshold: float, new_item_seconds: float) -> pd.DataFrame:
    """The per-impression terms of BASE_FIELDS (rows: labelled impressions)."""
    s = rows["score"].to_numpy(dtype=float)
    scored = np.isfinite(s)
    y = rows["clicked"].to_numpy(dtype=bool)
    predicted = np.where(scored, s, -np.inf) >= threshold
    age = (rows["ts"] - rows["created_at"]).dt.total_seconds().to_numpy()
    aged = ~np.isnan(age)
    return pd.DataFrame(
        {
            "impressions": 1.0,
            "clicks": y.astype(float),
            "conversions": rows["converted"].to_numpy(dtype=float),
            "watch_seconds": rows["watch_seconds"].to_numpy(dtype=float),
            "scored": scored.astype(float),
            "positives": (scored & y).astype(float),
            "log_loss": np.where(scored, log_loss_terms(np.where(scored, s, 0.5), y), 0.0),
            "out_of_range": (scored & ((s < 0) | (s > 1))).astype(float),
            "predicted": predicted.astype(float),
            "true_positives": (predicted & y).astype(float),
            "correct": (scored & (predicted == y)).astype(float),
            "aged": aged.astype(float),
            "age_seconds": np.where(aged, age, 0.0),
            "new_items": (aged & (age < new_item_seconds)).astype(float),
        },
        index=rows.index,
    )


def summarize(
    minutes: dict[datetime, Minute],
    rows: pd.DataFrame,
    keys: list[str],
    terms: pd.DataFrame,
    per_request: pd.DataFrame,
    sessions: pd.DataFrame,
    compared: set[str],
    ks: Sequence[int],
) -> None:
    """Fill `minutes` (one empty Minute per minute of the range) from the range's rows.

    rows: labelled impressions with `minute`, the group keys, user_code, item_code, score_code
    (-1 without a finite score); terms: additive() of rows; per_request: ranking metrics per
    evaluated request with its minute and group; sessions: minute, group and seconds of each
    (session, serving group)."""
    by = ["minute", *keys]
    names = fields(ks)
    sums = pd.concat(
        [
            terms.assign(**{c: rows[c] for c in by}).groupby(by, sort=False).sum(),
            rows.groupby(by, sort=False)["request_id"].nunique().rename("requests"),
            per_request.groupby(by, sort=False).sum(numeric_only=True),
            per_request.groupby(by, sort=False).size().rename("evaluated"),
            sessions.groupby(by, sort=False)["seconds"]
            .agg(["size", "sum"])
            .set_axis(["sessions", "session_seconds"], axis=1),
        ],
        axis=1,
    )
    sums = sums.reindex(columns=list(names), fill_value=0.0).fillna(0.0)
    for (minute, *group), vector in zip(sums.index, sums.to_numpy(dtype=float), strict=True):
        minutes[minute].sums[tuple(group)] = vector
    users = rows[[*by, "user_code"]].drop_duplicates().sort_values("user_code")
    for (minute, *group), part in split(users, by, ["user_code"]):
        minutes[minute].users[tuple(group)] = _codes(part["user_code"])
    items = rows.groupby([*by, "item_code"], sort=False).size().rename("n").reset_index()
    for (minute, *group), part in split(items.sort_values("item_code"), by, ["item_code", "n"]):
        minutes[minute].items[tuple(group)] = (_codes(part["item_code"]), _counts(part["n"]))
    summarize_scores(minutes, rows, keys)
    if compared:
        _lists(minutes, rows[rows["model"].isin(compared)], max(ks))


def summarize_scores(minutes: dict[datetime, Minute], rows: pd.DataFrame, keys: list[str]) -> None:
    """Fill the score histograms of `minutes` (rows: impressions with `minute`, the group keys,
    score_code and clicked): all a drift reference keeps of a minute."""
    by = ["minute", *keys]
    scored = rows[rows["score_code"] >= 0]
    codes = (
        scored.groupby([*by, "score_code"], sort=False)["clicked"]
        .agg(["size", "sum"])
        .reset_index()
        .sort_values("score_code")
    )
    for (minute, *group), part in split(codes, by, ["score_code", "size", "sum"]):
        minutes[minute].scores[tuple(group)] = (
            _codes(part["score_code"]),
            _counts(part["size"]),
            _counts(part["sum"]),
        )


def _lists(minutes: dict[datetime, Minute], rows: pd.DataFrame, depth: int) -> None:
    """Each user's latest list per model and minute (comparison.latest_lists, per minute)."""
    if rows.empty:
        return
    requests = rows.groupby("request_id", sort=False).agg(
        user_code=("user_code", "first"), model=("model", "first"), ts=("ts", "min")
    )
    requests["minute"] = requests["ts"].dt.floor("min")
    latest = (
        requests.reset_index()
        .sort_values(["ts", "request_id"])
        .drop_duplicates(["minute", "model", "user_code"], keep="last")
        .sort_values(["minute", "model", "user_code"])
        .set_index("request_id")
    )
    top = rows[rows["request_id"].isin(latest.index) & (rows["rank"] <= depth)]
    top = top.sort_values(["rank", "item_id"]).drop_duplicates(["request_id", "item_id"])
    # the lists laid end to end in `latest`'s order, each in rank order (a stable sort)
    owner = latest.index.get_indexer(top["request_id"])
    order = np.argsort(owner, kind="stable")
    items = top["item_code"].to_numpy(dtype=np.int32)[order]
    ranks = top["rank"].to_numpy(dtype=np.float32)[order]
    starts = np.searchsorted(owner[order], np.arange(len(latest) + 1))
    users = latest["user_code"].to_numpy(dtype=np.int32)
    for (minute, model), part in split(
        latest.assign(row=np.arange(len(latest))), ["minute", "model"], ["row"]
    ):
        lo, hi = part["row"][0], part["row"][-1] + 1
        minutes[minute].lists[model] = Lists(
            _codes(users[lo:hi]),
            Packed.of((starts[lo : hi + 1] - starts[lo]).astype(np.int32), delta=True),
            Packed.of(items[starts[lo] : starts[hi]]),
            Packed.of(ranks[starts[lo] : starts[hi]]),
        )


def _codes(ascending: np.ndarray | pd.Series) -> Packed:
    return Packed.of(np.asarray(ascending, dtype=np.int32), delta=True)


def _counts(counts: np.ndarray | pd.Series) -> Packed:
    return Packed.of(np.asarray(counts, dtype=np.int32))
