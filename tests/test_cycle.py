"""The whole evaluation on a hand-built dataset, through SQLite, PostgreSQL and MariaDB.

Every expected value below is worked out by hand from SPEC's rules; the comments say which rule.
now = 12:00, A = delay = 1h: the 1h window evaluates impressions in [10:00, 11:00), the 24h window
those in [11:00 the day before, 11:00).
"""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score, roc_auc_score

from tests.support.rows import Samples, at, event, impression, run_cycle

NOW = datetime(2026, 11, 20, 12, 0)


def recs(
    request: str,
    user: str,
    ts: datetime,
    model: str,
    variant: str | None,
    items: list[tuple[str, float]],
) -> list[dict]:
    return [
        impression(request, user, item, rank, ts, model, variant, score)
        for rank, (item, score) in enumerate(items, start=1)
    ]


RECOMMENDATIONS = [
    *recs("r1", "u1", at("10:10"), "m", "A", [("i1", 0.9), ("i2", 0.4), ("i3", 0.2)]),
    *recs("r2", "u2", at("10:20"), "m", None, [("i1", 0.8), ("i4", 0.3), ("i1", 0.1)]),
    *recs("r3", "u1", at("08:00"), "m", "A", [("i2", 0.7), ("i5", 0.6)]),
    *recs("r4", "u3", at("11:10"), "n", None, [("i6", 0.5)]),  # inside the delay
    *recs("r5", "u1", at("10:40"), "n", None, [("i3", 3.0)]),  # a score outside [0, 1]
    *recs("r6", "u4", at("09:00", day=18), "p", None, [("i1", 0.5)]),  # older than 24h
    *recs("r7", "u3", at("10:50"), "m", "A", [("i6", 0.95)]),
    *recs("r8", "u5", at("20:00", day=19), "q", "B", [("i1", 0.5)]),  # 24h window only
]
INTERACTIONS = [
    event("u1", "i1", "click", at("10:15")),  # e1: r1/i1 clicked
    event("u1", "i1", "conversion", at("10:30")),  # e2: r1/i1 converted
    event("u1", "i3", "click", at("10:50")),  # e3: last touch is r5 (10:40), not r1
    event("u2", "i1", "click", at("10:25"), request="r2"),  # e4: r2's best-ranked i1
    event("u2", "i4", "watch", at("11:20"), value=30.0),  # e5: exactly imp.ts + A counts
    event("u2", "i4", "click", at("11:20:01")),  # e6: one second too late
    event("u1", "i2", "click", at("10:12"), request="r3"),  # e7: r3 is 2h old: nothing, not r1
    event("u1", "i5", "click", at("08:30"), request="rX"),  # e8: unknown request: nothing
    event("u1", "i2", "watch", at("08:05")),  # e9: null value adds 0
    event("u1", "i7", "click", at("10:30")),  # e10: organic, relevant for r1
    event("u1", "i2", "click", at("08:10")),  # e11: r3/i2 clicked
    event("u3", "i6", "click", at("11:15")),  # e12: r4 (11:10, not yet evaluated) takes it
    event("u2", "i8", "conversion", at("10:20")),  # e13: at t exactly: relevant for r2
    event("u1", "i1", "click", at("12:00")),  # e14: at now: in no fast-signal window
    event("u1", "i1", "share", at("11:30")),  # e15: unmapped event type
]
ITEMS = [
    {"item_id": f"i{n}", "created_at": at("00:00", day=1), "category": None} for n in range(1, 9)
]
MODELS = [
    {
        "model": "m",
        "version": "v1",
        "trained_at": at("00:00", day=1),
        "training_data_start": None,
        "training_data_end": None,
        "deployed_at": None,
    }
]

CONFIG = """
sources:
  main:
    dsn: {url}
windows: [1h, 24h]
k: [5, 10]
"""


TABLES = {
    "recommendations": RECOMMENDATIONS,
    "interactions": INTERACTIONS,
    "items": ITEMS,
    "models": MODELS,
}


