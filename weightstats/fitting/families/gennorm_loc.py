"""The generalized normal's loc given beta: the bracketed searches of the coordinate ascent
(``gennorm_fit.fit_gennorm_rows`` and the long-row rounds).

* Illinois (regula falsi) on the loc score where the cost is smooth (beta > 1.05);
* golden-section search below, where ``sum|x - loc|^beta`` has a cusp at every data value, then
  onto the best neighbouring data value (``_snap_to_data``).

One row's costs and slopes can come from the values near the bracket (``gennorm_local.LocalCost``)
instead of passes over the row.
"""

from __future__ import annotations

import numpy as np

from .base import CHUNK, dot, row_sum
from .gennorm_local import LocalCost, _power

_GOLD = (np.sqrt(5.0) - 1.0) / 2.0
_GOLD_F = float(_GOLD)


def _abs_power_sum(x: np.ndarray, beta: np.ndarray, loc: np.ndarray,
                   w: np.ndarray | None = None) -> np.ndarray:
    """Per-row sum |x - loc|^beta (weighted by ``w`` per column), in column chunks."""
    if w is None:
        return row_sum(x, lambda c: np.abs(c - loc[:, None]) ** beta[:, None])
    return sum(np.einsum("ij,j->i", np.abs(x[:, i:i + CHUNK] - loc[:, None]) ** beta[:, None],
                         w[i:i + CHUNK]) for i in range(0, x.shape[1], CHUNK))


def _snap_to_data(x: np.ndarray, beta: np.ndarray, loc: np.ndarray,
                  w: np.ndarray | None = None, cost=None) -> np.ndarray:
    """The better of ``loc`` and the data values on either side of it, per row.

    Below beta = 1, sum|x - loc|^beta is concave between consecutive data values, so its minimum
    sits on a data value, which a bracketing search only approaches. Close is not enough when many
    values tie (pruned weights: an atom at zero) -- 3e-10 away from a 30% atom cost 40% of the
    log-likelihood in a test. ``cost``: one row's sum|x - m|^beta as a function of m (a
    ``gennorm_local.LocalCost``), instead of passes over the row.
    """
    n = x.shape[1]
    rows = np.arange(x.shape[0])
    k = np.clip([np.searchsorted(row, m) for row, m in zip(x, loc, strict=True)], 1, n - 1)
    candidates = np.stack([loc, x[rows, k - 1], x[rows, k]], axis=1)
    if cost is None:
        costs = np.stack([_abs_power_sum(x, beta, candidates[:, j], w) for j in range(3)], axis=1)
    else:
        costs = np.stack([cost(candidates[:, j]) for j in range(3)], axis=1)
    return candidates[rows, np.argmin(costs, axis=1)]


def _loc_golden(x: np.ndarray, beta: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                rel_tol: float = 1e-10, w: np.ndarray | None = None, local=None) -> np.ndarray:
    """Minimize sum|x - loc|^beta over loc in [lo, hi] per row by golden-section search.
    ``local``: one row's cost on [lo, hi] (``gennorm_local.LocalCost``) instead of passes."""
    def cost(m):
        return _abs_power_sum(x, beta, m, w) if local is None else local(m)

    if x.shape[0] == 1:
        return np.array([_loc_golden_row(x, beta, float(lo[0]), float(hi[0]), rel_tol, w, local)])
    c = hi - _GOLD * (hi - lo)
    d = lo + _GOLD * (hi - lo)
    fc, fd = cost(c), cost(d)
    width0 = np.maximum(hi - lo, 1e-300)
    # Each iteration shrinks the bracket by 0.618; the cap stops at floating-point resolution.
    for _ in range(int(np.ceil(np.log(rel_tol) / np.log(_GOLD))) + 2):
        if not np.any(hi - lo > rel_tol * width0):
            break
        left = fc < fd
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        new = np.where(left, hi - _GOLD * (hi - lo), lo + _GOLD * (hi - lo))
        fnew = cost(new)
        c, d, fc, fd = (np.where(left, new, d), np.where(left, c, new),
                        np.where(left, fnew, fd), np.where(left, fc, fnew))
        c, d = np.minimum(c, d), np.maximum(c, d)
        fc, fd = np.where(c == new, fnew, fc), np.where(d == new, fnew, fd)
    return 0.5 * (lo + hi)


