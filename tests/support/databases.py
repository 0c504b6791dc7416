"""The three databases the suite runs on: SQLite in a temp dir, and the machine's PostgreSQL and
MariaDB (override with RECMON_TEST_POSTGRES_URL / RECMON_TEST_MARIADB_URL)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, insert, text
from sqlalchemy.exc import OperationalError

from recmon.sources.schema import reference_metadata

SERVERS = {
    "postgresql": os.environ.get(
        "RECMON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get(
        "RECMON_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
}


def server_url(kind: str) -> str:
    """The URL of a running server; fails the test (never skips) when it is down."""
    url = SERVERS[kind]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        pytest.fail(f"{kind} is not reachable at {url}: {exc.orig}. Start it (see README, Tests).")
    finally:
        engine.dispose()
    return url


def reference_tables(prefix: str = "") -> MetaData:
    """The reference tables, each named `prefix` + its name, so that concurrent runs on a shared
    server can keep apart."""
    if not prefix:
        return reference_metadata()
    metadata = MetaData()
    for table in reference_metadata().tables.values():
        table.to_metadata(metadata, name=prefix + table.name)
    return metadata


def write_tables(
    url: str, rows: Mapping[str, Sequence[Mapping[str, Any]]], prefix: str = ""
) -> None:
    """Replace the reference tables (named `prefix` + name) at `url` with `rows` (table -> list
    of row dicts)."""
    metadata = reference_tables(prefix)
    engine = create_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as conn:
            for table, table_rows in rows.items():
                if table_rows:
                    conn.execute(insert(metadata.tables[prefix + table]), list(table_rows))
    finally:
        engine.dispose()


def drop_tables(url: str, prefix: str = "") -> None:
    engine = create_engine(url)
    try:
        reference_tables(prefix).drop_all(engine)
    finally:
        engine.dispose()
