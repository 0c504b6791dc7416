"""Numbers as a reader wants them, by the catalogue's unit: ratios in %, seconds as durations."""

from __future__ import annotations

from recmon.catalogue import Unit

NONE = "\u2013"  # an en dash: no value


def value(v: float | None, unit: Unit) -> str:
    if v is None:
        return NONE
    if unit == "ratio":
        return f"{v * 100:.2f}%" if abs(v) < 0.1 else f"{v * 100:.1f}%"
    if unit == "seconds":
        return duration(v)
    if unit == "count":
        return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:,.1f}"
    return f"{v:.3g}"


_DURATIONS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def duration_scale(seconds: float) -> tuple[int, str]:
    """The unit a duration reads best in: days from two days on, then hours, minutes."""
    return next(((n, u) for n, u in _DURATIONS if abs(seconds) >= 2 * n), _DURATIONS[-1])


def duration(seconds: float) -> str:
    size, suffix = duration_scale(seconds)
    if size > 1:
        return f"{seconds / size:.1f} {suffix}"
    return (
        f"{seconds:.0f} s" if abs(seconds) >= 10 or seconds == int(seconds) else f"{seconds:.1f} s"
    )


def change(v: float | None) -> str:
    """A relative change, signed, with a real minus sign (U+2212) as in print: +3.2%."""
    if v is None:
        return NONE
    text = f"{abs(v) * 100:.1f}%"
    return ("+" if v >= 0 else "\u2212") + text


def p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
