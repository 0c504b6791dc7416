"""The incremental engine equals a full recomputation (hypothesis): a Cycle kept across cycles, fed
rows as they arrive (late events included, within the horizon of the minutes they touch), with
restarts and a config reload on the way, gives exactly the samples of a new Cycle that computes
everything at once from the final database; and the additive KPIs equal an independent
whole-window computation with the attribution function alone."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recmon.config import parse_config
from recmon.cycle import Cycle
from recmon.evaluation import Sample
from recmon.incremental import store as store_module
from recmon.incremental.partial import Lists, Minute, Packed, gather
from recmon.incremental.window import Window
from recmon.kpis.attribution import attribute
from recmon.kpis.comparison import compare
from tests.support.databases import write_tables
from tests.support.rows import evaluate_once, event, impression

T0 = datetime(2026, 11, 20, 9, 0)
A = timedelta(minutes=10)
# Whatever a process knows only of itself, not of the data.
LIVE = {"query_duration_seconds", "cycle_duration_seconds", "last_success_timestamp_seconds"}


def config(delay: str, windows: str, offset: str = "30m") -> str:
    return (
        "sources: {main: {dsn: 'sqlite:///%s'}}\n"
        f"windows: [{windows}]\nk: [1, 3]\nattribution_window: 10m\ndelay: {delay}\n"
        f"drift: {{reference_offset: {offset}}}\n"
        "comparisons: [{baseline: m1, candidate: m2}]\n"
    )


request = st.tuples(
    st.integers(0, 3),  # user
    st.integers(0, 7200),  # seconds after T0
    st.sampled_from(["m1", "m2"]),
    st.lists(st.integers(0, 6), min_size=1, max_size=4),  # items in rank order
    st.sampled_from([None, "control", "treatment"]),
)
reaction = st.tuples(
    st.integers(0, 40),  # which request
    st.integers(0, 5),  # which of its items (or another item, past the list's end)
    st.sampled_from(["click", "conversion", "watch"]),
    st.integers(0, 700),  # seconds after the request
    st.floats(0, 1),  # how late it is written, as a share of the room its minutes leave
)


def history(requests: list, reactions: list) -> tuple[list[dict], list[dict], list, list]:
    """Rows, and for each the time it reaches the database."""
    recs, arrivals = [], []
    for n, (user, second, model, items, variant) in enumerate(requests):
        ts = T0 + timedelta(seconds=second)
        for rank, item in enumerate(items, start=1):
            recs.append(
                impression(
                    f"r{n}",
                    f"u{user}",
                    f"i{item}",
                    rank,
                    ts,
                    model=model,
                    variant=variant,
                    score=((n * 7 + rank * 3) % 10) / 10,
                )
            )
            arrivals.append(ts)
    events, event_arrivals = [], []
    for which, position, kind, delay, late in reactions:
        if not requests:
            break
        user, second, _, items, _ = requests[which % len(requests)]
        ts = T0 + timedelta(seconds=second + delay)
        item = items[position] if position < len(items) else f"{position}"
        events.append(event(f"u{user}", f"i{item}", kind, ts, value=float(delay)))
        # Written late, but before the earliest minute it can count for (a list of the same
        # user up to A before it) has passed its horizon: minute + 1m + A.
        earliest = min(
            (
                T0 + timedelta(seconds=s)
                for u, s, *_ in requests
                if u == user and ts - A <= T0 + timedelta(seconds=s) <= ts
            ),
            default=ts,
        )
        room = earliest.replace(second=0) + timedelta(minutes=1) + A - ts
        event_arrivals.append(ts + max(room, timedelta(0)) * late)
    return recs, events, arrivals, event_arrivals


def samples(got: list[Sample]) -> dict:
    return {(s.metric, s.labels): s.value for s in got if s.metric not in LIVE}


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    requests=st.lists(request, min_size=1, max_size=25),
    reactions=st.lists(reaction, max_size=30),
    steps=st.lists(st.integers(20, 1500), min_size=2, max_size=5),  # seconds between cycles
    restart=st.integers(0, 5),
    delay=st.sampled_from(["10m", "4m"]),
    # 30m: the references overlap the windows; 70m: a gap of minutes neither needs
    offset=st.sampled_from(["30m", "70m"]),
)
@example(  # a click on a list in the 1h window is written after `now`: not counted yet
    requests=[(0, 0, "m1", [0], None), (0, 3999, "m1", [0], None), (0, 4525, "m1", [0], None)],
    reactions=[(1, 0, "click", 296, 0.0), (2, 0, "click", 100, 0.8)],
    steps=[816, 810, 193],
    restart=0,
    delay="4m",
    offset="30m",
)
@example(  # a user with two lists of m1 in the 1h window: the later one is compared
    requests=[
        (0, 3000, "m1", [1, 2], None),
        (0, 4000, "m1", [3, 4], None),
        (0, 4100, "m2", [3, 4], None),
    ],
    reactions=[],
    steps=[1500, 1500],
    restart=0,
    delay="10m",
    offset="30m",
)
def test_incremental_equals_full_recomputation(
    tmp_path_factory: pytest.TempPathFactory,
    requests: list,
    reactions: list,
    steps: list[int],
    restart: int,
    delay: str,
    offset: str,
) -> None:
    path = tmp_path_factory.mktemp("db") / "recmon.db"
    recs, events, arrivals, event_arrivals = history(requests, reactions)
    # 3h: windows that hold whole hours, whose sums are kept as blocks
    text = config(delay, "15m, 1h, 3h", offset) % path
    kept = Cycle(parse_config(config(delay, "15m", offset) % path))  # reloaded into `text` below
    now = T0 + timedelta(minutes=50)
    try:
        for i, step in enumerate(steps):
            now += timedelta(seconds=step)
            written = {
                "recommendations": [r for r, t in zip(recs, arrivals, strict=True) if t <= now],
                "interactions": [
                    e for e, t in zip(events, event_arrivals, strict=True) if t <= now
                ],
                "items": [{"item_id": f"i{n}", "created_at": T0} for n in range(7)],
            }
            write_tables(f"sqlite:///{path}", written)
            if i == 0 or i == restart:  # the reload, then perhaps a restart
                previous, kept = kept, Cycle(parse_config(text))
                kept.carry_over(previous)
                previous.close()
            warm = samples(kept.run(now))
        cold = samples(evaluate_once(text, now))
    finally:
        kept.close()
    assert warm.keys() == cold.keys()
    for key, value in cold.items():
        assert warm[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    # the events the database holds at `now`: one written after it is not seen yet (a list is
    # written at its time, which the check's own cut-off covers)
    delay_of = timedelta(minutes=int(delay[:-1]))
    _check_additive(cold, recs, written["interactions"], now, delay_of)


@settings(max_examples=6, deadline=None)
@given(
    requests=st.lists(request, min_size=1, max_size=25),
    reactions=st.lists(reaction, max_size=30),
    steps=st.lists(st.integers(20, 1500), min_size=2, max_size=4),
    delay=st.sampled_from(["10m", "4m"]),
)
def test_summarising_ahead_changes_nothing(
    tmp_path_factory: pytest.TempPathFactory,
    requests: list,
    reactions: list,
    steps: list[int],
    delay: str,
) -> None:
    """Replaying history (backfill) with `ahead` summarises the minutes of later cycles early, as
    of the last one's time: every cycle still gives what it gives without."""
    path = tmp_path_factory.mktemp("db") / "recmon.db"
    recs, events, _, _ = history(requests, reactions)
    write_tables(f"sqlite:///{path}", {"recommendations": recs, "interactions": events})
    text = config(delay, "15m, 1h, 3h", "70m") % path
    times = [T0 + timedelta(minutes=50, seconds=sum(steps[: i + 1])) for i in range(len(steps))]
    plain, early = Cycle(parse_config(text)), Cycle(parse_config(text))
    early.ahead = times[-1]
    try:
        for now in times:
            assert samples(early.run(now)) == samples(plain.run(now))
    finally:
        plain.close()
        early.close()


