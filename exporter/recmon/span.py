"""The time ranges one evaluation at `now` reads (SPEC, "KPI definitions")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from recmon.config import Config


@dataclass(frozen=True)
class Span:
    """The time ranges one evaluation reads."""

    now: datetime
    end: datetime  # now - delay: evaluated impressions are older than this
    start: datetime  # end - the largest window
    horizon: datetime  # newest impression or event that can matter: min(end + A, now)
    fast_starts: tuple[datetime, ...]  # now - W for each window, for the undelayed counts

    @classmethod
    def at(cls, config: Config, now: datetime) -> Span:
        end = now - config.label_delay
        return cls(
            now=now,
            end=end,
            start=end - config.largest_window.length,
            horizon=min(end + config.attribution_window, now),
            fast_starts=tuple(now - w.length for w in config.windows),
        )
