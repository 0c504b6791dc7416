"""One source's KPIs at `now` from what its queries read (SPEC, "KPI definitions").

Pure: frames in, samples out. The evaluated impressions of window W have ts in
[now - delay - W, now - delay); newer impressions (up to the attribution horizon) are read too,
because last touch lets them take credit away from older ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from recmon.config import Config
from recmon.kpis import ab
from recmon.kpis.attribution import attribute
from recmon.kpis.catalog import catalog_health
from recmon.kpis.classification import classification_metrics
from recmon.kpis.comparison import compare
from recmon.kpis.drift import psi
from recmon.kpis.engagement import engagement
from recmon.kpis.lifecycle import anomalous_hours
from recmon.kpis.ranking import METRICS as RANKING_METRICS
from recmon.kpis.ranking import relevant_items, request_metrics
from recmon.sources.reader import Lifecycle, SourceData
from recmon.sources.validate import REASONS
from recmon.span import Span

Group = tuple[str, ...]  # (model, variant, *dimension values)
OTHER = "other"


@dataclass(frozen=True)
class Sample:
    metric: str  # catalogue name, without the recmon_ prefix
    labels: tuple[str, ...]  # values in the order of the catalogue entry's labels
    value: float


def role_events(config: Config, events: pd.DataFrame) -> pd.DataFrame:
    """One row per (event, role) its event type maps to."""
    mapping = pd.DataFrame(
        [(t, role) for role, types in config.events.items() for t in types],
        columns=["event_type", "role"],
    )
    return events.merge(mapping, on="event_type")


def evaluate(config: Config, source: str, span: Span, data: SourceData) -> list[Sample]:
    """Every KPI of the source: per model, variant and window, then per window, then per source."""
    roles = role_events(config, data.events)
    impressions, reference = data.impressions.copy(), data.reference.copy()
    attributed = attribute(impressions, roles, config.attribution_window)
    labelled = pd.concat([impressions, attributed], axis=1)
    labelled = labelled[(labelled["ts"] >= span.start) & (labelled["ts"] < span.end)].copy()
    folded = _fold(config, labelled, [impressions, labelled, reference])
    positives = roles.loc[roles["role"].isin(config.positive_events), ["user_id", "item_id", "ts"]]
    keys = ["model", "variant", *config.dimensions]
    pairs: list[Group] = sorted(set(labelled[keys].itertuples(index=False, name=None)))
    offset = config.drift.reference_offset
    samples = [Sample("dimension_values_folded", (source, d), n) for d, n in folded.items()]
    served = _by_group(impressions, keys) if data.sessions is not None else {}
    for window in config.windows:
        since = span.end - window.length
        shown = labelled[labelled["ts"] >= since]
        past = reference[reference["ts"] >= since - offset]
        sessions = None
        if data.sessions is not None:
            started = data.sessions["first"]
            sessions = data.sessions[(started >= since) & (started < span.end)]
        ranking = _ranking(config, shown, positives, keys)
        groups = _by_group(shown, keys)
        reference_groups = _by_group(past, keys)
        per_pair: dict[Group, dict[str, float | None]] = {}
        for pair in pairs:
            rows = groups.get(pair, shown.iloc[:0])
            values = per_pair[pair] = _pair_values(config, rows, data.catalog_size)
            values["score_psi"] = psi(
                reference_groups[pair]["score"].to_numpy() if pair in reference_groups else [],
                rows["score"].to_numpy(),
            )
            if sessions is not None:
                values["session_duration_seconds"] = _session_duration(
                    sessions, served.get(pair, impressions.iloc[:0])
                )
            labels = (source, *pair[:2], window.label, *pair[2:])
            samples.extend(_samples(values, labels))
            samples.extend(_ranking_samples(config, labels, ranking.get(pair)))
        samples.extend(_comparisons(config, source, window.label, shown))
        samples.extend(_experiments(config, source, window.label, per_pair))
    if data.lifecycle is not None:
        samples.extend(_lifecycle(config, source, span.now, data.lifecycle))
    return samples + _fast_signal(config, source, data.event_counts) + _quality(source, data)


def _pair_values(config: Config, rows: pd.DataFrame, catalog_size: int) -> dict[str, float | None]:
    values: dict[str, float | None] = dict(engagement(rows))
    values.update(
        classification_metrics(
            rows["score"].to_numpy(), rows["clicked"].to_numpy(), config.classification.threshold
        )
    )
    values.update(catalog_health(rows, catalog_size, config.new_item_age))
    return values


def _samples(values: dict[str, float | None], labels: tuple[str, ...]) -> list[Sample]:
    return [Sample(name, labels, float(v)) for name, v in values.items() if v is not None]


def _by_group(frame: pd.DataFrame, keys: list[str]) -> dict[Group, pd.DataFrame]:
    return dict(list(frame.groupby(keys)))  # type: ignore[arg-type]


def _fold(config: Config, basis: pd.DataFrame, frames: list[pd.DataFrame]) -> dict[str, int]:
    """Cardinality guard: per dimension, keep the max_dimension_values values shown most in
    `basis` and rename the rest to "other" in every frame; return how many were folded."""
    folded = {}
    for dimension in config.dimensions:
        counts = basis[dimension].value_counts()
        ordered = sorted(counts.index, key=lambda value: (-counts[value], value))
        kept = set(ordered[: config.max_dimension_values])
        folded[dimension] = len(ordered) - len(kept)
        for frame in frames:
            frame[dimension] = frame[dimension].where(frame[dimension].isin(kept), OTHER)
    return folded


def _ranking(
    config: Config, shown: pd.DataFrame, positives: pd.DataFrame, keys: list[str]
) -> dict[Group, pd.DataFrame]:
    """Per-request ranking metrics of the window, split by group."""
    requests = shown.groupby("request_id", as_index=False).agg(
        user_id=("user_id", "first"),
        ts=("ts", "min"),
        **{key: (key, "first") for key in keys},
    )
    relevant = relevant_items(requests, positives, config.attribution_window)
    per_request = request_metrics(shown[["request_id", "item_id", "rank"]], relevant, config.k)
    owner = requests.set_index("request_id").loc[per_request.index, keys]
    return {
        group: frame.drop(columns=keys)
        for group, frame in _by_group(per_request.join(owner), keys).items()
    }


def _ranking_samples(
    config: Config, labels: tuple[str, ...], ranking: pd.DataFrame | None
) -> list[Sample]:
    evaluated = 0 if ranking is None else len(ranking)
    samples = [Sample("evaluated_requests", labels, float(evaluated))]
    if ranking is not None and evaluated:
        means = ranking.mean()
        samples.extend(
            Sample(f"{metric}_at_k", (*labels, str(k)), float(means[f"{metric}@{k}"]))
            for metric in RANKING_METRICS
            for k in config.k
        )
    return samples


def _session_duration(sessions: pd.DataFrame, served: pd.DataFrame) -> float | None:
    """Mean last - first of the sessions during which the pair served the session's user."""
    joined = sessions.merge(served[["user_id", "ts"]], on="user_id")
    during = joined[(joined["ts"] >= joined["first"]) & (joined["ts"] <= joined["last"])]
    kept = during.drop_duplicates(["session_id", "user_id"])
    if kept.empty:
        return None
    return float((kept["last"] - kept["first"]).dt.total_seconds().mean())


