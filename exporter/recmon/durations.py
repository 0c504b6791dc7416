"""Prometheus duration syntax (`30s`, `5m`, `1h30m`, `7d`), the only one recmon accepts."""

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_WHOLE = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration; raise ValueError on anything else (including zero)."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        raise ValueError(
            f"invalid duration {text!r}: use Prometheus syntax such as 30s, 5m, 1h, 7d"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return timedelta(seconds=seconds)
