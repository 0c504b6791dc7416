"""Reading an exposition the way Prometheus would, and the values the hand-built data must show."""

from __future__ import annotations

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


def parse_hand_built(text: str) -> dict[str, Metric]:
    """The families of an exposition of tests/test_cycle.py's data at its `now`, after checking
    the figures every such exposition holds: its source is up and m/A's 1h CTR is 1/4."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    ctr = {
        (s.labels["model"], s.labels["variant"], s.labels["window"]): s.value
        for s in families["recmon_ctr_ratio"].samples
    }
    assert ctr[("m", "A", "1h")] == pytest.approx(0.25)
    assert families["recmon_source_up"].samples[0].value == 1
    return families
