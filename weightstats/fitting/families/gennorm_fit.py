"""The generalized normal's maximum-likelihood fit (the family itself: ``gennorm.GenNorm``).

Maximum likelihood by coordinate ascent on the profile likelihood, with the scale profiled out in
closed form, ``sigma^beta = beta/n * sum|x - loc|^beta``:

* beta given loc: Newton on log(beta); each step is one ``exp`` pass plus two dot products, because
  ``log|x - loc|`` is computed once per loc.
* loc given beta: a bracketed search on ``sum|x - loc|^beta`` (``gennorm_loc``: Illinois on the
  score where it is smooth, golden section below beta = 1.05 where the likelihood has cusps at the
  data points). Vectorized over rows.

For very large samples the search runs on an evenly strided subsample of the sorted data (exact
quantiles, so its optimum is within ~1/m of the full one) and is then polished on all values, by
joint Newton steps (``gennorm_newton``) where beta is well above the cusp at 1.

Below beta = 1 the likelihood has a cusp at every value, so loc's optimum is one of the data
values, and which one is a combinatorial question: the bracketed search returns the best value
near a local optimum, which can fall short of the global one by ~1e-9 of the log-likelihood (a
difference no test statistic resolves; it is the same for scipy, whose optimizer is local too).
"""

from __future__ import annotations

import threading

import numpy as np
from scipy import special

from . import weighted
from .base import (
    CHUNK,
    BatchFit,
    row_dot,
    row_median,
    strided_quantiles,
)
from .gennorm_loc import _loc_golden, _loc_illinois, _snap_to_data, _update_loc
from .gennorm_local import LocalCost
from .gennorm_newton import log_beta_derivatives, polish_newton, profile_loglik

BETA_MIN, BETA_MAX = 0.1, 20.0
_SUBSAMPLE = 16384
_CACHE_LOG_UP_TO = 1 << 23  # beyond this many values, log|x - loc| is recomputed per pass
# Joint Newton polish range: towards beta = 1 the loc curvature sum|r|^(beta-2) is dominated by the
# values nearest loc (a cusp forms at 1; Newton stalled below ~1.12 on heavy-tailed layers), and
# near the upper bound the fit must stop at the bound.
_NEWTON_BETA = (1.15, 0.5 * BETA_MAX)
# A long row's strided start tries Newton first unless its kurtosis says beta is below this.
_CUSP_START = 0.8
# A Newton step in log(beta) below this is taken without a pass to confirm it (``_taylor_step``).
_TAYLOR_STEP = 1e-6
# A long row's coordinate ascent stops once beta's relative change in a round is below this.
_ROUND_SETTLED = 1e-7
# One row's coordinate ascent (``fit_gennorm_rows``) stops after an accepted round that gained at
# most this much of the log-likelihood (a few units of its rounding).
_ROUND_GAIN = 1e-14

# One row's log|x - loc| cache is reused from call to call, per thread, up to this many values: a
# fresh array costs a page fault per 4 KiB when first written (~6 ns a value, more than the log
# itself) each time the allocator has handed the last one back to the system.
_KEEP_LOGS_UP_TO = 1 << 22
_THREAD = threading.local()

_BETA_TABLE = np.geomspace(0.2, 10.0, 400)
_KURT_TABLE = (special.gamma(5 / _BETA_TABLE) * special.gamma(1 / _BETA_TABLE)
               / special.gamma(3 / _BETA_TABLE) ** 2 - 3.0)


def _beta_from_kurtosis(kurt: np.ndarray) -> np.ndarray:
    """Invert gennorm's excess kurtosis (decreasing in beta) as a starting value."""
    k = np.clip(kurt, _KURT_TABLE[-1], _KURT_TABLE[0])
    return np.interp(k, _KURT_TABLE[::-1], _BETA_TABLE[::-1])


