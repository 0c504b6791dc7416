"""The real Prometheus and Alertmanager binaries, and a webhook receiver, for end-to-end tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.test_serve import free_port

REPO = Path(__file__).resolve().parents[2]


def binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"{names[0]} is not installed: apt-get install prometheus prometheus-alertmanager")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except requests.ConnectionError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def server(args: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, ready when `ready_url` answers 200; stopped (and its log shown on
    failure) at exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"{args[0]} exited: {log.read_text()[-3000:]}")
            return requests.get(ready_url, timeout=1).status_code == 200

        wait_for(f"{args[0]} to be ready", ready)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def prometheus(config: Path, workdir: Path, *flags: str, data: Path | None = None) -> Iterator[str]:
    """Prometheus on `data` (default: a new directory in `workdir`); yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={data or workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        *flags,
    ]
    with server(args, f"{base}/-/ready", workdir / "prometheus.log"):
        yield base


@contextmanager
def alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        binary("alertmanager", "prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with server(args, f"{base}/-/ready", workdir / "alertmanager.log"):
        yield base


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """Records every POST it gets; stands in for PagerDuty, Slack and the dead man's switch."""

    url: str
    deliveries: list[Delivery] = field(default_factory=list)

    def at(self, path: str) -> list[Delivery]:
        return [d for d in list(self.deliveries) if d.path == path]


@contextmanager
def receiver() -> Iterator[Receiver]:
    got: list[Delivery] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append(Delivery(self.path, dict(self.headers), json.loads(body or b"{}")))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{http.server_address[1]}", got)
    finally:
        http.shutdown()
        http.server_close()


PAGERDUTY_KEY = "test-routing-key"
DEADMANS_TOKEN = "test-deadmans-token"


def alertmanager_config(workdir: Path, endpoint: str) -> Path:
    """The repository's alertmanager.yml and templates, unchanged but for where notifications
    go (the test's receiver: /pagerduty, /slack, /watchdog), the secrets (files written here)
    and the timings (seconds, not minutes)."""
    target = workdir / "alertmanager"
    shutil.copytree(REPO / "alertmanager" / "templates", target / "templates")
    secrets = target / "secrets"
    secrets.mkdir()
    (secrets / "slack_api_url").write_text(f"{endpoint}/slack")
    (secrets / "pagerduty_routing_key").write_text(PAGERDUTY_KEY)
    (secrets / "deadmans_switch_token").write_text(DEADMANS_TOKEN)
    text = (REPO / "alertmanager" / "alertmanager.yml").read_text()
    config = yaml.safe_load(text.replace("/etc/alertmanager/secrets/", f"{secrets}/"))
    config["global"]["pagerduty_url"] = f"{endpoint}/pagerduty"
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s")
        route.setdefault("repeat_interval", "1h")
    for receiver_ in config["receivers"]:
        for webhook in receiver_.get("webhook_configs", []):
            webhook["url"] = f"{endpoint}/watchdog"
    (target / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return target / "alertmanager.yml"