def _loc_golden_row(x: np.ndarray, beta: np.ndarray, lo: float, hi: float, rel_tol: float,
                    w: np.ndarray | None, local) -> float:
    """``_loc_golden`` for one row in Python floats: the same operations in the same order
    (so the same numbers), without the array overhead that dominates one row's iterations.

    With ``local`` costs and beta <= 1 the search stops as soon as the bracket holds at most one
    distinct data value: the cost is concave between data values, so its minimum over the
    bracket is that value or an end, and the rest of the search could only approach one of
    them. The best of that value and the data values just outside the bracket is returned (the
    caller's snap to the data then tries its neighbours too)."""
    if local is None:
        def cost(m):
            return float(_abs_power_sum(x, beta, np.array([m]), w)[0])
    else:
        cost = local.at
    row = x[0]
    early = local is not None and float(beta[0]) <= 1.0
    c = hi - _GOLD_F * (hi - lo)
    d = lo + _GOLD_F * (hi - lo)
    fc, fd = cost(c), cost(d)
    width0 = max(hi - lo, 1e-300)
    for _ in range(int(np.ceil(np.log(rel_tol) / np.log(_GOLD))) + 2):
        if not hi - lo > rel_tol * width0:
            break
        if early:
            a, b = int(np.searchsorted(row, lo, "right")), int(np.searchsorted(row, hi, "left"))
            if b == a or row[a] == row[b - 1]:
                ends = {max(a - 1, 0), min(a, row.size - 1), min(b, row.size - 1)}
                cand = [float(row[i]) for i in sorted(ends)]
                costs = [cost(m) for m in cand]
                return cand[int(np.argmin(costs))]
        if fc < fd:
            hi = d
            new = hi - _GOLD_F * (hi - lo)
            fnew = cost(new)
            c, d, fc, fd = new, c, fnew, fc
        else:
            lo = c
            new = lo + _GOLD_F * (hi - lo)
            fnew = cost(new)
            c, d, fc, fd = d, new, fd, fnew
        c, d = min(c, d), max(c, d)
        fc, fd = (fnew if c == new else fc), (fnew if d == new else fd)
    return 0.5 * (lo + hi)


def _loc_illinois(x: np.ndarray, beta: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  rel_tol: float = 1e-12, max_iter: int = 100,
                  w: np.ndarray | None = None, local: LocalCost | None = None) -> np.ndarray:
    """Root of d/dloc sum|x - loc|^beta (monotone for beta > 1) by the Illinois method.

    Only rows that have not converged are evaluated, so a batch costs what its rows need.
    ``w`` (one row only): a count per value. ``local`` (one row only): the row's cost near the
    bracket (``gennorm_local.LocalCost``), whose slope there costs the near values only.
    """
    b1_all = beta - 1.0
    counts = w
    if counts is not None:
        assert x.shape[0] == 1, "weights are for one row"

    def deriv(rows, m):
        if rows.size == 0:  # no row left to widen on this side
            return np.empty(0)
        if x.shape[0] == 1:
            # One sorted row: split at loc instead of taking signs (three passes fewer).
            if local is not None:
                slope = local.slope(float(m[0]))
                if slope is not None:
                    return np.array([slope])
            row, k, b1, mu = x[0], int(np.searchsorted(x[0], m[0])), b1_all[0], m[0]
            # powers as exp(b1 log): numpy's vectorized pair, not the scalar pow
            if counts is not None:
                above = sum(dot(_power(row[i:i + CHUNK] - mu, b1), counts[i:i + CHUNK])
                            for i in range(k, row.size, CHUNK))
                below = sum(dot(_power(mu - row[i:min(i + CHUNK, k)], b1),
                                counts[i:min(i + CHUNK, k)]) for i in range(0, k, CHUNK))
                return np.array([above - below])
            above = sum(_power(row[i:i + CHUNK] - mu, b1).sum() for i in range(k, row.size, CHUNK))
            below = sum(_power(mu - row[i:min(i + CHUNK, k)], b1).sum() for i in range(0, k, CHUNK))
            return np.array([above - below])
        r = x[rows] - m[:, None]
        return (np.sign(r) * np.abs(r) ** b1_all[rows, None]).sum(axis=1)  # decreasing in m

    every = np.arange(x.shape[0])
    if x.shape[0] == 1:
        return np.array([_loc_illinois_row(lambda m: float(deriv(every, np.array([m]))[0]),
                                           float(lo[0]), float(hi[0]), rel_tol, max_iter)])
    lo, hi = lo.copy(), hi.copy()
    f_lo, f_hi = deriv(every, lo), deriv(every, hi)
    for _ in range(60):  # widen until the root is bracketed
        bad_lo, bad_hi = np.flatnonzero(f_lo < 0), np.flatnonzero(f_hi > 0)
        if not (bad_lo.size or bad_hi.size):
            break
        span = hi - lo
        lo[bad_lo] -= span[bad_lo]
        hi[bad_hi] += span[bad_hi]
        f_lo[bad_lo], f_hi[bad_hi] = deriv(bad_lo, lo[bad_lo]), deriv(bad_hi, hi[bad_hi])
    width0 = hi - lo
    side = np.zeros(lo.shape, int)
    c = 0.5 * (lo + hi)
    rows = every
    for _ in range(max_iter):
        if rows.size == 0:
            break
        fl, fh, a, b = f_lo[rows], f_hi[rows], lo[rows], hi[rows]
        denom = fl - fh
        cr = np.where(denom > 0, a + fl * (b - a) / np.where(denom > 0, denom, 1.0), 0.5 * (a + b))
        cr = np.clip(cr, a, b)
        fc = deriv(rows, cr)
        step = np.abs(cr - c[rows])
        c[rows] = cr
        right = fc > 0  # root lies above c
        lo[rows] = np.where(right, cr, a)
        f_lo[rows] = np.where(right, fc, np.where(side[rows] == -1, 0.5 * fl, fl))
        hi[rows] = np.where(right, b, cr)
        # Illinois: halve the stale end point's value when the same side moves twice.
        f_hi[rows] = np.where(right, np.where(side[rows] == 1, 0.5 * fh, fh), fc)
        side[rows] = np.where(right, 1, -1)
        done = (fc == 0) | (step <= rel_tol * width0[rows]) | (hi[rows] - lo[rows] <= rel_tol * width0[rows])
        rows = rows[~done]
    return c


