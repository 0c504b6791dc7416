"""Named incidents the simulator can play into its demo data.

A scenario changes the world one hour and one traffic arm at a time: `Scenario.apply` receives the
`Slot` (which hour, which model/variant, or organic traffic) and the `Effects` chosen so far and
returns new ones. Scenarios compose by applying in sequence. The default `apply` multiplies during
the incident window `[end - starts_before_end, + duration)`, which covers most incidents with data
alone; a scenario needing more (a stale model, drifting scores) subclasses `Scenario`, overrides
`apply` and, if it needs a new knob, adds a field to `Effects` that the world honours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Effects:
    """Multipliers on the baseline behaviour of one hour of one arm."""

    traffic: float = 1.0  # requests served
    ctr: float = 1.0  # click probability of an impression (organic: click events)
    conversion: float = 1.0  # probability that a click converts, at the conversion's hour


@dataclass(frozen=True)
class Slot:
    """One hour of one (model, variant)'s traffic; model None is organic (unrecommended) traffic."""

    hour: datetime  # start of the hour, naive UTC
    end: datetime  # end of the simulated period, for incidents placed relative to it
    model: str | None
    variant: str | None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    starts_before_end: timedelta = timedelta(days=1)
    duration: timedelta = timedelta(0)
    models: frozenset[str] = frozenset()  # empty: every arm, organic traffic included
    traffic: float = 1.0
    ctr: float = 1.0
    conversion: float = 1.0

    def incident(self, end: datetime) -> tuple[datetime, datetime]:
        """The [start, stop) of the incident for a simulation ending at `end`."""
        start = end - self.starts_before_end
        return start, start + self.duration

    def affects(self, slot: Slot) -> bool:
        start, stop = self.incident(slot.end)
        in_scope = not self.models or slot.model in self.models
        return in_scope and start <= slot.hour < stop

    def apply(self, slot: Slot, effects: Effects) -> Effects:
        if not self.affects(slot):
            return effects
        return replace(
            effects,
            traffic=effects.traffic * self.traffic,
            ctr=effects.ctr * self.ctr,
            conversion=effects.conversion * self.conversion,
        )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("none", "No incident: the baseline world."),
        Scenario(
            "payment-outage",
            "Payments fail for 4 hours from end - 1 day: clicks go on, conversions stop.",
            starts_before_end=timedelta(days=1),
            duration=timedelta(hours=4),
            conversion=0.0,
        ),
    )
}


def resolve(names: Sequence[str]) -> tuple[Scenario, ...]:
    """The scenarios named, in order; ValueError on an unknown name."""
    if isinstance(names, str):  # a bare string would otherwise iterate as characters
        names = [names]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(SCENARIOS))}"
        )
    return tuple(SCENARIOS[n] for n in names)
