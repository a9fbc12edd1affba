"""The interface every distribution family implements.

A family is a small object in the spirit of ``scipy.stats``: it fits by maximum likelihood, evaluates
log-densities and CDFs, and draws standardized samples. Fitting works on a 2-D array whose rows are
independent samples (sorted ascending): the ordinary fit is one row, the parametric bootstrap that
builds KS null tables is many rows, and both share one code path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchFit:
    """Maximum-likelihood estimates for each row of a 2-D sample (arrays of length ``rows``)."""

    loc: np.ndarray
    scale: np.ndarray
    shape: np.ndarray  # NaN for families without a shape parameter
    loglik: np.ndarray
    at_bound: np.ndarray  # bool: the shape parameter stopped at the edge of its allowed range
    # Standard error of log(shape) from the observed information (NaN where not defined).
    log_shape_se: np.ndarray
    # bool per row: the optimizer verified it ended at a maximum (None: closed form, always true).
    converged: np.ndarray | None = None


class Family(ABC):
    """A location-scale family, optionally with one shape parameter, in scipy's parameterization."""

    name: str
    label: str
    n_params: int
    shape_name: str | None = None
    # Grid of shape values at which KS null tables are simulated (None for pure location-scale).
    shape_grid: tuple[float, ...] | None = None

    @abstractmethod
    def fit_rows(self, x: np.ndarray, *, start: BatchFit | None = None) -> BatchFit:
        """Fit every row of ``x`` (float64, shape ``(rows, n)``, each row sorted ascending)."""

    @abstractmethod
    def logpdf(self, x: np.ndarray, loc, scale, shape) -> np.ndarray:
        """Pointwise log-density; parameters broadcast against ``x``."""

    @abstractmethod
    def cdf(self, x: np.ndarray, loc, scale, shape) -> np.ndarray:
        """CDF evaluated exactly as ``scipy.stats`` does, so KS statistics agree to rounding."""

    @abstractmethod
    def standard_rvs(self, rng: np.random.Generator, size: tuple[int, ...], shape: float) -> np.ndarray:
        """Draws with loc 0 and scale 1 (the null distribution of D does not depend on them)."""

    @abstractmethod
    def frozen(self, loc: float, scale: float, shape: float):
        """The fit as a frozen ``scipy.stats`` distribution."""

    def fit(self, x_sorted: np.ndarray) -> BatchFit:
        """Fit one sorted 1-D sample; returns length-1 arrays."""
        return self.fit_rows(x_sorted[np.newaxis, :])


# Columns per pass over long rows. 512 KB temporaries stay in the CPU cache between the several
# NumPy operations of a pass; 1 << 20 (8 MB) spilled to memory and made ResNet-50 a third slower.
CHUNK = 1 << 16


def row_sum(x: np.ndarray, fn) -> np.ndarray:
    """Per-row sum of ``fn(columns)`` over column chunks, so no full-size temporary is made."""
    return sum(fn(x[:, i:i + CHUNK]).sum(axis=1) for i in range(0, x.shape[1], CHUNK))


def strided_quantiles(x: np.ndarray, m: int) -> np.ndarray:
    """About ``m`` evenly spaced order statistics of each sorted row, from the middle of each block
    of ``n // m`` values: exact quantiles at (i + 1/2) / m, so a fit on them starts unbiased (the
    first value of each block sits half a block low and moved gennorm's loc by 2e-4 of the spread,
    which cost a polishing pass)."""
    step = x.shape[1] // m
    return x[:, step // 2 :: step]


def row_median(x: np.ndarray) -> np.ndarray:
    """Median of each row of a row-sorted array without re-sorting."""
    n = x.shape[1]
    mid = n // 2
    if n % 2:
        return x[:, mid].copy()
    return 0.5 * (x[:, mid - 1] + x[:, mid])


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product of two 1-D arrays without BLAS.

    OpenBLAS threads spin after each call and then compete with the elementwise passes that
    follow, and with the other fits under --jobs: on ResNet-50 BLAS dots made fit_model 3.9 s
    instead of 3.3 s (two worker processes: 12 s instead of 3 s). NumPy's own einsum loop is
    single-threaded and SIMD.
    """
    return float(np.einsum("i,i->", a, b))


def row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two 2-D arrays, without BLAS for the reason given in ``dot``."""
    return np.einsum("ij,ij->i", a, b)
