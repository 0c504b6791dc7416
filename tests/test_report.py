"""`recmon report`: its numbers are the source's (the cycle `recmon once` runs, SQL counted by
hand, a real Prometheus's range queries), and the page renders in headless Chromium without a
console error."""

from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from statsmodels.stats.proportion import confint_proportions_2indep

from recmon.config import parse_config
from recmon.cycle import Cycle
from recmon.report import DATA_ID, FILE_NAME
from recmon.report.history import REPORTED
from tests.support.cli import recmon_ok
from tests.support.databases import write_tables
from tests.support.rows import event, impression
from tests.support.stack import prometheus, wait_for

END = datetime(2026, 11, 20, 12, 0)
ITEMS = [f"i{n}" for n in range(40)]
# Per arm (model, variant): click probability of an impression. Each hour one user is served by
# popularity and personal/control, another by popularity and personal/treatment, so the models
# share users (comparisons) and the personal model runs an A/B test.
ARMS = {("popularity", None): 0.05, ("personal", "control"): 0.15, ("personal", "treatment"): 0.2}


def dataset(end: datetime, days: int, seed: int = 7) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    recs, events = [], []
    for hour in range(days * 24):
        t = end - timedelta(days=days) + timedelta(hours=hour)
        users = {"control": f"u{rng.randrange(30)}", "treatment": f"u{30 + rng.randrange(30)}"}
        for minute, ((model, variant), p_click) in enumerate(ARMS.items()):
            for arm, user in users.items():
                if variant not in (None, arm):
                    continue
                ts = t + timedelta(minutes=minute * 7 + (arm == "treatment"))
                request = f"r{hour}-{model}-{arm}"
                for rank, item in enumerate(rng.sample(ITEMS, 5), start=1):
                    recs.append(
                        impression(request, user, item, rank, ts, model, variant, rng.random())
                    )
                    if rng.random() < p_click:
                        events.append(
                            event(user, item, "click", ts + timedelta(minutes=3), request)
                        )
                        if rng.random() < 0.4:
                            events.append(
                                event(user, item, "conversion", ts + timedelta(minutes=9), request)
                            )
    created = end - timedelta(days=60)
    items = [{"item_id": i, "created_at": created, "category": None} for i in ITEMS]
    return {"recommendations": recs, "interactions": events, "items": items, "models": []}


def config_text(database: Path) -> str:
    return (
        f"sources:\n  main: {{dsn: 'sqlite:///{database}'}}\n"
        "comparisons: [{baseline: popularity, candidate: personal}]\n"
    )


def report_data(page: Path) -> dict[str, Any]:
    match = re.search(
        rf'<script type="application/json" id="{DATA_ID}">(.*?)</script>', page.read_text(), re.S
    )
    assert match, "the report embeds no data block"
    return json.loads(match[1])


def unix(t: datetime) -> float:
    return t.replace(tzinfo=UTC).timestamp()


def by_series(series: list[dict]) -> dict[tuple[str, frozenset], dict[float, float]]:
    return {
        (s["metric"], frozenset(s["labels"].items())): {t: v for t, v in s["points"]}
        for s in series
    }


def key(metric: str, **labels: str) -> tuple[str, frozenset]:
    return metric, frozenset({"source": "main", **labels}.items())


def cycle_values(config: str, times: list[datetime], window: str = "24h") -> dict:
    """What `recmon once --now t` computes, as the report keys it: the reported metrics of
    `window`, by (metric, labels without window) -> {unix time: value}."""
    reported = {m.name: m for m in REPORTED}
    cycle = Cycle(parse_config(config))
    expected: dict[tuple[str, frozenset], dict[float, float]] = {}
    try:
        for t in times:
            for s in cycle.run(t):
                if s.metric not in reported:
                    continue
                labels = dict(zip(reported[s.metric].labels, s.labels, strict=True))
                if labels.pop("window") == window:
                    key = (s.metric, frozenset(labels.items()))
                    expected.setdefault(key, {})[unix(t)] = s.value
    finally:
        cycle.close()
    return expected


@pytest.fixture(scope="module")
def database_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """16 days of hand-built rows in SQLite and `recmon report` over its last day."""
    root = tmp_path_factory.mktemp("report")
    database = root / "shop.db"
    write_tables(f"sqlite:///{database}", dataset(END, days=16))
    config = root / "recmon.yml"
    config.write_text(config_text(database))
    start = END - timedelta(days=1)
    recmon_ok(
        "report",
        "--config.file",
        str(config),
        "--from",
        start.isoformat(),
        "--to",
        END.isoformat(),
        "--step",
        "6h",
        "--out",
        str(root / "out"),
        timeout=300,
    )
    return root / "out" / FILE_NAME, database, config.read_text()


