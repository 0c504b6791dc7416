"""Simulate, backfill into a throwaway Prometheus, and evaluate the alert rules over the history.

What is computed, for each scenario (one simulated world each, same seed, end and days):

- its evaluated span: from `lead` before the incident's start to `tail` after its stop (at most
  `horizon` after the start, at most the world's end); `none` evaluates its last `clean` days.
  The span is backfilled at `step` up to `fine` after the start and at `coarse_step` after that
  (the slow incidents need days, not minute resolution); `none` and the quiet scenarios, which
  measure false pages, at `step` throughout;
- the history the baselines read: the same hour of each of the `weeks` weeks before every
  evaluated time, at `coarse_step`. Before an incident's start every world's rows are those of
  the `none` world (docs/scenarios.md), so history is computed once, from `none`, in chunks that
  each scenario's Prometheus links in;
- the baselines' recording rules that read raw series (mean, stddev) over the span;
- every alert rule as a range query over the span every `eval_interval`, `for:` applied here.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from recmon.backfill import backfill, backfill_rules, query_range, throwaway_prometheus
from recmon.backfill.prometheus import MAX_POINTS
from recmon.backtest import alerts as rules_mod
from recmon.backtest.alerts import AlertRule
from recmon.config import load_config
from recmon.durations import parse_duration
from recmon.generate import rules as generator
from recmon.simulate import world
from recmon.simulate.scenarios import SCENARIOS
from recmon.simulate.writer import write

log = logging.getLogger("recmon.backtest")

CLEAN = "none"
# Scenarios that are not incidents: everything that pages in them is a false page.
QUIET = frozenset({"none", "seasonal-peak"})
DEFAULT_END = datetime(2026, 3, 4, 20, 0)  # a Wednesday evening: busy hours for the incidents
HALF_HOUR = timedelta(minutes=30)  # the baselines read one hour centred on the same time


@dataclass(frozen=True)
class Options:
    scenarios: tuple[str, ...]
    end: datetime = DEFAULT_END
    seed: int = 42
    weeks: int = 4  # of history before every evaluated time
    step: timedelta = timedelta(minutes=5)
    coarse_step: timedelta = timedelta(minutes=30)
    lead: timedelta = timedelta(hours=1)
    fine: timedelta = timedelta(hours=3)
    tail: timedelta = timedelta(hours=2)
    horizon: timedelta = timedelta(days=3, hours=12)
    clean: timedelta = timedelta(days=7)
    eval_interval: timedelta = timedelta(minutes=1)
    chunk: timedelta = timedelta(hours=12)  # history is backfilled and shared in chunks this long
    requests_per_hour: float = world.REQUESTS_PER_HOUR
    settings: generator.Settings = field(default_factory=generator.Settings)
    # Kept when given, and reused: a world, a history chunk or a scenario's blocks already there
    # for the same inputs are not computed again (so other thresholds re-evaluate in seconds).
    workdir: Path | None = None
    jobs: int = 1  # processes for simulating and backfilling


@dataclass(frozen=True)
class Span:
    scenario: str
    start: datetime
    stop: datetime
    fine_until: datetime
    incident: tuple[datetime, datetime] | None

    def times(
        self, step: timedelta, coarse: timedelta
    ) -> list[tuple[datetime, datetime, timedelta]]:
        """Backfill segments: (first, last, step), last inclusive."""
        first = _ceil(self.start, step)
        fine_last = _floor(min(self.fine_until, self.stop), step)
        segments = [(first, fine_last, step)]
        if fine_last < self.stop:
            coarse_first = _ceil(fine_last + step, coarse)
            if coarse_first <= self.stop:
                segments.append((coarse_first, _floor(self.stop, coarse), coarse))
        return segments


@dataclass
class SeriesResult:
    labels: dict[str, str]  # alertname, rule labels and the series' own
    firing: list[float]  # unix evaluation times at which it fired


@dataclass
class ScenarioResult:
    span: Span
    grid: list[float]  # evaluation times, unix
    series: list[SeriesResult]
    rules: dict[tuple[str, ...], AlertRule]
    steps: int  # backfilled steps of the span itself
    seconds: float


@dataclass
class Backtest:
    options: Options
    label_delay: timedelta
    results: list[ScenarioResult]
    history_steps: int
    days: int
    seconds: float
    timings: dict[str, float]


def spans(options: Options) -> list[Span]:
    out = []
    for name in options.scenarios:
        if name == CLEAN:
            start = options.end - options.clean
            out.append(Span(name, start, options.end, options.end, None))
            continue
        begin, stop = SCENARIOS[name].incident(options.end)
        last = min(stop + options.tail, begin + options.horizon, options.end)
        fine = last if name in QUIET else begin + options.fine
        out.append(Span(name, begin - options.lead, last, fine, (begin, stop)))
    return out


def history_chunks(options: Options, span: Span) -> list[datetime]:
    """Starts of the history chunks the baselines of `span` read."""
    chunks = set()
    for week in range(1, options.weeks + 1):
        lo = span.start - week * timedelta(days=7) - HALF_HOUR - options.coarse_step
        hi = span.stop - week * timedelta(days=7) + HALF_HOUR
        c = _floor(lo, options.chunk)
        while c <= hi:
            chunks.add(c)
            c += options.chunk
    if span.incident is not None:
        latest = max(chunks) + options.chunk
        if latest > span.incident[0]:
            raise ValueError(
                f"{span.scenario}: the evaluated span is too long for week-old history "
                f"(history up to {latest} reaches the incident at {span.incident[0]})"
            )
    return sorted(chunks)


def days_needed(options: Options, chunks: Sequence[datetime], label_delay: timedelta) -> int:
    """Days of simulated data: the earliest chunk's KPIs read the largest window (24h) before it,
    and the score PSI the same window a week earlier still."""
    earliest = min(chunks) - timedelta(days=1) - label_delay - timedelta(hours=1)
    return math.ceil((options.end - earliest) / timedelta(days=1))


def run(options: Options, progress: Callable[[str], None] = lambda line: None) -> Backtest:
    began = time.monotonic()
    unknown = [s for s in options.scenarios if s not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    if options.weeks < 1:
        raise ValueError(
            "--weeks must be at least 1: the baselines are the same hour of past weeks"
        )
    with _workdir(options.workdir) as work:
        plan = spans(options)
        needs = {span.scenario: history_chunks(options, span) for span in plan}
        chunks = sorted({c for cs in needs.values() for c in cs})
        windows = configured_windows(options.settings)
        delay = load_config(_config(work, "probe", work / "probe.db", windows)).label_delay
        # The worlds' length does not depend on which scenarios run, so they are the same worlds
        # (and their files are reused) whatever the selection.
        every = replace(options, scenarios=tuple(SCENARIOS))
        days = days_needed(
            options, [c for span in spans(every) for c in history_chunks(every, span)], delay
        )
        timings: dict[str, float] = {}
        world_stamp = _stamp(options.seed, options.end, days, options.requests_per_hour)

        t = time.monotonic()
        with _pool(options.jobs) as pool:
            jobs = []
            for name in sorted({CLEAN, *options.scenarios}):
                path = work / f"{name}.db"
                if not _fresh(path, world_stamp):
                    progress(f"simulate {name}: {days} days")
                    jobs.append(pool.submit(_simulate, path, days, options, name, world_stamp))
            _wait(jobs)
        timings["simulate"] = time.monotonic() - t

        raw, derived = rules_mod.split_recording(
            generator.recording_rules(options.settings)["groups"]
        )
        raw_file = work / "baselines-raw.yml"
        raw_file.write_text(
            yaml.safe_dump({"groups": [{"name": "recmon-baselines", "rules": raw}]}),
            encoding="utf-8",
        )
        alert_rules = rules_mod.alert_rules(
            generator.alert_rules(options.settings)["groups"], derived
        )

        # Every backfill (history chunks from `none`, each scenario's span) is independent.
        t = time.monotonic()
        kpis_stamp = _stamp(world_stamp, windows)  # what a backfilled step computes
        history_stamp = _stamp(kpis_stamp, options.chunk, options.coarse_step)
        stamps = {
            span.scenario: _stamp(kpis_stamp, span, options.step, options.coarse_step, raw)
            for span in plan
        }
        # Written once here: workers that each rewrote a world's config raced, one reading
        # the file while another had just truncated it.
        configs = {
            name: _config(work, name, work / f"{name}.db", windows)
            for name in {CLEAN, *(span.scenario for span in plan)}
        }
        with _pool(options.jobs) as pool:
            jobs = []
            for chunk in chunks:
                target = work / "history" / f"{chunk:%Y%m%dT%H%M}"
                if not _fresh(target, history_stamp):
                    last = chunk + options.chunk - options.coarse_step
                    segments = [(chunk, last, options.coarse_step)]
                    jobs.append(
                        pool.submit(_backfill, configs[CLEAN], segments, target, history_stamp)
                    )
            for span in plan:
                for piece in _pieces(span, options):
                    target = _piece_dir(work, span, piece)
                    stamp = _stamp(kpis_stamp, piece)
                    if not _fresh(target, stamp):
                        jobs.append(
                            pool.submit(_backfill, configs[span.scenario], [piece], target, stamp)
                        )
            progress(f"backfill: {len(jobs)} parts, {len(chunks)} history chunks")
            _wait(jobs)
        timings["backfill"] = time.monotonic() - t

        results = []
        t = time.monotonic()
        for span in plan:
            progress(f"evaluate {span.scenario}: {span.start:%Y-%m-%d %H:%M} .. {span.stop:%H:%M}")
            results.append(
                _scenario(
                    work,
                    options,
                    span,
                    needs[span.scenario],
                    raw_file,
                    alert_rules,
                    stamps[span.scenario],
                )
            )
        timings["evaluate"] = time.monotonic() - t
    history_steps = len(chunks) * int(options.chunk / options.coarse_step)
    return Backtest(options, delay, results, history_steps, days, time.monotonic() - began, timings)


def _backfill(
    config_file: Path,
    segments: Sequence[tuple[datetime, datetime, timedelta]],
    target: Path,
    stamp: str,
) -> None:
    """Backfill `segments` of the world `config_file` reads into `target`; marked fresh when
    `stamp` is given (a scenario's blocks are marked once their baselines are there too)."""
    config = load_config(config_file)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for first, last, step in segments:
        backfill(config, first, last, step, target)
    if stamp:
        _mark(target, stamp)


Segment = tuple[datetime, datetime, timedelta]  # first, last (inclusive), step


def _pieces(span: Span, options: Options) -> list[Segment]:
    """The span's backfill segments cut into pieces of at most `chunk`, backfilled in parallel."""
    out = []
    for first, last, step in span.times(options.step, options.coarse_step):
        t = first
        while t <= last:
            end = min(t + options.chunk - step, last)
            out.append((t, end, step))
            t = end + step
    return out


def _piece_dir(work: Path, span: Span, piece: Segment) -> Path:
    first, last, step = piece
    name = f"{first:%Y%m%dT%H%M}-{last:%Y%m%dT%H%M}-{int(step.total_seconds())}"
    return work / "spans" / span.scenario / name


def _scenario(
    work: Path,
    options: Options,
    span: Span,
    chunks: Sequence[datetime],
    raw_file: Path,
    alert_rules: Sequence[AlertRule],
    stamp: str,
) -> ScenarioResult:
    began = time.monotonic()
    data = work / "prometheus" / span.scenario
    segments = span.times(options.step, options.coarse_step)
    steps = sum(int((last - first) / step) + 1 for first, last, step in segments)
    if not _fresh(data, stamp):
        if data.exists():
            shutil.rmtree(data)
        data.mkdir(parents=True)
        parts = [work / "history" / f"{chunk:%Y%m%dT%H%M}" for chunk in chunks]
        parts += [_piece_dir(work, span, piece) for piece in _pieces(span, options)]
        for part in parts:
            for block in part.iterdir():
                if block.is_dir():
                    shutil.copytree(block, data / block.name, copy_function=os.link)
        backfill_rules(data, [raw_file], span.start, span.stop, options.step)
        _mark(data, stamp)
    grids = _grids(span, options)
    grid = sorted({t for times, _ in grids for t in times})
    lookback = max(options.step, options.coarse_step) + timedelta(minutes=1)
    series: list[SeriesResult] = []
    by_identity: dict[tuple[str, ...], AlertRule] = {}
    with prometheus(data, lookback) as url:
        for rule in alert_rules:
            labels_of = {"alertname": rule.name, **rule.labels}
            by_identity[rules_mod.identity(labels_of)] = rule
            returned: dict[tuple[tuple[str, str], ...], list[float]] = {}
            for times, interval in grids:
                for labels, present in _range_query(url, rule.expr, times, interval):
                    returned.setdefault(tuple(sorted(labels.items())), []).extend(present)
            for key, present in returned.items():
                fired = rules_mod.firing(present, grid, rule.duration)
                if fired:
                    series.append(SeriesResult({**dict(key), **labels_of}, fired))
    if options.workdir is None:
        shutil.rmtree(data)  # the blocks are large; the history chunks stay for the next one
    return ScenarioResult(span, grid, series, by_identity, steps, time.monotonic() - began)


class _Inline:
    """A stand-in for a process pool that runs each job at once (jobs = 1)."""

    def submit(self, func: Callable[..., None], *args: object) -> Future[None]:
        future: Future[None] = Future()
        func(*args)
        future.set_result(None)
        return future

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _pool(jobs: int) -> ProcessPoolExecutor | _Inline:
    return ProcessPoolExecutor(jobs) if jobs > 1 else _Inline()


def _wait(futures: Sequence[Future[None]]) -> None:
    for future in futures:
        future.result()


def _range_query(
    url: str, expr: str, grid: Sequence[float], interval: timedelta | float
) -> Iterator[tuple[dict[str, str], list[float]]]:
    """(series labels, times it was returned) of `expr` over `grid`, in queries of at most
    MAX_POINTS points."""
    found: dict[tuple[tuple[str, str], ...], list[float]] = {}
    step = interval.total_seconds() if isinstance(interval, timedelta) else interval
    for i in range(0, len(grid), MAX_POINTS):
        part = grid[i : i + MAX_POINTS]
        for labels, values in query_range(url, expr, part[0], part[-1], step):
            found.setdefault(tuple(sorted(labels.items())), []).extend(t for t, _ in values)
    for key, times in found.items():
        yield dict(key), times


def _grids(span: Span, options: Options) -> list[tuple[list[float], float]]:
    """Evaluation times, as (times, interval) parts: every `eval_interval` where the span is
    backfilled at `step`, then at the coarse steps themselves (between them a held value would
    look older than it is to `time()`, as in RecmonDataStale)."""
    parts = []
    for first, last, step in span.times(options.step, options.coarse_step):
        interval = options.eval_interval if step == options.step else step
        begin = _ceil(first, interval)
        count = int((last - begin) / interval) + 1
        if count > 0:
            parts.append(([_unix(begin + i * interval) for i in range(count)], interval))
    return parts


@contextmanager
def prometheus(data: Path, lookback: timedelta) -> Iterator[str]:
    """A throwaway Prometheus serving `data`; a sample stays visible for `lookback`, so values
    held between the backfilled steps look as they would between an exporter's cycles."""
    with throwaway_prometheus(
        data,
        data.parent / f"{data.name}-prometheus",
        f"--query.lookback-delta={int(lookback.total_seconds())}s",
        "--query.max-samples=200000000",
    ) as url:
        yield url


def _simulate(path: Path, days: int, options: Options, name: str, stamp: str) -> None:
    if path.exists():
        path.unlink()
    start = options.end - timedelta(days=days)
    chosen = () if name == CLEAN else (SCENARIOS[name],)
    frames = world.generate(options.seed, start, options.end, chosen, options.requests_per_hour)
    write(f"sqlite:///{path}", frames)
    _mark(path, stamp)


def configured_windows(settings: generator.Settings) -> list[str]:
    """The windows the rules read, shortest first: what the exporter's config must compute."""
    named = {settings.fast_window, settings.score_drift_window, settings.long_window}
    return sorted(named, key=parse_duration)


def _config(work: Path, name: str, database: Path, windows: Sequence[str]) -> Path:
    """The quick start's config (examples/demo.yml) on `database`, computing `windows`."""
    path = work / f"{name}.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "sources": {"demo": {"dsn": f"sqlite:///{database}"}},
                "windows": list(windows),
                "comparisons": [{"baseline": "popularity", "candidate": "personal"}],
            }
        ),
        encoding="utf-8",
    )
    return path


def _stamp(*inputs: object) -> str:
    return hashlib.sha256(repr(inputs).encode()).hexdigest()[:16]


def _fresh(path: Path, stamp: str) -> bool:
    marker = path.parent / f"{path.name}.stamp"
    return path.exists() and marker.exists() and marker.read_text() == stamp


def _mark(path: Path, stamp: str) -> None:
    (path.parent / f"{path.name}.stamp").write_text(stamp)


@contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="recmon-backtest-") as tmp:
        yield Path(tmp)


def _unix(t: datetime) -> float:
    return t.replace(tzinfo=UTC).timestamp()


def _floor(t: datetime, step: timedelta) -> datetime:
    seconds = _unix(t)
    s = step.total_seconds()
    return datetime.fromtimestamp(seconds - seconds % s, UTC).replace(tzinfo=None)


def _ceil(t: datetime, step: timedelta) -> datetime:
    floor = _floor(t, step)
    return floor if floor == t else floor + step
