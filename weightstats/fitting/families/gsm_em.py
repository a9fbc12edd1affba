"""Expectation-maximization for the Gaussian scale mixture (``gsm``), vectorized over rows.

The model: K Gaussian components with one common location ``loc``, scales ``s_k`` and weights
``w_k``. Each EM cycle is one pass over the data that returns, per row and component, the
responsibility sums N_k = Σγ_k, D1_k = Σγ_k·d and D2_k = Σγ_k·d² (d = x - loc), and the exact
log-likelihood at the parameters the pass was made at. The M-step is an ECM step (Meng & Rubin
1993): first the location given the scales (a weighted mean, weights Σ_k γ_k / s_k²), then scales
and weights given that location, both in closed form; every step increases the likelihood.

EM alone crawls where components overlap (and scale mixtures with a common centre always
overlap), so cycles are accelerated by SQUAREM (Varadhan & Roland 2008): two EM steps, an
extrapolation along them, and one EM step from there, kept only if the likelihood did not drop
(else the plain second EM step is kept), so the ascent stays monotone.

Densities are evaluated relative to the broadest component (kept last): its exponent is taken out
of every term, so the remaining factors exp(c_k - a_k·d²) with a_k >= 0 can neither overflow nor
all underflow, and log f = log(broadest term) + log Σ_k(factor) needs one ``log`` per value.

Degenerate components. A component whose scale shrinks onto one value (a spike, or a lone
observation) would make the likelihood unbounded. Every scale is therefore floored at
``FLOOR`` times the row's robust spread (interquartile range / 1.349): the likelihood is bounded,
the M-step under the floor is still the constrained maximum (the expected log-likelihood is
unimodal in each scale), and a component that stops at the floor is reported (``at_bound``). A
real component 1,000 times narrower than the bulk is a point mass in all but name; exact point
masses are split off before fitting (``fitting.atoms``). Weights are floored at ``W_FLOOR``, which
keeps the relative factors finite; a component that needs less weight than that adds nothing.
"""

from __future__ import annotations

import numpy as np

from .base import CHUNK, row_dot

FLOOR = 1e-3
MAX_SCALE = 1e60  # in robust units: larger scales would overflow s⁴ in the Newton step
W_FLOOR = 1e-10
_LOG_2PI = float(np.log(2.0 * np.pi))
_IQR_TO_SD = 1.3489795003921634  # interquartile range of the standard normal


