"""Reference tests for the engine comparison (SPEC, "Comparisons" and recmon_comparison_*).

Conventions pinned here:
- each user's latest request per model over all its variants (equal times: the greater
  request_id) is the user's list; older lists of the user are ignored;
- an item repeated in a list counts at its first (best) rank; A_k is the set of items whose rank
  number is <= k (so a repeat or a gap in the ranks does not pull a later item into A_k);
  overlap@k = |A_k & B_k| / k even for lists shorter than k; Jaccard = |A_k & B_k| / |A_k | B_k|;
- RBO is the extrapolated RBO of Webber, Moffat and Zobel (2010), eq. 32, with p = 0.9, over
  the (deduplicated) top-k lists; it is 1 for identical top-k lists.

About the `rbo` package (0.1.x) used as the reference:
- `RankingSimilarity(S, T).rbo(k, p, ext=True)` computes sum_{d<=k'} (1-p) p^(d-1) A_d +
  A_k' p^k' with k' = min(len(S), len(T), k). For two lists of the same length >= k this is
  exactly eq. 32 at depth k, and it is what the tests compare against on random lists.
- For lists of different lengths that method silently truncates both to the shorter length (so
  [x, y] vs [q, r, x] scores 0). Eq. 32 proper (the package's `rbo_ext`, which takes no depth, so
  it is given the lists already cut at k) extrapolates the shorter list instead and scores
  [x, y] vs [q, r, x] p^2 / 3 = 0.27. recmon follows eq. 32; uneven lists are checked against
  `rbo_ext` and against hand computation.
"""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from recmon.kpis.comparison import RBO_P, compare, latest_lists, rbo

rbo_package = pytest.importorskip("rbo")

T0 = pd.Timestamp("2024-05-01T12:00:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)
P = 0.9


def frame(requests: list[tuple]) -> pd.DataFrame:
    """requests: (request_id, user_id, minutes after T0, items in rank order[, variant])."""
    rows = []
    for request in requests:
        request_id, user, minutes, items = request[:4]
        variant = request[4] if len(request) > 4 else "default"
        for rank, item in enumerate(items, start=1):
            rows.append((request_id, user, item, rank, T0 + minutes * MIN, variant))
    return pd.DataFrame(
        rows, columns=["request_id", "user_id", "item_id", "rank", "ts", "variant"]
    ).astype({"ts": "datetime64[ns, UTC]", "rank": "int64"})


def rows_frame(rows: list[tuple]) -> pd.DataFrame:
    """Explicit rows: (request_id, user_id, item_id, rank, minutes after T0)."""
    frame_ = pd.DataFrame(rows, columns=["request_id", "user_id", "item_id", "rank", "minutes"])
    frame_["ts"] = T0 + frame_.pop("minutes") * MIN
    return frame_


def package_rbo(a: list[str], b: list[str], k: int) -> float:
    return rbo_package.RankingSimilarity(list(a), list(b)).rbo(k=k, p=P, ext=True)


def package_rbo_ext(a: list[str], b: list[str], k: int) -> float:
    return rbo_package.RankingSimilarity(list(a[:k]), list(b[:k])).rbo_ext(p=P)


def rbo_even_by_hand(a: list[str], b: list[str], k: int) -> float:
    """X_k/k p^k + (1-p)/p sum_{d<=k} X_d/d p^d, written out for lists of length >= k."""
    agreements = [len(set(a[:d]) & set(b[:d])) / d for d in range(1, k + 1)]
    return agreements[-1] * P**k + (1 - P) / P * sum(
        agree * P**d for d, agree in enumerate(agreements, start=1)
    )


EMPTY = frame([])


# --- rbo ----------------------------------------------------------------------------------------


def test_rbo_p_is_0_9():
    assert RBO_P == 0.9


@pytest.mark.parametrize("k", [1, 2, 5, 10, 20])
def test_rbo_identical_is_one_disjoint_is_zero(k):
    items = [f"i{n}" for n in range(k)]
    assert rbo(items, items, k) == pytest.approx(1.0, abs=1e-12)
    assert rbo(items, [f"j{n}" for n in range(k)], k) == 0.0


def test_rbo_only_the_top_k_counts():
    a = ["a", "b", "c", "d", "e"]
    b = ["a", "b", "c", "x", "y"]
    assert rbo(a, b, 3) == pytest.approx(1.0, abs=1e-12)
    assert rbo(a, b, 5) < 1.0


def test_rbo_hand_computed_even_lists():
    a = ["a", "b", "c", "d", "e"]
    b = ["b", "a", "x", "d", "y"]
    # X_d = 0, 2, 2, 3, 3
    agreements = [0, 1, 2 / 3, 3 / 4, 3 / 5]
    expected = 3 / 5 * P**5 + (1 - P) / P * sum(x * P**d for d, x in enumerate(agreements, 1))
    assert rbo(a, b, 5) == pytest.approx(expected, rel=1e-12)
    # swapped top pair at k = 2: X = 0, 2 -> 1 * p^2 + (1-p)/p * (0 + p^2) = p
    assert rbo(a, b, 2) == pytest.approx(P, rel=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5, 10, 25])
