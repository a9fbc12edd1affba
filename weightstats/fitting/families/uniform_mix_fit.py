"""Maximum likelihood for the uniform + Student-t mixture (``uniform_mix``): coordinate ascent,
vectorized over rows.

* the smooth parameters (log scale, 1/df, logit w) by damped Newton on the mixture likelihood:
  with rho the t part's responsibility and g the t's per-value score (the Student-t module's
  log-density constants and derivatives), the score is sum rho·g and the Hessian
  sum rho·H_t + sum rho(1 - rho)·g gᵀ;
* the edges: the likelihood is discontinuous where a value crosses loc ± c and decreases in c
  between crossings, so its maximum sits with the edges on data values, and loc (which moves
  both edges) is rough on the scale of their spacing, where a smooth step fails. Each pass also
  evaluates the exact likelihood at two candidate c (the uniform's height w/(2c) held fixed,
  which decouples c from w) snapped to the order statistic inside, and at two moves of one edge
  (right and left in turn); steps double on success and shrink otherwise. At the end both edges
  go onto the outermost values inside (loc their midpoint) where that gains.

Starts: several edges (quantiles of |x - loc|) from the row's own t fit, raced on a 512-quantile
summary of each row, the best carried to 16,384 quantiles (long rows) and the full data. The
pure t (w = 0) is always a candidate too, so the reported likelihood is never below the t's:
where it wins, or the uniform's share is below 1e-4, the fit reports w = 0 (flagged).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .base import CHUNK, BatchFit, row_dot, strided_quantiles
from .student_t import DF_MIN, StudentT, _c, _c1, _c2, _log1p_q_over_nu

H_MIN, H_MAX = 0.05, 200.0  # half-width of the uniform in t scales (uniform_mix docstring)
DF_CAP = 1e6  # beyond this the t part is Gaussian to within rounding of any test statistic
_PHI_MIN, _PHI_MAX = 1.0 / DF_CAP, 1.0 / DF_MIN
_W_MAX = 1.0 - 1e-9  # w = 1 leaves values outside the uniform with zero density
W_ZERO = 1e-4  # below this share the uniform is reported as absent (w = 0, the t alone)
_MIN_INSIDE = 20  # the uniform holds at least this many values (or 1%): uniform_mix docstring
_EDGE_MARGIN = 1e-9
_SUMMARY = 512  # quantiles per row for the multi-start stage
_POLISH = 16384  # quantiles of a long row the fit converges on before the full data
_START_EDGES = (0.35, 0.6, 0.8, 0.95)  # starting c as quantiles of |x - loc|
# Long rows choose among more starts, on their exact quantiles (see ``fit_core``).
_START_EDGES_LONG = (0.35, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)
_T = StudentT()


def _t_logpdf(d: np.ndarray, sigma, nu) -> tuple[np.ndarray, np.ndarray]:
    """log t density of d = x - loc at (scale, df), and log1p(q/df) (reused for the df step)."""
    lq = _log1p_q_over_nu(d, sigma, nu)
    return _c(nu) - np.log(sigma) - 0.5 * (nu + 1.0) * lq, lq


def log_mix(d, sigma, nu, w, c) -> np.ndarray:
    """Pointwise log density of the mixture at d = x - loc (parameters broadcast against d)."""
    lt, _ = _t_logpdf(d, sigma, nu)
    with np.errstate(divide="ignore"):
        lt = lt + np.log1p(-w)
        lu = np.where(np.abs(d) <= c, np.log(w) - np.log(2.0 * c), -np.inf)
    return np.logaddexp(lt, lu)


_LAM_MIN, _LAM_MAX = float(special.logit(1e-7)), float(special.logit(_W_MAX))


def unpack(theta: np.ndarray):
    """(loc, log scale, 1/df, logit w) rows -> column vectors loc, sigma, nu, w."""
    return (theta[:, 0:1], np.exp(theta[:, 1:2]), 1.0 / theta[:, 2:3], special.expit(theta[:, 3:4]))


def _chunk_sums(d, sigma, nu, w, c, cand_c, cand_w, cand_edge, derivs: bool):
    """Sums over one chunk of d = x - loc: log-likelihood, the 18 sums the Newton step needs,
    the log-likelihood and snapped edge of each candidate edge, and the log-likelihood at each
    candidate move of one edge (``cand_edge[:, 0]`` the shift of loc, ``[:, 1]`` of c)."""
    height = w / (2.0 * c)
    a = np.abs(d)
    lq = _log1p_q_over_nu(d, sigma, nu)
    lt = _c(nu) - np.log(sigma) - 0.5 * (nu + 1.0) * lq
    with np.errstate(under="ignore"):
        t = np.exp(lt)
    log_t_w = np.log1p(-w)
    ins = a <= c
    f_in = (1.0 - w) * t + height
    lf = np.where(ins, np.log(np.where(ins, f_in, 1.0)), lt + log_t_w)
    out = [lf.sum(1)]
    cand_ll, snapped = [], []
    for k in range(0 if cand_c is None else cand_c.shape[1]):
        ck, wk = cand_c[:, k:k + 1], cand_w[:, k:k + 1]
        ink = a <= ck
        fk = (1.0 - wk) * t + height
        cand_ll.append(np.where(ink, np.log(np.where(ink, fk, 1.0)), lt + np.log1p(-wk)).sum(1))
        snapped.append(np.where(ink, a, 0.0).max(1))
    for k in range(0 if cand_edge is None else cand_edge.shape[2]):
        # One edge moved: loc and c shift together, the uniform's height fixed.
        dk = d - cand_edge[:, 0, k:k + 1]
        ck = c + cand_edge[:, 1, k:k + 1]
        wk = np.minimum(2.0 * ck * height, _W_MAX)
        ltk = _c(nu) - np.log(sigma) - 0.5 * (nu + 1.0) * _log1p_q_over_nu(dk, sigma, nu)
        ink = np.abs(dk) <= ck
        with np.errstate(under="ignore"):
            fk = (1.0 - wk) * np.exp(ltk) + height
        out.append(np.where(ink, np.log(np.where(ink, fk, 1.0)), ltk + np.log1p(-wk)).sum(1))
    if not derivs:
        return np.stack(out, 1), cand_ll, snapped
    rho = np.where(ins, (1.0 - w) * t / f_in, 1.0)  # the t part's responsibility
    kappa = rho * (1.0 - rho)
    with np.errstate(over="ignore", invalid="ignore"):
        z = d / sigma
        q = z * z
        inv = 1.0 / (nu + q)
        far = ~np.isfinite(q)  # beyond ~1e154 scales: q/A = 1, z/A = 1/A = 0 to rounding
        qa = np.where(far, 1.0, q * inv)
        za = np.where(far, 0.0, z * inv)
    h = 0.5 * (nu + 1.0)
    g_loc = 2.0 * h * za / sigma
    g_s = 2.0 * h * qa - 1.0
    g_nu = _c1(nu) - 0.5 * lq + h * qa / nu
    dw = np.where(ins, (1.0 - rho) / w, 0.0) - rho / (1.0 - w)  # d log f / dw
    rz = rho * za
    out += [rho.sum(1), rz.sum(1), (rho * qa).sum(1), (rho * lq).sum(1),
            row_dot(rho * qa, inv), row_dot(rho * inv, inv), row_dot(rz, inv),
            dw.sum(1), row_dot(dw, dw)]
    g = (g_loc, g_s, g_nu)
    for i in range(3):
        kg = kappa * g[i]
        out.append(kg.sum(1))
        out += [row_dot(kg, g[j]) for j in range(i, 3)]
    return np.stack(out, 1), cand_ll, snapped


def _pass(x, theta, c, cand_c=None, cand_edge=None, derivs=True):
    """Log-likelihood per row at (theta, c) with, if ``derivs``, its gradient and Hessian in
    theta = (loc, log scale, 1/df, logit w) at fixed c; plus the log-likelihood and snapped edge
    (largest |x - loc| inside) of every candidate edge, the uniform's height held fixed, and the
    log-likelihood at every candidate move of one edge (``cand_edge``, rows x 2 x K)."""
    loc, sigma, nu, w = unpack(theta)
    cc = c[:, None]
    cand_w = None if cand_c is None else np.minimum(2.0 * cand_c * (w / (2.0 * cc)), _W_MAX)
    total, cand_ll, snapped = None, 0.0, None
    for i in range(0, x.shape[1], CHUNK):
        s, cl, sn = _chunk_sums(x[:, i:i + CHUNK] - loc, sigma, nu, w, cc, cand_c, cand_w,
                                cand_edge, derivs)
        total = s if total is None else total + s
        if cand_c is not None:
            cand_ll = cand_ll + np.stack(cl, 1)
            sn = np.stack(sn, 1)
            snapped = sn if snapped is None else np.maximum(snapped, sn)
    ll = total[:, 0]
    n_loc = 0 if cand_edge is None else cand_edge.shape[2]
    loc_ll = total[:, 1:1 + n_loc]
    total = np.concatenate([total[:, :1], total[:, 1 + n_loc:]], axis=1)
    if not derivs:
        return ll, None, None, cand_ll, snapped, cand_w, loc_ll
    return (ll, *_assemble(x.shape[1], total, sigma[:, 0], nu[:, 0], w[:, 0]), cand_ll, snapped,
            cand_w, loc_ll)


def _assemble(n: int, sums: np.ndarray, sig, nu, w):
    """Gradient and Hessian in (loc, log scale, 1/df, logit w) from the sums of ``_chunk_sums``.

    With rho the t part's responsibility and g the t's per-value score, the mixture's score is
    sum rho·g and its Hessian sum rho·H_t + sum rho(1 - rho)·g gᵀ (H_t per value as in
    ``student_t._evaluate``); w enters through d log f / dw = (U - T) / f."""
    (s_r, s_rz, s_rq, s_rl, s_rq2, s_r2, s_rz2, s_dw, s_dw2,
     k_l, k_ll, k_ls, k_lv, k_s, k_ss, k_sv, k_v, k_vv) = sums[:, 1:].T
    h = 0.5 * (nu + 1.0)
    c1, c2 = _c1(nu), _c2(nu)
    g_loc = 2.0 * h * s_rz / sig
    g_s = 2.0 * h * s_rq - s_r
    g_nu = s_r * c1 - 0.5 * s_rl + h * s_rq / nu
    h_ll = 2.0 * h / sig**2 * (s_rq2 - nu * s_r2) + k_ll
    h_ls = -4.0 * h * nu / sig * s_rz2 + k_ls
    h_ss = -4.0 * h * nu * s_rq2 + k_ss
    h_lv = (s_rz - 2.0 * h * s_rz2) / sig + k_lv
    h_sv = s_rq - 2.0 * h * s_rq2 + k_sv
    h_vv = s_r * c2 + s_rq / nu - h * (s_rq + nu * s_rq2) / nu**2 + k_vv
    # Chain rule to phi = 1/df (d/dphi = -df² d/ddf) and lambda = logit w (dw/dlambda = w(1-w)).
    nu2, ww = nu * nu, w * (1.0 - w)
    grad = np.stack([g_loc, g_s, -nu2 * g_nu, ww * s_dw], axis=1)
    hess = np.empty((sums.shape[0], 4, 4))
    hess[:, 0, 0], hess[:, 1, 1] = h_ll, h_ss
    hess[:, 2, 2] = nu2 * nu2 * h_vv + 2.0 * nu2 * nu * g_nu
    hess[:, 3, 3] = -ww * ww * s_dw2 + ww * (1.0 - 2.0 * w) * s_dw
    hess[:, 0, 1] = hess[:, 1, 0] = h_ls
    hess[:, 0, 2] = hess[:, 2, 0] = -nu2 * h_lv
    hess[:, 1, 2] = hess[:, 2, 1] = -nu2 * h_sv
    # d²/dw dtheta = -sum rho r g / (w(1 - w)), times w(1 - w): -sum kappa g.
    hess[:, 0, 3] = hess[:, 3, 0] = -k_l
    hess[:, 1, 3] = hess[:, 3, 1] = -k_s
    hess[:, 2, 3] = hess[:, 3, 2] = nu2 * k_v
    return grad, hess


def _direction(grad: np.ndarray, hess: np.ndarray, pinned: np.ndarray) -> np.ndarray:
    """Ascent direction: Newton where -H is positive definite (after Jacobi scaling), else
    Levenberg-damped; ``pinned`` coordinates (at a bound, gradient pointing out) do not move."""
    neg_h, g = -hess.copy(), np.where(pinned, 0.0, grad)
    for j in range(4):
        neg_h[pinned[:, j], j, :] = 0.0
        neg_h[pinned[:, j], :, j] = 0.0
        neg_h[pinned[:, j], j, j] = 1.0
    bad = ~(np.isfinite(neg_h).all(axis=(1, 2)) & np.isfinite(g).all(axis=1))
    neg_h[bad], g[bad] = np.eye(4), 0.0
    d = np.sqrt(np.maximum(np.abs(np.diagonal(neg_h, axis1=1, axis2=2)), 1e-300))
    scaled = neg_h / (d[:, :, None] * d[:, None, :])
    eig_min = np.linalg.eigvalsh(scaled)[:, 0]
    shift = np.where(eig_min > 1e-8, 0.0, 1e-3 - eig_min)
    scaled = scaled + shift[:, None, None] * np.eye(4)
    return np.linalg.solve(scaled, (g / d)[..., None])[..., 0] / d


_LOWER = np.array([-np.inf, -np.inf, _PHI_MIN, _LAM_MIN])
_UPPER = np.array([np.inf, np.inf, _PHI_MAX, _LAM_MAX])


def _edges(theta, c_floor, a_max):
    """Allowed range of c per row: at least the floor and H_MIN scales, at most H_MAX scales
    and the largest |x - loc| (beyond which c only lowers the likelihood)."""
    sigma = np.exp(theta[:, 1])
    lo = np.maximum(c_floor, H_MIN * sigma)
    return lo, np.maximum(np.minimum(a_max, H_MAX * sigma), lo)


def _edge_points(x: np.ndarray, loc: np.ndarray, c: np.ndarray):
    """Per sorted row: the first and last value inside [loc - c, loc + c] and the nearest values
    outside it on each side (-inf / inf where none)."""
    first, last = np.empty(loc.size), np.empty(loc.size)
    below, above = np.full(loc.size, -np.inf), np.full(loc.size, np.inf)
    n = x.shape[1]
    for r in range(loc.size):
        i_lo = int(np.searchsorted(x[r], loc[r] - c[r], "left"))
        i_hi = int(np.searchsorted(x[r], loc[r] + c[r], "right"))
        first[r] = x[r, min(i_lo, n - 1)]
        last[r] = x[r, max(i_hi - 1, 0)]
        if i_lo > 0:
            below[r] = x[r, i_lo - 1]
        if i_hi < n:
            above[r] = x[r, i_hi]
    return first, last, below, above


def _edge_gap(x: np.ndarray, loc: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Per sorted row: the smallest gap between neighbouring values at either edge (the two
    outermost inside, and the outermost inside and the nearest outside)."""
    n = x.shape[1]
    gap = np.full(loc.size, np.inf)
    for r in range(loc.size):
        i_lo = int(np.searchsorted(x[r], loc[r] - c[r], "left"))
        i_hi = int(np.searchsorted(x[r], loc[r] + c[r], "right"))
        lo, hi = max(i_lo - 1, 0), min(i_hi + 1, n)
        gaps = np.concatenate([np.diff(x[r, lo:min(i_lo + 2, n)]), np.diff(x[r, max(i_hi - 2, 0):hi])])
        if gaps.size:
            gap[r] = gaps.min()
    return gap


