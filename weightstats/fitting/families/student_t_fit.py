"""Student-t maximum likelihood: a damped Newton ascent in (loc, log scale, 1/df).

scipy's ``t.fit`` is a generic Nelder-Mead search (about 49 s on 2.36 M values). The log-likelihood
needs only ``log1p`` per point, and its gradient and Hessian in (loc, log scale, 1/df) reduce to
six sums over the data, so each Newton iteration is one pass and a good start converges in a few.
Every helper takes optional per-value counts ``w`` (the shape of ``x``): a multiset given by its
distinct values (``Family.fit_weighted``) is fitted with each sum weighted, in one pass over the
distinct values; without counts the code path and its numbers are the unweighted ones.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from . import weighted
from .base import CHUNK, dot, row_dot, row_median

DF_MIN = 0.2
# Beyond this df the t is indistinguishable from a Gaussian (log-likelihood within n·|excess kurtosis|/(4 df) of it);
# a fit that runs into it is flagged as "df_at_cap": the data prefer the normal limit.
DF_MAX = 1e10
# Newton works in phi = 1/df: the likelihood is smooth and quadratic there up to the Gaussian limit
# phi = 0, whereas in log(df) it flattens out and Newton crawls towards infinity.
_PHI_MIN, _PHI_MAX = 1.0 / DF_MAX, 1.0 / DF_MIN


_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
_SERIES_FROM = 60.0  # df above which the asymptotic series is exact to ~1e-16 (x = df/2 >= 30)


def _series(x, order: int):
    """d^order/dx^order of S(x) = lnΓ(x+½) - lnΓ(x) - ½ln x = -1/(8x) + 1/(192x³) - 1/(640x⁵) + 17/(14336x⁷).

    scipy's betaln/lgamma difference loses up to 1e-10 per point for df in 1e3..1e6, which
    summed over millions of weights makes the likelihood noisy enough to stall Newton.
    """
    coef = ((-1.0 / 8, 1), (1.0 / 192, 3), (-1.0 / 640, 5), (17.0 / 14336, 7))
    total = 0.0
    for c, k in coef:
        factor = 1.0
        for j in range(order):
            factor *= -(k + j)
        total = total + c * factor * x ** (-(k + order))
    return total


def _c(nu):
    """Per-point constant of the t log-density: log Γ((ν+1)/2) - log Γ(ν/2) - ½ log(νπ)."""
    nu = np.asarray(nu, dtype=float)
    big = nu >= _SERIES_FROM
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = -special.betaln(0.5, 0.5 * nu) - 0.5 * np.log(nu)
        series = -_HALF_LOG_2PI + _series(0.5 * nu, 0)
    return np.where(big, series, exact)


def _c1(nu):
    nu = np.asarray(nu, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = 0.5 * (special.digamma(0.5 * (nu + 1)) - special.digamma(0.5 * nu)) - 0.5 / nu
        series = 0.5 * _series(0.5 * nu, 1)
    return np.where(nu >= _SERIES_FROM, series, exact)


def _c2(nu):
    nu = np.asarray(nu, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = (0.25 * (special.polygamma(1, 0.5 * (nu + 1)) - special.polygamma(1, 0.5 * nu))
                 + 0.5 / nu**2)
        series = 0.25 * _series(0.5 * nu, 2)
    return np.where(nu >= _SERIES_FROM, series, exact)


def _start(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Starting point (loc, log scale, log df) per row from the median, MAD and kurtosis;
    with ``weights`` (per-value counts), those of the expanded sample."""
    if weights is None:
        loc = row_median(x)
        dev = x - loc[:, None]
        mad = np.median(np.abs(dev), axis=1)
    else:
        loc = np.array([weighted.median(v, weighted.positions(w)) for v, w in zip(x, weights, strict=True)])
        dev = x - loc[:, None]
        mad = np.array([weighted.unsorted_median(np.abs(d), w) for d, w in zip(dev, weights, strict=True)])
    # Values far out (robust units up to 1e12) overflow dev**4; an infinite kurtosis only means
    # "heavy tails", which the start handles, so the overflow is not worth a warning.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if weights is None:
            m2 = np.mean(dev**2, axis=1)
            m4 = np.mean(dev**4, axis=1)
        else:
            n = weights.sum(axis=1)
            m2 = row_dot(weights, dev**2) / n
            m4 = row_dot(weights, dev**4) / n
        kurt = m4 / m2**2 - 3.0
        nu = np.where(kurt > 0.05, 4.0 + 6.0 / kurt, 200.0)
    nu = np.clip(nu, 1.0, 200.0)
    scale = mad / stats.t.ppf(0.75, nu)
    bad = ~(scale > 0)
    scale[bad] = np.sqrt(m2[bad])
    return np.stack([loc, np.log(scale), 1.0 / nu], axis=1)