def test_rbo_matches_the_package_on_random_lists_of_equal_length(k):
    rng = random.Random(k)
    universe = [f"i{n}" for n in range(2 * k + 5)]
    for _ in range(40):
        a = rng.sample(universe, k)
        b = rng.sample(universe, k)
        ours = rbo(a, b, k)
        assert ours == pytest.approx(package_rbo(a, b, k), abs=1e-12)
        assert ours == pytest.approx(package_rbo_ext(a, b, k), abs=1e-12)
        assert ours == pytest.approx(rbo_even_by_hand(a, b, k), abs=1e-12)
        assert ours == pytest.approx(rbo(b, a, k), abs=1e-15)
        assert 0.0 <= ours <= 1.0


@pytest.mark.parametrize("k", [3, 5, 10])
def test_rbo_with_longer_lists_uses_depth_k(k):
    rng = random.Random(100 + k)
    universe = [f"i{n}" for n in range(3 * k)]
    for _ in range(40):
        a = rng.sample(universe, 2 * k)
        b = rng.sample(universe, 2 * k)
        # the package truncates to min(len, len, k) = k: the same as cutting the lists at k
        assert rbo(a, b, k) == pytest.approx(package_rbo(a, b, k), abs=1e-12)
        assert rbo(a, b, k) == pytest.approx(rbo(a[:k], b[:k], k), abs=1e-15)


def test_rbo_uneven_hand_computed():
    # s = 2, l = 3; X = 0, 0, 1 (x reappears at depth 3); eq. 32:
    # (1-p)/p * (1/3 p^3 + 0) + ((1 - 0)/3 + 0) p^3 = p^2/3 ((1-p) + p) = p^2 / 3
    assert rbo(["x", "y"], ["q", "r", "x"], 5) == pytest.approx(P**2 / 3, rel=1e-12)
    assert package_rbo_ext(["x", "y"], ["q", "r", "x"], 5) == pytest.approx(P**2 / 3)
    # what the package's rbo(ext=True) gives: it ignores the longer list beyond length 2
    assert package_rbo(["x", "y"], ["q", "r", "x"], 5) == 0.0
    # a short list that is the prefix of the long one is extrapolated as agreeing fully
    assert rbo(["a"], ["a", "b", "c", "d"], 5) == pytest.approx(1.0, abs=1e-12)
    assert rbo(["a", "b"], ["a", "b", "c"], 3) == pytest.approx(1.0, abs=1e-12)
    # s = 2, l = 3, X = 0, 2, 2: (1-p)/p (p^2 + 2/3 p^3 + 2*1/(2*3) p^3) + (0 + 1) p^3 = p
    assert rbo(["x", "y"], ["y", "x", "q"], 3) == pytest.approx(P, rel=1e-12)


