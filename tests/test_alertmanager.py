"""alertmanager/alertmanager.yml: amtool's checks, the routing tree for every severity, and the
real Alertmanager delivering (PagerDuty, Slack, dead man's switch) and inhibiting."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.stack import (
    DEADMANS_TOKEN,
    PAGERDUTY_KEY,
    REPO,
    alertmanager,
    alertmanager_config,
    binary,
    receiver,
    wait_for,
)

CONFIG = REPO / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("amtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_amtool_accepts_the_config() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout and "1 templates" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver_name"),
    [
        ({"alertname": "RecmonSourceDown", "severity": "critical"}, "pager"),
        ({"alertname": "RecmonKpiAnomaly", "severity": "critical", "kpi": "ctr_ratio"}, "pager"),
        ({"alertname": "RecmonScoreDrift", "severity": "warning"}, "chat"),
        ({"alertname": "RecmonKpiAnomaly", "severity": "info", "direction": "spike"}, "low-noise"),
        ({"alertname": "Watchdog", "severity": "info"}, "deadmans-switch"),
        ({"alertname": "SomethingElse"}, "chat"),
    ],
)
def test_routes(labels: dict[str, str], receiver_name: str) -> None:
    pairs = [f"{k}={v}" for k, v in labels.items()]
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *pairs)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver_name


def test_no_secret_inline() -> None:
    text = CONFIG.read_text()
    for key in ("api_url:", "routing_key:", "service_key:", "credentials:", "password:"):
        assert key not in text, f"{key} must come from a *_file"


def alert(**labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"job": "recmon", **labels},
        "annotations": {
            "summary": f"{labels['alertname']} test.",
            "description": "A test alert.",
            "runbook_url": f"https://runbook.example/#{labels['alertname'].lower()}",
            "dashboard_url": "https://grafana.example/d/recmon-health",
        },
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
    }


def test_delivery_and_inhibition(tmp_path: Path) -> None:
    kpi = {"kpi": "ctr_ratio", "direction": "drop", "model": "personal", "variant": "default"}
    alerts = {
        "down": alert(
            alertname="RecmonSourceDown", severity="critical", instance="a", source="main"
        ),
        "inhibited": alert(
            alertname="RecmonKpiAnomaly", severity="critical", instance="a", source="main", **kpi
        ),
        "other_source": alert(
            alertname="RecmonKpiAnomaly", severity="warning", instance="a", source="other", **kpi
        ),
        "info": alert(alertname="RecmonKpiAnomaly", severity="info", instance="a", source="other"),
        "exporter_down": alert(alertname="RecmonExporterDown", severity="critical", instance="b"),
        "behind_exporter": alert(
            alertname="RecmonDataStale", severity="critical", instance="b", source="main"
        ),
        "watchdog": alert(alertname="Watchdog", severity="info"),
    }
    with receiver() as got, alertmanager(alertmanager_config(tmp_path, got.url), tmp_path) as am:
        posted = requests.post(f"{am}/api/v2/alerts", json=list(alerts.values()), timeout=5)
        assert posted.status_code == 200, posted.text

        def pages() -> set[str]:
            return {d.body["payload"]["summary"] for d in got.at("/pagerduty")}

        wait_for(
            "two pages",
            lambda: (
                {
                    "[FIRING:1] RecmonSourceDown",
                    "[FIRING:1] RecmonExporterDown",
                }
                <= pages()
            ),
        )
        wait_for("a chat message per channel", lambda: len(got.at("/slack")) >= 2)
        watchdog = wait_for("the dead man's switch", lambda: got.at("/watchdog"))

        state = {
            a["labels"]["alertname"] + "/" + a["labels"].get("source", ""): a["status"]
            for a in requests.get(f"{am}/api/v2/alerts", timeout=5).json()
            if a["labels"].get("instance") in ("a", "b")
        }
        assert state["RecmonKpiAnomaly/main"]["inhibitedBy"], state
        assert state["RecmonDataStale/main"]["inhibitedBy"], state
        assert not state["RecmonKpiAnomaly/other"]["inhibitedBy"], state
        # Inhibited alerts are never delivered; all pages went to PagerDuty with the key file.
        assert pages() == {"[FIRING:1] RecmonSourceDown", "[FIRING:1] RecmonExporterDown"}
        page = next(
            d.body for d in got.at("/pagerduty") if "SourceDown" in d.body["payload"]["summary"]
        )
        assert page["routing_key"] == PAGERDUTY_KEY
        details = page["payload"]["custom_details"]
        assert details["runbook_url"] == "https://runbook.example/#recmonsourcedown"
        assert "source=main" in details["labels"] and "severity=critical" in details["labels"]
        assert [link["text"] for link in page["links"]] == ["Runbook", "Dashboard"]
        channels = {d.body["channel"]: d.body for d in got.at("/slack")}
        assert set(channels) == {"#recmon", "#recmon-info"}
        assert "ctr_ratio" in channels["#recmon"]["attachments"][0]["title"]
        assert "|Runbook>" in channels["#recmon"]["attachments"][0]["text"]
        assert watchdog[0].headers["Authorization"] == f"Bearer {DEADMANS_TOKEN}"