def _partial_sums(x: np.ndarray, loc, sigma, nu, want_derivs: bool,
                  w: np.ndarray | None = None) -> np.ndarray:
    """Per-row sums over the values in ``x``: Σlog-term, Σq/A, Σq/A², Σz/A, Σz/A², Σ1/A²; each
    term counted ``w`` times where per-value counts are given (the shape of ``x``)."""
    z = x - loc
    z *= 1.0 / sigma
    with np.errstate(over="ignore"):  # an infinite q sends the row to _partial_sums_far below
        q = z * z
    a = q + nu
    if np.all(nu <= 1e3):
        # log(nu + q) - log(nu) is SIMD-fast and, for moderate df, as accurate as log1p(q/nu).
        if w is None:
            sum_log = np.log(a).sum(axis=1) - x.shape[1] * np.log(nu[:, 0])
        else:
            sum_log = row_dot(np.log(a), w) - w.sum(axis=1) * np.log(nu[:, 0])
    else:
        sum_log = np.log1p(q / nu).sum(axis=1) if w is None else row_dot(np.log1p(q / nu), w)
    if not np.isfinite(sum_log).all():
        return _partial_sums_far(x, loc, sigma, nu, want_derivs, w)
    if not want_derivs:
        return np.stack([sum_log], axis=1)
    inv_a = np.divide(1.0, a, out=a)
    qa = q * inv_a
    za = z * inv_a
    # Every sum is a dot with 1/A: weighting that factor weights them all.
    right = inv_a if w is None else inv_a * w
    return np.stack([sum_log, row_dot(q, right), row_dot(qa, right), row_dot(z, right),
                     row_dot(za, right), row_dot(inv_a, right)], axis=1)


def _log1p_q_over_nu(d: np.ndarray, scale, nu) -> np.ndarray:
    """log(1 + (d/scale)²/nu), also where (d/scale)² overflows (a value beyond ~1e154 scales
    from loc): there it is 2·(log|d| - log scale) - log nu, the neglected nu/q below rounding."""
    with np.errstate(over="ignore"):
        z = d / scale
        out = np.log1p(z * z / nu)
    far = np.isinf(out)
    if far.any():
        with np.errstate(divide="ignore"):
            exact = 2.0 * (np.log(np.abs(d)) - np.log(scale)) - np.log(nu)
        out = np.where(far, exact, out)
    return out