def test_rbo_uneven_written_out():
    a = ["a", "b", "c"]
    b = ["c", "z", "a", "w", "b", "v"]
    s, long_ = 3, 6
    x = [0, 0, 2, 2, 3, 3]  # overlap of the top-d prefixes, d = 1..6
    first = sum(x[d - 1] / d * P**d for d in range(1, long_ + 1))
    second = sum(x[s - 1] * (d - s) / (s * d) * P**d for d in range(s + 1, long_ + 1))
    expected = (1 - P) / P * (first + second) + ((x[-1] - x[s - 1]) / long_ + x[s - 1] / s) * P**6
    assert rbo(a, b, 10) == pytest.approx(expected, rel=1e-12)
    assert rbo(b, a, 10) == pytest.approx(expected, rel=1e-12)
    assert package_rbo_ext(a, b, 10) == pytest.approx(expected, rel=1e-12)
    # at k = 4 the long list is cut to 4 first: s = 3, l = 4
    assert rbo(a, b, 4) == pytest.approx(package_rbo_ext(a, b, 4), rel=1e-12)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_rbo_uneven_random_against_eq_32(k):
    rng = random.Random(200 + k)
    universe = [f"i{n}" for n in range(2 * k + 3)]
    for _ in range(40):
        a = rng.sample(universe, rng.randint(1, k + 3))
        b = rng.sample(universe, rng.randint(1, k + 3))
        ours = rbo(a, b, k)
        assert ours == pytest.approx(package_rbo_ext(a, b, k), abs=1e-12)
        assert 0.0 <= ours <= 1.0 + 1e-12


def test_rbo_empty_lists():
    assert rbo([], [], 5) == 1.0
    assert rbo(["a"], [], 5) == 0.0


# --- latest_lists -------------------------------------------------------------------------------


def test_latest_list_per_user_over_variants():
    impressions = frame(
        [
            ("r1", "u1", 0, ["a", "b"], "A"),
            ("r2", "u1", 5, ["c", "d"], "B"),  # latest for u1, in another variant
            ("r3", "u1", 3, ["e"], "A"),
            ("r4", "u2", 1, ["f", "g"], "A"),
        ]
    )
    assert latest_lists(impressions) == {"u1": ["c", "d"], "u2": ["f", "g"]}


def test_latest_list_tie_in_time_goes_to_the_greater_request_id():
    impressions = frame([("r2", "u1", 5, ["b"]), ("r1", "u1", 5, ["a"]), ("r10", "u1", 5, ["c"])])
    # string order: "r2" > "r10" > "r1"
    assert latest_lists(impressions) == {"u1": ["b"]}


def test_latest_list_is_in_rank_order_with_repeats_at_first_rank():
    impressions = rows_frame(
        [
            ("r1", "u1", "c", 3, 0),
            ("r1", "u1", "a", 1, 0),
            ("r1", "u1", "b", 2, 0),
            ("r1", "u1", "a", 4, 0),  # repeat: kept at rank 1
            ("r1", "u1", "d", 5, 0),
        ]
    )
    assert latest_lists(impressions) == {"u1": ["a", "b", "c", "d"]}
    assert latest_lists(EMPTY) == {}


# --- compare ------------------------------------------------------------------------------------


def ten(prefix: str) -> list[str]:
    return [f"{prefix}{n}" for n in range(10)]


def test_full_agreement():
    lists = [("u1", ten("a")), ("u2", ten("b"))]
    baseline = frame([(f"base-{u}", u, 0, items) for u, items in lists])
    candidate = frame([(f"cand-{u}", u, 1, items) for u, items in lists])
    result = compare(baseline, candidate, [1, 5, 10, 20])
    assert result["users"] == 2
    assert result["unique_items"] == 0
    for k in (1, 5, 10):
        assert result[f"overlap@{k}"] == 1.0
        assert result[f"jaccard@{k}"] == 1.0
        assert result[f"rbo@{k}"] == pytest.approx(1.0, abs=1e-12)
    # lists of 10 at k = 20: overlap still divides by k
    assert result["overlap@20"] == 0.5
    assert result["jaccard@20"] == 1.0
    assert result["rbo@20"] == pytest.approx(1.0, abs=1e-12)


