"""`recmon backtest`: how the alert rules would have done on simulated incidents.

For each scenario of the simulator, weeks of normal history with the scenario's incident at the
time the scenario defines are simulated, backfilled into a throwaway Prometheus (the real
binary) and every alert rule is evaluated over that history with `for:` applied (`run`); the
report says per scenario and alert whether and how fast it fired, and how often the clean world
pages (`report`). `alerts` holds the rule handling.
"""

from __future__ import annotations

from recmon.backtest.report import analyse, table, to_json
from recmon.backtest.run import DEFAULT_END, QUIET, Options, run

__all__ = ["DEFAULT_END", "QUIET", "Options", "analyse", "run", "table", "to_json"]