def _log_store(size: int) -> np.ndarray:
    """A float64 array of ``size`` values for one row's logs: this thread's kept array (grown
    as needed) up to ``_KEEP_LOGS_UP_TO`` values, else a fresh one."""
    if size > _KEEP_LOGS_UP_TO:
        return np.empty(size)
    kept = getattr(_THREAD, "logs", None)
    if kept is None or kept.size < size:
        kept = _THREAD.logs = np.empty(size)
    return kept[:size]


def _beta_newton(x: np.ndarray, loc: np.ndarray, beta: np.ndarray, max_iter: int = 60,
                 w: np.ndarray | None = None, sorted_row: bool = False):
    """Maximize the profile likelihood over beta for fixed loc (rows independent).

    Each iteration costs one ``exp`` pass over the rows still moving; a row stops as soon as its
    proposed Newton step in log(beta) is below 1e-10 (the remaining gain is ~n * 1e-20).
    ``w``: a count per column (one row: the multiset ``np.repeat(x[0], w)``). ``sorted_row``:
    ``x`` is one sorted row, so |x - loc| is one subtraction on each side of loc and the values
    equal to loc are a range (the same numbers, three operations per value fewer).
    """
    n, cols = _size(x, w), x.shape[1]
    split = sorted_row and x.shape[0] == 1
    if split:
        # values below, equal to and above loc: x[:lo], x[lo:hi], x[hi:]
        lo = int(np.searchsorted(x[0], loc[0], "left"))
        hi = int(np.searchsorted(x[0], loc[0], "right"))

    def log_abs_sorted(i):
        # fl(loc - x) is -fl(x - loc): |x - loc| exactly as the sign and abs passes make it
        part = x[0, i:i + CHUNK]
        lc = np.empty((1, part.size)) if store is None else store[np.newaxis, i:i + part.size]
        j = min(max(lo - i, 0), part.size)
        np.subtract(loc[0], part[:j], out=lc[0, :j])
        np.subtract(part[j:], loc[0], out=lc[0, j:])
        with np.errstate(divide="ignore"):
            np.log(lc, out=lc)
        z0, z1 = min(max(lo - i, 0), part.size), min(max(hi - i, 0), part.size)
        if z1 == z0:
            return lc, None
        lc[0, z0:z1] = 0.0
        zc = np.zeros(lc.shape, dtype=bool)
        zc[0, z0:z1] = True
        return lc, zc

    def log_abs(rows, i):
        if split:
            return log_abs_sorted(i)
        # every row (always, for one row): a view, not a fancy-indexed copy
        part = x[:, i:i + CHUNK] if rows.size == x.shape[0] else x[rows, i:i + CHUNK]
        # in place: each fresh chunk-sized temporary costs page faults
        lc = np.subtract(part, loc[rows, None],
                         out=None if store is None else store[np.newaxis, i:i + part.shape[1]])
        np.abs(lc, out=lc)
        zc = lc == 0
        with np.errstate(divide="ignore"):
            np.log(lc, out=lc)
        np.copyto(lc, 0.0, where=zc)
        return lc, zc

    # log|x - loc| is cached (9 bytes/value, per chunk) unless the row is huge; then it is
    # recomputed per chunk, trading one log pass per Newton step for a bounded memory footprint.
    # The first pass (every row) fills the cache chunk by chunk, each chunk's sums taken while
    # its logs are fresh in cache; a chunk without zeros keeps None for its mask.
    cache = x.size <= _CACHE_LOG_UP_TO
    # one row's cached logs are views of one kept array (a batch's are fresh per call)
    store = _log_store(cols) if cache and x.shape[0] == 1 else None
    logs, zeros = [None] * len(range(0, cols, CHUNK)), [None] * len(range(0, cols, CHUNK))

    buffers = {}  # two work arrays per chunk shape, reused by every pass

    def sums(rows, b):
        total = np.zeros((rows.size, 3))
        full = rows.size == x.shape[0]
        for k, i in enumerate(range(0, cols, CHUNK)):
            if cache:
                if logs[k] is None:
                    logs[k], zc = log_abs(rows, i)
                    zeros[k] = zc if zc is not None and zc.any() else None
                lr = logs[k] if full else logs[k][rows]
                zr = zeros[k] if full or zeros[k] is None else zeros[k][rows]
            else:
                lr, zr = log_abs(rows, i)
            if lr.shape not in buffers:
                buffers[lr.shape] = (np.empty(lr.shape), np.empty(lr.shape))
            p, pl = buffers[lr.shape]
            np.multiply(b[:, None], lr, out=p)
            np.exp(p, out=p)
            if zr is not None:
                np.copyto(p, 0.0, where=zr)
            if w is not None:  # weighting p weights all three sums
                p *= w[i:i + CHUNK]
            np.multiply(p, lr, out=pl)
            total[:, 0] += p.sum(axis=1)
            total[:, 1] += pl.sum(axis=1)
            total[:, 2] += row_dot(pl, lr)
        return total[:, 0], total[:, 1], total[:, 2]

    beta = np.clip(beta.astype(float), BETA_MIN, BETA_MAX)
    every = np.arange(x.shape[0])
    s, s1, s2 = sums(every, beta)
    ll = profile_loglik(n, beta, s)
    d2 = np.full(beta.shape, np.nan)
    if x.shape[0] == 1:
        return _newton_one_row(n, sums, beta, s, s1, s2, ll, d2, max_iter)
    rows = every
    for _ in range(max_iter):
        b = beta[rows]
        g, h = log_beta_derivatives(n, b, s[rows], s1[rows], s2[rows])
        d2[rows] = h
        step = np.where(h < 0, -g / np.where(h < 0, h, 1.0), np.sign(g) * 0.5)
        step = np.clip(step, -1.0, 1.0)
        at_edge = ((b <= BETA_MIN) & (step < 0)) | ((b >= BETA_MAX) & (step > 0))
        # A batch (the KS null tables' replicates, shipped precomputed) confirms every step with
        # a pass, so regenerating a table gives it back exactly; one row's loop above takes its
        # last tiny step from the Taylor expansion.
        moving = (np.abs(step) > 1e-10) & ~at_edge
        rows, step = rows[moving], step[moving]
        if rows.size == 0:
            break
        t = np.ones(rows.size)
        pending = np.arange(rows.size)
        for _halving in range(50):
            r = rows[pending]
            trial = np.clip(beta[r] * np.exp(t[pending] * step[pending]), BETA_MIN, BETA_MAX)
            ts, ts1, ts2 = sums(r, trial)
            tll = profile_loglik(n, trial, ts)
            ok = tll >= ll[r] - 1e-13 * np.abs(ll[r])
            acc = r[ok]
            beta[acc], s[acc], s1[acc], s2[acc], ll[acc] = trial[ok], ts[ok], ts1[ok], ts2[ok], tll[ok]
            pending = pending[~ok]
            if pending.size == 0:
                break
            t[pending] *= 0.5
        # Rows whose step could not be improved on sit at their optimum to rounding.
        rows = np.setdiff1d(rows, rows[pending]) if pending.size else rows
        if rows.size == 0:
            break
    return beta, s, ll, d2


