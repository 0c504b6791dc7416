"""The typed config: every key, its type and default. Unknown keys are errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from recmon.config.errors import ConfigError, KeyPath, Problem, line_of
from recmon.durations import parse_duration
from recmon.sources.schema import REFERENCE

Role = Literal["click", "conversion", "watch"]
ROLES: tuple[Role, ...] = ("click", "conversion", "watch")


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)  # type: ignore[arg-type]
    except OverflowError:  # pydantic reports a ValueError; anything else would escape it
        raise ValueError(f"duration {value!r} is too long") from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _whole_minutes(value: timedelta | None) -> timedelta | None:
    # the incremental engine sums impressions per minute, so windows fall on minute boundaries
    if value is not None and value % timedelta(minutes=1):
        raise ValueError(
            f"{value.total_seconds():g}s is not a whole number of minutes (KPIs are per minute)"
        )
    return value


Minutes = Annotated[Duration, AfterValidator(_whole_minutes)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    """An evaluation window; `label` is the text the config used, which becomes the label value."""

    label: str
    length: timedelta

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return {"label": value, "length": _duration(value)}
        return value


class Source(Strict):
    dsn: SecretStr
    tables: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)
    # The recommendations column of each declared dimension, when not named like the dimension.
    dimensions: dict[str, str] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, tables: dict[str, str]) -> dict[str, str]:
        for name in tables:
            _check_table(name)
        return tables

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for table, mapping in columns.items():
            _check_table(table)
            for column in mapping:
                if column not in REFERENCE[table]:
                    known = ", ".join(REFERENCE[table])
                    raise ValueError(f"unknown column {table}.{column} (known: {known})")
        return columns

    def dimension_column(self, dimension: str) -> str:
        return self.dimensions.get(dimension, dimension)

    def table(self, name: str) -> str:
        return self.tables.get(name, name)

    def column(self, table: str, name: str) -> str:
        return self.columns.get(table, {}).get(name, name)


def _check_table(name: str) -> None:
    if name not in REFERENCE:
        raise ValueError(f"unknown table {name!r} (known: {', '.join(REFERENCE)})")


class Classification(Strict):
    threshold: float = Field(0.5, description="score >= threshold predicts a click")


class Comparison(Strict):
    baseline: str
    candidate: str


class AB(Strict):
    control: str = "control"


class Drift(Strict):
    # The reference period of window W is [end - W, end) shifted back by this much.
    reference_offset: Minutes = timedelta(days=7)


class Pollution(Strict):
    """When an hour of training data counts as anomalous (conversions collapsed under clicks)."""

    ratio_floor: float = Field(0.2, gt=0, le=1)
    min_clicks: int = Field(50, ge=1)


METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


class CustomMetric(Strict):
    """A gauge from the user's own SQL (like query-exporter): one sample per result row."""

    name: str = Field(pattern=METRIC_NAME)
    help: str = Field(min_length=1)
    sql: str = Field(min_length=1)  # may use the bound parameter :now (naive UTC)
    value: str  # the column holding the value; a null value gives no sample
    labels: list[Annotated[str, Field(pattern=LABEL_NAME)]] = Field(default_factory=list)
    sources: list[str] | None = None  # default: every source
    max_series: int = Field(100, ge=1)  # more rows than this is an error, not a silent cut

    @field_validator("labels")
    @classmethod
    def _no_source_label(cls, labels: list[str]) -> list[str]:
        if "source" in labels or len(set(labels)) != len(labels):
            raise ValueError("labels must be distinct and not 'source' (recmon adds it)")
        return labels


