"""`recmon report`: a self-contained HTML trend report of a past period, for people who read
reports rather than PromQL. The numbers come from the database (the cycle `serve` runs, at each
step) or from a Prometheus; `history` holds what both give, `summary` the tables, `html` and
`svg` the page."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from recmon.report.history import Loader, ReportError, collect
from recmon.report.html import DATA_ID, render

FILE_NAME = "report.html"
__all__ = ["DATA_ID", "FILE_NAME", "Loader", "ReportError", "write_report"]


def write_report(
    loader: Loader, start: datetime, end: datetime, step: timedelta, out: Path
) -> Path:
    """Write the report of [start, end] into directory `out`; returns the file's path."""
    page = render(collect(loader, start, end, step))
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILE_NAME
    path.write_text(page, encoding="utf-8")
    return path
