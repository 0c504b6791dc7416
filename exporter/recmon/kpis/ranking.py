"""Ranking quality per request at each k (SPEC, "Relevance (ranking)").

The relevant set of a request (user u, time t) is every distinct item u had a positive event on
with ts in [t, t + A], recommended or not. A repeated item counts at its first rank; the items
after it keep their rank numbers; precision divides by k even for shorter lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")


def relevant_items(
    requests: pd.DataFrame, positives: pd.DataFrame, window: timedelta
) -> pd.DataFrame:
    """Distinct (request_id, item_id) pairs: the relevant set of each request.

    `requests` has request_id, user_id, ts (the request's time); `positives` has user_id, item_id,
    ts, one row per positive event.
    """
    pairs = requests[["request_id", "user_id", "ts"]].merge(
        positives[["user_id", "item_id", "ts"]], on="user_id", suffixes=("", "_ev")
    )
    in_time = (pairs["ts_ev"] >= pairs["ts"]) & (pairs["ts_ev"] <= pairs["ts"] + window)
    return pairs.loc[in_time, ["request_id", "item_id"]].drop_duplicates(ignore_index=True)


def request_metrics(lists: pd.DataFrame, relevant: pd.DataFrame, ks: Sequence[int]) -> pd.DataFrame:
    """One row per evaluated request (nonempty relevant set), a column `<metric>@<k>` per metric/k.

    `lists` has request_id, item_id, rank for every list row; `relevant` as relevant_items().
    """
    n_relevant = relevant.groupby("request_id").size().rename("n_relevant")
    result = pd.DataFrame(index=n_relevant.index)
    if n_relevant.empty:
        return result.assign(**{f"{m}@{k}": pd.Series(dtype=float) for k in ks for m in METRICS})
    rows = (
        lists[lists["request_id"].isin(n_relevant.index)]
        .sort_values(["request_id", "rank"])
        .drop_duplicates(["request_id", "item_id"])  # a repeated item counts at its best rank
    )
    flagged = rows.merge(relevant.assign(hit=True), on=["request_id", "item_id"], how="left")
    hits = flagged[flagged["hit"].fillna(False).astype(bool)].copy()
    # precision at each hit's rank = relevant items at or above that rank / rank
    hits["precision_here"] = (hits.groupby("request_id").cumcount() + 1) / hits["rank"]
    hits["gain"] = 1.0 / np.log2(hits["rank"] + 1.0)
    r = n_relevant.to_numpy(dtype=float)
    for k in ks:
        top = hits[hits["rank"] <= k].groupby("request_id")
        found = top.size().reindex(result.index, fill_value=0).to_numpy(dtype=float)
        dcg = top["gain"].sum().reindex(result.index, fill_value=0.0).to_numpy()
        ap = top["precision_here"].sum().reindex(result.index, fill_value=0.0).to_numpy()
        best = top["rank"].min().reindex(result.index).to_numpy(dtype=float)
        ideal = _ideal_dcg(np.minimum(r, k).astype(int))
        result[f"precision@{k}"] = found / k
        result[f"recall@{k}"] = found / r
        result[f"ndcg@{k}"] = dcg / ideal
        result[f"map@{k}"] = ap / r
        result[f"mrr@{k}"] = np.nan_to_num(1.0 / best, nan=0.0)  # no hit in the top k: 0
        result[f"hit_rate@{k}"] = (found > 0).astype(float)
    return result


def _ideal_dcg(counts: np.ndarray) -> np.ndarray:
    """IDCG with binary gains for `counts` relevant items at the top: sum of 1/log2(i+1), i<=n."""
    top = int(counts.max()) if len(counts) else 0
    cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(1, top + 1) + 1.0))])
    return cumulative[counts]
