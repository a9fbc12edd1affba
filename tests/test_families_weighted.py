"""Every family's fit of a multiset given as (distinct values, counts) against the fit of the
expanded sample ``np.repeat(values, counts)`` and against scipy's log-density.

A 16-bit tensor holds at most 65,536 distinct values, so its fit works on the counted values
(``Family.fit_weighted``). The targets (issue 13): log-likelihood to 1e-9 relative, parameters to
1e-7 relative (loc to 1e-7 of the scale, as it sits near 0 in standardized units), the same
at_bound and converged flags, the standard error of log(shape) to 1e-6 relative. Data are drawn,
rounded to bfloat16 or float16, counted with ``np.unique`` and standardized as ``fit_tensor`` does.
Families that keep the expanding default are checked too, on smaller samples (their default is
the expanded fit itself).
"""

from __future__ import annotations

import functools
import math

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

from weightstats.fitting.families import FAMILIES
from weightstats.fitting.families.student_t_fit import (
    DF_MAX,
    DF_MIN,
    _evaluate,
    fit_t_rows,
    newton_converged,
)
from weightstats.fitting.standardize import robust_center_spread

LL_REL, PARAM_REL, SE_REL = 1e-9, 1e-7, 1e-6
DTYPES = {"bf16": ml_dtypes.bfloat16, "f16": np.float16}
DRAWS = {
    "t3": lambda rng, n: rng.standard_t(3, n),
    "t6": lambda rng, n: rng.standard_t(6, n),
    "gauss": lambda rng, n: rng.standard_normal(n),
    "laplace": lambda rng, n: rng.laplace(0.0, 1.0, n),
    "skew_right": lambda rng, n: rng.gamma(2.0, 1.0, n),
    "skew_left": lambda rng, n: -rng.lognormal(0.0, 0.5, n),
}
COUNTED_N, EXPANDING_N = 200_000, 4_000  # values per multiset: weighted fits / expanding default


