"""Named incidents the simulator can play into its demo data.

A scenario changes the world one hour and one traffic arm at a time: `Scenario.apply` receives the
`Slot` (which hour, which model/variant, or organic traffic) and the `Effects` chosen so far and
returns new ones. Scenarios compose by applying in sequence: multipliers multiply, shifts add, a
stalled pipeline stays stalled and the earliest freeze of a model wins. The default `apply` sets its
knobs during the incident window `[end - starts_before_end, + duration)` for the arms in scope,
which covers most incidents with data alone (less traffic, fewer clicks or conversions, lost events,
shifted scores); a scenario needing more (a stale model, whose error grows with time) subclasses
`Scenario`, overrides `apply` and, if it needs a new knob, adds a field to `Effects` that the world
honours. Every incident sits at a fixed offset before `end`, so `incident(end)` tells a test or a
backtest when it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Effects:
    """What one hour of one arm does differently from the baseline world."""

    traffic: float = 1.0  # multiplier on requests served (organic: on organic events)
    ctr: float = 1.0  # click probability of an impression (organic: click events)
    conversion: float = 1.0  # probability that a click converts, at the conversion's hour
    delivered: bool = True  # interactions with ts in this hour reach the table
    score_shift: float = 0.0  # added to the logit behind the logged score; ranking unchanged
    estimate_noise: float = 1.0  # multiplier on the sd of the personal model's error
    frozen_at: datetime | None = None  # last retraining: no newer version, no newer item known


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
    variants: frozenset[str] = frozenset()  # empty: every variant of the models in scope
    traffic: float = 1.0
    ctr: float = 1.0
    conversion: float = 1.0
    delivered: bool = True
    score_shift: float = 0.0

    def incident(self, end: datetime) -> tuple[datetime, datetime]:
        """The [start, stop) of the incident for a simulation ending at `end`."""
        start = end - self.starts_before_end
        return start, start + self.duration

    def affects(self, slot: Slot) -> bool:
        start, stop = self.incident(slot.end)
        in_scope = (not self.models or slot.model in self.models) and (
            not self.variants or slot.variant in self.variants
        )
        return in_scope and start <= slot.hour < stop

    def apply(self, slot: Slot, effects: Effects) -> Effects:
        if not self.affects(slot):
            return effects
        return replace(
            effects,
            traffic=effects.traffic * self.traffic,
            ctr=effects.ctr * self.ctr,
            conversion=effects.conversion * self.conversion,
            delivered=effects.delivered and self.delivered,
            score_shift=effects.score_shift + self.score_shift,
        )


@dataclass(frozen=True)
class StaleModel(Scenario):
    """The models in scope are no longer retrained from the incident's start: the registry gets no
    newer version, they never recommend items created since, and their error on the click logit
    grows linearly with the time since (users' tastes move on), so quality declines gradually."""

    noise_growth_per_day: float = 0.0  # added to the error's sd multiplier per day of staleness

    def apply(self, slot: Slot, effects: Effects) -> Effects:
        effects = super().apply(slot, effects)
        if not self.affects(slot):
            return effects
        frozen, _ = self.incident(slot.end)
        days = (slot.hour - frozen) / timedelta(days=1)
        return replace(
            effects,
            estimate_noise=effects.estimate_noise * (1.0 + self.noise_growth_per_day * days),
            frozen_at=frozen if effects.frozen_at is None else min(frozen, effects.frozen_at),
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
        StaleModel(
            "stale-model",
            "personal stops being retrained at end - 7 days: no newer version or items, and its"
            " CTR and conversions decline day by day.",
            starts_before_end=timedelta(days=7),
            duration=timedelta(days=7),
            models=frozenset({"personal"}),
            noise_growth_per_day=0.2,
        ),
        Scenario(
            "pipeline-stall",
            "No interaction of any kind arrives for the last 2 hours; recommendations go on.",
            starts_before_end=timedelta(hours=2),
            duration=timedelta(hours=2),
            delivered=False,
        ),
        Scenario(
            "score-drift",
            "personal's scores are miscalibrated (logit + 1.5) for the last day; ranking and CTR"
            " unchanged.",
            starts_before_end=timedelta(days=1),
            duration=timedelta(days=1),
            models=frozenset({"personal"}),
            score_shift=1.5,
        ),
        Scenario(
            "ab-regression",
            "personal's treatment clicks at 0.8 times control (not 1.05) for the last 2 days.",
            starts_before_end=timedelta(days=2),
            duration=timedelta(days=2),
            models=frozenset({"personal"}),
            variants=frozenset({"treatment"}),
            ctr=0.8 / 1.05,  # the world's treatment lift is 1.05
        ),
        Scenario(
            "traffic-drop",
            "Requests of every model and organic traffic fall to 30% for 3 hours from end - 1 day.",
            starts_before_end=timedelta(days=1),
            duration=timedelta(hours=3),
            traffic=0.3,
        ),
        Scenario(
            "seasonal-peak",
            "Sale day, no incident (must not page): traffic x2 and clicks x1.1 for the last day.",
            starts_before_end=timedelta(days=1),
            duration=timedelta(days=1),
            traffic=2.0,
            ctr=1.1,
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
