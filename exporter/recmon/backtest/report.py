"""What the backtest found, per scenario and alert: detection, time to detect, false pages.

An alert row is an alert name with its rule labels (`kpi`, `direction`, `reason`); its series
(models, variants, windows) are folded into it. For an incident it detects when one of its
series starts firing at or after the incident's start; the time to detect is counted from the
start, and for alerts that read attributed KPIs also from when the incident's first impressions
enter the KPI's window (start + label delay). Pages are Alertmanager's: the critical alerts,
grouped like `alertmanager/alertmanager.yml` (by alert name and model), one page per group each
time it starts firing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from recmon.backtest import alerts as rules_mod
from recmon.backtest.run import QUIET, Backtest, ScenarioResult

TARGETS = {
    rules_mod.FAST: timedelta(minutes=15),
    rules_mod.ATTRIBUTED: timedelta(minutes=30),
    rules_mod.SLOW: timedelta(days=3),
}
WEEK = 7 * 86400.0
# The alert each incident exists to raise (docs/scenarios.md, "Alerts"): detection is judged on
# it; the other alerts an incident raises are listed beside it.
EXPECTED = {
    "payment-outage": "RecmonConversionCollapse",
    "stale-model": "RecmonModelStale",
    "pipeline-stall": "RecmonDataStale",
    "score-drift": "RecmonScoreDrift",
    "ab-regression": "RecmonAbRegression",
    "traffic-drop": "RecmonTrafficDrop",
}


@dataclass
class Row:
    alert: str
    severity: str
    kind: str
    page: bool
    series: int  # series of this alert that fired in the span
    first: float | None  # first firing after the incident's start (a new episode), unix
    before: int  # episodes that started before the incident (false)
    ttd: float | None  # seconds from the incident's start
    ttd_window: float | None  # seconds from start + label delay (attributed alerts)
    met: bool | None  # within the kind's target


@dataclass
class ScenarioReport:
    scenario: str
    quiet: bool
    incident: tuple[datetime, datetime] | None
    start: datetime
    stop: datetime
    expected: str | None  # the alert the incident exists to raise
    detected: bool | None  # it fired after the start; None for a quiet scenario
    ttd: float | None  # its time to detect, seconds from the start
    rows: list[Row]
    pages: int  # page episodes in the span (quiet) or started before the incident
    warnings: int  # warning episodes, likewise
    pages_per_week: float | None  # quiet scenarios: over the span
    steps: int
    seconds: float


def analyse(backtest: Backtest) -> list[ScenarioReport]:
    return [_scenario(r, backtest.label_delay) for r in backtest.results]


def _scenario(result: ScenarioResult, delay: timedelta) -> ScenarioReport:
    span = result.span
    quiet = span.scenario in QUIET
    begin = _unix(span.incident[0]) if span.incident and not quiet else None
    by_row: dict[tuple[str, ...], list] = defaultdict(list)
    for s in result.series:
        by_row[rules_mod.identity(s.labels)].append(s)
    rows = []
    for ident, members in by_row.items():
        rule = result.rules[ident]
        starts = [e[0] for s in members for e in rules_mod.episodes(s.firing, result.grid)]
        after = [t for t in starts if begin is not None and t >= begin]
        first = min(after) if after else None
        ttd = first - begin if first is not None and begin is not None else None
        ttd_window = None
        if ttd is not None and rule.kind == rules_mod.ATTRIBUTED:
            ttd_window = ttd - delay.total_seconds()
        reference = ttd_window if ttd_window is not None else ttd
        rows.append(
            Row(
                alert=rules_mod.describe(ident),
                severity=rule.severity,
                kind=rule.kind,
                page=rule.severity == rules_mod.PAGE_SEVERITY,
                series=len(members),
                first=first,
                before=sum(1 for t in starts if begin is None or t < begin),
                ttd=ttd,
                ttd_window=ttd_window,
                met=None if reference is None else reference <= TARGETS[rule.kind].total_seconds(),
            )
        )
    rows.sort(key=lambda r: (r.ttd is None, r.ttd or 0.0, r.alert))
    pages = _group_episodes(result, "critical", begin)
    warnings = _group_episodes(result, "warning", begin)
    weeks = (result.grid[-1] - result.grid[0]) / WEEK if result.grid else 0.0
    expected = None if quiet else EXPECTED.get(span.scenario)
    hits = [
        r.ttd
        for r in rows
        if r.ttd is not None
        and r.severity != "info"
        and (expected is None or r.alert.split("{")[0] == expected)
    ]
    detected = None if quiet else bool(hits)
    return ScenarioReport(
        scenario=span.scenario,
        quiet=quiet,
        incident=span.incident,
        start=span.start,
        stop=span.stop,
        expected=expected,
        detected=detected,
        ttd=min(hits) if hits else None,
        rows=rows,
        pages=pages,
        warnings=warnings,
        pages_per_week=pages / weeks if quiet and weeks > 0 else None,
        steps=result.steps,
        seconds=result.seconds,
    )


def _group_episodes(result: ScenarioResult, severity: str, begin: float | None) -> int:
    """Notifications Alertmanager would send for `severity`: per group (alert name, model), one
    each time the group goes from nothing firing to something firing. With an incident, only
    those that started before it."""
    groups: dict[tuple[str, ...], set[float]] = defaultdict(set)
    for s in result.series:
        if s.labels.get("severity") == severity:
            groups[tuple(s.labels.get(k, "") for k in rules_mod.GROUP_BY)].update(s.firing)
    count = 0
    for times in groups.values():
        for first, _ in rules_mod.episodes(sorted(times), result.grid):
            if begin is None or first < begin:
                count += 1
    return count


def to_json(backtest: Backtest, reports: Sequence[ScenarioReport]) -> str:
    o = backtest.options
    return json.dumps(
        {
            "options": {
                "end": _iso(o.end),
                "seed": o.seed,
                "weeks": o.weeks,
                "step_seconds": o.step.total_seconds(),
                "coarse_step_seconds": o.coarse_step.total_seconds(),
                "eval_interval_seconds": o.eval_interval.total_seconds(),
                "requests_per_hour": o.requests_per_hour,
                "days_simulated": backtest.days,
            },
            "label_delay_seconds": backtest.label_delay.total_seconds(),
            "page": "severity critical (alertmanager/alertmanager.yml routes it to PagerDuty)",
            "targets_seconds": {k: v.total_seconds() for k, v in TARGETS.items()},
            "runtime_seconds": round(backtest.seconds, 1),
            "timings_seconds": {k: round(v, 1) for k, v in backtest.timings.items()},
            "history_steps": backtest.history_steps,
            "scenarios": [_scenario_json(r) for r in reports],
        },
        indent=2,
    )


def _scenario_json(r: ScenarioReport) -> dict[str, Any]:
    return {
        "scenario": r.scenario,
        "quiet": r.quiet,
        "incident": [_iso(t) for t in r.incident] if r.incident else None,
        "evaluated": [_iso(r.start), _iso(r.stop)],
        "expected_alert": r.expected,
        "detected": r.detected,
        "time_to_detect_seconds": r.ttd,
        "pages": r.pages,
        "warnings": r.warnings,
        "pages_per_week": r.pages_per_week,
        "steps": r.steps,
        "seconds": round(r.seconds, 1),
        "alerts": [
            {
                "alert": row.alert,
                "severity": row.severity,
                "kind": row.kind,
                "page": row.page,
                "series": row.series,
                "first_firing": _iso_unix(row.first) if row.first is not None else None,
                "episodes_before_incident": row.before,
                "time_to_detect_seconds": row.ttd,
                "time_to_detect_from_window_seconds": row.ttd_window,
                "target_seconds": TARGETS[row.kind].total_seconds(),
                "within_target": row.met,
            }
            for row in r.rows
        ],
    }


def table(backtest: Backtest, reports: Sequence[ScenarioReport]) -> str:
    lines = []
    for r in reports:
        if r.quiet:
            head = (
                f"{r.scenario}: no incident; {r.pages} page(s), {r.warnings} warning(s) over "
                f"{_span(r)}"
                + (f" = {r.pages_per_week:.2f} pages/week" if r.pages_per_week is not None else "")
            )
        else:
            start, stop = r.incident  # type: ignore[misc]
            verdict = f"detected in {_duration(r.ttd)}" if r.detected else "NOT DETECTED"
            head = (
                f"{r.scenario}: incident {start:%Y-%m-%d %H:%M} .. {stop:%Y-%m-%d %H:%M}, "
                f"{r.expected or 'any alert'} {verdict}; {r.pages} page(s) and "
                f"{r.warnings} warning(s) before the incident"
            )
        lines.append(head)
        shown = [row for row in r.rows if row.severity != "info"]
        hidden = len(r.rows) - len(shown)
        if shown:
            lines.append(
                f"  {'alert':<58} {'severity':<8} {'kind':<10} {'detect':>9} "
                f"{'from window':>11} {'target':>6}  series  before"
            )
        for row in shown:
            target = "" if row.met is None else ("ok" if row.met else "MISSED")
            lines.append(
                f"  {row.alert:<58} {row.severity:<8} {row.kind:<10} {_duration(row.ttd):>9} "
                f"{_duration(row.ttd_window):>11} {target:>6}  {row.series:>6}  {row.before:>6}"
            )
        if hidden:
            lines.append(f"  (+ {hidden} info alert(s): news, not incidents)")
        lines.append("")
    lines.append(
        f"history: {backtest.days} days simulated, {backtest.options.weeks} weeks of baseline "
        f"history ({backtest.history_steps} steps); "
        + ", ".join(f"{k} {v:.0f} s" for k, v in backtest.timings.items())
        + f"; total {backtest.seconds:.0f} s"
    )
    return "\n".join(lines) + "\n"


def _span(r: ScenarioReport) -> str:
    return _duration((r.stop - r.start).total_seconds())


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    s = abs(int(seconds))
    if s >= 86400:
        return f"{sign}{s // 86400}d{s % 86400 // 3600}h{s % 3600 // 60:02d}m"
    if s >= 3600:
        return f"{sign}{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{sign}{s // 60}m"


def _unix(t: datetime) -> float:
    return t.replace(tzinfo=UTC).timestamp()


def _iso(t: datetime) -> str:
    return t.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _iso_unix(t: float) -> str:
    return _iso(datetime.fromtimestamp(t, UTC).replace(tzinfo=None))