def test_a_first_cycle_in_many_small_passes_equals_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first cycle summarises a long window in passes of about CHUNK_ROWS impressions; clicks,
    later lists and sessions that cross a pass's end must count as in one pass."""
    path = tmp_path / "recmon.db"
    requests = [
        (n % 4, 1800 + 97 * n, ("m1", "m2")[n % 2], [n % 7, (n + 2) % 7, (n + 5) % 7], None)
        for n in range(40)
    ]
    reactions = [
        (n, n % 3, ("click", "conversion", "watch")[n % 3], 20 + 11 * n, 0.0) for n in range(40)
    ]
    recs, events, _, _ = history(requests, reactions)
    items = [{"item_id": f"i{n}", "created_at": T0} for n in range(7)]
    write_tables(
        f"sqlite:///{path}", {"recommendations": recs, "interactions": events, "items": items}
    )
    text = config("10m", "15m, 1h, 3h") % path
    now = T0 + timedelta(hours=2)
    whole = samples(evaluate_once(text, now))
    monkeypatch.setattr(store_module, "CHUNK_ROWS", 5)  # about 2 lists a pass
    passes = samples(evaluate_once(text, now))
    assert whole.keys() == passes.keys()
    for key, value in whole.items():
        assert passes[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert whole[("clicks", ("main", "m1", "default", "1h"))] > 0


def test_only_the_minutes_of_the_windows_and_their_references_are_kept(tmp_path: Path) -> None:
    """A week-back drift reference needs a window's length of minutes there, not the week
    between: the first cycle's work and the memory follow the windows, not the offset."""
    path = tmp_path / "recmon.db"
    recs, events, _, _ = history([(0, 60, "m1", [1, 2], None)], [(0, 0, "click", 30, 0.0)])
    write_tables(f"sqlite:///{path}", {"recommendations": recs, "interactions": events})
    cycle = Cycle(parse_config(config("10m", "15m, 1h", "1d") % path))
    try:
        cycle.run(T0 + timedelta(hours=2))
        store = cycle.health["main"].store
        assert store is not None
        labelled = [m for m in store.minutes.values() if m.labelled]
        assert (len(labelled), len(store.minutes)) == (60, 60 + 60)
    finally:
        cycle.close()


def _check_additive(cold: dict, recs: list, events: list, now: datetime, delay: timedelta) -> None:
    """Impressions, clicks, conversions and watch time of the 1h window by attribute() over the
    whole window at once, against the engine's sums of minutes; and the comparison of its
    latest lists against the engine's minute by minute ones."""
    now = now.replace(second=0)
    imps = pd.DataFrame(recs)
    evs = pd.DataFrame(
        events, columns=["user_id", "item_id", "event_type", "ts", "value", "request_id"]
    )
    imps = imps[imps["ts"] <= min(now - delay + A, now)].reset_index(drop=True)
    evs = evs[evs["ts"] <= min(now - delay + A, now)].rename(columns={"event_type": "role"})
    labels = pd.concat([imps, attribute(imps, evs, A)], axis=1)
    end = now - delay
    shown = labels[(labels["ts"] >= end - timedelta(hours=1)) & (labels["ts"] < end)]
    shown = shown.assign(variant=shown["variant"].fillna("default"))
    for (model, variant), rows in shown.groupby(["model", "variant"]):
        labels_of = ("main", model, variant, "1h")
        assert cold[("impressions", labels_of)] == len(rows)
        assert cold[("clicks", labels_of)] == rows["clicked"].sum()
        assert cold[("conversions", labels_of)] == rows["converted"].sum()
        assert cold[("watch_time_seconds", labels_of)] == pytest.approx(rows["watch_seconds"].sum())
        assert cold[("active_users", labels_of)] == rows["user_id"].nunique()
        assert cold[("recommendation_requests", labels_of)] == rows["request_id"].nunique()
    # the comparison, by kpis.comparison.compare over the window's impressions at once
    lists = {m: shown[shown["model"] == m] for m in ("m1", "m2")}
    expected = compare(lists["m1"], lists["m2"], (1, 3))
    labels_of = ("main", "m1", "m2", "1h")
    assert cold[("comparison_users", labels_of)] == expected["users"]
    assert cold[("comparison_unique_items", labels_of)] == expected["unique_items"]
    for k in (1, 3):
        for metric, name in (("overlap", "overlap_at_k"), ("jaccard", "jaccard_at_k")):
            value = cold.get((f"comparison_{name}", (*labels_of, str(k))))
            assert value == pytest.approx(expected[f"{metric}@{k}"]), (name, k)
        assert cold.get(("comparison_rbo", (*labels_of, str(k)))) == pytest.approx(
            expected[f"rbo@{k}"]
        )


def test_a_minute_summarised_open_is_summarised_again_however_late_the_next_cycle(
    tmp_path: Path,
) -> None:
    """With a delay shorter than A, the newest minutes of a window are summarised before their
    horizon; a cycle a long while later (more than A) must summarise them again, with the clicks
    that came since, even though they are no longer among the newest."""
    path = tmp_path / "recmon.db"
    url = f"sqlite:///{path}"
    shown = impression("r1", "u1", "i1", 1, T0 + timedelta(seconds=30), model="m1")
    items = [{"item_id": "i1", "created_at": T0}]
    text = config("4m", "1h") % path
    kept = Cycle(parse_config(text))
    try:
        write_tables(url, {"recommendations": [shown], "interactions": [], "items": items})
        kept.run(T0 + timedelta(minutes=5))  # minute T0 is open: its horizon is T0 + 11m
        click = event("u1", "i1", "click", T0 + timedelta(minutes=7))
        write_tables(url, {"recommendations": [shown], "interactions": [click], "items": items})
        warm = samples(kept.run(T0 + timedelta(minutes=30)))
    finally:
        kept.close()
    cold = samples(evaluate_once(text, T0 + timedelta(minutes=30)))
    labels = ("main", "m1", "default", "1h")
    assert warm[("clicks", labels)] == cold[("clicks", labels)] == 1


def test_a_windows_sums_follow_minutes_replaced_inside_a_whole_hour() -> None:
    """A whole hour's sum is kept between cycles; a minute of it summarised again, or leaving,
    must change the window's sums."""
    group = ("m", "default")

    def minute(value: float) -> Minute:
        return Minute(T0, sums={group: np.array([1.0, value])})

    minutes = {b: minute(float(b)) for b in range(60, 200)}  # hours 1 and 2 whole
    window = Window((1,), (), scores_only=False)
    window.sync(range(60, 200), minutes)
    assert window.sums[group].tolist() == [140.0, float(sum(range(60, 200)))]
    minutes[90] = minute(1000.0)  # summarised again, inside hour 1
    window.sync(range(60, 200), minutes)
    assert window.sums[group].tolist() == [140.0, float(sum(range(60, 200)) - 90 + 1000)]
    window.sync(range(61, 200), minutes)  # minute 60 leaves: hour 1 is no longer whole
    assert window.sums[group].tolist() == [139.0, float(sum(range(61, 200)) - 90 + 1000)]


def test_a_minute_summarised_ahead_is_summarised_again_while_its_horizon_is_open(
    tmp_path: Path,
) -> None:
    """A replay summarises a later cycle's minutes early, as of the last cycle's time; when one
    of them enters a window before its horizon, it is summarised again as of the cycle's time:
    a click after that time is not yet the list's."""
    path = tmp_path / "recmon.db"
    shown = impression("r1", "u1", "i1", 1, T0 + timedelta(seconds=30), model="m1")
    click = event("u1", "i1", "click", T0 + timedelta(minutes=7))
    items = [{"item_id": "i1", "created_at": T0}]
    tables = {"recommendations": [shown], "interactions": [click], "items": items}
    write_tables(f"sqlite:///{path}", tables)
    early = Cycle(parse_config(config("4m", "1h") % path))
    early.ahead = T0 + timedelta(minutes=30)
    try:
        early.run(T0 + timedelta(minutes=2))  # minute T0 is summarised ahead, with the click
        got = samples(early.run(T0 + timedelta(minutes=5)))  # it is in the window, open
    finally:
        early.close()
    assert got[("clicks", ("main", "m1", "default", "1h"))] == 0


def test_events_written_late_are_counted_in_the_minute_they_happened(tmp_path: Path) -> None:
    """An event dated within a minute already counted, written later (within A), is counted at
    the next cycle."""
    path = tmp_path / "recmon.db"
    url = f"sqlite:///{path}"
    click = event("u1", "i1", "click", T0 + timedelta(minutes=1, seconds=30))
    text = config("4m", "15m") % path
    kept = Cycle(parse_config(text))
    try:
        write_tables(url, {"recommendations": [], "interactions": []})
        kept.run(T0 + timedelta(minutes=3))  # minute T0 + 1m counted: no events
        write_tables(url, {"recommendations": [], "interactions": [click]})
        warm = samples(kept.run(T0 + timedelta(minutes=6)))
    finally:
        kept.close()
    assert warm[("interaction_events", ("main", "click", "15m"))] == 1


@given(
    st.lists(st.integers(0, 2**31 - 1), max_size=50),  # codes, in any order
    st.lists(st.floats(width=32, allow_nan=False), max_size=50),
)
def test_a_packed_array_unpacks_to_itself(codes: list[int], ranks: list[float]) -> None:
    array = np.array(codes, dtype=np.int32)
    for delta in (False, True):
        unpacked = Packed.of(array, delta).array()
        assert unpacked.dtype == np.int32
        assert unpacked.tolist() == codes
    assert Packed.of(np.array(ranks, dtype=np.float32)).array().tolist() == ranks


ranked_items = st.lists(st.integers(0, 99), max_size=4)


@given(st.lists(st.lists(ranked_items, min_size=1, max_size=5), max_size=4), st.data())
def test_gathered_lists_are_the_lists_asked_for(minutes: list, data: st.DataObject) -> None:
    """gather() against each Lists unpacked on its own, places in any order and repeated."""
    packed = []
    for lists in minutes:
        starts = np.cumsum([0] + [len(items) for items in lists]).astype(np.int32)
        items = np.array([i for items in lists for i in items], dtype=np.int32)
        packed.append(
            Lists(
                Packed.of(np.arange(len(lists), dtype=np.int32), delta=True),
                Packed.of(starts, delta=True),
                Packed.of(items),
                Packed.of((items % 7 + 1).astype(np.float32)),
            )
        )
    places = data.draw(
        st.lists(
            st.integers(0, len(packed) - 1).flatmap(
                lambda m: st.tuples(st.just(m), st.integers(0, len(minutes[m]) - 1))
            )
        )
        if packed
        else st.just([])
    )
    gathered = gather([(packed[m], row) for m, row in places])
    for j, (m, row) in enumerate(places):
        assert gathered.ranked(j) == packed[m].open().ranked(row)
        assert gathered.ranked(j)[0] == minutes[m][row]


def test_a_minutes_ascending_codes_and_counts_pack_to_a_fraction_of_their_bytes() -> None:
    """The shape of a busy minute (a few thousand distinct items of a large catalogue, most seen
    once): this is what keeps a week's window in memory (docs/scaling.md)."""
    rng = np.random.default_rng(1)
    codes = np.sort(rng.choice(200_000, size=5_000, replace=False)).astype(np.int32)
    counts = rng.geometric(0.8, size=5_000).astype(np.int32)
    packed = [Packed.of(codes, delta=True), Packed.of(counts)]
    assert sum(len(p.data) for p in packed) < (codes.nbytes + counts.nbytes) / 4
    assert len(packed[0].data) < 0.9 * len(Packed.of(codes).data)  # differences pack better


def test_ids_that_left_every_window_are_forgotten_and_their_codes_reused(tmp_path: Path) -> None:
    """New users and items every ten minutes for six hours: a kept Cycle's interners hold about
    the ids of its windows, not all ever seen, and with codes handed on to new ids its KPIs still
    equal a new Cycle's."""
    path = tmp_path / "recmon.db"
    recs, events = [], []
    for slot in range(36):
        for n, user in enumerate((f"u{slot}a", f"u{slot}b")):
            for model, second in (("m1", 60), ("m2", 180)):
                ts = T0 + timedelta(minutes=10 * slot, seconds=second + 7 * n)
                request = f"r{slot}{user}{model}"
                for rank, item in enumerate((f"i{slot}", f"i{slot + n}", f"j{slot % 5}"), 1):
                    recs.append(impression(request, user, item, rank, ts, model=model))
                events.append(event(user, f"i{slot}", "click", ts + timedelta(seconds=40)))
    items = [{"item_id": item, "created_at": T0} for item in {r["item_id"] for r in recs}]
    tables = {"recommendations": recs, "interactions": events, "items": items}
    write_tables(f"sqlite:///{path}", tables)
    text = config("10m", "15m, 1h") % path
    kept = Cycle(parse_config(text))
    try:
        for minutes in range(60, 361, 5):
            now = T0 + timedelta(minutes=minutes)
            warm = samples(kept.run(now))
            store = kept.health["main"].store
            assert store is not None
            users = store.summarizer.users
            # held: the users of the 1h window's 6 or 7 slots, 2 each; forgotten at twice that
            assert len(users) <= 2 * 2 * 7, now
            if minutes % 60 == 0:  # codes handed on by now: the KPIs are a new Cycle's
                cold = samples(evaluate_once(text, now))
                assert warm.keys() == cold.keys()
                for key, value in cold.items():
                    assert warm[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (now, key)
    finally:
        kept.close()
    assert users.size < 2 * 36  # codes of forgotten users went to new ones
    assert cold[("active_users", ("main", "m1", "default", "1h"))] == 12
