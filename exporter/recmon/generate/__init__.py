"""Files generated from the catalogue. `python -m recmon.generate [ROOT]` rewrites them all."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from recmon.generate import links, readme

DASHBOARD_DIRECTORY = "grafana/dashboards"


@functools.cache
def generators() -> dict[str, Callable[[str | None], str]]:
    """Each generated file's path and the function from its current text (None if absent) to
    its generated text. Built on first use: `python -m recmon.generate.rules` runs the rules
    module as a script, which must not be imported before; and the dashboards need the
    dev-only grafana-foundation-sdk."""
    from recmon.generate import rules

    @functools.cache
    def dashboards() -> dict[str, str]:
        from recmon.generate import dashboards

        return dashboards.files(rules.Settings())

    rule_files = rules.files(rules.Settings())
    return {
        "README.md": readme.with_metric_reference,
        **{name: (lambda _current, text=text: text) for name, text in rule_files.items()},
        **{
            name: (lambda _current, name=name: dashboards()[name])
            for name in (f"{DASHBOARD_DIRECTORY}/{uid}.json" for uid in links.DASHBOARD_VARIABLES)
        },
    }


def generated(root: Path) -> dict[Path, str]:
    """Every generated file under `root` with the text it should have."""
    result = {}
    for name, render in generators().items():
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
