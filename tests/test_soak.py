"""The load-and-soak benchmark, in its quick form: fifty concurrent scrapers while cycles run back
to back get no error, and the exporter's memory does not grow. Latency figures are reported by
`python benchmarks/soak.py` (full run: benchmarks/soak-results.md), never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fifty_scrapers_during_cycles() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["scrapes"] > figures["scrapers"]
    assert figures["errors"] == 0
    assert figures["cycles"] >= 15
    # Memory, not time: after warm-up a leak of even a few KiB per scrape would show here.
    assert figures["rss_growth_mib"] < 50, figures