def _comparisons(config: Config, source: str, window: str, shown: pd.DataFrame) -> list[Sample]:
    samples = []
    for pair in config.comparisons:
        labels = (source, pair.baseline, pair.candidate, window)
        result = compare(
            shown[shown["model"] == pair.baseline],
            shown[shown["model"] == pair.candidate],
            config.k,
        )
        samples.append(Sample("comparison_users", labels, float(result["users"] or 0)))
        samples.append(
            Sample("comparison_unique_items", labels, float(result["unique_items"] or 0))
        )
        for k in config.k:
            for metric, key in (
                ("overlap_at_k", "overlap"),
                ("jaccard_at_k", "jaccard"),
                ("rbo", "rbo"),
            ):
                value = result[f"{key}@{k}"]
                if value is not None:
                    samples.append(Sample(f"comparison_{metric}", (*labels, str(k)), value))
    return samples


_AB_RATES = {"ctr": "clicks", "conversion": "conversions"}


def _experiments(
    config: Config, source: str, window: str, per_group: dict[Group, dict[str, float | None]]
) -> list[Sample]:
    """Each variant of a model that has a control arm, against that arm (per dimension values)."""
    control = config.ab.control
    samples = []
    for (model, variant, *dims), values in per_group.items():
        base = per_group.get((model, control, *dims))
        if variant == control or base is None:
            continue
        for metric, count in _AB_RATES.items():
            args = (
                int(values[count] or 0),
                int(values["impressions"] or 0),
                int(base[count] or 0),
                int(base["impressions"] or 0),
            )
            labels = (source, metric, variant, control, model, window, *dims)
            for name, value in (
                ("ab_relative_lift", ab.lift(*args)),
                ("ab_p_value", ab.p_value(*args)),
            ):
                if value is not None:
                    samples.append(Sample(name, labels, value))
    requests: dict[Group, dict[str, float]] = {}  # (model, *dims) -> variant -> requests
    for (model, variant, *dims), values in per_group.items():
        requests.setdefault((model, *dims), {})[variant] = values["recommendation_requests"] or 0
    for (model, *dims), arms in requests.items():
        total = sum(arms.values())
        if control in arms and total:
            samples.extend(
                Sample("ab_traffic_share_ratio", (source, model, variant, window, *dims), n / total)
                for variant, n in arms.items()
            )
    return samples


