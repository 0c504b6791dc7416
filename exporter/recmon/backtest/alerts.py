"""The alert rules as the backtest evaluates them, and Prometheus' `for:` applied to range queries.

Only the recording rules that read raw series are backfilled (the baselines' mean and stddev);
the rest (width, lower, upper) are inlined into the alert expressions that use them, which is the
same PromQL: a scenario's history needs one rule backfill, where rules built on rules need one per
dependency level, each on a Prometheus restarted with the level below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recmon.backfill.rules import name_pattern
from recmon.durations import parse_duration

# Alerts about the exporter process or the alerting pipeline itself, not about the data: a
# backfilled history has no scrapes (`up` is absent) and no cycle timings.
NOT_BACKTESTED = frozenset({"Watchdog", "RecmonExporterDown", "RecmonExporterFailing"})

# alertmanager/alertmanager.yml routes severity critical to the `pager` receiver (PagerDuty);
# Watchdog goes to the dead man's switch, warning and info to chat channels.
PAGE_SEVERITY = "critical"
# Alertmanager groups by these labels: one notification per alert name and model.
GROUP_BY = ("alertname", "model")

# What an alert reads, for the targets: fast signals read undelayed data (raw event counts,
# freshness, source health), attributed ones read KPIs of impressions judged after the label
# delay, slow ones the model registry.
FAST, ATTRIBUTED, SLOW = "fast", "attributed", "slow"
_FAST_ALERTS = {"RecmonConversionCollapse", "RecmonDataStale", "RecmonSourceDown"}
_SLOW_ALERTS = {"RecmonModelStale", "RecmonModelTrainedOnAnomalousData"}
_IDENTITY = ("alertname", "kpi", "direction", "reason")  # one row of the report per these


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str  # with the non-backfilled recording rules inlined
    duration: float  # `for:`, seconds
    labels: Mapping[str, str]  # the rule's own labels (severity, kpi, direction, reason)

    @property
    def severity(self) -> str:
        return self.labels["severity"]

    @property
    def kind(self) -> str:
        if self.name in _FAST_ALERTS or self.labels.get("kpi") == "interaction_events":
            return FAST
        if self.name == "RecmonTrafficDrop" and self.labels.get("reason") == "events":
            return FAST
        return SLOW if self.name in _SLOW_ALERTS else ATTRIBUTED


def split_recording(groups: Sequence[Mapping[str, Any]]) -> tuple[list[dict], dict[str, str]]:
    """The recording rules that read only raw series (to backfill), and the others by name
    (to inline)."""
    rules = [r for g in groups for r in g["rules"] if "record" in r]
    names = {r["record"] for r in rules}
    raw, derived = [], {}
    for rule in rules:
        if any(_mentions(rule["expr"], n) for n in names):
            derived[rule["record"]] = rule["expr"]
        else:
            raw.append(dict(rule))
    return raw, derived


def _mentions(expr: str, name: str) -> bool:
    return re.search(name_pattern(name), expr) is not None


def inline(expr: str, derived: Mapping[str, str]) -> str:
    """`expr` with every derived recording rule replaced by its expression, in parentheses."""
    for _ in range(10):  # nesting depth; the generator's is two
        changed = False
        for name, body in derived.items():
            pattern = name_pattern(name)
            if re.search(pattern + r"\s*\{", expr):
                raise ValueError(f"cannot inline {name} with label matchers in: {expr}")
            expr, n = re.subn(pattern, lambda _m, body=body: f"({body})", expr)
            changed = changed or n > 0
        if not changed:
            return expr
    raise ValueError("recording rules nest too deep to inline")


def alert_rules(groups: Sequence[Mapping[str, Any]], derived: Mapping[str, str]) -> list[AlertRule]:
    return [
        AlertRule(
            name=r["alert"],
            expr=inline(r["expr"], derived),
            duration=parse_duration(str(r.get("for", "0s"))).total_seconds(),
            labels={k: str(v) for k, v in r.get("labels", {}).items()},
        )
        for g in groups
        for r in g["rules"]
        if "alert" in r and r["alert"] not in NOT_BACKTESTED
    ]


def firing(present: Iterable[float], times: Sequence[float], duration: float) -> list[float]:
    """The evaluation times at which an alert with `for: duration` fires, given the times at
    which its expression returned the series: at t when it returned it at every evaluation time
    in [t - duration, t] (Prometheus: pending from the first, firing once `for` has passed)."""
    returned = set(present)
    out = []
    since: float | None = None  # start of the current unbroken run of returned evaluations
    for t in times:
        if t in returned:
            if since is None:
                since = t
            if t - since >= duration:
                out.append(t)
        else:
            since = None
    return out


def episodes(times: Sequence[float], grid: Sequence[float]) -> list[tuple[float, float]]:
    """Runs of consecutive grid times in `times`, as [first, last] pairs."""
    index = {t: i for i, t in enumerate(grid)}
    runs: list[tuple[float, float]] = []
    last = -2
    for t in sorted(times):
        i = index[t]
        if i == last + 1 and runs:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
        last = i
    return runs


def identity(labels: Mapping[str, str]) -> tuple[str, ...]:
    """The report row of an alert series: its name and the rule labels that tell rules apart."""
    return tuple(labels.get(k, "") for k in _IDENTITY)


def describe(ident: Sequence[str]) -> str:
    name, kpi, direction, reason = ident
    extra = ",".join(
        f"{k}={v}" for k, v in (("kpi", kpi), ("direction", direction), ("reason", reason)) if v
    )
    return f"{name}{{{extra}}}" if extra else name
