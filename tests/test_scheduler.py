from __future__ import annotations

import itertools
import logging
import threading
import time

import pytest

from recmon.scheduler import Scheduler


def test_never_two_cycles_at_once_and_an_overrun_skips_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    running, overlaps, starts = threading.Lock(), [], []

    def job() -> None:
        if not running.acquire(blocking=False):
            overlaps.append(time.monotonic())
            return
        starts.append(time.monotonic())
        time.sleep(0.5 if len(starts) == 2 else 0.01)  # the second cycle overruns 0.2 s slots
        running.release()

    scheduler = Scheduler(0.2, job)
    with caplog.at_level(logging.WARNING, logger="recmon.scheduler"):
        scheduler.start()
        time.sleep(1.5)
        scheduler.stop(timeout=5)
    assert overlaps == []
    # slots at 0, 0.2, 0.4, ...: the run at 0.2 ends at ~0.7, so 0.4 and 0.6 are skipped and the
    # next run starts on the grid at 0.8, not straight after the overrun.
    assert starts[2] - starts[0] == pytest.approx(0.8, abs=0.08)
    gaps = [b - a for a, b in itertools.pairwise(starts[2:])]
    assert len(gaps) >= 2 and all(g == pytest.approx(0.2, abs=0.08) for g in gaps)
    overruns = [r for r in caplog.records if "overran" in r.getMessage()]
    assert len(overruns) == 1 and overruns[0].skipped == 2
