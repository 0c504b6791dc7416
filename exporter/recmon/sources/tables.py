"""A source's tables under their configured names, read back under the reference names."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, String, TableClause, column, table

from recmon.config import Source
from recmon.sources.schema import REFERENCE


class SourceTables:
    """Mapped tables: `tables.col("recommendations", "ts")` is the configured column."""

    def __init__(self, source: Source, dimensions: Sequence[str] = ()) -> None:
        self.source = source
        self.dimensions = tuple(dimensions)
        extra = {"recommendations": [source.dimension_column(d) for d in self.dimensions]}
        self._tables: dict[str, TableClause] = {
            name: table(
                source.table(name),
                *(column(source.column(name, col), type_) for col, type_ in cols.items()),
                *(column(col, String()) for col in extra.get(name, [])),
            )
            for name, cols in REFERENCE.items()
        }

    def __getitem__(self, name: str) -> TableClause:
        return self._tables[name]

    def col(self, table_name: str, name: str) -> ColumnElement:
        return self._tables[table_name].c[self.source.column(table_name, name)]

    def dimension_cols(self) -> list[ColumnElement]:
        """The declared dimensions' recommendations columns, labelled with the dimension."""
        recs = self._tables["recommendations"]
        return [recs.c[self.source.dimension_column(d)].label(d) for d in self.dimensions]

    def cols(self, table_name: str, *names: str) -> list[ColumnElement]:
        """Columns labelled with their reference names, for SELECT lists."""
        return [self.col(table_name, name).label(name) for name in names]
