"""Reference tests for last-touch attribution (SPEC, "KPI definitions": Attribution).

Hand-built cases pin every rule; a brute-force oracle written straight from the SPEC text and a
shuffle-invariance property check the vectorised implementation on generated data.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recmon.kpis.attribution import EVENT_COLUMNS, IMPRESSION_COLUMNS, attribute
from recmon.kpis.engagement import engagement

T0 = pd.Timestamp("2024-05-01T12:00:00", tz="UTC")
A = timedelta(hours=1)
US = timedelta(microseconds=1)
MIN = timedelta(minutes=1)


def imps(*rows: tuple) -> pd.DataFrame:
    """Impression rows (request_id, user_id, item_id, rank, ts)."""
    frame = pd.DataFrame(list(rows), columns=IMPRESSION_COLUMNS)
    return frame.astype({"ts": "datetime64[ns, UTC]"})


def evs(*rows: tuple) -> pd.DataFrame:
    """Event rows (user_id, item_id, ts, request_id, role, value)."""
    frame = pd.DataFrame(list(rows), columns=EVENT_COLUMNS)
    return frame.astype({"ts": "datetime64[ns, UTC]", "value": float})


def labels(impressions: pd.DataFrame, events: pd.DataFrame, window: timedelta = A) -> dict:
    out = attribute(impressions, events, window)
    assert list(out.index) == list(impressions.index)
    return {
        "clicked": out["clicked"].astype(bool).tolist(),
        "converted": out["converted"].astype(bool).tolist(),
        "watch": out["watch_seconds"].astype(float).tolist(),
    }


def clicked(impressions: pd.DataFrame, events: pd.DataFrame, window: timedelta = A) -> list:
    return labels(impressions, events, window)["clicked"]


# --- last touch ----------------------------------------------------------------------------------


def test_most_recent_impression_before_the_event_wins_across_models() -> None:
    # Two models (and variants) showed the same item to the same user; model/variant columns are
    # irrelevant to attribution, only time order counts.
    impressions = imps(
        ("old", "u", "i", 1, T0),
        ("new", "u", "i", 3, T0 + 10 * MIN),
    ).assign(model=["popularity", "personal"], variant=[None, "b"])
    # An event between the two impressions can only go to the older one ...
    assert clicked(impressions, evs(("u", "i", T0 + 5 * MIN, None, "click", None))) == [
        True,
        False,
    ]
    # ... and once the newer impression exists it takes the credit, although the older one is
    # still within its window.
    assert clicked(impressions, evs(("u", "i", T0 + 20 * MIN, None, "click", None))) == [
        False,
        True,
    ]


def test_newer_impression_of_an_other_list_takes_the_credit_from_older_ones() -> None:
    impressions = imps(
        ("r1", "u", "i", 1, T0),
        ("r2", "u", "i", 2, T0 + 10 * MIN),
        ("r3", "u", "i", 5, T0 + 30 * MIN),
    )
    events = evs(
        ("u", "i", T0 + 40 * MIN, None, "click", None),
        ("u", "i", T0 + 50 * MIN, None, "conversion", None),
    )
    got = labels(impressions, events)
    assert got["clicked"] == [False, False, True]
    assert got["converted"] == [False, False, True]


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(0), True),  # ev.ts == imp.ts
        (A, True),  # ev.ts == imp.ts + A
        (A - US, True),
        (A + US, False),  # one microsecond too late
        (-US, False),  # event before the impression
        (-A, False),
    ],
)
def test_window_edges_are_inclusive(offset: timedelta, expected: bool) -> None:
    impressions = imps(("r1", "u", "i", 1, T0))
    assert clicked(impressions, evs(("u", "i", T0 + offset, None, "click", None))) == [expected]


@pytest.mark.parametrize("offset", [timedelta(0), A, A + US, -US])
def test_window_edges_with_request_id(offset: timedelta) -> None:
    impressions = imps(("r1", "u", "i", 1, T0))
    expected = timedelta(0) <= offset <= A
    assert clicked(impressions, evs(("u", "i", T0 + offset, "r1", "click", None))) == [expected]


def test_event_before_any_impression_is_not_attributed() -> None:
    impressions = imps(("r1", "u", "i", 1, T0), ("r2", "u", "j", 1, T0))
    events = evs(
        ("u", "i", T0 - MIN, None, "click", None),
        ("u", "j", T0 - 2 * A, None, "conversion", None),
    )
    got = labels(impressions, events)
    assert got["clicked"] == [False, False]
    assert got["converted"] == [False, False]


def test_older_impression_out_of_window_does_not_take_an_event() -> None:
    impressions = imps(("r1", "u", "i", 1, T0), ("r2", "u", "i", 1, T0 + 2 * A))
    # 90 minutes after r1 (too late for it) and before r2 (too early for it).
    assert clicked(impressions, evs(("u", "i", T0 + 90 * MIN, None, "click", None))) == [
        False,
        False,
    ]


def test_other_user_or_other_item_does_not_attribute() -> None:
    impressions = imps(("r1", "u", "i", 1, T0), ("r1", "u", "j", 2, T0))
    events = evs(
        ("v", "i", T0 + MIN, None, "click", None),  # other user, same item
        ("u", "k", T0 + MIN, None, "click", None),  # same user, item not shown
    )
    assert clicked(impressions, events) == [False, False]


# --- request_id ----------------------------------------------------------------------------------


def test_request_id_credits_only_that_requests_impression() -> None:
    impressions = imps(
        ("old", "u", "i", 1, T0),
        ("new", "u", "i", 1, T0 + 10 * MIN),
    )
    # Without the request id the newer impression would win (last touch).
    events = evs(("u", "i", T0 + 20 * MIN, "old", "click", None))
    assert clicked(impressions, events) == [True, False]


def test_request_id_still_obeys_the_time_rule() -> None:
    impressions = imps(
        ("old", "u", "i", 1, T0),
        ("new", "u", "i", 1, T0 + 30 * MIN),
    )
    # Too late for "old"; "new" is in range but the event names "old": nobody is credited.
    late = evs(("u", "i", T0 + A + US, "old", "click", None))
    assert clicked(impressions, late) == [False, False]
    # Before "new" was shown: an event naming "new" credits nothing, not even "old".
    early = evs(("u", "i", T0 + 10 * MIN, "new", "click", None))
    assert clicked(impressions, early) == [False, False]


def test_request_that_never_showed_the_item_credits_nothing() -> None:
    impressions = imps(
        ("r1", "u", "x", 1, T0),  # r1 did not show i
        ("r2", "u", "i", 1, T0),  # r2 did, and is in range
        ("r3", "u", "i", 2, T0 + 5 * MIN),
    )
    events = evs(
        ("u", "i", T0 + 10 * MIN, "r1", "click", None),
        ("u", "i", T0 + 10 * MIN, "unknown-request", "conversion", None),
    )
    got = labels(impressions, events)
    assert got["clicked"] == [False, False, False]
    assert got["converted"] == [False, False, False]


def test_request_id_of_an_other_user_credits_nothing() -> None:
    impressions = imps(("r1", "u", "i", 1, T0))
    assert clicked(impressions, evs(("v", "i", T0 + MIN, "r1", "click", None))) == [False]


def test_events_with_and_without_request_id_mix() -> None:
    impressions = imps(
        ("old", "u", "i", 1, T0),
        ("new", "u", "i", 1, T0 + 10 * MIN),
    )
    events = evs(
        ("u", "i", T0 + 20 * MIN, "old", "click", None),
        ("u", "i", T0 + 20 * MIN, None, "conversion", None),
    )
    got = labels(impressions, events)
    assert got["clicked"] == [True, False]
    assert got["converted"] == [False, True]


# --- repeated item in one list -------------------------------------------------------------------


@pytest.mark.parametrize("request_id", [None, "r1"])
def test_repeated_item_credits_its_best_ranked_row_only(request_id: str | None) -> None:
    # Rows deliberately out of rank order; i is at ranks 4 and 2.
    impressions = imps(
        ("r1", "u", "i", 4, T0),
        ("r1", "u", "j", 1, T0),
        ("r1", "u", "i", 2, T0),
        ("r1", "u", "k", 3, T0),
    )
    events = evs(
        ("u", "i", T0 + MIN, request_id, "click", None),
        ("u", "i", T0 + 2 * MIN, request_id, "watch", 12.0),
    )
    got = labels(impressions, events)
    assert got["clicked"] == [False, False, True, False]
    assert got["watch"] == [0.0, 0.0, 12.0, 0.0]
    assert engagement(impressions.assign(**attribute(impressions, events, A)))["clicks"] == 1


# --- roles and values ----------------------------------------------------------------------------


def test_roles_go_to_their_own_columns_and_watch_values_add_up() -> None:
    impressions = imps(
        ("r1", "u", "a", 1, T0),
        ("r1", "u", "b", 2, T0),
        ("r1", "u", "c", 3, T0),
        ("r1", "u", "d", 4, T0),
    )
    events = evs(
        ("u", "a", T0 + MIN, None, "click", None),
        ("u", "b", T0 + MIN, None, "conversion", None),  # converted without a click
        ("u", "c", T0 + MIN, None, "watch", 30.0),
        ("u", "c", T0 + 2 * MIN, "r1", "watch", 45.5),
        ("u", "c", T0 + 3 * MIN, None, "watch", None),  # null value adds 0
        ("u", "c", T0 + A + US, None, "watch", 1000.0),  # too late
        ("u", "d", T0 + MIN, None, "watch", None),  # attributed, but adds 0
        ("u", "d", T0 + MIN, None, "share", 7.0),  # not a role: ignored
    )
    got = labels(impressions, events)
    assert got["clicked"] == [True, False, False, False]
    assert got["converted"] == [False, True, False, False]
    assert got["watch"] == [0.0, 0.0, 75.5, 0.0]


def test_two_clicks_make_one_clicked_impression() -> None:
    impressions = imps(("r1", "u", "a", 1, T0), ("r1", "u", "b", 2, T0))
    events = evs(
        ("u", "a", T0 + MIN, None, "click", None),
        ("u", "a", T0 + 2 * MIN, "r1", "click", None),
        ("u", "a", T0 + 3 * MIN, None, "conversion", None),
        ("u", "a", T0 + 4 * MIN, None, "conversion", None),
    )
    got = labels(impressions, events)
    assert got["clicked"] == [True, False]
    assert got["converted"] == [True, False]
    counts = engagement(impressions.assign(**attribute(impressions, events, A)))
    assert (counts["clicks"], counts["conversions"], counts["impressions"]) == (1, 1, 2)


def test_window_length_is_respected() -> None:
    impressions = imps(("r1", "u", "i", 1, T0))
    events = evs(("u", "i", T0 + 10 * MIN, None, "click", None))
    assert clicked(impressions, events, timedelta(minutes=10)) == [True]
    assert clicked(impressions, events, timedelta(minutes=10) - US) == [False]


# --- shapes and types ----------------------------------------------------------------------------


def test_no_events_and_no_impressions() -> None:
    impressions = imps(("r1", "u", "i", 1, T0), ("r1", "u", "j", 2, T0))
    assert labels(impressions, evs()) == {
        "clicked": [False, False],
        "converted": [False, False],
        "watch": [0.0, 0.0],
    }
    out = attribute(imps(), evs(("u", "i", T0, None, "click", None)), A)
    assert len(out) == 0
    assert set(out.columns) >= {"clicked", "converted", "watch_seconds"}


def test_timestamps_of_different_resolutions() -> None:
    # Regression: the tables can arrive as datetime64[ns] and datetime64[us]; merge_asof used to
    # raise MergeError on mismatched key dtypes.
    impressions = imps(("r1", "u", "i", 1, T0), ("r2", "u", "j", 1, T0))
    events = evs(
        ("u", "i", T0 + A, None, "click", None),
        ("u", "j", T0 + A + US, None, "click", None),
    )
    for imp_unit, ev_unit in (("us", "ns"), ("ns", "us"), ("us", "us")):
        got = clicked(
            impressions.assign(ts=impressions["ts"].dt.as_unit(imp_unit)),
            events.assign(ts=events["ts"].dt.as_unit(ev_unit)),
        )
        assert got == [True, False], (imp_unit, ev_unit)


# --- generated data: oracle and invariants -------------------------------------------------------

ROLES = ("click", "conversion", "watch")


def oracle(impressions: pd.DataFrame, events: pd.DataFrame, window: timedelta) -> dict:
    """The SPEC rule, one event at a time, by brute force.

    Ties (two lists of the same user showing the same item at the same instant) are not specified
    by SPEC, so data fed to this oracle has distinct request times.
    """
    n = len(impressions)
    out = {"clicked": [False] * n, "converted": [False] * n, "watch": [0.0] * n}
    imp = list(impressions.itertuples(index=False))
    for ev in events.itertuples(index=False):
        if ev.role not in ROLES:
            continue
        candidates = [
            pos
            for pos, row in enumerate(imp)
            if row.user_id == ev.user_id
            and row.item_id == ev.item_id
            and row.ts <= ev.ts <= row.ts + window
            and (pd.isna(ev.request_id) or row.request_id == ev.request_id)
        ]
        if not candidates:
            continue
        # most recent impression; within one list the best (smallest) rank
        best = max(candidates, key=lambda pos: (imp[pos].ts, -imp[pos].rank))
        if ev.role == "click":
            out["clicked"][best] = True
        elif ev.role == "conversion":
            out["converted"][best] = True
        else:
            out["watch"][best] += 0.0 if pd.isna(ev.value) else ev.value
    return out


@st.composite
def scenarios(draw: st.DrawFn, distinct_request_times: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_requests = draw(st.integers(0, 6))
    minutes = st.integers(0, 150)
    if distinct_request_times:
        times = draw(st.lists(minutes, min_size=n_requests, max_size=n_requests, unique=True))
    else:
        times = draw(st.lists(minutes, min_size=n_requests, max_size=n_requests))
    rows = []
    for r, minute in enumerate(times):
        user = draw(st.sampled_from("uv"))
        items = draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=4))
        for rank, item in enumerate(items, start=1):
            rows.append((f"r{r}", user, item, rank, T0 + minute * MIN))
    request_ids = [None, None, "zz"] + [f"r{r}" for r in range(n_requests)]
    events = draw(
        st.lists(
            st.tuples(
                st.sampled_from("uv"),
                st.sampled_from("abc"),
                st.integers(-5, 220).map(lambda m: T0 + m * MIN),
                st.sampled_from(request_ids),
                st.sampled_from((*ROLES, "share")),
                st.one_of(st.none(), st.floats(0, 1000, allow_nan=False)),
            ),
            max_size=12,
        )
    )
    return imps(*rows), evs(*events)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(distinct_request_times=True))
def test_matches_brute_force_oracle(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    impressions, events = data
    got = labels(impressions, events)
    want = oracle(impressions, events, A)
    assert got["clicked"] == want["clicked"]
    assert got["converted"] == want["converted"]
    assert got["watch"] == pytest.approx(want["watch"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(distinct_request_times=False), st.randoms(use_true_random=False))
def test_invariant_under_row_order_and_counts_bounded(
    data: tuple[pd.DataFrame, pd.DataFrame], rnd
) -> None:
    impressions, events = data
    base = attribute(impressions, events, A)

    imp_order = list(range(len(impressions)))
    ev_order = list(range(len(events)))
    rnd.shuffle(imp_order)
    rnd.shuffle(ev_order)
    shuffled_imp = impressions.iloc[imp_order].reset_index(drop=True)
    shuffled_ev = events.iloc[ev_order].reset_index(drop=True)
    shuffled = attribute(shuffled_imp, shuffled_ev, A)
    # shuffled row p is original row imp_order[p]: put it back in place
    aligned = shuffled.set_axis(imp_order).sort_index()
    for column in ("clicked", "converted"):
        assert aligned[column].astype(bool).tolist() == base[column].astype(bool).tolist()
    np.testing.assert_allclose(aligned["watch_seconds"], base["watch_seconds"])

    n = len(impressions)
    for column, role in (("clicked", "click"), ("converted", "conversion")):
        count = int(base[column].sum())
        assert count <= n
        assert count <= int((events["role"] == role).sum())
    watched = events.loc[events["role"] == "watch", "value"].fillna(0.0).sum()
    assert base["watch_seconds"].sum() <= watched + 1e-9
    assert (base["watch_seconds"] >= 0).all()
