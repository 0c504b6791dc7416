"""The minute grid, and the compact per-minute forms of ids and scores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

BUCKET = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1)
# Scores are binned by their float32 bits: sign, exponent and the top SCORE_MANTISSA_BITS bits
# of the mantissa, so a bin is 2**-10 (0.1%) of the score wide, whatever the score's scale.
SCORE_MANTISSA_BITS = 10
_SHIFT = 23 - SCORE_MANTISSA_BITS
SCORE_CODES = 1 << (32 - _SHIFT)


def floor(t: datetime) -> datetime:
    return t - timedelta(seconds=t.second, microseconds=t.microsecond)


def horizon(b: datetime, attribution: timedelta, now: datetime) -> datetime:
    """The newest time minute b's labels depend on: a list can earn a click, or lose one to a
    later list, until A after it."""
    return min(b + BUCKET + attribution, now)


def number(t: datetime) -> int:
    """The number of t's minute since the epoch: the store keeps minutes by it, since sets and
    ranges of ints are cheap where a week of datetimes is not."""
    return (t - EPOCH) // BUCKET


def minute_range(start: datetime, end: datetime) -> range:
    """The numbers of the minutes b with start <= b < end (both on the grid)."""
    return range(number(start), number(end))


def start_of(n: int) -> datetime:
    return EPOCH + n * BUCKET


def grid(start: datetime, end: datetime) -> Iterator[datetime]:
    """The minutes b with start <= b < end (both on the grid)."""
    b = start
    while b < end:
        yield b
        b += BUCKET


def minute_of(ts: pd.Series) -> pd.Series:
    return ts.dt.floor("min")


def score_codes(scores: np.ndarray) -> np.ndarray:
    """Bin numbers that sort as the scores do (finite scores only)."""
    bits = np.asarray(scores, dtype=np.float32).view(np.int32).astype(np.int64)
    # negative floats sort backwards by their bits: flip them, then make every code unsigned
    ordered = np.where(bits < 0, ~bits & 0x7FFFFFFF, bits | 0x80000000)
    return (ordered >> _SHIFT).astype(np.int64)


def bin_edges() -> np.ndarray:
    """The lower edge of every score bin (the inverse of score_codes), ascending."""
    ordered = np.arange(SCORE_CODES, dtype=np.int64) << _SHIFT
    positive = (ordered & 0x80000000) != 0
    bits = np.where(positive, ordered & 0x7FFFFFFF, ~ordered & 0xFFFFFFFF)
    with np.errstate(invalid="ignore"):  # the NaN bins
        edges = bits.astype(np.uint32).view(np.float32).astype(float)
    # a negative bin's bits give its upper (nearer zero) end, and NaN bins sit at the extremes:
    # take the next bin's edge for negatives and clip the rest to keep the order
    return np.maximum.accumulate(np.nan_to_num(edges, nan=-np.inf, posinf=np.inf, neginf=-np.inf))


class Interner:
    """Small integer codes for ids (users, items): an id keeps its code while the engine holds
    it. `forget` lets go of the ids no longer held and gives their codes to new ids, so that
    users coming and going do not pile up ids, nor lengthen the tallies indexed by code, for the
    engine's life."""

    def __init__(self) -> None:
        self.known = pd.Index([], dtype=object)  # the ids ...
        self._codes = np.zeros(0, dtype=np.int64)  # ... and their codes
        self._free = np.zeros(0, dtype=np.int64)  # codes of forgotten ids, ascending
        self.size = 0  # codes ever handed out: every code is below it

    def codes(self, ids: pd.Series) -> np.ndarray:
        found = self.known.get_indexer(ids)
        new = found < 0
        if new.any():
            fresh = pd.Index(pd.unique(ids[new]))
            reused, self._free = self._free[: len(fresh)], self._free[len(fresh) :]
            more = np.arange(self.size, self.size + len(fresh) - len(reused), dtype=np.int64)
            self.size += len(more)
            self.known = self.known.append(fresh)
            self._codes = np.concatenate([self._codes, reused, more])
            found = self.known.get_indexer(ids)
        return self._codes[found]

    def forget(self, held: np.ndarray) -> None:
        """Forget every id whose code is not marked in `held` (a mask over the codes)."""
        keep = held[self._codes]
        self._free = np.sort(np.concatenate([self._free, self._codes[~keep]]))
        self.known = self.known[keep]
        self._codes = self._codes[keep]

    def __len__(self) -> int:
        return len(self.known)


class ScoreBins:
    """Small codes for the score bins in use, in order of first use: a window's score tallies are
    then as long as the bins its scores fell in, not the SCORE_CODES the bin numbers span, which
    keeps reading their non-empty bins cheap."""

    def __init__(self) -> None:
        self._code = np.full(SCORE_CODES, -1, dtype=np.int32)  # bin number -> code
        self.numbers = np.zeros(0, dtype=np.int64)  # code -> bin number

    def codes(self, numbers: np.ndarray) -> np.ndarray:
        found = self._code[numbers]
        new = found < 0
        if new.any():
            fresh = np.unique(numbers[new])
            self._code[fresh] = np.arange(len(self.numbers), len(self.numbers) + len(fresh))
            self.numbers = np.concatenate([self.numbers, fresh])
            found = self._code[numbers]
        return found.astype(np.int64)


class Tally:
    """Counts per code, growable; the running total of a window's minutes."""

    def __init__(self) -> None:
        # int64: one score bin of a month's window can pass 2**31 (a constant score at 72
        # million impressions a day); a tally is as long as the codes, not the window
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, codes: np.ndarray, counts: np.ndarray, sign: int) -> None:
        """`codes` are distinct (one minute's counts per code)."""
        if len(codes) and codes.max() >= len(self.counts):
            grown = np.zeros(max(int(codes.max()) + 1, 2 * len(self.counts)), dtype=np.int64)
            grown[: len(self.counts)] = self.counts
            self.counts = grown
        self.counts[codes] += sign * counts

    def nonzero(self) -> int:
        return int(np.count_nonzero(self.counts))
