"""Order statistics of a multiset given as distinct sorted values and their counts.

The weighted generalized-normal fit (``GenNorm.fit_weighted``) must take the same path as the fit
of the expanded sample ``np.repeat(values, counts)``: the same median start, the same strided
quantiles, the same candidate values for loc below beta = 1. Each of those is a value at some
position of the expanded sample, found here by a binary search in the cumulative counts, so the
expanded sample is never built.
"""

from __future__ import annotations

import numpy as np


def total(counts: np.ndarray) -> int:
    """Size of the expanded sample (counts are whole numbers, exact in float64 below 2**53)."""
    return int(round(float(counts.sum())))


def at_positions(values: np.ndarray, counts: np.ndarray, positions) -> np.ndarray:
    """``np.repeat(values, counts)[positions]`` without expanding (positions 0-based)."""
    ends = np.cumsum(counts)
    return values[np.searchsorted(ends, np.asarray(positions, dtype=np.float64), "right")]


def median(values: np.ndarray, counts: np.ndarray) -> float:
    """``np.median`` of the expanded sample (the mean of the two middle values for an even size)."""
    n = total(counts)
    mid = n // 2
    if n % 2:
        return float(at_positions(values, counts, [mid])[0])
    lo, hi = at_positions(values, counts, [mid - 1, mid])
    return float(0.5 * (lo + hi))


def unsorted_median(x: np.ndarray, counts: np.ndarray) -> float:
    """``np.median`` of the expanded sample for values in any order (ties allowed)."""
    order = np.argsort(x, kind="stable")
    return median(x[order], counts[order])


def strided(values: np.ndarray, counts: np.ndarray, m: int) -> np.ndarray:
    """``base.strided_quantiles`` of the expanded sample: its values at positions step // 2,
    step // 2 + step, ... with step = n // m."""
    n = total(counts)
    step = n // m
    return at_positions(values, counts, np.arange(step // 2, n, step))


def moments(values: np.ndarray, counts: np.ndarray) -> tuple[float, float, float]:
    """Mean, second and fourth central moments of the expanded sample."""
    n = float(counts.sum())
    mean = float(values @ counts) / n
    dev2 = (values - mean) ** 2
    return mean, float(dev2 @ counts) / n, float((dev2 * dev2) @ counts) / n
