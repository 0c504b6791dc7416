"""Scrape latency at many concurrent scrapers: `recmon serve` and query-exporter, each serving
about 10k series from the same small SQLite database, on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests
import yaml

# recmon: 4 (model, variant) pairs x 10 surfaces x ~51 KPIs at 5 values of k, 1,400 to 2,000
# series per window (the 1h window has the fewest); query-exporter: 400 rows (pair x surface x
# rank) per gauge, five gauges per `size`. At size 5 each serves about 10k series, the figure the
# performance issue asks about; --quick uses size 1 (1,400 and 2,000).
RECMON_CONFIG = {
    "k": [1, 3, 5, 10, 20],
    "dimensions": ["surface"],
    "comparisons": [{"baseline": "popularity", "candidate": "personal"}],
    "interval": "1h",  # one cycle: the scrapers then read the same snapshot
}
RECMON_WINDOWS = ["1h", "3h", "6h", "12h", "24h"]
QE_METRICS_PER_SIZE = 5
SCRAPE_TIMEOUT = 10.0  # seconds: Prometheus' default scrape_timeout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recmon_config(dsn: str, prefix: str, folder: Path, size: int) -> Path:
    tables = {
        t: f"{prefix}{t}"
        for t in ("recommendations", "interactions", "items", "models", "model_metrics")
    }
    path = folder / "serve.yml"
    config = {
        "sources": {"main": {"dsn": dsn, "tables": tables}},
        "windows": RECMON_WINDOWS[:size],
        **RECMON_CONFIG,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def query_exporter_config(dsn: str, prefix: str, folder: Path, size: int) -> Path:
    labels = ["model", "variant", "surface", "rank"]
    gauges = QE_METRICS_PER_SIZE * size
    columns = ", ".join(f"avg(score) + {i} AS m{i}" for i in range(gauges))
    config = {
        "databases": {"main": {"dsn": dsn}},
        "metrics": {
            f"m{i}": {"type": "gauge", "description": f"Benchmark gauge {i}.", "labels": labels}
            for i in range(gauges)
        },
        "queries": {
            "kpis": {
                "databases": ["main"],
                "metrics": [f"m{i}" for i in range(gauges)],
                "interval": 3600,
                "sql": f"SELECT model, coalesce(variant, 'default') AS variant, surface,"
                f" CAST(rank AS TEXT) AS rank, {columns} FROM {prefix}recommendations"
                " GROUP BY model, variant, surface, rank",
            }
        },
    }
    path = folder / "query-exporter.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def serve_recmon(config: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "recmon",
        "serve",
        "--config.file",
        str(config),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--log.level",
        "warning",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


def serve_query_exporter(python: str, config: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        str(Path(python).parent / "query-exporter"),
        "--config",
        str(config),
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
        "-L",
        "warning",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def series_when_ready(port: int, prefix: str, minimum: int, timeout: float) -> int:
    """Wait until /metrics shows at least `minimum` samples named `prefix...`; return how many
    samples it serves in all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        except requests.RequestException:
            body = ""
        samples = [line for line in body.splitlines() if line and not line.startswith("#")]
        if sum(line.startswith(prefix) for line in samples) >= minimum:
            return len(samples)
        time.sleep(0.5)
    raise TimeoutError(f"no {prefix} series on :{port} after {timeout:.0f} s")


async def _get(port: int) -> None:
    # As Prometheus asks: gzip accepted, one connection per scrape.
    request = (
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n"
        b"Connection: close\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    response = await reader.read()  # to the end: one request per connection
    writer.close()
    if not response.startswith(b"HTTP/1.") or b" 200 " not in response[:16]:
        raise RuntimeError(f"scrape failed: {response[:80]!r}")


async def _scraper(
    port: int, deadline: float, interval: float | None, offset: float, latencies: list[float]
) -> None:
    """Scrapes until the deadline, every `interval` seconds from `offset` as a Prometheus
    scrape loop does (a late scrape starts the next one at once), or back to back when
    `interval` is None. A scrape past Prometheus' default scrape_timeout fails as it would
    there, and counts at that timeout."""
    due = time.perf_counter() + offset
    while due < deadline:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        started = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_get(port), SCRAPE_TIMEOUT)
        finished = time.perf_counter()
        latencies.append(min(finished - started, SCRAPE_TIMEOUT))
        due = finished if interval is None else max(due + interval, finished)


def load(port: int, scrapers: int, seconds: float, interval: float | None) -> dict[str, Any]:
    """`scrapers` clients for `seconds`, each at its own fixed offset within the interval (as
    Prometheus spreads its targets), or back to back: latency percentiles."""
    latencies: list[float] = []
    offsets = np.random.default_rng(0).uniform(0, interval or 0, scrapers)

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(_scraper(port, deadline, interval, float(o), latencies) for o in offsets)
        )

    asyncio.run(main())
    values = np.array(latencies) * 1000
    return {
        "load": "back to back" if interval is None else f"every {interval:g} s",
        "scrapes": len(values),
        "timeouts": int((values >= SCRAPE_TIMEOUT * 1000).sum()),
        "scrapes_per_second": len(values) / seconds,
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
    }


def measure(
    process: subprocess.Popen[bytes],
    port: int,
    prefix: str,
    minimum: int,
    scrapers: int,
    loads: list[tuple[float, float | None]],
) -> list[dict[str, Any]]:
    """One result per (seconds, interval) in `loads`, in turn against the same process."""
    try:
        series = series_when_ready(port, prefix, minimum, timeout=300)
        return [
            {
                "series": series,
                "scrapers": scrapers,
                "seconds": seconds,
                **load(port, scrapers, seconds, interval),
            }
            for seconds, interval in loads
        ]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
