"""Config reload on a real `recmon serve`: SIGHUP and POST /-/reload reread --config.file; a good
config takes over from the next cycle, a bad one is rejected with one log line in check-config's
format and the running config goes on."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.databases import write_tables
from tests.test_cli import recmon
from tests.test_serve import start_serve, wait_until_ready

pytestmark = pytest.mark.timeout(90)


@dataclass
class Running:
    """A `recmon serve` process, its base URL and the JSON log lines it has written so far."""

    process: subprocess.Popen[str]
    base: str
    request: dict[str, Any]  # auth for every request
    logs: list[dict[str, Any]] = field(default_factory=list)

    def messages(self, msg: str) -> list[dict[str, Any]]:
        return [line for line in self.logs if line.get("msg") == msg]

    def wait_for_log(self, msg: str, count: int = 1) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while len(self.messages(msg)) < count:
            assert time.monotonic() < deadline, f"no log line {msg!r}: {self.logs}"
            time.sleep(0.05)
        return self.messages(msg)[count - 1]

    def samples(self) -> list[Sample]:
        body = requests.get(f"{self.base}/metrics", timeout=5, **self.request).text
        return [s for family in text_string_to_metric_families(body) for s in family.samples]

    def shows(self) -> tuple[set[str], set[str], float | None]:
        """The sources of every series, the windows of the event counts, and the last success
        time of source `a` or else `b`: it tells one cycle's snapshot from the next."""
        samples = self.samples()
        success = {
            s.labels["source"]: s.value
            for s in samples
            if s.name == "recmon_last_success_timestamp_seconds"
        }
        return (
            {s.labels["source"] for s in samples if "source" in s.labels},
            {s.labels["window"] for s in samples if s.name == "recmon_interaction_events"},
            success.get("a", success.get("b")),
        )

    def snapshots_until(self, sources: set[str], windows: set[str]) -> int:
        """How many snapshots in a row were seen until one showed `sources` and `windows`."""
        cycles = set()
        deadline = time.monotonic() + 20
        while (shown := self.shows())[:2] != (sources, windows):
            assert time.monotonic() < deadline, f"shows {shown}, not {sources}, {windows}"
            cycles.add(shown[2])
            time.sleep(0.05)
        return len(cycles)


@contextmanager
def running(config: Path, *flags: str, **request: Any) -> Iterator[Running]:
    process, port = start_serve(config, "--log.format", "json", *flags)
    served = Running(process, f"http://127.0.0.1:{port}", request)

    def read_logs() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            served.logs.append(json.loads(line))

    reader = threading.Thread(target=read_logs, daemon=True)
    reader.start()
    try:
        wait_until_ready(served.base, **request)
        yield served
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
        reader.join(5)


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, str]:
    """Two SQLite sources with the reference tables, empty: enough for the health series and
    the per-window event counts."""
    urls = {}
    for name in ("a", "b"):
        urls[name] = f"sqlite:///{tmp_path / name}.db"
        write_tables(urls[name], {})
    return urls


def config_text(sources: dict[str, str], windows: list[str]) -> str:
    entries = "".join(f"  {name}: {{dsn: '{url}'}}\n" for name, url in sources.items())
    return f"sources:\n{entries}windows: [{', '.join(windows)}]\ninterval: 1s\n"


def test_sighup_and_post_reload_take_effect_from_the_next_cycle(
    tmp_path: Path, sources: dict[str, str]
) -> None:
    config = tmp_path / "recmon.yml"
    config.write_text(config_text({"a": sources["a"]}, ["1h"]))
    with running(config) as served:
        assert served.shows()[:2] == ({"a"}, {"1h"})

        config.write_text(config_text(sources, ["1h", "24h"]))
        served.process.send_signal(signal.SIGHUP)
        reloaded = served.wait_for_log("config reloaded; it applies from the next cycle")
        assert reloaded["sources"] == "a,b"
        # The snapshot current at the reload, and at most the one of the cycle then running,
        # still show the old config; the next shows the new one.
        added = served.snapshots_until({"a", "b"}, {"1h", "24h"})
        assert added <= 2

        config.write_text(config_text({"b": sources["b"]}, ["24h"]))
        answer = requests.post(f"{served.base}/-/reload", timeout=5)
        assert answer.status_code == 200, answer.text
        # Source a and window 1h are gone: none of their series are left behind.
        removed = served.snapshots_until({"b"}, {"24h"})
        assert removed <= 2
    assert not served.messages("config reload failed; keeping the running config")
    print(f"\nold-config snapshots after a reload: SIGHUP {added}, POST {removed}")


def test_a_bad_config_is_rejected_and_the_running_one_goes_on(
    tmp_path: Path, sources: dict[str, str]
) -> None:
    config = tmp_path / "recmon.yml"
    good = config_text({"a": sources["a"]}, ["1h"])
    config.write_text(good)
    with running(config) as served:
        config.write_text(good.replace("windows: [1h]", "windows: [1h, 5x]"))
        checked = recmon("check-config", "--config.file", str(config))
        assert checked.returncode == 1
        expected = checked.stderr.strip().removeprefix("recmon: ")
        assert expected.startswith(f"{config}:3: windows.1: invalid duration '5x'")
        answer = requests.post(f"{served.base}/-/reload", timeout=5)
        assert answer.status_code == 500
        assert answer.text == f"Config reload failed: {expected}\n"
        served.process.send_signal(signal.SIGHUP)
        rejected = served.wait_for_log("config reload failed; keeping the running config", 2)
        failures = served.messages("config reload failed; keeping the running config")
        assert [line["error"] for line in failures] == [expected, expected]  # one line each
        assert rejected["level"] == "error"
        # The running config goes on: cycles keep coming, with its source and window.
        before = served.shows()
        deadline = time.monotonic() + 10
        while (after := served.shows())[2] == before[2]:
            assert time.monotonic() < deadline, "no cycle after the rejected reload"
            time.sleep(0.05)
        assert after[:2] == ({"a"}, {"1h"})
    assert not served.messages("config reloaded; it applies from the next cycle")


def test_reload_is_post_only(tmp_path: Path, sources: dict[str, str]) -> None:
    config = tmp_path / "recmon.yml"
    config.write_text(config_text({"a": sources["a"]}, ["1h"]))
    with running(config) as served:
        for method in ("GET", "PUT", "DELETE"):
            answer = requests.request(method, f"{served.base}/-/reload", timeout=5)
            assert answer.status_code == 405 and answer.headers["Allow"] == "POST"
    assert not served.messages("config reloaded; it applies from the next cycle")


def test_reload_takes_the_same_auth_as_metrics(tmp_path: Path, sources: dict[str, str]) -> None:
    config = tmp_path / "recmon.yml"
    config.write_text(config_text({"a": sources["a"]}, ["1h"]))
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    auth = ("prometheus", "s3cret")
    with running(config, "--web.config.file", str(web), auth=auth) as served:
        url = f"{served.base}/-/reload"
        assert requests.post(url, timeout=5).status_code == 401
        assert requests.post(url, auth=("prometheus", "wrong"), timeout=5).status_code == 401
        assert requests.post(url, auth=auth, timeout=5).status_code == 200
        served.wait_for_log("config reloaded; it applies from the next cycle")
