"""Gaussian family: closed-form maximum likelihood (mean and ddof-0 standard deviation)."""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from . import weighted
from .base import BatchFit, Family, dot, row_sum

_LOG_2PI = np.log(2.0 * np.pi)


class Normal(Family):
    name = "normal"
    label = "Gaussian"
    aliases = ("gaussian", "norm")
    color, marker = "#1f77b4", "o"
    scipy_name = "norm"
    n_params = 2

    def fit_rows(self, x: np.ndarray, *, start: BatchFit | None = None) -> BatchFit:
        n = x.shape[1]
        loc = x.mean(axis=1)
        scale = np.sqrt(row_sum(x, lambda c: (c - loc[:, None]) ** 2) / n)
        loglik = -0.5 * n * (_LOG_2PI + 2.0 * np.log(scale) + 1.0)
        nan = np.full_like(loc, np.nan)
        return BatchFit(loc, scale, nan, loglik, np.zeros(loc.shape, bool), nan)

    def fit_weighted(self, values: np.ndarray, counts: np.ndarray, *,
                     start: BatchFit | None = None) -> BatchFit:
        """Weighted mean and ddof-0 standard deviation: the fit of the expanded sample."""
        n = weighted.total(counts)
        loc = dot(counts, values) / n
        d = values - loc
        scale = np.sqrt(dot(counts, d * d) / n)
        loglik = -0.5 * n * (_LOG_2PI + 2.0 * np.log(scale) + 1.0)
        return weighted.two_parameter_fit(loc, scale, loglik)

    def logpdf(self, x, loc, scale):
        z = (x - loc) / scale
        return -0.5 * z * z - np.log(scale) - 0.5 * _LOG_2PI

    def log_kernel(self, x, out, loc, scale):
        np.subtract(x, loc, out=out)
        out *= out
        out *= -0.5 / (scale * scale)
        return float(-np.log(scale) - 0.5 * _LOG_2PI)

    def cdf(self, x, loc, scale):
        return special.ndtr((x - loc) / scale)

    def standard_rvs(self, rng, size):
        return rng.standard_normal(size)

    def frozen(self, loc, scale):
        return stats.norm(loc, scale)
