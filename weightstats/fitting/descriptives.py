"""Summary statistics of a weight tensor (moment estimators as in scipy.stats.skew/kurtosis)."""

from __future__ import annotations

import numpy as np

from .families.base import CHUNK, dot


def describe(x_sorted: np.ndarray) -> dict[str, float]:
    """Mean, std (ddof 0), skewness, excess kurtosis, fraction of exact zeros, min and max.

    Central moments are accumulated over chunks, so no full-length temporary is created.
    """
    n = x_sorted.size
    mean = float(x_sorted.sum() / n)
    m2 = m3 = m4 = 0.0
    for i in range(0, n, CHUNK):
        dev = x_sorted[i:i + CHUNK] - mean
        dev2 = dev * dev
        m2 += float(dev2.sum())
        m3 += dot(dev2, dev)
        m4 += dot(dev2, dev2)
    m2, m3, m4 = m2 / n, m3 / n, m4 / n
    lo, hi = np.searchsorted(x_sorted, 0.0, "left"), np.searchsorted(x_sorted, 0.0, "right")
    return {
        "mean": mean,
        "std": float(np.sqrt(m2)),
        "skewness": m3 / m2**1.5 if m2 > 0 else float("nan"),
        "excess_kurtosis": m4 / m2**2 - 3.0 if m2 > 0 else float("nan"),
        "zero_fraction": float(hi - lo) / n,
        "min": float(x_sorted[0]),
        "max": float(x_sorted[-1]),
    }


def histogram_sorted(x_sorted: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram(x, bins) over [min, max], from sorted data by binary search."""
    edges = np.linspace(x_sorted[0], x_sorted[-1], bins + 1)
    pos = np.searchsorted(x_sorted, edges, side="left")
    pos[-1] = x_sorted.size  # the last bin is closed, as in np.histogram
    return np.diff(pos).astype(np.int64), edges
