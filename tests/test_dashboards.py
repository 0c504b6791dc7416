"""The generated Grafana dashboards: valid for the Grafana version grafana-foundation-sdk
targets, consistent (datasource, variables, units, links), and every query answered by a real
Prometheus that scraped `recmon serve` over demo data."""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from recmon.catalogue import METRICS
from recmon.generate import dashboards, links
from recmon.generate.rules import Settings
from recmon.simulate import simulate
from tests.support.stack import prometheus, wait_for
from tests.test_serve import serving

ROOT = Path(__file__).resolve().parent.parent
BOARDS: dict[str, dict[str, Any]] = {
    board["uid"]: board
    for board in (
        json.loads(path.read_text())
        for path in sorted((ROOT / "grafana/dashboards").glob("*.json"))
    )
}
SCRAPE_SECONDS = 2
# What Grafana substitutes: $__rate_interval is max($__interval + scrape, 4 x scrape interval).
BUILTINS = {"__rate_interval": f"{4 * SCRAPE_SECONDS}s", "__interval": f"{SCRAPE_SECONDS}s"}
# The queries that find nothing on a fresh Prometheus over clean demo data, and why. The test
# asserts that exactly these are empty.
EXPECTED_EMPTY = {
    r"^recmon:\w+:baseline_": "a baseline band needs the same hour one week earlier; a fresh "
    "Prometheus has minutes of history",
    r"^recmon_score_psi\{": "PSI compares with the same window one week earlier, and the demo "
    "database holds 2 days",
    r"^ALERTS\{|\(ALERTS\{.*\}\)$": "no recmon alert fires on clean data within minutes (every "
    "`for:` is 5m or more, anomalies need a baseline)",
    r"offset 10m": "a deploy is a version change seen across 10 minutes of history",
    r"^recmon_(custom_metric_up|dimension_values_folded)\{": "the demo config declares no "
    "custom metrics and no dimensions",
}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (p for p in board["panels"] if p["type"] != "row")


def declared(board: dict[str, Any]) -> set[str]:
    return {v["name"] for v in board["templating"]["list"]}


