"""A one-line progress bar on stderr with the time left, for each phase of a backfill."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self) -> None:
        self.unit = ""
        self.started = time.monotonic()

    def __call__(self, done: int, total: int, unit: str) -> None:
        if unit != self.unit:  # a new phase: its own time left
            self.unit, self.started = unit, time.monotonic()
        left = (time.monotonic() - self.started) / done * (total - done)
        bar = "#" * (30 * done // total)
        sys.stderr.write(f"\rbackfill [{bar:<30}] {done}/{total} {unit}, {left:.0f} s left ")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