def test_no_agreement():
    baseline = frame([("b1", "u1", 0, ten("a")), ("b2", "u2", 0, ten("b"))])
    candidate = frame([("c1", "u1", 0, ten("x")), ("c2", "u2", 0, ten("y"))])
    result = compare(baseline, candidate, [1, 5, 10])
    assert result["users"] == 2
    assert result["unique_items"] == 20
    for k in (1, 5, 10):
        assert result[f"overlap@{k}"] == 0.0
        assert result[f"jaccard@{k}"] == 0.0
        assert result[f"rbo@{k}"] == 0.0


def test_partial_agreement_hand_computed():
    baseline = frame(
        [
            ("b1", "u1", 0, ["a", "b", "c", "d", "e"]),
            ("b2", "u2", 0, ["p", "q", "r", "s", "t"]),
        ]
    )
    candidate = frame(
        [
            ("c1", "u1", 0, ["b", "a", "x", "d", "y"]),
            ("c2", "u2", 0, ["p", "q", "r", "s", "t"]),
        ]
    )
    result = compare(baseline, candidate, [1, 3, 5])
    # u1: k=1 {a} vs {b}: 0, 0; k=3 {a,b,c} vs {b,a,x}: 2/3, 2/4; k=5: 3/5, 3/7. u2 identical.
    assert result["overlap@1"] == pytest.approx((0 + 1) / 2)
    assert result["jaccard@1"] == pytest.approx((0 + 1) / 2)
    assert result["overlap@3"] == pytest.approx((2 / 3 + 1) / 2)
    assert result["jaccard@3"] == pytest.approx((2 / 4 + 1) / 2)
    assert result["overlap@5"] == pytest.approx((3 / 5 + 1) / 2)
    assert result["jaccard@5"] == pytest.approx((3 / 7 + 1) / 2)
    u1_rbo5 = rbo_even_by_hand(["a", "b", "c", "d", "e"], ["b", "a", "x", "d", "y"], 5)
    assert result["rbo@5"] == pytest.approx((u1_rbo5 + 1) / 2, rel=1e-12)
    assert result["rbo@1"] == pytest.approx(0.5, abs=1e-12)
    assert result["unique_items"] == 2  # x, y


def test_only_users_served_by_both_are_compared():
    baseline = frame([("b1", "u1", 0, ["a", "b"]), ("b2", "u2", 0, ["a", "b"])])
    candidate = frame([("c1", "u1", 0, ["a", "b"]), ("c3", "u3", 0, ["x", "y"])])
    result = compare(baseline, candidate, [2])
    assert result["users"] == 1
    assert result["overlap@2"] == 1.0  # u3's disjoint list does not count
    assert result["jaccard@2"] == 1.0
    # unique items look at the whole frames, users compared or not
    assert result["unique_items"] == 2


def test_latest_list_wins_and_older_lists_are_ignored_across_variants():
    baseline = frame(
        [
            ("b-old", "u1", 0, ["a", "b", "c"], "control"),
            ("b-new", "u1", 30, ["x", "y", "z"], "treatment"),  # latest, other variant
        ]
    )
    candidate = frame(
        [
            ("c-new", "u1", 40, ["a", "b", "c"], "default"),
            ("c-old", "u1", 20, ["x", "y", "z"], "default"),
        ]
    )
    result = compare(baseline, candidate, [3])
    assert result["users"] == 1
    assert result["overlap@3"] == 0.0
    assert result["jaccard@3"] == 0.0
    assert result["rbo@3"] == 0.0
    # every item was recommended by the baseline at some point in the frame
    assert result["unique_items"] == 0


