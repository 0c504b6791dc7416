"""check-config's database half: do the mapped tables and columns exist?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, inspect

from recmon.config import Source
from recmon.config.errors import KeyPath
from recmon.sources.schema import OPTIONAL_COLUMNS, OPTIONAL_TABLES, REFERENCE


@dataclass(frozen=True)
class Schema:
    # (config key, message) per missing table or column, in the source's own names; the key is
    # the remapping that named it, else the source itself.
    problems: list[tuple[KeyPath, str]]
    # optional tables and columns that are present, as "table" and "table.column"
    optional: frozenset[str]


def inspect_schema(
    engine: Engine, name: str, source: Source, dimensions: Sequence[str] = ()
) -> Schema:
    at: KeyPath = ("sources", name)
    inspector = inspect(engine)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    problems: list[tuple[KeyPath, str]] = []
    optional: set[str] = set()
    for table, columns in REFERENCE.items():
        mapped = source.table(table)
        if mapped not in present:
            if table not in OPTIONAL_TABLES:
                key = (*at, "tables", table) if table in source.tables else at
                problems.append((key, f"table {_named(mapped, table)} not found"))
            continue
        if table in OPTIONAL_TABLES:
            optional.add(table)
        have = {c["name"] for c in inspector.get_columns(mapped)}
        for col in columns:
            actual = source.column(table, col)
            if actual in have:
                if (table, col) in OPTIONAL_COLUMNS:
                    optional.add(f"{table}.{col}")
            elif (table, col) not in OPTIONAL_COLUMNS:
                key = (*at, "columns", table, col) if actual != col else at
                problems.append((key, f"column {_named(actual, col)} not in table {mapped!r}"))
    recs = source.table("recommendations")
    if recs in present:
        have = {c["name"] for c in inspector.get_columns(recs)}
        for dimension in dimensions:
            actual = source.dimension_column(dimension)
            if actual not in have:
                key = (*at, "dimensions", dimension) if dimension in source.dimensions else at
                message = f"dimension column {_named(actual, dimension)} not in table {recs!r}"
                problems.append((key, message))
    return Schema(problems, frozenset(optional))


def _named(actual: str, reference: str) -> str:
    """The name as the database knows it, and the reference name when it was remapped."""
    return repr(actual) if actual == reference else f"{actual!r} (for {reference})"
