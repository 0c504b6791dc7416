"""One source's KPIs at `now` from the incremental engine's windows (SPEC, "KPI definitions").

The evaluated impressions of window W have ts in [now - delay - W, now - delay); the engine
holds their per-minute sums (see recmon.incremental), and this module turns a window's sums into
the KPI values of each (model, variant) pair and the samples that carry them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from recmon.config import Config
from recmon.incremental.buckets import ScoreBins, Tally, bin_edges
from recmon.incremental.partial import Group, fields
from recmon.incremental.store import MinuteStore
from recmon.incremental.window import Window, merged
from recmon.kpis import ab
from recmon.kpis.catalog import catalog_from_counts
from recmon.kpis.classification import auc_from_histogram, classification_from_counts
from recmon.kpis.comparison import COMPARISON_METRICS, means
from recmon.kpis.drift import psi_from_histogram
from recmon.kpis.engagement import engagement_from_counts, ratio
from recmon.kpis.lifecycle import anomalous_hours
from recmon.kpis.ranking import METRICS as RANKING_METRICS
from recmon.sources.reader import CycleData, Lifecycle
from recmon.sources.validate import REASONS
from recmon.span import Span

OTHER = "other"
BIN_EDGES = bin_edges()


@dataclass(frozen=True)
class Sample:
    metric: str  # catalogue name, without the recmon_ prefix
    labels: tuple[str, ...]  # values in the order of the catalogue entry's labels
    value: float


def evaluate(
    config: Config, source: str, span: Span, store: MinuteStore, data: CycleData
) -> list[Sample]:
    """Every KPI of the source: per model, variant and window, then per window, then per source."""
    largest = store.windows[config.largest_window.label]
    folded, fold = _fold(config, largest)
    pairs = sorted({fold[g] for g, v in largest.sums.items() if v[0] > 0})
    samples = [Sample("dimension_values_folded", (source, d), n) for d, n in folded.items()]
    for window in config.windows:
        state, reference = store.windows[window.label], store.references[window.label]
        members: dict[Group, list[Group]] = {}
        for group in state.sums.keys() | reference.scored.keys():
            members.setdefault(fold.get(group, group), []).append(group)
        per_pair: dict[Group, dict[str, float | None]] = {}
        for pair in pairs:
            raw = members.get(pair, [])
            values = per_pair[pair] = _pair_values(config, store, state, reference, raw, data)
            labels = (source, *pair[:2], window.label, *pair[2:])
            samples.extend(_samples(values, labels))
            samples.extend(_ranking_samples(config, labels, state, raw))
        samples.extend(_comparisons(config, source, window.label, state))
        samples.extend(_experiments(config, source, window.label, per_pair))
    if data.lifecycle is not None:
        samples.extend(_lifecycle(config, source, span.now, data.lifecycle))
    samples += _fast_signal(config, source, store.event_counts(span))
    return samples + _quality(source, data, largest)


def _sums(config: Config, state: Window, raw: list[Group]) -> dict[str, float]:
    names = fields(config.k)
    total = np.zeros(len(names))
    for group in raw:
        if group in state.sums:
            total += state.sums[group]
    return dict(zip(names, total.tolist(), strict=True))


def _pair_values(
    config: Config,
    store: MinuteStore,
    state: Window,
    reference: Window,
    raw: list[Group],
    data: CycleData,
) -> dict[str, float | None]:
    f = _sums(config, state, raw)
    bins, scored, clicked, past = _score_bins(
        store.summarizer.bins,
        [state.scored.get(g) for g in raw],
        [state.clicked.get(g) for g in raw],
        [reference.scored.get(g) for g in raw],
    )
    users = merged(state.users.get(g) for g in raw)
    values = engagement_from_counts(
        f["requests"],
        f["impressions"],
        f["clicks"],
        f["conversions"],
        f["watch_seconds"],
        float(np.count_nonzero(users)),
    )
    values.update(
        classification_from_counts(
            f["scored"],
            f["positives"],
            f["log_loss"],
            f["out_of_range"],
            f["predicted"],
            f["true_positives"],
            f["correct"],
            auc_from_histogram(scored, clicked),
        )
    )
    values.update(
        catalog_from_counts(
            merged(state.items.get(g) for g in raw),
            data.catalog_size,
            f["impressions"],
            f["new_items"],
            f["age_seconds"],
            f["aged"],
        )
    )
    values["score_psi"] = psi_from_histogram(past, scored, BIN_EDGES[bins])
    if data.sessions:
        values["session_duration_seconds"] = ratio(f["session_seconds"], f["sessions"])
    return values


def _score_bins(bins: ScoreBins, *tallies: list[Tally | None]) -> tuple[np.ndarray, ...]:
    """The numbers of the score bins used on any side, ascending, and each side's counts in
    them (the order of the bins is all that AUC and PSI need)."""
    sides = [merged(t) for t in tallies]
    codes = np.unique(np.concatenate([np.flatnonzero(side) for side in sides]))
    codes = codes[np.argsort(bins.numbers[codes])]
    return bins.numbers[codes], *(_at(side, codes) for side in sides)


def _at(counts: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """counts[codes] as int64, 0 past the end of `counts`."""
    out = np.zeros(len(codes), dtype=np.int64)
    inside = codes < len(counts)
    out[inside] = counts[codes[inside]]
    return out


def _samples(values: dict[str, float | None], labels: tuple[str, ...]) -> list[Sample]:
    return [Sample(name, labels, float(v)) for name, v in values.items() if v is not None]


def _fold(config: Config, largest: Window) -> tuple[dict[str, int], dict[Group, Group]]:
    """Cardinality guard: per dimension, keep the max_dimension_values values shown most in the
    largest window and read the rest as "other"; how many were folded, and each group's fold."""
    shown: dict[str, dict[str, float]] = {d: {} for d in config.dimensions}
    for group, sums in largest.sums.items():
        for dimension, value in zip(config.dimensions, group[2:], strict=True):
            if sums[0] > 0:
                shown[dimension][value] = shown[dimension].get(value, 0.0) + sums[0]
    kept, folded = [], {}
    for dimension, counts in shown.items():
        ordered = sorted(counts, key=lambda value: (-counts[value], value))
        kept.append(set(ordered[: config.max_dimension_values]))
        folded[dimension] = len(ordered) - len(kept[-1])
    groups = largest.sums.keys() | largest.scored.keys()
    fold = {
        g: (*g[:2], *(v if v in k else OTHER for v, k in zip(g[2:], kept, strict=True)))
        for g in groups
    }
    return folded, fold


