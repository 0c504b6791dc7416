"""The command line as a user runs it: exit codes, one clear line per error, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import recmon
from tests.support.databases import write_tables
from tests.support.exposition import parse_hand_built
from tests.test_cycle import NOW, TABLES


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recmon.yml"
    path.write_text(text)
    return path


@pytest.fixture
def demo_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'data.db'}"
    write_tables(
        url,
        TABLES,
    )
    return url


@pytest.mark.parametrize(
    ("config", "error"),
    [
        pytest.param(
            "sources:\n  main:\n    dsn: sqlite://\n    dns: x\n",
            "recmon.yml:4: sources.main.dns: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            "sources:\n  main:\n    dsn: sqlite://\ninterval: fast\n",
            "recmon.yml:4: interval: invalid duration 'fast'",
            id="wrong-type-duration",
        ),
        pytest.param(
            "sources:\n  main:\n    dsn: sqlite://\nk: [5, ten]\n",
            "recmon.yml:4: k.1: Input should be a valid integer",
            id="wrong-type-int",
        ),
        pytest.param(
            "windows: [1h]\n", "recmon.yml:1: sources: required key is missing", id="missing-source"
        ),
        pytest.param(
            "sources: {}\n",
            "recmon.yml:1: sources: Dictionary should have at least 1",
            id="empty-sources",
        ),
        pytest.param(
            "sources:\n  main:\n    dsn_file: /nonexistent/dsn\n",
            "recmon.yml:3: sources.main.dsn_file: cannot read /nonexistent/dsn: No such "
            "file or directory",
            id="unreadable-dsn-file",
        ),
        pytest.param(
            "sources:\n  main:\n    dsn: ${RECMON_TEST_UNSET_VARIABLE}\n",
            "recmon.yml:3: sources.main.dsn: environment variable "
            "RECMON_TEST_UNSET_VARIABLE is not set",
            id="unset-env",
        ),
        pytest.param(
            "sources:\n  main:\n    dsn: sqlite://\n    tables: {recs: x}\n",
            "recmon.yml:4: sources.main.tables: unknown table 'recs'",
            id="unknown-table",
        ),
        pytest.param("sources:\n  main: [dsn\n", "recmon.yml:3: yaml: ", id="broken-yaml"),
    ],
)
@pytest.mark.parametrize("command", ["check-config", "once", "serve"])
def test_bad_config_is_one_clear_error(
    tmp_path: Path, config: str, error: str, command: str
) -> None:
    result = recmon(command, "--config.file", str(write(tmp_path, config)))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"recmon: {tmp_path / error}"), lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_check_config_names_missing_tables_and_columns(tmp_path: Path, demo_url: str) -> None:
    config = write(
        tmp_path,
        f"""sources:
  main:
    dsn: {demo_url}
    tables:
      recommendations: recs
    columns:
      interactions: {{ts: happened_at}}
""",
    )
    result = recmon("check-config", "--config.file", str(config))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"recmon: {config}:5: sources.main.tables.recommendations: table 'recs' (for "
        "recommendations) not found",
        f"recmon: {config}:7: sources.main.columns.interactions.ts: column 'happened_at' (for ts) "
        "not in table 'interactions'",
    ]


def test_check_config_accepts_a_good_source_and_hides_the_password(
    tmp_path: Path, demo_url: str
) -> None:
    (tmp_path / "dsn").write_text(demo_url + "\n")
    good = write(tmp_path, "sources:\n  main:\n    dsn_file: dsn\n")
    result = recmon("check-config", "--config.file", str(good))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"sources.main: {demo_url}: ok\n"

    down = write(
        tmp_path, "sources:\n  main:\n    dsn: postgresql+psycopg://app:s3cret@127.0.0.1:1/x\n"
    )
    result = recmon("check-config", "--config.file", str(down))
    assert result.returncode == 1
    assert "sources.main: cannot connect" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_once_prints_a_parsable_exposition(tmp_path: Path, demo_url: str) -> None:
    config = write(tmp_path, f"sources:\n  main:\n    dsn: {demo_url}\n")
    result = recmon("once", "--config.file", str(config), "--now", NOW.isoformat() + "Z")
    assert result.returncode == 0, result.stderr
    families = parse_hand_built(result.stdout)
    assert families["recmon_build_info"].samples[0].labels["version"]


def test_once_with_a_missing_database_reports_the_source_down(tmp_path: Path) -> None:
    config = write(tmp_path, f"sources:\n  main:\n    dsn: sqlite:///{tmp_path / 'no.db'}\n")
    result = recmon("once", "--config.file", str(config))
    assert result.returncode == 1
    assert 'recmon_source_up{source="main"} 0.0' in result.stdout
    assert "recmon_ctr_ratio" not in result.stdout
    assert "unable to open database file" in result.stderr
    assert not (tmp_path / "no.db").exists()  # read-only: nothing created