def test_database_report_holds_what_the_cycle_computes(
    database_report: tuple[Path, Path, str],
) -> None:
    page, database, config = database_report
    data = report_data(page)
    trend_times = [END - timedelta(hours=h) for h in (24, 18, 12, 6, 0)]
    week_times = [END - timedelta(days=d) for d in range(14)]
    expected = cycle_values(config, sorted(set(trend_times + week_times)))

    trends = by_series(data["trends"])
    want = {
        key: {t: v for t, v in points.items() if t in {unix(t) for t in trend_times}}
        for key, points in expected.items()
    }
    assert trends == {key: points for key, points in want.items() if points}
    assert len(trends) > 60  # every KPI of every model/variant, comparison and A/B test
    assert data["bands"] is None and data["alerts"] is None  # only Prometheus has them
    assert "Alerts are evaluated by Prometheus" in page.read_text()

    # Week over week: the mean of the 7 daily 24h values of each week.
    wow = {(r["metric"], frozenset(r["labels"].items())): r for r in data["week_over_week"]}
    ctr = key("ctr_ratio", model="personal", variant="control")
    daily = expected[ctr]
    this = sum(daily[unix(t)] for t in week_times[:7]) / 7
    last = sum(daily[unix(t)] for t in week_times[7:]) / 7
    assert wow[ctr]["this_week"] == pytest.approx(this, rel=1e-12)
    assert wow[ctr]["last_week"] == pytest.approx(last, rel=1e-12)
    assert wow[ctr]["change"] == pytest.approx(this / last - 1, rel=1e-9)
    assert not any(r["metric"].startswith("ab_") for r in data["week_over_week"])
    for series, row in wow.items():  # every row, the same way
        values = expected[series]
        now, before = (
            [values[unix(t)] for t in days if unix(t) in values]
            for days in (week_times[:7], week_times[7:])
        )
        assert row["this_week"] == pytest.approx(sum(now) / len(now), rel=1e-12)
        assert row["last_week"] == pytest.approx(sum(before) / len(before), rel=1e-12)
    assert len(wow) > 60

    # By hand, in SQL: CTR of personal/control in the 24h window at END (delay 1h), where each
    # click carries its request's id; and the A/B test's counts.
    since, until = END - timedelta(hours=25), END - timedelta(hours=1)
    counts = clicked(database, since, until)
    assert trends[ctr][unix(END)] == counts["control"][1] / counts["control"][0]

    experiments = {
        r["labels"]["experiment_metric"]: r for r in data["experiments"] if r["at"] == unix(END)
    }
    (n1, x1), (n0, x0) = counts["treatment"], counts["control"]
    ab = experiments["ctr"]
    assert ab["lift"] == pytest.approx((x1 / n1) / (x0 / n0) - 1, rel=1e-12)
    low, high = confint_proportions_2indep(x1, n1, x0, n0, method="log", compare="ratio")
    assert ab["interval"] == pytest.approx([low - 1, high - 1], rel=1e-9)
    assert ab["significant"] == (ab["p_value"] < 0.05)

    (pair,) = data["comparisons"]
    overlap = expected[
        key("comparison_overlap_at_k", baseline="popularity", candidate="personal", k="5")
    ]
    assert pair["overlap"]["5"] == overlap[unix(END)]
    assert pair["unique_items"] is not None and pair["users"] > 0


