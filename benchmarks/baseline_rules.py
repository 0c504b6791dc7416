"""What the generated baseline rules cost Prometheus at 10k KPI series.

Backfills (promtool tsdb create-blocks-from openmetrics) 10k series spread over the banded KPIs,
with one sample a minute in the four one-hour windows the baselines read (the same time 1 to 4
weeks ago) and the last hour, starts the real Prometheus on that TSDB with the repository's rule
files, and reports the baseline and alert groups' evaluation time as Prometheus measures it
(`prometheus_rule_group_last_duration_seconds`). Prints one JSON object.

    python benchmarks/baseline_rules.py [--series 10000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from recmon.catalogue import METRICS

ROOT = Path(__file__).resolve().parents[1]
WEEK = 7 * 86400


def _series(total: int) -> list[tuple[str, str]]:
    """`total` (family, labels) pairs spread over the banded KPIs, as many models as needed."""
    banded = [m for m in METRICS if m.banded]
    out: list[tuple[str, str]] = []
    model = 0
    while len(out) < total:
        for metric in banded:
            for window in ("1h", "24h"):
                ks = ("5", "10") if "k" in metric.labels else (None,)
                for k in ks:
                    labels = f'source="main",model="m{model}",variant="default",window="{window}"'
                    if "role" in metric.labels:
                        labels = f'source="main",role="click",window="{window}",model="m{model}"'
                    if k:
                        labels += f',k="{k}"'
                    out.append((metric.full_name, labels + ',job="recmon",instance="bench:9747"'))
        model += 1
    return out[:total]


def _write_openmetrics(path: Path, series: list[tuple[str, str]], now: int) -> int:
    """One sample a minute in [now - i weeks - 30m, + 30m] for i = 1..4 and the last hour."""
    starts = [now - i * WEEK - 1800 for i in range(4, 0, -1)] + [now - 3600]
    count = 0
    with path.open("w") as out:
        by_family: dict[str, list[str]] = {}
        for family, labels in series:
            by_family.setdefault(family, []).append(labels)
        for family, label_sets in by_family.items():
            out.write(f"# TYPE {family} gauge\n")
            for labels in label_sets:
                for start in starts:
                    for t in range(start, start + 3600, 60):
                        out.write(f"{family}{{{labels}}} 0.05 {t}\n")
                        count += 1
        out.write("# EOF\n")
    return count


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recmon-rules-bench-"))
    try:
        now = int(time.time()) // 60 * 60
        series = _series(args.series)
        samples = _write_openmetrics(work / "data.om", series, now)
        started = time.monotonic()
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(work / "data.om"),
                str(work / "tsdb"),
            ],
            check=True,
            capture_output=True,
        )
        backfill_s = time.monotonic() - started
        (work / "prometheus.yml").write_text(
            f"global: {{evaluation_interval: 1m}}\nrule_files: ['{ROOT}/prometheus/rules/*.yml']\n"
        )
        port = 19391
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                "--storage.tsdb.retention.time=60d",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            durations: dict[str, float] = {}
            deadline = time.monotonic() + 600
            while len(durations) < 2 and time.monotonic() < deadline:
                time.sleep(2)
                try:
                    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                except requests.ConnectionError:
                    continue
                for line in text.splitlines():
                    if line.startswith("prometheus_rule_group_last_duration_seconds{"):
                        group = line.split('rule_group="', 1)[1].split('"', 1)[0].split(";")[-1]
                        if float(line.rsplit(" ", 1)[1]) > 0:
                            durations[group] = float(line.rsplit(" ", 1)[1])
            answer = requests.get(
                f"http://127.0.0.1:{port}/api/v1/query",
                params={"query": "count({__name__=~'recmon:.*:baseline_mean'})"},
                timeout=30,
            ).json()
            baselines = (
                int(answer["data"]["result"][0]["value"][1]) if answer["data"]["result"] else 0
            )
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=60)
        print(
            json.dumps(
                {
                    "measurement": "baseline_rules",
                    "kpi_series": len(series),
                    "backfilled_samples": samples,
                    "backfill_seconds": round(backfill_s, 1),
                    "baseline_series": baselines,
                    "baseline_group_seconds": durations.get("recmon-baselines"),
                    "alert_group_seconds": durations.get("recmon-alerts"),
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
