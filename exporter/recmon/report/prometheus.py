"""The report's numbers from a Prometheus that scraped recmon (or holds its backfilled blocks),
through the HTTP API: range queries of the recmon_* series, of the baseline recording rules
recmon:<kpi>:baseline_lower/upper, and of ALERTS / ALERTS_FOR_STATE."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from recmon.durations import parse_duration
from recmon.report.history import REPORTED, Alert, Band, Key, Labels, Point, ReportError, unix

# Labels the scrape adds; the report's series are the exporter's, whoever scraped them.
_TARGET_LABELS = {"__name__", "job", "instance", "window"}
_METRICS = "|".join(m.name for m in REPORTED)
_BANDED = "|".join(m.name for m in REPORTED if m.banded)
_BOUND = re.compile(r"recmon:(\w+):baseline_(lower|upper)")
# Always firing by design (the dead man's switch): not news in a report.
_ALERTS = 'alertname!="Watchdog"'
MAX_POINTS = 11_000  # Prometheus refuses longer range queries


class PrometheusLoader:
    def __init__(self, url: str, window: str | None = None, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.origin = "Prometheus " + _without_password(self.url)
        self.timeout = timeout
        self.session = requests.Session()
        self.window = window or self._largest_window()

    def values(self, times: Sequence[datetime]) -> dict[Key, list[Point]]:
        query = f'{{__name__=~"recmon_({_METRICS})", window="{self.window}"}}'
        result: dict[Key, list[Point]] = {}
        for labels, points in self._range(query, times):
            key = (labels.pop("__name__").removeprefix("recmon_"), _identity(labels))
            result.setdefault(key, points)  # a second scraper's copy of a series: keep one
        return result

    def bands(self, times: Sequence[datetime]) -> dict[Key, list[Band]] | None:
        query = f'{{__name__=~"recmon:({_BANDED}):baseline_(lower|upper)", window="{self.window}"}}'
        bounds: dict[Key, dict[str, dict[float, float]]] = {}
        for labels, points in self._range(query, times):
            match = _BOUND.fullmatch(labels.pop("__name__"))
            if match is None:
                continue
            key = (match[1], _identity(labels))
            bounds.setdefault(key, {}).setdefault(match[2], dict(points))
        result = {}
        for key, sides in bounds.items():
            lower, upper = sides.get("lower", {}), sides.get("upper", {})
            band = [(t, lower[t], upper[t]) for t in sorted(lower) if t in upper]
            if band:
                result[key] = band
        return result

    def alerts(self, times: Sequence[datetime]) -> list[Alert] | None:
        step = _step(times)
        # max_over_time over each step catches an alert that fired between two points.
        firing = self._range(
            f'max_over_time(ALERTS{{alertstate="firing", {_ALERTS}}}[{step}s])', times
        )
        # ALERTS_FOR_STATE holds when each alert became active (pending), as its value.
        active = {
            _identity(labels, drop={"__name__", "alertstate"}): dict(points)
            for labels, points in self._range(
                f"min_over_time(ALERTS_FOR_STATE{{{_ALERTS}}}[{step}s])", times
            )
        }
        # The last evaluation with data: a period that ends in the future ends now.
        latest = min(unix(times[-1]), time.time())
        alerts = []
        for labels, points in firing:
            identity = _identity(labels, drop={"__name__", "alertstate"})
            since = active.get(identity, {})
            rest = {k: v for k, v in identity if k not in {"job", "instance"}}
            name, severity = rest.pop("alertname", "?"), rest.pop("severity", "")
            for first, last in _runs([t for t, _ in points], step):
                start = min(since.get(first, first), first)
                alerts.append(
                    Alert(
                        name,
                        severity,
                        tuple(sorted(rest.items())),
                        start,
                        last,
                        last + step > latest,
                    )
                )
        return sorted(alerts, key=lambda a: (a.start, a.name, a.labels))

    def close(self) -> None:
        self.session.close()

    def _largest_window(self) -> str:
        windows = self._get(
            "/api/v1/label/window/values", {"match[]": f'{{__name__=~"recmon_({_METRICS})"}}'}
        )
        if not windows:
            raise ReportError(f"{self.origin} holds no recmon KPI series")
        return max(windows, key=parse_duration)

    def _range(self, query: str, times: Sequence[datetime]) -> list[tuple[dict[str, str], list]]:
        if len(times) > MAX_POINTS:
            raise ReportError(
                f"{len(times)} points per series; Prometheus answers at most {MAX_POINTS}: "
                "use a longer --step"
            )
        params = {
            "query": query,
            "start": unix(times[0]),
            "end": unix(times[-1]),
            "step": _step(times),
        }
        data = self._get("/api/v1/query_range", params)
        return [
            (
                dict(series["metric"]),
                [(float(t), float(v)) for t, v in series["values"] if math.isfinite(float(v))],
            )
            for series in data["result"]
        ]

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            answer = self.session.get(self.url + path, params=params, timeout=self.timeout)
        except requests.Timeout:
            raise ReportError(f"{self.origin} did not answer within {self.timeout:g} s") from None
        except requests.ConnectionError:
            raise ReportError(f"cannot connect to {self.origin}") from None
        except requests.RequestException as exc:  # the URL itself is wrong
            raise ReportError(f"cannot query {self.origin}: {exc}") from None
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or body.get("status") != "success":
            error = body.get("error") or answer.text[:200]
            raise ReportError(f"{self.origin} answered {answer.status_code}: {error}")
        return body["data"]


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _identity(labels: dict[str, str], drop: set[str] = _TARGET_LABELS) -> Labels:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def _step(times: Sequence[datetime]) -> int:
    return int((times[1] - times[0]).total_seconds()) if len(times) > 1 else 60


def _runs(stamps: list[float], step: int) -> list[tuple[float, float]]:
    """Consecutive points (one step apart) as (first, last) pairs."""
    runs: list[tuple[float, float]] = []
    for t in stamps:
        if runs and t - runs[-1][1] <= step * 1.5:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs
