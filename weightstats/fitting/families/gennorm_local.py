"""sum w |x - m|^beta for loc m in a narrow interval, at the cost of the values near it.

Below beta = 1.05 a long row's loc is searched by golden section on sum|x - m|^beta, thirty-odd
evaluations per round, each a pass over every value. Only the values near the interval make the
cusps; the others contribute an analytic function of m there (its nearest singularity lies
``_REACH`` half-lengths beyond the interval's edge), whose binomial series about the interval's
middle converges like 33^-k: ``_TERMS`` terms are exact to ~5e-17 relative, below the sums' own
rounding. One power pass over the far values gives the series' moments, and each evaluation
sums the near values exactly.
"""

from __future__ import annotations

import numpy as np

from .base import dot

# Far values lie beyond this many half-lengths from the interval's edges. Farther means fewer
# series terms (each a multiply and a sum per far value) but more near values per evaluation.
_REACH = 32.0
_TERMS = 11  # binomial series terms: the ratio |m - mid| / |x - mid| is at most 1/33 for them
# Farther values need fewer terms for the same truncation error 33^-11: those beyond
# 33^(11/k) half-lengths from the middle (ratio at most 33^(-11/k)) take k terms.
_BAND_TERMS = (8, 6, 5, 4, 3)
_CHUNK = 1 << 14
# (terms, reach in half-lengths) per band of ``_bands``, nearest first, and the reaches alone
_EDGES = [(_TERMS, _REACH + 1.0)] + [(k, (_REACH + 1.0) ** (_TERMS / k)) for k in _BAND_TERMS]
_EDGE_REACH = np.array([d for _, d in _EDGES])


class LocalCost:
    """``m -> sum w |x - m|^beta`` for m in [lo, hi], one sorted row ``x`` (weights ``w`` or None).

    Outside [lo, hi] it falls back to the full pass."""

    def __init__(self, x: np.ndarray, beta: float, lo: float, hi: float,
                 w: np.ndarray | None = None) -> None:
        self.x, self.w, self.beta = x, w, beta
        self.mid, self.half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        self.lo, self.hi = lo, hi
        reach = _REACH * self.half
        a = int(np.searchsorted(x, lo - reach, "left"))
        b = int(np.searchsorted(x, hi + reach, "right"))
        self.near = x[a:b]
        self.near_range = (a, b)  # the near values' index range in ``x``
        self.near_w = None if w is None else w[a:b]
        self._work = None  # ``at``'s |x - m| for the near values, allocated on first use
        # |r - d|^beta = |r|^beta (1 - d/r)^beta = |r|^beta sum_k C(beta, k) (-d/r)^k with r = x - mid
        # and d = m - mid, so moments M_k = sum w |r|^beta r^-k (one power pass) give every m.
        moments = np.zeros(_TERMS)
        work = np.empty((3, _CHUNK))
        # An interval of ~1e-300 (a bracket around an atom) overflows r^-k: then every cost is
        # a full pass, as without this class.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for start, stop, terms in _bands(x, self.mid, self.half, a, b):
                weight = None if w is None else w[start:stop]
                part = x[start:stop]
                # the row is sorted: a band lies on one side of mid, so |r| is one subtraction
                # (fl(mid - x) = -fl(x - mid)), and below mid r^-k = (-1)^k |r|^-k
                below = stop <= a
                odd = -1.0 if below else 1.0
                for i in range(0, part.size, _CHUNK):
                    # in place: a fresh chunk-sized temporary costs page faults
                    chunk = part[i:i + _CHUNK]
                    r, p, inv2 = (buf[:chunk.size] for buf in work)
                    if below:
                        np.subtract(self.mid, chunk, out=r)
                    else:
                        np.subtract(chunk, self.mid, out=r)
                    np.log(r, out=p)  # p = |r|^beta as in ``_power``
                    np.multiply(p, beta, out=p)
                    np.exp(p, out=p)
                    if weight is not None:
                        p *= weight[i:i + _CHUNK]
                    inv = np.reciprocal(r, out=r)
                    np.multiply(inv, inv, out=inv2)
                    # two moments per multiply: M_k = sum p r^-k, M_(k+1) = its dot with 1/r
                    for k in range(0, terms, 2):
                        moments[k] += p.sum()
                        if k + 1 < terms:
                            moments[k + 1] += odd * dot(p, inv)
                        if k + 2 < terms:
                            p *= inv2
            k = np.arange(_TERMS)
            # C(beta, k)
            binom = np.cumprod(np.concatenate(([1.0], (beta - k[:-1]) / (k[:-1] + 1.0))))
            self.coef = binom * moments * (-1.0) ** k  # the series in d
        # polyder's numbers (j c_j) without its call overhead, which showed once per build
        self.dcoef = self.coef[1:] * np.arange(1.0, _TERMS)
        self.coef_list = self.coef.tolist()
        if not (np.all(np.isfinite(self.coef)) and self.half > 0):
            self.lo, self.hi = np.inf, -np.inf  # no m inside: full passes
    def covers(self, lo: float, hi: float) -> bool:
        return self.lo <= lo and hi <= self.hi

    def slope(self, m: float) -> float | None:
        """``sum w sign(x - m) |x - m|^(beta - 1)`` (the loc score, decreasing in m for
        beta > 1): the near values exactly, the far ones through the series' derivative (the
        cost's derivative in m is -beta times this). None outside [lo, hi]."""
        if not self.lo <= m <= self.hi:
            return None
        near = self.near
        k = int(near.searchsorted(m))
        b1 = self.beta - 1.0
        above, below = near[k:] - m, m - near[:k]
        # only the values equal to m (from index k on) have a log of zero
        above = _power(above, b1) if k < near.size and near[k] == m else _power_positive(above, b1)
        below = _power_positive(below, b1)
        if self.near_w is None:
            exact = float(np.sum(above) - np.sum(below))
        else:
            exact = dot(above, self.near_w[k:]) - dot(below, self.near_w[:k])
        far = _horner(self.dcoef.tolist(), m - self.mid)
        return exact - far / self.beta

    def at(self, m: float) -> float:
        """The cost at one loc ``m``."""
        if not self.lo <= m <= self.hi:
            full = np.abs(self.x - m) ** self.beta
            return float(full.sum() if self.w is None else dot(full, self.w))
        near = self.near
        # |x - m| of the sorted near values as one subtraction on either side of m (fl(m - x) is
        # -fl(x - m): the same numbers as the abs of the difference), into a kept work array
        k = int(near.searchsorted(m))
        if self._work is None:
            self._work = np.empty(near.size)
        r = self._work
        np.subtract(m, near[:k], out=r[:k])
        np.subtract(near[k:], m, out=r[k:])
        # only the values equal to m (from index k on) have a log of zero
        r = _power(r, self.beta) if k < near.size and near[k] == m else _power_positive(r, self.beta)
        exact = r.sum() if self.near_w is None else dot(r, self.near_w)
        return float(exact + _horner(self.coef_list, m - self.mid))

    def __call__(self, m: np.ndarray) -> np.ndarray:
        """Costs at each of ``m`` (a length-1 array: the row's loc)."""
        return np.array([self.at(mj) for mj in np.asarray(m, dtype=float).ravel()])


