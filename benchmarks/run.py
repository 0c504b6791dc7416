"""recmon's performance against the targets of the performance issue, in one run.

Builds the reference schema at a rate (full: 10 million impressions a day) in PostgreSQL and
SQLite, then measures recmon's real cycle (first and steady state, one new minute per cycle)
over 1h, 24h and 7d windows, the database's own scan of the new rows, pandas, ranx and
Evidently on the same windows, recmon's peak RSS, and scrape latency of `recmon serve` and
query-exporter at 50 concurrent scrapers. Prints one JSON object per measurement and writes
benchmarks/results.md.

    python benchmarks/run.py --backends postgresql   # full size, as results.md: about an hour
    python benchmarks/run.py --quick     # the same measurements at a small size, under a minute
                                         # once the tools' virtualenvs exist (venvs.py)

Only a full-size run writes benchmarks/results.md; --quick prints its figures and leaves it.

Measured processes run under a memory and a time guard: a window the engine cannot hold is
reported as stopped, with a lower bound, rather than taking the machine down.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402
import report  # noqa: E402
import scrape  # noqa: E402
import venvs  # noqa: E402
from guard import Exceeded, Guarded, Limits  # noqa: E402

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
# The largest window, its drift reference a week earlier, the label delay and the horizon.
HISTORY = timedelta(days=14, hours=2)
END = datetime(2026, 11, 2, 12, 0)  # a fixed clock: runs are comparable; --now drives recmon
EVIDENTLY = ["evidently==0.7.23", "pandas<3", "sqlalchemy>=2", "psycopg[binary]"]
SIZES = {  # name: (impressions a day, generated days, steady cycles, time guard s, scrape s,
    # scrape size: about 1,900 series per exporter each); the full guard leaves room for the 7d
    # first cycle, which reads 140 million rows (the window and its drift reference)
    "full": (10_000_000, 1, 3, 2700.0, 20.0, 5),
    "quick": (10_000, 1, 2, 120.0, 1.0, 1),
}
# Each scraper every second, fifteen times Prometheus' default rate; then back to back, which
# measures throughput: a scrape there waits for the other 49.
SCRAPE_INTERVAL = 1.0
Record = dict[str, Any]


def emit(records: list[Record], record: Record) -> None:
    records.append(record)
    print(json.dumps(record), flush=True)


def cycle_config(dsn: str, prefix: str, window: str, folder: Path) -> Path:
    tables = {t: f"{prefix}{t}" for t in data.COLUMNS}
    config = {
        "sources": {"main": {"dsn": dsn, "tables": tables}},
        "windows": [window],
        "comparisons": [{"baseline": "popularity", "candidate": "personal"}],
        "ab": {"control": "control"},
        "query_timeout": "2h",
    }
    path = folder / f"{prefix}{window}.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def scan(tables: data.Tables, lo: datetime, hi: datetime) -> float:
    """Median time of one aggregate query over the rows of [lo, hi) in both big tables."""
    recs, events = tables.name("recommendations"), tables.name("interactions")
    query = text(
        f"SELECT model, count(*), sum(score) FROM {recs} WHERE ts >= :lo AND ts < :hi"
        f" GROUP BY model UNION ALL SELECT event_type, count(*), sum(value) FROM {events}"
        " WHERE ts >= :lo AND ts < :hi GROUP BY event_type"
    )
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    params = {"lo": lo.strftime(stamp), "hi": hi.strftime(stamp)}
    times = []
    with tables.engine.connect() as conn:
        for _ in range(5):
            started = time.perf_counter()
            conn.execute(query, params).all()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


class Bench:
    def __init__(self, args: argparse.Namespace, folder: Path, records: list[Record]) -> None:
        self.args, self.folder, self.records = args, folder, records
        rate, self.generated, self.repeats, seconds, self.scrape_s, self.scrape_size = SIZES[
            args.size
        ]
        self.scale = data.Scale(args.rate or rate)
        self.limits = Limits(args.memory_limit * 2**30, seconds)
        self.evidently: str | None = None
        self.jobs: dict[str, Guarded] = {}  # tool -> its worker, warm, kept across windows
        self.failed: dict[str, Exceeded] = {}  # tool -> why its warm-up was stopped

    def backend(self, name: str, url: str) -> None:
        prefix = f"{self.args.prefix}{self.args.size}_"
        tables = data.Tables(url, prefix)
        since = END - HISTORY
        stream = data.Stream(self.scale, END - timedelta(days=self.generated), since)
        started = time.perf_counter()
        rows = data.build(stream, [tables], since, END)
        emit(
            self.records,
            {
                "measurement": "data",
                "backend": name,
                "impressions_per_day": self.scale.impressions_per_day,
                "generated_days": self.generated,
                "days": HISTORY / timedelta(days=1),
                "recommendations": rows["recommendations"],
                "interactions": rows["interactions"],
                "users": self.scale.users,
                "items": self.scale.items,
                "build_s": time.perf_counter() - started,
            },
        )
        now = END
        try:
            for window in self.args.windows:
                now = self.window(name, url, tables, stream, window, now)
        finally:
            if not self.args.keep:
                tables.drop()

    def window(
        self,
        backend: str,
        url: str,
        tables: data.Tables,
        stream: data.Stream,
        window: str,
        now: datetime,
    ) -> datetime:
        """First and steady cycles of recmon on `window` from `now`; then the scan of the new
        rows and the alternatives. Returns the clock after the appended minutes."""
        config = cycle_config(url, tables.prefix, window, self.folder)
        worker = Guarded([sys.executable, str(HERE / "cycles.py"), str(config)], self.limits)
        status, answers, scans = "ok", [], []
        try:
            answers.append(worker.ask(now.isoformat()))
            for _ in range(self.repeats):
                step = now + timedelta(minutes=1)
                recs, events = stream.advance(step)
                tables.append({"recommendations": recs, "interactions": events})
                scans.append(scan(tables, now, step))
                now = step
                answers.append(worker.ask(now.isoformat()))
            if any(a["source_up"] != 1.0 for a in answers):
                status = "source down during a cycle: see the exporter's log"
            worker.close()
        except Exceeded as exc:
            status = str(exc)
            answers.append({"seconds": exc.elapsed, "peak_rss_bytes": exc.rss})
        complete = status == "ok"
        steady = [a["seconds"] for a in answers[1:]] or [answers[-1]["seconds"]]
        cycle = {
            "measurement": "cycle",
            "backend": backend,
            "window": window,
            "first_s": answers[0]["seconds"],
            "steady_s": statistics.median(steady),
            "steady_runs_s": steady,
            "peak_rss_bytes": max(a["peak_rss_bytes"] for a in answers),
            "complete": complete,
            "status": status,
        }
        emit(self.records, cycle)
        while len(scans) < self.repeats:  # the cycles stopped early: still time the database
            step = now + timedelta(minutes=1)
            recs, events = stream.advance(step)
            tables.append({"recommendations": recs, "interactions": events})
            scans.append(scan(tables, now, step))
            now = step
        scan_s = statistics.median(scans)
        emit(
            self.records,
            {
                "measurement": "limit",
                "backend": backend,
                "window": window,
                "scan_s": scan_s,
                "cycle_s": cycle["steady_s"],
                "ratio": cycle["steady_s"] / scan_s,
                "complete": complete,
            },
        )
        self.warm_up(url, tables.prefix, now)
        for tool in self.args.tools:
            self.alternative(backend, url, tables.prefix, window, now, tool, cycle)
        return now

    def close(self) -> None:
        for job in self.jobs.values():
            job.close()

    def warm_up(self, url: str, prefix: str, now: datetime) -> None:
        """Start the tools' workers that are not running, and warm them up side by side: the
        warm-ups are untimed, so ranx's numba compilation and Evidently's imports may share the
        cores; the timed runs that follow go one at a time."""
        started: dict[str, Guarded] = {}
        try:
            for tool in self.args.tools:
                python = self._python(tool)
                if tool in self.jobs or python is None:
                    continue
                env = {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
                job = Guarded([python, str(HERE / "alternatives.py"), tool], self.limits, env)
                started[tool] = job
                job.send(json.dumps({"url": url, "prefix": prefix, "now": now.isoformat()}))
            for tool, job in started.items():
                try:
                    job.ask()
                    self.jobs[tool] = job
                except Exceeded as exc:
                    self.failed[tool] = Exceeded(f"warm-up {exc}", exc.elapsed, exc.rss)
        except BaseException:  # (an interrupt, a broken worker): leave no worker running
            for tool, job in started.items():
                if tool not in self.jobs:
                    job.kill()
            raise

    def _python(self, tool: str) -> str | None:
        """The interpreter a tool runs in (Evidently's virtualenv, made on first use); None
        when it cannot be had, which is reported once."""
        if tool != "evidently":
            return sys.executable
        if self.evidently is None:
            try:
                self.evidently = str(venvs.ensure("evidently", sys.executable, EVIDENTLY))
            except venvs.Unavailable as exc:
                self.evidently = ""
                emit(self.records, {"measurement": "skipped", "what": "Evidently", "why": str(exc)})
        return self.evidently or None

    def alternative(
        self,
        backend: str,
        url: str,
        prefix: str,
        window: str,
        now: datetime,
        tool: str,
        cycle: Record,
    ) -> None:
        stopped = self.failed.pop(tool, None)  # its warm-up was stopped
        if stopped is None:
            if tool not in self.jobs:
                return  # not available (reported as skipped)
            ask = {"url": url, "prefix": prefix, "window_s": WINDOWS[window].total_seconds()}
            try:
                result = self.jobs[tool].ask(json.dumps({**ask, "now": now.isoformat()}))
            except Exceeded as exc:  # the worker was stopped: the next window starts another
                del self.jobs[tool]
                stopped = exc
        if stopped is None:
            status = "ok"
        else:
            result, status = {"seconds": stopped.elapsed, "read_seconds": None}, str(stopped)
        emit(
            self.records,
            {
                "measurement": "alternative",
                "backend": backend,
                "window": window,
                "tool": tool,
                "seconds": result["seconds"],
                "read_s": result["read_seconds"],
                "recmon_s": cycle["steady_s"],
                # recmon's time must be a full figure for the ratio to mean anything.
                "ratio": result["seconds"] / cycle["steady_s"] if cycle["complete"] else None,
                "complete": status == "ok",
                "status": status,
            },
        )

    def scrapes(self) -> None:
        """Both exporters on one small SQLite database: latency depends on series, not rows."""
        url = f"sqlite:///{self.folder / 'serve.db'}"
        prefix = "serve_"
        # `recmon serve` evaluates at the wall clock: the data ends now.
        end = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
        stream = data.Stream(data.Scale(40_000), end - timedelta(days=2), end - timedelta(days=2))
        data.build(stream, [data.Tables(url, prefix)], stream.start, end)
        config = scrape.recmon_config(url, prefix, self.folder, self.scrape_size)
        port = scrape.free_port()
        self._scrape("recmon", scrape.serve_recmon(config, port), port, "recmon_", 1000)
        if "query-exporter" not in self.args.skip:
            try:
                python = venvs.ensure("query-exporter", venvs.python312(), ["query-exporter"])
            except venvs.Unavailable as exc:
                emit(
                    self.records,
                    {"measurement": "skipped", "what": "query-exporter", "why": str(exc)},
                )
                return
            qe_config = scrape.query_exporter_config(url, prefix, self.folder, self.scrape_size)
            port = scrape.free_port()
            process = scrape.serve_query_exporter(str(python), qe_config, port)
            self._scrape("query-exporter", process, port, "m0{", 400)

    def _scrape(self, exporter: str, process: Any, port: int, prefix: str, minimum: int) -> None:
        loads = [(self.scrape_s, SCRAPE_INTERVAL), (self.scrape_s, None)]
        try:
            results, status = scrape.measure(process, port, prefix, minimum, 50, loads), "ok"
        except (TimeoutError, OSError, RuntimeError) as exc:
            results, status = [{"series": None, "p50_ms": None, "p99_ms": None}], str(exc)
        for result in results:
            emit(
                self.records,
                {"measurement": "scrape", "exporter": exporter, **result, "status": status},
            )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        dest="size",
        action="store_const",
        const="quick",
        default="full",
        help="a small size, the same measurements",
    )
    parser.add_argument("--rate", type=int, help="impressions a day (default by size)")
    parser.add_argument(
        "--backends", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "RECMON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--prefix", default="bench_", help="table name prefix in PostgreSQL")
    parser.add_argument("--windows", default="1h,24h,7d", help="comma-separated, of 1h,24h,7d")
    parser.add_argument(
        "--skip", default="", help="comma-separated: pandas, ranx, evidently, query-exporter"
    )
    parser.add_argument("--memory-limit", type=float, default=8.0, help="GiB per process")
    parser.add_argument(
        "--no-write", action="store_true", help="leave results.md alone (--quick always does)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark tables")
    args = parser.parse_args(argv)
    args.skip = {s for s in args.skip.split(",") if s}
    args.windows = [w for w in args.windows.split(",") if w]
    args.tools = [t for t in ("pandas", "ranx", "evidently") if t not in args.skip]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    backends = [b for b in args.backends.split(",") if b]
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="recmon-bench-") as tmp:
        folder = Path(tmp)
        emit(records, report.machine(args.postgres_url if "postgresql" in backends else None))
        bench = Bench(args, folder, records)
        urls = {"postgresql": args.postgres_url, "sqlite": f"sqlite:///{folder / 'bench.db'}"}
        try:
            for backend in backends:
                bench.backend(backend, urls[backend])
        finally:
            bench.close()
        bench.scrapes()
    for target in report.targets(records):
        emit(records, target)
    if not args.no_write and args.size == "full":
        command = "python benchmarks/run.py " + shlex.join(
            argv if argv is not None else sys.argv[1:]
        )
        (HERE / "results.md").write_text(report.markdown(records, command.strip()))


if __name__ == "__main__":
    main()
