"""What a report shows, read from either origin (the database or a Prometheus) the same way.

A loader answers for the KPIs at evenly spaced times ending at the report's end; `collect` asks it
twice: at the report's step over the period (the trends) and at steps of the main window over the
two weeks before the end (the week-over-week table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from recmon.catalogue import (
    CATALOG,
    CLASSIFICATION,
    COMPARISON,
    DRIFT,
    ENGAGEMENT,
    EXPERIMENT,
    METRICS,
    RANKING,
    Metric,
)
from recmon.durations import parse_duration

# Series identity: catalogue name and its labels but `window` (one window per report), sorted.
Labels = tuple[tuple[str, str], ...]
Key = tuple[str, Labels]
Point = tuple[float, float]  # unix time, value
Band = tuple[float, float, float]  # unix time, lower, upper
WEEK = timedelta(days=7)

# The product KPIs: every per-window metric of the catalogue but the exporter's own health.
_GROUPS = (ENGAGEMENT, RANKING, CLASSIFICATION, CATALOG, DRIFT, COMPARISON, EXPERIMENT)
REPORTED: tuple[Metric, ...] = tuple(
    m for m in METRICS if m.group in _GROUPS and "window" in m.labels
)


class ReportError(Exception):
    """The report cannot be made; the message says why."""


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    labels: Labels  # the alert's other labels (kpi, model, direction, ...)
    start: float  # unix time the condition began (ALERTS_FOR_STATE), else first seen firing
    end: float  # last seen firing
    ongoing: bool  # still firing at the report's end


class Loader(Protocol):
    origin: str  # where the numbers come from, safe to print (no secrets)
    window: str  # the main window's label

    def values(self, times: Sequence[datetime]) -> dict[Key, list[Point]]:
        """The REPORTED metrics of the main window at `times` (evenly spaced, ascending)."""

    def bands(self, times: Sequence[datetime]) -> dict[Key, list[Band]] | None:
        """The baseline band of each banded series at `times`; None when the origin has none."""

    def alerts(self, times: Sequence[datetime]) -> list[Alert] | None:
        """Alerts that fired between the first and the last of `times`; None when unknown."""


@dataclass(frozen=True)
class History:
    origin: str
    window: str
    start: datetime
    end: datetime
    step: timedelta
    trends: dict[Key, list[Point]]
    weekly: dict[Key, list[Point]]  # the main window at steps of weekly_step, two weeks
    weekly_step: timedelta
    bands: dict[Key, list[Band]] | None
    alerts: list[Alert] | None


def times(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Every step back from `end` (so the end itself is always there) down to `start`."""
    count = int((end - start) / step)
    return [end - i * step for i in range(count, -1, -1)]


def unix(t: datetime) -> float:
    return t.replace(tzinfo=UTC).timestamp()


def collect(loader: Loader, start: datetime, end: datetime, step: timedelta) -> History:
    if end <= start:
        raise ReportError("--to must be after --from")
    if step <= timedelta(0):
        raise ReportError("--step must be positive")
    trend_times = times(start, end, step)
    # The week-over-week values tile each week with the main window (with the default 24h, the
    # 7 daily values); a window shorter than the step would cost a cycle per window, so then
    # the step samples it instead.
    weekly_step = max(parse_duration(loader.window), step)
    weekly_times = times(end - 2 * WEEK + weekly_step, end, weekly_step)
    return History(
        origin=loader.origin,
        window=loader.window,
        start=trend_times[0],
        end=end,
        step=step,
        trends=loader.values(trend_times),
        weekly=loader.values(weekly_times),
        weekly_step=weekly_step,
        bands=loader.bands(trend_times),
        alerts=loader.alerts(trend_times),
    )
