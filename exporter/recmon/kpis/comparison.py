"""Baseline vs candidate engine: how different are the lists the two models give the same users?"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

RBO_P = 0.9


def latest_lists(impressions: pd.DataFrame) -> dict[str, list[str]]:
    """Each user's latest list (over all variants) as items in rank order, repeats removed.

    `impressions` has request_id, user_id, item_id, rank, ts for one model.
    """
    if impressions.empty:
        return {}
    requests = impressions.groupby("request_id", sort=False).agg(
        user_id=("user_id", "first"), ts=("ts", "min")
    )
    # The latest request per user; equal times go to the greater request id, the same everywhere.
    latest = (
        requests.reset_index()
        .sort_values(["ts", "request_id"])
        .drop_duplicates("user_id", keep="last")
    )
    rows = impressions[impressions["request_id"].isin(latest["request_id"])]
    rows = rows.sort_values(["rank", "item_id"]).drop_duplicates(["request_id", "item_id"])
    items = rows.groupby("request_id")["item_id"].agg(list)
    return {
        user: items[req] for user, req in zip(latest["user_id"], latest["request_id"], strict=True)
    }


def rbo(a: Sequence[str], b: Sequence[str], k: int, p: float = RBO_P) -> float:
    """Extrapolated rank-biased overlap at depth k (Webber et al. 2010, eq. 32): 1 for identical
    top-k lists, 0 for disjoint ones."""
    a, b = list(a[:k]), list(b[:k])
    depth = min(len(a), len(b))
    if depth == 0:
        return 1.0 if not a and not b else 0.0
    overlap = np.array([len(set(a[:d]) & set(b[:d])) for d in range(1, depth + 1)], dtype=float)
    d = np.arange(1, depth + 1)
    agreement = overlap / d
    return float(agreement[-1] * p**depth + (1 - p) / p * (agreement * p**d).sum())


def compare(
    baseline: pd.DataFrame, candidate: pd.DataFrame, ks: Sequence[int]
) -> dict[str, float | None]:
    """Overlap@k, Jaccard@k and RBO@k (means over users served by both), users compared and the
    candidate's unique items; keys are `<metric>@<k>`, `users` and `unique_items`."""
    a_lists, b_lists = latest_lists(baseline), latest_lists(candidate)
    users = sorted(a_lists.keys() & b_lists.keys())
    result: dict[str, float | None] = {
        "users": len(users),
        "unique_items": len(set(candidate["item_id"]) - set(baseline["item_id"])),
    }
    for k in ks:
        overlap, jaccard, ranked = [], [], []
        for user in users:
            a, b = set(a_lists[user][:k]), set(b_lists[user][:k])
            overlap.append(len(a & b) / k)
            jaccard.append(len(a & b) / len(a | b))
            ranked.append(rbo(a_lists[user], b_lists[user], k))
        result[f"overlap@{k}"] = float(np.mean(overlap)) if users else None
        result[f"jaccard@{k}"] = float(np.mean(jaccard)) if users else None
        result[f"rbo@{k}"] = float(np.mean(ranked)) if users else None
    return result