def _loc_illinois_row(deriv, lo: float, hi: float, rel_tol: float, max_iter: int) -> float:
    """``_loc_illinois`` for one row in Python floats (``deriv``: the slope at one loc): the same
    operations in the same order, so the same numbers, without the array overhead that
    dominates one row's iterations."""
    f_lo, f_hi = deriv(lo), deriv(hi)
    for _ in range(60):  # widen until the root is bracketed
        bad_lo, bad_hi = f_lo < 0, f_hi > 0
        if not (bad_lo or bad_hi):
            break
        span = hi - lo
        if bad_lo:
            lo -= span
        if bad_hi:
            hi += span
        if bad_lo:
            f_lo = deriv(lo)
        if bad_hi:
            f_hi = deriv(hi)
    width0 = hi - lo
    side = 0
    c = 0.5 * (lo + hi)
    for _ in range(max_iter):
        fl, fh, a, b = f_lo, f_hi, lo, hi
        denom = fl - fh
        cr = a + fl * (b - a) / denom if denom > 0 else 0.5 * (a + b)
        cr = min(max(cr, a), b)
        fc = deriv(cr)
        step = abs(cr - c)
        c = cr
        if fc > 0:  # root lies above c; Illinois: halve the stale end point's value when the
            # same side moves twice
            lo, f_lo, f_hi = cr, fc, (0.5 * fh if side == 1 else fh)
            side = 1
        else:
            f_lo, hi, f_hi = (0.5 * fl if side == -1 else fl), cr, fc
            side = -1
        if fc == 0 or step <= rel_tol * width0 or hi - lo <= rel_tol * width0:
            break
    return c


def _update_loc(x, beta, loc, half_width, rel_tol, w=None, local_costs=False):
    """Best loc for the current beta; Illinois where the objective is smooth, golden otherwise.
    ``local_costs`` (one row): Illinois' slopes and golden's costs from the values near the
    bracket (``gennorm_local.LocalCost``) instead of passes over the row."""
    new = np.empty_like(loc)
    smooth = beta > 1.05
    if smooth.any():
        local = None
        if local_costs and x.shape[0] == 1:
            # the slopes near the bracket (and one widening of it on either side) from the
            # values near it, as on a long row
            local = LocalCost(x[0], float(beta[0]), float(loc[0] - 3.0 * half_width[0]),
                              float(loc[0] + 3.0 * half_width[0]), w)
        new[smooth] = _loc_illinois(x[smooth], beta[smooth], loc[smooth] - half_width[smooth],
                                    loc[smooth] + half_width[smooth], rel_tol, w=w, local=local)
    if (~smooth).any():
        r = ~smooth
        lo, hi = loc[r] - half_width[r], loc[r] + half_width[r]
        local = None
        if local_costs and x.shape[0] == 1:
            # twice the bracket, so that the data values beside its ends (the snap's) are covered
            local = LocalCost(x[0], float(beta[0]), float(lo[0] - half_width[0]),
                              float(hi[0] + half_width[0]), w)
        found = _loc_golden(x[r], beta[r], lo, hi, max(rel_tol, 1e-10), w, local)
        new[r] = _snap_to_data(x[r], beta[r], found, w, local)
    return new
