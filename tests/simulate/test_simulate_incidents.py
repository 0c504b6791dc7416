"""Each incident scenario against the `none` world of the same seed and period: its effect shows
in the KPIs (computed with recmon's own KPI code, or a whole cycle), and what lies outside the
incident is the baseline's row for row where the design promises it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportions_ztest

from recmon.config import parse_config
from recmon.cycle import Cycle
from recmon.kpis.attribution import attribute
from recmon.kpis.catalog import catalog_health
from recmon.kpis.classification import classification_metrics
from recmon.kpis.drift import psi
from recmon.kpis.lifecycle import deployed
from recmon.simulate import SCENARIOS, simulate
from recmon.simulate.scenarios import resolve
from recmon.simulate.world import generate

END = datetime(2026, 3, 2, 12, 0)
SEED = 42
LONG = 9  # days: a week-old freeze, and PSI's reference one week before the 24h window
SHORT = 3
DELAY = timedelta(hours=1)  # the default attribution window and label delay
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
# Without session_id: a change late in the data renumbers sessions throughout.
EVENT_COLUMNS = ["user_id", "item_id", "event_type", "ts", "value", "request_id"]

Frames = dict[str, pd.DataFrame]


def world(days: int, *names: str) -> Frames:
    return generate(SEED, END - timedelta(days=days), END, resolve(names))


def labelled(frames: Frames) -> pd.DataFrame:
    """Impressions with recmon's attribution labels (the default event roles are the types)."""
    recs = frames["recommendations"]
    events = frames["interactions"].assign(role=frames["interactions"]["event_type"])
    return pd.concat([recs, attribute(recs, events, DELAY)], axis=1)


def between(frame: pd.DataFrame, start: datetime, stop: datetime) -> pd.Series:
    return (frame["ts"] >= start) & (frame["ts"] < stop)


def ctr(impressions: pd.DataFrame, model: str, start: datetime, stop: datetime) -> float:
    rows = impressions[(impressions["model"] == model) & between(impressions, start, stop)]
    return float(rows["clicked"].mean())


def assert_same_rows(
    frame: pd.DataFrame, keep: pd.Series, base: pd.DataFrame, base_keep: pd.Series
) -> None:
    pd.testing.assert_frame_equal(
        frame[keep].reset_index(drop=True), base[base_keep].reset_index(drop=True)
    )


def assert_same_events_before(frames: Frames, base: Frames, start: datetime) -> None:
    events, base_events = frames["interactions"], base["interactions"]
    assert_same_rows(
        events[EVENT_COLUMNS],
        events["ts"] < start,
        base_events[EVENT_COLUMNS],
        base_events["ts"] < start,
    )


@pytest.fixture(scope="module")
def long_base() -> Frames:
    return world(LONG)


@pytest.fixture(scope="module")
def short_base() -> Frames:
    return world(SHORT)


@pytest.fixture(scope="module")
def long_base_labelled(long_base: Frames) -> pd.DataFrame:
    return labelled(long_base)


@pytest.fixture(scope="module")
def short_base_labelled(short_base: Frames) -> pd.DataFrame:
    return labelled(short_base)


def test_incidents_sit_at_their_documented_offsets() -> None:
    placed = {
        "payment-outage": (DAY, timedelta(hours=4)),
        "stale-model": (WEEK, WEEK),
        "pipeline-stall": (timedelta(hours=2), timedelta(hours=2)),
        "score-drift": (DAY, DAY),
        "ab-regression": (2 * DAY, 2 * DAY),
        "traffic-drop": (DAY, timedelta(hours=3)),
        "seasonal-peak": (DAY, DAY),
    }
    assert set(SCENARIOS) == {"none", *placed}
    for name, (before, duration) in placed.items():
        assert SCENARIOS[name].incident(END) == (END - before, END - before + duration), name


@pytest.fixture(scope="module")
def stale() -> Frames:
    return world(LONG, "stale-model")


