"""Reference tests for catalogue health (SPEC, "KPI definitions": catalogue coverage, new-item
share, item age, Gini).

The Gini index is SPEC's G = sum((2i - n - 1) x_i) / (n sum(x)), x ascending, i from 1, over the
items with at least one impression. It is the same number as the mean absolute difference form
sum_ij |x_i - x_j| / (2 n^2 mean(x)) without the small-sample factor n / (n - 1); the tests check
both forms against each other and against hand-computed values.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recmon.kpis.catalog import catalog_health, gini

T0 = pd.Timestamp("2024-05-01T12:00:00", tz="UTC")
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def mean_absolute_difference_gini(counts) -> float:
    x = np.asarray(counts, dtype=float)
    n = len(x)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * n * n * x.mean()))


# --- gini ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([1, 3], 0.25),  # (-1*1 + 1*3) / (2*4)
        ([1, 2, 3], 2 / 9),  # (-2*1 + 0*2 + 2*3) / (3*6)
        ([1, 1, 2], 1 / 6),  # (-2 - 0 + 4) / (3*4)
        ([5, 1, 1, 1], 12 / 32),  # ascending 1, 1, 1, 5: (-3 - 1 + 1 + 3*5) / (4*8)
        ([0, 0, 4], 2 / 3),  # zeros given to the function count: (0 + 0 + 2*4) / (3*4)
    ],
)
def test_gini_hand_computed(counts, expected):
    assert gini(np.array(counts)) == pytest.approx(expected, abs=1e-12)


def test_gini_one_item_is_zero():
    assert gini(np.array([7])) == 0.0


@pytest.mark.parametrize("n", [2, 3, 10, 257])
def test_gini_equal_counts_is_zero(n):
    assert gini(np.full(n, 4)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 5, 20, 100])
def test_gini_maximal_concentration(n):
    # Only items with at least one impression count, so the most concentrated case is n - 1 items
    # shown once and one item shown m times; G tends to (n - 1) / n as m grows.
    m = 10**9
    counts = np.array([1] * (n - 1) + [m])
    exact = (n - 1) * (m - 1) / (n * (n - 1 + m))  # sum((2i-n-1)x_i) = (n-1)(m-1)
    assert gini(counts) == pytest.approx(exact, rel=1e-12)
    assert gini(counts) == pytest.approx((n - 1) / n, abs=1e-6)
    # with a zero count (allowed by the function, never produced by catalog_health) it is exact
    assert gini(np.array([0] * (n - 1) + [3])) == pytest.approx((n - 1) / n, abs=1e-12)


def test_gini_empty_is_none():
    assert gini(np.array([], dtype=int)) is None
    assert gini(np.array([0, 0])) is None


def test_gini_order_invariant():
    counts = np.array([9, 1, 4, 4, 2, 30, 7])
    expected = gini(np.sort(counts))
    rng = np.random.default_rng(1)
    for _ in range(5):
        assert gini(rng.permutation(counts)) == pytest.approx(expected, abs=1e-15)
    assert gini(list(counts)) == pytest.approx(expected, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=60))
def test_gini_equals_mean_absolute_difference_form(counts):
    assert gini(np.array(counts)) == pytest.approx(mean_absolute_difference_gini(counts), abs=1e-12)


def test_gini_is_not_the_small_sample_corrected_form():
    counts = [1, 2, 3]
    corrected = mean_absolute_difference_gini(counts) * 3 / 2
    assert gini(np.array(counts)) == pytest.approx(2 / 9)
    assert gini(np.array(counts)) != pytest.approx(corrected)


# --- catalog_health -----------------------------------------------------------------------------


def impressions(rows: list[tuple[str, pd.Timestamp, pd.Timestamp]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "ts", "created_at"]).astype(
        {"ts": "datetime64[ns, UTC]", "created_at": "datetime64[ns, UTC]"}
    )


def test_catalog_health_hand_computed():
    frame = impressions(
        [
            ("a", T0, T0 - 1 * DAY),  # new
            ("a", T0 + DAY, T0 - 1 * DAY),  # 2 days old: new
            ("a", T0, T0 - 10 * DAY),  # a second "a" row with other created_at: still item a
            ("b", T0, T0 - 30 * DAY),
            ("c", T0, T0 - 6 * DAY),  # new
        ]
    )
    health = catalog_health(frame, catalog_size=20, new_item_age=WEEK)
    assert health["catalog_coverage_ratio"] == pytest.approx(3 / 20)
    assert health["new_item_share_ratio"] == pytest.approx(3 / 5)
    ages_days = [1, 2, 10, 30, 6]
    assert health["recommended_item_age_seconds"] == pytest.approx(np.mean(ages_days) * 86400.0)
    # counts per item: a 3, b 1, c 1 -> ascending 1, 1, 3: (-2 + 0 + 2*3) / (3*5)
    assert health["gini_index"] == pytest.approx(4 / 15)


def test_new_item_share_is_strictly_less_than_new_item_age():
    frame = impressions(
        [
            ("exact", T0, T0 - WEEK),  # exactly new_item_age old: not new
            ("younger", T0, T0 - WEEK + timedelta(microseconds=1)),  # new
            ("older", T0, T0 - WEEK - timedelta(microseconds=1)),  # not new
        ]
    )
    health = catalog_health(frame, catalog_size=3, new_item_age=WEEK)
    assert health["new_item_share_ratio"] == pytest.approx(1 / 3)


def test_item_age_is_the_mean_over_impressions_not_items():
    # item "old" (100 days) shown 9 times, item "new" (0 days) once
    frame = impressions([("old", T0, T0 - 100 * DAY)] * 9 + [("new", T0, T0)])
    health = catalog_health(frame, catalog_size=2, new_item_age=WEEK)
    assert health["recommended_item_age_seconds"] == pytest.approx(90 * 86400.0)  # not 50 days
    assert health["new_item_share_ratio"] == pytest.approx(0.1)  # per impression, not per item
    assert health["catalog_coverage_ratio"] == 1.0


def test_gini_is_over_impression_counts_per_item():
    counts = {"a": 5, "b": 1, "c": 2, "d": 2}
    rows = [(item, T0, T0 - DAY) for item, n in counts.items() for _ in range(n)]
    health = catalog_health(impressions(rows), catalog_size=1000, new_item_age=WEEK)
    # items never shown (the other 996) do not count: only the 4 shown items
    assert health["gini_index"] == pytest.approx(gini(np.array(list(counts.values()))))
    assert health["gini_index"] == pytest.approx(mean_absolute_difference_gini([5, 1, 2, 2]))
    assert health["catalog_coverage_ratio"] == pytest.approx(4 / 1000)


def test_catalog_health_without_impressions():
    frame = impressions([])
    health = catalog_health(frame, catalog_size=50, new_item_age=WEEK)
    assert health == {
        "catalog_coverage_ratio": 0.0,  # 0, not absent
        "new_item_share_ratio": None,
        "recommended_item_age_seconds": None,
        "gini_index": None,
    }


def test_catalog_health_single_item_gini_zero():
    frame = impressions([("a", T0, T0 - 8 * DAY)] * 4)
    health = catalog_health(frame, catalog_size=4, new_item_age=WEEK)
    assert health["gini_index"] == 0.0
    assert health["new_item_share_ratio"] == 0.0
    assert health["catalog_coverage_ratio"] == 0.25
    assert health["recommended_item_age_seconds"] == pytest.approx(8 * 86400.0)
