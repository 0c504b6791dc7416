"""The model lifecycle a long-running cycle reports, with what it keeps between cycles (the past
training hours, each version's past window, the recent and deployed versions), equals what a new
cycle reports at the same time: across the demo's nightly retrain and deployment, while events
for the new training windows' last hour still arrive, and after the registry changes."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from recmon.config import parse_config
from recmon.cycle import Cycle
from recmon.evaluation import Sample
from recmon.simulate import simulate
from tests.support.rows import evaluate_once

# The demo retrains every model at about 02:00 on the 7 days of data before 02:00 and deploys
# within the hour or so; events for the windows' last hour may arrive until 03:00 (A = 1h).
NIGHT = datetime(2026, 11, 19, 2, 0)
HOUR = timedelta(hours=1)
ANOMALOUS = ("model_training_data_anomalous_hours", ("demo", "personal", "hotfix"))
TIMES = [NIGHT - timedelta(minutes=10) + timedelta(minutes=11 * n) for n in range(11)]


def lifecycle(samples: list[Sample]) -> dict:
    return {(s.metric, s.labels): s.value for s in samples if s.metric.startswith("model_")}


def test_a_kept_cycle_reports_what_a_new_one_does(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    simulate(f"sqlite:///{database}", days=3, seed=5, end=datetime(2026, 11, 20))
    text = f"sources: {{demo: {{dsn: 'sqlite:///{database}'}}}}\nwindows: [1h]\n"
    kept = Cycle(parse_config(text))

    def compare(now: datetime) -> dict:
        warm, cold = lifecycle(kept.run(now)), lifecycle(evaluate_once(text, now))
        assert warm == cold, now
        return cold

    def register(version: str, trained: datetime, start: datetime, end: datetime) -> None:
        with sqlite3.connect(database) as db:
            db.execute(
                "INSERT INTO models VALUES ('personal', ?, ?, ?, ?, ?)",
                (version, str(trained), str(start), str(end), str(trained)),
            )

    try:
        for now in TIMES:
            if now == TIMES[2]:  # a hotfix trained on data up to 02:00, deployed at once
                register("hotfix", NIGHT + timedelta(minutes=5), NIGHT - timedelta(days=7), NIGHT)
            if now == TIMES[4]:
                # Late clicks without conversions for its last hour, whose events may still
                # arrive until 03:00: the hour turns anomalous.
                with sqlite3.connect(database) as db:
                    db.executemany(
                        "INSERT INTO interactions (user_id, item_id, event_type, ts)"
                        " VALUES ('late', 'i1', 'click', ?)",
                        [(str(NIGHT - timedelta(minutes=30)),)] * 200,
                    )
            cold = compare(now)
            if now == TIMES[3]:
                before = cold[ANOMALOUS]
        assert cold[ANOMALOUS] == before + 1
        # Another one at the same `now`: no registry time passed since the last cycle, only
        # the registry changed.
        register("hotfix2", now - timedelta(minutes=1), now - timedelta(days=7), now - HOUR)
        assert ("model_info", ("demo", "personal", "hotfix2")) in compare(now)
    finally:
        kept.close()
