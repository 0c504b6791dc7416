"""The snapshot /metrics serves: metric families built from one complete cycle's samples.

Families are built off the scrape path and swapped in as one tuple, so a scrape sees the previous
complete cycle or the new one, never half of each.
"""

from __future__ import annotations

import platform
from collections import defaultdict
from collections.abc import Iterable, Sequence

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from recmon import __version__
from recmon.catalogue import BY_NAME
from recmon.config.schema import CustomMetric
from recmon.evaluation import Sample


def families(
    samples: Iterable[Sample], custom: Sequence[CustomMetric] = (), dimensions: Sequence[str] = ()
) -> tuple[Metric, ...]:
    """One family per catalogue metric that has samples, in catalogue order, then the custom
    metrics, then build info."""
    by_metric: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_metric[sample.metric].append(sample)
    result: list[Metric] = []
    for name, spec in BY_NAME.items():
        if spec.kind == "info":
            continue
        family_type = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
        labels = spec.labels_with(tuple(dimensions))
        family = family_type(spec.full_name, spec.help, labels=list(labels))
        for sample in by_metric.get(name, ()):
            family.add_metric([str(v) for v in sample.labels], sample.value)
        if family.samples:
            result.append(family)
    for metric in custom:
        family = GaugeMetricFamily(metric.name, metric.help, labels=["source", *metric.labels])
        for sample in by_metric.get(metric.name, ()):
            family.add_metric(list(sample.labels), sample.value)
        if family.samples:
            result.append(family)
    result.append(build_info())
    return tuple(result)


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
