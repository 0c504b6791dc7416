"""A/B test of two variants of one model: relative lift and a two-proportion z-test."""

from __future__ import annotations

import math


def lift(successes: int, trials: int, control_successes: int, control_trials: int) -> float | None:
    """rate / control rate - 1; None when either rate is undefined or the control's is 0."""
    if not trials or not control_trials or not control_successes:
        return None
    return (successes / trials) / (control_successes / control_trials) - 1


def p_value(
    successes: int, trials: int, control_successes: int, control_trials: int
) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None when it is undefined."""
    if not trials or not control_trials:
        return None
    pooled = (successes + control_successes) / (trials + control_trials)
    variance = pooled * (1 - pooled) * (1 / trials + 1 / control_trials)
    if variance == 0:
        return None
    z = (successes / trials - control_successes / control_trials) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))
