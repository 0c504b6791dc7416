"""The report's numbers from the database: the cycle `serve` runs, with `now` at each time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from recmon.catalogue import BY_NAME
from recmon.config import Config
from recmon.cycle import Cycle
from recmon.evaluation import Sample
from recmon.report.history import REPORTED, Alert, Band, Key, Point, ReportError, unix
from recmon.sources.engine import redact

_NAMES = {m.name for m in REPORTED}


class DatabaseLoader:
    """Runs a cycle per time (each time once, however often asked); only the main window and
    the largest are evaluated, which leaves the main window's values as `serve` has them (the
    largest window decides which model/variant pairs are reported)."""

    def __init__(
        self,
        config: Config,
        window: str | None = None,
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> None:
        labels = [w.label for w in config.windows]
        if window is not None and window not in labels:
            raise ReportError(f"--window {window} is not one of the config's windows {labels}")
        largest = config.largest_window.label
        self.window = window or largest
        kept = [w for w in config.windows if w.label in {self.window, largest}]
        self.config = config.model_copy(update={"windows": kept})
        self.origin = "database " + ", ".join(
            f"{name} ({redact(source.dsn.get_secret_value())})"
            for name, source in config.sources.items()
        )
        self.progress = progress
        self._dimensions = tuple(config.dimensions)
        self._cycle: Cycle | None = None
        self._done: dict[datetime, list[Sample]] = {}

    def values(self, times: Sequence[datetime]) -> dict[Key, list[Point]]:
        result: dict[Key, list[Point]] = {}
        for i, now in enumerate(times):
            for sample in self._run(now):
                key = self._key(sample)
                if key is not None:
                    result.setdefault(key, []).append((unix(now), sample.value))
            self.progress(i + 1, len(times))
        return result

    def bands(self, times: Sequence[datetime]) -> dict[Key, list[Band]] | None:
        return None  # the baselines are Prometheus recording rules over stored history

    def alerts(self, times: Sequence[datetime]) -> list[Alert] | None:
        return None  # only Prometheus evaluates the alert rules

    def close(self) -> None:
        if self._cycle is not None:
            self._cycle.close()

    def _run(self, now: datetime) -> list[Sample]:
        if now not in self._done:
            if self._cycle is None:
                self._cycle = Cycle(self.config)
            samples = self._cycle.run(now)
            failed = [f"{n}: {h.problem}" for n, h in self._cycle.health.items() if h.problem]
            if failed:  # a report with silent holes would mislead; say what broke
                raise ReportError(f"the cycle at {now.isoformat()} failed: " + "; ".join(failed))
            self._done[now] = samples
        return self._done[now]

    def _key(self, sample: Sample) -> Key | None:
        if sample.metric not in _NAMES:
            return None
        names = BY_NAME[sample.metric].labels_with(self._dimensions)
        labels = dict(zip(names, sample.labels, strict=True))
        if labels.pop("window") != self.window:
            return None
        return sample.metric, tuple(sorted(labels.items()))
