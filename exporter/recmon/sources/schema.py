"""The reference schema of SPEC: table and column names with their types.

Readers, the simulator's writer and config validation all use this one description; a source's
config may rename any table or column, never add one.
"""

from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

# MariaDB's DATETIME drops fractions of a second unless told otherwise.
TIMESTAMP: TypeEngine = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
TEXT: TypeEngine = String(255)
# MariaDB's FLOAT keeps about 6 significant digits; scores and watch seconds need a double.
FLOAT: TypeEngine = Float().with_variant(mysql.DOUBLE(), "mysql", "mariadb")

REFERENCE: dict[str, dict[str, TypeEngine]] = {
    "recommendations": {
        "request_id": TEXT,
        "user_id": TEXT,
        "item_id": TEXT,
        "rank": Integer(),
        "score": FLOAT,
        "model": TEXT,
        "model_version": TEXT,
        "variant": TEXT,
        "ts": TIMESTAMP,
    },
    "interactions": {
        "user_id": TEXT,
        "item_id": TEXT,
        "event_type": TEXT,
        "ts": TIMESTAMP,
        "value": FLOAT,
        "request_id": TEXT,
        "session_id": TEXT,
    },
    "items": {"item_id": TEXT, "created_at": TIMESTAMP, "category": TEXT},
    "models": {
        "model": TEXT,
        "version": TEXT,
        "trained_at": TIMESTAMP,
        "training_data_start": TIMESTAMP,
        "training_data_end": TIMESTAMP,
        "deployed_at": TIMESTAMP,
    },
    "model_metrics": {
        "model": TEXT,
        "version": TEXT,
        "metric": TEXT,
        "value": FLOAT,
        "ts": TIMESTAMP,
    },
}

# Tables and columns a source may lack; recmon then leaves out what depends on them.
OPTIONAL_TABLES: frozenset[str] = frozenset({"models", "model_metrics"})
OPTIONAL_COLUMNS: frozenset[tuple[str, str]] = frozenset(
    {
        ("interactions", "session_id"),
        ("recommendations", "model_version"),  # not read yet
        ("items", "category"),  # not read yet
    }
)


def reference_metadata() -> MetaData:
    """SQLAlchemy tables with the reference names, for writers (simulate, tests)."""
    metadata = MetaData()
    for table, columns in REFERENCE.items():
        Table(table, metadata, *(Column(name, type_) for name, type_ in columns.items()))
    return metadata
