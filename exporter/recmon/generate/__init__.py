"""Files generated from the catalogue. `python -m recmon.generate [ROOT]` rewrites them all."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from recmon.generate import links, readme, rules

DASHBOARD_DIRECTORY = "grafana/dashboards"


@functools.cache
def _dashboards() -> dict[str, str]:
    # grafana-foundation-sdk is a dev dependency: importing this package (for example to run
    # `python -m recmon.generate.rules`) must not need it.
    from recmon.generate import dashboards

    return dashboards.files(rules.Settings())


# Each generator maps the file's current text (None if absent) to its generated text.
GENERATORS: dict[str, Callable[[str | None], str]] = {
    "README.md": readme.with_metric_reference,
    **{
        name: (lambda _current, text=text: text)
        for name, text in rules.files(rules.Settings()).items()
    },
    **{
        name: (lambda _current, name=name: _dashboards()[name])
        for name in (f"{DASHBOARD_DIRECTORY}/{uid}.json" for uid in links.DASHBOARD_VARIABLES)
    },
}


def generated(root: Path) -> dict[Path, str]:
    """Every generated file under `root` with the text it should have."""
    result = {}
    for name, render in GENERATORS.items():
        path = root / name
        result[path] = render(path.read_text(encoding="utf-8") if path.exists() else None)
    return result


def write_all(root: Path) -> list[Path]:
    """Rewrite what differs; return the paths that changed."""
    changed = []
    for path, text in generated(root).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