def standardized_multiset(x: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Round to ``dtype``, count the distinct values and standardize them as ``fit_tensor`` does
    (divide by max |x|, subtract the median, divide by the robust spread)."""
    values, counts = np.unique(x.astype(dtype).astype(np.float64), return_counts=True)
    top = max(abs(values[0]), abs(values[-1]))
    center, spread = robust_center_spread(np.repeat(values, counts) / top)
    z = values / top
    z -= center
    z /= spread
    return z, counts.astype(np.float64)


@functools.cache
def drawn(kind: str, dtype: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([13, list(DRAWS).index(kind), list(DTYPES).index(dtype), n])
    return standardized_multiset(DRAWS[kind](rng, n), DTYPES[dtype])


def spike(n: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """A continuous bf16 t(6) remainder plus one value holding 80% of the mass (atom-like)."""
    values, counts = drawn("t6", "bf16", n)
    counts = counts.copy()
    counts[np.argmin(np.abs(values - 0.3))] += 4 * n
    return values, counts


def two_values(n: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return np.array([-0.75, 1.25]), np.array([3.0, 5.0])


def two_values_even(n: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An even total split evenly: the median is the midpoint of the two values."""
    return np.array([-0.75, 1.25]), np.array([4.0, 4.0])


def uniform_bf16(n: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Lighter tails than any t: its df runs to the Gaussian cap (at_bound)."""
    x = np.random.default_rng(131).uniform(-1.0, 1.0, n)
    return standardized_multiset(x, ml_dtypes.bfloat16)


def very_heavy_f16(n: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """Log-uniform magnitudes over eight decades, heavier than t(0.2) in the middle: the t's df
    stops at its lower bound (at_bound)."""
    rng = np.random.default_rng(132)
    x = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-4.0, 4.0, n)
    return standardized_multiset(x, np.float16)


def squeezed(n: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Values standardized by mean and sd despite far outliers (the bulk in a ~1e-7 sliver): the
    t's Newton stalls there and refits in robust units; counts 1..6 make the multiset."""
    rng = np.random.default_rng([34, 3, 10])
    x = np.sort(rng.standard_t(0.5, 500)) / 1.0
    z = x / np.abs(x).max()
    z = (z - z.mean()) / z.std()
    return np.unique(z), rng.integers(1, 7, np.unique(z).size).astype(np.float64)


EDGES = {"spike": spike, "two_values": two_values, "two_values_even": two_values_even,
         "uniform_bf16": uniform_bf16, "very_heavy_f16": very_heavy_f16, "squeezed": squeezed}


def expanded_fit(fam, values, counts, **kw):
    """The oracle: the family's own fit of the multiset written out (``fit``, which for the
    generalized normal adds its global cusp search to ``fit_rows``); ``fit_rows`` with a start."""
    expanded = np.repeat(values, counts.astype(np.int64))
    return fam.fit_rows(expanded[np.newaxis, :], **kw) if kw else fam.fit(expanded)


def assert_same_fit(fam, got, want, where: str) -> None:
    """``got`` (weighted) matches ``want`` (expanded) to the issue's tolerances."""
    assert got.loglik.shape == (1,), where
    ll_got, ll_want = float(got.loglik[0]), float(want.loglik[0])
    if math.isfinite(ll_want):
        assert ll_got == pytest.approx(ll_want, rel=LL_REL), f"{where}: loglik"
    else:
        assert ll_got == ll_want, f"{where}: loglik"
    scale = float(want.scale[0])
    assert float(got.loc[0]) == pytest.approx(float(want.loc[0]), rel=PARAM_REL,
                                              abs=PARAM_REL * scale), f"{where}: loc"
    assert float(got.scale[0]) == pytest.approx(scale, rel=PARAM_REL), f"{where}: scale"
    for name, g, w in zip(fam.shape_names, (got.shape, *got.more), (want.shape, *want.more),
                          strict=False):  # no shape: shape_names is empty, shape holds NaN
        assert float(g[0]) == pytest.approx(float(w[0]), rel=PARAM_REL, nan_ok=True), \
            f"{where}: {name}"
    assert bool(got.at_bound[0]) == bool(want.at_bound[0]), f"{where}: at_bound"
    assert converged(got) == converged(want), f"{where}: converged"
    assert float(got.log_shape_se[0]) == pytest.approx(float(want.log_shape_se[0]), rel=SE_REL,
                                                       nan_ok=True), f"{where}: log_shape_se"
    assert free_params(got) == free_params(want), f"{where}: n_params"


def converged(fit) -> bool | None:
    return None if fit.converged is None else bool(fit.converged[0])


def free_params(fit) -> int | None:
    return None if fit.n_params is None else int(fit.n_params[0])


def t_theta(fit) -> np.ndarray:
    """The t's Newton coordinates (loc, log scale, 1/df)."""
    return np.array([fit.loc[0], np.log(fit.scale[0]), 1.0 / fit.shape[0]])


def size_for(fam) -> int:
    return COUNTED_N if fam.counted_fit else EXPANDING_N


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", list(FAMILIES))
def test_weighted_fit_equals_the_expanded_fit(name, dtype):
    fam = FAMILIES[name]
    for kind in DRAWS:
        values, counts = drawn(kind, dtype, size_for(fam))
        assert counts.max() > 1  # the check below means something only with repeated values
        assert_same_fit(fam, fam.fit_weighted(values, counts), expanded_fit(fam, values, counts),
                        f"{name} {kind} {dtype}")


@pytest.mark.parametrize("edge", list(EDGES))
@pytest.mark.parametrize("name", list(FAMILIES))
def test_weighted_fit_equals_the_expanded_fit_on_edge_cases(name, edge):
    fam = FAMILIES[name]
    # The expanding default refits the whole sample: smaller draws keep the mixtures quick.
    values, counts = EDGES[edge]() if fam.counted_fit else EDGES[edge](EXPANDING_N)
    assert_same_fit(fam, fam.fit_weighted(values, counts), expanded_fit(fam, values, counts),
                    f"{name} {edge}")


def test_edge_cases_reach_the_branches_they_are_meant_to():
    """The edge cases exercise the t's bounds and its rescaled refit in the weighted fit."""
    t = FAMILIES["t"]
    assert t.fit_weighted(*uniform_bf16()).shape[0] >= DF_MAX * (1 - 1e-9)
    assert t.fit_weighted(*uniform_bf16()).at_bound[0]
    heavy = t.fit_weighted(*very_heavy_f16())
    assert heavy.at_bound[0] and heavy.shape[0] == pytest.approx(DF_MIN)
    # The squeezed multiset stalls the first Newton ascent; the weighted rescaled refit recovers.
    values, counts = squeezed()
    theta, ll, _, hess, grad = fit_t_rows(values[np.newaxis, :], w=counts[np.newaxis, :])
    assert not newton_converged(theta, ll, grad, hess)[0]
    refit = t.fit_weighted(values, counts)
    assert refit.converged[0] and float(refit.loglik[0]) > float(ll[0]) + 1000
    # Laplace: an even total puts loc at the midpoint of the two middle values, as on the sample.
    assert FAMILIES["laplace"].fit_weighted(*two_values_even()).loc[0] == 0.25
    assert FAMILIES["laplace"].fit_weighted(*two_values()).loc[0] == 1.25


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_t_where_its_likelihood_is_flat_in_df(dtype):
    """A t fit to Gaussian data: df near 2400 with se(log df) near 2, so the likelihood hardly
    changes with df and rounding decides its last digits. The ascent accepts steps that lose up
    to 1e-12 |loglik| (the rounding of a sum of 1e6 terms), so two fits of the same data by sums
    taken in another order agree in df only to about se * sqrt(2e-12 |loglik|), 3e-3 here. The
    check: the two maxima are equally good, their distance under the observed information is
    within that resolution, and all else meets the usual tolerances."""
    t = FAMILIES["t"]
    # A seed whose sample's t fit is interior (most Gaussian samples send df to the cap).
    x = np.random.default_rng([13, 99, 4]).standard_normal(1_000_000)
    values, counts = standardized_multiset(x, DTYPES[dtype])
    got, want = t.fit_weighted(values, counts), expanded_fit(t, values, counts)
    assert not got.at_bound[0] and 1e3 < got.shape[0] < 1e4  # interior and flat
    ll = float(want.loglik[0])
    assert float(got.loglik[0]) == pytest.approx(ll, rel=LL_REL)
    assert got.converged[0] and want.converged[0]
    _, _, hess = _evaluate(values[np.newaxis, :], t_theta(got)[np.newaxis, :],
                           w=counts[np.newaxis, :])
    gap = t_theta(got) - t_theta(want)
    assert 0.5 * gap @ -hess[0] @ gap <= 4e-12 * abs(ll)
    assert float(got.scale[0]) == pytest.approx(float(want.scale[0]), rel=1e-6)
    assert float(got.shape[0]) == pytest.approx(float(want.shape[0]), rel=1e-2)
    assert float(got.log_shape_se[0]) == pytest.approx(float(want.log_shape_se[0]), rel=1e-2)


@pytest.mark.parametrize("name", ["t", "logistic"])
def test_weighted_fit_takes_a_start_like_fit_rows(name):
    """Below the subsampling size both optimizers start from ``start`` when given one."""
    fam = FAMILIES[name]
    values, counts = drawn("t3", "f16", 20_000)
    start = fam.fit_weighted(values, counts)
    nudged = type(start)(start.loc + 0.05, start.scale * 1.1, start.shape * 1.5, start.loglik,
                         start.at_bound, start.log_shape_se, start.converged)
    assert_same_fit(fam, fam.fit_weighted(values, counts, start=nudged),
                    expanded_fit(fam, values, counts, start=nudged), f"{name} start")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_weighted_loglik_is_scipys(name):
    """loglik = sum of counts times scipy's logpdf at the fitted parameters (the family's own
    logpdf where it has no scipy twin)."""
    fam = FAMILIES[name]
    values, counts = drawn("t6", "bf16", size_for(fam))
    fit = fam.fit_weighted(values, counts)
    theta = fam.theta(fit)
    if fam.scipy_name is not None:
        logpdf = getattr(stats, fam.scipy_name).logpdf(values, *theta[2:], theta[0], theta[1])
    else:
        logpdf = fam.logpdf(values, *theta)
    assert float(fit.loglik[0]) == pytest.approx(float(counts @ logpdf), rel=LL_REL)


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.counted_fit])
def test_doubling_every_count_doubles_the_loglik_only(name):
    """A weighted maximum-likelihood fit depends on the counts' proportions only. (The expanding
    default is not checked: mixtures choose their components by rules that depend on n.)"""
    fam = FAMILIES[name]
    values, counts = drawn("laplace", "bf16", size_for(fam))
    once, twice = fam.fit_weighted(values, counts), fam.fit_weighted(values, 2.0 * counts)
    assert float(twice.loglik[0]) == pytest.approx(2.0 * float(once.loglik[0]), rel=LL_REL)
    for a, b in zip(fam.theta(once), fam.theta(twice), strict=True):
        assert b == pytest.approx(a, rel=PARAM_REL, abs=PARAM_REL * float(once.scale[0]))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_comparison_would_catch_a_fit_that_ignores_the_counts(name):
    """The data above are such that fitting the distinct values alone (counts ignored) misses
    the expanded fit by far more than the tolerances: the equality tests can fail."""
    fam = FAMILIES[name]
    values, counts = drawn("t6", "bf16", size_for(fam))
    with pytest.raises(AssertionError):
        assert_same_fit(fam, fam.fit_weighted(values, np.ones_like(counts)),
                        expanded_fit(fam, values, counts), name)


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.counted_fit])
def test_ten_million_bf16_values(name):
    """One tensor-sized case: 1e7 bf16 t(6) values, about 3,000 distinct."""
    values, counts = drawn("t6", "bf16", 10_000_000)
    fam = FAMILIES[name]
    assert_same_fit(fam, fam.fit_weighted(values, counts), expanded_fit(fam, values, counts),
                    f"{name} 1e7")
