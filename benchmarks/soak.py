"""Load and soak: `recmon serve` cycling back to back over demo data while 50 scrapers hammer
/metrics, on loopback only. Prints one JSON object: scrapes, errors, scrape latency p50/p99,
cycles, and the exporter's RSS after the first cycles and at the end.

    python benchmarks/soak.py            # 200 cycles, 60 s of 50 scrapers
    python benchmarks/soak.py --quick    # 15 cycles, 5 s
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests
from scrape import free_port, serve_recmon  # this directory: run as a script, like run.py's

from recmon.simulate import simulate

SCRAPERS = 50
WARM_CYCLES = 5  # RSS is compared from here on: imports and first allocations are done


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _last_success(base: str) -> float | None:
    for line in requests.get(f"{base}/metrics", timeout=30).text.splitlines():
        if line.startswith("recmon_last_success_timestamp_seconds{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def soak(cycles: int, scrape_seconds: float, folder: Path) -> dict[str, float | int]:
    database = folder / "demo.db"
    simulate(f"sqlite:///{database}", days=2, seed=1, end=datetime.now(UTC))
    config = folder / "recmon.yml"
    config.write_text(f"sources:\n  demo: {{dsn: 'sqlite:///{database}'}}\ninterval: 1s\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = serve_recmon(config, port)
    latencies: list[float] = []
    errors = 0
    stop = threading.Event()
    lock = threading.Lock()

    def scrape() -> None:
        nonlocal errors
        session = requests.Session()
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ok = session.get(f"{base}/metrics", timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                latencies.append(time.perf_counter() - started)
                errors += not ok

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        seen: set[float] = set()
        rss: dict[str, float] = {}
        threads = [threading.Thread(target=scrape, daemon=True) for _ in range(SCRAPERS)]
        scrape_until = time.monotonic() + scrape_seconds
        for thread in threads:
            thread.start()
        while len(seen) < cycles:
            if time.monotonic() > scrape_until and not stop.is_set():
                stop.set()
            if (value := _last_success(base)) is not None:
                seen.add(value)
            if len(seen) == WARM_CYCLES and "warm" not in rss:
                rss["warm"] = _rss_mib(process.pid)
            rss["peak"] = max(rss.get("peak", 0.0), _rss_mib(process.pid))
            time.sleep(0.25)
        while time.monotonic() < scrape_until:  # the scrapers' span outlasted the cycles
            time.sleep(0.25)
        stop.set()
        for thread in threads:
            thread.join()
        rss["end"] = _rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    ms = np.array(latencies) * 1000
    return {
        "measurement": "soak",
        "scrapers": SCRAPERS,
        "scrape_seconds": scrape_seconds,
        "scrapes": len(latencies),
        "errors": errors,
        "scrape_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "scrape_p99_ms": round(float(np.percentile(ms, 99)), 2),
        "cycles": len(seen),
        "rss_after_warm_cycles_mib": round(rss["warm"], 1),
        "rss_end_mib": round(rss["end"], 1),
        "rss_peak_mib": round(rss["peak"], 1),
        "rss_growth_mib": round(rss["end"] - rss["warm"], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cycles, seconds = (15, 5.0) if args.quick else (200, 60.0)
    with tempfile.TemporaryDirectory(prefix="recmon-soak-") as folder:
        print(json.dumps(soak(cycles, seconds, Path(folder))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
