"""Scenarios: the registry, composition and the payment outage."""

from datetime import datetime, timedelta

import pandas as pd
import pytest

from recmon.simulate import SCENARIOS, Effects, Scenario, Slot, simulate
from recmon.simulate.scenarios import resolve
from recmon.simulate.world import generate

END = datetime(2026, 3, 2, 12, 0)
START = END - timedelta(days=3)


def test_unknown_scenario_names_the_known_ones(tmp_path) -> None:
    with pytest.raises(ValueError, match="payment-outage") as caught:
        simulate(f"sqlite:///{tmp_path / 'x.db'}", days=1, scenarios=["none", "meteor"])
    assert "meteor" in str(caught.value)
    assert not (tmp_path / "x.db").exists()


def test_every_scenario_is_described() -> None:
    for name, scenario in SCENARIOS.items():
        assert scenario.name == name
        assert scenario.description


def test_scenarios_compose_in_sequence() -> None:
    half = Scenario("half", "Half the clicks.", duration=timedelta(hours=2), ctr=0.5)
    slot = Slot(END - timedelta(days=1), END, "personal", "control")
    effects = Effects()
    for scenario in (half, half, *resolve(["payment-outage"])):
        effects = scenario.apply(slot, effects)
    assert effects == Effects(traffic=1.0, ctr=0.25, conversion=0.0)
    later = Slot(END - timedelta(hours=20), END, "personal", "control")
    assert half.apply(later, Effects()) == Effects()
    only_trending = Scenario(
        "t", "", duration=timedelta(hours=1), models=frozenset({"trending"}), traffic=0.0
    )
    assert only_trending.apply(slot, Effects()) == Effects()


def test_payment_outage_stops_conversions_while_clicks_go_on() -> None:
    baseline = generate(42, START, END, ())["interactions"]
    outage = generate(42, START, END, resolve(["payment-outage"]))["interactions"]
    begin, stop = SCENARIOS["payment-outage"].incident(END)
    assert stop - begin == timedelta(hours=4)

    def during(events: pd.DataFrame) -> pd.Series:
        return (events["ts"] >= begin) & (events["ts"] < stop)

    inside = outage[during(outage)]["event_type"].value_counts()
    normal = baseline[during(baseline)]["event_type"].value_counts()
    assert inside.get("conversion", 0) == 0
    assert normal["conversion"] > 10
    assert inside["click"] == normal["click"] > 100
    # Every other hour is the baseline's, event for event (sessions may regroup at the edges).
    columns = ["user_id", "item_id", "event_type", "ts", "value", "request_id"]
    pd.testing.assert_frame_equal(
        outage.loc[~during(outage), columns].reset_index(drop=True),
        baseline.loc[~during(baseline), columns].reset_index(drop=True),
    )


def test_incident_knobs_compose() -> None:
    chosen = resolve(["stale-model", "score-drift", "ab-regression", "seasonal-peak"])
    hour = END - timedelta(days=1)  # six days into the freeze
    effects = Effects()
    for scenario in chosen:
        effects = scenario.apply(Slot(hour, END, "personal", "treatment"), effects)
    assert effects.traffic == 2.0
    assert effects.ctr == pytest.approx(1.1 * 0.8 / 1.05)
    assert effects.score_shift == 1.5
    assert effects.estimate_noise == pytest.approx(1 + 0.2 * 6)
    assert effects.frozen_at == END - timedelta(days=7)
    control = Effects()
    for scenario in chosen:
        control = scenario.apply(Slot(hour, END, "personal", "control"), control)
    assert control.ctr == pytest.approx(1.1)  # the regression is the treatment's alone
    organic = Effects()
    for scenario in (*chosen, *resolve(["pipeline-stall", "traffic-drop"])):
        organic = scenario.apply(Slot(END - timedelta(hours=1), END, None, None), organic)
    assert organic == Effects(traffic=2.0, ctr=1.1, delivered=False)
