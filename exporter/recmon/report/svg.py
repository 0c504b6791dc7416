"""Line charts as inline SVG drawn in Python: the report needs no script, font or network."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TypeVar

from recmon.catalogue import Unit
from recmon.report import units
from recmon.report.history import Band, Point

# Told apart with the common colour vision deficiencies.
# Okabe-Ito but its yellow, which is hard to see on white (grey instead).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#8A8A8A")
WIDTH, HEIGHT = 520, 190
LEFT, RIGHT, TOP, BOTTOM = 64, 22, 10, 24
_P = TypeVar("_P", Point, Band)
_TICKS = (
    300,
    600,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
)


@dataclass(frozen=True)
class Line:
    name: str
    color: str
    points: list[Point]
    band: list[Band] | None = None


def chart(lines: list[Line], start: float, end: float, step: float, unit: Unit, title: str) -> str:
    values = [v for line in lines for _, v in line.points]
    values += [b for line in lines for _, lo, hi in line.band or () for b in (lo, hi)]
    low, high = _y_range(values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - start) / ((end - start) or 1) * plot_w

    def y(v: float) -> float:
        return TOP + (high - v) / ((high - low) or 1) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">'
    ]
    # Durations tick in round hours (or days, minutes) rather than round seconds.
    size, suffix = units.duration_scale(max(abs(low), abs(high))) if unit == "seconds" else (1, "")
    for tick in _nice_ticks(low / size, high / size):
        v = tick * size
        label = f"{tick:g} {suffix}" if unit == "seconds" else units.value(v, unit)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'class="grid"/><text x="{LEFT - 6}" y="{y(v) + 4:.1f}" class="ylabel">'
            f"{escape(label)}</text>"
        )
    for t, label in _time_ticks(start, end):
        parts.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
            f'class="grid"/><text x="{x(t):.1f}" y="{HEIGHT - 6}" class="xlabel">'
            f"{escape(label)}</text>"
        )
    for line in lines:
        for segment in _segments(line.band or [], step):
            outline = [(x(t), y(hi)) for t, _, hi in segment]
            outline += [(x(t), y(lo)) for t, lo, _ in reversed(segment)]
            parts.append(
                f'<polygon points="{_coords(outline)}" fill="{line.color}" class="band">'
                f"<title>{escape(line.name)}: baseline band</title></polygon>"
            )
    for line in lines:
        last = line.points[-1][1] if line.points else None
        tip = f"{line.name}: last {units.value(last, unit)}"
        for segment in _segments(line.points, step):
            coords = [(x(t), y(v)) for t, v in segment]
            if len(coords) == 1:
                (cx, cy), *_ = coords
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2" fill="{line.color}"/>')
            else:
                parts.append(
                    f'<polyline points="{_coords(coords)}" stroke="{line.color}" class="line">'
                    f"<title>{escape(tip)}</title></polyline>"
                )
    parts.append("</svg>")
    return "".join(parts)


def _coords(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in points)


def _segments(points: list[_P], step: float) -> list[list[_P]]:
    """Runs of points no more than a step and a half apart: a gap stays a gap, not a line."""
    runs: list[list[_P]] = []
    for point in points:
        if runs and point[0] - runs[-1][-1][0] <= 1.5 * step:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _y_range(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return (low - pad if low - pad >= 0 or low < 0 else 0.0), high + pad
    pad = (high - low) * 0.08
    # Do not dip below zero for quantities that cannot be negative.
    return (max(low - pad, 0.0) if low >= 0 else low - pad), high + pad


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(count + 2) if first + i * step <= high]


def _time_ticks(start: float, end: float) -> list[tuple[float, str]]:
    every = next((s for s in _TICKS if (end - start) / s <= 7), _TICKS[-1])
    t = math.ceil(start / every) * every
    ticks = []
    while t <= end:
        moment = datetime.fromtimestamp(t, UTC)
        daily = every >= 86400 or (moment.hour, moment.minute) == (0, 0)
        ticks.append((t, moment.strftime("%b %d" if daily else "%H:%M")))
        t += every
    return ticks
