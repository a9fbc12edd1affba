"""Generalized normal family (scipy's ``gennorm``): beta = 1 is Laplace, beta = 2 is Gaussian.

The class holds what the rest of the package reads (densities, CDF, bounds, display); the
maximum-likelihood machinery (coordinate ascent, loc searches, the long-row polish, the weighted
fit of counted values) lives in ``gennorm_fit``.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from . import weighted
from .base import (
    BatchFit,
    Family,
    Nesting,
    ShapeDisplay,
)
from .gennorm_cusps import global_cusp_fit
from .gennorm_fit import (
    _NEWTON_BETA,
    _SUBSAMPLE,
    BETA_MAX,
    BETA_MIN,
    _batch_fit,
    _beta_newton,
    _fit_long_row,
    _size,
    fit_gennorm_rows,
)
from .gennorm_local import _power
from .gennorm_newton import polish_newton


def _upper_gamma(a, x):
    """The regularized upper incomplete gamma Q(a, x), to within 3e-14 relative.

    ``special.gammaincc`` is 2-4x slower than ``special.gammainc`` below x = a + 1, where its
    continued fraction converges slowly. There P(a, x) is at most ~0.92 (a = 0.5), so 1 - P
    keeps Q to a few units of 1e-14; only the far tail, where Q is small and 1 - P would cancel
    (Anderson-Darling's log F in the tails), needs gammaincc. The KS and Anderson-Darling
    statistics evaluate the CDF at every subsample value of every tensor.
    """
    a, x = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(x, dtype=float))
    near = x < a + 1.0
    out = np.empty(x.shape)
    out[near] = 1.0 - special.gammainc(a[near], x[near])
    far = ~near
    out[far] = special.gammaincc(a[far], x[far])
    return out


class GenNorm(Family):
    name = "gennorm"
    label = "generalized normal"
    aliases = ("generalized-normal", "generalized_normal", "ggd", "gnd")
    color, marker = "#9467bd", "D"
    scipy_name = "gennorm"
    n_params = 3
    shape_names = ("beta",)
    shape_bounds, shape_start = ((BETA_MIN, BETA_MAX),), (2.0,)
    nests = (Nesting("normal", 2.0), Nesting("laplace", 1.0))
    shape_display = ShapeDisplay(symbol="β", title="", shown_up_to=6.0, beyond="flat, uniform-like",
                                 references=((2.0, "normal"), (1.0, "laplace")))
    shape_grid = (0.3, 0.5, 0.7, 0.85, 1.0, 1.2, 1.4, 1.7, 2.0, 2.5, 3.0, 4.0, 6.0)

    def fit_rows(self, x: np.ndarray, *, start: BatchFit | None = None) -> BatchFit:
        n = x.shape[1]
        if x.shape[0] == 1 and n > 2 * _SUBSAMPLE:
            loc, beta, s, ll, d2 = _fit_long_row(x)
        else:
            loc0 = beta0 = None
            polished = None
            if start is not None:
                loc0, beta0 = start.loc, start.shape
                if x.shape[0] == 1 and _NEWTON_BETA[0] < beta0[0] < _NEWTON_BETA[1]:
                    # A start from the same data's larger sample is close: Newton needs few passes.
                    polished = polish_newton(x[0], float(loc0[0]), float(beta0[0]), _NEWTON_BETA,
                                             max_steps=30)
            if polished is None:
                polished = fit_gennorm_rows(x, loc0, beta0, local_costs=True)
            loc, beta, s, ll, d2 = polished
        return _batch_fit(n, loc, beta, s, ll, d2)

    def fit(self, x_sorted: np.ndarray) -> BatchFit:
        """Fit one sorted sample; below beta = 1 the loc is searched over the data values (see
        ``gennorm_cusps``: the local search can stop on a cusp that is not the highest)."""
        row = x_sorted[np.newaxis, :]
        if row.shape[1] > 2 * _SUBSAMPLE:
            local = _batch_fit(row.shape[1], *_fit_long_row(row, cusp_search=True))
        else:
            local = self.fit_rows(row)
        return self._finish(x_sorted, local)

    def fit_weighted(self, values: np.ndarray, counts: np.ndarray, *,
                     start: BatchFit | None = None) -> BatchFit:
        """The fit of ``np.repeat(values, counts)`` on the distinct values: every sum weighted
        by the counts, every order statistic (median, strided quantiles, cusp candidates) that
        of the expanded multiset, so it takes the path ``fit`` takes on the expanded sample, at
        a cost per pass proportional to the number of distinct values. ``start`` is not used
        (as ``fit`` has none)."""
        w = np.asarray(counts, dtype=np.float64)
        x = values[np.newaxis, :]
        n = weighted.total(w)
        if n > 2 * _SUBSAMPLE:
            found = _fit_long_row(x, w, cusp_search=True)
        else:
            found = fit_gennorm_rows(x, w=w, local_costs=True)
        return self._finish(values, _batch_fit(float(n), *found), w)

    def _finish(self, x_sorted: np.ndarray, local: BatchFit,
                w: np.ndarray | None = None) -> BatchFit:
        """The local fit's finishing steps: the global cusp search below beta = 1, else the
        joint polish; then the restarts near the cusp. ``w``: a count per value."""
        if not local.shape[0] < 1.05:
            return self._restart_near_cusp(x_sorted, self._polish(x_sorted, local, w), w)
        found = global_cusp_fit(x_sorted, float(local.loc[0]), float(local.shape[0]),
                                float(local.loglik[0]), _beta_newton, w=w)
        if found is not None and found[3][0] > local.loglik[0]:
            local = _batch_fit(_size(x_sorted[np.newaxis, :], w), *found)
        return self._restart_near_cusp(x_sorted, local, w)

    def _restart_near_cusp(self, x_sorted: np.ndarray, fit: BatchFit,
                           w: np.ndarray | None = None) -> BatchFit:
        """Just above beta = 1 the values near loc still make near-cusps, and loc and beta can
        settle on a local optimum (beta 1.10 where scipy found 1.22, 0.004 nats higher, on 40
        values). Restart the coordinate ascent from the mean with beta 1.5 and 2 (the side
        away from the cusps); the best likelihood wins."""
        beta = float(fit.shape[0])
        row = x_sorted[np.newaxis, :]
        n = _size(row, w)
        if not beta < _NEWTON_BETA[0] + 0.35 or n > 2 * _SUBSAMPLE:
            return fit
        mean = row.mean(axis=1) if w is None else np.array([weighted.moments(x_sorted, w)[0]])
        best, best_ll = None, float(fit.loglik[0])
        started = []  # beta after each restart's first step
        for beta0 in (1.5, 2.0):
            # A restart's path is a function of (loc, beta) after its first step, beta's Newton
            # at the mean: the profile likelihood in beta at a fixed loc has one maximum, so a
            # second start that reaches the first one's beta would retrace its path.
            first = _beta_newton(row, mean, np.array([beta0]), w=w)
            if any(abs(first[0][0] - b) <= 1e-9 * b for b in started):
                continue
            started.append(float(first[0][0]))
            alt = fit_gennorm_rows(row, mean, np.array([beta0]), rounds=50, w=w,
                                   local_costs=True, first=first)
            if alt[3][0] > best_ll:
                best, best_ll = alt, float(alt[3][0])
        return fit if best is None else _batch_fit(n, *best)

    def _polish(self, x_sorted: np.ndarray, local: BatchFit,
                w: np.ndarray | None = None) -> BatchFit:
        """Finish the coordinate ascent where loc and beta are coupled (small skewed samples:
        six rounds stopped 1e-7 of the log-likelihood short of scipy's on 40 values): joint
        Newton where it is safe, else more rounds; the better likelihood wins."""
        n = _size(x_sorted[np.newaxis, :], w)
        if n > 2 * _SUBSAMPLE:  # the long-row path polishes to convergence itself
            return local
        loc, beta = float(local.loc[0]), float(local.shape[0])
        found = None
        if _NEWTON_BETA[0] < beta < _NEWTON_BETA[1]:
            found = polish_newton(x_sorted, loc, beta, _NEWTON_BETA, max_steps=50, w=w)
        if found is None:
            found = fit_gennorm_rows(x_sorted[np.newaxis, :], local.loc, local.shape, rounds=50,
                                     w=w, local_costs=True)
        if not found[3][0] > local.loglik[0]:
            return local
        return _batch_fit(n, *found)

    def shape_scores(self, z, scale, shape):
        """a = |z| / scale: d/dlog(scale) = -1 + beta a^beta;
        d/dlog(beta) = 1 + psi(1/beta)/beta - beta a^beta log a."""
        a = np.abs(z / scale)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), 0.0)
        pw = np.exp(shape * log_a) * (a > 0)
        s_shape = 1.0 + special.digamma(1.0 / shape) / shape - shape * pw * log_a
        return np.stack([shape * pw - 1.0, s_shape], axis=1)

    def logpdf(self, x, loc, scale, shape):
        z = np.abs(x - loc) / scale
        return np.log(0.5 * shape) - special.gammaln(1.0 / shape) - np.log(scale) - z**shape

    def log_kernel(self, x, out, loc, scale, shape):
        np.subtract(x, loc, out=out)
        np.abs(out, out=out)
        out *= 1.0 / scale
        _power(out, shape)  # exp(beta log z): 1.5x np.power's speed, within a few ulps
        np.negative(out, out=out)
        return float(np.log(0.5 * shape) - special.gammaln(1.0 / shape) - np.log(scale))

    def cdf(self, x, loc, scale, shape):
        z = (x - loc) / scale
        c = 0.5 * np.sign(z)
        return (0.5 + c) - c * _upper_gamma(1.0 / shape, np.abs(z) ** shape)

    def standard_rvs(self, rng, size, shape):
        g = rng.standard_gamma(1.0 / shape, size) ** (1.0 / shape)
        return np.where(rng.random(size) < 0.5, -g, g)

    def frozen(self, loc, scale, shape):
        return stats.gennorm(shape, loc, scale)
