"""benchmarks/run.py at its quick size on SQLite: one JSON object per measurement, positive
figures. Evidently, ranx and query-exporter are left out (their virtualenvs and numba's first
compile alone take longer than this test may)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    "machine": {"cpu", "cores", "ram_gib", "os", "python", "sqlite", "date"},
    "data": {"backend", "impressions_per_day", "recommendations", "interactions", "build_s"},
    "cycle": {"backend", "window", "first_s", "steady_s", "peak_rss_bytes", "complete"},
    "limit": {"backend", "window", "scan_s", "cycle_s", "ratio"},
    "alternative": {"backend", "window", "tool", "seconds", "recmon_s", "ratio"},
    "scrape": {"exporter", "series", "scrapers", "p50_ms", "p99_ms"},
    "target": {"target", "value", "limit", "unit", "met"},
}
POSITIVE = (
    "first_s",
    "steady_s",
    "peak_rss_bytes",
    "scan_s",
    "ratio",
    "seconds",
    "recmon_s",
    "series",
    "p50_ms",
    "p99_ms",
    "build_s",
    "recommendations",
    "interactions",
)


@pytest.mark.timeout(120)
def test_quick_run_prints_every_measurement() -> None:
    results = ROOT / "benchmarks" / "results.md"
    before = results.read_bytes() if results.exists() else None
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--no-write",
            "--backends",
            "sqlite",
            "--windows",
            "1h,24h",
            "--skip",
            "ranx,evidently,query-exporter",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
    )
    records = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [r["measurement"] for r in records]
    assert set(kinds) == set(KEYS)
    assert kinds.count("cycle") == kinds.count("limit") == kinds.count("alternative") == 2
    for record in records:
        assert KEYS[record["measurement"]] <= record.keys(), record
        for key in POSITIVE:
            if key in record:
                assert record[key] > 0, (key, record)
    cycles = [r for r in records if r["measurement"] == "cycle"]
    assert all(r["complete"] for r in cycles)
    assert {r["window"] for r in cycles} == {"1h", "24h"}
    assert (results.read_bytes() if results.exists() else None) == before