def _split_pass(x, theta, c, cand_c, cand_edge, derivs: np.ndarray):
    """``_pass`` with derivatives for the rows where ``derivs`` holds only (zeros elsewhere)."""
    if derivs.all() or not derivs.any():
        return _pass(x, theta, c, cand_c, cand_edge, derivs=bool(derivs.all()))
    parts = []
    for rows, want in ((np.flatnonzero(derivs), True), (np.flatnonzero(~derivs), False)):
        parts.append((rows, _pass(x[rows], theta[rows], c[rows],
                                  None if cand_c is None else cand_c[rows],
                                  None if cand_edge is None else cand_edge[rows], derivs=want)))
    out = []
    for k in range(7):
        first = parts[0][1][k]
        if first is None or np.isscalar(first):
            out.append(first)
            continue
        full = np.zeros((theta.shape[0], *np.shape(first)[1:]))
        for rows, res in parts:
            if res[k] is not None:
                full[rows] = res[k]
        out.append(full)
    return tuple(out)


def _iterate(x: np.ndarray, theta: np.ndarray, c: np.ndarray, c_floor: np.ndarray,
             a_max: np.ndarray, *, max_iter: int, step0: float = 0.1, settle: float = 1e-5,
             search: bool = True):
    """Coordinate ascent per row. Each pass evaluates, besides the derivatives, the exact
    likelihood at two candidate edges c·exp(±step) (the uniform's height fixed, snapped to the
    order statistic inside) and two moves of one edge by ±edge_step (right and left edge in
    turn: loc and c move together). loc moves values across the edges, so its likelihood is
    rough on the scale of their spacing and a smooth Newton step in it fails; moving one edge
    alone is the step that symmetric moves of c and shifts of loc both miss. The best candidate
    that gains is taken, else a damped Newton step in (log scale, 1/df, logit w). Steps double on
    success and shrink otherwise. Returns theta, c, loglik."""
    rows = theta.shape[0]
    theta, c = theta.copy(), c.copy()
    lo, hi = _edges(theta, c_floor, a_max)
    c = np.clip(c, lo, hi)
    ll = np.full(rows, -np.inf)
    step = np.full(rows, step0)  # relative step of c
    loc_step = step0 * 0.5 * c  # absolute step of one edge
    active = np.ones(rows, bool)
    # Rows whose Newton step found nothing left to gain at the current edges: until an edge
    # moves, their passes need the candidates' likelihoods only, not the derivatives.
    smooth = np.zeros(rows, bool)
    signs = np.array([-1.0, 1.0])
    for it in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xs = x if idx.size == rows else x[idx]
        th, cc = theta[idx], c[idx]
        lo, hi = _edges(th, c_floor[idx], a_max[idx])
        cand = np.clip(cc[:, None] * np.exp(step[idx, None] * signs), lo[:, None], hi[:, None])
        loc_step[idx] = np.minimum(loc_step[idx], 0.25 * cc)
        half = 0.5 * loc_step[idx, None] * signs
        side = 1.0 if it % 2 else -1.0  # right edge on odd passes, left on even ones
        edge = np.stack([side * half, half], axis=1)  # (shift of loc, change of c)
        ll_i, grad, hess, cand_ll, snapped, cand_w, loc_ll = _split_pass(
            xs, th, cc, cand if search else None, edge if search else None, ~smooth[idx])
        if not search:  # no edge moves: every candidate is the current point
            cand_ll = loc_ll = np.full((idx.size, 2), -np.inf)
            snapped, cand_w = np.zeros((idx.size, 2)), np.zeros((idx.size, 2))
        ll[idx] = ll_i
        r = np.arange(idx.size)
        # Edge moves that leave the allowed range of c are out of the running.
        new_edge = cc[:, None] + half
        loc_ll = np.where((new_edge >= lo[:, None]) & (new_edge <= hi[:, None]), loc_ll, -np.inf)
        best_c, best_l = np.argmax(cand_ll, axis=1), np.argmax(loc_ll, axis=1)
        gain_c = cand_ll[r, best_c] - ll_i
        gain_l = loc_ll[r, best_l] - ll_i
        tiny = 1e-12 * np.abs(ll_i)
        take_c = (gain_c > tiny) & (gain_c >= gain_l)
        take_l = (gain_l > tiny) & ~take_c
        # Edge step: c to the snapped candidate (which only raises the likelihood further).
        mv = idx[take_c]
        new_c = np.maximum(snapped[r, best_c], lo)[take_c]
        theta[mv, 3] = special.logit(np.clip(cand_w[r, best_c][take_c], 1e-7, _W_MAX))
        c[mv] = np.where(new_c > 0, new_c, cand[r, best_c][take_c])
        ml = idx[take_l]
        theta[ml, 0] += edge[r, 0, best_l][take_l]
        old_c = c[ml]
        c[ml] += edge[r, 1, best_l][take_l]
        w_l = special.expit(theta[ml, 3]) * c[ml] / old_c
        theta[ml, 3] = special.logit(np.clip(w_l, 1e-7, _W_MAX))
        step[idx] = np.where(take_c, np.minimum(step[idx] * 2.0, 0.5),
                             np.where(gain_c > tiny, step[idx], step[idx] * 0.5))
        loc_step[idx] = np.where(take_l, loc_step[idx] * 2.0,
                                 np.where(gain_l > tiny, loc_step[idx], loc_step[idx] * 0.7))
        ll[idx[take_c | take_l]] = -np.inf  # re-evaluated at the next pass
        smooth[idx[take_c | take_l]] = False
        keep = ~(take_c | take_l)
        sub, th = idx[keep], th[keep]
        if sub.size == 0:
            continue
        # Steps shorter than every gap between the values at the edges only re-try the moves
        # already tried (dropping an edge value, or a wider edge holding the same values).
        move = np.maximum(step[sub] * c[sub], loc_step[sub])
        settled = move < settle * c[sub]
        near = ~settled & (move < 1e-2 * c[sub])
        if near.any():
            settled[near] = move[near] < 0.5 * _edge_gap(x[sub[near]], th[near, 0], c[sub[near]])
        quiet = smooth[sub]  # no derivatives this pass: nothing to do but check the edges
        active[sub[quiet & settled]] = False
        sub, th, settled = sub[~quiet], th[~quiet], settled[~quiet]
        if sub.size == 0:
            continue
        # Newton step for the rest, with halving until the likelihood does not fall.
        g, hs = grad[keep][~quiet], hess[keep][~quiet]
        pinned = ((th <= _LOWER * (1 + 1e-12)) & (g < 0)) | ((th >= _UPPER * (1 - 1e-12)) & (g > 0))
        pinned[:, 1] = False
        pinned[:, 0] = True  # loc moves with the edges (candidates above), not by Newton
        dirn = _direction(g, hs, pinned)
        dec = 0.5 * np.einsum("ij,ij->i", dirn, np.where(pinned, 0.0, g))
        big = np.maximum.reduce([np.abs(dirn[:, 1]), np.abs(dirn[:, 2]) / np.maximum(
            0.5 * th[:, 2], 0.05), np.abs(dirn[:, 3]) / 2.0])
        dirn *= np.minimum(1.0, 1.0 / np.maximum(big, 1e-300))[:, None]
        converged = dec < 1e-10 * np.abs(ll[sub]) + 1e-9
        active[sub[converged & settled]] = False
        smooth[sub] = converged
        t = np.ones(sub.size)
        pending = ~converged & (dec > 0)
        for _halving in range(20):
            if not pending.any():
                break
            rows_p = sub[pending]
            trial = np.clip(th[pending] + t[pending, None] * dirn[pending], _LOWER, _UPPER)
            xp = x if rows_p.size == rows else x[rows_p]
            ll_t = _pass(xp, trial, c[rows_p], derivs=False)[0]
            ok = ll_t >= ll[rows_p] - 1e-12 * np.abs(ll[rows_p])
            theta[rows_p[ok]], ll[rows_p[ok]] = trial[ok], ll_t[ok]
            pending[np.flatnonzero(pending)[ok]] = False
            t[pending] *= 0.5
        # A Newton step that cannot be improved on leaves the row at its optimum for this edge.
        active[sub[pending & settled]] = False
        theta[:, 1] = np.maximum(theta[:, 1], np.log(c / H_MAX))  # keep c <= H_MAX scales
    ll_final = _pass(x, theta, c, derivs=False)[0]
    return theta, c, ll_final