def _newton_one_row(n, sums, beta: np.ndarray, s: np.ndarray, s1: np.ndarray, s2: np.ndarray,
                    ll: np.ndarray, d2: np.ndarray, max_iter: int):
    """``_beta_newton``'s iterations for one row (length-1 arrays, updated in place): the same
    steps in the same order, decided on numpy scalars instead of through masks and index arrays,
    whose overhead showed on short rows (tens of microseconds an iteration)."""
    one = np.zeros(1, dtype=np.intp)
    for _ in range(max_iter):
        b = beta[0]
        # numpy scalars: the powers go through the scalar pow, so the last bit of a derivative
        # can differ from a batch's
        g, h = log_beta_derivatives(n, b, s[0], s1[0], s2[0])
        d2[0] = h
        step = -g / h if h < 0 else np.sign(g) * 0.5
        step = np.clip(step, -1.0, 1.0)
        at_edge = (b <= BETA_MIN and step < 0) or (b >= BETA_MAX and step > 0)
        if not (abs(step) > 1e-10) or at_edge:
            break
        if abs(step) < _TAYLOR_STEP and h < 0:
            _taylor_step(n, one, np.array([step]), beta, s, s1, s2, ll)
            break
        t = 1.0
        for _halving in range(50):
            trial = np.clip(beta[:1] * np.exp(np.array([t * step])), BETA_MIN, BETA_MAX)
            ts, ts1, ts2 = sums(one, trial)
            tll = profile_loglik(n, trial, ts)
            if tll[0] >= ll[0] - 1e-13 * abs(ll[0]):
                beta[0], s[0], s1[0], s2[0], ll[0] = trial[0], ts[0], ts1[0], ts2[0], tll[0]
                break
            t *= 0.5
        else:  # no step improved on: the optimum to rounding
            break
    return beta, s, ll, d2


