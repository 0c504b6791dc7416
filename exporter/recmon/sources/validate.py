"""Rows the KPIs cannot use: counted by reason (recmon_invalid_rows), then left out.

Counts are per minute of the rows' ts, over the minutes being summarised; rows outside them are
still cleaned, since they take part in attribution, but not counted, so each bad row is counted
in one place. A score
or value that is not a finite number (text, infinity) is counted too, but only that value is
left out: the impression or event itself still counts. A row counts under one reason at most.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np
import pandas as pd

NULL_ID = "null_id"
UNKNOWN_ITEM = "unknown_item"
DUPLICATE_RANK = "duplicate_rank"
INVALID_RANK = "invalid_rank"  # text, below 1 or not a whole number: ranks start at 1
NEGATIVE_VALUE = "negative_value"
FUTURE_TIMESTAMP = "future_timestamp"
INVALID_SCORE = "invalid_score"  # text or infinite: the row stays, its score is dropped
INVALID_VALUE = "invalid_value"  # the same for an interaction's value

InvalidCounts = Counter[tuple[str, str, datetime]]  # (table, reason, minute) -> rows
# Every reason of every table, so that recmon_invalid_rows always has its series (0 is a value).
REASONS: dict[str, tuple[str, ...]] = {
    "recommendations": (
        NULL_ID,
        INVALID_RANK,
        UNKNOWN_ITEM,
        DUPLICATE_RANK,
        FUTURE_TIMESTAMP,
        INVALID_SCORE,
    ),
    "interactions": (NULL_ID, NEGATIVE_VALUE, FUTURE_TIMESTAMP, INVALID_VALUE),
}


def clean_impressions(
    frame: pd.DataFrame, start: datetime, end: datetime, invalid: InvalidCounts
) -> pd.DataFrame:
    missing_rank = frame["rank"].isna()
    frame = frame.assign(rank=pd.to_numeric(frame["rank"], errors="coerce"))
    frame, wrong_score = _finite(frame, "score")
    ids = frame[["request_id", "user_id", "item_id", "model", "ts"]].isna().any(axis=1)
    checks = [
        (NULL_ID, ids | missing_rank),
        # text, below 1 or not whole: ranks are the whole numbers from 1
        (INVALID_RANK, frame["rank"].isna() | (frame["rank"] < 1) | (frame["rank"] % 1 != 0)),
        (UNKNOWN_ITEM, frame["known_item"].isna()),
        # a second row at the same rank of one list: the first (by item id) stays
        (
            DUPLICATE_RANK,
            frame.sort_values(["request_id", "rank", "item_id"])
            .duplicated(["request_id", "rank"])
            .reindex(frame.index),
        ),
    ]
    kept = _drop(
        frame, "recommendations", checks, (INVALID_SCORE, wrong_score), start, end, invalid
    )
    return kept.drop(columns="known_item")


def clean_events(
    frame: pd.DataFrame, start: datetime, end: datetime, invalid: InvalidCounts
) -> pd.DataFrame:
    frame, wrong_value = _finite(frame, "value")
    checks = [
        (NULL_ID, frame[["user_id", "item_id", "event_type", "ts"]].isna().any(axis=1)),
        (NEGATIVE_VALUE, frame["value"] < 0),
    ]
    return _drop(frame, "interactions", checks, (INVALID_VALUE, wrong_value), start, end, invalid)


def _finite(frame: pd.DataFrame, column: str) -> tuple[pd.DataFrame, pd.Series]:
    """`column` as floats, with a value that is not a finite number (a database without types can
    hold text) made null; and which rows had one. NaN reads as null, as the drivers give it."""
    numbers = pd.to_numeric(frame[column], errors="coerce").astype(float)
    wrong = frame[column].notna() & (numbers.isna() | np.isinf(numbers))
    return frame.assign(**{column: numbers.mask(wrong)}), wrong


def _drop(
    frame: pd.DataFrame,
    table: str,
    checks: list[tuple[str, pd.Series]],
    nulled: tuple[str, pd.Series],
    start: datetime,
    end: datetime,
    invalid: InvalidCounts,
) -> pd.DataFrame:
    """Drop the rows that fail a check; count each under its first failed check, and the kept
    rows whose value `nulled` made null under its reason (so every row counts once at most)."""
    in_window = (frame["ts"] >= start) & (frame["ts"] < end)
    bad = pd.Series(False, index=frame.index)
    for reason, failed in checks:
        failed = failed.fillna(False).astype(bool) & ~bad
        _count(invalid, table, reason, frame["ts"][failed & in_window])
        bad |= failed
    reason, wrong = nulled
    _count(invalid, table, reason, frame["ts"][wrong & ~bad & in_window])
    return frame[~bad].reset_index(drop=True)


def _count(invalid: InvalidCounts, table: str, reason: str, ts: pd.Series) -> None:
    for minute, n in ts.dt.floor("min").value_counts().items():
        invalid[(table, reason, minute.to_pydatetime())] += int(n)