def _lifecycle(config: Config, source: str, now: datetime, life: Lifecycle) -> list[Sample]:
    samples = []
    for row in life.deployed.itertuples():
        samples.append(Sample("model_info", (source, row.model, row.version), 1.0))
        if pd.notna(row.trained_at):
            age = (now - row.trained_at).total_seconds()
            samples.append(Sample("model_age_seconds", (source, row.model), age))
    for row in life.versions.itertuples():
        labels = (source, row.model, row.version)
        if pd.notna(row.training_data_end):
            end = _epoch(row.training_data_end.to_pydatetime())
            samples.append(Sample("model_training_data_end_timestamp_seconds", labels, end))
        hourly = life.hourly.get((row.model, row.version))
        if hourly is not None:
            hours = anomalous_hours(
                hourly["click"],
                hourly["conversion"],
                config.pollution.ratio_floor,
                config.pollution.min_clicks,
            )
            if hours is not None:
                samples.append(Sample("model_training_data_anomalous_hours", labels, hours))
    samples.extend(
        Sample("model_offline_metric", (source, row.model, row.version, row.metric), row.value)
        for row in life.metrics.itertuples()
    )
    return samples


def _fast_signal(config: Config, source: str, counts: dict[str, list[int]]) -> list[Sample]:
    """recmon_interaction_events per role and window from per-event-type counts."""
    samples = []
    for role, types in config.events.items():
        for i, window in enumerate(config.windows):
            total = sum(counts.get(t, [0] * len(config.windows))[i] for t in set(types))
            samples.append(Sample("interaction_events", (source, role, window.label), total))
    return samples


def _quality(source: str, data: SourceData) -> list[Sample]:
    samples = [
        Sample("last_event_timestamp_seconds", (source, table), _epoch(newest))
        for table, newest in data.newest.items()
        if newest is not None
    ]
    samples.extend(
        Sample("invalid_rows", (source, table, reason), float(data.invalid[(table, reason)]))
        for table, reasons in REASONS.items()
        for reason in reasons
    )
    samples.extend(
        Sample("query_duration_seconds", (source, query), seconds)
        for query, seconds in data.durations.items()
    )
    return samples


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()
