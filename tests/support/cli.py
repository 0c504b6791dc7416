"""Running the `recmon` command as a user would: a subprocess of this interpreter."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def recmon(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recmon", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=None if env is None else dict(env),
        timeout=timeout,
        check=False,
    )


def recmon_ok(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """recmon() that must succeed; its stderr is the failure message otherwise."""
    result = recmon(*args, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result