def _taylor_step(n, rows: np.ndarray, step: np.ndarray, beta: np.ndarray, s: np.ndarray,
                 s1: np.ndarray, s2: np.ndarray, ll: np.ndarray) -> None:
    """Take a tiny last Newton step in t = log(beta) on ``rows`` in place, S and S1 at its end
    from their Taylor expansions (dS/dt = beta S1, d2S/dt2 = beta S1 + beta^2 S2, dS1/dt =
    beta S2; the next terms are ~1e-16 relative): Newton's error after a step below
    ``_TAYLOR_STEP`` is ~1e-12, so the pass that would confirm it is skipped. Kept unless it
    loses more than the log-likelihood's rounding (the paths of a counted and an expanded
    sample must not part on a rounding comparison)."""
    b = beta[rows]
    new_beta = np.clip(b * np.exp(step), BETA_MIN, BETA_MAX)
    d = np.log(new_beta / b)
    bs1, bs2 = b * s1[rows], b * s2[rows]
    new_s = s[rows] + bs1 * d + 0.5 * (bs1 + b * bs2) * d * d
    new_ll = profile_loglik(n, new_beta, new_s)
    ok = (new_s > 0) & (new_ll >= ll[rows] - 1e-13 * np.abs(ll[rows]))
    acc = rows[ok]
    s1[acc] = s1[acc] + bs2[ok] * d[ok]
    beta[acc], s[acc], ll[acc] = new_beta[ok], new_s[ok], new_ll[ok]


def _size(x: np.ndarray, w: np.ndarray | None):
    """Sample size: the row length, or the total count of a weighted row."""
    return x.shape[1] if w is None else float(w.sum())


