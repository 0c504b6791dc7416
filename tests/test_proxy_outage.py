"""A database behind a TCP proxy that cuts or hangs, with recmon serving in-process.

PostgreSQL and MariaDB each sit behind the proxy; a SQLite source beside them is not. Whatever
the proxy does, /metrics answers at once, the proxied source reports up 0 without KPIs, the other
source keeps its KPIs, and when traffic passes again the source is back within two cycles with
no thread or connection left over.
"""

from __future__ import annotations

import operator
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from recmon.config import Config, parse_config
from recmon.cycle import utc_now
from recmon.exporter import Exporter
from recmon.sources.engine import (
    GRACE_SECONDS,
    SourceError,
    connect,
    open_engine,
    unreachable,
)
from tests.support.databases import drop_tables, server_url, write_tables
from tests.support.proxy import Mode, Proxy
from tests.test_cycle import NOW, TABLES
from tests.test_serve import free_port, wait_until_ready

QUERY_TIMEOUT = 2  # seconds; a hung call gives up after at most this plus GRACE_SECONDS
DEADLINE = QUERY_TIMEOUT + GRACE_SECONDS
SCRAPE_BUDGET = 1.0  # seconds: a scrape that takes longer counts as blocked
UPSTREAM = {"postgresql": 5432, "mariadb": 3306}


def live_rows() -> dict[str, list[dict[str, Any]]]:
    """The hand-built tables of tests/test_cycle.py, moved so that wall-clock now is their NOW."""
    shift = utc_now().replace(microsecond=0) - NOW
    moved = {"recommendations": "ts", "interactions": "ts"}
    return {
        table: [{**row, column: row[column] + shift} for row in rows]
        if (column := moved.get(table))
        else list(rows)
        for table, rows in TABLES.items()
    }


def server_sessions(engine: Engine, ports: set[int]) -> int:
    """Sessions the server holds for connections that came through the proxy (by client port)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            query = "SELECT client_port FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            clients = [row[0] for row in conn.execute(text(query))]
        else:
            query = "SELECT host FROM information_schema.processlist WHERE id <> CONNECTION_ID()"
            clients = [row[0].rpartition(":")[2] for row in conn.execute(text(query))]
    return sum(1 for port in clients if port and int(port) in ports)


class CountingExporter(Exporter):
    """The real exporter, remembering the proxied source's state after each cycle."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.states: list[tuple[bool, str | None]] = []  # (up, problem) per published cycle

    def run_cycle(self) -> None:
        super().run_cycle()
        health = self.cycle.health["proxied"]
        self.states.append((bool(health.up), health.problem))


@dataclass
class Scrape:
    seconds: float
    up: dict[str, float]  # source -> recmon_source_up
    kpis: set[str]  # sources with recmon_impressions samples
    custom_up: float  # recmon_custom_metric_up of the proxied source's custom metric
    custom_seconds: float  # and how long its query took


def scrape(base: str) -> Scrape:
    started = time.monotonic()
    body = requests.get(f"{base}/metrics", timeout=5).text
    seconds = time.monotonic() - started
    families = {f.name: f for f in text_string_to_metric_families(body)}

    def values(family: str, **labels: str) -> list[tuple[str, float]]:
        samples = families[family].samples if family in families else []
        return [
            (s.labels["source"], s.value) for s in samples if labels.items() <= s.labels.items()
        ]

    return Scrape(
        seconds,
        up=dict(values("recmon_source_up")),
        kpis={source for source, _ in values("recmon_impressions")},
        custom_up=dict(values("recmon_custom_metric_up"))["proxied"],
        custom_seconds=dict(values("recmon_query_duration_seconds", query="custom:items"))[
            "proxied"
        ],
    )


class Level(NamedTuple):
    threads: int  # in this process
    connections: int  # open at the proxy
    sessions: int  # on the server, through the proxy


@dataclass
class Stack:
    """recmon serving a proxied server database and a local SQLite file."""

    kind: str  # of the proxied server
    exporter: CountingExporter
    base: str
    proxy: Proxy
    server: Engine  # straight to the server, for counting its sessions
    peak_held: int = 0  # most connections open at the proxy at any scrape

    def scrape_until(self, done: Callable[[Scrape], bool], timeout: float) -> list[Scrape]:
        """Scrape until `done`; every scrape must be fast and show the local source healthy."""
        scrapes: list[Scrape] = []
        deadline = time.monotonic() + timeout
        while not scrapes or not done(scrapes[-1]):
            assert time.monotonic() < deadline, f"not reached in {timeout}s: {scrapes[-1:]}"
            time.sleep(0.05)
            result = scrape(self.base)
            assert result.seconds < SCRAPE_BUDGET, f"scrape blocked for {result.seconds:.2f}s"
            assert result.up["local"] == 1 and "local" in result.kpis
            scrapes.append(result)
            self.peak_held = max(self.peak_held, self.proxy.open_connections)
        return scrapes

    def cycles_after(self, count: int, timeout: float) -> list[Scrape]:
        """Scrape until `count` more cycles have been published."""
        target = len(self.exporter.states) + count
        return self.scrape_until(lambda _: len(self.exporter.states) >= target, timeout)

    def level(self) -> Level:
        return Level(
            threading.active_count(),
            self.proxy.open_connections,
            server_sessions(self.server, set(self.proxy.upstream_ports)),
        )

    def idle_level(self) -> Level:
        """The fewest threads, connections and sessions seen over 1.5 cycle intervals: the
        level between cycles, which every cycle returns to."""
        seen = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            seen.append(self.level())
            time.sleep(0.02)
        return Level(*map(min, zip(*seen, strict=True)))


