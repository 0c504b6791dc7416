"""The snapshot /metrics serves: metric families built from one complete cycle's samples.

Families are built off the scrape path and swapped in as one tuple, so a scrape sees the previous
complete cycle or the new one, never half of each.
"""

from __future__ import annotations

import gzip
import platform
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from recmon import __version__
from recmon.catalogue import BY_NAME
from recmon.config import Config
from recmon.evaluation import Sample


def families(samples: Iterable[Sample], config: Config) -> tuple[Metric, ...]:
    """One family per catalogue metric that has samples, in catalogue order, then the config's
    custom metrics, then build info."""
    by_metric: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_metric[sample.metric].append(sample)
    filled = [
        _filled(
            CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily,
            spec.full_name,
            spec.help,
            spec.labels_with(tuple(config.dimensions)),
            by_metric[name],
        )
        for name, spec in BY_NAME.items()
        if spec.kind != "info"
    ]
    filled += [
        _filled(GaugeMetricFamily, m.name, m.help, ("source", *m.labels), by_metric[m.name])
        for m in config.custom_metrics
    ]
    return (*(family for family in filled if family.samples), build_info())


def _filled(
    family_type: type[GaugeMetricFamily | CounterMetricFamily],
    name: str,
    help: str,
    labels: Sequence[str],
    samples: list[Sample],
) -> Metric:
    family = family_type(name, help, labels=list(labels))
    for sample in samples:
        family.add_metric([str(v) for v in sample.labels], sample.value)
    return family


def build_info() -> Metric:
    spec = BY_NAME["build"]
    info = InfoMetricFamily(spec.full_name, spec.help)
    info.add_metric([], {"version": __version__, "python_version": platform.python_version()})
    return info


class SnapshotCollector(Collector):
    def __init__(self) -> None:
        self._families: tuple[Metric, ...] = ()

    def publish(self, snapshot: tuple[Metric, ...]) -> None:
        self._families = snapshot  # one reference swap: old or new, never half

    def collect(self) -> Iterable[Metric]:
        return self._families


@dataclass(frozen=True)
class Exposition:
    """A snapshot's exposition text, rendered once per cycle rather than once per scrape: ten
    thousand series take a tenth of a second to render, and many scrapers would each pay it."""

    text: bytes = b""
    gzipped: bytes = b""

    @classmethod
    def render(cls, registry: CollectorRegistry) -> Exposition:
        text = generate_latest(registry)
        return cls(text, gzip.compress(text, compresslevel=6))
