"""History for a new install: the KPIs at every step of a past period, as Prometheus TSDB blocks.

Each step runs the same cycle as `serve`, with `now` set to that step. The samples are written as
OpenMetrics with timestamps, a chunk of steps per file (OpenMetrics wants each family's samples
together, so a chunk is held in memory), and `promtool tsdb create-blocks-from openmetrics` turns
each file into blocks. With rule files, a throwaway Prometheus then serves the new blocks to
`promtool tsdb create-blocks-from rules`, which adds the recording rules' history (the baselines),
a dependency level at a time.
"""

from __future__ import annotations

import math
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import yaml

from recmon.collector import families
from recmon.config import Config
from recmon.cycle import Cycle

# What only the live process can say (its wall-clock timings and error count) is not history.
_LIVE_ONLY = {
    "recmon_cycle_duration_seconds",
    "recmon_last_success_timestamp_seconds",
    "recmon_query_duration_seconds",
    "recmon_cycle_errors",
    "recmon_build",
}
STEPS_PER_FILE = 288  # a day at the default 5m step


class BackfillError(Exception):
    """A tool is missing or failed; the message says which and why."""


def steps(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    t = start
    while t <= end:
        yield t
        t += step


def backfill(
    config: Config,
    start: datetime,
    end: datetime,
    step: timedelta,
    out: Path,
    rule_files: Sequence[Path] = (),
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Write blocks for [start, end] into `out` (a Prometheus data directory); returns the
    number of samples written."""
    promtool = _tool("promtool")
    out.mkdir(parents=True, exist_ok=True)
    work = out / "openmetrics"
    work.mkdir(exist_ok=True)
    times = list(steps(start, end, step))
    written = 0
    cycle = Cycle(config)
    try:
        for first in range(0, len(times), STEPS_PER_FILE):
            chunk = times[first : first + STEPS_PER_FILE]
            lines: dict[str, list[str]] = defaultdict(list)
            cycle.ahead = chunk[-1]
            for i, now in enumerate(chunk):
                written += _collect(cycle, config, now, lines)
                progress(first + i + 1, len(times))
            path = work / f"{chunk[0]:%Y%m%dT%H%M%S}.om"
            path.write_text(_openmetrics(lines), encoding="utf-8")
            _run(promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(out))
    finally:
        cycle.close()
    shutil.rmtree(work)
    if rule_files:
        _backfill_rules(promtool, out, rule_files, start, end, step)
    return written


def _collect(cycle: Cycle, config: Config, now: datetime, lines: dict[str, list[str]]) -> int:
    stamp = f"{now.replace(tzinfo=UTC).timestamp():.3f}"
    count = 0
    for family in families(cycle.run(now), config):
        if family.name in _LIVE_ONLY:
            continue
        if not lines[family.name]:
            lines[family.name] += [
                f"# HELP {family.name} {_escape(family.documentation, help=True)}",
                f"# TYPE {family.name} {family.type}",
            ]
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
            lines[family.name].append(f"{sample.name}{{{labels}}} {_value(sample.value)} {stamp}")
            count += 1
    return count


def _openmetrics(lines: dict[str, list[str]]) -> str:
    return "".join(line + "\n" for family in lines.values() for line in family) + "# EOF\n"


def _escape(text: str, help: bool = False) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text if help else text.replace('"', '\\"')


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _backfill_rules(
    promtool: str,
    out: Path,
    rule_files: Sequence[Path],
    start: datetime,
    end: datetime,
    step: timedelta,
) -> None:
    """Serve the blocks from a throwaway Prometheus and let promtool evaluate the rules, one
    dependency level at a time: promtool reads only what the server holds, so a rule built on
    another recording rule (a band from its baseline mean) waits for that rule's blocks."""
    # One path for every level: a group's evaluation times are offset by a hash of its name and
    # file, so a band is computed at the very times its mean was.
    path = out / "backfill-rules.yml"
    for rules in rule_levels(rule_files):
        path.write_text(yaml.safe_dump(rules), encoding="utf-8")
        try:
            _rules_once(promtool, out, path, start, end, step)
        finally:
            path.unlink()


def rule_levels(rule_files: Sequence[Path]) -> list[dict]:
    """The recording rules of `rule_files` as rule-file documents, one per level: level 0 reads
    only raw series, level n reads recording rules of levels below n. Groups keep their name and
    interval (the evaluation times depend on them); alerting rules leave no history."""
    groups = [
        group
        for f in rule_files
        for group in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("groups", [])
    ]
    recorded = {r["record"] for g in groups for r in g.get("rules", []) if "record" in r}
    level: dict[str, int] = {}

    def level_of(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in level:
            rules = [r for g in groups for r in g.get("rules", []) if r.get("record") == name]
            uses = {
                other
                for r in rules
                for other in recorded - seen - {name}
                if re.search(rf"(?<![\w:]){re.escape(other)}(?![\w:])", str(r["expr"]))
            }
            level[name] = 1 + max((level_of(u, seen | {name}) for u in uses), default=-1)
        return level[name]

    documents: list[dict] = []
    for group in groups:
        for rule in group.get("rules", []):
            if "record" not in rule:
                continue
            n = level_of(rule["record"])
            documents += [{"groups": []} for _ in range(n + 1 - len(documents))]
            target = documents[n]["groups"]
            if not target or target[-1]["name"] != group["name"]:
                target.append({**{k: v for k, v in group.items() if k != "rules"}, "rules": []})
            target[-1]["rules"].append(rule)
    return documents


def _rules_once(
    promtool: str, out: Path, rule_file: Path, start: datetime, end: datetime, step: timedelta
) -> None:
    rules_out = out / "rules-blocks"
    with throwaway_prometheus(out, out / "backfill-prometheus") as url:
        _run(
            promtool,
            "tsdb",
            "create-blocks-from",
            "rules",
            f"--start={start.replace(tzinfo=UTC).isoformat()}",
            f"--end={end.replace(tzinfo=UTC).isoformat()}",
            f"--eval-interval={int(step.total_seconds())}s",
            f"--url={url}",
            f"--output-dir={rules_out}",
            str(rule_file),
        )
    # The rule blocks sit beside the others, where Prometheus (and the next level) reads them.
    for block in rules_out.iterdir():
        block.rename(out / block.name)
    rules_out.rmdir()


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
                _tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=100y",
                *flags,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_raise_file_limit,
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


def _raise_file_limit() -> None:
    """Run in the throwaway Prometheus before it starts: promtool's rule backfill writes a block
    per rule and 2 hours (about 14,000 for 30 days of the baselines), and Prometheus holds files
    open for each, so the usual soft limit of 1024 is lifted to the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackfillError(f"{name} is not installed (Debian: apt-get install prometheus)")
    return path


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackfillError(
            f"{Path(args[0]).name} {' '.join(args[1:4])} failed: "
            + (result.stderr or result.stdout).strip()[-2000:]
        )


class ProgressBar:
    """A one-line progress bar on stderr with the time left."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        left = (time.monotonic() - self.started) / done * (total - done)
        bar = "#" * (30 * done // total)
        sys.stderr.write(f"\rbackfill [{bar:<30}] {done}/{total} steps, {left:.0f} s left ")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
