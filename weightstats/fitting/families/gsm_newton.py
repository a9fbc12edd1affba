"""Newton polish of a Gaussian scale mixture fit: quadratic convergence to the exact maximum.

EM (``gsm_em``) gets next to the optimum fast but converges only linearly, and slowly where the
components overlap. From there a few Newton steps on the full log-likelihood finish the job and
prove it: the Newton decrement ½·gᵀ(-H)⁻¹g, the predicted remaining gain, must vanish with -H
positive definite.

Coordinates θ = (loc, log s_1..s_K, α_1..α_{K-1}) with w = softmax(α, 0). Per value, with γ_k the
responsibilities and d = x - loc, the score is v = (Σ_k γ_k d / s_k², γ_k (d²/s_k² - 1),
γ_j - w_j), and the Hessian of log f is Σ_k γ_k (H_k + g_k g_kᵀ) - v vᵀ, where g_k and H_k are
the derivatives of the k-th component's log term. The first part needs only the moments
Σγ_k d^p (p = 0..4); the second, Σ v vᵀ, is accumulated from v itself.
"""

from __future__ import annotations

import numpy as np

from .gsm_em import W_FLOOR, _blocks, e_pass, sort_components


def _moments_and_outer(x, loc, s, w):
    """Log-likelihood, moments M[p, k] = Σγ_k d^p (p = 0..4) and Σ v vᵀ, per row."""
    rows, n = x.shape
    k = s.shape[1]
    dim = 2 * k
    s_top, w_top = s[:, -1], w[:, -1]
    a = 0.5 * (1.0 / s**2 - 1.0 / s_top[:, None] ** 2)
    c = np.log(w / s) - np.log(w_top / s_top)[:, None]
    ll = n * (np.log(w_top / s_top) - 0.5 * np.log(2 * np.pi))
    mom = np.zeros((rows, 5, k))
    outer = np.zeros((rows, dim, dim))
    for rs, cs in _blocks(rows, n):
        d = x[rs, cs] - loc[rs, None]
        q = d * d
        g = np.exp(c[rs, :, None] - a[rs, :, None] * q[:, None, :])  # (r, k, m); last is 1
        total = g.sum(axis=1)
        ll[rs] += np.log(total).sum(axis=1) - (0.5 / s_top[rs] ** 2) * q.sum(axis=1)
        g /= total[:, None, :]
        powers = (np.ones_like(d), d, q, q * d, q * q)
        for p, dp in enumerate(powers):
            mom[rs, p] += np.einsum("rkm,rm->rk", g, dp)
        inv_s2 = 1.0 / s[rs] ** 2
        v = np.empty((g.shape[0], dim, g.shape[2]))
        v[:, 0] = np.einsum("rkm,rk->rm", g, inv_s2) * d
        v[:, 1:1 + k] = g * (q[:, None, :] * inv_s2[:, :, None] - 1.0)
        v[:, 1 + k:] = g[:, :-1] - w[rs, :-1, None]
        outer[rs] += np.einsum("rim,rjm->rij", v, v)
    return ll, mom, outer


def derivatives(x, loc, s, w):
    """(loglik, gradient, Hessian) per row in θ = (loc, log s, α_1..α_{K-1})."""
    n = x.shape[1]
    k = s.shape[1]
    ll, mom, outer = _moments_and_outer(x, loc, s, w)
    m0, m1, m2, m3, m4 = (mom[:, p] for p in range(5))
    i2, i4 = 1.0 / s**2, 1.0 / s**4
    grad = np.concatenate([(m1 * i2).sum(axis=1, keepdims=True), m2 * i2 - m0,
                           (m0 - n * w)[:, :-1]], axis=1)
    rows = x.shape[0]
    a = np.zeros((rows, 2 * k, 2 * k))
    a[:, 0, 0] = (m2 * i4 - m0 * i2).sum(axis=1)
    ks = np.arange(k)
    a[:, 0, 1 + ks] = m3 * i4 - 3.0 * m1 * i2
    a[:, 1 + ks, 1 + ks] = m4 * i4 - 4.0 * m2 * i2 + m0
    wf = w[:, :-1]
    a[:, 0, 1 + k:] = (m1 * i2)[:, :-1] - wf * (m1 * i2).sum(axis=1, keepdims=True)
    b = m2 * i2 - m0  # Σγ_i (d²/s_i² - 1)
    eye = np.eye(k)[:, :-1]
    a[:, 1:1 + k, 1 + k:] = b[:, :, None] * (eye[None] - wf[:, None, :])
    nf = m0[:, :-1]
    a[:, 1 + k:, 1 + k:] = (np.eye(k - 1)[None] * (nf - n * wf)[:, :, None]
                            - wf[:, None, :] * nf[:, :, None] - wf[:, :, None] * nf[:, None, :]
                            + 2.0 * n * wf[:, :, None] * wf[:, None, :])
    upper = np.triu_indices(2 * k, 1)
    a[:, upper[1], upper[0]] = a[:, upper[0], upper[1]]
    return ll, grad, a - outer


