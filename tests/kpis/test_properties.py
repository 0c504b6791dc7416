"""Properties every input must keep (hypothesis): ranking metrics within [0, 1] with NDCG <= 1,
engagement and classification ratios within [0, 1], and none of them changed by the order of
the rows. Attribution and catalogue health have theirs beside their own tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recmon.kpis.classification import classification_metrics
from recmon.kpis.engagement import engagement
from recmon.kpis.ranking import relevant_items, request_metrics

T0 = datetime(2026, 1, 1)
A = timedelta(hours=1)
KS = (1, 3, 5)

list_row = st.tuples(
    st.integers(0, 5),  # request
    st.integers(0, 8),  # item
    st.integers(1, 6),  # rank (repeats and gaps allowed)
)
event = st.tuples(st.integers(0, 3), st.integers(0, 8), st.integers(-30, 90))  # user, item, min


def _ranking(rows: list[tuple[int, int, int]], events: list[tuple[int, int, int]]) -> pd.DataFrame:
    lists = pd.DataFrame(rows, columns=["request_id", "item_id", "rank"]).astype(str)
    lists["rank"] = lists["rank"].astype(int)
    # Two items at one rank are invalid rows, which validation drops (the smallest item id
    # stays) before any KPI sees them.
    lists = lists.sort_values("item_id").drop_duplicates(["request_id", "rank"])
    requests = pd.DataFrame(
        {
            "request_id": [str(r) for r in range(6)],
            "user_id": [str(r % 4) for r in range(6)],
            "ts": [T0 + timedelta(minutes=5 * r) for r in range(6)],
        }
    )
    positives = pd.DataFrame(
        [(str(u), str(i), T0 + timedelta(minutes=m)) for u, i, m in events],
        columns=["user_id", "item_id", "ts"],
    )
    relevant = relevant_items(requests, positives, A)
    return request_metrics(lists, relevant, KS).sort_index()


@settings(max_examples=100, deadline=None)
@given(st.lists(list_row, max_size=30), st.lists(event, max_size=20), st.randoms())
def test_ranking_metrics_are_bounded_and_order_free(
    rows: list[tuple[int, int, int]], events: list[tuple[int, int, int]], random: object
) -> None:
    metrics = _ranking(rows, events)
    values = metrics.to_numpy()
    assert np.all((values >= 0) & (values <= 1 + 1e-12)), metrics
    for k in KS:
        assert (metrics[f"ndcg@{k}"] <= 1 + 1e-12).all()
        assert (metrics[f"precision@{k}"] <= metrics[f"hit_rate@{k}"]).all()
    shuffled_rows, shuffled_events = list(rows), list(events)
    random.shuffle(shuffled_rows)  # type: ignore[attr-defined]
    random.shuffle(shuffled_events)  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(metrics, _ranking(shuffled_rows, shuffled_events))


impression = st.tuples(
    st.integers(0, 4),  # request
    st.integers(0, 3),  # user
    st.booleans(),  # clicked
    st.booleans(),  # converted
    st.floats(0, 1e6, allow_nan=False),  # watch seconds
)


@settings(max_examples=60, deadline=None)
@given(st.lists(impression, max_size=40), st.randoms())
def test_engagement_ratios_are_bounded_and_order_free(
    rows: list[tuple[int, int, bool, bool, float]], random: object
) -> None:
    # A conversion implies a click in the data recmon reads only after attribution, where both
    # are labels of their own: conversions per click may exceed 1 only if conversions > clicks.
    frame = pd.DataFrame(
        rows, columns=["request_id", "user_id", "clicked", "converted", "watch_seconds"]
    )
    values = engagement(frame)
    for name in ("ctr_ratio", "conversion_ratio"):
        assert values[name] is None or 0 <= values[name] <= 1
    if values["clicks"] and values["conversions"] <= values["clicks"]:
        assert 0 <= values["click_conversion_ratio"] <= 1
    shuffled = list(rows)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    again = engagement(
        pd.DataFrame(
            shuffled, columns=["request_id", "user_id", "clicked", "converted", "watch_seconds"]
        )
    )
    assert again.keys() == values.keys()
    for name, value in values.items():
        assert again[name] == value or np.isclose(again[name], value), name


scored = st.tuples(
    st.one_of(st.floats(-5, 5), st.just(float("nan")), st.sampled_from([0.0, 0.5, 1.0])),
    st.booleans(),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(scored, max_size=40), st.floats(0, 1), st.randoms())
def test_classification_is_bounded_and_order_free(
    rows: list[tuple[float, bool]], threshold: float, random: object
) -> None:
    scores = np.array([s for s, _ in rows], dtype=float)
    labels = np.array([y for _, y in rows], dtype=bool)
    values = classification_metrics(scores, labels, threshold)
    for name in (
        "auc",
        "classification_accuracy",
        "classification_precision",
        "classification_recall",
    ):
        assert values[name] is None or 0 <= values[name] <= 1, (name, values[name])
    assert values["log_loss"] is None or values["log_loss"] >= 0
    order = list(range(len(rows)))
    random.shuffle(order)  # type: ignore[attr-defined]
    again = classification_metrics(scores[order], labels[order], threshold)
    for name, value in values.items():
        assert (value is None) == (again[name] is None), name
        if value is not None:
            assert np.isclose(again[name], value), name
