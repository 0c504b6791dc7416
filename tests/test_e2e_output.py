"""`recmon once --now` on seeded demo data, like node_exporter's end-to-end test: the exposition
passes `promtool check metrics` and equals the committed fixture (timings left out).

The KPI values themselves are checked against independent references elsewhere; this test pins
the whole exposition (names, labels, series, help) so an unintended change shows as a diff.
Regenerate after an intended change with RECMON_UPDATE_FIXTURES=1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from recmon.simulate import simulate
from tests.support.stack import binary

FIXTURE = Path(__file__).parent / "fixtures" / "e2e-output.txt"
END = datetime(2026, 11, 20, 12, 0)
# Wall-clock timings and the build differ from run to run.
VOLATILE = re.compile(
    r"^recmon_(cycle_duration_seconds|last_success_timestamp_seconds|query_duration_seconds"
    r"|build_info)\{"
)


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("e2e")
    simulate(f"sqlite:///{directory / 'demo.db'}", days=9, seed=7, end=END)
    config = directory / "recmon.yml"
    config.write_text(
        f"sources:\n  demo: {{dsn: 'sqlite:///{directory / 'demo.db'}'}}\n"
        "comparisons: [{baseline: popularity, candidate: personal}]\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "recmon",
            "once",
            "--config.file",
            str(config),
            "--now",
            END.isoformat(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# SPEC fixes this name (contract); promtool's unit lint would have it in seconds.
CONTRACT_LINT = {
    'recmon_model_training_data_anomalous_hours use base unit "seconds" instead of "hours"',
}


def test_exposition_passes_promtool(exposition: str) -> None:
    result = subprocess.run(
        [binary("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
    )
    # exit 3 means lint findings only (a parse error exits 1)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert set(result.stderr.splitlines()) <= CONTRACT_LINT, result.stderr


def _stable(line: str) -> str:
    """The line with its value to 12 significant digits: summation order may differ in the
    last bits between numpy builds."""
    if line.startswith("#"):
        return line
    series, value = line.rsplit(" ", 1)
    return f"{series} {float(value):.12g}"


def test_exposition_matches_the_fixture(exposition: str) -> None:
    stable = "".join(
        _stable(line) + "\n" for line in exposition.splitlines() if not VOLATILE.match(line)
    )
    if os.environ.get("RECMON_UPDATE_FIXTURES"):
        FIXTURE.write_text(stable)
    assert stable == FIXTURE.read_text(), "exposition changed; see the diff, then regenerate"
