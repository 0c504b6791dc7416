"""`recmon serve` over real HTTP: the exposition, the other endpoints, and snapshot consistency."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from recmon.config import parse_config
from recmon.cycle import Cycle, utc_now
from recmon.evaluation import Sample
from recmon.exporter import Exporter
from tests.support.databases import write_tables
from tests.support.exposition import parse_hand_built
from tests.test_cycle import INTERACTIONS, ITEMS, MODELS, RECOMMENDATIONS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(
    base: str, process: subprocess.Popen[str] | None = None, **request: Any
) -> None:
    """Poll /-/ready (with `request`'s TLS and auth options) until it answers 200."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"recmon exited with {process.returncode}: {process.stderr.read()}")
        try:
            if requests.get(f"{base}/-/ready", timeout=1, **request).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{base} not ready within 60 s")


def start_serve(config: Path, *flags: str, **popen: Any) -> tuple[subprocess.Popen[str], int]:
    """`recmon serve` in a subprocess on a free port (stderr piped unless `popen` says
    otherwise); returns the process and the port."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recmon",
            "serve",
            "--config.file",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            *flags,
        ],
        text=True,
        **{"stderr": subprocess.PIPE, **popen},
    )
    return process, port


@contextmanager
def serving(config: Path, *flags: str, scheme: str = "http", **request: Any) -> Iterator[str]:
    """`recmon serve` in a subprocess on a free port; yields its base URL once it is ready and
    checks that SIGTERM then shuts it down cleanly."""
    process, port = start_serve(config, *flags)
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process, **request)
        yield base
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0  # SIGTERM is a clean shutdown


@pytest.fixture
def data_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'data.db'}"
    # Shift the hand-built data so that wall-clock `now` sees it in its windows.
    shift = utc_now().replace(microsecond=0) - datetime(2026, 11, 20, 12, 0)
    write_tables(
        url,
        {
            "recommendations": [{**r, "ts": r["ts"] + shift} for r in RECOMMENDATIONS],
            "interactions": [{**e, "ts": e["ts"] + shift} for e in INTERACTIONS],
            "items": ITEMS,
            "models": MODELS,
        },
    )
    return url


@pytest.fixture
def served(tmp_path: Path, data_url: str) -> Iterator[str]:
    config = tmp_path / "recmon.yml"
    config.write_text(f"sources:\n  main:\n    dsn: {data_url}\ninterval: 1s\n")
    with serving(config, "--log.format", "json") as base:
        yield base


def test_serve_exposes_kpis(served: str) -> None:
    response = requests.get(f"{served}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = parse_hand_built(response.text)
    assert families["recmon_cycle_errors"].samples[0].value == 0  # the parser drops _total


def test_serve_endpoints(served: str) -> None:
    landing = requests.get(served, timeout=5)
    assert landing.status_code == 200 and 'href="metrics"' in landing.text
    assert requests.get(f"{served}/-/healthy", timeout=5).status_code == 200
    assert requests.get(f"{served}/-/ready", timeout=5).status_code == 200
    assert requests.get(f"{served}/nothing", timeout=5).status_code == 404


class GatedCycle(Cycle):
    """A real cycle that, from the second run on, holds still in the middle until released."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.runs = 0
        self.inside = threading.Event()
        self.release = threading.Event()

    def run(self, now: datetime | None = None) -> list[Sample]:
        self.runs += 1
        samples = super().run(now)
        if self.runs > 1:
            self.inside.set()
            self.release.wait(30)
        return samples


def test_scrape_during_a_cycle_returns_the_previous_snapshot(data_url: str) -> None:
    exporter = Exporter(parse_config(f"sources:\n  main:\n    dsn: {data_url}\ninterval: 1s\n"))
    exporter.cycle = GatedCycle(exporter.config)
    port = free_port()
    thread = threading.Thread(target=exporter.serve, args=(f"127.0.0.1:{port}",), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base)
        first = requests.get(f"{base}/metrics", timeout=5).text
        assert exporter.cycle.inside.wait(30), "second cycle never started"
        during = requests.get(f"{base}/metrics", timeout=5).text
        assert during == first  # the second cycle's samples exist but are not published yet
        exporter.cycle.release.set()
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/metrics", timeout=5).text == first:
            assert time.monotonic() < deadline, "second snapshot never published"
            time.sleep(0.05)
    finally:
        exporter.cycle.release.set()
        exporter.stop()
        thread.join(30)
