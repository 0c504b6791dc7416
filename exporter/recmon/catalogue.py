"""Every metric recmon exports, in one table: the single source of truth.

The exporter builds its families from it; the rule, alert, dashboard and README generators read it.
`bad` says which way a KPI moves when things get worse ("drop", "spike"; None for metrics that
never alert as a KPI), `sensitivity` how readily its anomaly alert fires, and `alert` names the
dedicated alert that watches it instead of the generic baseline band (RecmonKpiAnomaly).
`volume` marks counts that grow with traffic (their alerts are gated on the traffic expected,
not on their own value, so a collapse to zero still pages); `per` names the count a ratio or
mean is taken over (its alerts are gated on that count, so a handful of rows does not page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PREFIX = "recmon_"
MODEL_LABELS: tuple[str, ...] = ("source", "model", "variant", "window")
RANKED_LABELS: tuple[str, ...] = (*MODEL_LABELS, "k")

Direction = Literal["drop", "spike"]
Sensitivity = Literal["high", "medium", "low"]
Unit = Literal["ratio", "seconds", "count", "score", "timestamp", "info"]
_ACRONYMS = {
    "ctr": "CTR",
    "ndcg": "NDCG",
    "map": "MAP",
    "mrr": "MRR",
    "auc": "AUC",
    "psi": "PSI",
    "rbo": "RBO",
    "ab": "A/B",
}


@dataclass(frozen=True)
class Metric:
    name: str  # without the recmon_ prefix
    help: str
    unit: Unit
    labels: tuple[str, ...]
    group: str  # README section and dashboard row
    bad: Direction | None = None
    sensitivity: Sensitivity = "medium"
    kind: Literal["gauge", "counter", "info"] = "gauge"
    alert: str | None = None
    volume: bool = False
    per: str = "impressions"

    @property
    def banded(self) -> bool:
        """Watched by RecmonKpiAnomaly against a seasonal baseline band."""
        return self.bad is not None and self.alert is None

    @property
    def full_name(self) -> str:
        return PREFIX + self.name

    @property
    def title(self) -> str:
        """A short title for charts and reports: the name without the unit it ends with."""
        name = self.name
        for suffix in ("_timestamp_seconds", "_seconds", "_ratio"):  # the unit says it
            if name.endswith(suffix):
                name = name.removesuffix(suffix)
                break
        text = " ".join(_ACRONYMS.get(word, word) for word in name.split("_"))
        text = text.replace(" at k", "@k")
        text = text[0].upper() + text[1:]
        return text + " age" if self.unit == "timestamp" else text

    def labels_with(self, dimensions: tuple[str, ...]) -> tuple[str, ...]:
        """The labels when the config declares extra dimensions: per-model metrics carry them
        after `window` (and before `k`); the others do not."""
        per_model = self.labels[: len(MODEL_LABELS)] == MODEL_LABELS or self.labels == AB_LABELS
        if not dimensions or not per_model:
            return self.labels
        if self.labels[-1] == "k":
            return (*self.labels[:-1], *dimensions, "k")
        return (*self.labels, *dimensions)


def _model(
    name: str,
    help: str,
    unit: Unit,
    group: str,
    bad: Direction | None,
    sensitivity: Sensitivity = "medium",
    alert: str | None = None,
    volume: bool = False,
    per: str = "impressions",
) -> Metric:
    return Metric(
        name, help, unit, MODEL_LABELS, group, bad, sensitivity, alert=alert, volume=volume, per=per
    )


def _ranked(name: str, what: str) -> Metric:
    return Metric(
        f"{name}_at_k",
        f"Mean {what} at k over evaluated requests.",
        "ratio",
        RANKED_LABELS,
        "ranking",
        "drop",
        per="evaluated_requests",
    )


ENGAGEMENT = "engagement"
RANKING = "ranking"
CLASSIFICATION = "classification"
CATALOG = "catalog"
DRIFT = "drift"
COMPARISON = "comparison"
EXPERIMENT = "experiment"
LIFECYCLE = "lifecycle"
QUALITY = "quality"
HEALTH = "health"
COMPARISON_LABELS: tuple[str, ...] = ("source", "baseline", "candidate", "window")
AB_LABELS: tuple[str, ...] = (
    "source",
    "experiment_metric",
    "variant",
    "control",
    "model",
    "window",
)

METRICS: tuple[Metric, ...] = (
    _model(
        "recommendation_requests",
        "Distinct recommendation requests served in the window.",
        "count",
        ENGAGEMENT,
        "drop",
        "low",
        volume=True,
    ),
    _model(
        "impressions",
        "Recommended items shown (one per list row) in the window.",
        "count",
        ENGAGEMENT,
        "drop",
        "low",
        volume=True,
    ),
    _model(
        "clicks",
        "Impressions with at least one attributed click.",
        "count",
        ENGAGEMENT,
        "drop",
        "low",
        volume=True,
    ),
    _model(
        "conversions",
        "Impressions with at least one attributed conversion.",
        "count",
        ENGAGEMENT,
        "drop",
        "low",
        volume=True,
    ),
    _model("ctr_ratio", "Clicked impressions / impressions.", "ratio", ENGAGEMENT, "drop"),
    _model("conversion_ratio", "Converted impressions / impressions.", "ratio", ENGAGEMENT, "drop"),
    _model(
        "click_conversion_ratio",
        "Converted / clicked impressions; falls towards 0 when payments fail but clicks go on.",
        "ratio",
        ENGAGEMENT,
        "drop",
        "high",
        per="clicks",
    ),
    _model(
        "watch_time_seconds",
        "Sum of attributed watch event values.",
        "seconds",
        ENGAGEMENT,
        "drop",
        "low",
        volume=True,
    ),
    _model(
        "active_users",
        "Distinct users served in the window.",
        "count",
        ENGAGEMENT,
        "drop",
        "low",
        volume=True,
    ),
    Metric(
        "interaction_events",
        "Interaction events per role with ts in [now - window, now): no attribution, no delay.",
        "count",
        ("source", "role", "window"),
        ENGAGEMENT,
        "drop",
        "low",
        volume=True,
    ),
    _model(
        "evaluated_requests", "Requests whose relevant set is not empty.", "count", RANKING, None
    ),
    _ranked("precision", "precision"),
    _ranked("recall", "recall"),
    _ranked("ndcg", "NDCG (binary gains)"),
    _ranked("map", "average precision"),
    _ranked("mrr", "reciprocal rank"),
    _ranked("hit_rate", "hit rate"),
    _model("auc", "ROC AUC of the score as a click predictor.", "score", CLASSIFICATION, "drop"),
    _model(
        "log_loss",
        "Log loss of the score as a click probability (scores within [0, 1]).",
        "score",
        CLASSIFICATION,
        "spike",
    ),
    _model(
        "classification_accuracy",
        "Accuracy of score >= threshold as a click prediction.",
        "ratio",
        CLASSIFICATION,
        "drop",
        "low",
    ),
    _model(
        "classification_precision",
        "Precision of score >= threshold as a click prediction.",
        "ratio",
        CLASSIFICATION,
        "drop",
        "low",
    ),
    _model(
        "classification_recall",
        "Recall of score >= threshold as a click prediction.",
        "ratio",
        CLASSIFICATION,
        "drop",
        "low",
        per="clicks",
    ),
    _model(
        "session_duration_seconds",
        "Mean duration of the sessions that started in the window while the model served the user.",
        "seconds",
        ENGAGEMENT,
        "drop",
        "low",
    ),
    _model(
        "catalog_coverage_ratio",
        "Distinct recommended items / items in the catalogue.",
        "ratio",
        CATALOG,
        "drop",
    ),
    _model(
        "new_item_share_ratio",
        "Share of impressions whose item was younger than new_item_age at the impression.",
        "ratio",
        CATALOG,
        "drop",
    ),
    _model(
        "recommended_item_age_seconds",
        "Mean age of the recommended item at impression time.",
        "seconds",
        CATALOG,
        "spike",
    ),
    _model(
        "gini_index",
        "Gini coefficient of impressions over the recommended items.",
        "ratio",
        CATALOG,
        "spike",
    ),
    _model(
        "score_psi",
        "Population stability index of the scores against the reference period (10 quantile "
        "bins of the reference).",
        "score",
        DRIFT,
        "spike",
        alert="RecmonScoreDrift",
    ),
    Metric(
        "comparison_overlap_at_k",
        "Mean share of the top k both models gave the same user (latest lists; / k).",
        "ratio",
        (*COMPARISON_LABELS, "k"),
        COMPARISON,
    ),
    Metric(
        "comparison_jaccard_at_k",
        "Mean Jaccard index of the two models' top k per user.",
        "ratio",
        (*COMPARISON_LABELS, "k"),
        COMPARISON,
    ),
    Metric(
        "comparison_rbo",
        "Mean rank-biased overlap (p = 0.9, extrapolated at depth k).",
        "ratio",
        (*COMPARISON_LABELS, "k"),
        COMPARISON,
    ),
    Metric(
        "comparison_unique_items",
        "Distinct items the candidate recommended that the baseline never did in the window.",
        "count",
        COMPARISON_LABELS,
        COMPARISON,
    ),
    Metric(
        "comparison_users",
        "Users both models served in the window.",
        "count",
        COMPARISON_LABELS,
        COMPARISON,
    ),
    Metric(
        "ab_relative_lift",
        "rate(variant) / rate(control) - 1 for ctr and conversion.",
        "ratio",
        AB_LABELS,
        EXPERIMENT,
        "drop",
        alert="RecmonAbRegression",
    ),
    Metric(
        "ab_p_value",
        "Two-sided p-value of the two-proportion z-test, variant vs control.",
        "ratio",
        AB_LABELS,
        EXPERIMENT,
    ),
    _model(
        "ab_traffic_share_ratio",
        "The variant's share of the model's requests.",
        "ratio",
        EXPERIMENT,
        None,
    ),
    Metric(
        "model_info",
        "1 for the deployed version of each model (latest deployed_at).",
        "info",
        ("source", "model", "version"),
        LIFECYCLE,
    ),
    Metric(
        "model_age_seconds",
        "Time since the deployed version was trained.",
        "seconds",
        ("source", "model"),
        LIFECYCLE,
        "spike",
        alert="RecmonModelStale",
    ),
    Metric(
        "model_training_data_end_timestamp_seconds",
        "End of the training data of each recent version.",
        "timestamp",
        ("source", "model", "version"),
        LIFECYCLE,
    ),
    Metric(
        "model_offline_metric",
        "Latest value of each offline metric of each recent version.",
        "score",
        ("source", "model", "version", "metric"),
        LIFECYCLE,
    ),
    Metric(
        "model_training_data_anomalous_hours",
        "Hours of the version's training window whose conversion/click ratio fell below "
        "pollution.ratio_floor times the window's median.",
        "count",
        ("source", "model", "version"),
        LIFECYCLE,
        "spike",
        "high",
        alert="RecmonModelTrainedOnAnomalousData",
    ),
    Metric(
        "last_event_timestamp_seconds",
        "Newest ts in the table that is not in the future.",
        "timestamp",
        ("source", "table"),
        QUALITY,
    ),
    Metric(
        "invalid_rows",
        "Rows of the largest window left out of the KPIs, by reason.",
        "count",
        ("source", "table", "reason"),
        QUALITY,
    ),
    Metric(
        "query_duration_seconds",
        "Duration of each query of the last cycle.",
        "seconds",
        ("source", "query"),
        QUALITY,
    ),
    Metric(
        "dimension_values_folded",
        "Distinct values of a dimension folded into 'other' (cardinality guard), largest window.",
        "count",
        ("source", "dimension"),
        HEALTH,
    ),
    Metric(
        "custom_metric_up",
        "1 when the custom metric's query succeeded in the last cycle, else 0.",
        "count",
        ("source", "metric"),
        HEALTH,
    ),
    Metric(
        "source_up",
        "1 when the last cycle could query the source, else 0.",
        "count",
        ("source",),
        HEALTH,
    ),
    Metric(
        "cycle_duration_seconds",
        "Duration of the source's last evaluation cycle.",
        "seconds",
        ("source",),
        HEALTH,
    ),
    Metric(
        "last_success_timestamp_seconds",
        "Unix time of the source's last successful cycle.",
        "timestamp",
        ("source",),
        HEALTH,
    ),
    Metric(
        "cycle_errors",
        "Evaluation cycles of the source that failed.",
        "count",
        ("source",),
        HEALTH,
        kind="counter",
    ),
    Metric(
        "build",
        "recmon build information.",
        "info",
        ("version", "python_version"),
        HEALTH,
        kind="info",
    ),
    Metric(
        "series_dropped",
        "Series of the source left out of the last cycle by the max_series cap.",
        "count",
        ("source",),
        HEALTH,
    ),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def exported_names() -> set[str]:
    """Every name recmon's own metrics use in the exposition."""
    suffix = {"counter": "_total", "info": "_info"}
    # Samples carry the short name, so a custom metric may not take one either.
    return (
        {m.full_name + suffix.get(m.kind, "") for m in METRICS}
        | {m.full_name for m in METRICS}
        | {m.name for m in METRICS}
    )
