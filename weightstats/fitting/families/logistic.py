"""Logistic family: two-parameter maximum likelihood by a vectorized Newton method.

The score equations (sum of tanh(z/2) = 0, sum of z tanh(z/2) = n) have no closed form. In the
natural coordinates (eta, tau) = (loc / scale, 1 / scale) the log-likelihood

    l(eta, tau) = sum phi(tau x - eta) + n log tau,   phi(z) = -|z| - 2 log1p(exp(-|z|)),

is strictly concave (phi is the log of a log-concave density), so Newton's method with a
backtracking line search reaches the unique maximum from any start, and near it converges
quadratically. Every row of a batch takes its own steps; one pass over the data per iteration
gives the gradient and Hessian from six sums.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from . import weighted
from .base import CHUNK, BatchFit, Family, dot, row_median, row_sum, strided_quantiles

_LN3 = math.log(3.0)  # the standard logistic's upper quartile
_LN2 = math.log(2.0)
_SUBSAMPLE = 16384
_MAX_ITER = 60
_MAX_HALVINGS = 40
# A Newton step that moves loc by less than this many scales and the scale by less than this
# fraction is the last one: quadratic convergence puts the error after it near 1e-14, so it is
# taken without another pass.
_STEP_TOL = 1e-7
_ROUNDING = 1e-13  # relative rounding allowed for in the line search's comparison


def _sums(y: np.ndarray, eta: np.ndarray, tau: np.ndarray, *, value: bool,
          derivs: bool, weights: np.ndarray | None = None) -> np.ndarray:
    """Per row of the standardized values ``y``, with z = tau y - eta: column 0 sum phi(z) (with
    ``value``), columns 1-5 (with ``derivs``) sum t, sum t y, sum w, sum w y, sum w y^2 where
    t = tanh(z/2) = -phi'(z) and w = sech^2(z/2) / 2 = -phi''(z). Columns are summed in chunks,
    so no full-size temporary is made. ``weights`` (the shape of ``y``): each value counts that
    many times (a multiset given by its distinct values)."""
    out = np.zeros((y.shape[0], 6))
    eta, tau = eta[:, None], tau[:, None]
    # A trial step far too long can overflow z; its likelihood is then not finite and the line
    # search rejects it, so the overflow is expected.
    with np.errstate(over="ignore", invalid="ignore"):
        _accumulate(out, y, eta, tau, value, derivs, weights)
    return out


def _accumulate(out, y, eta, tau, value: bool, derivs: bool, weights) -> None:
    for i in range(0, y.shape[1], CHUNK):
        yc = y[:, i:i + CHUNK]
        wc = None if weights is None else weights[:, i:i + CHUNK]
        z = tau * yc - eta
        a = np.abs(z)
        e = np.exp(-a)
        if value:
            term = -a - 2.0 * np.log1p(e)
            out[:, 0] += (term if wc is None else term * wc).sum(axis=1)
        if derivs:
            inv = 1.0 / (1.0 + e)
            t = np.copysign((1.0 - e) * inv, z)
            w = 2.0 * e * inv * inv
            if wc is not None:  # every sum below is linear in t and w
                t, w = t * wc, w * wc
            wy = w * yc
            out[:, 1] += t.sum(axis=1)
            out[:, 2] += (t * yc).sum(axis=1)
            out[:, 3] += w.sum(axis=1)
            out[:, 4] += wy.sum(axis=1)
            out[:, 5] += (wy * yc).sum(axis=1)


def _count(y: np.ndarray, weights: np.ndarray | None):
    """Values per row: the row length, or the total weight (per row) of a weighted sample."""
    return y.shape[1] if weights is None else weights.sum(axis=1)


def _loglik(y: np.ndarray, eta: np.ndarray, tau: np.ndarray,
            weights: np.ndarray | None = None) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (_sums(y, eta, tau, value=True, derivs=False, weights=weights)[:, 0]
                + _count(y, weights) * np.log(tau))


def _newton(y: np.ndarray, weights: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Maximize l(eta, tau) for every row of ``y`` from (0, 1): (eta, tau, loglik, converged).

    One pass gives the gradient and Hessian (the first also the likelihood); a step is checked by
    a likelihood-only pass, halved until the likelihood does not fall. ``weights``: per-value
    counts (the shape of ``y``), for a multiset given by its distinct values.
    """
    rows = y.shape[0]
    n = _count(y, weights)
    eta, tau = np.zeros(rows), np.ones(rows)
    s = _sums(y, eta, tau, value=True, derivs=True, weights=weights)
    ll = s[:, 0].copy()  # + n log(1)
    converged = np.zeros(rows, bool)
    active = np.flatnonzero(np.isfinite(ll))
    s = s[active]
    for _ in range(_MAX_ITER):
        if not active.size:
            break
        ya = y if active.size == rows else y[active]
        wa = None if weights is None else weights if active.size == rows else weights[active]
        na = n if weights is None else n[active]
        ea, ta = eta[active], tau[active]
        g0, g1 = s[:, 1], na / ta - s[:, 2]
        h00, h01, h11 = -s[:, 3], s[:, 4], -s[:, 5] - na / ta**2
        det = h00 * h11 - h01 * h01  # > 0: the Hessian is negative definite
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            d0 = -(h11 * g0 - h01 * g1) / det
            d1 = -(h00 * g1 - h01 * g0) / det
        ok = np.isfinite(d0) & np.isfinite(d1)
        # Scale-free: loc = eta / tau moves by (d0 - eta d1 / tau) scales, the scale by d1 / tau.
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            moved = np.maximum(np.abs(d0 - ea * d1 / ta), np.abs(d1 / ta))
        small = ok & (moved <= _STEP_TOL)
        # The last step: l rises by g.d / 2 to second order (H d = -g), far below its rounding.
        last = active[small]
        eta[last], tau[last] = ea[small] + d0[small], ta[small] + d1[small]
        ll[last] += 0.5 * (g0[small] * d0[small] + g1[small] * d1[small])
        converged[last] = True
        # Backtracking on the others: halve each row's step until the likelihood does not fall.
        step = np.where(ok & ~small, 1.0, 0.0)
        pending = np.flatnonzero(step > 0)
        base_ll = ll[active]
        for _ in range(_MAX_HALVINGS):
            if not pending.size:
                break
            te = ea[pending] + step[pending] * d0[pending]
            tt = ta[pending] + step[pending] * d1[pending]
            trial = _loglik(ya[pending], te, tt, None if wa is None else wa[pending])
            # Within the rounding of the sum a step is no loss: near the maximum a Newton step of
            # 1e-8 changes the likelihood by less than its last bits.
            counted = n if weights is None else na[pending]
            accept = trial >= base_ll[pending] - _ROUNDING * (np.abs(base_ll[pending]) + counted)
            take = active[pending[accept]]
            eta[take], tau[take], ll[take] = te[accept], tt[accept], trial[accept]
            step[pending[~accept]] *= 0.5
            pending = pending[~accept]
        active = active[step > 0]
        if active.size:
            ya = y if active.size == rows else y[active]
            wa = None if weights is None else weights if active.size == rows else weights[active]
            s = _sums(ya, eta[active], tau[active], value=False, derivs=True, weights=wa)
    return eta, tau, ll, converged


