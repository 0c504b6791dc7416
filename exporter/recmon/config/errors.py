"""Config errors that name the file, the line and the key."""

from __future__ import annotations

from dataclasses import dataclass

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    line: int | None
    key: str
    message: str


class ConfigError(Exception):
    """A config that cannot start recmon; str() is one line per problem, file:line: key: what."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(
            "\n".join(
                f"{path}:{p.line}: {_printable(p.key)}: {_printable(p.message)}"
                if p.line
                else f"{path}: {_printable(p.key)}: {_printable(p.message)}"
                for p in problems
            )
        )

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, list[Problem]]]:
        # A config read in a worker process (the backtest's backfills) reaches the parent as
        # itself, not as a pool broken by an exception that cannot be rebuilt from its message.
        return ConfigError, (self.path, self.problems)


def _printable(text: str) -> str:
    """`text` with line breaks and other control characters escaped: one problem, one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its nearest parent the file spells out."""
    return next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None)
