"""Write the simulated tables into any SQLAlchemy database, replacing the reference tables."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Index, create_engine, insert

from recmon.sources.schema import reference_metadata

CHUNK_ROWS = 10_000
# The exporter's queries filter by time and join interactions to impressions by user and item.
INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "recommendations": (("ts",), ("user_id", "item_id", "ts")),
    "interactions": (("ts",), ("user_id", "ts")),
}


def write(url: str, frames: Mapping[str, pd.DataFrame]) -> None:
    """Drop and recreate the five reference tables at `url` and fill them from `frames`."""
    metadata = reference_metadata()
    engine = create_engine(url)
    try:
        # One transaction: SQLite would otherwise sync to disk once per chunk.
        with engine.begin() as conn:
            metadata.drop_all(conn)
            metadata.create_all(conn)
            for name, frame in frames.items():
                table = metadata.tables[name]
                for rows in _chunks(frame[[c.name for c in table.columns]]):
                    conn.execute(insert(table), rows)
            # Indexing after the load is faster than maintaining the indexes row by row.
            for table, spec in INDEXES.items():
                for columns in spec:
                    index_name = f"ix_{table}_{'_'.join(columns)}"
                    Index(index_name, *(metadata.tables[table].c[c] for c in columns)).create(conn)
    finally:
        engine.dispose()


def _chunks(frame: pd.DataFrame) -> Iterator[list[dict[str, Any]]]:
    """Rows as dicts of plain Python values (None for missing), which every driver accepts."""
    columns = {name: _plain(frame[name]) for name in frame.columns}
    for lo in range(0, len(frame), CHUNK_ROWS):
        hi = lo + CHUNK_ROWS
        chunk = {name: values[lo:hi] for name, values in columns.items()}
        yield [dict(zip(chunk, row, strict=True)) for row in zip(*chunk.values(), strict=True)]


def _plain(series: pd.Series) -> list[Any]:
    if pd.api.types.is_datetime64_any_dtype(series):
        values = np.array(series.dt.to_pydatetime(), dtype=object)
    else:
        values = series.to_numpy(dtype=object)
    values[pd.isna(series).to_numpy()] = None
    return values.tolist()