def _start_weighted(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_start`` of the expanded sample ``np.repeat(values, counts)`` (one row), the same order
    statistics and the same sums weighted."""
    cum = weighted.positions(counts)
    n = int(cum[-1])
    loc = weighted.median(values, cum)
    mean_abs = dot(counts, np.abs(values - loc) / n)
    quartiles = weighted.order_stat(values, cum, np.array([(3 * n) // 4, n // 4]))
    scale = max((quartiles[0] - quartiles[1]) / (2.0 * _LN3), mean_abs / (2.0 * _LN2))
    if not scale > 0:  # most values tied: the standard deviation still measures the spread
        mean = dot(counts, values) / n
        scale = math.sqrt(dot(counts, (values - mean) ** 2) / n) * math.sqrt(3.0) / math.pi
    return np.array([loc]), np.array([scale])


def _start(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and a scale: the larger of the quartile-based one (the logistic's quartiles lie at
    loc -/+ scale ln 3) and the mean-absolute-deviation one (E|X - loc| = 2 ln 2 scale). Far
    outliers pull the maximum-likelihood scale up to about the latter (each costs |x - loc| /
    scale), and Newton from the quartiles alone would have to travel many orders of magnitude."""
    n = x.shape[1]
    loc = row_median(x)
    mean_abs = row_sum(x, lambda c: np.abs(c - loc[:, None]) / n)
    scale = np.maximum((x[:, (3 * n) // 4] - x[:, n // 4]) / (2.0 * _LN3), mean_abs / (2.0 * _LN2))
    bad = ~(scale > 0)
    if bad.any():  # most values tied: the standard deviation still measures the spread
        scale[bad] = x[bad].std(axis=1) * math.sqrt(3.0) / math.pi
    return loc, scale


def _fit(x: np.ndarray, loc0: np.ndarray, scale0: np.ndarray, weights: np.ndarray | None = None):
    """Newton in the units of (loc0, scale0); fits map back exactly (location-scale family)."""
    usable = scale0 > 0
    s0 = np.where(usable, scale0, 1.0)
    y = (x - loc0[:, None]) / s0[:, None]
    eta, tau, ll, converged = _newton(y, weights)
    loc = loc0 + s0 * eta / tau
    scale = s0 / tau
    ll = ll - _count(x, weights) * np.log(s0)
    # A constant row has no maximum (the likelihood grows without bound as the scale shrinks).
    loc[~usable], scale[~usable], ll[~usable] = loc0[~usable], 0.0, np.inf
    converged &= usable
    return loc, scale, ll, converged


class Logistic(Family):
    name = "logistic"
    label = "logistic"
    aliases = ("logis", "sech-squared")
    color, marker = "#17becf", "P"
    scipy_name = "logistic"
    n_params = 2
    default = False

    def fit_rows(self, x: np.ndarray, *, start: BatchFit | None = None) -> BatchFit:
        if start is not None and np.all(np.isfinite(start.loc)) and np.all(start.scale > 0):
            loc0, scale0 = start.loc.astype(float), start.scale.astype(float)
        elif x.shape[0] == 1 and x.shape[1] > 2 * _SUBSAMPLE:
            # Converge on exact quantiles first; the full data then needs a step or two.
            sub = strided_quantiles(x, _SUBSAMPLE)
            loc0, scale0, _, _ = _fit(sub, *_start(sub))
        else:
            loc0, scale0 = _start(x)
        loc, scale, ll, converged = _fit(x, loc0, scale0)
        nan = np.full_like(loc, np.nan)
        return BatchFit(loc, scale, nan, ll, np.zeros(loc.shape, bool), nan, converged)

    def fit_weighted(self, values: np.ndarray, counts: np.ndarray, *,
                     start: BatchFit | None = None) -> BatchFit:
        """``fit_rows`` of the expanded sample with every sum weighted by the counts: the same
        Newton steps, each pass over the distinct values only. It starts from the expanded
        sample's median, quartiles and mean absolute deviation unless there are more distinct
        values than a subsample would hold (then from the fit on the expanded sample's strided
        quantiles, as ``fit_rows`` does for long rows)."""
        x, w = values[np.newaxis, :], counts[np.newaxis, :]
        if start is not None and np.all(np.isfinite(start.loc)) and np.all(start.scale > 0):
            loc0, scale0 = start.loc.astype(float), start.scale.astype(float)
        elif values.size > 2 * _SUBSAMPLE:
            sub = weighted.strided_quantiles(values, counts, _SUBSAMPLE)[np.newaxis, :]
            loc0, scale0, _, _ = _fit(sub, *_start(sub))
        else:
            loc0, scale0 = _start_weighted(values, counts)
        loc, scale, ll, converged = _fit(x, loc0, scale0, w)
        nan = np.full_like(loc, np.nan)
        return BatchFit(loc, scale, nan, ll, np.zeros(loc.shape, bool), nan, converged)

    def logpdf(self, x, loc, scale):
        # As scipy.stats.logistic._logpdf: symmetric in z, no overflow in either tail.
        a = -np.abs((x - loc) / scale)
        return a - 2.0 * np.log1p(np.exp(a)) - np.log(scale)

    def cdf(self, x, loc, scale):
        return special.expit((x - loc) / scale)

    def standard_rvs(self, rng, size):
        return rng.logistic(0.0, 1.0, size)

    def frozen(self, loc, scale):
        return stats.logistic(loc, scale)
