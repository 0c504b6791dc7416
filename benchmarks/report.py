"""The machine the figures come from, the targets they are judged by, and results.md."""

from __future__ import annotations

import os
import platform
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

Record = dict[str, Any]


def machine(postgres_url: str | None) -> Record:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if "model name" in ln), "unknown")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory = next(ln for ln in meminfo if ln.startswith("MemTotal"))
    os_release = Path("/etc/os-release").read_text().splitlines()
    release = dict(ln.split("=", 1) for ln in os_release if "=" in ln).get("PRETTY_NAME", "")
    info: Record = {
        "measurement": "machine",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(int(memory.split()[1]) / 2**20, 1),
        "os": f"{release.strip(chr(34))}, Linux {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if postgres_url:
        engine = create_engine(postgres_url)
        with engine.connect() as conn:
            info["postgresql"] = conn.exec_driver_sql("SHOW server_version").scalar_one()
        engine.dispose()
    return info


def _of(records: list[Record], **match: Any) -> list[Record]:
    return [r for r in records if all(r.get(k) == v for k, v in match.items())]


def _target(
    name: str, backend: str, value: float | None, limit: float, unit: str, bound: bool = False
) -> Record:
    """`bound`: the value is a lower bound (the measured process was stopped by a guard)."""
    met = None if value is None else (not bound and value <= limit)
    return {
        "measurement": "target",
        "target": name,
        "backend": backend,
        "value": value,
        "limit": limit,
        "unit": unit,
        "lower_bound": bound,
        "met": met,
    }


def targets(records: list[Record]) -> list[Record]:
    """The performance issue's targets, judged on each backend's figures."""
    out = []
    for backend in dict.fromkeys(r["backend"] for r in _of(records, measurement="cycle")):
        cycle = {r["window"]: r for r in _of(records, measurement="cycle", backend=backend)}
        day = cycle.get("24h")
        if day:
            partial = not day["complete"]
            out.append(
                _target("steady-state cycle at 24h", backend, day["steady_s"], 2.0, "s", partial)
            )
            for limit in _of(records, measurement="limit", backend=backend, window="24h"):
                out.append(
                    _target(
                        "24h cycle / the database's scan of the new rows",
                        backend,
                        limit["ratio"],
                        3.0,
                        "x",
                        partial,
                    )
                )
            for alt in _of(records, measurement="alternative", backend=backend, window="24h"):
                speedup = alt["ratio"]
                # Met when recmon is >= 20x faster: alternative / recmon >= 20.
                out.append(
                    {
                        **_target(
                            f"{alt['tool']} time / recmon's 24h cycle", backend, speedup, 20.0, "x"
                        ),
                        "met": None if speedup is None or partial else speedup >= 20.0,
                        "lower_bound": not alt["complete"],
                    }
                )
        if "1h" in cycle and "7d" in cycle:
            short, long = cycle["1h"], cycle["7d"]
            ratio = long["steady_s"] / short["steady_s"] if short["complete"] else None
            out.append(
                _target("cycle(7d) / cycle(1h)", backend, ratio, 1.5, "x", not long["complete"])
            )
        peak = max(cycle.values(), key=lambda r: r["peak_rss_bytes"], default=None)
        if peak:
            out.append(
                _target(
                    "peak RSS of recmon (largest window)",
                    backend,
                    peak["peak_rss_bytes"] / 2**30,
                    1.0,
                    "GiB",
                    not peak["complete"],
                )
            )
    for scrape in _of(records, measurement="scrape", exporter="recmon"):
        if scrape.get("load") != "back to back":  # the latency a scraper sees, not throughput
            out.append(_target("scrape p99 at 50 scrapers", "-", scrape["p99_ms"], 5.0, "ms"))
    return out


def _cell(value: Any, bound: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return f"> {text}" if bound else text
    return str(value)


def _table(rows: list[Record], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        bound = not row.get("complete", True)
        cells = [
            _cell(row.get(key), bound and key.endswith(("_s", "ratio", "bytes_gib", "value")))
            for key, _ in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(records: list[Record], command: str) -> str:
    info = _of(records, measurement="machine")[0]
    data = _of(records, measurement="data")
    cycles = [
        {**r, "peak_rss_bytes_gib": r["peak_rss_bytes"] / 2**30}
        for r in _of(records, measurement="cycle")
    ]
    lines = [
        "# recmon benchmarks",
        "",
        f"Generated by `{command}` on {info['date']}. Regenerate with the same command; "
        "`--quick` runs the same measurements at a small size.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM; "
        f"{info['os']}; Python {info['python']}; "
        f"PostgreSQL {info.get('postgresql', 'not used')}; SQLite {info['sqlite']}. "
        "The machine was shared with other work while it ran.",
        "",
        "## Data",
        "",
        "The reference schema at the given rate of impressions (lists of 10), written by "
        "`benchmarks/data.py`: four arms (popularity, personal control and treatment, trending), "
        "daily traffic, position bias, scores that predict clicks, late clicks, conversions, "
        "watches, organic events and sessions. The most recent days are generated; older days "
        "(read by the 7d window and the drift reference) repeat them with fresh ids.",
        "",
        *_table(
            data,
            [
                ("backend", "backend"),
                ("impressions_per_day", "impressions/day"),
                ("generated_days", "generated days"),
                ("days", "days in all"),
                ("recommendations", "recommendation rows"),
                ("interactions", "interaction rows"),
                ("users", "users"),
                ("items", "items"),
                ("build_s", "build s"),
            ],
        ),
        "",
        "## recmon cycle time",
        "",
        "`recmon.cycle.Cycle`, one object kept across cycles as `recmon serve` does, one window "
        "per config (default KPIs, a comparison, the A/B control; query_timeout raised so that "
        "a long read is measured rather than cut). First cycle at the end of the data; then "
        "`repeats` times: insert the next minute, run a cycle (median reported). Peak RSS is "
        "the cycle process's. A cycle stopped by a guard shows its time at the stop as a lower "
        "bound (>).",
        "",
        *_table(
            cycles,
            [
                ("backend", "backend"),
                ("window", "window"),
                ("first_s", "first cycle s"),
                ("steady_s", "steady cycle s (median)"),
                ("peak_rss_bytes_gib", "peak RSS GiB"),
                ("status", "status"),
            ],
        ),
        "",
        "## The limit: the database's own scan of the new rows",
        "",
        "One aggregate query (count and sum per model, and per event type) over the minute "
        "just inserted, median of 5; the ratio is the steady cycle over it.",
        "",
        *_table(
            _of(records, measurement="limit"),
            [
                ("backend", "backend"),
                ("window", "window"),
                ("scan_s", "scan s"),
                ("cycle_s", "steady cycle s"),
                ("ratio", "cycle / scan"),
            ],
        ),
        "",
        "## Alternatives on the same window and data",
        "",
        "`benchmarks/alternatives.py`: read the window with pandas.read_sql, attribute with "
        "merge_asof, CTR and conversion per model and variant, then the ranking metrics at 5 and "
        "10 with plain pandas, with ranx (numba compiled before the timer) or with Evidently's "
        "recsys metrics (in its own virtualenv, pandas < 3). The ratio is the alternative's "
        "time over recmon's steady cycle on the same window: above 1, recmon is faster.",
        "",
        *_table(
            _of(records, measurement="alternative"),
            [
                ("backend", "backend"),
                ("window", "window"),
                ("tool", "tool"),
                ("seconds", "s"),
                ("read_s", "of which read s"),
                ("recmon_s", "recmon steady s"),
                ("ratio", "tool / recmon"),
                ("status", "status"),
            ],
        ),
        "",
        "## Scrape latency",
        "",
        "50 scrapers (asyncio, one connection per scrape, gzip accepted as Prometheus does) "
        "against each exporter, both serving about 10k series from the same small SQLite "
        "database. First each scraper scrapes every second from its own offset, as Prometheus "
        "spreads its targets (fifteen times its default rate): the latency a scrape sees. Then "
        "back to back: the throughput, where each scrape also waits for the other 49.",
        "",
        *_table(
            _of(records, measurement="scrape"),
            [
                ("exporter", "exporter"),
                ("series", "series"),
                ("scrapers", "scrapers"),
                ("load", "load"),
                ("seconds", "s"),
                ("scrapes", "scrapes"),
                ("scrapes_per_second", "scrapes/s"),
                ("timeouts", "timed out (10 s)"),
                ("p50_ms", "p50 ms"),
                ("p99_ms", "p99 ms"),
                ("status", "status"),
            ],
        ),
        "",
        "## Targets",
        "",
        "From the performance issue; reported, never asserted. A value after > is a lower bound: "
        "a process was stopped by a guard, recmon's (its target is then missed by at least that) "
        "or an alternative's (recmon is then at least that much faster).",
        "",
        *_table(
            [
                {
                    **t,
                    "met": {True: "met", False: "missed", None: "n/a"}[t["met"]],
                    "complete": not t["lower_bound"],
                }
                for t in _of(records, measurement="target")
            ],
            [
                ("target", "target"),
                ("backend", "backend"),
                ("limit", "limit"),
                ("unit", "unit"),
                ("value", "measured"),
                ("met", ""),
            ],
        ),
        "",
    ]
    skipped = _of(records, measurement="skipped")
    if skipped:
        lines += ["## Not measured", ""]
        lines += [f"- {r['what']}: {r['why']}" for r in skipped]
        lines.append("")
    return "\n".join(lines)
