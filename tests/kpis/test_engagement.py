"""Reference tests for engagement counts and ratios (SPEC, "Gauges" and "Counts ... are 0")."""

from __future__ import annotations

import pandas as pd
import pytest

from recmon.kpis.engagement import engagement, ratio

COLUMNS = ["request_id", "user_id", "clicked", "converted", "watch_seconds"]


def frame(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=COLUMNS).astype(
        {"clicked": bool, "converted": bool, "watch_seconds": float}
    )


def test_counts_and_ratios() -> None:
    got = engagement(
        frame(
            ("r1", "u", True, True, 30.0),
            ("r1", "u", True, False, 0.0),
            ("r1", "u", False, False, 12.5),
            ("r2", "v", False, False, 0.0),
            ("r3", "u", True, False, 0.0),
        )
    )
    assert got == {
        "recommendation_requests": 3,
        "impressions": 5,
        "clicks": 3,
        "conversions": 1,
        "ctr_ratio": pytest.approx(3 / 5),
        "conversion_ratio": pytest.approx(1 / 5),
        "click_conversion_ratio": pytest.approx(1 / 3),
        "watch_time_seconds": pytest.approx(42.5),
        "active_users": 2,
    }


def test_no_impressions_gives_zero_counts_and_no_ratios() -> None:
    got = engagement(frame())
    assert got["impressions"] == 0
    assert got["recommendation_requests"] == 0
    assert got["active_users"] == 0
    assert got["clicks"] == 0
    assert got["conversions"] == 0
    assert got["watch_time_seconds"] == 0.0
    assert got["ctr_ratio"] is None
    assert got["conversion_ratio"] is None
    assert got["click_conversion_ratio"] is None


def test_no_clicks_makes_ctr_zero_and_click_conversion_absent() -> None:
    got = engagement(frame(("r1", "u", False, False, 0.0), ("r1", "u", False, False, 0.0)))
    assert got["ctr_ratio"] == 0.0  # a true zero, not absent
    assert got["conversion_ratio"] == 0.0
    assert got["click_conversion_ratio"] is None


def test_conversion_without_click() -> None:
    # a conversion attributed to an impression that was not clicked still counts
    got = engagement(frame(("r1", "u", False, True, 0.0), ("r1", "u", True, False, 0.0)))
    assert got["conversions"] == 1
    assert got["click_conversion_ratio"] == 1.0


def test_counts_are_plain_numbers() -> None:
    got = engagement(frame(("r1", "u", True, False, 1.0)))
    for key in ("recommendation_requests", "impressions", "clicks", "conversions", "active_users"):
        assert isinstance(got[key], int), key
    assert isinstance(got["watch_time_seconds"], float)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(1, 4, 0.25), (0, 4, 0.0), (0, 0, None), (3, 0, None), (0.0, 0.0, None)],
)
def test_ratio(numerator: float, denominator: float, expected: float | None) -> None:
    assert ratio(numerator, denominator) == expected