def _to_theta(loc, s, w):
    return np.concatenate([loc[:, None], np.log(s), np.log(w[:, :-1] / w[:, -1:])], axis=1)


def _from_theta(theta, k, floor):
    loc = theta[:, 0]
    s = np.maximum(np.exp(theta[:, 1:1 + k]), floor[:, None])
    alpha = np.concatenate([theta[:, 1 + k:], np.zeros((theta.shape[0], 1))], axis=1)
    w = np.exp(alpha - alpha.max(axis=1, keepdims=True))
    w = np.maximum(w / w.sum(axis=1, keepdims=True), W_FLOOR)
    return loc, s, w / w.sum(axis=1, keepdims=True)


def _direction(grad, hess):
    """Newton direction on Jacobi-scaled -H (Levenberg-shifted where not positive definite) and
    the decrement ½·gᵀ·step; non-finite rows take no step."""
    neg = -hess
    d = np.sqrt(np.abs(np.diagonal(neg, axis1=1, axis2=2)))
    ok = np.isfinite(neg).all(axis=(1, 2)) & np.isfinite(grad).all(axis=1) & (d > 0).all(axis=1)
    d[~ok] = 1.0
    scaled = neg / (d[:, :, None] * d[:, None, :])
    scaled[~ok] = np.eye(neg.shape[1])
    eig = np.linalg.eigvalsh(scaled)[:, 0]
    definite = ok & (eig > 1e-10)
    shift = np.where(definite, 0.0, np.maximum(-eig, 0.0) + 1e-3)
    scaled = scaled + shift[:, None, None] * np.eye(neg.shape[1])
    gs = np.where(ok[:, None], grad / d, 0.0)
    step = np.linalg.solve(scaled, gs[..., None])[..., 0] / d
    return step, 0.5 * np.einsum("ri,ri->r", gs * d, step), definite


def newton(x, loc, s, w, floor, *, max_iter: int = 30):
    """Newton ascent of every row from (loc, s, w), sorted by scale, with step halving.

    Returns (loc, s, w, loglik, converged): converged where -H is positive definite and the
    decrement is below 1e-9 + 1e-12·|loglik|. Rows with a component at its scale floor keep their
    EM result (the floor is a constraint Newton does not handle); they report not converged only
    if their EM score was not zero, which the caller knows.
    """
    rows, _ = x.shape
    k = s.shape[1]
    loc, s, w = loc.copy(), s.copy(), w.copy()
    ll, grad, hess = derivatives(x, loc, s, w)
    converged = np.zeros(rows, bool)
    active = np.ones(rows, bool)
    for _ in range(max_iter):
        act = np.flatnonzero(active)
        if act.size == 0:
            break
        step, dec, definite = _direction(grad[act], hess[act])
        done = definite & (dec >= 0) & (dec < 1e-9 + 1e-12 * np.abs(ll[act]))
        converged[act[done]] = True
        active[act[done]] = False
        act, step = act[~done], step[~done]
        if act.size == 0:
            break
        # Modest steps in log scale and logits: a poor start must not overshoot wildly.
        big = np.abs(step[:, 1:]).max(axis=1) if step.shape[1] > 1 else np.zeros(act.size)
        step *= np.minimum(1.0, 1.0 / np.maximum(big, 1e-300))[:, None]
        theta = _to_theta(loc[act], s[act], w[act])
        t = np.ones(act.size)
        pending = np.ones(act.size, bool)
        for _halving in range(30):
            idx = np.flatnonzero(pending)
            if idx.size == 0:
                break
            sub = act[idx]
            tl, ts, tw = _from_theta(theta[idx] + t[idx, None] * step[idx], k, floor[sub])
            ts, tw = sort_components(ts, tw)
            xs = x if sub.size == rows else x[sub]
            t_ll, t_g, t_h = derivatives(xs, tl, ts, tw)
            ok = t_ll >= ll[sub]
            good = sub[ok]
            loc[good], s[good], w[good] = tl[ok], ts[ok], tw[ok]
            ll[good], grad[good], hess[good] = t_ll[ok], t_g[ok], t_h[ok]
            pending[idx[ok]] = False
            t[idx[~ok]] *= 0.5
        # No step along the Newton direction helps: the row is at its optimum to rounding.
        stuck = act[pending]
        active[stuck] = False
    # One last check of the rows that stopped without a verdict.
    check = np.flatnonzero(~converged)
    if check.size:
        _, dec, definite = _direction(grad[check], hess[check])
        converged[check] = definite & (dec >= 0) & (dec < 1e-6 + 1e-9 * np.abs(ll[check]))
    return loc, s, w, ll, converged


__all__ = ["derivatives", "newton", "e_pass"]
