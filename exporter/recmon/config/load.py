"""Load the YAML config: `${ENV}` expansion, `*_file` secrets, errors naming file, line and key."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from recmon.config.errors import ConfigError, KeyPath, Problem, line_of
from recmon.config.schema import Config

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FILE_SUFFIX = "_file"
# Far beyond any real config; what lies beyond is a mistake or an alias bomb (a few lines whose
# aliases expand to billions of nodes).
_MAX_DEPTH = 64
_MAX_NODES = 100_000
_TOO_DEEP = f"nested more than {_MAX_DEPTH} levels deep"
_MAX_SECRET_BYTES = 65_536


def load_config(path: str | Path) -> Config:
    """Read and validate the config at `path`; raise ConfigError on any problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        problem = Problem(None, "config.file", f"cannot read: {exc.strerror}")
        raise ConfigError(name, [problem]) from None
    return parse_config(text, name, base_dir=Path(path).parent)


def parse_config(text: str, name: str = "<config>", base_dir: Path = Path()) -> Config:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        # A character YAML refuses has a position instead of a mark.
        line = mark.line + 1 if mark else text.count("\n", 0, getattr(exc, "position", 0)) + 1
        problem = getattr(exc, "problem", None) or next(iter(str(exc).splitlines()), "invalid")
        raise ConfigError(name, [Problem(line, "yaml", problem)]) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(name, [Problem(1, "yaml", _TOO_DEEP)]) from None
    if node is None:
        raise ConfigError(name, [Problem(1, "sources", "the config is empty")])
    lines: dict[KeyPath, int] = {}
    data = _Builder(name, lines, base_dir).build(node, ())
    if not isinstance(data, dict):
        raise ConfigError(name, [Problem(node.start_mark.line + 1, "config", "must be a mapping")])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(name, [_problem(err, lines) for err in exc.errors()]) from None
    config._origin = (name, lines)
    return config


def _problem(err: Any, lines: dict[KeyPath, int]) -> Problem:
    loc = tuple(err["loc"])
    # pydantic appends union branch names and "[key]" markers; keep the path the user wrote.
    path = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p == "function-after")))
    line = line_of(lines, path)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] == "missing":
        message = "required key is missing"
    key = ".".join(str(p) for p in path) or "config"
    return Problem(line, key, message)


class _Builder:
    """YAML nodes to Python values, recording the line of every key path on the way."""

    def __init__(self, name: str, lines: dict[KeyPath, int], base_dir: Path) -> None:
        self.name = name
        self.lines = lines
        self.base_dir = base_dir
        self.scalars = yaml.SafeLoader("")
        self.nodes = 0  # built so far, against alias bombs
        self.open: set[int] = set()  # ids of the collections being built, against alias loops

    def fail(self, node: yaml.Node, path: KeyPath, message: str) -> ConfigError:
        key = ".".join(str(p) for p in path) or "config"
        return ConfigError(self.name, [Problem(node.start_mark.line + 1, key, message)])

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise self.fail(node, path, f"more than {_MAX_NODES} values (aliases included)")
        if isinstance(node, yaml.ScalarNode):
            value = self._scalar(node, path)
            return self._expand(value, node, path) if isinstance(value, str) else value
        if id(node) in self.open:
            raise self.fail(node, path, "an alias refers to a value that contains it")
        if len(path) > _MAX_DEPTH:
            raise self.fail(node, path, _TOO_DEEP)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        """The value of a scalar, as YAML's safe loader reads it (tags included)."""
        try:
            return self.scalars.construct_object(node)
        except yaml.YAMLError as exc:  # a tag this loader refuses (!!python/...)
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.fail(node, path, f"cannot read the value: {problem}") from None
        except Exception:
            # A value its tag cannot read: PyYAML's constructors raise ValueError for `!!int x`,
            # IndexError for an empty `!!int`, AttributeError for an empty `!!timestamp`...
            kind = node.tag.rsplit(":", 1)[-1]
            raise self.fail(node, path, f"{node.value!r} is not a valid {kind}") from None

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, path, "a key must be a single value, not a collection")
            key = str(self._scalar(key_node, path))
            if key.endswith(_FILE_SUFFIX) and len(key) > len(_FILE_SUFFIX):
                key = key.removesuffix(_FILE_SUFFIX)
                child = (*path, key)
                self.lines[child] = key_node.start_mark.line + 1
                value = self._read_secret_file(value_node, (*path, key + _FILE_SUFFIX))
            else:
                child = (*path, key)
                self.lines[child] = key_node.start_mark.line + 1
                value = self.build(value_node, child)
            if key in result:
                message = f"given twice (directly or as {key}{_FILE_SUFFIX})"
                raise self.fail(key_node, child, message)
            result[key] = value
        return result

    def _read_secret_file(self, node: yaml.Node, path: KeyPath) -> str:
        file_name = self.build(node, path)
        if not isinstance(file_name, str):
            raise self.fail(node, path, "must be a file path")
        file_path = Path(file_name)
        if not file_path.is_absolute():
            file_path = self.base_dir / file_path
        try:
            with file_path.open("rb") as file:
                data = file.read(_MAX_SECRET_BYTES + 1)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
            problem = getattr(exc, "strerror", None) or str(exc)
            raise self.fail(node, path, f"cannot read {file_name}: {problem}") from None
        if len(data) > _MAX_SECRET_BYTES:
            raise self.fail(node, path, f"{file_name} is larger than {_MAX_SECRET_BYTES} bytes")
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise self.fail(node, path, f"{file_name} is not UTF-8 text") from None

    def _expand(self, value: str, node: yaml.Node, path: KeyPath) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise self.fail(node, path, f"environment variable {name} is not set")
            return os.environ[name]

        return _ENV.sub(replace, value)
