"""One evaluation of every source: queries, KPIs, and the health samples that go with them.

A source that fails reports source_up 0 and none of its KPIs (never stale values or zeros);
the others go on. A log line marks each change of a source's state, not each cycle. At most
max_series samples leave a cycle.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from recmon import custom
from recmon.catalogue import BY_NAME, HEALTH
from recmon.config import Config
from recmon.custom import CustomMetricError
from recmon.evaluation import Sample, evaluate
from recmon.incremental.buckets import floor
from recmon.incremental.store import MinuteStore
from recmon.sources.check import Schema, inspect_schema
from recmon.sources.engine import SourceError, connect, describe, open_engine, unreachable
from recmon.sources.reader import LifecycleCache, Timer, read
from recmon.sources.tables import SourceTables
from recmon.span import Span

log = logging.getLogger("recmon.cycle")


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class SourceHealth:
    up: bool | None = None  # None until the first cycle
    problem: str | None = None
    errors: int = 0
    last_success: float | None = None
    duration: float = 0.0
    schema: Schema | None = None  # checked once per connection state
    lifecycle: LifecycleCache = field(default_factory=LifecycleCache)
    store: MinuteStore | None = None  # incremental state, kept while the schema holds
    custom_problems: dict[str, str | None] = field(default_factory=dict)  # metric -> last error


class Cycle:
    """Evaluates every configured source; `run()` returns the samples of one complete cycle."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.engines: dict[str, Engine] = {}
        for name, source in config.sources.items():
            try:
                self.engines[name] = open_engine(source, config.query_timeout)
            except SourceError as exc:
                self.close()
                raise config.error([(("sources", name, "dsn"), str(exc))]) from None
        self.tables = {
            name: SourceTables(source, config.dimensions) for name, source in config.sources.items()
        }
        self.health = {name: SourceHealth() for name in config.sources}
        self.capping = False  # whether the last cycle left samples out (see _capped)
        # The last `now` a caller replaying history (backfill, report) will ask for: its data is
        # all there, so the engine summarises the minutes up to it in one pass.
        self.ahead: datetime | None = None

    def carry_over(self, previous: Cycle) -> None:
        """Continue the state of the sources `previous` shares with this cycle (after a reload):
        error counters do not restart and a state already logged is not logged again. Schemas
        are checked again, since the config may map other tables."""
        for name, health in self.health.items():
            if (old := previous.health.get(name)) is not None:
                health.up, health.problem, health.errors = old.up, old.problem, old.errors
                health.last_success = old.last_success
                health.custom_problems = dict(old.custom_problems)
        self.capping = previous.capping

    def run(self, now: datetime | None = None) -> list[Sample]:
        # One evaluation time for every source of the cycle, on the engine's minute grid: the
        # KPIs are those of the last whole minute.
        # Rows dated after the wall clock are future-dated; those after a past `now` (a replay:
        # once --now, backfill, report) are merely the data that came later.
        wall = utc_now()
        clock = max(now or wall, wall)
        now = floor(now or wall)
        samples: list[Sample] = []
        for name in self.config.sources:
            samples.extend(self._source(name, now, clock))
        return self._capped(samples)

    def _capped(self, samples: list[Sample]) -> list[Sample]:
        """At most max_series samples, series_dropped included. The health samples are always
        kept; then the others by rank: catalogue order (README's metric reference), then custom
        metrics in config order, each metric's series by label values. Kept samples keep their
        order."""
        health: list[Sample] = []
        others: list[Sample] = []
        for sample in samples:
            spec = BY_NAME.get(sample.metric)
            (health if spec is not None and spec.group == HEALTH else others).append(sample)
        room = self.config.max_series - len(health) - len(self.config.sources)
        custom = [m.name for m in self.config.custom_metrics]
        order = {name: i for i, name in enumerate([*BY_NAME, *custom])}
        ranked = sorted(others, key=lambda s: (order[s.metric], tuple(map(str, s.labels))))
        dropped = set(ranked[max(room, 0) :])
        per_source = Counter(s.labels[0] for s in dropped)  # every such metric's first label
        if bool(dropped) != self.capping:
            self.capping = bool(dropped)
            if dropped:
                first = ranked[max(room, 0)].metric  # where the cut begins, for the diagnosis
                log.warning(
                    "series cap reached; samples left out",
                    extra={
                        "max_series": self.config.max_series,
                        "dropped": len(dropped),
                        "first_dropped_metric": first,
                    },
                )
            else:
                log.info("series cap no longer reached")
        return [
            *health,
            *(s for s in others if s not in dropped),
            *(
                Sample("series_dropped", (name,), float(per_source[name]))
                for name in self.config.sources
            ),
        ]

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()

    def _source(self, name: str, now: datetime, clock: datetime) -> list[Sample]:
        health = self.health[name]
        started = time.perf_counter()
        kpis: list[Sample] = []
        lost = None  # why the source is out of reach in this cycle, if it is
        try:
            kpis = self._evaluate(name, now, clock)
        except (SQLAlchemyError, SourceError, OSError) as exc:
            self._failed(name, health, describe(exc), up=False)
            lost = health.problem if unreachable(exc) else None
        except Exception as exc:  # a bug must not stop the exporter; count it and say where
            log.exception("evaluation failed", extra={"source": name})
            self._failed(name, health, f"evaluation failed: {exc!r}", up=True)
        else:
            if health.up is False:
                log.info("source recovered", extra={"source": name})
            health.up, health.problem, health.last_success = True, None, time.time()
        health.duration = time.perf_counter() - started
        # Custom metrics run even when the KPIs failed (they may not need the reference tables),
        # but not against a source out of reach: each would wait for its own timeout.
        return kpis + self._custom(name, now, lost) + self._health_samples(name, health)

    def _evaluate(self, name: str, now: datetime, clock: datetime) -> list[Sample]:
        engine, tables, config = self.engines[name], self.tables[name], self.config
        health = self.health[name]
        span = Span.at(config, now)
        # Connect first: a source out of reach then fails as such, whatever comes next.
        with connect(engine) as conn:
            if health.schema is None:  # checked again after a failure, to name what is missing
                schema = inspect_schema(engine, name, config.sources[name], config.dimensions)
                if schema.problems:
                    raise SourceError("; ".join(message for _, message in schema.problems))
                health.schema = schema
                sessions = "interactions.session_id" in schema.optional
                if health.store is None or health.store.summarizer.sessions != sessions:
                    health.store = MinuteStore(config, tables, sessions)
            timed = Timer()
            optional, cache = health.schema.optional, health.lifecycle
            data = read(conn, tables, config, span, clock, optional, cache, timed)
            assert health.store is not None  # made with the schema
            ahead = floor(self.ahead) if self.ahead is not None else now
            health.store.update(conn, span, timed, Span.at(config, ahead) if ahead > now else None)
        return evaluate(config, name, span, health.store, data)

    def _custom(self, name: str, now: datetime, lost: str | None) -> list[Sample]:
        """Each custom metric on its own connection: one failing query leaves the rest alone."""
        samples = []
        health = self.health[name]
        for metric in self.config.custom_metrics:
            if metric.sources is not None and name not in metric.sources:
                continue
            started = time.perf_counter()
            problem = lost
            if lost is None:
                try:
                    with connect(self.engines[name]) as conn:
                        rows = custom.run(conn, metric, now)
                except (SQLAlchemyError, SourceError, CustomMetricError) as exc:
                    problem = describe(exc)
                else:
                    samples.extend(Sample(metric.name, (name, *labels), v) for labels, v in rows)
            if health.custom_problems.get(metric.name) != problem:
                if problem:
                    log.error(
                        "custom metric failed",
                        extra={"source": name, "metric": metric.name, "error": problem},
                    )
                else:
                    log.info(
                        "custom metric recovered", extra={"source": name, "metric": metric.name}
                    )
            health.custom_problems[metric.name] = problem
            samples.append(Sample("custom_metric_up", (name, metric.name), 0.0 if problem else 1.0))
            duration = time.perf_counter() - started
            samples.append(
                Sample("query_duration_seconds", (name, f"custom:{metric.name}"), duration)
            )
        return samples

    def _failed(self, name: str, health: SourceHealth, problem: str, up: bool) -> None:
        health.errors += 1
        health.schema = None
        if (health.up, health.problem) != (up, problem):
            log.error("source failed", extra={"source": name, "error": problem})
        health.up, health.problem = up, problem

    @staticmethod
    def _health_samples(name: str, health: SourceHealth) -> list[Sample]:
        samples = [
            Sample("source_up", (name,), 1.0 if health.up else 0.0),
            Sample("cycle_duration_seconds", (name,), health.duration),
            Sample("cycle_errors", (name,), float(health.errors)),
        ]
        if health.last_success is not None:
            samples.append(Sample("last_success_timestamp_seconds", (name,), health.last_success))
        return samples