def clicked(database: Path, since: datetime, until: datetime) -> dict[str, tuple[int, int]]:
    """personal's impressions and clicked impressions per variant, counted in SQL."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            """
            SELECT r.variant, COUNT(*), SUM(EXISTS(
                SELECT 1 FROM interactions e
                WHERE e.event_type = 'click' AND e.request_id = r.request_id
                  AND e.item_id = r.item_id AND e.user_id = r.user_id))
            FROM recommendations r
            WHERE r.model = 'personal' AND r.ts >= ? AND r.ts < ?
            GROUP BY r.variant
            """,
            (str(since), str(until)),
        ).fetchall()
    return {variant: (n, x) for variant, n, x in rows}


def test_prometheus_report_holds_the_range_queries(tmp_path: Path) -> None:
    """Backfilled KPIs and a baseline band in a real Prometheus, and a live alert; the report
    from its API equals both the range queries and the cycle at the backfilled times."""
    now = datetime.now(UTC).replace(tzinfo=None)
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    start = end - timedelta(minutes=20)
    database = tmp_path / "shop.db"
    write_tables(f"sqlite:///{database}", dataset(end, days=2))
    config = tmp_path / "recmon.yml"
    config.write_text(config_text(database))
    bands = tmp_path / "bands.yml"
    bands.write_text(
        "groups:\n  - name: bands\n    rules:\n"
        "      - {record: 'recmon:ctr_ratio:baseline_lower', expr: '0.9 * recmon_ctr_ratio'}\n"
        "      - {record: 'recmon:ctr_ratio:baseline_upper', expr: '1.1 * recmon_ctr_ratio'}\n"
    )
    blocks = tmp_path / "blocks"
    recmon_ok(
        "backfill",
        "--config.file",
        str(config),
        "--from",
        start.isoformat(),
        "--to",
        end.isoformat(),
        "--step",
        "5m",
        "--out",
        str(blocks),
        "--rule-file",
        str(bands),
        timeout=300,
    )
    alerts = tmp_path / "alerts.yml"
    alerts.write_text(
        "groups:\n  - name: alerts\n    rules:\n"
        "      - alert: RecmonKpiAnomaly\n        expr: vector(1)\n"
        "        labels: {severity: warning, kpi: ctr_ratio, direction: drop}\n"
        "      - {alert: Watchdog, expr: vector(1), labels: {severity: none}}\n"
    )
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text(f"global: {{evaluation_interval: 1s}}\nrule_files: ['{alerts}']\n")
    to = end + timedelta(minutes=15)  # past now: the live alert is in the period
    with prometheus(
        prometheus_yml, tmp_path, "--storage.tsdb.retention.time=100y", data=blocks
    ) as base:
        wait_for("the alert's ALERTS series", lambda: firing(base))
        out = tmp_path / "out"
        recmon_ok(
            "report",
            "--prometheus",
            base,
            "--from",
            start.isoformat(),
            "--to",
            to.isoformat(),
            "--step",
            "5m",
            "--out",
            str(out),
            timeout=300,
        )
        data = report_data(out / FILE_NAME)
        series = {m.name for m in REPORTED}
        raw = range_query(base, '{__name__=~"recmon_.+", window="24h"}', start, to)
        band = range_query(base, '{__name__=~"recmon:ctr_ratio:baseline_.+"}', start, to)

    assert data["window"] == "24h"  # the largest, found in Prometheus
    expected = {
        (name.removeprefix("recmon_"), labels): points
        for (name, labels), points in raw.items()
        if name.removeprefix("recmon_") in series
    }
    assert by_series(data["trends"]) == expected
    # The same numbers as the cycle at the backfilled times.
    cycle = cycle_values(
        config.read_text(), [start + timedelta(minutes=m) for m in range(0, 21, 5)]
    )
    assert {k: {t: v for t, v in p.items() if t <= unix(end)} for k, p in expected.items()} == cycle

    got_bands = {(s["metric"], frozenset(s["labels"].items())): s["points"] for s in data["bands"]}
    assert got_bands, "no band from the recording rules"
    for (metric, labels), points in got_bands.items():
        lower = band[("recmon:ctr_ratio:baseline_lower", labels)]
        upper = band[("recmon:ctr_ratio:baseline_upper", labels)]
        assert metric == "ctr_ratio"
        assert points == [[t, lower[t], upper[t]] for t in sorted(lower) if t in upper]

    (alert,) = data["alerts"]  # Watchdog left out
    assert alert["alertname"] == "RecmonKpiAnomaly" and alert["severity"] == "warning"
    assert alert["labels"] == {"kpi": "ctr_ratio", "direction": "drop"}
    assert alert["ongoing"] and unix(end) <= alert["start"] <= time.time()
    assert "RecmonKpiAnomaly" in (out / FILE_NAME).read_text()


def firing(base: str) -> bool:
    """The series the report reads (it lags /api/v1/alerts by a second or two)."""
    answer = requests.get(
        f"{base}/api/v1/query",
        params={"query": 'ALERTS{alertname="RecmonKpiAnomaly", alertstate="firing"}'},
        timeout=5,
    ).json()
    return bool(answer["data"]["result"])


def range_query(base: str, query: str, start: datetime, end: datetime) -> dict:
    answer = requests.get(
        f"{base}/api/v1/query_range",
        params={"query": query, "start": unix(start), "end": unix(end), "step": 300},
        timeout=30,
    ).json()
    assert answer["status"] == "success", answer
    result = {}
    for s in answer["data"]["result"]:
        labels = dict(s["metric"])
        name = labels.pop("__name__")
        labels.pop("window", None)
        result[(name, frozenset(labels.items()))] = {float(t): float(v) for t, v in s["values"]}
    return result


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed (Debian: apt-get install chromium); see README")
    return found


def console_messages(page: Path, screenshot: Path) -> list[str]:
    """Render `page` to `screenshot` in headless Chromium, with every network request failing
    (a self-contained page needs none); returns the page's console messages and errors."""
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--screenshot={screenshot}",
            "--window-size=1200,2400",
            "--enable-logging=stderr",
            "--v=0",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [
        line
        for line in result.stderr.splitlines()
        if ":CONSOLE" in line or "Uncaught" in line or "net::ERR" in line
    ]


def test_report_renders_in_chromium_without_errors(
    database_report: tuple[Path, Path, str], tmp_path: Path
) -> None:
    page = database_report[0]
    text = page.read_text()
    # Self-contained: nothing to fetch (the SVG namespace is a name, not a request).
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", text), "the page loads something"
    screenshot = tmp_path / "report.png"
    assert console_messages(page, screenshot) == []
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000  # a page was drawn, not a blank

    # The check can fail: the same page with a script error is caught.
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace("</body>", "<script>undefinedFunction()</script></body>"))
    messages = console_messages(broken, tmp_path / "broken.png")
    assert any("undefinedFunction is not defined" in m for m in messages), messages
