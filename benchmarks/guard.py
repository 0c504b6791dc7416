"""Run a measured process under a memory and time limit, so that a window the engine cannot
hold is reported as such instead of taking the machine (and other people's work) with it."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    memory_bytes: float
    seconds: float


class Exceeded(Exception):
    """The process went past a limit (or died) and was stopped; the message says which."""

    def __init__(self, message: str, elapsed: float, rss: float) -> None:
        super().__init__(message)
        self.elapsed, self.rss = elapsed, rss  # at the stop: lower bounds of what it needed


def _rss(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.0


class Guarded:
    """A child that answers each request line with one JSON line (or one line in all)."""

    def __init__(self, command: Sequence[str], limits: Limits, env: dict[str, str] | None = None):
        self.limits = limits
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.sent = time.perf_counter()  # the time limit runs from here until a request is sent

    def send(self, request: str) -> None:
        """Send `request`; the time limit runs from now, even while another job is waited for
        (its memory is watched only while this one is)."""
        assert self.process.stdin
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        self.sent = time.perf_counter()

    def ask(self, request: str | None = None) -> dict[str, Any]:
        """Send `request` (if any) and wait for the answer within the limits."""
        assert self.process.stdout
        if request is not None:
            self.send(request)
        started, rss = self.sent, 0.0
        while True:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            elapsed = time.perf_counter() - started
            if ready:
                line = self.process.stdout.readline()
                if not line:
                    code = self.process.wait()
                    raise Exceeded(f"exited with status {code}", elapsed, rss)
                return dict(json.loads(line))
            rss = max(rss, _rss(self.process.pid))
            if rss > self.limits.memory_bytes:
                self.kill()
                guard = self.limits.memory_bytes / 2**30
                raise Exceeded(
                    f"stopped at {rss / 2**30:.1f} GiB RSS after {elapsed:.0f} s "
                    f"(memory guard {guard:.0f} GiB)",
                    elapsed,
                    rss,
                )
            if elapsed > self.limits.seconds:
                self.kill()
                raise Exceeded(f"stopped after {elapsed:.0f} s (time guard)", elapsed, rss)

    def close(self) -> None:
        """End of input: the child finishes and exits (or is killed after 10 s)."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
