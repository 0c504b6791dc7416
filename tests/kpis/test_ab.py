"""Reference tests for the A/B KPIs (SPEC, recmon_ab_relative_lift and recmon_ab_p_value).

lift = rate_variant / rate_control - 1; the p-value is the two-sided pooled two-proportion z-test,
checked against statsmodels' proportions_ztest with its defaults (alternative="two-sided",
prop_var=False: the pooled proportion in the variance).
"""

from __future__ import annotations

import math
import warnings

import pytest
from statsmodels.stats.proportion import proportions_ztest

from recmon.kpis.ab import lift, p_value

CASES = [
    # successes, trials, control successes, control trials
    (120, 1000, 100, 1000),
    (100, 1000, 120, 1000),
    (30, 200, 45, 400),
    (5, 50, 1, 60),
    (1, 10_000, 3, 12_000),
    (480, 500, 470, 500),
    (0, 100, 4, 100),  # no success in the variant
    (10, 10, 5, 10),  # every trial a success in the variant
    (50_000, 1_000_000, 50_500, 1_000_000),
    (7, 13, 7, 13),  # identical arms
]


def statsmodels_p(successes, trials, control_successes, control_trials) -> float:
    _, p = proportions_ztest([successes, control_successes], [trials, control_trials])
    return float(p)


@pytest.mark.parametrize("case", CASES)
def test_lift_is_ratio_of_rates_minus_one(case):
    s, n, cs, cn = case
    assert lift(*case) == pytest.approx((s / n) / (cs / cn) - 1, rel=1e-12)


def test_lift_hand_computed():
    assert lift(120, 1000, 100, 1000) == pytest.approx(0.2)
    assert lift(100, 1000, 120, 1000) == pytest.approx(-1 / 6)
    assert lift(0, 100, 4, 100) == -1.0
    assert lift(7, 13, 7, 13) == 0.0
    assert lift(30, 200, 45, 400) == pytest.approx(0.15 / 0.1125 - 1)


@pytest.mark.parametrize("case", CASES)
def test_p_value_matches_statsmodels(case):
    assert p_value(*case) == pytest.approx(statsmodels_p(*case), rel=1e-9, abs=1e-15)


def test_p_value_hand_computed():
    # 120/1000 vs 100/1000: pooled 0.11, se = sqrt(0.11 * 0.89 * 2 / 1000)
    z = 0.02 / math.sqrt(0.11 * 0.89 * 2 / 1000)
    assert p_value(120, 1000, 100, 1000) == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert z == pytest.approx(1.4293, abs=1e-4)
    assert p_value(120, 1000, 100, 1000) == pytest.approx(0.1529, abs=1e-4)
    assert p_value(7, 13, 7, 13) == pytest.approx(1.0)


def test_p_value_is_two_sided_and_symmetric():
    assert p_value(120, 1000, 100, 1000) == pytest.approx(p_value(100, 1000, 120, 1000))
    assert p_value(30, 200, 45, 400) == pytest.approx(p_value(45, 400, 30, 200))


@pytest.mark.parametrize(
    "case",
    [
        (0, 0, 10, 100),  # no trials in the variant
        (5, 100, 0, 0),  # no trials in the control
        (0, 0, 0, 0),
        (5, 100, 0, 100),  # control rate 0
        (0, 100, 0, 100),
    ],
)
def test_lift_none(case):
    assert lift(*case) is None


@pytest.mark.parametrize(
    "case",
    [
        (0, 0, 10, 100),  # no trials
        (5, 100, 0, 0),
        (0, 0, 0, 0),
        (0, 100, 0, 200),  # pooled rate 0: zero variance
        (100, 100, 200, 200),  # pooled rate 1: zero variance
    ],
)
def test_p_value_none(case):
    assert p_value(*case) is None
    _, n, _, cn = case
    if n and cn:
        # statsmodels has no p-value here either (division by a zero standard error)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert math.isnan(statsmodels_p(*case))


def test_p_value_defined_when_the_control_rate_is_zero():
    # lift is undefined (division by a zero rate) but the test is not
    assert lift(5, 100, 0, 100) is None
    assert p_value(5, 100, 0, 100) == pytest.approx(statsmodels_p(5, 100, 0, 100), rel=1e-9)
