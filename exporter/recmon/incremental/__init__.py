"""The incremental KPI engine: per-minute partial aggregates, windows assembled from them.

A minute of impressions is summarised once its labels can no longer change (its attribution
horizon has passed: every click it can earn, and every later impression that can take a click
from it, is at most A after it); a minute still inside its horizon is summarised again each
cycle. A window is the sum of its minutes, kept as running totals that add the minutes entering
it and take away the minutes leaving it, so a cycle's cost grows with the new minutes, not with
the window. See docs/scaling.md for the design and its measured cost.
"""
