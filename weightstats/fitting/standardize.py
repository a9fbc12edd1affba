"""Where and how wide the bulk of a sorted sample is: the centre and unit the fitter works in.

Every family is location-scale, so the fits are exact under any choice of centre and unit; the
choice only decides whether the optimizers see well-scaled numbers. The mean and standard deviation
are the wrong choice on hostile data: three values at ±1e8 among 1e5 Gaussians make the standard
deviation 5e5 times the bulk's width, the bulk collapses to ~1e-6 around one point, and Student-t's
Newton stalls where it started. The median and the interquartile range ignore such values.
"""

from __future__ import annotations

import math

import numpy as np

from .families import weighted
from .families.base import CHUNK, dot

# Largest |standardized value| the families handle without overflow: gennorm raises |z| to a
# power up to 20 (1e12 ** 20 = 1e240) and Student-t squares it; sums over 1e9 values stay finite.
# Beyond it the unit grows, so outliers further out than 1e12 interquartile ranges compress the bulk.
MAX_STANDARDIZED = 1e12
_IQR_PER_SD = 1.3489795003921634  # a Gaussian's interquartile range in standard deviations


def sorted_quantile(x_sorted: np.ndarray, q: float, cum: np.ndarray | None = None) -> float:
    """Quantile of a sorted 1-D array with NumPy's default (linear) interpolation, in O(1).

    ``cum``: cumulative counts when ``x_sorted`` holds distinct values of a multiset (the counted
    path); the quantile is then that of the multiset written out, found by binary search.
    """
    n = x_sorted.size if cum is None else int(cum[-1])
    pos = q * (n - 1)
    i = int(math.floor(pos))
    j = min(i + 1, n - 1)
    if cum is None:
        lo, hi = float(x_sorted[i]), float(x_sorted[j])
    else:  # the value at 0-based position p is the first whose cumulative count exceeds p
        lo, hi = (float(v) for v in weighted.order_stat(x_sorted, cum, np.array([i, j])))
    return float(lo + (pos - i) * (hi - lo))


def robust_center_spread(z_sorted: np.ndarray,
                         weights: np.ndarray | None = None) -> tuple[float, float]:
    """Median and a robust spread of a sorted, non-constant sample whose values are at most 1 in
    magnitude (the caller divides by max|x| first, so no difference below can overflow).

    The spread is the interquartile range in Gaussian standard deviations (a Gaussian sample comes
    out with unit spread, as the families' starting values expect); where the quartiles tie (more
    than half the values on one atom) it is the root-mean-square deviation from the median. It is
    never below the largest deviation over ``MAX_STANDARDIZED``, which bounds every standardized
    value. ``weights``: how often each (distinct) value occurs, for the counted path.
    """
    cum = None if weights is None else weighted.positions(np.asarray(weights))
    n = z_sorted.size if cum is None else int(cum[-1])
    center = sorted_quantile(z_sorted, 0.5, cum)
    spread = (sorted_quantile(z_sorted, 0.75, cum) - sorted_quantile(z_sorted, 0.25, cum)) / _IQR_PER_SD
    if not spread > 0:
        if weights is None:
            sq = sum(dot(d, d) for d in (z_sorted[i:i + CHUNK] - center for i in range(0, n, CHUNK)))
        else:
            d = z_sorted - center
            sq = dot(d * d, np.asarray(weights, dtype=np.float64))
        spread = math.sqrt(sq / n)
    widest = max(center - float(z_sorted[0]), float(z_sorted[-1]) - center)
    return center, max(spread, widest / MAX_STANDARDIZED)
