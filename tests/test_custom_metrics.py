"""custom_metrics: the user's SQL becomes gauges, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections import Counter

import pytest

from recmon.collector import families
from recmon.config import ConfigError, parse_config
from recmon.evaluation import Sample
from tests.support.rows import run_cycle
from tests.test_cycle import INTERACTIONS, NOW, TABLES

CONFIG = """
sources:
  main: {{dsn: "{url}"}}
custom_metrics:
  - name: shop_events
    help: Interactions before now by type.
    sql: >-
      SELECT event_type AS kind, COUNT(*) AS events, NULL AS blank
      FROM interactions WHERE ts < :now GROUP BY event_type
    labels: [kind]
    value: events
  - name: shop_nothing
    help: A query whose values are all null.
    sql: SELECT event_type AS kind, NULL AS blank FROM interactions GROUP BY event_type
    labels: [kind]
    value: blank
  - name: shop_broken
    help: A query on a table that does not exist.
    sql: SELECT COUNT(*) AS n FROM no_such_table
    value: n
"""


def test_custom_metrics(database_url: str) -> None:
    config_text = CONFIG.format(url=database_url)
    config = parse_config(config_text)
    got, _ = run_cycle(database_url, config_text, TABLES, NOW)
    expected = Counter(e["event_type"] for e in INTERACTIONS if e["ts"] < NOW)
    assert {labels[1]: v for (m, labels), v in got.items() if m == "shop_events"} == expected
    assert not any(m == "shop_nothing" for m, _ in got)  # null values give no sample, not 0
    assert not any(m == "shop_broken" for m, _ in got)
    assert got[("custom_metric_up", ("main", "shop_events"))] == 1
    assert got[("custom_metric_up", ("main", "shop_nothing"))] == 1
    assert got[("custom_metric_up", ("main", "shop_broken"))] == 0
    assert got[("source_up", ("main",))] == 1  # a broken custom query leaves the KPIs alone
    assert ("ctr_ratio", ("main", "m", "A", "1h")) in got
    exposed = {f.name: f for f in families(as_samples(got), config)}
    assert exposed["shop_events"].documentation == "Interactions before now by type."
    assert exposed["shop_events"].samples[0].labels.keys() == {"source", "kind"}


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            "{name: recmon_ctr_ratio, help: h, sql: SELECT 1 AS v, value: v}",
            "3: custom_metrics: names must be unique and not recmon's own: recmon_ctr_ratio",
        ),
        (
            "{name: x, help: h, sql: SELECT 1 AS v, value: v, sources: [other]}",
            "3: custom_metrics: x: unknown sources other",
        ),
        (
            "{name: x, help: h, sql: SELECT 1 AS v, value: v, labels: [source]}",
            "4: custom_metrics.0.labels: labels must be distinct and not 'source'",
        ),
        (
            "{name: 'bad name', help: h, sql: SELECT 1 AS v, value: v}",
            "4: custom_metrics.0.name: String should match pattern",
        ),
    ],
)
def test_bad_custom_metrics_are_config_errors(metric: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(f"sources:\n  main: {{dsn: 'sqlite://'}}\ncustom_metrics:\n  - {metric}\n")
    assert f"<config>:{message}" in str(error.value)


def as_samples(samples: dict[tuple[str, tuple[str, ...]], float]) -> list[Sample]:
    return [Sample(metric, labels, value) for (metric, labels), value in samples.items()]
