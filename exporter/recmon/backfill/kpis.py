"""The KPIs at every step of a past period, as TSDB blocks.

Each step runs the same cycle as `serve`, with `now` set to that step. The samples are written as
OpenMetrics with timestamps, a chunk of steps per file (OpenMetrics wants each family's samples
together, so a chunk is held in memory), and promtool turns each file into blocks.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recmon.backfill.openmetrics import OpenMetrics
from recmon.backfill.prometheus import create_blocks
from recmon.collector import families
from recmon.config import Config
from recmon.cycle import Cycle

# What only the live process can say (its wall-clock timings and error count) is not history.
LIVE_ONLY = {
    "recmon_cycle_duration_seconds",
    "recmon_last_success_timestamp_seconds",
    "recmon_query_duration_seconds",
    "recmon_cycle_errors",
    "recmon_build",
}
STEPS_PER_FILE = 288  # a day at the default 5m step


def steps(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    t = start
    while t <= end:
        yield t
        t += step


def backfill(
    config: Config,
    start: datetime,
    end: datetime,
    step: timedelta,
    out: Path,
    progress: Callable[[int, int, str], None] = lambda done, total, unit: None,
) -> int:
    """Write blocks for [start, end] into `out` (a Prometheus data directory); returns the
    number of samples written."""
    out.mkdir(parents=True, exist_ok=True)
    work = out / "openmetrics"
    work.mkdir(exist_ok=True)
    times = list(steps(start, end, step))
    written = 0
    cycle = Cycle(config)
    try:
        for first in range(0, len(times), STEPS_PER_FILE):
            chunk = times[first : first + STEPS_PER_FILE]
            samples = OpenMetrics()
            cycle.ahead = chunk[-1]
            for i, now in enumerate(chunk):
                written += _collect(cycle, config, now, samples)
                progress(first + i + 1, len(times), "steps")
            path = work / f"{chunk[0]:%Y%m%dT%H%M%S}.om"
            samples.write(path)
            create_blocks(path, out)
    finally:
        cycle.close()
    shutil.rmtree(work)
    return written


def _collect(cycle: Cycle, config: Config, now: datetime, samples: OpenMetrics) -> int:
    stamp = now.replace(tzinfo=UTC).timestamp()
    count = 0
    for family in families(cycle.run(now), config):
        if family.name in LIVE_ONLY:
            continue
        for sample in family.samples:
            samples.add(
                family.name,
                family.type,
                family.documentation,
                sample.name,
                sample.labels,
                sample.value,
                stamp,
            )
            count += 1
    return count
