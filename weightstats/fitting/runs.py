"""A sorted sample given by run lengths: distinct values and how often each occurs.

A 16-bit tensor of 65 M values holds at most 65,536 distinct values (the counted path,
``fitting.counted``). The code written for a sorted array reads it by position (``xs[i]``,
``xs[array]``) and by rank (``np.searchsorted``); :class:`SortedRuns` answers both from the
distinct values and their cumulative counts in O(log distinct) per query, so that code (the atom
test, the hole test, the strided order statistics of a truncated fit) runs unchanged on the
multiset and gives the very numbers it gives on ``np.repeat(values, counts)``, without that array
ever being made. Sums over the sample (moments, likelihoods) take the counts as weights instead.
"""

from __future__ import annotations

import numpy as np


class SortedRuns:
    """Read-only view of ``np.repeat(values, counts)`` that never writes it out.

    Parameters
    ----------
    values : ndarray
        Distinct values, sorted ascending (float64).
    counts : ndarray
        Positive whole numbers: how often each value occurs.

    Notes
    -----
    Supports what a reader of a sorted 1-D array uses: ``size``, ``dtype``, ``len``, indexing by
    an integer, an integer array or a slice (each position looked up by binary search; a slice is
    gathered, so it costs its own length), and ``searchsorted`` (``np.searchsorted`` dispatches to
    it). Anything else, such as arithmetic, raises, so no code expands the sample by accident.
    """

    __slots__ = ("values", "counts", "size", "dtype", "_ends", "_prefix")

    def __init__(self, values: np.ndarray, counts: np.ndarray) -> None:
        self.values = np.asarray(values)
        self.counts = np.asarray(counts, dtype=np.int64)
        if self.values.shape != self.counts.shape or self.values.ndim != 1:
            raise ValueError("values and counts must be 1-D arrays of the same length")
        self._ends = np.cumsum(self.counts)  # one past each run's last position
        self._prefix = np.concatenate([[0], self._ends])  # values before run j: _prefix[j]
        self.size = int(self._prefix[-1])
        self.dtype = self.values.dtype

    @property
    def shape(self) -> tuple[int]:
        return (self.size,)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key):
        if isinstance(key, slice):
            key = np.arange(*key.indices(self.size))
        index = np.asarray(key)
        if index.dtype.kind not in "iu":
            raise TypeError(f"SortedRuns indices must be integers or slices, not {index.dtype}")
        index = np.where(index < 0, index + self.size, index)
        if np.any((index < 0) | (index >= self.size)):
            raise IndexError(f"index out of range for a sample of {self.size} values")
        return self.values[np.searchsorted(self._ends, index, "right")]

    def searchsorted(self, v, side: str = "left", sorter=None):
        """Positions in the written-out sample, as ``np.searchsorted`` gives them there."""
        if sorter is not None:
            raise TypeError("SortedRuns is sorted; a sorter is meaningless")
        return self._prefix[np.searchsorted(self.values, v, side)]

    def all_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """First position and one past the last of every run, in order."""
        return self._prefix[:-1], self._ends

    def run_bounds(self, index) -> tuple[np.ndarray, np.ndarray]:
        """First position and one past the last of the run holding each position ``index``."""
        run = np.searchsorted(self._ends, index, "right")
        return self._prefix[run], self._ends[run]

    def without(self, drop: np.ndarray) -> SortedRuns:
        """The sample with every occurrence of the values in ``drop`` removed."""
        keep = ~np.isin(self.values, drop)
        return SortedRuns(self.values[keep], self.counts[keep])

    def expand(self) -> np.ndarray:
        """The sample written out. As large as the tensor: for tests and small samples only."""
        return np.repeat(self.values, self.counts)


def one_form(xs: np.ndarray, counts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """A sorted sample as runs (distinct values, counts) where ties at least halve it, else every
    value once (counts None): one form for the same sample, whichever path it came from.

    ``xs`` are sorted values, each occurring once (``counts`` None: the float path) or
    ``counts`` times (distinct values: the counted path). Sums taken in another order differ in
    the last bits, and an optimizer that stops where the likelihood is flat to its tolerance turns
    that into ~1e-5 of a weakly determined shape; given the very same arrays, the float and the
    counted path give the very same numbers. Runs never cost more memory than the values, and a
    sample with more than half its values distinct has fewer than 2 x 65,536 values on the
    counted path, cheap to write out.
    """
    if counts is None:
        new = np.concatenate([[True], xs[1:] != xs[:-1]])  # first of each run of ties
        if 2 * int(np.count_nonzero(new)) > xs.size:
            return xs, None
        starts = np.flatnonzero(new)
        return xs[starts], np.diff(np.append(starts, xs.size))
    if 2 * counts.size > int(counts.sum()):
        return np.repeat(xs, counts), None
    return xs, counts
