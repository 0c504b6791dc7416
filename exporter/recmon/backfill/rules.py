"""The recording rules' history (the baselines), evaluated over backfilled blocks.

A throwaway Prometheus serves the blocks, each rule is evaluated there by range queries at its
group's interval, and the results go the KPIs' way: OpenMetrics, then promtool's blocks. That is
what `promtool tsdb create-blocks-from rules` does, except that promtool writes a block per rule
and 2 hours (about 47,000 for 30 days of the 130 baseline rules, more than a Prometheus can hold
open), where this writes one per 2 hours for all the rules of a level. A rule that reads another
recording rule (a band built on its mean) needs that rule's history served, so the rules go a
dependency level at a time, each level on a Prometheus that holds the levels below.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any

import yaml

from recmon.backfill.openmetrics import OpenMetrics
from recmon.backfill.prometheus import (
    MAX_POINTS,
    create_blocks,
    query_range,
    throwaway_prometheus,
)
from recmon.durations import parse_duration

DAY_MS = 86_400_000  # a file of results per day: whole 2-hour blocks, and a bounded memory
QUERIES_AT_ONCE = 4  # Prometheus evaluates range queries on all cores


def backfill_rules(
    out: Path,
    rule_files: Sequence[Path],
    start: datetime,
    end: datetime,
    step: timedelta,
    progress: Callable[[int, int, str], None] = lambda done, total, unit: None,
) -> int:
    """Add the history of `rule_files`' recording rules over [start, end] to the blocks in `out`,
    evaluated every group `interval` (`step` where a group has none); returns the samples
    written."""
    levels = rule_levels(rule_files)
    total = sum(
        1 for level in levels for group in level for _ in _days(start, end, _interval(group, step))
    )
    written, done = 0, 0
    for level in levels:
        level_out = out / "rules-blocks"  # left by a failed run: its blocks are incomplete
        shutil.rmtree(level_out, ignore_errors=True)
        level_out.mkdir()
        with (
            throwaway_prometheus(out, out / "backfill-prometheus") as url,
            ThreadPoolExecutor(QUERIES_AT_ONCE) as pool,
        ):
            for group in level:
                interval = _interval(group, step)
                for times in _days(start, end, interval):
                    samples = OpenMetrics()
                    evaluate = partial(_evaluate, url, times=times, interval=interval)
                    results = pool.map(evaluate, group["rules"])
                    for rule, series in zip(group["rules"], results, strict=True):
                        written += _add(samples, rule, series)
                    path = level_out / f"{times[0]}.om"
                    samples.write(path)
                    create_blocks(path, level_out)
                    path.unlink()
                    done += 1
                    progress(done, total, "rule days")
        # Beside the other blocks, where the next level's Prometheus reads them.
        for block in level_out.iterdir():
            block.rename(out / block.name)
        level_out.rmdir()
    return written


def _interval(group: Mapping[str, Any], step: timedelta) -> int:
    """The group's evaluation interval in milliseconds."""
    interval = parse_duration(group["interval"]) if "interval" in group else step
    return int(interval.total_seconds() * 1000)


def _days(start: datetime, end: datetime, interval: int) -> Iterator[list[int]]:
    """The evaluation times in [start, end] (Unix milliseconds, multiples of `interval`), a day
    at a time and at most MAX_POINTS at once."""
    first = -(-_ms(start) // interval) * interval
    times = range(first, _ms(end) + 1, interval)
    for _, day in groupby(times, key=lambda t: t // DAY_MS):
        points = list(day)
        for i in range(0, len(points), MAX_POINTS):
            yield points[i : i + MAX_POINTS]


def _evaluate(
    url: str, rule: Mapping[str, Any], times: Sequence[int], interval: int
) -> list[tuple[dict[str, str], list[tuple[float, str]]]]:
    return query_range(url, str(rule["expr"]), times[0] / 1000, times[-1] / 1000, interval / 1000)


def _add(
    samples: OpenMetrics,
    rule: Mapping[str, Any],
    series: Sequence[tuple[dict[str, str], list[tuple[float, str]]]],
) -> int:
    """A rule's results as Prometheus records them: its name, its labels over the result's. A
    range query can return one recorded series in parts, told apart by a `__name__` that the
    record replaces (`a >= b or c` keeps a's name where a is kept, and none elsewhere), so parts
    are merged back in time order."""
    merged: dict[tuple[tuple[str, str], ...], dict[float, str]] = {}
    for labels, values in series:
        own = {k: v for k, v in labels.items() if k != "__name__"}
        own.update({k: str(v) for k, v in rule.get("labels", {}).items()})
        merged.setdefault(tuple(sorted(own.items())), {}).update(values)
    name = rule["record"]
    for key, values in merged.items():
        for t in sorted(values):
            samples.add(name, "gauge", "", name, dict(key), values[t], t)
    return sum(len(values) for values in merged.values())


def name_pattern(name: str) -> str:
    """A regular expression for the metric `name` in PromQL, not as part of a longer name."""
    return rf"(?<![\w:]){re.escape(name)}(?![\w:])"


def _ms(t: datetime) -> int:
    return round(t.replace(tzinfo=UTC).timestamp() * 1000)


def rule_levels(rule_files: Sequence[Path]) -> list[list[dict]]:
    """The recording rules of `rule_files` as groups, a list per level: level 0 reads only raw
    series, level n reads recording rules of levels below n. Groups keep their name and interval;
    alerting rules leave no history."""
    groups = [
        group
        for f in rule_files
        for group in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("groups", [])
    ]
    recorded = {r["record"] for g in groups for r in g.get("rules", []) if "record" in r}
    level: dict[str, int] = {}

    def level_of(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in level:
            rules = [r for g in groups for r in g.get("rules", []) if r.get("record") == name]
            uses = {
                other
                for r in rules
                for other in recorded - seen - {name}
                if re.search(name_pattern(other), str(r["expr"]))
            }
            level[name] = 1 + max((level_of(u, seen | {name}) for u in uses), default=-1)
        return level[name]

    levels: list[list[dict]] = []
    for group in groups:
        for rule in group.get("rules", []):
            if "record" not in rule:
                continue
            n = level_of(rule["record"])
            levels += [[] for _ in range(n + 1 - len(levels))]
            target = levels[n]
            if not target or target[-1]["name"] != group["name"]:
                target.append({**{k: v for k, v in group.items() if k != "rules"}, "rules": []})
            target[-1]["rules"].append(rule)
    return levels
