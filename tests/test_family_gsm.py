"""Gaussian scale mixture family (``gsm``): recovery, choice of K, degenerate data, end to end.

The full-size K-selection check (100 runs per case) is ``benchmarks/bench_mixtures.py``, output in
``benchmarks/mixtures.md``; here each case runs 20 samples, vectorized as rows of one call.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import weightstats
from weightstats.fitting.families import FAMILIES, get_family
from weightstats.fitting.families.gsm import K_MAX
from weightstats.fitting.families.gsm_em import FLOOR
from weightstats.fitting.families.gsm_newton import _from_theta, _to_theta, derivatives

GSM = get_family("gsm")
NORMAL = get_family("normal")


def _shapes(w, r) -> tuple[float, ...]:
    """(K, w_1..w_KMAX, r_1..r_KMAX) for components (w, r), ratios relative to the first."""
    k = len(w)
    return (float(k), *w, *[0.0] * (K_MAX - k), *r, *[1.0] * (K_MAX - k))


def _draw(rng, size, w, r):
    return np.sort(GSM.standard_rvs(rng, size, *_shapes(w, r)), axis=-1)


def _components(fit, row: int = 0):
    """Fitted (loc, K, weights, component scales) of one row."""
    theta = GSM.theta(fit, row)
    k = int(theta[2])
    w = np.array(theta[3:3 + k])
    s = theta[1] * np.array(theta[3 + K_MAX:3 + K_MAX + k])
    return theta[0], k, w, s


@pytest.mark.parametrize(("w", "r"), [((0.7, 0.3), (1.0, 3.0)),
                                      ((0.5, 0.35, 0.15), (1.0, 3.0, 9.0))])
def test_recovery_at_100k(w, r) -> None:
    rng = np.random.default_rng(11)
    loc, unit = 0.25, 0.04
    x = loc + unit * _draw(rng, 100_000, w, r)
    fit = GSM.fit(x)
    f_loc, k, f_w, f_s = _components(fit)
    assert k == len(w)
    sd = unit * math.sqrt(sum(wi * ri**2 for wi, ri in zip(w, r, strict=True)))
    assert abs(f_loc - loc) < 0.01 * sd
    assert np.abs(f_w - np.array(w)).max() < 0.02
    assert np.abs(f_s / (unit * np.array(r)) - 1.0).max() < 0.05
    assert fit.converged[0] and not fit.at_bound[0]
    assert fit.n_params[0] == 2 * k


@pytest.mark.parametrize(("w", "r"), [((1.0,), (1.0,)), ((0.6, 0.4), (1.0, 4.0)),
                                      ((0.5, 0.3, 0.2), (1.0, 4.0, 16.0))])
def test_k_chosen_right(w, r) -> None:
    """20 samples of 5,000 values (the KS subsample's size): BIC picks the true K in >= 19."""
    x = _draw(np.random.default_rng(5), (20, 5000), w, r)
    fit = GSM.fit_rows(x)
    assert (fit.shape == len(w)).sum() >= 19
    assert fit.converged[fit.shape == len(w)].all()


def test_gaussian_data_give_the_gaussian_fit() -> None:
    x = np.sort(np.random.default_rng(2).normal(3.0, 0.5, 50_000))
    fit, ref = GSM.fit(x), NORMAL.fit(x)
    assert fit.shape[0] == 1 and fit.n_params[0] == 2
    # Bit for bit the Gaussian fit, pointwise too: a comparison of the two is then a tie, not
    # a Vuong verdict drawn from rounding noise.
    assert (fit.loglik[0], fit.loc[0], fit.scale[0]) == (ref.loglik[0], ref.loc[0], ref.scale[0])
    theta = GSM.theta(fit)
    assert np.array_equal(GSM.logpdf(x, *theta), NORMAL.logpdf(x, *NORMAL.theta(ref)))
    res = weightstats.fit_tensor(x, families=("normal", "gsm"))
    (row,) = res.comparison_rows
    assert row["favored"] == "neither" and row["z"] == 0.0
    assert GSM.fit_note(GSM.theta(fit)).startswith("1 Gaussian component")


@pytest.mark.parametrize("law", ["laplace", "t3", "normal", "mixture"])
def test_loglik_at_least_the_gaussian(law: str) -> None:
    rng = np.random.default_rng(7)
    draws = {"laplace": lambda: rng.laplace(size=(4, 3000)),
             "t3": lambda: rng.standard_t(3, size=(4, 3000)),
             "normal": lambda: rng.standard_normal((4, 3000)),
             "mixture": lambda: GSM.standard_rvs(rng, (4, 3000), *_shapes((0.8, 0.2), (1, 5)))}
    x = np.sort(draws[law](), axis=1)
    assert (GSM.fit_rows(x).loglik >= NORMAL.fit_rows(x).loglik - 1e-9).all()


@pytest.mark.parametrize("case", ["tied_30_percent", "spike", "constant", "two_values"])
def test_degenerate_data_finite_likelihood(case: str) -> None:
    """A component that collapses onto repeated values stops at the scale floor: the likelihood
    stays finite and the fit is flagged, never a crash or an infinite log-likelihood."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(4000)
    if case == "tied_30_percent":
        x[:1200] = 0.7
    elif case == "spike":
        x[:40] = 2.5
    elif case == "constant":
        x[:] = 1.5
    else:
        x[:] = np.where(np.arange(4000) % 2, -1.0, 1.0)
    fit = GSM.fit(np.sort(x))
    assert np.isfinite(fit.loglik[0]) and np.isfinite(fit.scale[0]) and fit.scale[0] > 0
    theta = GSM.theta(fit)
    assert np.isfinite(theta).all()
    if case in ("tied_30_percent", "constant"):
        assert fit.at_bound[0]
        assert "floor" in GSM.bound_flag(fit.shape[0])
        # The floor bounds the narrowest scale from below: FLOOR times the robust spread.
        assert min(theta[1] * np.array(theta[3 + K_MAX:3 + K_MAX + int(theta[2])])) > 0


def test_far_outliers() -> None:
    """Two values 1e10 sds out get their own component of tiny weight; the scale stays the
    bulk's (the mixture's sd would be 2e8). A value 1e200 out (whose component's s^4 would
    overflow) leaves the mixture at its Gaussian fit, flagged, instead of a failed fit."""
    rng = np.random.default_rng(8)
    for n in (2000, 5000):  # all values; EM on order statistics plus the extremes
        fit = GSM.fit(np.sort(np.r_[rng.standard_normal(n), 1e10, -3e9]))
        assert fit.shape[0] == 2 and fit.scale[0] == pytest.approx(1.0, rel=0.1)
        assert fit.more[1][0] == pytest.approx(2 / (n + 2), rel=0.01)  # w2: the two outliers
        assert fit.converged[0]
    res = weightstats.fit_tensor(np.r_[rng.standard_normal(2000), 1e200], families=("normal", "gsm"))
    frame = res.to_frame().set_index("family")
    assert frame.loc["gsm", "loglik"] == frame.loc["normal", "loglik"]
    assert "not_converged" in frame.loc["gsm", "flags"] and "fit_failed" not in frame.loc["gsm", "flags"]


@pytest.mark.filterwarnings("error")
def test_any_magnitude() -> None:
    """Rows far from unit scale (fitted in robust units) give the same fit, mapped."""
    x = _draw(np.random.default_rng(9), 3000, (0.7, 0.3), (1.0, 3.0))
    ref = GSM.theta(GSM.fit(x))
    for a, b in ((1e-300, 0.0), (1e200, 0.0), (1.0, 1e6)):
        theta = GSM.theta(GSM.fit(b + a * x))
        assert theta[0] == pytest.approx(b + a * ref[0], rel=1e-6, abs=1e-6 * a)
        assert theta[1] == pytest.approx(a * ref[1], rel=1e-6)
        np.testing.assert_allclose(theta[2:], ref[2:], rtol=1e-5, atol=1e-9)


@pytest.mark.filterwarnings("error")
def test_small_samples_of_heavy_laws_fit_cleanly() -> None:
    """Bootstrap-sized batches of 30-value rows (flat likelihoods, where SQUAREM extrapolates
    far) fit without overflow warnings or non-finite likelihoods."""
    rng = np.random.default_rng(0)
    draws = [rng.standard_normal((199, 30)), rng.standard_cauchy((199, 30)),
             GSM.standard_rvs(rng, (199, 30), *_shapes((0.25, 0.5, 0.2, 0.05), (0.3, 0.7, 1.5, 3.5)))]
    for x in draws:
        fit = GSM.fit_rows(np.sort(x, axis=1))
        assert np.isfinite(fit.loglik).all() and np.isfinite(fit.scale).all()


def test_fit_tensor_end_to_end() -> None:
    rng = np.random.default_rng(4)
    x = (0.02 * GSM.standard_rvs(rng, (64, 400), *_shapes((0.7, 0.3), (1, 3))) + 1e-3)
    res = weightstats.fit_tensor(x.astype(np.float32), families=("normal", "gsm"))
    frame = res.to_frame().set_index("family")
    row = frame.loc["gsm"]
    assert 0 < row["ks_pvalue"] <= 1 and 0 < row["ad_pvalue"] <= 1
    assert "parametric bootstrap" in row["flags"] and "Gaussian components" in row["flags"]
    params = res.params("gsm")
    assert list(params) == ["loc", "scale", *GSM.shape_names]
    assert params["K"] == 2 and row["n_params"] == 4
    assert frame.loc["gsm", "loglik"] > frame.loc["normal", "loglik"]
    assert res.verdict["best_bic"] == "gsm"
    frozen = res.frozen("gsm")
    q = np.array([1e-9, 0.01, 0.3, 0.5, 0.9, 1 - 1e-9])
    assert np.allclose(frozen.cdf(frozen.ppf(q)), q, rtol=1e-9, atol=1e-15)
    again = weightstats.fit_tensor(x.astype(np.float32), families=("normal", "gsm"))
    assert again.to_frame().equals(res.to_frame())  # deterministic, bootstrap included


def test_density_cdf_sampler_agree() -> None:
    shapes = _shapes((0.5, 0.3, 0.2), (0.4, 1.1, 2.6))
    loc, scale = 0.3, 1.7
    total, _ = integrate.quad(lambda v: math.exp(GSM.logpdf(v, loc, scale, *shapes)), -np.inf,
                              np.inf)
    assert total == pytest.approx(1.0, abs=1e-9)
    grid = np.linspace(-8, 8, 41)
    for v in grid:
        part, _ = integrate.quad(lambda u: math.exp(GSM.logpdf(u, loc, scale, *shapes)), -np.inf, v)
        assert GSM.cdf(v, loc, scale, *shapes) == pytest.approx(part, abs=1e-9)
    # Symmetric about loc (the KS/AD tail code relies on it).
    assert np.allclose(GSM.cdf(loc - grid, loc, scale, *shapes),
                       1 - GSM.cdf(loc + grid, loc, scale, *shapes), atol=1e-15)
    draws = GSM.standard_rvs(np.random.default_rng(0), (20_000,), *shapes)
    assert stats.kstest(draws, lambda v: GSM.cdf(v, 0.0, 1.0, *shapes)).pvalue > 0.01
    # Components past K are ignored, whatever their weights: a generic optimizer cannot use them.
    more = list(shapes)
    more[4], more[8] = 0.9, 5.0
    assert np.allclose(GSM.logpdf(grid, loc, scale, *shapes), GSM.logpdf(grid, loc, scale, *more))


def test_newton_derivatives_match_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x = _draw(rng, (2, 3000), (0.3, 0.5, 0.2), (0.5, 1.5, 4.0))
    loc = np.array([0.05, -0.1])
    s = np.array([[0.4, 1.2, 3.0], [0.6, 1.6, 3.5]])
    w = np.array([[0.3, 0.5, 0.2], [0.4, 0.4, 0.2]])
    floor = np.full(2, 1e-9)
    ll, grad, hess = derivatives(x, loc, s, w)
    theta = _to_theta(loc, s, w)
    eps = 1e-5
    for i in range(theta.shape[1]):
        step = np.zeros_like(theta)
        step[:, i] = eps
        up, down = (derivatives(x, *_from_theta(theta + sign * step, 3, floor))
                    for sign in (1, -1))
        assert np.allclose((up[0] - down[0]) / (2 * eps), grad[:, i], rtol=1e-6, atol=1e-4)
        assert np.allclose((up[1] - down[1]) / (2 * eps), hess[:, :, i], rtol=1e-5, atol=1e-3)
    assert np.allclose(hess, np.swapaxes(hess, 1, 2))


def test_registered_as_opt_in_mixture() -> None:
    assert "gsm" in FAMILIES and not GSM.default and GSM.group == "mixtures"
    assert get_family("Gaussian scale mixture") is GSM and get_family("scale-mixture") is GSM
    others = [f for name, f in FAMILIES.items() if name != "gsm"]
    assert all(f.color != GSM.color for f in others) and all(f.marker != GSM.marker for f in others)
    assert len(GSM.shape_bounds) == len(GSM.shape_start) == len(GSM.shape_names)
    assert 0 < FLOOR < 1e-2