@pytest.fixture
def samples(database_url: str) -> Samples:
    samples, cycle = run_cycle(database_url, CONFIG.format(url=database_url), TABLES, NOW)
    assert cycle.health["main"].problem is None
    return samples


def kpi(
    samples: dict, metric: str, model: str, variant: str, window: str, k: int | None = None
) -> float | None:
    labels = ("main", model, variant, window) + ((str(k),) if k else ())
    return samples.get((metric, labels))


def test_pairs_are_those_of_the_largest_window(samples: dict) -> None:
    pairs = {labels[1:3] for (metric, labels) in samples if metric == "impressions"}
    # n/default is only r5 (r4 is in the delay); p is older than 24h; variant null reads default.
    assert pairs == {("m", "A"), ("m", "default"), ("n", "default"), ("q", "B")}


@pytest.mark.parametrize(
    ("model", "variant", "window", "expected"),
    [
        # r1 + r7: e1 and e2 on i1; e3 went to r5; e7 names r3; e12 went to r4.
        (
            "m",
            "A",
            "1h",
            dict(
                recommendation_requests=2,
                impressions=4,
                clicks=1,
                conversions=1,
                watch_time_seconds=0,
                active_users=2,
            ),
        ),
        # adds r3: e11 clicks i2; e8 names an unknown request; e9 watches with a null value.
        (
            "m",
            "A",
            "24h",
            dict(
                recommendation_requests=3,
                impressions=6,
                clicks=2,
                conversions=1,
                watch_time_seconds=0,
                active_users=2,
            ),
        ),
        # r2: e4 credits rank 1 of the repeated i1 only; e5 watches 30 s; e6 is too late.
        (
            "m",
            "default",
            "1h",
            dict(
                recommendation_requests=1,
                impressions=3,
                clicks=1,
                conversions=0,
                watch_time_seconds=30,
                active_users=1,
            ),
        ),
        (
            "n",
            "default",
            "1h",
            dict(
                recommendation_requests=1,
                impressions=1,
                clicks=1,
                conversions=0,
                watch_time_seconds=0,
                active_users=1,
            ),
        ),
        # no impressions in the window: counts are a true 0.
        (
            "q",
            "B",
            "1h",
            dict(
                recommendation_requests=0,
                impressions=0,
                clicks=0,
                conversions=0,
                watch_time_seconds=0,
                active_users=0,
                evaluated_requests=0,
            ),
        ),
    ],
)
def test_engagement_counts(
    samples: dict, model: str, variant: str, window: str, expected: dict
) -> None:
    got = {name: kpi(samples, name, model, variant, window) for name in expected}
    assert got == expected


def test_ratios(samples: dict) -> None:
    assert kpi(samples, "ctr_ratio", "m", "A", "1h") == pytest.approx(1 / 4)
    assert kpi(samples, "conversion_ratio", "m", "A", "24h") == pytest.approx(1 / 6)
    assert kpi(samples, "click_conversion_ratio", "m", "A", "24h") == pytest.approx(1 / 2)
    # zero conversions over one click is a true 0, not absent
    assert kpi(samples, "click_conversion_ratio", "m", "default", "1h") == 0.0
    for name in (
        "ctr_ratio",
        "conversion_ratio",
        "click_conversion_ratio",
        "auc",
        "log_loss",
        "classification_accuracy",
    ):
        assert kpi(samples, name, "q", "B", "1h") is None, name


def ndcg(hit_ranks: list[int], n_relevant: int, k: int) -> float:
    dcg = sum(1 / math.log2(r + 1) for r in hit_ranks if r <= k)
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(n_relevant, k) + 1))
    return dcg / ideal


