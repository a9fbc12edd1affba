"""Order statistics and moments of a multiset given as distinct sorted values and their counts
(every family's weighted fit uses them, the generalized normal's cusp search too).

A family's weighted fit (``Family.fit_weighted``) must reproduce the fit of the expanded sample
``np.repeat(values, counts)``, including the starting values its optimizer computes from order
statistics (median, quartiles, the evenly spaced quantiles of ``base.strided_quantiles``). These
helpers give exactly the order statistics the expanded sample holds at the same positions, so the
weighted fit starts where the expanded one does and ends at the same maximum. Each costs
O(number of distinct values), never O(total count).
"""

from __future__ import annotations

import numpy as np

from .base import BatchFit


def positions(counts: np.ndarray) -> np.ndarray:
    """Cumulative counts (int64): the expanded sample's values ``cum[j-1] .. cum[j]-1`` equal
    ``values[j]``."""
    return np.cumsum(counts.astype(np.int64))


def order_stat(values: np.ndarray, cum: np.ndarray, index) -> np.ndarray:
    """The expanded sample's sorted value(s) at 0-based ``index`` (an int or an int array)."""
    return values[np.searchsorted(cum, index, side="right")]


def median(values: np.ndarray, cum: np.ndarray) -> float:
    """The median as ``base.row_median`` computes it on the expanded sample (for an even total,
    the midpoint of the two middle values, with the same floating-point operation)."""
    n = int(cum[-1])
    mid = n // 2
    if n % 2:
        return float(order_stat(values, cum, mid))
    return float(0.5 * (order_stat(values, cum, mid - 1) + order_stat(values, cum, mid)))


def unsorted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """``np.median`` of the expanded sample, for values in any order (e.g. absolute deviations)."""
    order = np.argsort(values, kind="stable")
    return median(values[order], positions(counts[order]))


def strided_quantiles(values: np.ndarray, counts: np.ndarray, m: int) -> np.ndarray:
    """``base.strided_quantiles`` of the expanded sample (one row), without expanding it."""
    cum = positions(counts)
    n = int(cum[-1])
    step = n // m
    return order_stat(values, cum, np.arange(step // 2, n, step))


def strided_quantile_counts(values: np.ndarray, counts: np.ndarray,
                            m: int) -> tuple[np.ndarray, np.ndarray]:
    """``strided_quantiles`` as a multiset: its distinct values and their counts. About ``m``
    quantiles of a multiset with fewer distinct values repeat many of them, and a fit on the
    counted form touches each once."""
    cum = positions(counts)
    n = int(cum[-1])
    step = n // m
    which = np.searchsorted(cum, np.arange(step // 2, n, step), side="right")
    first = np.flatnonzero(np.diff(which, prepend=-1))
    return values[which[first]], np.diff(np.append(first, which.size)).astype(np.float64)


def total(counts: np.ndarray) -> int:
    """The number of values the multiset holds (counts are whole numbers, exact in float64 below
    2**53)."""
    return int(round(float(counts.sum())))


def moments(values: np.ndarray, counts: np.ndarray) -> tuple[float, float, float]:
    """Mean, second and fourth central moments of the expanded sample."""
    n = float(counts.sum())
    mean = float(values @ counts) / n
    dev2 = (values - mean) ** 2
    return mean, float(dev2 @ counts) / n, float((dev2 * dev2) @ counts) / n


def two_parameter_fit(loc: float, scale: float, loglik: float) -> BatchFit:
    """The one-row ``BatchFit`` of a closed-form location-scale fit (no shape, always converged)."""
    nan = np.full(1, np.nan)
    return BatchFit(np.array([loc], float), np.array([scale], float), nan, np.array([loglik], float),
                    np.zeros(1, bool), nan.copy())
