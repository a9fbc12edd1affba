"""Student-t family: three-parameter maximum likelihood by a damped Newton method (one row:
``student_t_one``; a batch of rows, and a second try where one row stalls: ``student_t_fit``),
the CDF from ``scipy.special.stdtr``.

The expensive incomplete-beta CDF is never evaluated by the fit.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from . import weighted
from .base import BatchFit, Family, Nesting, ShapeDisplay, strided_quantiles
from .student_t_fit import (  # noqa: F401  (re-exported: uniform_mix_fit and tests import them)
    DF_MAX,
    DF_MIN,
    _c,
    _c1,
    _c2,
    _log1p_q_over_nu,
    _refit_rescaled,
    fit_t_rows,
    newton_converged,
)
from .student_t_one import _Fallback, fit_t_one

_SUBSAMPLE = 16384
# Up to this df the log-kernel takes log(df + q) - log(df) (a vectorized log) for log1p(q / df)
# (a scalar loop, 2.3x dearer): the difference's rounding, times (df + 1) / 2, stays below 2e-13.
_LOG_KERNEL_DF = 100.0


def _fit_one_row(x: np.ndarray, start: BatchFit | None, w: np.ndarray | None):
    """``fit_t_one`` where ``x`` is one row it can take, else None (the batched ascent runs).

    A short row without a start keeps the batched ascent, which fits it exactly as it fits that
    row within a batch: the shipped KS null tables (``nulltables``, sizes up to 5,000) were
    simulated by it and must be reproduced byte for byte, and families that start from the t
    (uniform_mix) fit a row alone as in a batch. That ascent stops within ~1e-7 of the maximum;
    ``fit_t_one`` on the maximum to rounding."""
    if x.shape[0] != 1:
        return None
    if start is None and (x.shape[1] if w is None else w.sum()) <= 2 * _SUBSAMPLE:
        return None
    theta0 = None
    if start is not None:
        theta0 = (float(start.loc[0]), math.log(float(start.scale[0])), 1.0 / float(start.shape[0]))
        if not all(map(math.isfinite, theta0)):
            theta0 = None
    try:
        return fit_t_one(x[0], None if w is None else w[0], theta0)
    except (_Fallback, np.linalg.LinAlgError):
        return None


def _fit_batched(x: np.ndarray, start: BatchFit | None, w: np.ndarray | None):
    """``fit_t_rows`` on every row, from ``start`` or, for one long row, from the fit of its
    strided quantiles; theta, loglik, at_bound, Hessian, gradient and converged per row."""
    theta0 = None
    if x.shape[0] == 1 and w is None and x.shape[1] > 2 * _SUBSAMPLE:
        # Converge on exact quantiles first; the full data then needs a step or two.
        theta0, *_ = fit_t_rows(strided_quantiles(x, _SUBSAMPLE))
    elif x.shape[0] == 1 and w is not None and w.sum() > 2 * _SUBSAMPLE:
        # The expanded sample's start: the fit on its strided quantiles, counted.
        sub_v, sub_c = weighted.strided_quantile_counts(x[0], w[0], _SUBSAMPLE)
        theta0, *_ = fit_t_rows(sub_v[np.newaxis, :], w=sub_c[np.newaxis, :])
    elif start is not None:
        theta0 = np.stack([start.loc, np.log(start.scale), 1.0 / start.shape], axis=1)
    theta, ll, at_bound, hess, grad = fit_t_rows(x, theta0, w=w)
    return theta, ll, at_bound, hess, grad, newton_converged(theta, ll, grad, hess)


class StudentT(Family):
    name = "t"
    label = "Student-t"
    aliases = ("student-t", "studentt", "student_t", "student")
    color, marker = "#2ca02c", "^"
    scipy_name = "t"
    n_params = 3
    shape_names = ("df",)
    shape_bounds, shape_start = ((DF_MIN, 1e6),), (10.0,)
    nests = (Nesting("normal", math.inf, boundary=True),)
    shape_display = ShapeDisplay(
        symbol="df", title="Student-t degrees of freedom (large df → Gaussian)",
        # df beyond ~1e3 is indistinguishable from the Gaussian limit (fits run to the 1e10 cap)
        shown_up_to=1e3, beyond="Gaussian limit", log_axis=True, infinite_from=DF_MAX * (1 - 1e-9))
    shape_grid = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0, 50.0, 200.0, 1e6)

    def fit_rows(self, x: np.ndarray, *, start: BatchFit | None = None) -> BatchFit:
        return self._fit(x, start, None)

    def fit_weighted(self, values: np.ndarray, counts: np.ndarray, *,
                     start: BatchFit | None = None) -> BatchFit:
        """``fit_rows`` of the expanded sample with every sum weighted by the counts, each pass
        over the distinct values only. Both ascents end on the maximum to within rounding (a
        last Newton step in the quadratic regime), so the weighted fit need not retrace the
        expanded sample's path to agree with it."""
        return self._fit(values[np.newaxis, :], start, counts[np.newaxis, :])

    def _fit(self, x: np.ndarray, start: BatchFit | None, w: np.ndarray | None) -> BatchFit:
        """Fit every row of ``x``; ``w``: per-value counts of one multiset row, or None."""
        one = _fit_one_row(x, start, w)
        if one is not None:
            theta, ll, at_bound, hess, grad = one
            converged = newton_converged(theta, ll, grad, hess)
        if one is None or not converged[0]:
            # The batched ascent fits every row of a batch, and gives a row the one-row ascent
            # left short of a maximum (no maximum exists where an atom holds enough of the mass)
            # a second try from its own start; the better likelihood wins.
            try:
                batched = _fit_batched(x, start, w)
            except np.linalg.LinAlgError:
                # Curvatures beyond float range (a bulk squeezed to ~1e-188 of the unit by an
                # outlier 1e200 times wider): every row goes to the rescaled refit below.
                rows = x.shape[0]
                batched = (np.full((rows, 3), np.nan), np.full(rows, -np.inf),
                           np.zeros(rows, bool), np.full((rows, 3, 3), np.nan), None,
                           np.zeros(rows, bool))
            if one is None or batched[1][0] > ll[0]:
                theta, ll, at_bound, hess, _, converged = batched
        if not converged.all():
            # A stalled row gets a second, independent try in well-scaled units; the better
            # likelihood wins, so rows that converged are never touched.
            rows = np.flatnonzero(~converged)
            scaled = np.all(np.isfinite(x[rows]), axis=1) & (x[rows, -1] > x[rows, 0])
            rows = rows[scaled]
            if rows.size:
                r_theta, r_ll, r_bound, r_hess, r_conv = _refit_rescaled(
                    x[rows], None if w is None else w[rows])
                better = np.isfinite(r_ll) & ~(r_ll <= ll[rows])
                take = rows[better]
                theta[take], ll[take], at_bound[take] = r_theta[better], r_ll[better], r_bound[better]
                hess[take], converged[take] = r_hess[better], r_conv[better]
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = np.linalg.inv(-hess)
            # se of log(df) = se of log(phi) = se(phi) / phi.
            se = np.sqrt(cov[:, 2, 2]) / theta[:, 2]
        se[at_bound | ~np.isfinite(se)] = np.nan
        return BatchFit(theta[:, 0], np.exp(theta[:, 1]), 1.0 / theta[:, 2], ll, at_bound, se,
                        converged)

    def shape_scores(self, z, scale, shape):
        """r = z / scale, w = (df + 1) / (df + r^2): d/dlog(scale) = -1 + w r^2;
        d/dlog(df) = df/2 [psi((df+1)/2) - psi(df/2) - 1/df - log1p(r^2/df) + w r^2/df]."""
        r2 = (z / scale) ** 2
        w = (shape + 1.0) / (shape + r2)
        const = special.digamma((shape + 1) / 2) - special.digamma(shape / 2) - 1.0 / shape
        s_shape = 0.5 * shape * (const - np.log1p(r2 / shape) + w * r2 / shape)
        return np.stack([w * r2 - 1.0, s_shape], axis=1)

    def bound_flag(self, shape: float) -> str:
        if shape > 1e3:
            return "df_at_cap: the t fit runs to the Gaussian limit"
        return super().bound_flag(shape)

    def logpdf(self, x, loc, scale, shape):
        return (_c(shape) - np.log(scale)
                - 0.5 * (shape + 1) * _log1p_q_over_nu(x - loc, scale, shape))

    def log_kernel(self, x, out, loc, scale, shape):
        np.subtract(x, loc, out=out)
        moderate = shape <= _LOG_KERNEL_DF
        log_df = math.log(shape) if moderate else 0.0
        with np.errstate(over="ignore"):
            out *= 1.0 / scale
            out *= out
            if moderate:  # log(nu + q), the log1p below plus log(nu)
                out += shape
                np.log(out, out=out)
            else:
                out *= 1.0 / shape
                np.log1p(out, out=out)
        far = np.isinf(out)
        if far.any():  # (x - loc)^2 overflowed: the exact far-tail form of log1p(q / nu)
            out[far] = _log1p_q_over_nu(np.asarray(x)[far] - loc, scale, shape) + log_df
        out *= -0.5 * (shape + 1)
        return float(_c(shape) - np.log(scale) + 0.5 * (shape + 1) * log_df)

    def cdf(self, x, loc, scale, shape):
        return special.stdtr(shape, (x - loc) / scale)

    def standard_rvs(self, rng, size, shape):
        return rng.standard_t(shape, size)

    def frozen(self, loc, scale, shape):
        return stats.t(shape, loc, scale)