def test_ranking_means_over_evaluated_requests(samples: dict) -> None:
    # r1: R = {i1, i2 (e7: relevance ignores request_id), i3, i7 (organic)}; list i1, i2, i3.
    # r7: R = {i6}, found at rank 1 (relevance does not care that r4 took the click).
    assert kpi(samples, "evaluated_requests", "m", "A", "1h") == 2
    expected = {
        "precision": (3 / 5 + 1 / 5) / 2,
        "recall": (3 / 4 + 1) / 2,
        "map": ((1 + 1 + 1) / 4 + 1) / 2,
        "mrr": 1.0,
        "hit_rate": 1.0,
        "ndcg": (ndcg([1, 2, 3], 4, 5) + 1) / 2,
    }
    for metric, value in expected.items():
        assert kpi(samples, f"{metric}_at_k", "m", "A", "1h", k=5) == pytest.approx(value), metric
    assert kpi(samples, "precision_at_k", "m", "A", "1h", k=10) == pytest.approx((3 + 1) / 10 / 2)


def test_ranking_repeated_item_and_inclusive_start(samples: dict) -> None:
    # r2: R = {i1 (e4), i8 (e13 at t exactly)}; e6 is after t + A. i1 counts once, at rank 1.
    assert kpi(samples, "precision_at_k", "m", "default", "1h", k=5) == pytest.approx(1 / 5)
    assert kpi(samples, "recall_at_k", "m", "default", "1h", k=5) == pytest.approx(1 / 2)
    assert kpi(samples, "map_at_k", "m", "default", "1h", k=5) == pytest.approx(1 / 2)
    assert kpi(samples, "ndcg_at_k", "m", "default", "1h", k=5) == pytest.approx(ndcg([1], 2, 5))
    # r3 (24h only): R = {i2 (e11), i5 (e8: the unknown request_id does not matter)}.
    assert kpi(samples, "evaluated_requests", "m", "A", "24h") == 3
    assert kpi(samples, "recall_at_k", "m", "A", "24h", k=5) == pytest.approx((3 / 4 + 1 + 1) / 3)
    for metric in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate"):
        assert kpi(samples, f"{metric}_at_k", "q", "B", "1h", k=5) is None


def test_classification_against_scikit_learn(samples: dict) -> None:
    # m/A 1h: r1 (0.9 clicked, 0.4, 0.2) and r7 (0.95, its click went to r4)
    y, s = [1, 0, 0, 0], [0.9, 0.4, 0.2, 0.95]
    predicted = [int(v >= 0.5) for v in s]
    assert kpi(samples, "auc", "m", "A", "1h") == pytest.approx(roc_auc_score(y, s))
    assert kpi(samples, "log_loss", "m", "A", "1h") == pytest.approx(log_loss(y, s))
    assert kpi(samples, "classification_accuracy", "m", "A", "1h") == pytest.approx(
        accuracy_score(y, predicted)
    )
    assert kpi(samples, "classification_precision", "m", "A", "1h") == pytest.approx(
        precision_score(y, predicted)
    )
    assert kpi(samples, "classification_recall", "m", "A", "1h") == pytest.approx(
        recall_score(y, predicted)
    )
    # n/default: one impression, clicked, score 3.0: no AUC (one class), no log loss (> 1).
    assert kpi(samples, "auc", "n", "default", "1h") is None
    assert kpi(samples, "log_loss", "n", "default", "1h") is None
    assert kpi(samples, "classification_accuracy", "n", "default", "1h") == 1.0


def test_fast_signal_counts_raw_events_without_delay(samples: dict) -> None:
    def events(role: str, window: str) -> float | None:
        return samples.get(("interaction_events", ("main", role, window)))

    # [11:00, 12:00): e5, e6, e12; e14 at 12:00 is excluded; e15 is unmapped.
    assert (events("click", "1h"), events("conversion", "1h"), events("watch", "1h")) == (2, 0, 1)
    assert (events("click", "24h"), events("conversion", "24h"), events("watch", "24h")) == (
        9,
        2,
        2,
    )


def test_health(samples: dict) -> None:
    assert samples[("source_up", ("main",))] == 1.0
    assert samples[("cycle_errors", ("main",))] == 0.0
    assert samples[("last_success_timestamp_seconds", ("main",))] > 1.7e9
