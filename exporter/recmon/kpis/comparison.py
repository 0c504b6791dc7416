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
    return {user: items for user, (items, _) in _latest_ranked(impressions).items()}


def _latest_ranked(impressions: pd.DataFrame) -> dict[str, tuple[list[str], list[float]]]:
    """latest_lists() with each item's rank (its first, best one) alongside."""
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
    grouped = rows.groupby("request_id")
    items, ranks = grouped["item_id"].agg(list), grouped["rank"].agg(list)
    return {
        user: (items[req], ranks[req])
        for user, req in zip(latest["user_id"], latest["request_id"], strict=True)
    }


def rbo(a: Sequence[str], b: Sequence[str], k: int, p: float = RBO_P) -> float:
    """Extrapolated rank-biased overlap at depth k (Webber et al. 2010, eq. 32): 1 for identical
    top-k lists, 0 for disjoint ones.

    Lists shorter than k take part with their own length: with s and l the lengths of the shorter
    and the longer top-k list, X_d the overlap of the two top-d prefixes,
    RBO_ext = (1-p)/p * (sum_{d<=l} X_d/d p^d + sum_{s<d<=l} X_s (d-s)/(s d) p^d)
              + ((X_l - X_s)/l + X_s/s) p^l,
    which for s = l is the even-length form X_l/l p^l + (1-p)/p sum_{d<=l} X_d/d p^d.
    """
    a, b = list(a[:k]), list(b[:k])
    short, long_ = sorted((len(a), len(b)))
    if short == 0:
        return 1.0 if not a and not b else 0.0
    d = np.arange(1, long_ + 1)
    overlap = np.array([len(set(a[:depth]) & set(b[:depth])) for depth in d], dtype=float)
    x_s, x_l = overlap[short - 1], overlap[-1]
    tail = d > short
    # beyond the shorter list's end its unseen items are assumed to agree at its last rate X_s/s
    assumed = np.where(tail, x_s * (d - short) / (short * d), 0.0)
    weighted = ((overlap / d + assumed) * p**d).sum()
    return float((1 - p) / p * weighted + ((x_l - x_s) / long_ + x_s / short) * p**long_)


COMPARISON_METRICS = ("overlap", "jaccard", "rbo")


def user_scores(
    a: tuple[Sequence, Sequence[float]], b: tuple[Sequence, Sequence[float]], ks: Sequence[int]
) -> np.ndarray:
    """One user's overlap@k, Jaccard@k and RBO@k for each k (k by k, in COMPARISON_METRICS
    order) between two ranked lists (items, their ranks)."""
    scores = []
    for k in ks:
        # A_k: the items with rank <= k (rank numbers, not positions: a repeated item or a
        # gap in the ranks does not pull a later item into the top k)
        top_a, top_b = _top(a, k), _top(b, k)
        sa, sb = set(top_a), set(top_b)
        scores += [
            len(sa & sb) / k,
            len(sa & sb) / len(sa | sb) if sa | sb else 1.0,
            rbo(top_a, top_b, k),
        ]
    return np.array(scores)


def compare(
    baseline: pd.DataFrame, candidate: pd.DataFrame, ks: Sequence[int]
) -> dict[str, float | None]:
    """Overlap@k, Jaccard@k and RBO@k (means over users served by both), users compared and the
    candidate's unique items; keys are `<metric>@<k>`, `users` and `unique_items`."""
    a_lists, b_lists = _latest_ranked(baseline), _latest_ranked(candidate)
    users = sorted(a_lists.keys() & b_lists.keys())
    unique = len(set(candidate["item_id"]) - set(baseline["item_id"]))
    scores = [user_scores(a_lists[u], b_lists[u], ks) for u in users]
    return means(len(users), unique, np.sum(scores, axis=0) if users else None, ks)


def means(
    users: int, unique_items: int, sums: np.ndarray | None, ks: Sequence[int]
) -> dict[str, float | None]:
    """compare()'s result from the users compared and the sum of their user_scores()."""
    result: dict[str, float | None] = {"users": users, "unique_items": unique_items}
    for i, k in enumerate(ks):
        for j, metric in enumerate(COMPARISON_METRICS):
            value = sums[3 * i + j] / users if users and sums is not None else None
            result[f"{metric}@{k}"] = None if value is None else float(value)
    return result


def _top(ranked: tuple[Sequence, Sequence[float]], k: int) -> list:
    items, ranks = ranked
    return [item for item, rank in zip(items, ranks, strict=True) if rank <= k]
