"""The generalized normal's weighted fit (issue 13's counted path): a 16-bit tensor is fitted as
its distinct values with counts, and must give the fit of the expanded tensor.

The oracle is ``GenNorm.fit`` on ``np.repeat(values, counts)``, the fit the float path reports:
log-likelihood to 1e-9 relative, loc / scale / beta to 1e-7 (loc relative to the scale), the same
at_bound flag, the same standard error of log(beta). Samples are rounded to bfloat16 and float16,
counted with ``np.unique`` and standardized as ``fit_tensor`` standardizes them.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

from weightstats.fitting.families.gennorm import GenNorm
from weightstats.fitting.standardize import robust_center_spread

DTYPES = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def _draw(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """A layer-like sample (scale 0.02, as trained weights) of one of the test's shapes."""
    x = {
        "t(3)": lambda: rng.standard_t(3, n),
        "t(6)": lambda: rng.standard_t(6, n),
        "gaussian": lambda: rng.standard_normal(n),
        "laplace": lambda: rng.laplace(size=n),
        "gennorm(0.5)": lambda: stats.gennorm.rvs(0.5, size=n, random_state=rng),
        "gennorm(1.5)": lambda: stats.gennorm.rvs(1.5, size=n, random_state=rng),
        "skewed right": lambda: stats.skewnorm.rvs(5.0, size=n, random_state=rng),
        "skewed left": lambda: stats.skewnorm.rvs(-5.0, size=n, random_state=rng),
        # beta at its upper bound
        "uniform": lambda: rng.uniform(-1.0, 1.0, n),
        # 30% exact zeros (a pruned layer): below beta = 1, loc on the atom
        "pruned": lambda: np.where(rng.random(n) < 0.3, 0.0, rng.laplace(size=n)),
    }[kind]()
    return 0.02 * x


def _counted(x: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and counts of ``x`` stored as ``dtype``, standardized like fit_tensor
    (divide by max|x|, then median and robust spread of the expanded sample)."""
    values, counts = np.unique(x.astype(dtype).astype(np.float64), return_counts=True)
    top = max(abs(values[0]), abs(values[-1]))
    center, spread = robust_center_spread(np.repeat(values, counts) / top)
    return (values / top - center) / spread, counts.astype(np.float64)


def _assert_same_fit(got, want) -> None:
    assert got.loglik[0] == pytest.approx(want.loglik[0], rel=1e-9, abs=0)
    assert abs(got.loc[0] - want.loc[0]) <= 1e-7 * want.scale[0]
    assert got.scale[0] == pytest.approx(want.scale[0], rel=1e-7, abs=0)
    assert got.shape[0] == pytest.approx(want.shape[0], rel=1e-7, abs=0)
    assert bool(got.at_bound[0]) == bool(want.at_bound[0])
    assert np.isnan(got.log_shape_se[0]) == np.isnan(want.log_shape_se[0])
    if not np.isnan(want.log_shape_se[0]):
        assert got.log_shape_se[0] == pytest.approx(want.log_shape_se[0], rel=1e-6, abs=0)
    assert (got.converged is None) == (want.converged is None)
    for arr in (got.loc, got.scale, got.shape, got.loglik, got.at_bound, got.log_shape_se):
        assert arr.shape == (1,)


KINDS = ["t(3)", "t(6)", "gaussian", "laplace", "gennorm(0.5)", "gennorm(1.5)", "skewed right",
         "skewed left", "uniform", "pruned"]
CASES = (
    [(kind, dtype, 20_000) for kind in KINDS for dtype in DTYPES]  # the short-row path
    + [(kind, "bfloat16", 300_000) for kind in KINDS]  # strided start, polish on every value
    + [("t(3)", "bfloat16", 10_000_000), ("skewed left", "float16", 10_000_000)]
)


@pytest.mark.parametrize(("kind", "dtype", "n"), CASES)
def test_weighted_fit_equals_the_fit_of_the_expanded_sample(kind, dtype, n):
    rng = np.random.default_rng(n + len(kind))
    values, counts = _counted(_draw(kind, n, rng), DTYPES[dtype])
    assert values.size < 0.6 * n  # ties: the counts matter
    family = GenNorm()
    got = family.fit_weighted(values, counts)
    want = family.fit(np.repeat(values, counts.astype(np.int64)))
    _assert_same_fit(got, want)


@pytest.mark.parametrize("kind", ["t(6)", "gennorm(0.5)", "skewed left"])
def test_weighted_loglik_is_the_count_weighted_sum_of_log_densities(kind):
    """The log-likelihood counts every value as often as it occurs (counts are not ignored)."""
    values, counts = _counted(_draw(kind, 50_000, np.random.default_rng(7)), ml_dtypes.bfloat16)
    family = GenNorm()
    fit = family.fit_weighted(values, counts)
    theta = family.theta(fit)
    assert fit.loglik[0] == pytest.approx(counts @ family.logpdf(values, *theta), rel=1e-12)
    unweighted = family.fit_weighted(values, np.ones_like(counts))
    assert abs(unweighted.shape[0] / fit.shape[0] - 1) > 0.1  # the counts change the fit


@pytest.mark.parametrize("kind", ["t(6)", "laplace", "gennorm(0.5)"])
def test_weighted_fit_never_expands_the_sample(kind):
    """Counts of 2**30 per observed value (2e13 values): an expansion could not be allocated,
    the weighted fit works on the distinct values. Scaling every count scales the likelihood
    and leaves the estimates unchanged."""
    values, counts = _counted(_draw(kind, 20_000, np.random.default_rng(11)), ml_dtypes.bfloat16)
    family = GenNorm()
    assert family.counted_fit
    small = family.fit_weighted(values, counts)
    huge = family.fit_weighted(values, counts * 2.0**30)
    assert huge.loglik[0] == pytest.approx(2.0**30 * small.loglik[0], rel=1e-9)
    assert huge.shape[0] == pytest.approx(small.shape[0], rel=1e-6)
    assert huge.scale[0] == pytest.approx(small.scale[0], rel=1e-6)
    assert abs(huge.loc[0] - small.loc[0]) <= 1e-6 * small.scale[0]
    # the information grows with the count: se shrinks by sqrt(2**30)
    assert huge.log_shape_se[0] * 2.0**15 == pytest.approx(small.log_shape_se[0], rel=1e-5)


@pytest.mark.parametrize("seed", range(12))
def test_weighted_fit_of_a_few_tied_values(seed):
    """A handful of distinct values with small counts: the loc searches widen their brackets and
    beta runs to a bound, paths the large samples do not take."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 6))
    values = np.unique(rng.standard_normal(m))
    counts = rng.integers(1, 6, values.size).astype(np.float64)
    family = GenNorm()
    _assert_same_fit(family.fit_weighted(values, counts),
                     family.fit(np.repeat(values, counts.astype(np.int64))))
