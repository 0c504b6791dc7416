from datetime import timedelta

import pytest

from recmon.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("250ms", timedelta(milliseconds=250)),
    ],
)
def test_prometheus_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "1 h", "-5m", "0s", "1.5h", "h"])
def test_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
