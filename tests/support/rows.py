"""Hand-built rows and one evaluation over them: the shared vocabulary of the cycle tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from recmon.config import parse_config
from recmon.cycle import Cycle
from recmon.evaluation import Sample
from tests.support.databases import write_tables

Samples = dict[tuple[str, tuple[str, ...]], float]


def at(hhmm: str, day: int = 20) -> datetime:
    """A time on a day of November 2026 (the tests' `now` is the 20th at 12:00)."""
    return datetime.fromisoformat(f"2026-11-{day:02d}T{hhmm}")


def impression(
    request: str | None,
    user: str | None,
    item: str | None,
    rank: int,
    ts: datetime,
    model: str = "m",
    variant: str | None = None,
    score: float | None = 0.5,
) -> dict:
    return {
        "request_id": request,
        "user_id": user,
        "item_id": item,
        "rank": rank,
        "score": score,
        "model": model,
        "model_version": "v1",
        "variant": variant,
        "ts": ts,
    }


def event(
    user: str,
    item: str,
    kind: str,
    ts: datetime,
    request: str | None = None,
    value: float | None = None,
    session: str | None = None,
) -> dict:
    return {
        "user_id": user,
        "item_id": item,
        "event_type": kind,
        "ts": ts,
        "value": value,
        "request_id": request,
        "session_id": session,
    }


def run_cycle(
    url: str, config: str, tables: Mapping[str, Sequence[Mapping[str, Any]]], now: datetime
) -> tuple[Samples, Cycle]:
    """Write `tables` at `url`, evaluate `config` once at `now`; samples by (metric, labels)."""
    write_tables(url, tables)
    cycle = Cycle(parse_config(config))
    try:
        samples = cycle.run(now)
    finally:
        cycle.close()
    return {(s.metric, s.labels): s.value for s in samples}, cycle


def evaluate_once(config: str, now: datetime) -> list[Sample]:
    """The samples a new Cycle of `config` gives at `now` (a restart's first cycle)."""
    cycle = Cycle(parse_config(config))
    try:
        return cycle.run(now)
    finally:
        cycle.close()
