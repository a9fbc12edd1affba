"""Joint Newton steps in (loc, log beta) for the generalized normal's profile likelihood.

Coordinate ascent (``gennorm``) alternates loc and beta searches and needs a dozen passes over the
data; from a start near the optimum, Newton on both at once needs two or three, each one fused
sweep (a log, an exp and a reciprocal per value). The loc curvature sum|x - loc|^(beta - 2) is
only reliable well above beta = 1, so the caller restricts Newton to a beta range.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .base import CHUNK
from .base import dot as _dot


def profile_loglik(n: int, beta: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Log-likelihood with the scale at its optimum given loc and beta (s = sum|x-loc|^beta)."""
    log_sigma = np.log(beta * s / n) / beta
    return n * (np.log(0.5 * beta) - special.gammaln(1.0 / beta) - log_sigma - 1.0 / beta)


def log_beta_derivatives(n: int, beta, s, s1, s2):
    """First and second derivatives of the profile log-likelihood in log(beta) at fixed loc, from
    S = sum|x - loc|^beta and its first two beta derivatives S1, S2 (arrays or scalars)."""
    b = beta
    lg, r1, r2 = np.log(b * s / n), s1 / s, s2 / s
    # trigamma as zeta(2, .): polygamma(1, .) computes exactly that (times (-1)^2 1!) through
    # several array operations, 7x the cost of one scalar call
    psi, psi1 = special.digamma(1 / b), special.zeta(2, 1 / b)
    d1 = n / b + n * psi / b**2 + n / b**2 * lg - n / b * r1
    dd = (-n / b**2 - n * psi1 / b**4 - 2 * n * psi / b**3 - 2 * n / b**3 * lg + n / b**3
          + 2 * n / b**2 * r1 - n / b * (r2 - r1**2))
    return b * d1, b**2 * dd + b * d1


def _joint_sums(row: np.ndarray, loc: float, beta: float,
                w: np.ndarray | None = None) -> np.ndarray | None:
    """One pass over a sorted row at (loc, beta): S = sum|r|^beta with its first two beta
    derivatives, and the loc derivatives G = sum sign(r)|r|^(beta-1), dG/dbeta and H =
    sum|r|^(beta-2). None when a value equals loc, where H is infinite for beta < 2.
    ``w``: a weight (count) per value, every sum weighted."""
    lo, hi = np.searchsorted(row, loc, "left"), np.searchsorted(row, loc, "right")
    if hi > lo:
        return None
    total = np.zeros(6)
    parts = ((row[:lo], -1.0, None if w is None else w[:lo]),
             (row[hi:], 1.0, None if w is None else w[hi:]))
    # The row is sorted, so the sign of r is known per part: no sign or abs passes.
    # work arrays reused chunk after chunk: a fresh chunk-sized temporary costs page faults
    work = np.empty((4, min(CHUNK, row.size)))
    for part, sign, weight in parts:
        for i in range(0, part.size, CHUNK):
            chunk = part[i:i + CHUNK]
            a, la, p, pl = (buf[:chunk.size] for buf in work)
            # |r| in one subtraction per side: fl(loc - x) is -fl(x - loc)
            if sign < 0:
                np.subtract(loc, chunk, out=a)
            else:
                np.subtract(chunk, loc, out=a)
            np.log(a, out=la)
            np.multiply(la, beta, out=p)
            np.exp(p, out=p)
            if weight is not None:  # weighting p weights every sum below
                p *= weight[i:i + CHUNK]
            np.multiply(p, la, out=pl)
            s0, s1, s2 = p.sum(), pl.sum(), _dot(pl, la)
            inv = np.reciprocal(a, out=a)
            q = np.multiply(p, inv, out=p)
            total += (s0, s1, s2, sign * q.sum(), sign * _dot(q, la), _dot(q, inv))
    return total