class Config(Strict):
    sources: dict[str, Source] = Field(min_length=1)
    windows: list[Window] = Field(
        default_factory=lambda: [Window.model_validate("1h"), Window.model_validate("24h")]
    )
    k: list[Annotated[int, Field(ge=1, le=1000)]] = Field(default_factory=lambda: [5, 10])
    attribution_window: Duration = timedelta(hours=1)
    # label maturity; None means attribution_window
    delay: Minutes | None = None
    new_item_age: Duration = timedelta(days=7)
    events: dict[Role, list[str]] = Field(default_factory=lambda: {role: [role] for role in ROLES})
    positive_events: list[Role] = Field(default_factory=lambda: ["click", "conversion"])
    classification: Classification = Field(default_factory=Classification)
    comparisons: list[Comparison] = Field(default_factory=list)
    ab: AB = Field(default_factory=AB)
    drift: Drift = Field(default_factory=Drift)
    pollution: Pollution = Field(default_factory=Pollution)
    # Versions per model that the lifecycle metrics report, newest first.
    model_versions: int = Field(10, ge=1, le=1000)
    custom_metrics: list[CustomMetric] = Field(default_factory=list)
    # Extra labels on every per-model metric, read from columns of recommendations (for example
    # the surface: home page or item page). Above max_dimension_values values per dimension, the
    # least shown fold into "other".
    dimensions: list[Annotated[str, Field(pattern=LABEL_NAME)]] = Field(default_factory=list)
    max_dimension_values: int = Field(10, ge=1, le=1000)
    # The most series one cycle exports: a backstop against a label that explodes (say, a
    # variant column filled with ids), set below the scrape's sample_limit, which would fail the
    # whole scrape instead. The health series are always kept; then the others in catalogue order.
    max_series: int = Field(10_000, ge=1)
    interval: Duration = timedelta(seconds=60)
    query_timeout: Duration = timedelta(seconds=30)
    # Where the config came from: file name and the line of every key path, for later errors.
    _origin: tuple[str, dict[KeyPath, int]] = PrivateAttr(default=("<config>", {}))

    @field_validator("windows")
    @classmethod
    def _distinct_windows(cls, windows: list[Window]) -> list[Window]:
        if not windows:
            raise ValueError("at least one window is needed")
        labels = [w.label for w in windows]
        if len(set(labels)) != len(labels):
            raise ValueError(f"windows repeat: {labels}")
        for window in windows:
            _whole_minutes(window.length)
        return windows

    @field_validator("dimensions")
    @classmethod
    def _dimension_names(cls, dimensions: list[str], info: ValidationInfo) -> list[str]:
        taken = {
            "source",
            "model",
            "variant",
            "window",
            "k",
            "experiment_metric",
            "control",
            *REFERENCE["recommendations"],
        }
        clashes = sorted(set(dimensions) & taken)
        if clashes or len(set(dimensions)) != len(dimensions):
            raise ValueError(f"dimensions must be distinct and not {', '.join(sorted(taken))}")
        for name, source in info.data.get("sources", {}).items():
            unknown = sorted(set(source.dimensions) - set(dimensions))
            if unknown:
                raise ValueError(f"sources.{name}.dimensions names undeclared {', '.join(unknown)}")
        return dimensions

    @field_validator("custom_metrics")
    @classmethod
    def _custom_names(cls, metrics: list[CustomMetric], info: ValidationInfo) -> list[CustomMetric]:
        from recmon.catalogue import exported_names  # the catalogue imports nothing from here

        names = [m.name for m in metrics]
        clashes = sorted({n for n in names if names.count(n) > 1} | (set(names) & exported_names()))
        if clashes:
            raise ValueError(f"names must be unique and not recmon's own: {', '.join(clashes)}")
        known = set(info.data.get("sources", {}))
        for metric in metrics:
            unknown = sorted(set(metric.sources or ()) - known)
            if unknown:
                raise ValueError(f"{metric.name}: unknown sources {', '.join(unknown)}")
        return metrics

    @field_validator("k")
    @classmethod
    def _distinct_k(cls, k: list[int]) -> list[int]:
        if not k or len(set(k)) != len(k):
            raise ValueError("k needs at least one value and no repeats")
        return sorted(k)

    @field_validator("events")
    @classmethod
    def _all_roles(cls, events: dict[Role, list[str]]) -> dict[Role, list[str]]:
        # A role left out keeps its default name rather than silently matching nothing.
        return {role: events.get(role, [role]) for role in ROLES}

    @property
    def label_delay(self) -> timedelta:
        return self.delay if self.delay is not None else self.attribution_window

    @property
    def largest_window(self) -> Window:
        return max(self.windows, key=lambda w: w.length)

    def error(self, problems: list[tuple[KeyPath, str]]) -> ConfigError:
        """A ConfigError about keys of this config, found after loading (say, by check-config)."""
        name, lines = self._origin
        return ConfigError(
            name,
            [Problem(line_of(lines, p), ".".join(map(str, p)), message) for p, message in problems],
        )
