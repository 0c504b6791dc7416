"""`recmon backfill`: blocks that the real Prometheus loads, holding at each step exactly what
`recmon once --now` prints for that step, and the recording rules' history beside them."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from recmon.backfill import LIVE_ONLY, BackfillError, backfill_rules
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
            if family.name.removesuffix("_info") in LIVE_ONLY:  # the parser names info families
                continue
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()), unix(t))
                expected[key] = sample.value

    (tmp_path / "prometheus.yml").write_text("global: {}\n")
    retention = "--storage.tsdb.retention.time=100y"
    # The blocks' directory is a Prometheus data directory.
    with prometheus(tmp_path / "prometheus.yml", tmp_path, retention, data=out) as base:
        got = samples(base, '{__name__=~"recmon_.+"}')
        # Compare each rule's samples with the raw series evaluated at the rule's times.
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


def samples(
    base: str,
    selector: str,
    at: float = unix(END),
    window: int = int((END - START).total_seconds()) + 60,
) -> dict[Series, float]:
    """Every stored sample of `selector` in the `window` seconds to `at`, at its own timestamp."""
    answer = requests.get(
        f"{base}/api/v1/query",
        params={"query": f"{selector}[{window}s]", "time": at},
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
        backfill_rules(out, [rules], START, END, STEP)
    left = {p.name for p in out.iterdir()}
    assert not {"backfill-prometheus.yml", "backfill-prometheus.log"} & left, left


def test_rule_history_is_a_block_per_level_and_two_hours(tmp_path: Path) -> None:
    """Three days of two raw series, and six rules on three dependency levels evaluated every
    10 minutes: each level adds one block per 2 hours, whatever its number of rules (promtool's
    own rule backfill writes one per rule), and every rule holds exactly the values its
    expression gives at each evaluation time."""
    start = datetime(2026, 11, 1)
    raw_steps = 3 * 288  # 5-minute samples, the last at 23:55 on the third day
    end = start + (raw_steps - 1) * STEP

    def a(i: int) -> int:
        return i % 37

    def b(i: int) -> int:
        return 100 + i % 11

    raw = tmp_path / "raw.om"
    with raw.open("w") as f:
        f.write("# TYPE x gauge\n")
        for name, value in (("a", a), ("b", b)):
            for i in range(raw_steps):
                f.write(f'x{{k="{name}"}} {value(i)} {unix(start + i * STEP):.0f}\n')
        f.write("# EOF\n")
    out = tmp_path / "blocks"
    out.mkdir()
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(raw), str(out)],
        check=True,
        capture_output=True,
    )
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: t\n    interval: 10m\n    rules:\n"
        "      - {record: 't:x:sum', expr: 'sum without (k) (x)'}\n"
        "      - {record: 't:x:tripled', expr: '3 * x', labels: {how: tripled}}\n"
        # one recorded series that a range query returns in two (x's name where x > 20)
        "      - {record: 't:x:either', expr: 'x > 20 or 3 * x'}\n"
        "      - {record: 't:x:double', expr: '2 * t:x:sum'}\n"
        "      - {record: 't:x:back', expr: 't:x:double - t:x:sum'}\n"
        "      - {record: 't:x:four', expr: 't:x:sum + sum(t:x:tripled)'}\n"
    )
    before = blocks(out)
    assert len(before) == 36

    backfill_rules(out, [rules], start, end, STEP)

    assert len(blocks(out) - before) == 3 * 36  # levels 0, 1 and 2
    expected: dict[Series, float] = {}
    for n in range(3 * 144):  # every 10 minutes: raw samples 2n
        t = unix(start) + n * 600
        total = a(2 * n) + b(2 * n)
        expected[("t:x:sum", frozenset(), t)] = total
        expected[("t:x:double", frozenset(), t)] = 2 * total
        expected[("t:x:back", frozenset(), t)] = total
        expected[("t:x:four", frozenset(), t)] = 4 * total
        for name, value in (("a", a), ("b", b)):
            labels = frozenset({("k", name), ("how", "tripled")})
            expected[("t:x:tripled", labels, t)] = 3 * value(2 * n)
            either = value(2 * n) if value(2 * n) > 20 else 3 * value(2 * n)
            expected[("t:x:either", frozenset({("k", name)}), t)] = either
    (tmp_path / "prometheus.yml").write_text("global: {}\n")
    retention = "--storage.tsdb.retention.time=100y"
    with prometheus(tmp_path / "prometheus.yml", tmp_path, retention, data=out) as base:
        window = int((end - start).total_seconds()) + 60
        got = samples(base, '{__name__=~"t:.+"}', at=unix(end), window=window)
    assert got == expected


def blocks(data: Path) -> set[str]:
    return {p.name for p in data.iterdir() if (p / "meta.json").exists()}
