"""A window's running totals: the sum of the Minutes it holds, kept up to date minute by minute."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from recmon.config.schema import Comparison
from recmon.incremental.buckets import Tally
from recmon.incremental.partial import Group, Lists, Minute, gather
from recmon.kpis.comparison import user_scores

# Minutes per block of the window's sums: a block's sum is kept while its minutes stay.
BLOCK = 60


class Window:
    """Running totals of a set of Minutes, by group. `sync` makes the set that of a range of
    minutes (by identity: a Minute summarised again replaces the old one) at the cost of the
    Minutes that changed."""

    def __init__(self, ks: Sequence[int], comparisons: Sequence[Comparison], scores_only: bool):
        self.ks = ks
        self.comparisons = comparisons
        self.scores_only = scores_only
        self.members: dict[int, Minute] = {}  # by minute number
        self._totals: dict[Group, np.ndarray] | None = None
        self._in_block: Counter[int] = Counter()  # block -> its minutes among the members
        self._block_sums: dict[int, dict[Group, np.ndarray]] = {}  # whole blocks only
        self.users: dict[Group, Tally] = {}
        self.items: dict[Group, Tally] = {}
        self.scored: dict[Group, Tally] = {}
        self.clicked: dict[Group, Tally] = {}
        self.invalid: Counter[tuple[str, str]] = Counter()
        # model -> user -> the minute of the user's latest list, and where it is
        self.latest: dict[str, dict[int, tuple[int, Lists, int]]] = {}
        # per comparison: user -> the user's scores (user_scores)
        self.scores_by_user: list[dict[int, np.ndarray]] = [{} for _ in comparisons]

    @property
    def sums(self) -> dict[Group, np.ndarray]:
        """The additive fields per group, summed in time order: each whole block of BLOCK
        minutes (kept while its minutes stay), and the minutes of the blocks cut by the window's
        ends. Unlike running totals, the same minutes give the same bits however they came (warm
        or after a restart), and a week is added up from about 170 parts, not 10,080."""
        if self._totals is None:
            parts: list[dict[Group, np.ndarray]] = []
            for block in sorted(self._in_block):
                minutes = range(block * BLOCK, (block + 1) * BLOCK)
                if self._in_block[block] < BLOCK:
                    parts.extend(self.members[b].sums for b in minutes if b in self.members)
                    continue
                if block not in self._block_sums:
                    self._block_sums[block] = _summed(self.members[b].sums for b in minutes)
                parts.append(self._block_sums[block])
            self._totals = _summed(parts)
        return self._totals

    def sync(self, wanted: range, minutes: dict[int, Minute]) -> None:
        """Make the members minutes[b] for b in `wanted` (every one of them in `minutes`)."""
        self._totals = None
        removed = {b: m for b, m in self.members.items() if b not in wanted or minutes[b] is not m}
        for b, minute in removed.items():
            del self.members[b]
            self._apply(b, minute, -1)
        oldest = min(self.members, default=None)
        added = {b: minutes[b] for b in wanted if b not in self.members}
        for b, minute in sorted(added.items()):
            self.members[b] = minute
            self._apply(b, minute, +1)
        if self.scores_only or not self.comparisons:
            return
        # Dropping a user's latest list with its Minute is exact when no older list of the user
        # that it hid is left: so for the minutes leaving at the old end, the steady state.
        # Minutes summarised again at the new end (a delay shorter than A) rebuild the lists.
        if oldest is not None and any(b > oldest for b in removed):
            self.latest = {}
            for b, minute in self.members.items():
                self._add_lists(b, minute)
            self._rescore(None)
            return
        changed = self._drop_lists(removed.values())
        for b, minute in added.items():
            changed |= self._add_lists(b, minute)
        self._rescore(changed)

    def _apply(self, b: int, minute: Minute, sign: int) -> None:
        block = b // BLOCK
        self._in_block[block] += sign
        if not self._in_block[block]:
            del self._in_block[block]
        self._block_sums.pop(block, None)
        for group, (codes, scored, clicked) in minute.scores.items():
            bins = codes.array()
            self.scored.setdefault(group, Tally()).add(bins, scored.array(), sign)
            self.clicked.setdefault(group, Tally()).add(bins, clicked.array(), sign)
        if self.scores_only:
            return
        for group, users in minute.users.items():
            codes = users.array()
            self.users.setdefault(group, Tally()).add(codes, np.ones_like(codes), sign)
        for group, (items, counts) in minute.items.items():
            self.items.setdefault(group, Tally()).add(items.array(), counts.array(), sign)
        self.invalid.update({k: sign * n for k, n in minute.invalid.items()})

    def _add_lists(self, b: int, minute: Minute) -> set[int]:
        changed = set()
        for model, lists in minute.lists.items():
            latest = self.latest.setdefault(model, {})
            for row, user in enumerate(lists.users.array().tolist()):
                current = latest.get(user)
                if current is None or b > current[0]:
                    latest[user] = (b, lists, row)
                    changed.add(user)
        return changed

    def _drop_lists(self, minutes: Iterable[Minute]) -> set[int]:
        changed = set()
        for minute in minutes:
            for model, lists in minute.lists.items():
                latest = self.latest.get(model, {})
                for user in lists.users.array().tolist():
                    if user in latest and latest[user][1] is lists:
                        del latest[user]
                        changed.add(user)
        return changed

    def _rescore(self, users: set[int] | None) -> None:
        """Recompute the comparison scores of `users` (None: everyone)."""
        for i, pair in enumerate(self.comparisons):
            base = self.latest.get(pair.baseline, {})
            cand = self.latest.get(pair.candidate, {})
            by_user = self.scores_by_user[i]
            if users is None:
                by_user.clear()
            both = []
            for user in (base.keys() & cand.keys()) if users is None else users:
                by_user.pop(user, None)
                if user in base and user in cand:
                    both.append(user)
            lists = gather([base[u][1:] for u in both] + [cand[u][1:] for u in both])
            for j, user in enumerate(both):
                by_user[user] = user_scores(lists.ranked(j), lists.ranked(len(both) + j), self.ks)

    def score_sums(self, i: int) -> np.ndarray | None:
        """The sum of comparison i's user scores, exactly rounded (math.fsum), so it does not
        depend on the order users came in: warm and restarted engines agree to the bit."""
        by_user = self.scores_by_user[i]
        if not by_user:
            return None
        return np.array([math.fsum(column) for column in np.array(list(by_user.values())).T])


def _summed(parts: Iterable[dict[Group, np.ndarray]]) -> dict[Group, np.ndarray]:
    """Per group, the sum of its vectors in the parts' order."""
    vectors: dict[Group, list[np.ndarray]] = {}
    for part in parts:
        for group, vector in part.items():
            vectors.setdefault(group, []).append(vector)
    return {g: np.sum(v, axis=0) for g, v in vectors.items()}


def merged(tallies: Iterable[Tally | None]) -> np.ndarray:
    """The sum of some groups' tallies (the groups folded into one, or a model's variants); one
    group's tally as it is (read only), the common case without dimensions."""
    arrays = [t.counts for t in tallies if t is not None]
    if len(arrays) <= 1:
        return arrays[0] if arrays else np.zeros(0, dtype=np.int64)
    total = np.zeros(max(len(a) for a in arrays), dtype=np.int64)
    for a in arrays:
        total[: len(a)] += a
    return total