def test_stale_model_registry_stops_at_the_freeze(stale: Frames, long_base: Frames) -> None:
    freeze, _ = SCENARIOS["stale-model"].incident(END)
    models, base = stale["models"], long_base["models"]
    personal, base_personal = models["model"] == "personal", base["model"] == "personal"
    assert (models.loc[personal, "deployed_at"] < freeze).all()
    assert (base.loc[base_personal, "deployed_at"] >= freeze).sum() >= 6
    # Every other version, and every offline metric of a version kept, is the baseline's.
    kept = ~base_personal | (base["deployed_at"] < freeze)
    pd.testing.assert_frame_equal(models, base[kept].reset_index(drop=True))
    metrics, base_metrics = stale["model_metrics"], long_base["model_metrics"]
    pd.testing.assert_frame_equal(
        metrics, base_metrics.merge(models[["model", "version"]]), check_like=True
    )
    # recmon_model_age_seconds at END: the deployed personal version predates the freeze.
    age, base_age = (
        {row.model: END - row.trained_at for row in deployed(frame, END).itertuples()}
        for frame in (models, base)
    )
    assert age.pop("personal") > WEEK > DAY > base_age.pop("personal")
    assert age == base_age


def test_stale_model_serves_its_frozen_version_and_no_newer_item(
    stale: Frames, long_base: Frames
) -> None:
    freeze, _ = SCENARIOS["stale-model"].incident(END)
    created = stale["items"].set_index("item_id")["created_at"]

    def personal_since_freeze(frames: Frames) -> pd.DataFrame:
        recs = frames["recommendations"]
        return recs[(recs["model"] == "personal") & (recs["ts"] >= freeze)]

    frozen = personal_since_freeze(stale)
    assert frozen["model_version"].nunique() == 1
    assert (created[frozen["item_id"]] < freeze).all()
    newer = created[personal_since_freeze(long_base)["item_id"]] >= freeze
    assert newer.sum() > 1000  # the baseline's personal does show the new items
    # recmon_new_item_share_ratio of personal in the 24h window at END collapses.
    share = {}
    for name, frames in (("stale", stale), ("none", long_base)):
        recs = frames["recommendations"]
        rows = recs[(recs["model"] == "personal") & between(recs, END - DELAY - DAY, END - DELAY)]
        rows = rows.merge(frames["items"][["item_id", "created_at"]], on="item_id")
        health = catalog_health(rows, len(frames["items"]), WEEK)
        share[name] = health["new_item_share_ratio"]
    assert share["stale"] < 0.25 * share["none"], share
    recs, base = stale["recommendations"], long_base["recommendations"]
    assert_same_rows(recs, recs["ts"] < freeze, base, base["ts"] < freeze)


def test_stale_model_quality_declines_gradually(
    stale: Frames, long_base_labelled: pd.DataFrame
) -> None:
    freeze, _ = SCENARIOS["stale-model"].incident(END)
    shown = labelled(stale)
    last, before = (END - DELAY - 2 * DAY, END - DELAY), (freeze - 2 * DAY, freeze)
    assert ctr(shown, "personal", *last) < 0.7 * ctr(shown, "personal", *before)
    assert ctr(shown, "popularity", *last) > 0.8 * ctr(shown, "popularity", *before)
    personal = shown[shown["model"] == "personal"]
    converted = [
        personal.loc[between(personal, *span), "converted"].mean() for span in (last, before)
    ]
    assert converted[0] < 0.8 * converted[1]
    # Not a step: personal's CTR relative to the baseline's falls day by day.
    relative = np.array(
        [
            ctr(shown, "personal", day, day + DAY)
            / ctr(long_base_labelled, "personal", day, day + DAY)
            for day in (freeze + d * DAY for d in range(7))
        ]
    )
    assert relative[0] > 0.9 and relative[-1] < 0.65, relative
    assert (relative[2:] < relative[:-2]).all(), relative


