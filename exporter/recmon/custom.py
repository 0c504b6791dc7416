"""User-defined SQL metrics (`custom_metrics:`): one gauge sample per result row."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import Connection, text

from recmon.config.schema import CustomMetric


class CustomMetricError(Exception):
    """The query ran but its result cannot be a metric; the message says why."""


def run(
    conn: Connection, metric: CustomMetric, now: datetime
) -> list[tuple[tuple[str, ...], float]]:
    """(label values, value) per row; rows with a null value give no sample (never a 0)."""
    result = conn.execute(text(metric.sql), {"now": now})
    columns = list(result.keys())
    missing = [c for c in (metric.value, *metric.labels) if c not in columns]
    if missing:
        raise CustomMetricError(
            f"column {', '.join(missing)} not in the result (columns: {', '.join(columns)})"
        )
    rows = result.mappings().fetchmany(metric.max_series + 1)
    if len(rows) > metric.max_series:
        raise CustomMetricError(f"more than max_series={metric.max_series} rows")
    samples: dict[tuple[str, ...], float] = {}
    for row in rows:
        if row[metric.value] is None:
            continue
        try:
            value = float(row[metric.value])
        except (TypeError, ValueError):
            raise CustomMetricError(
                f"value {row[metric.value]!r} of column {metric.value} is not a number"
            ) from None
        labels = tuple("" if row[name] is None else str(row[name]) for name in metric.labels)
        if labels in samples:
            raise CustomMetricError(
                f"two rows with the same labels {dict(zip(metric.labels, labels, strict=True))}"
            )
        if not math.isnan(value):
            samples[labels] = value
    return list(samples.items())
