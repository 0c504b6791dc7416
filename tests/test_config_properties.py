"""Property: whatever the config text, the loader gives a Config or a ConfigError whose every
line is `file:line: key: message`, never another exception or a traceback."""

from __future__ import annotations

import datetime
import time
import typing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from recmon.config import Config, ConfigError, load_config, parse_config

NAME = "recmon.yml"
BASE_DIR = Path(__file__).parent / "no-such-directory"  # relative *_file names cannot be read
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def schema_keys(model: type[BaseModel]) -> set[str]:
    """Every key the schema knows, at any depth."""
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        for inner in (field.annotation, *typing.get_args(field.annotation)):
            for candidate in (inner, *typing.get_args(inner)):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    keys |= schema_keys(candidate)
    return keys


KEYS = sorted(schema_keys(Config) | {"dsn_file", "sql_file", "recommendations", "ts"})
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["1h", "30s", "0s", "5x", "1h30m", "99999999999999999999d", "${NOPE}", "-1"]),
    st.dates(),
    st.datetimes(),
    st.binary(max_size=8),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12), st.integers(), st.booleans())
trees = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
# Shaped like a config, so that validation (not only parsing) is reached: mostly valid sources,
# and the schema's own keys with values of any type.
good_sources = st.dictionaries(
    st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    st.fixed_dictionaries(
        {"dsn": st.just("sqlite://")},
        optional={key: trees for key in ("tables", "columns", "dimensions")},
    ),
    min_size=1,
    max_size=3,
)
configs = st.builds(
    lambda sources, rest: {"sources": sources, **rest},
    st.one_of(good_sources, good_sources, good_sources, trees),
    st.dictionaries(st.sampled_from([k for k in KEYS if k != "sources"]), trees, max_size=4),
)
# Bits of YAML syntax, to reach the parser's corners: anchors, aliases, tags, flow and block.
yaml_pieces = st.lists(
    st.sampled_from(
        [
            "sources:",
            "windows:",
            "k:",
            "\n",
            "  ",
            "- ",
            ": ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "? ",
            "&a ",
            "*a",
            "!!python/object:os.system ",
            "!!binary ",
            "!!int ",
            "!!float ",
            "!!timestamp ",
            "!!set ",
            "!!omap ",
            "!custom ",
            "'",
            '"',
            "|",
            ">",
            "#",
            "---",
            "...",
            "%YAML 1.1\n",
            "\t",
            "1h",
            "x",
            "dsn: sqlite://",
            "${HOME}",
            "<<: ",
            "\\u2028",
            "\u2028",
            "\x85",
            "\x00",
        ]
    ),
    max_size=30,
).map("".join)


def assert_config_or_clear_error(text: str) -> None:
    try:
        config = parse_config(text, NAME, base_dir=BASE_DIR)
    except ConfigError as error:
        lines = str(error).split("\n")
        assert len(lines) == len(error.problems) > 0
        for line, problem in zip(lines, error.problems, strict=True):
            assert problem.line is not None and problem.line >= 1, line
            assert problem.key and problem.message, line
            assert line.isprintable(), repr(line)  # one physical line, whatever the input
            expected = f"{NAME}:{problem.line}: {problem.key}: {problem.message}"
            assert line == expected or not expected.isprintable()  # else with escapes
    else:
        assert isinstance(config, Config)


@SETTINGS
@given(st.text())
@example("")
@example("&a [*a]")
@example("a: &a {b: *a}")
@example("sources: !!binary 'x'")
@example("sources: !!int 'x'")
@example("sources: !!timestamp '2026-13-45'")
@example("sources: !!python/object:os.system 'x'")
@example("sources: !!float\nwindows: !!int\nk: !!timestamp")
@example("? [a, b]\n: 1")
@example('"a\\nb": 1')
@example("[" * 100 + "]" * 100)
@example("[" * 5000 + "]" * 5000)
@example("sources: {m: {dsn: sqlite://}}\ninterval: 99999999999999999999d")
def test_any_text(text: str) -> None:
    assert_config_or_clear_error(text)


@SETTINGS
@given(yaml_pieces)
def test_yaml_syntax_soup(text: str) -> None:
    assert_config_or_clear_error(text)


@SETTINGS
@given(trees)
def test_any_yaml_structure(data: object) -> None:
    assert_config_or_clear_error(yaml.safe_dump(data))


@SETTINGS
@given(configs, st.booleans())
def test_the_schema_keys_with_values_of_any_type(data: dict[str, object], flow: bool) -> None:
    assert_config_or_clear_error(yaml.safe_dump(data, default_flow_style=flow))


def test_an_alias_bomb_is_refused_at_once() -> None:
    """Nine lines whose aliases would expand to a billion values."""
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)
    ]
    started = time.monotonic()
    with pytest.raises(ConfigError, match="more than 100000 values"):
        parse_config("\n".join(["sources: {m: {dsn: 'sqlite://'}}", *bomb]), NAME)
    assert time.monotonic() - started < 5


def test_a_valid_config_still_loads() -> None:
    config = parse_config("sources: {m: {dsn: 'sqlite://'}}\nwindows: [1h]\n", NAME)
    assert [w.label for w in config.windows] == ["1h"]
    assert config.interval == datetime.timedelta(seconds=60)


def test_a_config_error_in_a_worker_process_reaches_the_parent_whole(tmp_path: Path) -> None:
    """The backtest loads configs in a process pool: the error must cross it as itself, with
    its file, line and key, not as a broken pool."""
    config = tmp_path / "recmon.yml"
    config.write_text("sources:\n  demo: {dsn: 'sqlite:///x.db'}\ninterval: soon\n")
    with pytest.raises(ConfigError) as here:
        load_config(config)
    with ProcessPoolExecutor(1) as pool, pytest.raises(ConfigError) as there:
        pool.submit(load_config, config).result()
    assert str(there.value) == str(here.value)
    assert there.value.problems == here.value.problems
    assert ":3: interval:" in str(there.value)
