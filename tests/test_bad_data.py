"""Data no schema should allow, through the whole cycle: text where numbers belong (SQLite keeps
whatever it is given), infinities, huge values, non-ASCII ids. Each bad value is counted under
its reason and left out; the cycle never fails and the good rows give their hand-computed KPIs.

now = 2026-11-20 12:00, A = delay = 1h, window 1h: evaluated impressions in [10:00, 11:00).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from recmon.config import parse_config
from recmon.cycle import Cycle
from tests.support.databases import write_tables
from tests.support.rows import at, event, impression

NOW = datetime(2026, 11, 20, 12, 0)
ITEMS = [
    {"item_id": item, "created_at": at("00:00", day=1), "category": None}
    for item in ("a", "b", "ü-книга", "z")
]


RECOMMENDATIONS = [
    impression("r1", "u1", "a", 1, at("10:10"), score=0.9),
    impression("r1", "u1", "b", 2, at("10:10")),  # score 'high' below: invalid_score
    impression("r2", "ユーザー", "ü-книга", 1, at("10:20"), score=float("inf")),  # invalid_score
    impression("r2", "ユーザー", "z", 2, at("10:20"), score=0.1),
    impression("r3", "u3", "a", 1, at("10:30")),  # rank 'first' below: invalid_rank
]
INTERACTIONS = [
    event("u1", "a", "click", at("10:12")),
    event("ユーザー", "ü-книга", "click", at("10:25")),
    event("ユーザー", "ü-книга", "watch", at("10:26"), value=1e300),  # huge, but a number
    event("u1", "a", "watch", at("10:13"), value=1.0),  # value 'n/a' below: invalid_value
]
# SQLAlchemy's types refuse text in number columns; SQLite itself stores it.
TEXT_IN_NUMBERS = [
    "UPDATE recommendations SET score = 'high' WHERE request_id = 'r1' AND item_id = 'b'",
    "UPDATE recommendations SET rank = 'first' WHERE request_id = 'r3'",
    "UPDATE interactions SET value = 'n/a' WHERE event_type = 'watch' AND user_id = 'u1'",
]
CONFIG = """
sources:
  main: {{dsn: "{url}"}}
windows: [1h]
k: [2]
"""


@pytest.fixture
def samples(tmp_path: Path) -> dict:
    database = tmp_path / "bad.db"
    url = f"sqlite:///{database}"
    write_tables(
        url, {"recommendations": RECOMMENDATIONS, "interactions": INTERACTIONS, "items": ITEMS}
    )
    with sqlite3.connect(database) as db:
        for statement in TEXT_IN_NUMBERS:
            assert db.execute(statement).rowcount == 1
    cycle = Cycle(parse_config(CONFIG.format(url=url)))
    try:
        samples = {(s.metric, s.labels): s.value for s in cycle.run(NOW)}
    finally:
        cycle.close()
    assert cycle.health["main"].problem is None
    return samples


def test_bad_values_are_counted(samples: dict) -> None:
    invalid = {labels[1:]: v for (metric, labels), v in samples.items() if metric == "invalid_rows"}
    assert invalid[("recommendations", "invalid_score")] == 2
    assert invalid[("recommendations", "invalid_rank")] == 1
    assert invalid[("interactions", "invalid_value")] == 1
    assert sum(invalid.values()) == 4


def test_the_good_rows_give_their_kpis(samples: dict) -> None:
    def kpi(name: str) -> float:
        return samples[(name, ("main", "m", "default", "1h"))]

    # r1 and r2: four impressions, two clicked (a by u1, the non-ASCII item by its user)
    assert (kpi("impressions"), kpi("clicks"), kpi("active_users")) == (4, 2, 2)
    assert kpi("ctr_ratio") == pytest.approx(0.5)
    assert kpi("watch_time_seconds") == pytest.approx(1e300)  # the text value adds 0
    # Scores left: a 0.9 (clicked) and z 0.1 (not): a perfect ranking of the two
    assert kpi("auc") == pytest.approx(1.0)