def walk(node: Any, key: str) -> Iterator[Any]:
    """Every value stored under `key` anywhere in `node`."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, key)


def test_the_six_dashboards_are_generated_with_the_linked_uids() -> None:
    assert set(BOARDS) == set(links.DASHBOARD_VARIABLES)
    for uid, board in BOARDS.items():
        assert board["description"].startswith(dashboards.MARKER), uid
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{uid}: {panel['title']} overflows the grid"


def test_dashboards_round_trip_through_the_sdk_models() -> None:
    """The schema check: grafana-foundation-sdk's models are generated from Grafana 11.6's
    schemas (the dashboard and every panel plugin's options and field config); decoding and
    encoding again keeps only what they define, so any unknown or misplaced key shows up as a
    difference. The Prometheus annotation fields are the one known gap of the SDK."""
    register_default_plugins()
    for uid, board in BOARDS.items():
        expected = copy.deepcopy(board)
        for annotation in expected["annotations"]["list"]:
            for key in dashboards.PROMETHEUS_ANNOTATION_FIELDS:
                del annotation[key]
        decoded = Dashboard.from_json(copy.deepcopy(board))
        assert json.loads(JSONEncoder().encode(decoded)) == expected, uid


def test_every_panel_has_a_description_a_unit_and_thresholds() -> None:
    units = {
        m.full_name + {"counter": "_total", "info": "_info"}.get(m.kind, ""): m for m in METRICS
    }
    for uid, board in BOARDS.items():
        for panel in panels(board):
            where = f"{uid}: {panel['title']}"
            defaults = panel["fieldConfig"]["defaults"]
            assert panel["description"], where
            assert defaults["thresholds"]["steps"][0]["value"] is None, where
            metric = re.search(r"Metric: (\w+)\.", panel["description"])
            if metric:  # a catalogue metric's chart: its unit follows the catalogue's
                assert defaults["unit"] == dashboards.UNITS[units[metric[1]].unit], where
            else:
                assert defaults["unit"] in dashboards.UNITS.values(), where


def test_every_datasource_is_the_provisioned_prometheus() -> None:
    provisioned = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/recmon.yml").read_text()
    )["datasources"]
    prometheus_uid = next(d["uid"] for d in provisioned if d["type"] == "prometheus")
    assert prometheus_uid == dashboards.DATASOURCE_UID
    for uid, board in BOARDS.items():
        variable = next(v for v in board["templating"]["list"] if v["type"] == "datasource")
        assert variable["name"] == "datasource" and variable["query"] == "prometheus"
        assert variable["current"]["value"] == prometheus_uid
        refs = list(walk(board, "datasource"))
        assert refs, uid
        for ref in refs:
            assert ref == {"type": "prometheus", "uid": "${datasource}"}, uid


def test_every_variable_is_used_by_a_panel_query() -> None:
    for uid, board in BOARDS.items():
        exprs = " ".join(t["expr"] for p in panels(board) for t in p["targets"])
        for name in declared(board) - {"datasource"}:
            assert re.search(rf"\${{?{name}\b", exprs), f"{uid}: ${name} is used by no panel"


def _check_link(url: str, variables: set[str], where: str) -> None:
    """A link to a dashboard names a generated uid and only variables both dashboards have."""
    parts = urlsplit(url)
    uid = parts.path.removeprefix("/d/")
    assert uid in BOARDS, f"{where}: {url} opens no generated dashboard"
    params = parse_qs(parts.query, keep_blank_values=True)
    names = {key.removeprefix("var-") for key in params if key.startswith("var-")}
    assert names <= declared(BOARDS[uid]), f"{where}: {url} sets variables {uid} lacks"
    for used in re.findall(r"\$\{([\w.]+)\}", url):
        assert used in variables or used.startswith("__"), f"{where}: {url} uses ${used}"


def test_dashboard_links_resolve() -> None:
    runbook = (ROOT / "prometheus" / "runbook.md").read_text()
    sections = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    checked = 0
    for uid, board in BOARDS.items():
        for link in walk(board, "links"):
            for item in link:
                url = item["url"]
                if url.startswith("/d/"):
                    _check_link(url, declared(board), uid)
                    checked += 1
                elif "#" in url:  # a runbook section
                    assert url.startswith(Settings().runbook_url), url
                    assert url.rsplit("#", 1)[1] in sections, f"{uid}: no runbook section {url}"
    assert checked > len(BOARDS) * (len(BOARDS) - 1)  # every dashboard to every other, and more


def test_every_alert_dashboard_url_opens_a_dashboard_with_its_variables() -> None:
    rules = yaml.safe_load((ROOT / "prometheus/rules/recmon-alerts.yml").read_text())
    base = Settings().dashboard_url
    for rule in (r for group in rules["groups"] for r in group["rules"]):
        url = rule["annotations"]["dashboard_url"]
        assert url.startswith(base), url
        _check_link(url.removeprefix(base), set(), rule["alert"])


# ---------------------------------------------------------------------------------------------
# Every query on a real Prometheus


class Prom:
    def __init__(self, base: str, start: float) -> None:
        self.base = base
        self.start = start
        self.session = requests.Session()

    def get(self, path: str, **params: Any) -> Any:
        answer = self.session.get(f"{self.base}{path}", params=params, timeout=30).json()
        assert answer["status"] == "success", (params, answer)
        return answer["data"]

    def label_values(self, series: str, label: str) -> list[str]:
        return self.get(f"/api/v1/label/{label}/values", **{"match[]": series})

    def has_data(self, expr: str, ranged: bool) -> bool:
        """Run `expr` as an instant query and, for a time series, as a range query too; a
        query error fails the test."""
        now = time.time()
        found = bool(self.get("/api/v1/query", query=expr, time=now)["result"])
        if ranged:
            data = self.get(
                "/api/v1/query_range", query=expr, start=self.start, end=now, step=SCRAPE_SECONDS
            )
            found = found or bool(data["result"])
        return found


def expand(text: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        assert name in values, f"undeclared variable ${name} in {text}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def assignments(prom: Prom, board: dict[str, Any]) -> list[dict[str, str]]:
    """Every combination of variable values Grafana offers, each variable's query run with the
    values chosen before it, as Grafana chains them."""
    chosen: list[dict[str, str]] = [{}]
    for variable in board["templating"]["list"]:
        if variable["type"] == "datasource":
            continue
        series, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]).groups()
        following = []
        for values in chosen:
            options = prom.label_values(expand(series, values), label)
            assert options, f"{board['uid']}: ${variable['name']} has no values for {values}"
            following += [{**values, variable["name"]: option} for option in options]
        chosen = following
    return chosen


def queries(board: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(where, expression, is a range query) of every panel target and annotation."""
    for panel in panels(board):
        for target in panel["targets"]:
            where = f"{board['uid']} #{panel['id']} {panel['title']} {target['refId']}"
            yield where, target["expr"], not target["instant"]
    for annotation in board["annotations"]["list"]:
        yield f"{board['uid']}: annotation {annotation['name']}", annotation["expr"], True


def test_every_query_runs_on_prometheus_over_demo_data(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    # Every panel must have data whatever the hour the test runs at: at the demo's 150 requests
    # an hour, a night hour's window often holds no user served by both compared models.
    simulate(f"sqlite:///{database}", days=2, seed=3, end=datetime.now(UTC), requests_per_hour=600)
    config = tmp_path / "recmon.yml"
    config.write_text(
        f"sources:\n  demo: {{dsn: 'sqlite:///{database}'}}\n"
        "comparisons: [{baseline: popularity, candidate: personal}]\n"
        f"interval: {SCRAPE_SECONDS}s\n"
    )
    with serving(config) as exporter:
        (tmp_path / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": f"{SCRAPE_SECONDS}s",
                        "evaluation_interval": f"{SCRAPE_SECONDS}s",
                    },
                    "rule_files": [str(ROOT / "prometheus/rules/*.yml")],
                    "scrape_configs": [
                        {
                            "job_name": Settings().job,
                            "static_configs": [{"targets": [exporter.removeprefix("http://")]}],
                        }
                    ],
                }
            )
        )
        with prometheus(tmp_path / "prometheus.yml", tmp_path) as base:
            prom = Prom(base, time.time())
            # Enough scrapes for a rate over $__rate_interval and a range with several points.
            wait_for(
                "six scrapes of recmon",
                lambda: prom.get(
                    "/api/v1/query", query="count_over_time(recmon_source_up[1m]) >= 6"
                )["result"],
            )
            run_every_query(prom)


