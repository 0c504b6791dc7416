"""Reference tests for ranking quality (SPEC, "KPI definitions": Relevance (ranking)).

Random lists are checked against ranx. Where ranx's conventions and SPEC's could part, this is
what ranx 0.3.x does (read from its source) and how the tests deal with it:

- precision@k: ranx divides by k even when the run is shorter than k, as SPEC does; lists
  shorter than k are therefore part of the random data.
- recall@k: hits / |R| in both.
- map@k: ranx divides the sum of precision@r over hit ranks by |R| (all relevant items), as SPEC
  does, not by min(|R|, k); random data has |R| > k often, and a hand case pins the choice.
- ndcg@k: ranx's default "ndcg" is the Burges form (2^rel - 1) / log2(r + 1); with binary
  relevance (qrels all 1) that is SPEC's 1 / log2(r + 1), and ranx's IDCG takes the top
  min(|R|, k) judged items, as SPEC does.
- mrr@k and hit_rate@k agree.
- ranx identifies a run's documents by id (a dict), so a list cannot repeat an item there, and
  ranks are positions after sorting by score. Lists with a repeated item (the item counts at its
  first rank and later items keep their own rank numbers) are therefore compared with
  hand-computed values instead, and the ranx runs get scores strictly decreasing in rank.
"""

from __future__ import annotations

import math
import warnings
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from recmon.kpis.ranking import METRICS, relevant_items, request_metrics

ranx = pytest.importorskip("ranx")

T0 = pd.Timestamp("2024-05-01T12:00:00", tz="UTC")
A = timedelta(hours=1)
US = timedelta(microseconds=1)
MIN = timedelta(minutes=1)
KS = (1, 3, 5, 10, 20)


def lists_frame(lists: dict[str, list[str]]) -> pd.DataFrame:
    rows = [
        (request, item, rank)
        for request, items in lists.items()
        for rank, item in enumerate(items, start=1)
    ]
    return pd.DataFrame(rows, columns=["request_id", "item_id", "rank"])


def relevant_frame(relevant: dict[str, set[str]]) -> pd.DataFrame:
    rows = [(request, item) for request, items in relevant.items() for item in sorted(items)]
    return pd.DataFrame(rows, columns=["request_id", "item_id"])


def metrics_of(lists: dict[str, list[str]], relevant: dict[str, set[str]], ks) -> pd.DataFrame:
    return request_metrics(lists_frame(lists), relevant_frame(relevant), ks)


