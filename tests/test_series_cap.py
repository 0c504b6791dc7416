"""max_series: a cycle exports at most that many series, health first, then in catalogue order;
recmon_series_dropped says how many each source lost, and the log says when the cap starts and
stops cutting."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recmon.catalogue import BY_NAME, HEALTH, METRICS
from recmon.collector import families
from recmon.config import ConfigError, parse_config
from recmon.cycle import Cycle
from recmon.evaluation import Sample
from tests.support.databases import write_tables
from tests.test_cycle import NOW, TABLES

CAP_LOG = "series cap reached; samples left out"
CLEARED_LOG = "series cap no longer reached"


def is_health(sample: Sample) -> bool:
    return sample.metric in BY_NAME and BY_NAME[sample.metric].group == HEALTH


def series(samples: list[Sample]) -> list[tuple[str, tuple[str, ...]]]:
    """Names and labels, without the values (timings differ from run to run)."""
    return [(s.metric, s.labels) for s in samples]


def rank(sample: Sample) -> tuple[int, tuple[str, ...]]:
    """The documented order of what is kept: catalogue order, then label values."""
    return [m.name for m in METRICS].index(sample.metric), tuple(map(str, sample.labels))


@pytest.fixture
def urls(tmp_path: Path) -> dict[str, str]:
    result = {name: f"sqlite:///{tmp_path / name}.db" for name in ("a", "b")}
    for url in result.values():
        write_tables(url, TABLES)
    return result


def cycle_for(urls: dict[str, str], max_series: int) -> Cycle:
    sources = "".join(f"  {name}: {{dsn: '{url}'}}\n" for name, url in urls.items())
    return Cycle(parse_config(f"sources:\n{sources}max_series: {max_series}\n"))


def test_the_cap_keeps_health_then_catalogue_order(
    urls: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = cycle_for(urls, 1_000_000).run(NOW)
    health = [s for s in full if is_health(s)]
    others = sorted((s for s in full if not is_health(s)), key=rank)
    assert {s.value for s in health if s.metric == "series_dropped"} == {0.0}
    room = 40  # a cut inside the first metrics, across both sources
    cap = len(health) + room
    capped_cycle = cycle_for(urls, cap)
    with caplog.at_level(logging.INFO, logger="recmon.cycle"):
        capped = capped_cycle.run(NOW)
        again = capped_cycle.run(NOW)

    assert len(capped) == cap
    kept = [s for s in capped if not is_health(s)]
    assert set(kept) == set(others[:room])  # engagement KPIs: their values are the same too
    assert series([s for s in capped if is_health(s) and s.metric != "series_dropped"]) == series(
        [s for s in health if s.metric != "series_dropped"]
    )
    dropped = {s.labels[0]: s.value for s in capped if s.metric == "series_dropped"}
    lost = others[room:]
    assert dropped == {name: sum(s.labels[0] == name for s in lost) for name in urls}
    assert series(again) == series(capped)  # deterministic: the same series from the same data

    # One line when the cap starts cutting, none while it goes on.
    lines = [r for r in caplog.records if r.getMessage() in (CAP_LOG, CLEARED_LOG)]
    assert [(r.getMessage(), r.dropped, r.first_dropped_metric) for r in lines] == [
        (CAP_LOG, len(lost), lost[0].metric)
    ]

    capped_cycle.close()
    print(
        f"\nuncapped {len(full)} series ({len(health)} health); cap {cap}: kept {len(kept)} "
        f"KPI series up to {kept and max(kept, key=rank).metric}, dropped {dropped}"
    )


def test_one_line_when_the_cap_starts_and_stops_cutting(
    urls: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = cycle_for(urls, 1_000_000).run(NOW)
    only_a = sum(1 for s in full if not is_health(s) and s.labels[0] == "a")
    health = sum(1 for s in full if is_health(s))
    cycle = cycle_for(urls, health + only_a)  # b's KPIs do not fit beside a's

    def lines() -> list[str]:
        logged = [r.getMessage() for r in caplog.records if r.name == "recmon.cycle"]
        caplog.clear()
        return [line for line in logged if line in (CAP_LOG, CLEARED_LOG)]

    with caplog.at_level(logging.INFO, logger="recmon.cycle"):
        cycle.run(NOW)
        assert lines() == [CAP_LOG]
        (tmp_path / "b.db").rename(tmp_path / "away.db")  # b down: its KPIs go, the rest fits
        under = cycle.run(NOW)
        assert lines() == [CLEARED_LOG]
        assert [s.value for s in under if s.metric == "series_dropped"] == [0.0, 0.0]
        cycle.run(NOW)
        assert lines() == []
        (tmp_path / "away.db").rename(tmp_path / "b.db")
        cycle.run(NOW)
        cycle.run(NOW)
        assert lines() == [CAP_LOG]
    cycle.close()


def test_the_exposition_shows_the_dropped_series(urls: dict[str, str]) -> None:
    cycle = cycle_for({"a": urls["a"]}, 30)
    exposition = families(cycle.run(NOW), cycle.config)
    cycle.close()
    by_name = {f.name: f for f in exposition}
    series = sum(len(f.samples) for f in exposition) - len(by_name["recmon_build"].samples)
    assert series == 30
    [dropped] = by_name["recmon_series_dropped"].samples
    assert dropped.labels == {"source": "a"} and dropped.value > 0
    assert by_name["recmon_source_up"].samples[0].value == 1


def test_max_series_defaults_to_ten_thousand_and_must_be_positive() -> None:
    assert parse_config("sources: {a: {dsn: 'sqlite://'}}").max_series == 10_000
    with pytest.raises(ConfigError) as error:
        parse_config("sources: {a: {dsn: 'sqlite://'}}\nmax_series: 0\n", "recmon.yml")
    assert str(error.value).startswith("recmon.yml:2: max_series: ")
