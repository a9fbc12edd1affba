"""Exact one-sample Kolmogorov-Smirnov statistics with as few CDF evaluations as exactness allows.

For sorted data x_(1..n), D = max_i max(i/n - F(x_i), F(x_i) - (i-1)/n). F is monotone, so on a block
of consecutive order statistics [a, b] every F(x_i) lies in [F(x_a), F(x_b)], which bounds the block's
contribution by max(b/n - F(x_a), F(x_b) - (a+1)/n) (0-based). Evaluating F on a coarse grid gives a
lower bound on D; only blocks whose upper bound beats it are refined. The t and gennorm CDFs (incomplete
beta/gamma functions) are ~20x dearer than the rest of a fit, and this evaluates them on a few
thousand points instead of millions, with the same D to rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_EXHAUSTIVE_BELOW = 16384
_FANOUT = 64


def _block_max(cdf_vals: np.ndarray, idx: np.ndarray, n: int) -> float:
    """Max KS deviation at the given 0-based order-statistic indices."""
    return float(np.max(np.maximum((idx + 1) / n - cdf_vals, cdf_vals - idx / n)))


def ks_statistic_sorted(x: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    """KS statistic of sorted 1-D ``x`` against ``cdf``; equal to scipy.stats.kstest's to rounding."""
    n = x.size
    if n <= _EXHAUSTIVE_BELOW:
        return _block_max(cdf(x), np.arange(n), n)
    grid = np.unique(np.r_[np.arange(0, n, max(n // 1024, 2)), n - 1])
    f_grid = cdf(x[grid])
    best = _block_max(f_grid, grid, n)
    lo_idx, hi_idx = grid[:-1], grid[1:]
    f_lo, f_hi = f_grid[:-1], f_grid[1:]
    while lo_idx.size:
        upper = np.maximum(hi_idx / n - f_lo, f_hi - (lo_idx + 1) / n)
        keep = (upper > best) & (hi_idx - lo_idx > 1)
        lo_idx, hi_idx, f_lo, f_hi = lo_idx[keep], hi_idx[keep], f_lo[keep], f_hi[keep]
        if not lo_idx.size:
            break
        width = hi_idx - lo_idx
        small = width <= _FANOUT
        if small.any():
            # Evaluate every interior point of narrow candidate blocks.
            pts = np.concatenate([np.arange(a + 1, b) for a, b in zip(lo_idx[small], hi_idx[small], strict=True)])
            if pts.size:
                best = max(best, _block_max(cdf(x[pts]), pts, n))
        lo_idx, hi_idx, f_lo, f_hi = lo_idx[~small], hi_idx[~small], f_lo[~small], f_hi[~small]
        if not lo_idx.size:
            break
        # Split each wide block into _FANOUT sub-blocks and bound those.
        steps = np.linspace(0.0, 1.0, _FANOUT + 1)
        cuts = np.unique(np.round(lo_idx[:, None] + steps * (hi_idx - lo_idx)[:, None]).astype(np.int64),
                         axis=None)
        cuts = cuts.reshape(-1)
        inner = np.setdiff1d(cuts, np.r_[lo_idx, hi_idx], assume_unique=False)
        f_inner = cdf(x[inner])
        best = max(best, _block_max(f_inner, inner, n)) if inner.size else best
        # Rebuild consecutive blocks from the union of known points inside the candidate blocks.
        known = np.r_[lo_idx, hi_idx, inner]
        f_known = np.r_[f_lo, f_hi, f_inner]
        order = np.argsort(known, kind="stable")
        known, f_known = known[order], f_known[order]
        uniq, first = np.unique(known, return_index=True)
        known, f_known = uniq, f_known[first]
        # Only pairs that lie inside one former candidate block are new blocks.
        owner = np.searchsorted(hi_idx, known, side="left")
        same = (owner[:-1] == owner[1:]) & (owner[:-1] < hi_idx.size)
        same &= known[:-1] >= lo_idx[np.minimum(owner[:-1], hi_idx.size - 1)]
        lo_idx, hi_idx = known[:-1][same], known[1:][same]
        f_lo, f_hi = f_known[:-1][same], f_known[1:][same]
    return best


def ks_statistic_rows(x: np.ndarray, cdf_vals: np.ndarray) -> np.ndarray:
    """KS statistic per row given CDF values at row-sorted data (used for bootstrap tables)."""
    n = x.shape[1]
    i = np.arange(n)
    return np.maximum(((i + 1) / n - cdf_vals).max(axis=1), (cdf_vals - i / n).max(axis=1))