def _bands(x: np.ndarray, mid: float, half: float, a: int, b: int):
    """The far values ``x[:a]`` and ``x[b:]`` of a sorted row split into index ranges by their
    distance from ``mid``: (start, stop, terms), the values of a range at least
    ``(_REACH + 1) ** (_TERMS / terms)`` half-lengths away (``_TERMS`` terms for the nearest)."""
    # each band's reach, farthest first: the values below mid - reach, and those above mid + reach
    # (one search per side for all bands)
    edges = _EDGES
    cuts_lo = np.minimum(np.searchsorted(x, mid - _EDGE_REACH * half, "left"), a).tolist()
    cuts_hi = np.maximum(np.searchsorted(x, mid + _EDGE_REACH * half, "right"), b).tolist()
    out = []
    for j, (terms, _) in enumerate(edges):
        # lower side: from the next band's cut (or 0) up to this band's cut
        start = cuts_lo[j + 1] if j + 1 < len(edges) else 0
        out.append((start, cuts_lo[j], terms))
        stop = cuts_hi[j + 1] if j + 1 < len(edges) else x.size
        out.append((cuts_hi[j], stop, terms))
    return [band for band in out if band[1] > band[0]]


def _power(a: np.ndarray, beta: float) -> np.ndarray:
    """``a ** beta`` in place for a >= 0, as exp(beta log a): numpy's vectorized log and exp
    take ~1.6 ns a value where ``**`` calls the scalar pow (~2.5-5 ns); the result is within a
    few units of rounding (0 stays 0)."""
    with np.errstate(divide="ignore"):
        np.log(a, out=a)
    np.multiply(a, beta, out=a)
    return np.exp(a, out=a)


def _power_positive(a: np.ndarray, beta: float) -> np.ndarray:
    """``_power`` for a > 0 (no log of zero to silence): the same numbers, without the cost of
    entering an error-state context, which showed in evaluations of a few thousand values."""
    np.log(a, out=a)
    np.multiply(a, beta, out=a)
    return np.exp(a, out=a)


def _horner(coef: list[float], d: float) -> float:
    """``np.polynomial.polynomial.polyval(d, coef)`` for one point, with the same operations
    in the same order (so the same rounding), without its array overhead."""
    out = coef[-1] + d * 0.0
    for c in coef[-2::-1]:
        out = c + out * d
    return out
