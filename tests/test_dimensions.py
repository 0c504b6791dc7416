"""Extra dimension labels (the surface a list was shown on) with the cardinality guard."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import create_engine, text

from recmon.collector import families
from recmon.config import parse_config
from recmon.cycle import Cycle
from recmon.sources.check import inspect_schema
from recmon.sources.engine import open_engine
from tests.support.databases import write_tables

NOW = datetime(2026, 11, 20, 12, 0)
# one single-item list per request: surface -> requests; 'home' and 'item' are the two most shown
SURFACES = {"home": 3, "item": 2, "search": 1, None: 1}
CONFIG = """
sources:
  main:
    dsn: "{url}"
    dimensions: {{surface: page}}
windows: [1h]
k: [1]
dimensions: [surface]
max_dimension_values: 2
"""


def surface_data(url: str) -> None:
    recs, events, n = [], [], 0
    for surface, requests in SURFACES.items():
        for _ in range(requests):
            n += 1
            recs.append(
                {
                    "request_id": f"r{n}",
                    "user_id": f"u{n}",
                    "item_id": "i",
                    "rank": 1,
                    "score": 0.5,
                    "model": "m",
                    "model_version": "v",
                    "variant": None,
                    "ts": datetime(2026, 11, 20, 10, n),
                }
            )
            if surface == "home" and n == 1:
                events.append(
                    {
                        "user_id": f"u{n}",
                        "item_id": "i",
                        "event_type": "click",
                        "ts": datetime(2026, 11, 20, 10, 30),
                        "value": None,
                        "request_id": None,
                        "session_id": None,
                    }
                )
    write_tables(
        url,
        {
            "recommendations": recs,
            "interactions": events,
            "items": [{"item_id": "i", "created_at": datetime(2026, 1, 1), "category": None}],
        },
    )
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE recommendations ADD COLUMN page VARCHAR(20)"))
        n = 0
        for surface, requests in SURFACES.items():
            for _ in range(requests):
                n += 1
                conn.execute(
                    text("UPDATE recommendations SET page = :s WHERE request_id = :r"),
                    {"s": surface, "r": f"r{n}"},
                )
    engine.dispose()


def test_dimension_labels_and_folding(database_url: str) -> None:
    surface_data(database_url)
    config = parse_config(CONFIG.format(url=database_url))
    cycle = Cycle(config)
    try:
        samples = cycle.run(NOW)
    finally:
        cycle.close()
    assert cycle.health["main"].problem is None
    got = {(s.metric, s.labels): s.value for s in samples}
    impressions = {labels[4]: v for (m, labels), v in got.items() if m == "impressions"}
    assert impressions == {"home": 3, "item": 2, "other": 2}  # search and the null surface
    assert got[("dimension_values_folded", ("main", "surface"))] == 2
    assert got[("ctr_ratio", ("main", "m", "default", "1h", "home"))] == pytest.approx(1 / 3)
    assert got[("hit_rate_at_k", ("main", "m", "default", "1h", "home", "1"))] == 1.0
    exposed = {f.name: f for f in families(samples, config)}
    sample = exposed["recmon_hit_rate_at_k"].samples[0]
    assert list(sample.labels) == ["source", "model", "variant", "window", "surface", "k"]
    assert list(exposed["recmon_source_up"].samples[0].labels) == ["source"]


def test_missing_dimension_column_is_named(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/d.db"
    write_tables(url, {})
    config = parse_config(CONFIG.format(url=url))
    engine = open_engine(config.sources["main"], config.query_timeout)
    schema = inspect_schema(engine, "main", config.sources["main"], config.dimensions)
    engine.dispose()
    assert schema.problems == [
        (
            ("sources", "main", "dimensions", "surface"),
            "dimension column 'page' (for surface) not in table 'recommendations'",
        ),
    ]


def test_dimension_names_cannot_clash() -> None:
    with pytest.raises(Exception, match="dimensions must be distinct and not"):
        parse_config("sources: {main: {dsn: 'sqlite://'}}\ndimensions: [model]\n")