def _edge_range(x: np.ndarray, loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the smallest allowed c (the uniform holds at least _MIN_INSIDE values, or 1% of
    them if fewer) and the largest useful one (max |x - loc|)."""
    a = np.abs(x - loc[:, None])
    k = min(x.shape[1] - 1, max(1, min(_MIN_INSIDE, x.shape[1] // 100)))
    return np.partition(a, k, axis=1)[:, k], a.max(axis=1)


def _theta(loc, sigma, nu, w) -> np.ndarray:
    return np.stack([loc, np.log(sigma), 1.0 / np.clip(nu, DF_MIN, DF_CAP),
                     special.logit(np.clip(w, 1e-7, _W_MAX))], axis=1)


def fit_core(x: np.ndarray, start: BatchFit | None):
    """Multi-start ascent on quantile summaries, polished on the full rows; returns theta, c,
    loglik, the pure-t fit (always a candidate: the mixture nests it) and whether each row is
    verified at a maximum."""
    rows, n = x.shape
    tfit = _T.fit_rows(x)
    if start is not None and np.all(np.isfinite(start.shape)) and len(start.more) == 2:
        theta = _theta(start.loc, start.scale, start.more[1], np.clip(start.shape, 0.02, 0.98))
        c = start.more[0] * start.scale
        step0 = 0.01
    else:
        summary = strided_quantiles(x, _SUMMARY) if n > 2 * _SUMMARY else x
        a = np.sort(np.abs(summary - tfit.loc[:, None]), axis=1)
        m = a.shape[1]
        thetas, cs = [], []
        for p in (_START_EDGES_LONG if n > 4 * _POLISH else _START_EDGES):
            c0 = a[:, min(m - 1, int(p * m))]
            thetas.append(_theta(tfit.loc, np.maximum(tfit.scale, c0 / 4.0),
                                 np.clip(tfit.shape, 2.0, 100.0), np.full(rows, 0.5)))
            cs.append(c0)
        k = len(cs)
        big = np.tile(summary, (k, 1))
        theta = np.concatenate(thetas)
        floor, a_max = _edge_range(big, theta[:, 0])
        theta, c, ll = _iterate(big, theta, np.concatenate(cs), floor, a_max, max_iter=15,
                                settle=1e-3)
        step0 = 0.01  # the summary's edges are within a few of its spacings
        if n > 4 * _POLISH:
            # Converge on exact quantiles first; the full data then needs a few passes. Every
            # start goes on to them: the summary ranked two local maxima the other way round
            # from the full data (6 nats apart on a decoder layer of 131,072 values), and which
            # start reaches the best maximum moved with the t start's last bits (64 nats there),
            # so long rows try more edges and the winner is chosen on the finer quantiles.
            mid = np.tile(strided_quantiles(x, _POLISH), (k, 1))
            floor, a_max = _edge_range(mid, theta[:, 0])
            theta, c, ll = _iterate(mid, theta, c, floor, a_max, max_iter=60, step0=step0)
            step0 = 4.0 / _POLISH  # a few of the quantiles' spacings
        pick = np.argmax(ll.reshape(k, rows), axis=0) * rows + np.arange(rows)
        theta, c = theta[pick], c[pick]
    floor, a_max = _edge_range(x, theta[:, 0])
    theta, c, ll = _iterate(x, theta, c, floor, a_max, max_iter=60, step0=step0, settle=1e-6)
    # Polish: both edges onto the outermost values inside (same inside set, narrower uniform,
    # so higher density; loc moves to their midpoint), then Newton in the smooth parameters. The
    # t part's pull on loc could outweigh that gain, so the tighter point must win on likelihood.
    first, last, _, _ = _edge_points(x, theta[:, 0], c)
    tight = theta.copy()
    tight[:, 0], tight_c = 0.5 * (first + last), 0.5 * (last - first)
    ok = (tight_c > 0) & (tight_c <= c) & (tight_c >= _edges(theta, floor, a_max)[0])
    tight_c = np.where(ok, tight_c, c)
    tight[~ok] = theta[~ok]
    tight, tight_c, tight_ll = _iterate(x, tight, tight_c, floor, a_max, max_iter=20, step0=0.0,
                                        settle=1.0, search=False)
    better = tight_ll > ll
    theta[better], c[better], ll[better] = tight[better], tight_c[better], tight_ll[better]
    # An edge on a data value would let rounding (mapping the fit back to the data's units)
    # flip that value out of the uniform: a margin of 1e-9 of c keeps it in, at a cost of
    # 1e-9 nats per value inside.
    c = c * (1.0 + _EDGE_MARGIN)
    ll, grad, hess = _pass(x, theta, c)[:3]
    return theta, c, ll, tfit, _at_maximum(theta, ll, grad, hess)


def _at_maximum(theta, ll, grad, hess) -> np.ndarray:
    """Per row: no Newton step in the smooth parameters is predicted to gain more than
    1e-6 + 1e-9·|loglik| (the edges are a discrete local maximum by construction)."""
    pinned = ((theta <= _LOWER * (1 + 1e-12)) & (grad < 0)) | (
        (theta >= _UPPER * (1 - 1e-12)) & (grad > 0))
    pinned[:, 0], pinned[:, 1] = True, False
    with np.errstate(all="ignore"):
        dirn = _direction(grad, hess, pinned)
        dec = 0.5 * np.einsum("ij,ij->i", dirn, np.where(pinned, 0.0, grad))
    return np.isfinite(dec) & (dec <= 1e-6 + 1e-9 * np.abs(ll))