def test_unique_items_counts_candidate_items_the_baseline_never_recommended():
    baseline = frame([("b1", "u1", 0, ["a", "b"]), ("b0", "u9", 0, ["c", "d"])])
    candidate = frame(
        [
            ("c1", "u1", 0, ["a", "x"]),
            ("c2", "u1", -10, ["y", "c"]),  # older list: still recommended in the window
            ("c3", "u7", 0, ["x", "z"]),
        ]
    )
    result = compare(baseline, candidate, [2])
    assert result["unique_items"] == 3  # x, y, z (x counted once; c was recommended by b0)
    # not symmetric: what the baseline had that the candidate never showed is not counted
    assert compare(candidate, baseline, [2])["unique_items"] == 2  # b, d


def test_overlap_divides_by_k_for_short_lists():
    baseline = frame([("b1", "u1", 0, ["a", "b"])])
    candidate = frame([("c1", "u1", 0, ["a", "b"])])
    result = compare(baseline, candidate, [5, 10])
    assert result["overlap@5"] == pytest.approx(2 / 5)
    assert result["overlap@10"] == pytest.approx(2 / 10)
    assert result["jaccard@5"] == 1.0
    assert result["rbo@5"] == pytest.approx(1.0, abs=1e-12)


def test_short_lists_of_different_length():
    baseline = frame([("b1", "u1", 0, ["a", "b", "c"])])
    candidate = frame([("c1", "u1", 0, ["c", "z", "a", "w", "b", "v"])])
    result = compare(baseline, candidate, [5])
    # A_5 = {a, b, c}, B_5 = {c, z, a, w, b}
    assert result["overlap@5"] == pytest.approx(3 / 5)
    assert result["jaccard@5"] == pytest.approx(3 / 5)
    assert result["rbo@5"] == pytest.approx(
        rbo(["a", "b", "c"], ["c", "z", "a", "w", "b"], 5), rel=1e-12
    )
    assert result["rbo@5"] == pytest.approx(
        package_rbo_ext(["a", "b", "c"], ["c", "z", "a", "w", "b"], 5), rel=1e-12
    )


def test_repeated_item_counts_at_its_first_rank_and_later_items_keep_their_rank():
    baseline = rows_frame(
        [
            ("b1", "u1", "a", 1, 0),
            ("b1", "u1", "a", 2, 0),  # repeat of a
            ("b1", "u1", "b", 3, 0),
        ]
    )
    candidate = rows_frame([("c1", "u1", "a", 1, 0), ("c1", "u1", "b", 2, 0)])
    result = compare(baseline, candidate, [2, 3])
    # A_2 = {a} (b has rank 3), B_2 = {a, b}
    assert result["overlap@2"] == pytest.approx(1 / 2)
    assert result["jaccard@2"] == pytest.approx(1 / 2)
    # RBO over the deduplicated top-2 lists [a] and [a, b]: the short list is a prefix -> 1
    assert result["rbo@2"] == pytest.approx(1.0, abs=1e-12)
    # A_3 = {a, b} = B_3
    assert result["overlap@3"] == pytest.approx(2 / 3)
    assert result["jaccard@3"] == 1.0
    assert result["rbo@3"] == pytest.approx(1.0, abs=1e-12)


