"""The Prometheus tools a backfill drives: promtool, and a throwaway server that serves blocks to
range queries."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

MAX_POINTS = 11_000  # Prometheus refuses a range query with more points per series


class BackfillError(Exception):
    """A tool is missing or failed; the message says which and why."""


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackfillError(f"{name} is not installed (Debian: apt-get install prometheus)")
    return path


def create_blocks(openmetrics: Path, out: Path) -> None:
    """Turn an OpenMetrics file into TSDB blocks in `out`, one per 2 hours it holds."""
    run(tool("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(out))


def run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackfillError(
            f"{Path(args[0]).name} {' '.join(args[1:4])} failed: "
            + (result.stderr or result.stdout).strip()[-2000:]
        )


@contextmanager
def throwaway_prometheus(data: Path, files: Path, *flags: str) -> Iterator[str]:
    """A Prometheus serving the blocks in `data` on a free local port, its URL yielded once it is
    ready; its empty config and its log are `files` with .yml and .log, removed afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config, log = files.with_suffix(".yml"), files.with_suffix(".log")
    config.write_text("global: {}\n", encoding="utf-8")
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=100y",
                *flags,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server, log)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)
        config.unlink()
        log.unlink()


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for the server; if it exits, fail with the last error it logged to `log`."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            errors = [line for line in lines if "level=error" in line] or lines or [""]
            raise BackfillError(f"prometheus exited with {server.returncode}: {errors[-1][-1000:]}")
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise BackfillError("prometheus did not become ready within 120 s")


def query_range(
    url: str, expr: str, start: float, end: float, step: float
) -> list[tuple[dict[str, str], list[tuple[float, str]]]]:
    """`expr` evaluated at start, start + step, ... up to end (Unix seconds, at most MAX_POINTS
    of them): each series' labels and its (time, value) samples, the value as Prometheus wrote
    it."""
    answer = requests.post(
        f"{url}/api/v1/query_range",
        data={"query": expr, "start": start, "end": end, "step": step},
        timeout=600,
    ).json()
    if answer.get("status") != "success":
        raise BackfillError(f"query failed: {answer.get('error')}: {expr[:200]}")
    return [
        (s["metric"], [(float(t), v) for t, v in s["values"]]) for s in answer["data"]["result"]
    ]