def _joint_derivatives(n: int, beta: float, sums: np.ndarray):
    """Profile log-likelihood with its gradient and Hessian in (loc, log beta)."""
    s, s1, s2, g, g1, h = sums
    b = beta
    ll = float(profile_loglik(n, np.array([b]), np.array([s]))[0])
    g_t, h_tt = log_beta_derivatives(n, b, s, s1, s2)
    grad = np.array([n * g / s, g_t])
    h_mm = n * (b * g**2 / s**2 - (b - 1) * h / s)
    h_mt = b * n * (g1 / s - g * s1 / s**2)
    return ll, grad, np.array([[h_mm, h_mt], [h_mt, h_tt]]), h_tt


def _final_step(n: float, loc: float, beta: float, sums: np.ndarray, ll: float, d2: float,
                step: np.ndarray):
    """The last (tiny) Newton step, S at its end from its second-order Taylor expansion in
    (loc, log beta) (the third-order term is ~1e-18 relative), so the converged point costs no
    further pass. The predicted gain is below the log-likelihood's rounding, so the step is kept
    unless it loses more than rounding: a comparison decided by rounding would make the counted
    and the expanded sample stop at different points."""
    s, s1, s2, g, g1, h = sums
    dl, dt = float(step[0]), float(step[1])
    b = beta
    # derivatives of S = sum|x - loc|^beta in loc and t = log(beta)
    s_l, s_t = -b * g, b * s1
    s_ll, s_tt, s_lt = b * (b - 1.0) * h, b * s1 + b * b * s2, -b * g - b * b * g1
    new_s = s + s_l * dl + s_t * dt + 0.5 * (s_ll * dl * dl + s_tt * dt * dt) + s_lt * dl * dt
    new_beta = beta * np.exp(dt)
    new_ll = float(profile_loglik(n, np.array([new_beta]), np.array([new_s]))[0])
    if not (new_s > 0 and new_ll >= ll - 1e-13 * abs(ll)):
        loc, new_beta, new_s, new_ll, dl = loc, beta, s, ll, 0.0
    return (np.array([loc + dl]), np.array([new_beta]), np.array([new_s]), np.array([new_ll]),
            np.array([d2]))


def polish_newton(row: np.ndarray, loc: float, beta: float, beta_range: tuple[float, float],
                  max_steps: int = 8, w: np.ndarray | None = None):
    """Joint Newton ascent in (loc, log beta) on every value of one sorted row, from a start near
    the optimum: each step is one fused pass (log, exp, reciprocal), and a start on exact
    quantiles typically needs one or two steps. None where Newton is not safe (beta near the loc
    cusps at 1 or at the bound: a step leaving ``beta_range``; a value equal to loc; an indefinite
    Hessian); the caller then falls back to coordinate ascent. ``w``: a count per value (the
    multiset ``np.repeat(row, w)``)."""
    n = row.size if w is None else float(w.sum())
    sums = _joint_sums(row, loc, beta, w)
    if sums is None:
        return None
    ll, grad, hess, d2 = _joint_derivatives(n, beta, sums)
    for _ in range(max_steps):
        neg = -hess
        if not (neg[0, 0] > 0 and neg[1, 1] > 0 and np.linalg.det(neg) > 0):
            return None
        step = np.linalg.solve(neg, grad)
        # Newton decrement: the predicted remaining gain. Below 1e-12 of |loglik| the step is
        # ~1e-6 of the scale and Newton's error after it ~1e-12: take it without another pass.
        if 0.5 * float(grad @ step) < 1e-12 * abs(ll):
            return _final_step(n, loc, beta, sums, ll, d2, step)
        step[1] = np.clip(step[1], -0.5, 0.5)
        t = 1.0
        for _halving in range(10):
            trial_loc, trial_beta = loc + t * step[0], beta * np.exp(t * step[1])
            if not beta_range[0] <= trial_beta <= beta_range[1]:
                return None
            trial = _joint_sums(row, trial_loc, trial_beta, w)
            if trial is None:
                return None
            t_ll, t_grad, t_hess, t_d2 = _joint_derivatives(n, trial_beta, trial)
            if t_ll >= ll - 1e-13 * abs(ll):
                loc, beta, sums, ll, grad, hess, d2 = (trial_loc, trial_beta, trial, t_ll, t_grad,
                                                       t_hess, t_d2)
                break
            t *= 0.5
        else:
            return None
    return None
