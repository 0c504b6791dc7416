"""A source that fails: source_up 0, its KPIs absent, the other source unaffected, recovery."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recmon.config import parse_config
from recmon.cycle import Cycle
from tests.support.databases import write_tables
from tests.test_cycle import NOW, TABLES


def test_outage_and_recovery(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = TABLES
    for name in ("a", "b"):
        write_tables(f"sqlite:///{tmp_path / name}.db", data)
    cycle = Cycle(
        parse_config(f"""sources:
  a: {{dsn: "sqlite:///{tmp_path / "a.db"}"}}
  b: {{dsn: "sqlite:///{tmp_path / "b.db"}"}}
""")
    )

    def run() -> dict[tuple[str, str], list[float]]:
        result: dict[tuple[str, str], list[float]] = {}
        for s in cycle.run(NOW):
            result.setdefault((s.metric, s.labels[0]), []).append(s.value)
        return result

    assert run()[("source_up", "a")] == [1.0]
    (tmp_path / "a.db").rename(tmp_path / "away.db")
    with caplog.at_level(logging.INFO, logger="recmon.cycle"):
        down, still_down = run(), run()
        for samples in (down, still_down):
            assert samples[("source_up", "a")] == [0.0]
            assert ("ctr_ratio", "a") not in samples and ("impressions", "a") not in samples
            assert samples[("source_up", "b")] == [1.0] and ("ctr_ratio", "b") in samples
        assert still_down[("cycle_errors", "a")] == [2.0]
        (tmp_path / "away.db").rename(tmp_path / "a.db")
        back = run()
    assert back[("source_up", "a")] == [1.0] and ("ctr_ratio", "a") in back
    assert back[("cycle_errors", "a")] == [2.0]  # a counter: it never goes back
    # one line when it went down (not one per cycle) and one when it came back
    assert [(r.getMessage(), r.source) for r in caplog.records] == [
        ("source failed", "a"),
        ("source recovered", "a"),
    ]
    cycle.close()