def _ranking_samples(
    config: Config, labels: tuple[str, ...], state: Window, raw: list[Group]
) -> list[Sample]:
    f = _sums(config, state, raw)
    evaluated = f["evaluated"]
    samples = [Sample("evaluated_requests", labels, evaluated)]
    if evaluated:
        samples.extend(
            Sample(f"{metric}_at_k", (*labels, str(k)), f[f"{metric}@{k}"] / evaluated)
            for metric in RANKING_METRICS
            for k in config.k
        )
    return samples


def _comparisons(config: Config, source: str, window: str, state: Window) -> list[Sample]:
    samples = []
    for i, pair in enumerate(config.comparisons):
        labels = (source, pair.baseline, pair.candidate, window)
        models = {
            model: merged(t for g, t in state.items.items() if g[0] == model)
            for model in (pair.baseline, pair.candidate)
        }
        base, cand = models[pair.baseline], models[pair.candidate]
        base = np.pad(base, (0, max(0, len(cand) - len(base))))[: len(cand)]
        unique = int(np.count_nonzero((cand > 0) & (base == 0)))
        users = len(state.scores_by_user[i])
        result = means(users, unique, state.score_sums(i), config.k)
        samples.append(Sample("comparison_users", labels, float(users)))
        samples.append(Sample("comparison_unique_items", labels, float(unique)))
        for k in config.k:
            for metric in COMPARISON_METRICS:
                value = result[f"{metric}@{k}"]
                name = "rbo" if metric == "rbo" else f"{metric}_at_k"
                if value is not None:
                    samples.append(Sample(f"comparison_{name}", (*labels, str(k)), value))
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
                *hourly,
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


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def _fast_signal(config: Config, source: str, counts: dict[str, list[int]]) -> list[Sample]:
    """recmon_interaction_events per role and window from per-event-type counts."""
    samples = []
    for role, types in config.events.items():
        for i, window in enumerate(config.windows):
            total = sum(counts.get(t, [0] * len(config.windows))[i] for t in set(types))
            samples.append(Sample("interaction_events", (source, role, window.label), total))
    return samples


def _quality(source: str, data: CycleData, largest: Window) -> list[Sample]:
    samples = [
        Sample("last_event_timestamp_seconds", (source, table), _epoch(newest))
        for table, newest in data.newest.items()
        if newest is not None
    ]
    invalid = largest.invalid + data.future
    samples.extend(
        Sample("invalid_rows", (source, table, reason), float(invalid[(table, reason)]))
        for table, reasons in REASONS.items()
        for reason in reasons
    )
    samples.extend(
        Sample("query_duration_seconds", (source, query), seconds)
        for query, seconds in data.durations.items()
    )
    return samples
