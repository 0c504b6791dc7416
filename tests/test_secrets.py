"""A DSN password never leaves recmon: every output channel of every command is searched for it,
with the database reachable (PostgreSQL accepts any password under trust auth) and unreachable."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from tests.support.cli import recmon
from tests.support.databases import server_url, write_tables
from tests.test_cycle import TABLES
from tests.test_serve import start_serve, wait_until_ready

SECRET = "Pw-9f3Kq7-hunter2"


def run(config: Path, dsn: str, *args: str) -> str:
    result = recmon(*args, "--config.file", str(config), env={**os.environ, "RECMON_DSN": dsn})
    return result.stdout + result.stderr


def served(config: Path, dsn: str) -> str:
    """Everything `serve` says: its log and every HTTP answer, including a rejected reload."""
    env = {**os.environ, "RECMON_DSN": dsn}
    process, port = start_serve(config, "--log.level", "debug", env=env)
    base = f"http://127.0.0.1:{port}"
    texts = []
    try:
        wait_until_ready(base, process)
        time.sleep(1.5)  # a few cycles, so a failing source logs its state
        for path in ("/", "/metrics", "/-/healthy", "/-/ready", "/nope"):
            texts.append(requests.get(base + path, timeout=10).text)
        good = config.read_text()
        config.write_text(good.replace("interval: 1s", "interval: 1x"))
        texts.append(requests.post(f"{base}/-/reload", timeout=30).text)
        config.write_text(good)
        texts.append(requests.post(f"{base}/-/reload", timeout=30).text)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    return "\n".join([*texts, stderr])


@pytest.mark.parametrize("reachable", [True, False], ids=["reachable", "unreachable"])
def test_the_password_appears_nowhere(tmp_path: Path, reachable: bool) -> None:
    url = server_url("postgresql")
    if reachable:
        write_tables(url, TABLES)
    host = "127.0.0.1:5432" if reachable else "127.0.0.1:9"  # port 9: discard, refused
    dsn = f"postgresql+psycopg://postgres:{SECRET}@{host}/test?connect_timeout=2"
    config = tmp_path / "recmon.yml"
    config.write_text("sources:\n  main:\n    dsn: ${RECMON_DSN}\ninterval: 1s\n")

    outputs = {
        "check-config": run(config, dsn, "check-config"),
        "once": run(config, dsn, "once", "--log.level", "debug"),
        "serve": served(config, dsn),
    }
    for channel, text in outputs.items():
        assert SECRET not in text, f"{channel} shows the password"
    # The checks saw what they should have: the source, up or down, and its redacted DSN.
    said = "postgres:***@" if reachable else "cannot connect"
    assert said in outputs["check-config"]
    assert f'recmon_source_up{{source="main"}} {1.0 if reachable else 0.0}' in outputs["once"]
    assert "interval" in outputs["serve"]  # the rejected reload named the bad key
