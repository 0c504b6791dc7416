"""The rest of the catalogue through the whole cycle, on SQLite, PostgreSQL and MariaDB: invalid
rows, catalogue health, sessions, comparisons, A/B, drift and the model lifecycle.

now = 2026-11-20 12:00, A = delay = 1h, one window of 1h: evaluated impressions are in
[10:00, 11:00). Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from statsmodels.stats.proportion import proportions_ztest

from tests.support.rows import Samples, at, event, impression, run_cycle

NOW = datetime(2026, 11, 20, 12, 0)
# A row dated after the wall clock is future-dated; one after a past `now` only came later.
TOMORROW = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(days=1)
DAY = timedelta(days=1)


ITEMS = [
    {"item_id": "old", "created_at": at("00:00", day=1), "category": "a"},
    {"item_id": "new", "created_at": at("09:00", day=18), "category": "a"},  # 2 days old
    {"item_id": "edge", "created_at": at("10:30", day=13), "category": None},  # 7d at 10:30
    *({"item_id": f"x{n}", "created_at": at("00:00", day=1), "category": "b"} for n in range(7)),
]  # 10 items

RECOMMENDATIONS = [
    # model m (no variant): 4 valid rows in two lists
    impression("r1", "u1", "old", 1, at("10:10")),
    impression("r1", "u1", "new", 2, at("10:10")),
    impression("r2", "u2", "old", 1, at("10:30")),
    impression("r2", "u2", "edge", 2, at("10:30")),  # exactly 7 days old: not new
    # invalid rows, each counted once under its reason and left out of every KPI
    impression("r3", None, "old", 1, at("10:40")),  # null_id
    impression("r4", "u4", "ghost", 1, at("10:40")),  # unknown_item
    impression("r2", "u2", "x1", 2, at("10:30")),  # duplicate_rank: r2 already has 'edge' at rank 2
    impression("r5", "u5", "old", 1, at("12:30")),  # after now: later data, not evaluated
    impression("r7", "u5", "old", 1, TOMORROW),  # future_timestamp (after the wall clock)
    impression("r6", "u6", "old", 0, at("10:35")),  # invalid_rank: ranks start at 1
    # engines for the comparison: base vs cand for users c1 (same list) and c2 (disjoint)
    impression("b1", "c1", "x1", 1, at("10:05"), model="base"),
    impression("b1", "c1", "x2", 2, at("10:05"), model="base"),
    impression("b0", "c2", "x5", 1, at("10:01"), model="base"),  # older list of c2: ignored
    impression("b2", "c2", "x3", 1, at("10:06"), model="base"),
    impression("k1", "c1", "x1", 1, at("10:07"), model="cand"),
    impression("k1", "c1", "x2", 2, at("10:07"), model="cand"),
    impression("k2", "c2", "x4", 1, at("10:08"), model="cand"),
    impression("k3", "c3", "x6", 1, at("10:09"), model="cand"),  # c3 only saw cand
]
# A/B: model ab, control 40 impressions with 8 clicks, treatment 50 with 5 clicks
AB_ARMS = (("control", 40, 8), ("treatment", 50, 5))
for arm, shown, _ in AB_ARMS:
    for n in range(shown):
        RECOMMENDATIONS.append(
            impression(f"{arm}{n}", f"{arm}-u{n}", "x0", 1, at("10:20"), model="ab", variant=arm)
        )
INTERACTIONS = [
    event("u1", "new", "watch", at("10:15"), value=-5.0),  # negative_value
    event("u1", "new", "click", at("10:15"), session="s1"),
    event("u1", "old", "click", at("10:05"), session="s1"),  # s1 starts 10:05 ...
    event("u1", "old", "conversion", at("10:25"), session="s1"),  # ... ends 10:25: 20 min
    event("u9", "old", "click", at("10:10"), session="s9"),  # never served: not counted
    event("u1", "old", "click", at("12:30")),  # after now: later data
    event("u1", "old", "click", TOMORROW),  # future_timestamp
]
for arm, _, clicked in AB_ARMS:
    INTERACTIONS += [event(f"{arm}-u{n}", "x0", "click", at("10:21")) for n in range(clicked)]
# Training window of v2: 09:00 to 15:00 on the 18th. Hours 09-12: 100 clicks and 10 conversions;
# 13:00: 100 clicks, 0 conversions (anomalous: 0 < 0.2 * median 0.1); 14:00: 40 clicks and no
# conversion, too few clicks to count.
for hour, clicks, conversions in (
    (9, 100, 10),
    (10, 100, 10),
    (11, 100, 10),
    (12, 100, 10),
    (13, 100, 0),
    (14, 40, 0),
):
    ts = at(f"{hour:02d}:30", day=18)
    INTERACTIONS += [event("t", "old", "click", ts)] * clicks
    INTERACTIONS += [event("t", "old", "conversion", ts)] * conversions
MODELS = [
    {
        "model": "m",
        "version": "v1",
        "trained_at": at("00:00", day=10),
        "training_data_start": None,
        "training_data_end": at("00:00", day=10),
        "deployed_at": at("01:00", day=10),
    },
    {
        "model": "m",
        "version": "v2",
        "trained_at": at("16:00", day=18),
        "training_data_start": at("09:00", day=18),
        "training_data_end": at("15:00", day=18),
        "deployed_at": at("17:00", day=18),
    },
    {
        "model": "m",
        "version": "v3",
        "trained_at": at("06:00", day=20),
        "training_data_start": None,
        "training_data_end": None,
        "deployed_at": None,
    },  # trained, never deployed
]
MODEL_METRICS = [
    {"model": "m", "version": "v2", "metric": "auc", "value": 0.70, "ts": at("16:00", day=18)},
    {"model": "m", "version": "v2", "metric": "auc", "value": 0.72, "ts": at("16:30", day=18)},
    {"model": "m", "version": "v2", "metric": "auc", "value": 0.99, "ts": at("13:00")},  # future
]

CONFIG = """
sources:
  main: {{dsn: "{url}"}}
