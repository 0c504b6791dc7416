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
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(name, [Problem(line, "yaml", problem)]) from None
    if node is None:
        raise ConfigError(name, [Problem(None, "sources", "the config is empty")])
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

    def fail(self, node: yaml.Node, path: KeyPath, message: str) -> ConfigError:
        key = ".".join(str(p) for p in path) or "config"
        return ConfigError(self.name, [Problem(node.start_mark.line + 1, key, message)])

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        value = self.scalars.construct_object(node)
        if isinstance(value, str):
            value = self._expand(value, node, path)
        return value

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(yaml.SafeLoader(" ").construct_object(key_node))  # type: ignore[no-untyped-call]
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
            return file_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise self.fail(node, path, f"cannot read {file_name}: {exc.strerror}") from None

    def _expand(self, value: str, node: yaml.Node, path: KeyPath) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise self.fail(node, path, f"environment variable {name} is not set")
            return os.environ[name]

        return _ENV.sub(replace, value)
