"""Uniform + Student-t mixture: a layer partly still at its uniform initialization.

PyTorch's default ``nn.Linear`` / ``nn.Conv`` initialization is U(-1/sqrt(fan_in), 1/sqrt(fan_in))
and Keras' Glorot/He-uniform ones are uniform too, so a layer whose slices were never trained (or
barely moved) holds a share of values still uniform on (loc - c, loc + c) beside trained ones,
which are heavy-tailed. The density is

    f(x) = w · 1{|x - loc| <= c} / (2c) + (1 - w) · t_df((x - loc) / scale) / scale,

with ``scale`` the t part's scale and the scale-free shapes (uniform_share w, half_width h = c/scale,
df). It nests the Student-t at w = 0.

Fitting: ``uniform_mix_fit`` (maximum likelihood by coordinate ascent over the smooth parameters
and the edges).

Degenerate solutions. Any mixture of a uniform and a location-scale law has an unbounded
likelihood: a uniform squeezed onto a few values near loc (c -> 0, height w/(2c) -> inf), or a t
squeezed onto one value while the uniform explains the rest (scale -> 0). Both are excluded by
bounds that say what the model is for, a plateau beside a bulk: the uniform holds at least
20 values (or 1% of them, if fewer) and 0.05 <= c / scale <= 200, so c is bounded
below by an order statistic and the t's scale by c / 200.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import optimize, special

from .base import BatchFit, Family, ShapeDisplay, row_median
from .student_t import DF_MIN, StudentT
from .uniform_mix_fit import DF_CAP, H_MAX, H_MIN, W_ZERO, fit_core, log_mix, unpack

_T = StudentT()


def _take(fit: BatchFit, rows: np.ndarray) -> BatchFit:
    """The given rows of a BatchFit."""
    pick = {f: getattr(fit, f)[rows] for f in ("loc", "scale", "shape", "loglik", "at_bound",
                                                "log_shape_se")}
    return replace(fit, **pick, more=tuple(m[rows] for m in fit.more),
                   converged=None if fit.converged is None else fit.converged[rows])


class UniformT(Family):
    name = "unif_t"
    label = "uniform + Student-t mixture"
    aliases = ("uniform-t", "uniform_t", "uniformt", "unif-t", "uniform+t")
    color, marker = "#bcbd22", "X"
    n_params = 5
    shape_names = ("uniform_share", "half_width", "df")
    shape_bounds = ((1e-6, 1.0 - 1e-6), (H_MIN, H_MAX), (DF_MIN, DF_CAP))
    shape_start = (0.5, 1.5, 10.0)
    null_tables = False
    truncated_fit = False  # a generic optimizer over every parameter is minutes per pruned layer
    bootstrap_replicates = 99
    default = False
    group = "mixtures"
    shape_display = ShapeDisplay(
        symbol="w", title="share of values still at a uniform initialization", shown_up_to=1.0,
        beyond="", digits=3)

    def fit_rows(self, x: np.ndarray, *, start: BatchFit | None = None) -> BatchFit:
        rows, n = x.shape
        flat = ~(x[:, -1] > x[:, 0])
        if flat.any():
            # A row without spread (or with NaN) has no uniform to find: the t's answer, w = 0.
            return self._fit_with_flat_rows(x, flat, start)
        # Rows far from unit scale (1e-300, 1e200) are fitted in robust units and mapped back
        # (the family is location-scale); fit_tensor's standardized values skip the copy.
        med = row_median(x)
        unit = x[:, (3 * (n - 1)) // 4] - x[:, (n - 1) // 4]
        unit = np.where(unit > 0, unit, x[:, -1] - x[:, 0])
        unit = np.where(unit > 0, unit, 1.0)  # a constant row has no scale to map back
        if not np.all((unit > 1e-8) & (unit < 1e8) & (np.abs(med) < 1e8 * unit)):
            y = (x - med[:, None]) / unit[:, None]
            if start is not None:
                start = replace(start, loc=(start.loc - med) / unit, scale=start.scale / unit)
            fit = self.fit_rows(y, start=start)
            return replace(fit, loc=med + unit * fit.loc, scale=unit * fit.scale,
                           loglik=fit.loglik - n * np.log(unit))
        theta, c, ll, tfit, at_max = fit_core(x, start)
        loc, sigma, nu, w = (v[:, 0] for v in unpack(theta))
        # The t alone (w = 0) wins where the uniform adds nothing: report the collapse, not a
        # uniform of negligible share whose edge no data decide.
        collapse = ~(ll > tfit.loglik) | (w < W_ZERO) | ~np.isfinite(ll)
        h = np.clip(c / sigma, H_MIN, H_MAX)
        h = np.where(np.isfinite(h), h, 1.0)
        t_conv = np.ones(rows, bool) if tfit.converged is None else tfit.converged
        nan = np.full(rows, np.nan)
        return BatchFit(
            np.where(collapse, tfit.loc, loc), np.where(collapse, tfit.scale, sigma),
            np.where(collapse, 0.0, w), np.where(collapse, tfit.loglik, ll),
            collapse | (w >= 1.0 - 1e-6), nan, np.where(collapse, t_conv, at_max),
            more=(h, np.where(collapse, tfit.shape, nu)))

    def _fit_with_flat_rows(self, x: np.ndarray, flat: np.ndarray, start: BatchFit | None):
        """Rows without spread get the t's answer with w = 0; the others the mixture fit."""
        out = _T.fit_rows(x)
        rows = x.shape[0]
        one = np.ones(rows)
        out = replace(out, shape=np.zeros(rows), at_bound=np.ones(rows, bool),
                      log_shape_se=one * np.nan, more=(one, out.shape),
                      converged=one.astype(bool) if out.converged is None else out.converged)
        if flat.all():
            return out
        keep = np.flatnonzero(~flat)
        sub_start = None if start is None else _take(start, keep)
        sub = self.fit_rows(x[keep], start=sub_start)
        merged = {}
        for f in ("loc", "scale", "shape", "loglik", "at_bound", "log_shape_se", "converged"):
            a = getattr(out, f).copy()
            a[keep] = getattr(sub, f)
            merged[f] = a
        more = []
        for a, b in zip(out.more, sub.more, strict=True):
            a = a.copy()
            a[keep] = b
            more.append(a)
        return replace(out, more=tuple(more), **merged)

    def bound_flag(self, shape: float) -> str:
        if shape <= 0.0:
            return "uniform_share_zero: no uniform part, the mixture collapses to the Student-t"
        return "uniform_share_one: every value sits in the uniform; the t part is undetermined"

    def fit_note(self, theta: tuple[float, ...]) -> str:
        loc, scale, w, h, df = theta
        rest = ("Gaussian (Student-t df at its cap)" if df >= DF_CAP * (1 - 1e-9)
                else f"Student-t df {df:.3g}")
        if w <= 0.0:
            return f"no share at a uniform initialization: {rest}"
        c = h * scale  # the edge in the data's units, to hold against 1/sqrt(fan_in)
        return (f"{100 * w:.0f}% still at its uniform initialization U({loc - c:.3g}, "
                f"{loc + c:.3g}), the rest {rest}")

    def logpdf(self, x, loc, scale, w, h, df):
        x, loc, scale, w, h, df = np.broadcast_arrays(*(np.asarray(v, float)
                                                        for v in (x, loc, scale, w, h, df)))
        return log_mix(x - loc, scale, df, w, h * scale)

    def cdf(self, x, loc, scale, w, h, df):
        z = (np.asarray(x, float) - loc) / scale
        uni = np.clip((z + h) / (2.0 * h), 0.0, 1.0)
        return w * uni + (1.0 - w) * special.stdtr(df, z)

    def standard_rvs(self, rng, size, w, h, df):
        pick = rng.random(size) < w
        t = rng.standard_t(df, size)
        u = rng.uniform(-h, h, size)
        return np.where(pick, u, t)

    def frozen(self, loc, scale, w, h, df):
        return FrozenUniformT(self, float(loc), float(scale), float(w), float(h), float(df))


