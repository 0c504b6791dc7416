"""The report's tables, derived from a History: week over week, comparisons and A/B tests."""

from __future__ import annotations

import math
from dataclasses import dataclass

from recmon.catalogue import BY_NAME, EXPERIMENT, Metric
from recmon.report.history import WEEK, History, Key, Labels, unix

Z_95 = 1.959963984540054  # two-sided 95%
SIGNIFICANCE = 0.05
# The counts recmon's A/B z-test takes for each experiment metric (successes over impressions).
# A confidence interval is shown only when these counts give back the exported lift exactly, so
# if the test ever used other counts the report would drop the interval rather than misstate it.
_AB_COUNTS = {"ctr": "clicks", "conversion": "conversions"}


@dataclass(frozen=True)
class Change:
    key: Key
    last_week: float | None  # mean of the main window's values over the week
    this_week: float | None
    change: float | None  # this / last - 1

    @property
    def metric(self) -> Metric:
        return BY_NAME[self.key[0]]


@dataclass(frozen=True)
class Comparison:
    labels: Labels  # source, baseline, candidate (and dimensions)
    at: float
    overlap: dict[str, float]  # k -> mean share of the top k both models gave the same user
    unique_items: float | None
    users: float | None


@dataclass(frozen=True)
class Experiment:
    labels: Labels  # source, model, variant, control, experiment_metric (and dimensions)
    at: float
    lift: float
    p_value: float | None
    interval: tuple[float, float] | None  # 95% CI of the lift

    @property
    def significant(self) -> bool | None:
        return None if self.p_value is None else self.p_value < SIGNIFICANCE


def order(key: Key) -> tuple[int, Labels]:
    """Catalogue order, then labels (k as a number)."""
    names = list(BY_NAME)
    labels = tuple((n, v.zfill(6) if n == "k" else v) for n, v in key[1])
    return names.index(key[0]), labels


def week_over_week(history: History) -> list[Change]:
    end, week = unix(history.end), WEEK.total_seconds()
    rows = []
    for key in sorted(history.weekly, key=order):
        if BY_NAME[key[0]].group == EXPERIMENT:  # a lift's or p-value's change means nothing
            continue
        points = history.weekly[key]
        this = [v for t, v in points if t > end - week]
        last = [v for t, v in points if end - 2 * week < t <= end - week]
        now, before = _mean(this), _mean(last)
        ratio = now / before - 1 if now is not None and before else None
        rows.append(Change(key, before, now, ratio))
    return rows


def latest(history: History, metric: str) -> dict[Labels, tuple[float, float]]:
    """Each series' last value in the period, with its time."""
    return {
        labels: points[-1]
        for (name, labels), points in history.trends.items()
        if name == metric and points
    }


def comparisons(history: History) -> list[Comparison]:
    overlap, unique, users = (
        latest(history, m)
        for m in ("comparison_overlap_at_k", "comparison_unique_items", "comparison_users")
    )
    pairs: dict[Labels, dict[str, tuple[float, float]]] = {}
    for labels, point in overlap.items():
        rest = dict(labels)
        pairs.setdefault(tuple(sorted(rest.items() - {("k", rest["k"])})), {})[rest["k"]] = point
    rows = []
    for labels in sorted(pairs.keys() | unique.keys()):
        by_k = pairs.get(labels, {})
        stamps = [t for t, _ in by_k.values()] + ([unique[labels][0]] if labels in unique else [])
        rows.append(
            Comparison(
                labels,
                max(stamps or [unix(history.end)]),
                {k: v for k, (_, v) in sorted(by_k.items(), key=lambda kv: int(kv[0]))},
                unique[labels][1] if labels in unique else None,
                users[labels][1] if labels in users else None,
            )
        )
    return rows


def experiments(history: History) -> list[Experiment]:
    p_values = latest(history, "ab_p_value")
    rows = []
    for labels, (t, lift) in sorted(latest(history, "ab_relative_lift").items()):
        p = p_values.get(labels)
        rows.append(
            Experiment(
                labels,
                t,
                lift,
                p[1] if p and p[0] == t else None,
                _interval(history, labels, t, lift),
            )
        )
    return rows


def _interval(
    history: History, labels: Labels, t: float, lift: float
) -> tuple[float, float] | None:
    """95% CI of the relative lift (a risk ratio minus 1) by the log method (Katz), from the
    variant's and the control's counts at the same time and window as the lift."""
    ab = dict(labels)
    counts = _AB_COUNTS.get(ab["experiment_metric"])
    if counts is None:
        return None
    arm = {k: v for k, v in ab.items() if k not in ("experiment_metric", "control")}

    def at(metric: str, variant: str) -> float | None:
        key = (metric, tuple(sorted({**arm, "variant": variant}.items())))
        return dict(history.trends.get(key, [])).get(t)

    x1, n1 = at(counts, ab["variant"]), at("impressions", ab["variant"])
    x0, n0 = at(counts, ab["control"]), at("impressions", ab["control"])
    if not (x1 and n1 and x0 and n0):
        return None
    ratio = (x1 / n1) / (x0 / n0)
    if not math.isclose(ratio - 1, lift, rel_tol=1e-9, abs_tol=1e-12):
        return None  # not the counts the lift came from
    spread = Z_95 * math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    return ratio * math.exp(-spread) - 1, ratio * math.exp(spread) - 1


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