def robust_unit(x: np.ndarray) -> np.ndarray:
    """Robust spread of each sorted row: IQR / 1.349, the RMS deviation from the median where
    the quartiles tie, 1 where the row is constant (its fit then sits at the floor)."""
    n = x.shape[1]
    iqr = (x[:, (3 * (n - 1)) // 4] - x[:, (n - 1) // 4]) / _IQR_TO_SD
    bad = ~(iqr > 0)
    if bad.any():
        med = x[bad, n // 2]
        with np.errstate(over="ignore"):
            rms = np.sqrt(np.mean((x[bad] - med[:, None]) ** 2, axis=1))
        iqr[bad] = np.where(rms > 0, rms, 1.0)
    return iqr


def _blocks(rows: int, n: int):
    """(row slice, column slice) pairs covering a (rows, n) array with about CHUNK values each."""
    per = max(1, CHUNK // max(n, 1))
    for r0 in range(0, rows, per):
        for c0 in range(0, n, CHUNK):
            yield slice(r0, r0 + per), slice(c0, c0 + CHUNK)


def e_pass(x: np.ndarray, loc: np.ndarray, s: np.ndarray, w: np.ndarray, stats: bool = True,
           weight: np.ndarray | None = None):
    """Log-likelihood per row at (loc, s, w) and, with ``stats``, the sums N, D1, D2 (rows, K).

    ``s`` must be sorted ascending per row (the last component is the broadest). ``weight``
    (one per column) counts each value that many times: order statistics standing for the
    values around them.
    """
    rows, n = x.shape
    total_weight = n if weight is None else float(weight.sum())
    k = s.shape[1]
    s_top, w_top = s[:, -1], w[:, -1]
    a = 0.5 * (1.0 / s[:, :-1] ** 2 - 1.0 / s_top[:, None] ** 2)  # >= 0
    c = np.log(w[:, :-1] / s[:, :-1]) - np.log(w_top / s_top)[:, None]
    half_inv_top = 0.5 / s_top**2
    ll = total_weight * (np.log(w_top / s_top) - 0.5 * _LOG_2PI)
    n_sum = np.zeros((rows, k))
    d1 = np.zeros((rows, k))
    d2 = np.zeros((rows, k))
    for rs, cs in _blocks(rows, n):
        d = x[rs, cs] - loc[rs, None]
        q = d * d
        terms = []
        total = np.ones_like(q)
        for j in range(k - 1):
            e = q * (-a[rs, j:j + 1])
            e += c[rs, j:j + 1]
            np.exp(e, out=e)
            total += e
            terms.append(e)
        wt = None if weight is None else weight[cs]
        if wt is None:
            ll[rs] += np.log(total).sum(axis=1) - half_inv_top[rs] * q.sum(axis=1)
        else:
            ll[rs] += (np.einsum("rm,m->r", np.log(total), wt)
                       - half_inv_top[rs] * np.einsum("rm,m->r", q, wt))
        if not stats:
            continue
        inv = np.divide(1.0, total, out=total)
        if wt is not None:
            inv *= wt  # responsibilities times weights from here on
        terms.append(inv)  # the broadest component's responsibility is 1 / total
        for j, e in enumerate(terms):
            if j < k - 1:
                e *= inv
            n_sum[rs, j] += e.sum(axis=1)
            d1[rs, j] += row_dot(e, d)
            d2[rs, j] += row_dot(e, q)
    return ll, n_sum, d1, d2


def sort_components(s: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Components ordered by scale, ascending, per row."""
    order = np.argsort(s, axis=1, kind="stable")
    return np.take_along_axis(s, order, 1), np.take_along_axis(w, order, 1)


def _m_step(n: int, loc, s, n_sum, d1, d2, floor):
    """ECM update: location given scales, then scales and weights given the new location."""
    inv_s2 = 1.0 / s**2
    delta = (d1 * inv_s2).sum(axis=1) / (n_sum * inv_s2).sum(axis=1)
    dl = delta[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (d2 - 2.0 * dl * d1 + dl * dl * n_sum) / n_sum
    # A component that lost all its values keeps its scale (its weight sits at the floor).
    new_s = np.where(n_sum > 1e-300, np.sqrt(np.maximum(var, 0.0)), s)
    new_s = np.maximum(new_s, floor[:, None])
    new_w = np.maximum(n_sum / n, W_FLOOR)
    new_w /= new_w.sum(axis=1, keepdims=True)
    new_s, new_w = sort_components(new_s, new_w)
    return loc + delta, new_s, new_w


def gradient(n: int, s, w, n_sum, d1, d2, floor) -> np.ndarray:
    """Score per row in (loc·unit, log s_k, softmax logits of w), divided by n: zero at a maximum
    (rows, 2K+1); a scale or weight held at its floor counts as stationary where the score points
    below it. The location entry is made unit-free by the caller."""
    g_loc = (d1 / s**2).sum(axis=1)[:, None]
    g_s = d2 / s**2 - n_sum
    g_s[(s <= floor[:, None] * (1 + 1e-12)) & (g_s < 0)] = 0.0
    g_w = n_sum - n * w
    g_w[(w <= W_FLOOR * (1 + 1e-6)) & (g_w < 0)] = 0.0
    return np.concatenate([g_loc, g_s, g_w], axis=1) / n


def _pack(loc, s, w, unit):
    return np.concatenate([(loc / unit)[:, None], np.log(s), np.log(w)], axis=1)


def _unpack(p, unit, floor):
    k = (p.shape[1] - 1) // 2
    loc = p[:, 0] * unit
    # An extrapolation may overshoot far (alpha up to -1e4 on a flat likelihood): scales stay
    # within [floor, 1e60 units], where s² and s⁴ are finite; the likelihood check rejects it.
    log_s = np.clip(p[:, 1:1 + k], np.log(floor)[:, None], np.log(MAX_SCALE * unit)[:, None])
    s = np.maximum(np.exp(log_s), floor[:, None])
    w = np.exp(p[:, 1 + k:] - p[:, 1 + k:].max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    w = np.maximum(w, W_FLOOR)
    w /= w.sum(axis=1, keepdims=True)
    s, w = sort_components(s, w)
    return loc, s, w


def collapsed(s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rows whose K components describe a law with fewer: two scales within 0.1% or a weight
    below 1e-6. Such a fit sits on the (K-1)-component model, where the K-component likelihood
    is flat and EM crawls; its log-likelihood is that of a smaller model, which BIC then prefers."""
    return (np.diff(np.log(s), axis=1) < 1e-3).any(axis=1) | (w < 1e-6).any(axis=1)


def squarem(x: np.ndarray, loc, s, w, unit, floor, *, max_cycles: int = 500,
            tol: float = 1e-13, weight: np.ndarray | None = None):
    """Maximize the likelihood of every row from (loc, s, w) by SQUAREM-accelerated ECM.

    A row stops when a cycle gains less than ``tol`` nats per value or (loc/unit, log s, log w)
    move by less than 1e-9, when it has ``collapsed`` onto fewer components, or after
    ``max_cycles``. Returns (loc, s, w, loglik, converged) with
    the log-likelihood computed at exactly the returned parameters; ``converged`` also asks the
    score there (per value, unit-free) to be below 1e-7. ``weight``: see ``e_pass``.
    """
    rows, n = x.shape
    n = n if weight is None else float(weight.sum())
    loc, s, w = loc.copy(), s.copy(), w.copy()
    ll = np.full(rows, -np.inf)
    grad = np.full((rows, 2 * s.shape[1] + 1), np.inf)
    done = np.zeros(rows, bool)
    prev = np.full(rows, -np.inf)
    for _ in range(max_cycles):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        xa = x if act.size == rows else x[act]
        ua, fa = unit[act], floor[act]
        l0, s0, w0 = loc[act], s[act], w[act]
        ll0, *sums = e_pass(xa, l0, s0, w0, weight=weight)
        g = gradient(n, s0, w0, *sums, fa)
        g[:, 0] *= ua
        ll[act], grad[act] = ll0, g
        l1, s1, w1 = _m_step(n, l0, s0, *sums, fa)
        ll1, *sums = e_pass(xa, l1, s1, w1, weight=weight)
        l2, s2, w2 = _m_step(n, l1, s1, *sums, fa)
        p0, p1, p2 = (_pack(*t, ua) for t in ((l0, s0, w0), (l1, s1, w1), (l2, s2, w2)))
        r, v = p1 - p0, p2 - 2.0 * p1 + p0
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = -np.sqrt((r * r).sum(axis=1) / (v * v).sum(axis=1))
        alpha = np.clip(np.nan_to_num(alpha, nan=-1.0), -1e4, -1.0)[:, None]
        le, se, we = _unpack(p0 - 2.0 * alpha * r + alpha * alpha * v, ua, fa)
        lle, *sums = e_pass(xa, le, se, we, weight=weight)
        l3, s3, w3 = _m_step(n, le, se, *sums, fa)
        take = (lle >= ll1)[:, None]
        loc[act] = np.where(take[:, 0], l3, l2)
        s[act] = np.where(take, s3, s2)
        w[act] = np.where(take, w3, w2)
        gain = ll0 - prev[act]
        prev[act] = ll0
        still = ((gain > tol * n) & (np.abs(p2 - p0).max(axis=1) > 1e-9)
                 & ~collapsed(s0, w0))
        # A finished row keeps the parameters its log-likelihood was computed at.
        fin = act[~still]
        loc[fin], s[fin], w[fin] = l0[~still], s0[~still], w0[~still]
        done[fin] = True
    if not done.all():  # rows out of cycles: evaluate where they stand
        act = np.flatnonzero(~done)
        xa = x if act.size == rows else x[act]
        ll_a, *sums = e_pass(xa, loc[act], s[act], w[act], weight=weight)
        g = gradient(n, s[act], w[act], *sums, floor[act])
        g[:, 0] *= unit[act]
        ll[act], grad[act] = ll_a, g
    converged = done & (np.abs(grad).max(axis=1) < 1e-7) & ~collapsed(s, w)
    return loc, s, w, ll, converged