def fit_gennorm_rows(x: np.ndarray, loc0=None, beta0=None, *, rounds: int = 6,
                     rel_tol: float = 1e-12, w: np.ndarray | None = None,
                     local_costs: bool = False, first=None):
    """Coordinate ascent over (loc, beta); returns loc, beta, S, loglik, d2 (log-beta curvature).

    ``w`` (one row only): a count per value, the fit of ``np.repeat(x[0], w)`` with the same
    start (median, moments) and path. ``local_costs``: see ``_update_loc``. ``first``: the
    caller's ``_beta_newton(x, loc0, beta0, w=w)``, the first step."""
    if w is None:
        loc = row_median(x) if loc0 is None else loc0.copy()
    else:
        loc = np.array([weighted.median(x[0], weighted.positions(w))]) if loc0 is None else loc0.copy()
    if beta0 is None and w is None:
        dev = x - x.mean(axis=1, keepdims=True)
        m2 = np.mean(dev**2, axis=1)
        # dev**4 calls numpy's scalar pow (~1 ms for 16,384 values): one row squares twice;
        # batches (the shipped KS null tables' replicates) keep the start that made them
        m4 = np.mean(np.square(dev**2) if x.shape[0] == 1 else dev**4, axis=1)
        beta0 = _beta_from_kurtosis(m4 / m2**2 - 3.0)
    elif beta0 is None:
        _, m2w, m4w = weighted.moments(x[0], w)
        beta0 = _beta_from_kurtosis(np.array([m4w / m2w**2 - 3.0]))
    beta, s, ll, d2 = _beta_newton(x, loc, beta0, w=w) if first is None else first
    if w is None:
        spread = np.median(np.abs(x - loc[:, None]), axis=1) + 1e-300
    else:
        spread = np.array([weighted.unsorted_median(np.abs(x[0] - loc[0]), w)]) + 1e-300
    half_width = 0.5 * spread
    tried = []  # the bracket widths of the rounds since the state last changed
    for _ in range(rounds):
        # A round is a function of the state and the bracket width: below beta = 1 a rejected
        # proposal between two data values comes back with the same few widths, so once a width
        # repeats with the state unchanged, every further round returns this state.
        if any(np.array_equal(half_width, h) for h in tried):
            break
        tried.append(half_width)
        state = (loc, beta, s, ll, d2)
        new_loc = _update_loc(x, beta, loc, half_width, rel_tol, w, local_costs)
        moved = np.abs(new_loc - loc)
        new_beta, new_s, new_ll, new_d2 = _beta_newton(x, new_loc, beta, w=w)
        better = new_ll >= ll
        loc = np.where(better, new_loc, loc)
        beta, s, ll, d2 = (np.where(better, new_beta, beta), np.where(better, new_s, s),
                           np.where(better, new_ll, ll), np.where(better, new_d2, d2))
        # Loc barely depends on beta for near-symmetric data: stop once loc stops moving.
        if np.all(moved <= 1e-9 * spread):
            break
        # One row: a round that gained under the log-likelihood's rounding moved along a flat
        # top (loc between near-tied data values, or within 1e-9 of the spread where the
        # likelihood is flat to rounding); further rounds wander there. Batches (the shipped KS
        # null tables' replicates) keep their rounds.
        if x.shape[0] == 1 and better[0] and new_ll[0] - state[3][0] <= _ROUND_GAIN * abs(ll[0]):
            break
        half_width = np.maximum(4 * moved, 1e-6 * spread)
        after = (loc, beta, s, ll, d2)
        if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(state, after, strict=True)):
            tried = []
    return loc, beta, s, ll, d2


