"""Global search over loc for the generalized normal below beta = 1, one sample at a time.

Below beta = 1 the likelihood has a cusp at every data value and is concave between them, so the
best loc is a data value, and many are local maxima. A bracketed search from the median lands on
a nearby one, which fell 2 nats short of scipy's on 40 heavy-tailed values and 15 nats short on
1e5 Gaussians with three outliers (the best loc 468 ranks away). Here the 2,048 data values
nearest the current loc are all tried, then beta is re-optimized at the best one, alternating
until neither moves.

Only ``GenNorm.fit`` and ``GenNorm.fit_weighted`` (the fit reported for a tensor) use this;
``fit_rows``, with which the KS null tables are simulated, keeps the local search. A weighted
sample (distinct values with counts) is searched as its expansion ``np.repeat(x, w)`` would be:
the candidates are the distinct values among the expanded sample's ``_CANDIDATES`` nearest in
rank, each value's cost carries its count.
"""

from __future__ import annotations

import functools

import numpy as np

from . import weighted
from .gennorm_local import LocalCost, _power

_CANDIDATES = 2048  # data values nearest the current loc (in rank) tried as loc
# values per block of candidates x data: 1 MB of float64, so a block's passes (subtract, abs,
# log, multiply, exp, sum) stay in the core's L2 cache; each candidate's row sum is the same
# whatever the block
_BLOCK = 1 << 17
# Beta's relative change after a move below which the data values are not ranked again: the
# costs' ranking moves with beta only through differences of order (change) x (cost gap).
_BETA_SETTLED = 1e-6
_GROUP = 128  # candidates per block whose near values are summed exactly (``_near_costs``)
_SUPER = 4 * _GROUP  # candidates per block whose farther near values share one interpolant
_GROUP_REACH = 2.0