def test_pipeline_stall_loses_every_event_of_its_hours(short_base: Frames) -> None:
    stalled = world(SHORT, "pipeline-stall")
    start, stop = SCENARIOS["pipeline-stall"].incident(END)
    events, base = stalled["interactions"], short_base["interactions"]
    assert not between(events, start, stop).any()
    lost = base.loc[between(base, start, stop), "event_type"].value_counts()
    assert set(lost.index) == {"click", "conversion", "watch"} and lost["click"] > 50, lost
    outside = ~between(events, start, stop)
    assert_same_rows(
        events[EVENT_COLUMNS], outside, base[EVENT_COLUMNS], ~between(base, start, stop)
    )
    pd.testing.assert_frame_equal(stalled["recommendations"], short_base["recommendations"])


def test_score_drift_moves_personal_scores_not_clicks(
    long_base: Frames, long_base_labelled: pd.DataFrame
) -> None:
    drifted = world(LONG, "score-drift")
    start, stop = SCENARIOS["score-drift"].incident(END)
    recs, base = drifted["recommendations"], long_base["recommendations"]
    pd.testing.assert_frame_equal(recs.drop(columns="score"), base.drop(columns="score"))
    pd.testing.assert_frame_equal(drifted["interactions"], long_base["interactions"])
    moved = (recs["model"] == "personal") & between(recs, start, stop)
    assert (recs.loc[~moved, "score"] == base.loc[~moved, "score"]).all()
    shifted, before = recs.loc[moved, "score"], base.loc[moved, "score"]
    logit_shift = np.log(shifted / (1 - shifted)) - np.log(before / (1 - before))
    assert abs(logit_shift.median() - 1.5) < 0.01
    # The 24h window as the exporter reads it at END, against the same window a week earlier.
    shown = labelled(drifted)
    window = (END - DELAY - DAY, END - DELAY)
    for variant in ("control", "treatment"):
        rows = {}
        for name, frame in (("drift", shown), ("none", long_base_labelled)):
            arm = frame[(frame["model"] == "personal") & (frame["variant"] == variant)]
            current = arm[between(arm, *window)]
            reference = arm[between(arm, window[0] - WEEK, window[1] - WEEK)]
            rows[name] = {
                "psi": psi(reference["score"].to_numpy(), current["score"].to_numpy()),
                "ctr": current["clicked"].mean(),
                **classification_metrics(
                    current["score"].to_numpy(), current["clicked"].to_numpy(), 0.5
                ),
            }
        drift, none = rows["drift"], rows["none"]
        assert drift["psi"] > 0.2 > 0.1 > none["psi"], rows
        assert drift["log_loss"] > 1.5 * none["log_loss"], rows
        assert drift["ctr"] == none["ctr"]


def test_ab_regression_is_significant_in_24h(
    short_base: Frames, short_base_labelled: pd.DataFrame
) -> None:
    regressed = world(SHORT, "ab-regression")
    start, _ = SCENARIOS["ab-regression"].incident(END)
    window = (END - DELAY - DAY, END - DELAY)
    results = {}
    for name, shown in (("regression", labelled(regressed)), ("none", short_base_labelled)):
        rows = shown[(shown["model"] == "personal") & between(shown, *window)]
        by_variant = rows.groupby("variant")["clicked"].agg(["sum", "size", "mean"])
        clicks, impressions = by_variant.loc[["treatment", "control"], ["sum", "size"]].T.values
        lift = by_variant.loc["treatment", "mean"] / by_variant.loc["control", "mean"] - 1
        results[name] = (lift, proportions_ztest(clicks, impressions)[1])
    (lift, p), (base_lift, base_p) = results["regression"], results["none"]
    # Expected -0.2 (0.8 / 1.0 - 1), with a standard error of about 0.05 in 24h.
    assert lift < -0.1 and p < 0.05, results
    # The baseline's treatment (true lift +0.05) shows no significant regression.
    assert base_lift > -0.05 and (base_lift > 0 or base_p > 0.05), results
    pd.testing.assert_frame_equal(regressed["recommendations"], short_base["recommendations"])
    assert_same_events_before(regressed, short_base, start)


