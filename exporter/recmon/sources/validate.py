"""Rows the KPIs cannot use: counted by reason (recmon_invalid_rows), then left out.

Counts cover the rows of the largest evaluated window; rows outside it are still cleaned, since
they take part in attribution, but not counted, so each bad row is counted in one place. A score
or value that is not a finite number (text, infinity) is counted too, but only that value is
left out: the impression or event itself still counts.
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

InvalidCounts = Counter[tuple[str, str]]  # (table, reason) -> rows
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
    frame = _numbers(frame, "score", "recommendations", INVALID_SCORE, start, end, invalid)
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
    return _drop(frame, "recommendations", checks, start, end, invalid).drop(columns="known_item")


def clean_events(
    frame: pd.DataFrame, start: datetime, end: datetime, invalid: InvalidCounts
) -> pd.DataFrame:
    frame = _numbers(frame, "value", "interactions", INVALID_VALUE, start, end, invalid)
    checks = [
        (NULL_ID, frame[["user_id", "item_id", "event_type", "ts"]].isna().any(axis=1)),
        (NEGATIVE_VALUE, frame["value"] < 0),
    ]
    return _drop(frame, "interactions", checks, start, end, invalid)


def _numbers(
    frame: pd.DataFrame,
    column: str,
    table: str,
    reason: str,
    start: datetime,
    end: datetime,
    invalid: InvalidCounts,
) -> pd.DataFrame:
    """`column` as floats: a value that is not a finite number (a database without types can hold
    text) is counted under `reason` and becomes null. NaN reads as null, as the drivers give it."""
    numbers = pd.to_numeric(frame[column], errors="coerce").astype(float)
    bad = frame[column].notna() & (numbers.isna() | np.isinf(numbers))
    in_window = (frame["ts"] >= start) & (frame["ts"] < end)
    invalid[(table, reason)] += int((bad & in_window).sum())
    return frame.assign(**{column: numbers.mask(bad)})


def _drop(
    frame: pd.DataFrame,
    table: str,
    checks: list[tuple[str, pd.Series]],
    start: datetime,
    end: datetime,
    invalid: InvalidCounts,
) -> pd.DataFrame:
    in_window = (frame["ts"] >= start) & (frame["ts"] < end)
    bad = pd.Series(False, index=frame.index)
    for reason, failed in checks:
        failed = failed.fillna(False).astype(bool) & ~bad  # a row counts under its first reason
        invalid[(table, reason)] += int((failed & in_window).sum())
        bad |= failed
    return frame[~bad].reset_index(drop=True)
