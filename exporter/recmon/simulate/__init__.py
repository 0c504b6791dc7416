"""Demo data: a simulated recommender writing the reference schema, with named incidents.

`simulate()` is what `recmon simulate` calls; `SCENARIOS` lists the incidents it can play.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from recmon.simulate.scenarios import SCENARIOS, Effects, Scenario, Slot, resolve
from recmon.simulate.world import REQUESTS_PER_HOUR, generate
from recmon.simulate.writer import write

__all__ = ["SCENARIOS", "Effects", "Scenario", "SimulationSummary", "Slot", "simulate"]


@dataclass(frozen=True)
class SimulationSummary:
    rows: Mapping[str, int]  # table name -> rows written
    start: datetime
    end: datetime
    scenarios: tuple[str, ...] = ()


def simulate(
    url: str,
    days: int = 14,
    seed: int = 42,
    end: datetime | None = None,
    scenarios: Sequence[str] = (),
    requests_per_hour: float = REQUESTS_PER_HOUR,
) -> SimulationSummary:
    """Replace the reference tables at `url` with `days` of simulated data ending at `end`, at
    `requests_per_hour` on a weekly average.

    `end` defaults to now (UTC, truncated to the minute); an aware `end` is converted to naive
    UTC, which is what the tables hold. The data is a function of (seed, end, days, scenarios).
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    chosen = resolve(scenarios)
    if end is None:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
    if end.tzinfo is not None:
        end = end.astimezone(UTC).replace(tzinfo=None)
    start = end - timedelta(days=days)
    frames = generate(seed, start, end, chosen, requests_per_hour)
    write(url, frames)
    return SimulationSummary(
        rows={name: len(frame) for name, frame in frames.items()},
        start=start,
        end=end,
        scenarios=tuple(s.name for s in chosen),
    )