def _partial_sums_far(x: np.ndarray, loc, sigma, nu, want_derivs: bool,
                      w: np.ndarray | None = None) -> np.ndarray:
    """``_partial_sums`` for rows where some q = z² overflows: the log term from logarithms,
    q/A = 1 and z/A = 1/A = 0 there (their true values are within rounding of these)."""
    d = x - loc
    log_term = _log1p_q_over_nu(d, sigma, nu)
    sum_log = log_term.sum(axis=1) if w is None else row_dot(log_term, w)
    if not want_derivs:
        return np.stack([sum_log], axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        z = d / sigma
        q = z * z
        inv_a = 1.0 / (q + nu)
        far = np.isinf(q)
        qa = np.where(far, 1.0, q * inv_a)
        za = np.where(far, 0.0, z * inv_a)
    if w is None:
        return np.stack([sum_log, qa.sum(axis=1), row_dot(qa, inv_a), za.sum(axis=1),
                         row_dot(za, inv_a), row_dot(inv_a, inv_a)], axis=1)
    right = inv_a * w
    return np.stack([sum_log, row_dot(qa, w), row_dot(qa, right), row_dot(za, w),
                     row_dot(za, right), row_dot(inv_a, right)], axis=1)


def _evaluate(x: np.ndarray, theta: np.ndarray, want_derivs: bool = True,
              w: np.ndarray | None = None):
    """Log-likelihood, gradient and Hessian per row at theta = (loc, log scale, 1/df); with
    ``w`` (per-value counts, the shape of ``x``) those of the weighted sample."""
    width = x.shape[1]
    n = width if w is None else w.sum(axis=1)
    loc, s = theta[:, 0:1], theta[:, 1:2]
    sigma, nu = np.exp(s), 1.0 / theta[:, 2:3]
    if width <= CHUNK:
        sums = _partial_sums(x, loc, sigma, nu, want_derivs, w)
    else:
        sums = sum(_partial_sums(x[:, i:i + CHUNK], loc, sigma, nu, want_derivs,
                                 None if w is None else w[:, i:i + CHUNK])
                   for i in range(0, width, CHUNK))
    sum_log = sums[:, 0]
    ll = n * (_c(nu[:, 0]) - s[:, 0]) - 0.5 * (nu[:, 0] + 1) * sum_log
    if not want_derivs:
        return ll, None, None
    sq1, sq2, sz1, sz2, s2 = (sums[:, k] for k in range(1, 6))
    nu, sig = nu[:, 0], sigma[:, 0]
    h = 0.5 * (nu + 1)
    # Derivatives in (loc, log sigma, df); cancellation-free forms (see module docstring).
    g_mu = 2 * h / sig * sz1
    g_s = -n + 2 * h * sq1
    g_nu = n * _c1(nu) - 0.5 * sum_log + h * sq1 / nu
    h_mumu = 2 * h / sig**2 * (sq2 - nu * s2)
    h_mus = -4 * h * nu / sig * sz2
    h_ss = -4 * h * nu * sq2
    h_munu = (sz1 - 2 * h * sz2) / sig
    h_snu = sq1 - 2 * h * sq2
    h_nunu = n * _c2(nu) + sq1 / nu - h * (sq1 + nu * sq2) / nu**2
    # Chain rule to phi = 1/nu: d/dphi = -nu^2 d/dnu.
    nu2 = nu * nu
    grad = np.stack([g_mu, g_s, -nu2 * g_nu], axis=1)
    hess = np.empty((x.shape[0], 3, 3))
    hess[:, 0, 0], hess[:, 1, 1] = h_mumu, h_ss
    hess[:, 0, 1] = hess[:, 1, 0] = h_mus
    hess[:, 0, 2] = hess[:, 2, 0] = -nu2 * h_munu
    hess[:, 1, 2] = hess[:, 2, 1] = -nu2 * h_snu
    hess[:, 2, 2] = nu2 * nu2 * h_nunu + 2 * nu2 * nu * g_nu
    return ll, grad, hess


def _newton_direction(grad: np.ndarray, hess: np.ndarray, fixed_df: np.ndarray) -> np.ndarray:
    """Ascent direction: Newton where -H is positive definite, else Levenberg-damped."""
    neg_h = -hess.copy()
    g = grad.copy()
    # Rows whose df is pinned at a bound optimize loc and scale only.
    neg_h[fixed_df, 2, :] = 0.0
    neg_h[fixed_df, :, 2] = 0.0
    neg_h[fixed_df, 2, 2] = 1.0
    g[fixed_df, 2] = 0.0
    # Curvatures beyond float range (a bulk squeezed far below the unit): no step; the row stops
    # and the convergence check sends it to the rescaled refit.
    broken = ~(np.isfinite(neg_h).all(axis=(1, 2)) & np.isfinite(g).all(axis=1))
    neg_h[broken], g[broken] = np.eye(3), 0.0
    eig_min = np.linalg.eigvalsh(neg_h)[:, 0]
    scale = np.abs(np.diagonal(neg_h, axis1=1, axis2=2)).max(axis=1)
    shift = np.where(eig_min > 1e-10 * scale, 0.0, -eig_min + 1e-3 * scale + 1e-300)
    neg_h = neg_h + shift[:, None, None] * np.eye(3)
    return np.linalg.solve(neg_h, g[..., None])[..., 0]


def fit_t_rows(x: np.ndarray, theta0: np.ndarray | None = None, *, max_iter: int = 100,
               tol: float = 1e-10, w: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Damped Newton ascent per row; returns theta, loglik, at_bound, and the Hessian and gradient
    at the end. ``w``: per-value counts (the shape of ``x``) of a multiset's distinct values."""
    theta = _start(x, w) if theta0 is None else theta0.copy()
    theta[:, 2] = np.clip(theta[:, 2], _PHI_MIN, _PHI_MAX)
    ll, grad, hess = _evaluate(x, theta, w=w)
    active = np.ones(len(theta), bool)
    for _ in range(max_iter):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        at_cap = ((theta[rows, 2] <= _PHI_MIN) & (grad[rows, 2] < 0)) | (
            (theta[rows, 2] >= _PHI_MAX) & (grad[rows, 2] > 0))
        step = _newton_direction(grad[rows], hess[rows], at_cap)
        # Newton decrement: the predicted gain of the next step. Below 1e-13 of |loglik| (far under
        # the 1e-9 relative accuracy promised) the current point is the optimum; skip another pass.
        free_grad = np.where(at_cap[:, None] & (np.arange(3) == 2), 0.0, grad[rows])
        decrement = 0.5 * row_dot(step, free_grad)
        converged = (decrement >= 0) & (decrement < 1e-13 * np.abs(ll[rows]))
        active[rows[converged]] = False
        rows, step, at_cap = rows[~converged], step[~converged], at_cap[~converged]
        if rows.size == 0:
            break
        # Keep steps in log scale and 1/df modest so a poor start cannot overshoot wildly.
        big = np.maximum(np.abs(step[:, 1]) / 2.0, np.abs(step[:, 2]) / 0.5)
        step *= np.minimum(1.0, 1.0 / np.maximum(big, 1e-300))[:, None]
        accepted = np.zeros(rows.size, bool)
        t = np.ones(rows.size)
        for _halving in range(40):
            pending = ~accepted
            if not pending.any():
                break
            sub = rows[pending]
            trial = theta[sub] + t[pending, None] * step[pending]
            trial[:, 2] = np.clip(trial[:, 2], _PHI_MIN, _PHI_MAX)
            # Row indexing copies; a single long row (the large-tensor case) must not be copied.
            rows_x = x if sub.size == x.shape[0] else x[sub]
            rows_w = w if w is None or sub.size == x.shape[0] else w[sub]
            ll_t, g_t, h_t = _evaluate(rows_x, trial, w=rows_w)
            ok = ll_t >= ll[sub] - 1e-12 * np.abs(ll[sub])
            idx = np.flatnonzero(pending)[ok]
            moved = np.abs(trial[ok] - theta[sub[ok]]).max(axis=1)
            theta[sub[ok]], ll[sub[ok]] = trial[ok], ll_t[ok]
            grad[sub[ok]], hess[sub[ok]] = g_t[ok], h_t[ok]
            accepted[idx] = True
            # A tiny gain alone is no proof of convergence (a step clipped at the df bound gains
            # little while loc and scale are still off), so stop on the step size only.
            done = moved < tol
            active[sub[ok][done]] = False
            t[~accepted] *= 0.5
        # A row whose step cannot be improved on is at its optimum to machine precision.
        active[rows[~accepted]] = False
    at_bound = (theta[:, 2] <= _PHI_MIN * (1 + 1e-9)) | (theta[:, 2] >= _PHI_MAX * (1 - 1e-9))
    return theta, ll, at_bound, hess, grad


def newton_converged(theta: np.ndarray, ll: np.ndarray, grad: np.ndarray,
                     hess: np.ndarray) -> np.ndarray:
    """Per row: is theta a maximum? The undamped Newton decrement ½·gᵀ(-H)⁻¹g, the predicted
    remaining gain, must be below 1e-6 + 1e-9·|loglik| with -H positive definite (df dropped where
    it sits at a bound with the gradient pointing out).

    The ascent's own stopping rules (a tiny damped step, a step that cannot be improved on) also
    hold where it stalled: on badly scaled rows (the bulk squeezed to ~1e-7 of the unit by
    outliers) the Levenberg shift dwarfs the df curvature and every step is tiny. The decrement
    is invariant to such scaling.
    """
    out_low = (theta[:, 2] <= _PHI_MIN * (1 + 1e-9)) & (grad[:, 2] < 0)
    out_high = (theta[:, 2] >= _PHI_MAX * (1 - 1e-9)) & (grad[:, 2] > 0)
    pinned = out_low | out_high
    neg_h, g = -hess.copy(), grad.copy()
    # A df pinned at a bound drops out: loc and scale alone must be at their maximum.
    neg_h[pinned, 2, :] = 0.0
    neg_h[pinned, :, 2] = 0.0
    neg_h[pinned, 2, 2] = 1.0
    g[pinned, 2] = 0.0
    finite = np.isfinite(neg_h).all(axis=(1, 2)) & np.isfinite(g).all(axis=1)
    neg_h[~finite], g[~finite] = np.eye(3), 0.0
    # Jacobi scaling makes the positive-definiteness test independent of the units.
    d = np.sqrt(np.abs(np.diagonal(neg_h, axis1=1, axis2=2)))
    usable = finite & (d > 0).all(axis=1)
    d[~usable] = 1.0
    scaled = neg_h / (d[:, :, None] * d[:, None, :])
    definite = np.linalg.eigvalsh(scaled)[:, 0] > 1e-12
    scaled[~definite] = np.eye(3)
    w = g / d
    decrement = 0.5 * row_dot(w, np.linalg.solve(scaled, w[..., None])[..., 0])
    return usable & definite & (decrement <= 1e-6 + 1e-9 * np.abs(ll))


# Widest standardized range the refit accepts: squares stay below 1e280, their sums finite.
_MAX_RANGE = 1e140


def _robust_units(x: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Median and interquartile range of each sorted row (the RMS deviation where the quartiles
    tie), but at least the range over ``_MAX_RANGE``: an outlier 1e200 interquartile ranges out
    must not overflow z² (the bulk then sits near 1e-60, where its curvature, ~1/σ², is finite).
    With ``w`` (per-value counts), those of the expanded sample."""
    if w is None:
        n = x.shape[1]
        med = row_median(x)
        iqr = x[:, (3 * (n - 1)) // 4] - x[:, (n - 1) // 4]
        with np.errstate(over="ignore"):
            rms = np.sqrt(np.mean((x - med[:, None]) ** 2, axis=1))
    else:
        med, iqr, rms = np.array([_weighted_units(v, c) for v, c in zip(x, w, strict=True)]).T
    unit = np.where(iqr > 0, iqr, rms)
    return med, np.maximum(unit, (x[:, -1] - x[:, 0]) / _MAX_RANGE)


def _weighted_units(values: np.ndarray, counts: np.ndarray) -> tuple[float, float, float]:
    """``_robust_units``' median, interquartile range and RMS deviation of the expanded sample."""
    cum = weighted.positions(counts)
    n = int(cum[-1])
    med = weighted.median(values, cum)
    hi, lo = weighted.order_stat(values, cum, np.array([(3 * (n - 1)) // 4, (n - 1) // 4]))
    with np.errstate(over="ignore"):
        d = values - med
        rms = math.sqrt(dot(counts, d * d) / n)
    return med, hi - lo, rms


def _refit_rescaled(x: np.ndarray, w: np.ndarray | None = None):
    """Fit rows afresh in robust units (median 0, interquartile range 1) and map back; the
    Hessian is returned in the rescaled units, where it serves only the df's standard error,
    which the rescaling leaves unchanged."""
    med, unit = _robust_units(x, w)
    y = (x - med[:, None]) / unit[:, None]
    theta, ll, at_bound, hess, grad = fit_t_rows(y, w=w)
    converged = newton_converged(theta, ll, grad, hess)
    theta[:, 0] = med + unit * theta[:, 0]
    theta[:, 1] += np.log(unit)
    n = x.shape[1] if w is None else w.sum(axis=1)
    return theta, ll - n * np.log(unit), at_bound, hess, converged