@functools.cache
def _chebyshev(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` Chebyshev nodes of the first kind on [-1, 1] and their barycentric weights."""
    theta = np.pi * (np.arange(k) + 0.5) / k
    return np.cos(theta), (-1.0) ** np.arange(k) * np.sin(theta)


def _interpolate(at_nodes: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The polynomial through ``at_nodes`` (values at the ``_chebyshev`` nodes) at the points
    ``t`` in [-1, 1]: the barycentric formula, stable at Chebyshev nodes, as one (point x node)
    matrix (a Chebyshev series' recurrence costs a few array operations per coefficient)."""
    nodes, weights = _chebyshev(at_nodes.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = weights / (t[:, None] - nodes)
        out = np.einsum("ij,j->i", q, at_nodes) / q.sum(axis=1)
    on_node = ~np.isfinite(out)
    if on_node.any():
        out[on_node] = at_nodes[np.argmin(np.abs(t[on_node, None] - nodes), axis=1)]
    return out


def _exact_costs(values: np.ndarray, cand: np.ndarray, beta: float,
                 w: np.ndarray | None = None) -> np.ndarray:
    """sum |values - c|^beta (weighted by ``w``) for every candidate c, in blocks of candidates."""
    per_block = max(1, _BLOCK // max(values.size, 1))
    cost = np.empty(cand.size)
    # one work block, filled in place: a fresh block-sized temporary costs page faults
    work = np.empty((min(per_block, cand.size), values.size))
    for i in range(0, cand.size, per_block):
        c = cand[i:i + per_block, None]
        block = work[:c.shape[0]]
        np.subtract(values[None, :], c, out=block)
        np.abs(block, out=block)
        _power(block, beta)
        if w is None:
            cost[i:i + per_block] = block.sum(axis=1)
        else:
            cost[i:i + per_block] = np.einsum("ij,j->i", block, w)
    return cost


def _near_costs(values: np.ndarray, cand: np.ndarray, beta: float,
                w: np.ndarray | None = None) -> np.ndarray:
    """``_exact_costs`` for many sorted candidates amid sorted values, to rounding, on two levels:
    for each block of ``_SUPER`` candidates the values beyond ``_GROUP_REACH`` half-widths of the
    block go through a Chebyshev interpolant on the block (``_grouped`` with one group), and the
    others through ``_grouped`` on groups of ``_GROUP`` candidates. Each value's interpolant is
    then fitted on as few nodes' passes as its distance allows."""
    if cand.size <= 2 * _GROUP:
        return _exact_costs(values, cand, beta, w)
    cost = np.empty(cand.size)
    for i in range(0, cand.size, _SUPER):
        block = cand[i:i + _SUPER]
        split = _reach(values, block) if block.size > 2 * _GROUP else None
        if split is None:
            cost[i:i + _SUPER] = _grouped(values, block, beta, w, _GROUP)
            continue
        lo, hi = split
        inner = _grouped(values[lo:hi], block, beta, None if w is None else w[lo:hi], _GROUP)
        cost[i:i + _SUPER] = inner + _smooth(values, lo, hi, block, beta, w)
    return cost


def _reach(values: np.ndarray, block: np.ndarray) -> tuple[int, int] | None:
    """The index range of ``values`` within ``_GROUP_REACH`` half-widths of the sorted candidates
    ``block``; None where the block has no width (ties) or too few values lie outside."""
    a, b = float(block[0]), float(block[-1])
    half = 0.5 * (b - a)
    lo = int(np.searchsorted(values, a - _GROUP_REACH * half, "left"))
    hi = int(np.searchsorted(values, b + _GROUP_REACH * half, "right"))
    if not half > 0 or hi - lo > values.size // 2:
        return None
    return lo, hi


def _smooth(values: np.ndarray, lo: int, hi: int, block: np.ndarray, beta: float,
            w: np.ndarray | None, reach: float = 1.0 + _GROUP_REACH) -> np.ndarray:
    """sum w |v - c|^beta over the sorted values outside ``values[lo:hi]`` for each candidate c of
    ``block``, every such value at least ``reach`` half-widths from the block's middle (``_reach``:
    3): Chebyshev interpolants, one per band of distance [d, 2d) in half-widths, on as many
    nodes as make it exact to rounding there (``_nodes``): the farther a value, the fewer the
    passes over it."""
    a, b = float(block[0]), float(block[-1])
    mid, half = 0.5 * (a + b), 0.5 * (b - a)
    t = (block - mid) / half
    cost = np.zeros(block.size)
    d = reach
    while lo > 0 or hi < values.size:
        # the last band (beyond 2^12 half-widths: a window of tied values) takes what is left
        last = d > 4096.0 * reach
        left = 0 if last else int(np.searchsorted(values[:lo], mid - 2.0 * d * half, "left"))
        right = values.size if last else hi + int(np.searchsorted(values[hi:], mid + 2.0 * d * half,
                                                                     "right"))
        if left < lo or right > hi:
            part = np.concatenate([values[left:lo], values[hi:right]])
            part_w = None if w is None else np.concatenate([w[left:lo], w[hi:right]])
            k = _nodes(d)
            cost += _interpolate(_exact_costs(part, mid + half * _chebyshev(k)[0], beta, part_w), t)
        lo, hi, d = left, right, 2.0 * d
    return cost


@functools.cache
def _nodes(d: float) -> int:
    """Chebyshev nodes that interpolate sum |v - c|^beta over values v at least ``d``
    half-widths from the middle to 1e-17 relative: the error falls like rho^-k with rho =
    d + sqrt(d^2 - 1), the ellipse through the nearest singularity (32 nodes at d = 2, 11 at 24)."""
    return int(np.ceil(17.0 * np.log(10.0) / np.log(d + np.sqrt(d * d - 1.0))))


def _grouped(values: np.ndarray, cand: np.ndarray, beta: float, w: np.ndarray | None,
             group: int) -> np.ndarray:
    """``_exact_costs`` by groups of ``group`` candidates: the values within ``_GROUP_REACH``
    half-widths of a group summed exactly, the others through ``_smooth``."""
    cost = np.empty(cand.size)
    for i in range(0, cand.size, group):
        block = cand[i:i + group]
        split = _reach(values, block)
        if split is None:
            cost[i:i + group] = _exact_costs(values, block, beta, w)
            continue
        lo, hi = split
        cost[i:i + group] = (_exact_costs(values[lo:hi], block, beta, None if w is None else w[lo:hi])
                             + _smooth(values, lo, hi, block, beta, w))
    return cost


def _outer_costs(x: np.ndarray, cand: np.ndarray, beta: float, near_lo: int, near_hi: int,
                 w: np.ndarray | None = None) -> np.ndarray:
    """sum w |v - c|^beta over every value v outside ``x[near_lo:near_hi]`` (the candidates'
    near window), for each candidate c, to rounding: the values within ``_REACH`` half-widths of
    the candidates through ``_smooth`` (exact costs at Chebyshev nodes), the farther ones
    through ``LocalCost``'s binomial series about the window's middle (one power pass). Every
    value counts exactly: a strided sample of them (a far term off by 1e-5 nats between
    neighbouring candidates) made the chosen data value depend on the search's path."""
    lo, hi = float(cand[0]), float(cand[-1])
    series = LocalCost(x, beta, lo, hi, w)
    if not series.covers(lo, hi):  # overflowing series (a window of ~1e-300): nodes on every value
        a, b, outer = 0, x.size, np.zeros(cand.size)
    else:
        a, b = series.near_range
        a, b = min(a, near_lo), max(b, near_hi)
        outer = np.polynomial.polynomial.polyval(cand - series.mid, series.coef)
    if a < near_lo or near_hi < b:  # the values outside the near window are 2 half-widths away
        outer = outer + _smooth(x[a:b], near_lo - a, near_hi - a, cand, beta,
                                None if w is None else w[a:b], reach=2.0)
    return outer


def best_data_loc(x: np.ndarray, beta: float, center: float, w: np.ndarray | None = None) -> float:
    """The data value that minimizes sum|x - c|^beta, among the ``_CANDIDATES`` values of the
    sorted sample ``x`` nearest ``center`` in rank (all of them in smaller samples).

    The values within a window's width of the candidates are summed exactly for each candidate
    (the cusps, ``_near_costs``); the others only add a smooth function of c, from exact costs
    at interpolation nodes and one series pass (``_outer_costs``). Every value counts: the
    costs are the full sums to ~1e-15, so the choice does not depend on the search's path.
    ``w``: a count per (distinct) value."""
    if w is not None:
        return _best_weighted_loc(x, w, beta, center)
    n = x.size
    m = min(n, _CANDIDATES)
    k = int(np.searchsorted(x, center))
    lo = max(0, min(k - m // 2, n - m))
    cand = x[lo:lo + m]
    width = float(cand[-1] - cand[0])
    if m == n or not width > 0:
        return float(cand[int(np.argmin(_exact_costs(x, cand, beta)))])
    near_lo = int(np.searchsorted(x, cand[0] - 0.5 * width, "left"))
    near_hi = int(np.searchsorted(x, cand[-1] + 0.5 * width, "right"))
    cost = _near_costs(x[near_lo:near_hi], cand, beta)
    if near_lo > 0 or near_hi < n:
        cost += _outer_costs(x, cand, beta, near_lo, near_hi)
    return float(cand[int(np.argmin(cost))])


def _best_weighted_loc(x: np.ndarray, w: np.ndarray, beta: float, center: float) -> float:
    """``best_data_loc`` of ``np.repeat(x, w)`` on the distinct values ``x``: the same candidate
    values, near window and far values (positions in the expanded sample map to distinct values
    through the cumulative counts)."""
    n = weighted.total(w)
    m = min(n, _CANDIDATES)
    ends = np.cumsum(w)
    first = np.concatenate([[0.0], ends[:-1]])  # expanded position of each value's first copy
    k = int(first[np.searchsorted(x, center)]) if center <= x[-1] else n
    lo = max(0, min(k - m // 2, n - m))
    i0, i1 = np.searchsorted(ends, [float(lo), float(lo + m - 1)], "right")
    cand = x[i0:i1 + 1]
    width = float(cand[-1] - cand[0])
    if m == n or not width > 0:
        return float(cand[int(np.argmin(_exact_costs(x, cand, beta, w)))])
    near_lo = int(np.searchsorted(x, cand[0] - 0.5 * width, "left"))
    near_hi = int(np.searchsorted(x, cand[-1] + 0.5 * width, "right"))
    cost = _near_costs(x[near_lo:near_hi], cand, beta, w[near_lo:near_hi])
    if near_lo > 0 or near_hi < x.size:
        cost += _outer_costs(x, cand, beta, near_lo, near_hi, w)
    return float(cand[int(np.argmin(cost))])


def global_cusp_fit(x: np.ndarray, loc: float, beta: float, ll: float, beta_newton,
                    max_rounds: int = 10, w: np.ndarray | None = None):
    """Alternate the best data value as loc and beta's Newton at that loc, from (loc, beta) with
    log-likelihood ``ll``; returns (loc, beta, s, ll, d2) as length-1 arrays, or None when nothing
    better than ``ll`` is found (the local fit stands). ``w``: a count per (distinct) value.
    ``beta_newton``: ``gennorm_fit._beta_newton`` (told that the row is sorted)."""
    row = x[np.newaxis, :]
    best = None
    for _ in range(max_rounds):
        new_loc = best_data_loc(x, beta, loc, w)
        if new_loc == loc:  # beta is already Newton's at this loc: no gain past the bar below
            break
        b, s, new_ll, d2 = beta_newton(row, np.array([new_loc]), np.array([beta]), w=w,
                                       sorted_row=True)
        if not new_ll[0] > ll * (1 + 1e-14 * np.sign(ll)) + 1e-12:
            break
        gain = float(new_ll[0]) - ll
        moved = abs(float(b[0]) - beta)
        loc, beta, ll = new_loc, float(b[0]), float(new_ll[0])
        best = (np.array([loc]), b, s, new_ll, d2)
        # Smooth in loc again (the local search was right), a gain below the promised 1e-9
        # relative accuracy, or beta nearly where the search ranked the data values (a start
        # off the data, such as a strided optimum, gains a lot in one move): another round
        # would cost a pass for nothing.
        if beta >= 1.0 or gain <= 1e-9 * abs(ll) or moved <= _BETA_SETTLED * beta:
            break
    return best