def run_every_query(prom: Prom) -> None:
    builtins = {**BUILTINS, "__range": f"{int(time.time() - prom.start)}s"}
    found: dict[str, bool] = {}
    runs: dict[tuple[str, bool], list[str]] = {}
    for board in BOARDS.values():
        for values, (where, expr, ranged) in itertools.product(
            assignments(prom, board), queries(board)
        ):
            text = expand(expr, {**values, **builtins})
            assert "$" not in text, text
            runs.setdefault((text, ranged), []).append(where)
            found.setdefault(where, False)
    with ThreadPoolExecutor(4) as pool:
        answers = pool.map(lambda run: prom.has_data(*run), runs)
        for wheres, answer in zip(runs.values(), answers, strict=True):
            for where in wheres:
                found[where] = found[where] or answer
    exprs = {where: expr for board in BOARDS.values() for where, expr, _ in queries(board)}
    expected = {
        where
        for where, expr in exprs.items()
        if any(re.search(pattern, expr) for pattern in EXPECTED_EMPTY)
    }
    empty = {where for where, answer in found.items() if not answer}
    assert empty == expected, {
        "empty but not expected": sorted(empty - expected),
        "expected empty but has data": sorted(expected - empty),
    }
    # What the run covered, for the record (pytest -s).
    print(
        f"{len(found)} queries ({len(runs)} expanded runs): {len(found) - len(empty)} with data, "
        f"{len(empty)} empty as expected"
    )