def _fit_long_row(x: np.ndarray, w: np.ndarray | None = None, cusp_search: bool = False):
    """Fit one long sorted row: locate the optimum on exact quantiles (an evenly strided
    subsample of the sorted values), then polish on every value. ``w``: a count per value (the
    quantiles are those of the expanded multiset). ``cusp_search``: the caller searches the data
    values near loc below beta = 1 (``gennorm_cusps.global_cusp_fit``), so there loc is left at
    the strided optimum, with beta's Newton on every value."""
    if w is None:
        stride = strided_quantiles(x, _SUBSAMPLE)
    else:
        stride = weighted.strided_quantiles(x[0], w, _SUBSAMPLE)[np.newaxis, :]
    start = None
    dev = stride[0] - stride[0].mean()
    dev2 = dev * dev  # not dev**4: numpy calls the scalar pow for it
    beta0 = _beta_from_kurtosis(np.array([np.mean(dev2 * dev2) / np.mean(dev2) ** 2 - 3.0]))
    if beta0[0] > _CUSP_START:
        # Joint Newton from the mean (not the median: a start on a data value has no loc
        # curvature), beta nudged into Newton's range: heavy tails (a t(6) has Laplace's
        # kurtosis) often fit well above it. Newton declines where the optimum lies below it.
        start = polish_newton(stride[0], float(stride[0].mean()),
                              float(np.clip(beta0[0], 1.3, 0.9 * _NEWTON_BETA[1])),
                              _NEWTON_BETA, max_steps=30)
    if start is None:
        start = fit_gennorm_rows(stride, local_costs=True)
    loc, beta = start[0], start[1]
    found = None  # beta's Newton on every value at the strided loc
    if cusp_search and beta[0] < 1.0:
        # The global search finds the best of the data values around loc, exactly; the
        # bracketed rounds below would reach one of them at the cost of several passes.
        found = _beta_newton(x, loc, beta, w=w, sorted_row=True)
        if found[0][0] < 1.0:
            return (loc, *found)
    if _NEWTON_BETA[0] < beta[0] < _NEWTON_BETA[1]:
        polished = polish_newton(x[0], float(loc[0]), float(beta[0]), _NEWTON_BETA, w=w)
        if polished is not None:
            return polished
    # Coordinate ascent: loc by a narrow bracketed search, then beta by Newton. loc and beta are
    # nearly orthogonal; skewed data couple them, so rounds repeat until the likelihood stops
    # rising, each bracketing loc within a few times its last move.
    spread = float(np.median(np.abs(stride - loc[:, None]))) + 1e-300
    # The strided sample's loc is within ~1e-4 of the spread of the full optimum (measured on
    # heavy-tailed layers); a later round re-centres on any move, so the first bracket is narrow.
    half = 4e-4 * spread
    # beta's Newton on every value at the strided loc first (the strided beta is ~5e-4 off): the
    # loc searches then run at the full data's beta to ~1e-8, so one round usually settles.
    beta, s, ll, d2 = _beta_newton(x, loc, beta, w=w, sorted_row=True) if found is None else found
    local = None  # the cost near loc, reused while the brackets stay inside its interval
    for _round in range(8):
        if beta[0] > 1.05:
            # the slope near the bracket (and one widening of it) from the near values
            local = LocalCost(x[0], float(beta[0]), float(loc[0] - 3.0 * half),
                              float(loc[0] + 3.0 * half), w)
            new_loc = _loc_illinois(x, beta, loc - half, loc + half, rel_tol=1e-7, w=w,
                                    local=local)
        else:  # cusps at the data points: a bracketing search that needs no derivative, to
            # 1e-7 of the spread (below the gap between neighbouring values of a few million),
            # then onto the best neighbouring data value
            lo, hi = float(loc[0] - half), float(loc[0] + half)
            if local is None or local.beta != beta[0] or not local.covers(lo, hi):
                # twice the bracket, so the data values beside its ends are covered too
                local = LocalCost(x[0], float(beta[0]), lo - half, hi + half, w)
            new_loc = _loc_golden(x, beta, loc - half, loc + half,
                                  rel_tol=min(0.1, 5e-8 * spread / half), w=w, local=local)
            new_loc = _snap_to_data(x, beta, new_loc, w, local)
            if new_loc[0] == loc[0]:  # beta is already Newton's at this loc
                break
        new = _beta_newton(x, new_loc, beta, w=w, sorted_row=True)
        gain = new[2][0] - ll[0]
        if gain < 0:
            break
        moved = float(abs(new_loc[0] - loc[0]))
        # loc's optimum moves with beta in proportion: a round at a beta this close to the
        # last search's would gain ~n (relative change)^2, below the likelihood's rounding
        settled = abs(new[0][0] - beta[0]) <= _ROUND_SETTLED * beta[0]
        loc, (beta, s, ll, d2) = new_loc, new
        if gain <= 1e-12 * abs(ll[0]) or settled:
            break
        half = max(4.0 * moved, 1e-7 * spread)
    return loc, beta, s, ll, d2


def _batch_fit(n: int, loc, beta, s, ll, d2) -> BatchFit:
    """BatchFit from the profile quantities: the scale in closed form, se of log(beta) from d2."""
    scale = (beta * s / n) ** (1.0 / beta)
    at_bound = (beta <= BETA_MIN * (1 + 1e-9)) | (beta >= BETA_MAX * (1 - 1e-9))
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.where((d2 < 0) & ~at_bound, np.sqrt(-1.0 / d2), np.nan)
    return BatchFit(loc, scale, beta, ll, at_bound, se)
