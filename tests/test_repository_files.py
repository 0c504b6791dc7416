"""Committed files that are generated or read by other programs are what they should be."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from recmon.config import load_config
from recmon.generate import generated
from tests.support.stack import binary

ROOT = Path(__file__).resolve().parent.parent


def test_generated_files_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in generated(ROOT).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run `python -m recmon.generate` and commit: {stale}"


def test_example_configs_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECMON_DSN", "postgresql+psycopg://recmon:secret@db/recsys")
    reference = load_config(ROOT / "examples" / "recmon.yml")
    assert reference.sources["main"].table("recommendations") == "served_lists"
    assert reference.sources["main"].column("interactions", "event_type") == "action"
    assert reference.events["conversion"] == ["conversion", "purchase"]
    demo = load_config(ROOT / "examples" / "demo.yml")
    assert demo.sources["demo"].dsn.get_secret_value() == "sqlite:///.demo/demo.db"


def test_prometheus_config_is_valid() -> None:
    result = subprocess.run(
        [binary("promtool"), "check", "config", str(ROOT / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_links_to_its_runbook_section() -> None:
    runbook = (ROOT / "prometheus" / "runbook.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    alerts = yaml.safe_load((ROOT / "prometheus" / "rules" / "recmon-alerts.yml").read_text())
    rules = [rule for group in alerts["groups"] for rule in group["rules"]]
    missing = {
        rule["alert"]
        for rule in rules
        if rule["annotations"]["runbook_url"].rsplit("#", 1)[1] not in anchors
    }
    assert not missing, f"no runbook section for {missing}"
