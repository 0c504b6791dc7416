"""The generated Prometheus rules: promtool's checks and unit tests (prometheus/tests/*.yml, one
file per alert), the alert contract of SPEC.md read statically, and the generator's settings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from recmon.catalogue import BY_NAME
from tests.support.stack import binary

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "prometheus" / "rules"
RULE_FILES = (RULES / "recmon-baselines.yml", RULES / "recmon-alerts.yml")
UNIT_TESTS = sorted((REPO / "prometheus" / "tests").glob("*.yml"))

# SPEC.md, "Alerts (contract: names and labels)".
SPEC_ALERTS = {
    "RecmonKpiAnomaly",
    "RecmonConversionCollapse",
    "RecmonTrafficDrop",
    "RecmonScoreDrift",
    "RecmonAbRegression",
    "RecmonModelStale",
    "RecmonModelTrainedOnAnomalousData",
    "RecmonDataStale",
    "RecmonSourceDown",
    "RecmonExporterDown",
    "RecmonExporterFailing",
    "Watchdog",
}
SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = {"summary", "description", "runbook_url", "dashboard_url"}


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def alert_rules(path: Path = RULES / "recmon-alerts.yml") -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def unit_test_file(alert: str) -> str:
    """RecmonModelTrainedOnAnomalousData -> model-trained-on-anomalous-data.yml"""
    name = alert.removeprefix("Recmon")
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower() + ".yml"


def test_promtool_checks_the_rule_files() -> None:
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", *map(str, RULE_FILES))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("SUCCESS") == len(RULE_FILES), output
    assert "WARNING" not in output and "duplicate" not in output.lower(), output


@pytest.mark.parametrize("path", UNIT_TESTS, ids=[p.name for p in UNIT_TESTS])
def test_promtool_unit_tests(path: Path) -> None:
    result = promtool("test", "rules", str(path.relative_to(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_its_unit_test_file() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    present = {path.name for path in UNIT_TESTS}
    missing = {name: unit_test_file(name) for name in names if unit_test_file(name) not in present}
    assert not missing, f"no prometheus/tests file for: {missing}"
    for name in names:
        text = (REPO / "prometheus" / "tests" / unit_test_file(name)).read_text(encoding="utf-8")
        assert f"alertname: {name}\n" in text, f"{unit_test_file(name)} never tests {name}"


def test_unit_tests_load_both_rule_files() -> None:
    for path in UNIT_TESTS:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert config["rule_files"] == [
            "../rules/recmon-baselines.yml",
            "../rules/recmon-alerts.yml",
        ], path.name
        # Without an order promtool evaluates the groups in random order, and an alert may read
        # the previous step's baseline (or none).
        assert config["group_eval_order"] == ["recmon-baselines", "recmon-alerts"], path.name


def test_alert_names_are_the_spec_list() -> None:
    assert {rule["alert"] for rule in alert_rules()} == SPEC_ALERTS


def test_every_alert_has_severity_and_annotations() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert set(annotations) >= ANNOTATIONS, name
        assert all(annotations[key].strip() for key in ANNOTATIONS), name
        assert annotations["summary"].endswith("."), (name, annotations["summary"])
        assert annotations["runbook_url"].endswith("#" + name.lower()), name
        assert "/d/" in annotations["dashboard_url"], name


def test_kpi_anomaly_labels() -> None:
    """kpi is a catalogue metric the band watches, direction drop or spike; the bad direction
    pages (warning for low sensitivity), the other one informs."""
    seen = set()
    for rule in alert_rules():
        if rule["alert"] != "RecmonKpiAnomaly":
            continue
        labels = rule["labels"]
        metric = BY_NAME.get(labels["kpi"])
        assert metric is not None and metric.banded, labels
        assert labels["direction"] in {"drop", "spike"}, labels
        if labels["direction"] == metric.bad:
            expected = "warning" if metric.sensitivity == "low" else "critical"
        else:
            expected = "info"
        assert labels["severity"] == expected, labels
        assert f"recmon:{metric.name}:baseline_" in rule["expr"], rule["expr"]
        seen.add((labels["kpi"], labels["direction"]))
    banded = {name for name, metric in BY_NAME.items() if metric.banded}
    assert seen == {(kpi, d) for kpi in banded for d in ("drop", "spike")}


def generate(tmp_path: Path, *settings: str) -> subprocess.CompletedProcess[str]:
    """The generator's command line with one --settings file per text, in order."""
    layers = []
    for i, text in enumerate(settings):
        path = tmp_path / f"settings-{i}.yml"
        path.write_text(text, encoding="utf-8")
        layers += ["--settings", str(path)]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "recmon.generate.rules",
            *layers,
            "--out",
            str(tmp_path / "rules"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def generated_rules(tmp_path: Path, *settings: str) -> list[Path]:
    """The rule files rendered with `settings`, which promtool must pass without a lint."""
    result = generate(tmp_path, *settings)
    assert result.returncode == 0, result.stdout + result.stderr
    files = [tmp_path / "rules" / path.name for path in RULE_FILES]
    check = promtool("check", "rules", "--lint=all", "--lint-fatal", *map(str, files))
    assert check.returncode == 0, check.stdout + check.stderr
    return files


# Under the settings of test_generator_settings a PSI of 0.25 does not page, 0.35 pages after 10m.
SCORE_DRIFT_TEST = """\
rule_files: [rules/recmon-baselines.yml, rules/recmon-alerts.yml]
group_eval_order: [recmon-baselines, recmon-alerts]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'recmon_score_psi{source="main",model="m",variant="a",window="24h"}'
        values: '0.1x4 0.35x20'
      - series: 'recmon_impressions{source="main",model="m",variant="a",window="24h"}'
        values: '1000x25'
      - series: 'recmon_score_psi{source="main",model="m",variant="b",window="24h"}'
        values: '0.25x25'
      - series: 'recmon_impressions{source="main",model="m",variant="b",window="24h"}'
        values: '1000x25'
    promql_expr_test:
      - expr: ALERTS{alertname="RecmonScoreDrift"}
        eval_time: 14m
        exp_samples:
          - labels: 'ALERTS{alertname="RecmonScoreDrift", alertstate="pending", severity="warning",
              source="main", model="m", variant="a", window="24h"}'
            value: 1
      - expr: ALERTS{alertname="RecmonScoreDrift"}
        eval_time: 15m
        exp_samples:
          - labels: 'ALERTS{alertname="RecmonScoreDrift", alertstate="firing", severity="warning",
              source="main", model="m", variant="a", window="24h"}'
            value: 1
"""


def test_generator_settings(tmp_path: Path) -> None:
    files = generated_rules(tmp_path, "psi_threshold: 0.3\nscore_drift_for: 10m\n")

    (drift,) = [r for r in alert_rules(files[1]) if r["alert"] == "RecmonScoreDrift"]
    assert re.search(r"recmon_score_psi\S* > 0\.3\n", drift["expr"]), drift["expr"]
    assert drift["for"] == "10m"
    assert "over 0.3 is" in drift["annotations"]["description"]
    others = [r for r in alert_rules(files[1]) if r["alert"] == "RecmonKpiAnomaly"]
    assert {r["for"] for r in others} == {"20m"}

    (tmp_path / "drift.yml").write_text(SCORE_DRIFT_TEST, encoding="utf-8")
    unit = promtool("test", "rules", "drift.yml", cwd=tmp_path)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_busy_product_settings_read_the_short_windows(tmp_path: Path) -> None:
    """examples/rules-busy.yml (backtested in docs/alert-quality.md) renders valid rules whose
    fast signals read the 15m window and whose score drift reads the 1h one."""
    settings = (REPO / "examples" / "rules-busy.yml").read_text(encoding="utf-8")
    files = generated_rules(tmp_path, settings)

    rules = alert_rules(files[1])
    (collapse,) = [r for r in rules if r["alert"] == "RecmonConversionCollapse"]
    assert set(re.findall(r'window="(\w+)"', collapse["expr"])) == {"15m", "24h"}
    assert collapse["for"] == "1m"
    drops = [r for r in rules if r["alert"] == "RecmonTrafficDrop"]
    assert {r["for"] for r in drops} == {"1m"}
    assert all('window="15m"' in r["expr"] for r in drops)
    (drift,) = [r for r in rules if r["alert"] == "RecmonScoreDrift"]
    assert 'recmon_score_psi{window="1h"} > 0.2' in drift["expr"], drift["expr"]
    assert drift["for"] == "10m"


def test_large_product_settings_layer_over_the_busy_ones(tmp_path: Path) -> None:
    """examples/rules-large.yml over rules-busy.yml (as docs/alert-quality.md backtests them):
    the busy product's windows, and a stricter, quicker A/B regression alert."""
    busy, large = (
        (REPO / "examples" / name).read_text(encoding="utf-8")
        for name in ("rules-busy.yml", "rules-large.yml")
    )
    files = generated_rules(tmp_path, busy, large)
    rules = alert_rules(files[1])
    (ab,) = [r for r in rules if r["alert"] == "RecmonAbRegression"]
    assert "recmon_ab_p_value < 0.005" in ab["expr"], ab["expr"]
    assert ab["for"] == "3m"
    (collapse,) = [r for r in rules if r["alert"] == "RecmonConversionCollapse"]
    assert 'window="15m"' in collapse["expr"]


def test_later_settings_files_override_earlier_ones(tmp_path: Path) -> None:
    result = generate(tmp_path, "psi_threshold: 0.3\nab_for: 10m\n", "ab_for: 2m\n")
    assert result.returncode == 0, result.stdout + result.stderr
    rules = alert_rules(tmp_path / "rules" / RULE_FILES[1].name)
    (drift,) = [r for r in rules if r["alert"] == "RecmonScoreDrift"]
    assert re.search(r"recmon_score_psi\S* > 0\.3\n", drift["expr"]), drift["expr"]
    (ab,) = [r for r in rules if r["alert"] == "RecmonAbRegression"]
    assert ab["for"] == "2m"


def test_generator_rejects_an_unknown_setting(tmp_path: Path) -> None:
    result = generate(tmp_path, "psi_treshold: 0.3\n")
    assert result.returncode != 0
    assert "psi_treshold" in result.stderr, result.stderr
    assert not (tmp_path / "rules").exists()
    result = generate(tmp_path, "psi_threshold: 0.3\n", "ab_four: 5m\n")
    assert result.returncode != 0
    assert "settings-1.yml: unknown setting(s) ab_four" in result.stderr, result.stderr
    assert not (tmp_path / "rules").exists()
