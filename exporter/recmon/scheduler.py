"""The background loop: one cycle at a time, on a fixed grid; an overrun skips the missed slots."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("recmon.scheduler")


class Scheduler:
    def __init__(self, interval: float, job: Callable[[], None]) -> None:
        self.interval = interval
        self.job = job
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="recmon-cycle", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self.stopped.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        due = time.monotonic()
        while not self.stopped.is_set():
            started = time.monotonic()
            try:
                self.job()
            except Exception:  # the loop must outlive any one cycle
                log.exception("cycle failed")
            finished = time.monotonic()
            due += self.interval
            if finished > due:
                # Running the late cycle now would start two cycles back to back; wait for the grid.
                skipped = math.ceil((finished - due) / self.interval)
                log.warning(
                    "cycle overran its interval; skipping the next",
                    extra={"duration_seconds": round(finished - started, 3), "skipped": skipped},
                )
                due += skipped * self.interval
            self.stopped.wait(due - time.monotonic())