@pytest.fixture(params=["postgresql", "mariadb"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    url = server_url(request.param)
    prefix = f"proxy_{uuid.uuid4().hex[:8]}_"
    rows = live_rows()
    write_tables(url, rows, prefix)
    local = tmp_path / "local.db"
    write_tables(f"sqlite:///{local}", rows)
    proxy = Proxy(("127.0.0.1", UPSTREAM[request.param]))
    proxied = make_url(url).set(host="127.0.0.1", port=proxy.port)
    tables = ", ".join(f"{t}: {prefix}{t}" for t in TABLES)
    config = parse_config(f"""sources:
  proxied:
    dsn: "{proxied.render_as_string(hide_password=False)}"
    tables: {{{tables}}}
  local: {{dsn: "sqlite:///{local}"}}
custom_metrics:
  - {{name: items, help: Items., sql: "SELECT count(*) AS n FROM {prefix}items", value: n,
     sources: [proxied]}}
interval: 1s
query_timeout: {QUERY_TIMEOUT}s
""")
    exporter = CountingExporter(config)
    port = free_port()
    thread = threading.Thread(target=exporter.serve, args=(f"127.0.0.1:{port}",), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    server = create_engine(url)
    try:
        wait_until_ready(base)
        yield Stack(request.param, exporter, base, proxy, server)
    finally:
        proxy.set_mode("pass")
        exporter.stop()
        thread.join(DEADLINE + 5)
        proxy.close()
        server.dispose()
        drop_tables(url, prefix)
    assert not thread.is_alive(), "serve() did not return"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["cut", "hang"])
def test_outage_and_recovery_through_the_proxy(
    stack: Stack, mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    stack.scrape_until(lambda s: s.up["proxied"] == 1 and "proxied" in s.kpis, 30)
    idle = stack.idle_level()
    states = stack.exporter.states
    with caplog.at_level("INFO", logger="recmon.cycle"):
        stack.proxy.set_mode(mode)
        stack.peak_held = 0
        started = len(states)
        # Each cycle gives up on the source within the client-side deadline, so cycles go on
        # (two more after the one that noticed), and /metrics answers from the last snapshot.
        noticed = stack.scrape_until(lambda s: s.up["proxied"] == 0, 2 * DEADLINE + 2)
        down = noticed[-1:] + stack.cycles_after(2, 3 * DEADLINE)
        assert all(s.up["proxied"] == 0 and "proxied" not in s.kpis for s in down)
        # A source out of reach is not tried again for each custom metric in the same cycle.
        assert all(s.custom_up == 0 and s.custom_seconds < 0.1 for s in down)
        held = stack.peak_held
        assert held <= 1, "recmon keeps at most the connection it waits on, never piles them up"

        stack.proxy.set_mode("pass")
        restored, restored_at = len(states), time.monotonic()
        stack.scrape_until(
            lambda s: s.up["proxied"] == 1 and "proxied" in s.kpis and s.custom_up == 1,
            2 * DEADLINE,
        )
        back_after = time.monotonic() - restored_at

    # The cycle running when traffic came back may still fail; the one after it may not.
    ups = [up for up, _ in states]
    recovery = ups.index(True, restored) - restored + 1
    assert recovery <= 2, f"recovered in cycle {recovery} after the restore"
    # One line per change of the source's state (up, or a new error), not one per cycle.
    failures = states[ups.index(False, started) : restored + recovery - 1]
    assert not any(up for up, _ in failures)
    changes = sum(1 for a, b in zip([None, *failures], failures, strict=False) if a != b)
    lines = [(r.getMessage(), r.source) for r in caplog.records if r.msg.startswith("source ")]
    assert lines == [("source failed", "proxied")] * changes + [("source recovered", "proxied")]
    assert changes < len(failures)

    deadline = time.monotonic() + 15
    after = stack.level()
    while any(map(operator.gt, after, idle)):
        assert time.monotonic() < deadline, f"{after} did not come back to {idle}"
        time.sleep(0.05)
        after = stack.level()
    print(
        f"\n{stack.kind} {mode}: {len(failures)} failed cycles, {changes} log line(s); "
        f"at most {held} connection(s) open during the outage; recovered in cycle {recovery} "
        f"after the restore ({back_after:.1f}s); idle {idle}, after {after}"
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_statement_on_a_hung_connection_fails_at_the_client_deadline(kind: str) -> None:
    """Connected, then the server stops answering mid-cycle: the statement gives up at
    query_timeout + grace (server-side timeouts cannot fire: the query never reached it), and
    the dead connection is closed, not kept."""
    url = make_url(server_url(kind))
    with Proxy(("127.0.0.1", UPSTREAM[kind])) as proxy:
        dsn = url.set(port=proxy.port).render_as_string(hide_password=False)
        config = parse_config(f'sources: {{s: {{dsn: "{dsn}"}}}}\nquery_timeout: {QUERY_TIMEOUT}s')
        engine = open_engine(config.sources["s"], config.query_timeout)
        with pytest.raises((SQLAlchemyError, SourceError)) as failure, connect(engine) as conn:
            proxy.set_mode("hang")
            started = time.monotonic()
            conn.execute(text("SELECT 1"))
        elapsed = time.monotonic() - started
        assert unreachable(failure.value), failure.value
        assert DEADLINE - 0.5 < elapsed < DEADLINE + 2, f"gave up after {elapsed:.1f}s"
        proxy.set_mode("pass")
        deadline = time.monotonic() + 5
        while proxy.open_connections:
            assert time.monotonic() < deadline, "the dead connection was kept open"
            time.sleep(0.05)
        print(f"\n{kind}: hung statement failed after {elapsed:.2f}s: {failure.value}")