def ranx_scores(lists: dict[str, list[str]], relevant: dict[str, set[str]], ks) -> dict:
    qrels = ranx.Qrels({q: dict.fromkeys(items, 1) for q, items in relevant.items() if items})
    # score strictly decreasing in rank: ranx's positions are then the list's ranks
    run = ranx.Run(
        {
            q: {item: float(len(items) - pos) for pos, item in enumerate(items)}
            for q, items in lists.items()
            if relevant.get(q)
        }
    )
    metrics = [f"{m}@{k}" for k in ks for m in METRICS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba type-safety chatter
        ranx.evaluate(qrels, run, metrics, return_mean=False)
    return run.scores


@pytest.mark.parametrize("seed", range(6))
def test_matches_ranx_on_random_lists(seed: int) -> None:
    rng = np.random.default_rng(seed)
    catalogue = [f"item{i}" for i in range(25)]
    lists: dict[str, list[str]] = {}
    relevant: dict[str, set[str]] = {}
    for q in range(40):
        request = f"req{q}"
        n_items = int(rng.integers(1, 15))  # often shorter than k = 20 (and 10)
        lists[request] = list(rng.choice(catalogue, size=n_items, replace=False))
        n_relevant = int(rng.integers(0, 9))  # 0: not evaluated
        # relevant items drawn from the whole catalogue: many are not recommended
        relevant[request] = set(rng.choice(catalogue, size=n_relevant, replace=False))
    # rows in random order: the implementation must not rely on input order
    frame = lists_frame(lists).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    got = request_metrics(frame, relevant_frame(relevant), KS)

    evaluated = {q for q, items in relevant.items() if items}
    assert set(got.index) == evaluated
    want = ranx_scores(lists, relevant, KS)
    for k in KS:
        for metric in METRICS:
            column = f"{metric}@{k}"
            for request in evaluated:
                assert got.loc[request, column] == pytest.approx(
                    want[column][request], abs=1e-12
                ), (request, column)
            # the exported value is the mean over evaluated requests
            assert got[column].mean() == pytest.approx(
                np.mean(list(want[column].values())), abs=1e-12
            )


def dcg(ranks) -> float:
    return sum(1.0 / math.log2(r + 1) for r in ranks)


def test_hand_computed_relevant_items_not_recommended() -> None:
    got = metrics_of({"q": ["a", "b", "c"]}, {"q": {"c", "x", "y"}}, [3]).loc["q"]
    assert got["precision@3"] == pytest.approx(1 / 3)
    assert got["recall@3"] == pytest.approx(1 / 3)  # recall < 1: x and y never shown
    assert got["hit_rate@3"] == 1.0
    assert got["mrr@3"] == pytest.approx(1 / 3)
    assert got["map@3"] == pytest.approx((1 / 3) / 3)
    assert got["ndcg@3"] == pytest.approx(dcg([3]) / dcg([1, 2, 3]))


def test_map_divides_by_all_relevant_items_not_min_of_r_and_k() -> None:
    # |R| = 5 > k = 2: SPEC divides by |R| (0.4), not by min(|R|, k) (which would give 1.0).
    got = metrics_of({"q": ["a", "b", "c"]}, {"q": {"a", "b", "c", "d", "e"}}, [2]).loc["q"]
    assert got["map@2"] == pytest.approx((1 + 1) / 5)
    assert got["recall@2"] == pytest.approx(2 / 5)
    assert got["precision@2"] == 1.0
    assert got["ndcg@2"] == pytest.approx(1.0)  # IDCG over min(|R|, k) = 2 ranks


def test_list_shorter_than_k() -> None:
    got = metrics_of({"q": ["a", "b"]}, {"q": {"b"}}, [5, 10]).loc["q"]
    assert got["precision@5"] == pytest.approx(1 / 5)  # divides by k, not by the list length
    assert got["precision@10"] == pytest.approx(1 / 10)
    assert got["recall@5"] == 1.0
    assert got["mrr@5"] == pytest.approx(1 / 2)
    assert got["map@5"] == pytest.approx(1 / 2)
    assert got["ndcg@5"] == pytest.approx(dcg([2]) / dcg([1]))
    assert got["hit_rate@10"] == 1.0


def test_repeated_item_counts_at_its_first_rank_and_later_items_keep_their_ranks() -> None:
    # a at ranks 1 and 3; c stays at rank 4 (no renumbering to 3).
    lists = {"q": ["a", "b", "a", "c"]}
    got = metrics_of(lists, {"q": {"a", "c"}}, [3, 4]).loc["q"]
    assert got["precision@4"] == pytest.approx(2 / 4)
    assert got["recall@4"] == 1.0
    assert got["map@4"] == pytest.approx((1 / 1 + 2 / 4) / 2)
    assert got["ndcg@4"] == pytest.approx(dcg([1, 4]) / dcg([1, 2]))
    assert got["mrr@4"] == 1.0
    # at k = 3 c (rank 4) is out, and the second a adds nothing
    assert got["precision@3"] == pytest.approx(1 / 3)
    assert got["recall@3"] == pytest.approx(1 / 2)
    assert got["map@3"] == pytest.approx(1 / 2)
    assert got["ndcg@3"] == pytest.approx(dcg([1]) / dcg([1, 2]))


def test_repeated_relevant_item_is_not_a_second_hit() -> None:
    got = metrics_of({"q": ["b", "a", "a"]}, {"q": {"a"}}, [3]).loc["q"]
    assert got["precision@3"] == pytest.approx(1 / 3)
    assert got["recall@3"] == 1.0
    assert got["map@3"] == pytest.approx(1 / 2)
    assert got["ndcg@3"] == pytest.approx(dcg([2]) / dcg([1]))
    assert got["mrr@3"] == pytest.approx(1 / 2)


def test_repeated_item_rows_in_any_order() -> None:
    # Same list as above, rows scrambled: a's best rank (2) must still be used.
    frame = pd.DataFrame(
        {"request_id": ["q", "q", "q"], "item_id": ["a", "b", "a"], "rank": [3, 1, 2]}
    )
    got = request_metrics(frame, relevant_frame({"q": {"a"}}), [1, 3]).loc["q"]
    assert got["mrr@3"] == pytest.approx(1 / 2)
    assert got["precision@3"] == pytest.approx(1 / 3)
    assert got["hit_rate@1"] == 0.0
    assert got["mrr@1"] == 0.0


def test_no_hit_in_the_top_k() -> None:
    got = metrics_of({"q": ["a", "b", "c"]}, {"q": {"c"}}, [2]).loc["q"]
    for metric in METRICS:
        assert got[f"{metric}@2"] == 0.0, metric


def test_requests_with_an_empty_relevant_set_are_not_evaluated() -> None:
    lists = {"q1": ["a", "b"], "q2": ["a", "b"], "q3": ["c"]}
    got = metrics_of(lists, {"q1": {"a"}, "q3": {"c"}}, [1])
    assert sorted(got.index) == ["q1", "q3"]
    assert got["precision@1"].mean() == 1.0


def test_nothing_relevant_gives_an_empty_frame_with_all_columns() -> None:
    got = metrics_of({"q1": ["a"]}, {}, [5, 10])
    assert got.empty
    assert {f"{m}@{k}" for m in METRICS for k in (5, 10)} <= set(got.columns)


def test_relevant_request_without_list_rows_scores_zero() -> None:
    # An evaluated request whose list is not in `lists`: recall etc. are 0, not missing.
    got = request_metrics(lists_frame({"q1": ["a"]}), relevant_frame({"q2": {"a"}}), [1])
    assert list(got.index) == ["q2"]
    assert got.loc["q2"].tolist() == [0.0] * len(METRICS)


# --- relevant_items ------------------------------------------------------------------------------


def positives(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=["user_id", "item_id", "ts", "request_id"])
    return frame.astype({"ts": "datetime64[ns, UTC]"})


def requests(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=["request_id", "user_id", "ts"])
    return frame.astype({"ts": "datetime64[ns, UTC]"})


def relevant_sets(frame: pd.DataFrame) -> dict[str, set[str]]:
    return {q: set(g["item_id"]) for q, g in frame.groupby("request_id")}


def test_relevant_window_is_inclusive_at_both_ends() -> None:
    got = relevant_items(
        requests(("q", "u", T0)),
        positives(
            ("u", "at_t", T0, None),
            ("u", "at_t_plus_a", T0 + A, None),
            ("u", "inside", T0 + 30 * MIN, None),
            ("u", "too_late", T0 + A + US, None),
            ("u", "before", T0 - US, None),
        ),
        A,
    )
    assert relevant_sets(got) == {"q": {"at_t", "at_t_plus_a", "inside"}}


def test_relevance_is_per_user_distinct_and_ignores_request_id() -> None:
    got = relevant_items(
        requests(("q1", "u", T0), ("q2", "u", T0 + 2 * A), ("q3", "v", T0)),
        positives(
            ("u", "a", T0 + MIN, "q2"),  # names another request: ignored for relevance
            ("u", "a", T0 + 2 * MIN, None),  # same item twice: one relevant item
            ("u", "organic", T0 + 3 * MIN, None),  # never recommended: still relevant
            ("u", "b", T0 + 2 * A + MIN, "q1"),
            ("w", "c", T0 + MIN, None),  # a user without requests
        ),
        A,
    )
    assert relevant_sets(got) == {"q1": {"a", "organic"}, "q2": {"b"}}
    assert not got.duplicated().any()


def test_relevant_items_feed_request_metrics() -> None:
    reqs = requests(("q1", "u", T0), ("q2", "v", T0))
    got_relevant = relevant_items(
        reqs,
        positives(("u", "b", T0 + MIN, None), ("u", "z", T0 + MIN, None)),
        A,
    )
    lists = lists_frame({"q1": ["a", "b", "c"], "q2": ["a"]})
    got = request_metrics(lists, got_relevant, [2])
    assert list(got.index) == ["q1"]  # q2's user did nothing: not evaluated
    assert got.loc["q1", "precision@2"] == pytest.approx(1 / 2)
    assert got.loc["q1", "recall@2"] == pytest.approx(1 / 2)
    assert got.loc["q1", "map@2"] == pytest.approx((1 / 2) / 2)


def test_relevant_items_with_nothing() -> None:
    got = relevant_items(requests(("q", "u", T0)), positives(), A)
    assert got.empty
    assert list(got.columns) == ["request_id", "item_id"]
