"""The whole alerting path with the real binaries: `recmon serve` over a simulated database,
Prometheus scraping it and evaluating the generated rules (a fast profile: seconds instead of
minutes), Alertmanager with the repository's routing and templates delivering to a webhook the
test runs. An incident injected into the database pages; a source taken away pages as
RecmonSourceDown while its KPI alerts stay quiet; a stopped exporter pages as RecmonExporterDown.
"""

from __future__ import annotations

import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from recmon.generate import rules
from recmon.simulate import simulate
from tests.support.stack import (
    PAGERDUTY_KEY,
    Delivery,
    Receiver,
    alertmanager,
    alertmanager_config,
    prometheus,
    receiver,
    wait_for,
)
from tests.test_serve import start_serve, wait_until_ready

FAST = rules.Settings(
    alert_interval="1s",
    baseline_interval="2s",
    collapse_for="2s",
    source_down_for="2s",
    # A scrape may time out (after the 2 s interval) while a cycle holds the interpreter on this
    # small, busy machine; one lost scrape is not an exporter down.
    exporter_down_for="10s",
    # The demo's quietest hours expect a handful of conversions; the test runs at any hour.
    collapse_min_expected_conversions=2.0,
)


def pages(got: Receiver, alertname: str) -> list[dict[str, Any]]:
    return [
        d.body
        for d in got.at("/pagerduty")
        if d.body["payload"]["summary"].split("] ", 1)[1].startswith(alertname)
    ]


def firing(prom: str) -> set[str]:
    answer = requests.get(f"{prom}/api/v1/alerts", timeout=5).json()
    return {a["labels"]["alertname"] for a in answer["data"]["alerts"] if a["state"] == "firing"}


def test_incident_pages_and_source_down_inhibits(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    now = datetime.now(UTC).replace(tzinfo=None)
    simulate(f"sqlite:///{database}", days=2, seed=3, end=now + timedelta(minutes=1))
    config = tmp_path / "recmon.yml"
    config.write_text(f"sources:\n  demo: {{dsn: 'sqlite:///{database}'}}\ninterval: 2s\n")
    for name, text in rules.files(FAST).items():
        (tmp_path / "rules" / Path(name).name).parent.mkdir(exist_ok=True)
        (tmp_path / "rules" / Path(name).name).write_text(text)

    exporter, port = start_serve(config, stderr=subprocess.DEVNULL)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}")
        with receiver() as got:
            am_config = alertmanager_config(tmp_path, got.url)
            with alertmanager(am_config, tmp_path) as am:
                (tmp_path / "prometheus.yml").write_text(
                    "global: {scrape_interval: 2s, evaluation_interval: 1s}\n"
                    f"rule_files: ['{tmp_path}/rules/*.yml']\n"
                    "alerting:\n  alertmanagers:\n"
                    f"    - static_configs: [{{targets: ['{am.removeprefix('http://')}']}}]\n"
                    "scrape_configs:\n  - job_name: recmon\n"
                    f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
                )
                # Alerts sent before Prometheus found Alertmanager are dropped; resend soon.
                resend = "--rules.alert.resend-delay=1s"
                with prometheus(tmp_path / "prometheus.yml", tmp_path, resend) as prom:
                    run_the_incidents(got, prom, database, exporter)
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)


def run_the_incidents(
    got: Receiver, prom: str, database: Path, exporter: subprocess.Popen[bytes]
) -> None:
    # The pipeline works end to end before anything breaks, and nothing pages on clean data.
    wait_for("the dead man's switch", lambda: got.at("/watchdog"))
    wait_for(
        "rules evaluated over scraped KPIs",
        lambda: requests.get(
            f"{prom}/api/v1/query",
            params={"query": 'recmon_interaction_events{role="conversion",window="1h"}'},
            timeout=5,
        ).json()["data"]["result"],
    )
    assert "RecmonConversionCollapse" not in firing(prom)
    assert not got.at("/pagerduty")

    # Payments fail: the last hour's conversions disappear while its clicks stay.
    with sqlite3.connect(database) as db:
        db.execute(
            "DELETE FROM interactions WHERE event_type = 'conversion' AND ts >= ?",
            ((datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),),
        )
    # The engine evaluates on the minute grid: the deletion shows from the next minute's cycle
    # (up to 60 s away), then scrape, rule evaluation, `for` and Alertmanager take seconds more.
    collapse = wait_for(
        "the conversion collapse page", lambda: pages(got, "RecmonConversionCollapse"), 120
    )
    page = collapse[0]
    assert page["routing_key"] == PAGERDUTY_KEY
    details = page["payload"]["custom_details"]
    assert "severity=critical" in details["labels"] and "source=demo" in details["labels"]
    assert details["summary"].startswith("Conversions stopped while clicks go on (source demo).")
    assert "Conversions per click over the last 1h are 0%" in details["description"]
    assert "Do not retrain on this window" in details["description"]
    assert details["runbook_url"].endswith("runbook.md#recmonconversioncollapse")
    assert details["dashboard_url"] == "http://localhost:3000/d/recmon-overview?var-source=demo"

    # The source goes away: SourceDown pages, and nothing computed from it does.
    database.rename(database.with_suffix(".moved"))
    down = wait_for("the source-down page", lambda: pages(got, "RecmonSourceDown"))
    assert "source=demo" in down[0]["payload"]["custom_details"]["labels"]
    since_down = len(got.deliveries)
    wait_for("the collapse to resolve", lambda: "RecmonConversionCollapse" not in firing(prom))
    assert firing(prom) == {"Watchdog", "RecmonSourceDown"}
    kpi_pages = [
        d
        for d in got.deliveries[since_down:]
        if d.path in ("/pagerduty", "/slack") and _firing_kpi_alert(d)
    ]
    assert not kpi_pages, kpi_pages

    # The exporter stops: ExporterDown pages.
    exporter.terminate()
    exporter.wait(timeout=30)
    wait_for("the exporter-down page", lambda: pages(got, "RecmonExporterDown"))


def _firing_kpi_alert(delivery: Delivery) -> bool:
    text = str(delivery.body)
    return "FIRING" in text and "RecmonSourceDown" not in text and "Watchdog" not in text
