"""Where alerts point: the runbook anchors and the Grafana dashboards' stable uids.

The alert generator builds `runbook_url` and `dashboard_url` from these, and the dashboard
generator gives its dashboards the same uids, so a link in a page always opens a dashboard.
"""

from __future__ import annotations

from urllib.parse import quote

OVERVIEW = "recmon-overview"
MODEL = "recmon-model"
COMPARE = "recmon-compare"
EXPERIMENTS = "recmon-experiments"
CATALOGUE = "recmon-catalogue"
HEALTH = "recmon-health"

# The variables a dashboard takes from an alert's labels when they are present.
DASHBOARD_VARIABLES: dict[str, tuple[str, ...]] = {
    OVERVIEW: ("source",),
    MODEL: ("source", "model", "variant", "window"),
    COMPARE: ("source", "window"),
    EXPERIMENTS: ("source", "model", "window"),
    CATALOGUE: ("source", "model", "variant", "window"),
    HEALTH: ("source",),
}


def runbook_url(base: str, alertname: str) -> str:
    """The alert's section of the runbook: one anchor per alert, its name in lower case."""
    return f"{base}#{alertname.lower()}"


def dashboard_url(base: str, uid: str, labels: tuple[str, ...]) -> str:
    """A Grafana link templated by Prometheus: the dashboard with its variables set from the
    alert's labels (only those the alert has)."""
    query = "&".join(
        f"var-{name}={{{{ $labels.{name} | urlquery }}}}"
        for name in DASHBOARD_VARIABLES[uid]
        if name in labels
    )
    return f"{base.rstrip('/')}/d/{quote(uid)}" + (f"?{query}" if query else "")
