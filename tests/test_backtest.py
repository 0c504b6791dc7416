"""`recmon backtest`: the `for:` logic on hand-made cases, the rule inlining, and the whole loop
(simulated worlds, backfill, the real Prometheus, the generated rules) on small worlds, where
each incident must be found in time and the clean world must not page."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest

from recmon.backtest import Options, analyse, run, table, to_json
from recmon.backtest.alerts import (
    ATTRIBUTED,
    FAST,
    alert_rules,
    episodes,
    firing,
    inline,
    split_recording,
)
from recmon.backtest.report import ScenarioReport
from recmon.backtest.run import configured_windows
from recmon.config import Config
from recmon.generate import rules as generator
from recmon.simulate.scenarios import SCENARIOS
from tests.support.cli import recmon

REPO = Path(__file__).resolve().parents[1]
MINUTE = 60.0
GRID = [i * MINUTE for i in range(20)]


def test_for_fires_only_after_every_evaluation_of_the_duration_returned_the_series() -> None:
    # Returned at minutes 2..7, a gap at 8, then 9..19: `for: 5m` fires at 7 (2..7 is 5 minutes
    # unbroken), and after the gap again only at 14.
    present = [t for t in GRID if 2 * MINUTE <= t <= 7 * MINUTE or t >= 9 * MINUTE]
    assert firing(present, GRID, 5 * MINUTE) == [7 * MINUTE, *[t * MINUTE for t in range(14, 20)]]
    # for: 0 fires whenever the expression returns the series.
    assert firing(present, GRID, 0) == present
    # Never long enough.
    assert firing([3 * MINUTE, 4 * MINUTE], GRID, 5 * MINUTE) == []
    # A series returned from the first evaluation on waits its `for` like a restarted Prometheus.
    assert firing(GRID, GRID, 3 * MINUTE)[0] == 3 * MINUTE


def test_episodes_are_runs_of_consecutive_evaluations() -> None:
    times = [1 * MINUTE, 2 * MINUTE, 3 * MINUTE, 7 * MINUTE, 9 * MINUTE, 10 * MINUTE]
    assert episodes(times, GRID) == [
        (1 * MINUTE, 3 * MINUTE),
        (7 * MINUTE, 7 * MINUTE),
        (9 * MINUTE, 10 * MINUTE),
    ]


def test_inlining_replaces_derived_baselines_with_their_expressions() -> None:
    derived = {"a:lower": "a:mean - 3 * a:width", "a:width": "a:stddev >= 1 or 1"}
    assert inline("x < a:lower and a:lowerish > 0", derived) == (
        "x < (a:mean - 3 * (a:stddev >= 1 or 1)) and a:lowerish > 0"
    )
    with pytest.raises(ValueError, match="label matchers"):
        inline('x < a:lower{window="1h"}', derived)


def test_generated_rules_split_into_backfilled_and_inlined() -> None:
    settings = generator.Settings()
    raw, derived = split_recording(generator.recording_rules(settings)["groups"])
    # promtool can backfill the rules that read raw series only: mean and stddev.
    assert {r["record"].rsplit("_", 1)[1] for r in raw} == {"mean", "stddev"}
    assert {name.rsplit("_", 1)[1] for name in derived} == {"width", "lower", "upper"}
    rules = alert_rules(generator.alert_rules(settings)["groups"], derived)
    names = {r.name for r in rules}
    assert "Watchdog" not in names and "RecmonExporterDown" not in names
    assert "RecmonConversionCollapse" in names and "RecmonKpiAnomaly" in names
    for rule in rules:
        assert not any(name in rule.expr for name in derived), rule.expr
    kinds = {(r.name, r.labels.get("kpi", r.labels.get("reason", ""))): r.kind for r in rules}
    assert kinds[("RecmonDataStale", "")] == FAST
    assert kinds[("RecmonTrafficDrop", "events")] == FAST
    assert kinds[("RecmonTrafficDrop", "requests")] == ATTRIBUTED
    assert kinds[("RecmonKpiAnomaly", "click_conversion_ratio")] == ATTRIBUTED


# The committed rules, with the conversion collapse's evidence gate scaled with the small worlds'
# traffic (10 expected conversions an hour at the demo's 150 requests; these have 60).
SETTINGS = dataclasses.replace(generator.Settings(), collapse_min_expected_conversions=4.0)
# Small worlds: 60 requests an hour, one week of history, short spans.
SMALL = Options(
    scenarios=("payment-outage", "pipeline-stall", "none"),
    weeks=1,
    requests_per_hour=60,
    lead=timedelta(minutes=15),
    fine=timedelta(minutes=75),
    tail=timedelta(0),
    horizon=timedelta(minutes=75),
    clean=timedelta(hours=2),
    chunk=timedelta(hours=2),
    settings=SETTINGS,
    jobs=2,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioReport]:
    work = tmp_path_factory.mktemp("backtest")
    result = run(dataclasses.replace(SMALL, workdir=work))
    reports = analyse(result)
    (work / "report.txt").write_text(table(result, reports))
    assert json.loads(to_json(result, reports))["scenarios"][0]["scenario"] == SMALL.scenarios[0]
    return {r.scenario: r for r in reports}


def first(report: ScenarioReport, alert: str) -> float | None:
    ttd = [row.ttd for row in report.rows if row.alert == alert and row.ttd is not None]
    return min(ttd) if ttd else None


def test_payment_outage_pages_as_a_conversion_collapse(small: dict[str, ScenarioReport]) -> None:
    report = small["payment-outage"]
    start, stop = SCENARIOS["payment-outage"].incident(SMALL.end)
    assert report.incident == (start, stop)
    assert report.detected
    ttd = first(report, "RecmonConversionCollapse")
    # Conversions of the last hour fall under a fifth of the usual ratio once most of the hour
    # is in the outage (at the latest 80% of it, 48 minutes), then `for: 10m`; the 5-minute
    # steps add at most one step.
    floor = _seconds(SMALL.settings.collapse_for)
    assert ttd is not None and floor < ttd <= 65 * MINUTE, report.rows
    assert report.pages == 0  # nothing paged before the incident


def test_pipeline_stall_pages_as_stale_data(small: dict[str, ScenarioReport]) -> None:
    report = small["pipeline-stall"]
    assert report.detected
    ttd = first(report, "RecmonDataStale")
    # The newest event is at most a few minutes older than the stall's start; then
    # `max_data_age` without events and `data_stale_for`.
    settings = SMALL.settings
    floor = _seconds(settings.max_data_age) + _seconds(settings.data_stale_for) - 5 * MINUTE
    assert ttd is not None and floor <= ttd <= 15 * MINUTE, report.rows
    assert report.pages == 0


def test_the_clean_world_does_not_page(small: dict[str, ScenarioReport]) -> None:
    report = small["none"]
    assert report.quiet and report.detected is None
    assert report.pages == 0, [r for r in report.rows if r.page]
    assert report.pages_per_week == 0


# The slower incidents in the same small worlds, over days at hourly steps past the first 75
# minutes: each must be found by the alert it exists to raise, within its incident.
SLOW = dataclasses.replace(
    SMALL,
    scenarios=("traffic-drop", "score-drift", "ab-regression", "stale-model"),
    horizon=timedelta(days=3, hours=12),
    coarse_step=timedelta(hours=1),
)
HOUR = 60 * MINUTE


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioReport]:
    result = run(dataclasses.replace(SLOW, workdir=tmp_path_factory.mktemp("backtest-slow")))
    return {r.scenario: r for r in analyse(result)}


@pytest.mark.parametrize(
    ("scenario", "within"),
    [
        # events of the last hour fall under half their usual once most of the hour is in the
        # drop to 30%, then `for: 15m`
        ("traffic-drop", 90 * MINUTE),
        # the 24h PSI passes 0.2 once a few hours of the day's window hold shifted scores
        ("score-drift", 12 * HOUR),
        # at 60 requests an hour only the 24h window of the arm holds enough clicks
        ("ab-regression", 48 * HOUR),
        # the last version before the freeze was trained that day: 3 days of age, plus `for`
        ("stale-model", 3 * 24 * HOUR),
    ],
)
def test_each_incident_is_found_by_its_alert(
    slow: dict[str, ScenarioReport], scenario: str, within: float
) -> None:
    report = slow[scenario]
    start, stop = SCENARIOS[scenario].incident(SLOW.end)
    assert report.incident == (start, stop)
    assert report.detected, report.rows
    assert report.ttd is not None and 0 < report.ttd <= within, report.ttd
    assert report.ttd <= (stop - start).total_seconds()
    assert report.pages == 0  # nothing paged before the incident
    if scenario == "stale-model":  # not by the age limit being reached early
        assert report.ttd >= 2 * 24 * HOUR, report.ttd


def test_the_worlds_config_computes_the_windows_the_rules_read() -> None:
    assert configured_windows(generator.Settings()) == [
        w.label for w in Config(sources={"s": {"dsn": "sqlite://"}}).windows
    ]
    busy = generator.load_settings(REPO / "examples" / "rules-busy.yml")
    assert configured_windows(busy) == ["15m", "1h", "24h"]


def test_cli_backtest_names_the_settings_file_that_is_wrong(tmp_path: Path) -> None:
    """Layered settings are read before anything is simulated; a wrong one is named."""
    (tmp_path / "typo.yml").write_text("ab_four: 5m\n", encoding="utf-8")
    (tmp_path / "broken.yml").write_text("ab_for: [5m\n", encoding="utf-8")
    busy = str(REPO / "examples" / "rules-busy.yml")
    for name, message in (("typo.yml", "unknown setting(s) ab_four"), ("broken.yml", "line 2")):
        result = recmon("backtest", "--settings", busy, "--settings", str(tmp_path / name))
        assert result.returncode == 1, result.stderr
        assert f"{name}: " in result.stderr and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_cli_backtest_rejects_an_unknown_scenario() -> None:
    result = recmon("backtest", "--scenario", "meteor-strike")
    assert result.returncode == 1
    assert "unknown scenario(s) meteor-strike" in result.stderr


def _seconds(duration: str) -> float:
    from recmon.durations import parse_duration

    return parse_duration(duration).total_seconds()
