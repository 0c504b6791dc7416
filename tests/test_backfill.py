"""`recmon backfill`: blocks that the real Prometheus loads, holding at each step exactly what
`recmon once --now` prints for that step, and the recording rules' history beside them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from recmon.backfill import _LIVE_ONLY, BackfillError, _backfill_rules, _tool
from recmon.simulate import simulate
from tests.support.cli import recmon_ok
from tests.support.stack import prometheus

END = datetime(2026, 11, 20, 12, 0)
STEP = timedelta(minutes=5)  # the rule backfill reads raw samples within the 5m lookback
START = END - 6 * STEP
TIMES = [START, END - 3 * STEP, END]  # where `recmon once` checks the blocks

Series = tuple[str, frozenset[tuple[str, str]], float]  # name, labels, unix time


def unix(t: datetime) -> float:
    return t.replace(tzinfo=UTC).timestamp()


def test_backfilled_blocks_hold_what_once_prints(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    simulate(f"sqlite:///{database}", days=3, seed=5, end=END)
    config = tmp_path / "recmon.yml"
    config.write_text(f"sources:\n  demo: {{dsn: 'sqlite:///{database}'}}\n")
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: test\n    rules:\n"
        "      - {record: 'test:ctr_ratio:doubled', expr: '2 * recmon_ctr_ratio'}\n"
        # built on the rule above, as a baseline's band is built on its mean
        "      - {record: 'test:ctr_ratio:quadrupled', expr: '2 * test:ctr_ratio:doubled'}\n"
    )
    out = tmp_path / "blocks"
    recmon_ok(
        "backfill",
        "--config.file",
        str(config),
        "--from",
        START.isoformat(),
        "--to",
        END.isoformat(),
        "--step",
        "5m",
        "--out",
        str(out),
        "--rule-file",
        str(rules),
        timeout=600,
    )

    expected: dict[Series, float] = {}
    for t in TIMES:
        exposition = recmon_ok(
            "once", "--config.file", str(config), "--now", t.isoformat(), timeout=600
        ).stdout
        for family in text_string_to_metric_families(exposition):
            if family.name.removesuffix("_info") in _LIVE_ONLY:  # the parser names info families
                continue
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()), unix(t))
                expected[key] = sample.value

    (tmp_path / "prometheus.yml").write_text("global: {}\n")
    retention = "--storage.tsdb.retention.time=100y"
    # The blocks' directory is a Prometheus data directory.
    with prometheus(tmp_path / "prometheus.yml", tmp_path, retention, data=out) as base:
        got = samples(base, '{__name__=~"recmon_.+"}')
        # The rule's evaluation times are its own (offset by a hash of the group): compare each
        # with the raw series evaluated at that time.
        doubled = samples(base, "test:ctr_ratio:doubled")
        quadrupled = samples(base, "test:ctr_ratio:quadrupled")
        raw, twice = {}, {}
        for t in {t for _, _, t in doubled}:
            raw.update(instant_query(base, "2 * recmon_ctr_ratio", t))
            twice.update(instant_query(base, "4 * recmon_ctr_ratio", t))

    assert len(expected) > 500
    checked = {unix(t) for t in TIMES}
    assert {key: v for key, v in got.items() if key[2] in checked} == expected
    assert len({t for _, _, t in got}) == 7  # every step is there
    assert len(doubled) >= 8
    assert {(labels, t): v for (_, labels, t), v in doubled.items()} == raw
    assert {(labels, t): v for (_, labels, t), v in quadrupled.items()} == twice


def instant_query(base: str, query: str, t: float) -> dict[tuple[frozenset, float], float]:
    answer = requests.get(
        f"{base}/api/v1/query", params={"query": query, "time": t}, timeout=30
    ).json()
    assert answer["status"] == "success", answer
    return {
        (frozenset(s["metric"].items()), t): float(s["value"][1]) for s in answer["data"]["result"]
    }


def samples(base: str, selector: str) -> dict[Series, float]:
    """Every stored sample of `selector` from START to END, at its own timestamp."""
    window = int((END - START).total_seconds()) + 60
    answer = requests.get(
        f"{base}/api/v1/query",
        params={"query": f"{selector}[{window}s]", "time": unix(END)},
        timeout=30,
    ).json()
    assert answer["status"] == "success", answer
    result = {}
    for series in answer["data"]["result"]:
        labels = dict(series["metric"])
        name = labels.pop("__name__")
        for t, value in series["values"]:
            result[(name, frozenset(labels.items()), float(t))] = float(value)
    return result


def test_a_prometheus_that_cannot_start_names_its_error(tmp_path: Path) -> None:
    """The rules' throwaway Prometheus on a directory it cannot open (here a file where its
    write-ahead log goes; on a long backfill, too many blocks for its open-files limit) fails
    with the error Prometheus logged, not only its exit code."""
    out = tmp_path / "blocks"
    out.mkdir()
    (out / "wal").write_text("not a directory")
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n  - name: t\n    rules:\n      - {record: 'a:b', expr: 'up'}\n")
    with pytest.raises(BackfillError, match=r"prometheus exited with 1: .*opening storage failed"):
        _backfill_rules(_tool("promtool"), out, [rules], START, END, STEP)
    left = {p.name for p in out.iterdir()}
    assert not {"backfill-prometheus.yml", "backfill-prometheus.log"} & left, left
