"""History for a new install: the KPIs at every step of a past period and the recording rules'
history over them, as Prometheus TSDB blocks (`recmon backfill`)."""

from recmon.backfill.kpis import LIVE_ONLY, backfill
from recmon.backfill.progress import ProgressBar
from recmon.backfill.prometheus import BackfillError, query_range, throwaway_prometheus, tool
from recmon.backfill.rules import backfill_rules

__all__ = [
    "LIVE_ONLY",
    "BackfillError",
    "ProgressBar",
    "backfill",
    "backfill_rules",
    "query_range",
    "throwaway_prometheus",
    "tool",
]