def test_random_frames_against_a_direct_computation():
    rng = random.Random(5)
    universe = [f"i{n}" for n in range(30)]
    requests_a, requests_b = [], []
    for user in range(25):
        for side, requests in (("a", requests_a), ("b", requests_b)):
            for n in range(rng.randint(0, 3)):
                items = rng.sample(universe, rng.randint(1, 12))
                requests.append((f"{side}{user}-{n}", f"u{user}", rng.randint(0, 5), items))
    a_frame, b_frame = frame(requests_a), frame(requests_b)
    ks = [1, 3, 5, 10]
    result = compare(a_frame, b_frame, ks)

    def latest(requests):
        best = {}
        for request_id, user, minutes, items in requests:
            key = (minutes, request_id)
            if user not in best or key > best[user][0]:
                best[user] = (key, items)
        return {user: items for user, (_, items) in best.items()}

    la, lb = latest(requests_a), latest(requests_b)
    users = sorted(la.keys() & lb.keys())
    assert result["users"] == len(users)
    assert users
    for k in ks:
        overlap = [len(set(la[u][:k]) & set(lb[u][:k])) / k for u in users]
        jac = [
            len(set(la[u][:k]) & set(lb[u][:k])) / len(set(la[u][:k]) | set(lb[u][:k]))
            for u in users
        ]
        ranked = [package_rbo_ext(la[u], lb[u], k) for u in users]
        assert result[f"overlap@{k}"] == pytest.approx(sum(overlap) / len(users))
        assert result[f"jaccard@{k}"] == pytest.approx(sum(jac) / len(users))
        assert result[f"rbo@{k}"] == pytest.approx(sum(ranked) / len(users), abs=1e-12)
    unique = {i for _, _, _, items in requests_b for i in items} - {
        i for _, _, _, items in requests_a for i in items
    }
    assert result["unique_items"] == len(unique)


def test_no_common_users():
    baseline = frame([("b1", "u1", 0, ["a"])])
    candidate = frame([("c1", "u2", 0, ["b"])])
    result = compare(baseline, candidate, [5])
    assert result == {
        "users": 0,
        "unique_items": 1,
        "overlap@5": None,
        "jaccard@5": None,
        "rbo@5": None,
    }
    empty = compare(EMPTY, EMPTY, [5])
    assert empty["users"] == 0
    assert empty["unique_items"] == 0
    assert empty["rbo@5"] is None
    assert compare(EMPTY, candidate, [5])["unique_items"] == 1


def test_rbo_value_is_top_weighted():
    base = frame([("b1", "u1", 0, ["a", "b", "c", "d", "e"])])
    top_swapped = frame([("c1", "u1", 0, ["b", "a", "c", "d", "e"])])
    bottom_swapped = frame([("c1", "u1", 0, ["a", "b", "c", "e", "d"])])
    top = compare(base, top_swapped, [5])["rbo@5"]
    bottom = compare(base, bottom_swapped, [5])["rbo@5"]
    assert top < bottom < 1.0
    assert not math.isclose(top, bottom)


def test_gap_in_the_ranks_keeps_rank_numbers():
    # rows at ranks 1 and 2 were skipped (invalid): the list starts at rank 3
    baseline = rows_frame([("b1", "u1", "a", 3, 0), ("b1", "u1", "b", 4, 0)])
    candidate = rows_frame([("c1", "u1", "a", 1, 0), ("c1", "u1", "c", 4, 0)])
    result = compare(baseline, candidate, [1, 3, 4])
    # k = 1: A_1 = {} and B_1 = {a}
    assert result["overlap@1"] == 0.0
    assert result["jaccard@1"] == 0.0
    assert result["rbo@1"] == 0.0
    # k = 3: A_3 = {a}, B_3 = {a}; RBO over [a] and [a]
    assert result["overlap@3"] == pytest.approx(1 / 3)
    assert result["jaccard@3"] == 1.0
    assert result["rbo@3"] == pytest.approx(1.0, abs=1e-12)
    # k = 4: A_4 = {a, b}, B_4 = {a, c}
    assert result["overlap@4"] == pytest.approx(1 / 4)
    assert result["jaccard@4"] == pytest.approx(1 / 3)
    assert result["rbo@4"] == pytest.approx(rbo(["a", "b"], ["a", "c"], 4), rel=1e-12)


def test_both_top_k_empty_counts_as_agreement():
    # neither list has an item with rank <= 1: overlap 0 / 1, Jaccard and RBO of two empty sets 1
    baseline = rows_frame([("b1", "u1", "a", 2, 0)])
    candidate = rows_frame([("c1", "u1", "b", 3, 0)])
    result = compare(baseline, candidate, [1])
    assert result["overlap@1"] == 0.0
    assert result["jaccard@1"] == 1.0
    assert result["rbo@1"] == 1.0