windows: [1h]
k: [1, 2]
comparisons: [{{baseline: base, candidate: cand}}]
"""


@pytest.fixture
def samples(database_url: str) -> Samples:
    tables = {
        "recommendations": RECOMMENDATIONS,
        "interactions": INTERACTIONS,
        "items": ITEMS,
        "models": MODELS,
        "model_metrics": MODEL_METRICS,
    }
    samples, cycle = run_cycle(database_url, CONFIG.format(url=database_url), tables, NOW)
    assert cycle.health["main"].problem is None
    return samples


def m(samples: dict, metric: str, model: str = "m", variant: str = "default") -> float | None:
    return samples.get((metric, ("main", model, variant, "1h")))


def test_invalid_rows_are_counted_and_left_out(samples: dict) -> None:
    invalid = {labels[1:]: v for (metric, labels), v in samples.items() if metric == "invalid_rows"}
    assert invalid == {
        ("recommendations", "null_id"): 1,
        ("recommendations", "invalid_rank"): 1,
        ("recommendations", "unknown_item"): 1,
        ("recommendations", "duplicate_rank"): 1,
        ("recommendations", "future_timestamp"): 1,
        ("recommendations", "invalid_score"): 0,
        ("interactions", "null_id"): 0,
        ("interactions", "negative_value"): 1,
        ("interactions", "future_timestamp"): 1,
        ("interactions", "invalid_value"): 0,
    }
    # the valid rows of m still count: r1 and r2 with two items each
    assert (m(samples, "impressions"), m(samples, "recommendation_requests")) == (4, 2)
    assert m(samples, "watch_time_seconds") == 0  # the negative watch is not attributed


def test_catalogue_health(samples: dict) -> None:
    assert m(samples, "catalog_coverage_ratio") == pytest.approx(3 / 10)  # old, new, edge
    # only 'new' (2 days old at 10:10) is younger than 7d; 'edge' is exactly 7d old at 10:30
    assert m(samples, "new_item_share_ratio") == pytest.approx(1 / 4)
    ages = [
        (at("10:10") - at("00:00", day=1)),
        (at("10:10") - at("09:00", day=18)),
        (at("10:30") - at("00:00", day=1)),
        timedelta(days=7),
    ]
    assert m(samples, "recommended_item_age_seconds") == pytest.approx(
        sum(a.total_seconds() for a in ages) / 4
    )
    # impressions per item: old 2, new 1, edge 1 -> x = [1, 1, 2]: (-2*1 + 0*1 + 2*2) / (3*4)
    assert m(samples, "gini_index") == pytest.approx(2 / 12)


def test_session_duration(samples: dict) -> None:
    # s1 (u1, 10:05 to 10:25) saw r1 at 10:10; s9's user was never served
    assert m(samples, "session_duration_seconds") == pytest.approx(20 * 60)


def test_comparison(samples: dict) -> None:
    def c(metric: str, k: int | None = None) -> float | None:
        labels = ("main", "base", "cand", "1h") + ((str(k),) if k else ())
        return samples.get((f"comparison_{metric}", labels))

    assert c("users") == 2  # c1 and c2; c3 only saw cand
    assert c("unique_items") == 2  # x4 and x6; x5 was in base's older list of c2
    # c1: identical lists; c2: latest base list [x3] vs cand [x4], disjoint
    assert c("overlap_at_k", 2) == pytest.approx((2 / 2 + 0) / 2)
    assert c("jaccard_at_k", 2) == pytest.approx((1 + 0) / 2)
    assert c("overlap_at_k", 1) == pytest.approx((1 + 0) / 2)
    assert c("rbo", 2) == pytest.approx((1 + 0) / 2)


def test_ab_against_statsmodels(samples: dict) -> None:
    labels = ("main", "ctr", "treatment", "control", "ab", "1h")
    assert samples[("ab_relative_lift", labels)] == pytest.approx((5 / 50) / (8 / 40) - 1)
    _, p_value = proportions_ztest([5, 8], [50, 40])
    assert samples[("ab_p_value", labels)] == pytest.approx(p_value)
    conversion = ("main", "conversion", "treatment", "control", "ab", "1h")
    assert ("ab_relative_lift", conversion) not in samples  # control converted nothing
    share = samples[("ab_traffic_share_ratio", ("main", "ab", "treatment", "1h"))]
    assert share == pytest.approx(50 / 90)


def test_score_drift_needs_a_reference(samples: dict) -> None:
    assert m(samples, "score_psi") is None  # nothing was served a week earlier


def test_model_lifecycle(samples: dict) -> None:
    info = {labels[1:] for (metric, labels) in samples if metric == "model_info"}
    assert info == {("m", "v2")}  # v3 was never deployed
    assert (
        samples[("model_age_seconds", ("main", "m"))] == (NOW - at("16:00", day=18)).seconds + 86400
    )
    end = samples[("model_training_data_end_timestamp_seconds", ("main", "m", "v2"))]
    assert end == datetime.fromisoformat("2026-11-18T15:00:00+00:00").timestamp()
    assert ("model_training_data_end_timestamp_seconds", ("main", "m", "v3")) not in samples
    assert samples[("model_training_data_anomalous_hours", ("main", "m", "v2"))] == 1
    assert samples[("model_offline_metric", ("main", "m", "v2", "auc"))] == pytest.approx(0.72)


def test_freshness_ignores_future_rows(samples: dict) -> None:
    def newest(table: str) -> float:
        return samples[("last_event_timestamp_seconds", ("main", table))]

    # the rows at 12:30 (after now) and tomorrow (future-dated) are not the newest
    assert newest("recommendations") == at("10:40").replace(tzinfo=UTC).timestamp()
    assert newest("interactions") == at("10:25").replace(tzinfo=UTC).timestamp()
    durations = {labels[1] for (metric, labels) in samples if metric == "query_duration_seconds"}
    assert {"impressions", "events", "event_minutes", "models", "training_hours"} <= durations