def test_traffic_drop_serves_30_percent_in_its_hours(short_base: Frames) -> None:
    dropped = world(SHORT, "traffic-drop")
    start, stop = SCENARIOS["traffic-drop"].incident(END)
    recs, base = dropped["recommendations"], short_base["recommendations"]

    def requests(frame: pd.DataFrame) -> pd.Series:
        return frame[between(frame, start, stop)].groupby("model")["request_id"].nunique()

    share = requests(recs) / requests(base)
    assert share.between(0.15, 0.5).all(), share
    assert 0.25 < requests(recs).sum() / requests(base).sum() < 0.35, share

    def organic_clicks(frames: Frames) -> int:
        """Click events on items never shown to their user: nothing recommended behind them."""
        events = frames["interactions"]
        shown = frames["recommendations"][["user_id", "item_id"]].drop_duplicates()
        during = events[between(events, start, stop) & (events["event_type"] == "click")]
        joined = during.merge(shown, how="left", indicator=True)
        return int((joined["_merge"] == "left_only").sum())

    assert organic_clicks(dropped) < 0.5 * organic_clicks(short_base)
    outside = ~between(recs, start, stop)
    assert_same_rows(recs, outside, base, ~between(base, start, stop))
    assert_same_events_before(dropped, short_base, start)


def test_seasonal_peak_doubles_traffic_not_conversion_per_click(
    short_base: Frames, short_base_labelled: pd.DataFrame
) -> None:
    peak = world(SHORT, "seasonal-peak")
    start, stop = SCENARIOS["seasonal-peak"].incident(END)
    recs, base = peak["recommendations"], short_base["recommendations"]
    requests = [f.loc[between(f, start, stop), "request_id"].nunique() for f in (recs, base)]
    assert 1.8 < requests[0] / requests[1] < 2.2, requests
    # Impressions whose labels are mature at END, all models together.
    counts = {}
    for name, shown in (("peak", labelled(peak)), ("none", short_base_labelled)):
        rows = shown[between(shown, start, END - DELAY)]
        counts[name] = (len(rows), int(rows["clicked"].sum()), int(rows["converted"].sum()))
    (shown, clicks, conversions), (base_shown, base_clicks, base_conversions) = counts.values()
    assert 1.03 < (clicks / shown) / (base_clicks / base_shown) < 1.2, counts
    per_click = (conversions / clicks) / (base_conversions / base_clicks)
    p = proportions_ztest([conversions, base_conversions], [clicks, base_clicks])[1]
    assert 0.8 < per_click < 1.25 and p > 0.05, (counts, p)
    assert_same_rows(recs, recs["ts"] < start, base, base["ts"] < start)
    assert_same_events_before(peak, short_base, start)


def test_composed_scenarios_show_both_in_a_cycle(tmp_path: Path, short_base: Frames) -> None:
    """pipeline-stall with ab-regression, through the whole exporter at END."""
    db = tmp_path / "composed.db"
    simulate(
        f"sqlite:///{db}",
        days=SHORT,
        seed=SEED,
        end=END,
        scenarios=["pipeline-stall", "ab-regression"],
    )
    cycle = Cycle(parse_config(f"sources:\n  demo: {{dsn: 'sqlite:///{db}'}}\n"))
    try:
        samples = {(s.metric, s.labels): s.value for s in cycle.run(END)}
    finally:
        cycle.close()
    stall_start, _ = SCENARIOS["pipeline-stall"].incident(END)
    events = short_base["interactions"]
    last_hour = events.loc[events["ts"] >= END - timedelta(hours=1), "event_type"]
    for role in ("click", "conversion", "watch"):
        assert (
            samples[("interaction_events", ("demo", role, "1h"))] == 0 < (last_hour == role).sum()
        )
        assert samples[("interaction_events", ("demo", role, "24h"))] > 0
    newest = samples[("last_event_timestamp_seconds", ("demo", "interactions"))]
    assert newest < stall_start.replace(tzinfo=UTC).timestamp()
    labels = ("demo", "ctr", "treatment", "control", "personal", "24h")
    assert samples[("ab_relative_lift", labels)] < -0.1
    assert samples[("ab_p_value", labels)] < 0.05