class FrozenUniformT:
    """The fitted mixture with scipy's frozen-distribution interface (ppf by root finding)."""

    def __init__(self, family: UniformT, loc: float, scale: float, w: float, h: float, df: float):
        self.family = family
        self.args = (loc, scale, w, h, df)

    def logpdf(self, x):
        return self.family.logpdf(np.asarray(x, float), *self.args)

    def pdf(self, x):
        return np.exp(self.logpdf(x))

    def cdf(self, x):
        return self.family.cdf(np.asarray(x, float), *self.args)

    def sf(self, x):
        loc = self.args[0]
        return self.family.cdf(2.0 * loc - np.asarray(x, float), *self.args)  # symmetric about loc

    def ppf(self, p):
        p = np.asarray(p, float)
        loc, scale, w, h, df = self.args
        out = np.full(p.shape, np.nan)
        flat, res = p.ravel(), out.ravel()
        for i, pi in enumerate(flat):
            if pi == 0.0 or pi == 1.0:
                res[i] = math.copysign(math.inf, pi - 0.5) if w < 1.0 else loc + (2 * pi - 1) * h * scale
                continue
            if not 0.0 < pi < 1.0:
                continue
            # The t part alone bounds the quantile: F >= (1 - w) F_t on the left, and so on.
            lo = loc + scale * min(-h, float(special.stdtrit(df, max(pi / 2.0, 1e-300))))
            hi = loc + scale * max(h, float(special.stdtrit(df, min(0.5 + pi / 2.0, 1.0 - 1e-16))))
            lo, hi = min(lo, loc - h * scale), max(hi, loc + h * scale)
            while self.cdf(lo) > pi:
                lo = loc - 2.0 * (loc - lo)
            while self.cdf(hi) < pi:
                hi = loc + 2.0 * (hi - loc)
            res[i] = optimize.brentq(lambda v, q=pi: float(self.cdf(v)) - q, lo, hi, xtol=1e-14 * scale,
                                     rtol=1e-14)
        return out if out.ndim else float(out)

    def rvs(self, size=None, random_state=None):
        rng = np.random.default_rng(random_state)
        loc, scale, w, h, df = self.args
        return loc + scale * self.family.standard_rvs(rng, size, w, h, df)

    def mean(self):
        return self.args[0]

    def median(self):
        return self.args[0]


__all__ = ["UniformT", "FrozenUniformT"]
