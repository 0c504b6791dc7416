"""One source's KPIs at `now` from the rows its queries returned (SPEC, "KPI definitions").

Pure: frames in, samples out. The evaluated impressions of window W have ts in
[now - delay - W, now - delay); newer impressions (up to the attribution horizon) are read too,
because last touch lets them take credit away from older ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from recmon.config import Config
from recmon.kpis.attribution import attribute
from recmon.kpis.classification import classification_metrics
from recmon.kpis.engagement import engagement
from recmon.kpis.ranking import METRICS as RANKING_METRICS
from recmon.kpis.ranking import relevant_items, request_metrics


@dataclass(frozen=True)
class Sample:
    metric: str  # catalogue name, without the recmon_ prefix
    labels: tuple[str, ...]  # values in the order of the catalogue entry's labels
    value: float


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


def role_events(config: Config, events: pd.DataFrame) -> pd.DataFrame:
    """One row per (event, role) its event type maps to."""
    mapping = pd.DataFrame(
        [(t, role) for role, types in config.events.items() for t in types],
        columns=["event_type", "role"],
    )
    return events.merge(mapping, on="event_type")


def evaluate(
    config: Config, source: str, span: Span, impressions: pd.DataFrame, events: pd.DataFrame
) -> list[Sample]:
    """Engagement, ranking and classification samples per model, variant and window."""
    window_a = config.attribution_window
    roles = role_events(config, events)
    labelled = pd.concat([impressions, attribute(impressions, roles, window_a)], axis=1)
    labelled = labelled[(labelled["ts"] >= span.start) & (labelled["ts"] < span.end)]
    positives = roles.loc[roles["role"].isin(config.positive_events), ["user_id", "item_id", "ts"]]
    pairs = sorted(set(zip(labelled["model"], labelled["variant"], strict=True)))
    samples: list[Sample] = []
    for window in config.windows:
        shown = labelled[labelled["ts"] >= span.end - window.length]
        ranking = _ranking(config, shown, positives, window_a)
        groups = dict(list(shown.groupby(["model", "variant"])))
        for model, variant in pairs:
            rows = groups.get((model, variant), shown.iloc[:0])
            labels = (source, model, variant, window.label)
            samples.extend(_pair_samples(config, labels, rows, ranking.get((model, variant))))
    return samples


def fast_signal(config: Config, source: str, counts: dict[str, list[int]]) -> list[Sample]:
    """recmon_interaction_events per role and window from per-event-type counts."""
    samples = []
    for role, types in config.events.items():
        for i, window in enumerate(config.windows):
            total = sum(counts.get(t, [0] * len(config.windows))[i] for t in set(types))
            samples.append(Sample("interaction_events", (source, role, window.label), total))
    return samples


def _pair_samples(
    config: Config, labels: tuple[str, ...], rows: pd.DataFrame, ranking: pd.DataFrame | None
) -> list[Sample]:
    values: dict[str, float | None] = dict(engagement(rows))
    values["evaluated_requests"] = 0 if ranking is None else len(ranking)
    values.update(
        classification_metrics(
            rows["score"].to_numpy(), rows["clicked"].to_numpy(), config.classification.threshold
        )
    )
    samples = [Sample(name, labels, float(v)) for name, v in values.items() if v is not None]
    if ranking is not None and len(ranking):
        means = ranking.mean()
        samples.extend(
            Sample(f"{metric}_at_k", (*labels, str(k)), float(means[f"{metric}@{k}"]))
            for metric in RANKING_METRICS
            for k in config.k
        )
    return samples


def _ranking(
    config: Config, shown: pd.DataFrame, positives: pd.DataFrame, window_a: timedelta
) -> dict[tuple[str, str], pd.DataFrame]:
    """Per-request ranking metrics of the window, split by (model, variant)."""
    requests = shown.groupby("request_id", as_index=False).agg(
        user_id=("user_id", "first"),
        ts=("ts", "min"),
        model=("model", "first"),
        variant=("variant", "first"),
    )
    relevant = relevant_items(requests, positives, window_a)
    per_request = request_metrics(shown[["request_id", "item_id", "rank"]], relevant, config.k)
    owner = requests.set_index("request_id").loc[per_request.index, ["model", "variant"]]
    return {
        (model, variant): frame.drop(columns=["model", "variant"])
        for (model, variant), frame in per_request.join(owner).groupby(["model", "variant"])
    }
