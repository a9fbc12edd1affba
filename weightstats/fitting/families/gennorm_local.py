"""sum w |x - m|^beta for loc m in a narrow interval, at the cost of the values near it.

Below beta = 1.05 a long row's loc is searched by golden section on sum|x - m|^beta, thirty-odd
evaluations per round, each a pass over every value. Only the values near the interval make the
cusps; the others contribute an analytic function of m there (its nearest singularity lies
``_REACH`` half-lengths beyond the interval's edge), which a Chebyshev interpolant on ``_NODES``
nodes reproduces to ~rho^-_NODES relative (rho = a + sqrt(a^2 - 1), a = 1 + _REACH: 34^-12 =
4e-19, below the sums' own rounding). So ``_NODES`` passes over the far values build the
interpolant once, and each evaluation sums the near values exactly.
"""

from __future__ import annotations

import numpy as np

from .base import dot

_NODES = 12
_REACH = 16.0  # far values lie beyond this many half-lengths from the interval's edges
_BLOCK = 4096  # far values per block of the node passes (NODES x BLOCK stays in the cache)


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
        self.near_w = None if w is None else w[a:b]
        t = np.cos(np.pi * (np.arange(_NODES) + 0.5) / _NODES)
        nodes = self.mid + self.half * t
        values = np.zeros(_NODES)
        for part, weight in ((x[:a], None if w is None else w[:a]),
                             (x[b:], None if w is None else w[b:])):
            for i in range(0, part.size, _BLOCK):
                p = np.abs(part[None, i:i + _BLOCK] - nodes[:, None]) ** beta
                values += (p.sum(axis=1) if weight is None
                           else np.einsum("ij,j->i", p, weight[i:i + _BLOCK]))
        self.coef = np.polynomial.chebyshev.chebfit(t, values, _NODES - 1)

    def covers(self, lo: float, hi: float) -> bool:
        return self.lo <= lo and hi <= self.hi

    def __call__(self, m: np.ndarray) -> np.ndarray:
        """Costs at each of ``m`` (a length-1 array: the row's loc)."""
        out = np.empty(m.size)
        for j, mj in enumerate(np.asarray(m, dtype=float)):
            if not self.lo <= mj <= self.hi:
                full = np.abs(self.x - mj) ** self.beta
                out[j] = full.sum() if self.w is None else dot(full, self.w)
                continue
            near = np.abs(self.near - mj) ** self.beta
            exact = near.sum() if self.near_w is None else dot(near, self.near_w)
            far = np.polynomial.chebyshev.chebval((mj - self.mid) / self.half, self.coef)
            out[j] = exact + far
        return out
