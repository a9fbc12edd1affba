"""The interface every distribution family implements.

A family is a small object in the spirit of ``scipy.stats``: it fits by maximum likelihood, evaluates
log-densities and CDFs, and draws standardized samples. Fitting works on a 2-D array whose rows are
independent samples (sorted ascending): the ordinary fit is one row, the parametric bootstrap that
builds KS null tables is many rows, and both share one code path.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchFit:
    """Maximum-likelihood estimates for each row of a 2-D sample (arrays of length ``rows``)."""

    loc: np.ndarray
    scale: np.ndarray
    shape: np.ndarray  # the family's first shape parameter; NaN for families without one
    loglik: np.ndarray
    at_bound: np.ndarray  # bool: the shape parameter stopped at the edge of its allowed range
    # Standard error of log(shape) from the observed information (NaN where not defined).
    log_shape_se: np.ndarray
    # bool per row: the optimizer verified it ended at a maximum (None: closed form, always true).
    converged: np.ndarray | None = None
    # Further shape parameters, in the order of ``Family.shape_names[1:]`` (mixtures).
    more: tuple[np.ndarray, ...] = ()
    # Free parameters per row where the fit chooses its own size (a mixture's K); None: n_params.
    n_params: np.ndarray | None = None


@dataclass(frozen=True)
class Nesting:
    """The family contains ``inner`` where its shape parameter equals ``value``.

    ``boundary``: the value lies on the edge of the parameter space (t's df = infinity), so the LR
    statistic is 1/2 chi2_0 + 1/2 chi2_1 (Self & Liang 1987), not chi2_1.
    """

    inner: str
    value: float
    boundary: bool = False


@dataclass(frozen=True)
class ShapeDisplay:
    """How reports show a family's first shape parameter (tables, figures, summaries)."""

    symbol: str  # "df", "β"
    title: str  # figure title
    shown_up_to: float  # figures clip here; larger values are drawn as open markers at the top
    beyond: str  # what values past ``shown_up_to`` mean ("Gaussian limit")
    log_axis: bool = False
    infinite_from: float = math.inf  # table cells at or above this read "∞"
    # Reference lines: (value, family whose colour and label mark it).
    references: tuple[tuple[float, str], ...] = ()
    digits: int = 3


class Family(ABC):
    """A location-scale family with any number of scale-free shape parameters.

    Parameters, in the order every method takes them: ``loc``, ``scale``, then ``shape_names``.
    The class attributes are everything the rest of the package knows about a family: reports,
    figures, the CLI and the comparisons loop over the registry and read them here.
    """

    name: str
    label: str  # display name ("Student-t")
    aliases: tuple[str, ...] = ()  # accepted anywhere a family is named (lower case)
    color: str = "#7f7f7f"
    marker: str = "o"
    # The scipy.stats distribution this family equals, ``getattr(stats, scipy_name)(*shapes, loc,
    # scale)``: the conformance suite's oracle for logpdf, cdf and the fit. None: no scipy twin.
    scipy_name: str | None = None
    n_params: int
    shape_names: tuple[str, ...] = ()
    # Grid of (first) shape values at which KS null tables are simulated and shipped; None for a
    # pure location-scale family, whose one table serves every fit.
    shape_grid: tuple[float, ...] | None = None
    # False: the null law of D depends on more than one shape, so every fit gets its own parametric
    # bootstrap (``bootstrap_replicates`` refits) instead of a shipped table.
    null_tables: bool = True
    bootstrap_replicates: int = 199
    # Range and typical value of each shape parameter, for generic optimizers (the truncated fits of
    # pruned tensors, the conformance suite's check of the fit); each shape is positive.
    shape_bounds: tuple[tuple[float, float], ...] = ()
    shape_start: tuple[float, ...] = ()
    # False: no fit of the law truncated to |x| >= c (magnitude-pruned tensors, fitting.truncated);
    # there the family is reported as not fitted rather than left to a generic optimizer.
    truncated_fit: bool = True
    nests: tuple[Nesting, ...] = ()
    shape_display: ShapeDisplay | None = None
    # Fitted unless the caller names families; "mixtures" families are opt-in (``+mixtures``).
    default: bool = True
    group: str = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that redefines the density but not its kernel must not inherit the parent's
        # kernel shortcut (a "Gaussian with a fixed extra shape" would read the Gaussian's).
        if "logpdf" in cls.__dict__ and "log_kernel" not in cls.__dict__:
            cls.log_kernel = Family.log_kernel

    @property
    def shape_name(self) -> str | None:
        return self.shape_names[0] if self.shape_names else None

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("loc", "scale", *self.shape_names)

    def theta(self, fit: BatchFit, row: int = 0) -> tuple[float, ...]:
        """The parameters of one row in the order ``param_names``."""
        return tuple(float(v[row]) for v in self.theta_rows(fit))

    def theta_rows(self, fit: BatchFit) -> tuple[np.ndarray, ...]:
        """The parameter arrays of every row, in the order ``param_names``."""
        values = (fit.loc, fit.scale)
        return (*values, fit.shape, *fit.more) if self.shape_names else values

    def bound_flag(self, shape: float) -> str:
        """The flag for a fit whose shape stopped at the edge of its range."""
        return f"{self.shape_name}_at_bound"

    def shape_scores(self, z: np.ndarray, scale: float, shape: float) -> np.ndarray:
        """Per-value scores in (log scale, log shape) at loc 0 (``z`` centred), shape (n, 2): the
        sandwich interval of the first shape where no family fits (``fitting.adequacy``)."""
        raise NotImplementedError(f"{self.label} has no analytic shape scores")

    def fit_note(self, theta: tuple[float, ...]) -> str:
        """A sentence describing the fit in words where its parameters need one (mixtures)."""
        return ""

    @abstractmethod
    def fit_rows(self, x: np.ndarray, *, start: BatchFit | None = None) -> BatchFit:
        """Fit every row of ``x`` (float64, shape ``(rows, n)``, each row sorted ascending)."""

    @abstractmethod
    def logpdf(self, x: np.ndarray, loc, scale, *shapes) -> np.ndarray:
        """Pointwise log-density; parameters broadcast against ``x``."""

    def log_kernel(self, x: np.ndarray, out: np.ndarray, loc, scale, *shapes) -> float:
        """Write the log-density minus a constant into ``out`` (``x``'s size) and return that
        constant: ``logpdf(x) == out + constant`` to rounding.

        The Vuong and LR moments (``compare.llr_moments``) evaluate every family at every value;
        families override this with in-place arithmetic that skips the constant terms, which
        makes that pass markedly cheaper than ``logpdf``'s temporaries.
        """
        out[...] = self.logpdf(x, loc, scale, *shapes)
        return 0.0

    @abstractmethod
    def cdf(self, x: np.ndarray, loc, scale, *shapes) -> np.ndarray:
        """CDF evaluated exactly as ``scipy.stats`` does, so KS statistics agree to rounding."""

    @abstractmethod
    def standard_rvs(self, rng: np.random.Generator, size: tuple[int, ...], *shapes) -> np.ndarray:
        """Draws with loc 0 and scale 1 (the null distribution of D does not depend on them)."""

    @abstractmethod
    def frozen(self, loc: float, scale: float, *shapes):
        """The fit as a frozen distribution with scipy's interface (pdf, cdf, ppf, rvs)."""

    def fit(self, x_sorted: np.ndarray) -> BatchFit:
        """Fit one sorted 1-D sample; returns length-1 arrays."""
        return self.fit_rows(x_sorted[np.newaxis, :])

    def fit_weighted(self, values: np.ndarray, counts: np.ndarray, *,
                     start: BatchFit | None = None) -> BatchFit:
        """Fit the multiset holding each of ``values`` ``counts`` times: the maximum-likelihood
        fit of ``np.repeat(values, counts)``, length-1 arrays, ``loglik`` the weighted sum.

        ``values`` are float64, sorted ascending and distinct; ``counts`` are positive whole
        numbers (float64). A 16-bit tensor has at most 65,536 distinct values, so its fit works
        on those and never on the full tensor (``fitting.counted``). This default expands the
        multiset and fits it, exact but as dear as the tensor; families override it with a
        weighted fit (``counted_fit`` tells which do).
        """
        return self.fit(np.repeat(values, counts.astype(np.int64)))

    @property
    def counted_fit(self) -> bool:
        """True when the family fits weighted values without expanding them."""
        return type(self).fit_weighted is not Family.fit_weighted


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


# BLAS dot products of at most this many values run on the calling thread (OpenBLAS threads its
# ddot above 10,000), and two such blocks stay in the core's L1/L2 cache.
_DOT_BLOCK = 8192


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product of two 1-D arrays: BLAS ``ddot`` on blocks of ``_DOT_BLOCK`` values.

    A threaded BLAS call leaves its threads spinning after it returns, competing with the
    elementwise passes that follow and with the other fits under --jobs (whole-array BLAS dots
    made fit_model on ResNet-50 3.9 s instead of 3.3 s; two worker processes: 12 s instead of
    3 s). Blocks below OpenBLAS's threading threshold keep every call on this thread, and ddot's
    FMA loop on cached blocks is 1.5-2.5x faster than NumPy's einsum loop plus its call overhead.
    """
    if a.shape[0] <= _DOT_BLOCK:
        return float(np.dot(a, b))
    total = 0.0
    for i in range(0, a.shape[0], _DOT_BLOCK):
        total += np.dot(a[i:i + _DOT_BLOCK], b[i:i + _DOT_BLOCK])
    return float(total)


def row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two 2-D arrays, without BLAS for the reason given in ``dot``."""
    return np.einsum("ij,ij->i", a, b)
