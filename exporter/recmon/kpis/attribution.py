"""Last-touch attribution of interactions to impressions (SPEC, "Attribution").

An event goes to the most recent impression of the same user and item with
imp.ts <= ev.ts <= imp.ts + A, across all models and variants; an event that names a request may
only go to that request's impression of the item. Within one list a repeated item is credited at
its best-ranked row.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

IMPRESSION_COLUMNS = ["request_id", "user_id", "item_id", "rank", "ts"]
EVENT_COLUMNS = ["user_id", "item_id", "ts", "request_id", "role", "value"]


def attribute(impressions: pd.DataFrame, events: pd.DataFrame, window: timedelta) -> pd.DataFrame:
    """Label every impression row with clicked, converted and attributed watch seconds.

    `impressions` has IMPRESSION_COLUMNS with a default RangeIndex; `events` has EVENT_COLUMNS,
    one row per (event, role). Returns a frame aligned with `impressions`.
    """
    imp = impressions[IMPRESSION_COLUMNS].assign(imp=np.arange(len(impressions)))
    ev = events[EVENT_COLUMNS].reset_index(drop=True)
    winners = pd.concat(
        [
            _last_touch(imp, ev[ev["request_id"].isna()], window),
            _same_request(imp, ev[ev["request_id"].notna()], window),
        ],
        ignore_index=True,
    )
    labels = pd.DataFrame(
        {"clicked": False, "converted": False, "watch_seconds": 0.0}, index=impressions.index
    )
    for role, column in (("click", "clicked"), ("conversion", "converted")):
        hit = winners.loc[winners["role"] == role, "imp"].unique()
        labels.iloc[hit, labels.columns.get_loc(column)] = True
    watched = winners[winners["role"] == "watch"]
    watch = watched["value"].fillna(0.0).groupby(watched["imp"]).sum()
    labels.iloc[watch.index.to_numpy(), labels.columns.get_loc("watch_seconds")] = watch.to_numpy()
    return labels


def _last_touch(imp: pd.DataFrame, ev: pd.DataFrame, window: timedelta) -> pd.DataFrame:
    if ev.empty or imp.empty:
        return pd.DataFrame({"imp": pd.Series(dtype="int64"), "role": [], "value": []})
    if ev["ts"].dtype != imp["ts"].dtype:
        # merge_asof refuses keys of different resolutions (datetime64[ns] vs [us]), which the
        # two tables easily get from different drivers or constructors: compare both in ns.
        imp = imp.assign(ts=imp["ts"].dt.as_unit("ns"))
        ev = ev.assign(ts=ev["ts"].dt.as_unit("ns"))
    # merge_asof takes the last row at or before ev.ts; among equal timestamps the last in this
    # order is the best rank (then the smallest request id, so ties resolve the same everywhere).
    ordered = imp.sort_values(["ts", "rank", "request_id"], ascending=[True, False, False])
    matched = pd.merge_asof(
        ev.sort_values("ts")[["ts", "user_id", "item_id", "role", "value"]],
        ordered[["ts", "user_id", "item_id", "imp"]],
        on="ts",
        by=["user_id", "item_id"],
        direction="backward",
        tolerance=pd.Timedelta(window),
        allow_exact_matches=True,
    )
    matched = matched[matched["imp"].notna()]
    return matched.assign(imp=matched["imp"].astype("int64"))[["imp", "role", "value"]]


def _same_request(imp: pd.DataFrame, ev: pd.DataFrame, window: timedelta) -> pd.DataFrame:
    if ev.empty or imp.empty:
        return pd.DataFrame({"imp": pd.Series(dtype="int64"), "role": [], "value": []})
    ev = ev.assign(event=np.arange(len(ev)))
    pairs = ev.merge(imp, on=["request_id", "user_id", "item_id"], suffixes=("", "_imp"))
    in_time = (pairs["ts_imp"] <= pairs["ts"]) & (pairs["ts"] <= pairs["ts_imp"] + window)
    pairs = pairs[in_time].sort_values(["event", "ts_imp", "rank"], ascending=[True, False, True])
    return pairs.drop_duplicates("event")[["imp", "role", "value"]]
