"""Samples with timestamps, written as the OpenMetrics text promtool turns into blocks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path


class OpenMetrics:
    """Samples grouped by family, as OpenMetrics wants them; a series' samples must be added in
    time order."""

    def __init__(self) -> None:
        self._families: dict[str, list[str]] = {}

    def add(
        self,
        family: str,
        kind: str,
        help: str,
        name: str,
        labels: Mapping[str, str],
        value: float | str,
        timestamp: float,
    ) -> None:
        """One sample of `family` (of type `kind`); `value` as a float or as Prometheus' API
        writes it."""
        lines = self._families.get(family)
        if lines is None:
            lines = self._families[family] = [f"# TYPE {family} {kind}"]
            if help:
                lines.insert(0, f"# HELP {family} {_escape(help, help=True)}")
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{text}}} {_value(value)} {timestamp:.3f}")

    def write(self, path: Path) -> None:
        text = "".join(line + "\n" for lines in self._families.values() for line in lines)
        path.write_text(text + "# EOF\n", encoding="utf-8")


def _escape(text: str, help: bool = False) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text if help else text.replace('"', '\\"')


def _value(value: float | str) -> str:
    value = float(value)  # Prometheus' API writes NaN and +Inf as Python reads them
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)
