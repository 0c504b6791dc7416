"""simulate() end to end: SQLite, PostgreSQL and MariaDB, each into its own schema/database."""

import os
from collections.abc import Iterator
from datetime import datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from recmon.simulate import simulate
from recmon.sources.schema import REFERENCE, reference_metadata

END = datetime(2026, 3, 2, 12, 0)
# A schema/database of their own, so these tests never touch another suite's reference tables.
SCRATCH = "recmon_simulate_test"
POSTGRES = os.environ.get(
    "RECMON_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB = os.environ.get("RECMON_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


def read(url: str) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            # Typed selects, so SQLite's text timestamps come back as datetimes too.
            return {
                name: pd.read_sql_query(sa.select(table), conn).sort_values(
                    list(REFERENCE[name]), ignore_index=True, na_position="first"
                )
                for name, table in reference_metadata().tables.items()
            }
    finally:
        engine.dispose()


def _server(url: str, create: str, scratch_url: str) -> Iterator[str]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(create))
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"database server at {url} is not reachable (start it or set the env var): {exc}"
        )
    finally:
        engine.dispose()
    yield scratch_url


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from _server(
        POSTGRES,
        f"CREATE SCHEMA IF NOT EXISTS {SCRATCH}",
        f"{POSTGRES}?options=-csearch_path%3D{SCRATCH}",
    )


@pytest.fixture
def mariadb() -> Iterator[str]:
    base = MARIADB.rsplit("/", 1)[0]
    yield from _server(MARIADB, f"CREATE DATABASE IF NOT EXISTS {SCRATCH}", f"{base}/{SCRATCH}")


def test_sqlite_round_trip_is_deterministic(tmp_path) -> None:
    urls = [f"sqlite:///{tmp_path / name}.db" for name in ("a", "b", "c")]
    summary = simulate(urls[0], days=1, end=END)
    simulate(urls[1], days=1, end=END)
    simulate(urls[2], days=1, end=END, seed=7)
    first, again, other = (read(url) for url in urls)
    assert summary.start == END - timedelta(days=1) and summary.end == END
    for table, frame in first.items():
        assert list(frame.columns) == list(REFERENCE[table])
        assert len(frame) == summary.rows[table] > 0
        pd.testing.assert_frame_equal(frame, again[table])
    assert not first["recommendations"].equals(other["recommendations"])
    inspector = sa.inspect(sa.create_engine(urls[0]))
    assert {ix["name"] for ix in inspector.get_indexes("recommendations")} == {
        "ix_recommendations_ts",
        "ix_recommendations_user_id_item_id_ts",
    }


def test_rerun_replaces_the_tables(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    simulate(url, days=2, end=END)
    summary = simulate(url, days=1, end=END)
    assert {t: len(f) for t, f in read(url).items()} == dict(summary.rows)


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_servers_hold_what_sqlite_holds(server: str, request, tmp_path) -> None:
    url = request.getfixturevalue(server)
    simulate(url, days=1, end=END)
    simulate(f"sqlite:///{tmp_path / 'ref.db'}", days=1, end=END)
    got, expected = read(url), read(f"sqlite:///{tmp_path / 'ref.db'}")
    for table in REFERENCE:
        # Timestamps to the microsecond; MariaDB's FLOAT (the reference Float()) keeps 6 digits.
        pd.testing.assert_frame_equal(got[table], expected[table], check_dtype=False, rtol=1e-12)
