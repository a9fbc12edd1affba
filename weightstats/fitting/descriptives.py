"""Summary statistics of a weight tensor (moment estimators as in scipy.stats.skew/kurtosis)."""

from __future__ import annotations

import numpy as np

from .families.base import CHUNK, dot


def describe(x_sorted: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """Mean, std (ddof 0), skewness, excess kurtosis, fraction of exact zeros, min and max.

    ``weights``: how often each value occurs (the counted path's multiset; None: once each).
    Central moments are accumulated over chunks, so no full-length temporary is created.
    """
    if weights is not None:
        return _describe_weighted(x_sorted, np.asarray(weights, dtype=np.float64))
    n = x_sorted.size
    mean = float(x_sorted.sum() / n)
    m2 = m3 = m4 = 0.0
    for i in range(0, n, CHUNK):
        dev = x_sorted[i:i + CHUNK] - mean
        dev2 = dev * dev
        m2 += float(dev2.sum())
        m3 += dot(dev2, dev)
        m4 += dot(dev2, dev2)
    lo, hi = np.searchsorted(x_sorted, 0.0, "left"), np.searchsorted(x_sorted, 0.0, "right")
    return _summary(mean, m2 / n, m3 / n, m4 / n, float(hi - lo) / n, x_sorted)


def _describe_weighted(values: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """``describe`` of the multiset holding each of ``values`` ``weights`` times."""
    n = float(weights.sum())
    mean = dot(values, weights) / n
    dev = values - mean
    wdev2 = weights * dev * dev
    lo, hi = np.searchsorted(values, 0.0, "left"), np.searchsorted(values, 0.0, "right")
    zeros = float(weights[lo:hi].sum())
    return _summary(mean, float(wdev2.sum()) / n, dot(wdev2, dev) / n, dot(wdev2, dev * dev) / n,
                    zeros / n, values)


def _summary(mean: float, m2: float, m3: float, m4: float, zero_fraction: float,
             x_sorted: np.ndarray) -> dict[str, float]:
    return {
        "mean": mean,
        "std": float(np.sqrt(m2)),
        "skewness": m3 / m2**1.5 if m2 > 0 else float("nan"),
        "excess_kurtosis": m4 / m2**2 - 3.0 if m2 > 0 else float("nan"),
        "zero_fraction": zero_fraction,
        "min": float(x_sorted[0]),
        "max": float(x_sorted[-1]),
    }


def histogram_sorted(x_sorted: np.ndarray, bins: int,
                     weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram(x, bins) over [min, max], from sorted data by binary search (``weights``: how
    often each value occurs)."""
    edges = np.linspace(x_sorted[0], x_sorted[-1], bins + 1)
    pos = np.searchsorted(x_sorted, edges, side="left")
    pos[-1] = x_sorted.size  # the last bin is closed, as in np.histogram
    if weights is None:
        return np.diff(pos).astype(np.int64), edges
    cum = np.concatenate([[0], np.cumsum(np.asarray(weights, dtype=np.int64))])
    return np.diff(cum[pos]), edges
