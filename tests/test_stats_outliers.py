"""Fits on hostile but valid data: extreme outliers must not squeeze the bulk into a corner where
Student-t's Newton stalls, and no family's log-likelihood may fall below scipy's own fit.

scipy is the oracle: ``<family>.fit`` (norm, laplace, t, gennorm) on the same values. Small n keeps
scipy fast; the hypothesis search is derandomized so the file runs the same cases every time.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from weightstats.fitting import fit_tensor
from weightstats.fitting.families import get_family
from weightstats.fitting.families.gennorm import BETA_MAX, BETA_MIN
from weightstats.fitting.families.student_t import DF_MAX, DF_MIN, fit_t_rows, newton_converged
from weightstats.fitting.standardize import MAX_STANDARDIZED, robust_center_spread

SCIPY = {"normal": stats.norm, "laplace": stats.laplace, "t": stats.t, "gennorm": stats.gennorm}
KS = {"ks_sample": 500, "ks_replicates": 99}


def _params(row) -> tuple[float, ...]:
    shape, loc, scale = row["shape"], row["loc"], row["scale"]
    return (shape, loc, scale) if np.isfinite(shape) else (loc, scale)


# The shape ranges our fits search (flagged "_at_bound" when they stop at an end).
BOUNDS = {"t": (DF_MIN, DF_MAX), "gennorm": (BETA_MIN, BETA_MAX)}


def _scipy_loglik(family: str, x: np.ndarray) -> float:
    """scipy's maximum log-likelihood; where its shape leaves our range (uniform data: gennorm
    beta -> infinity), scipy's fit with the shape fixed at our bound."""
    dist = SCIPY[family]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            params = dist.fit(x)
            if family in BOUNDS:
                lo, hi = BOUNDS[family]
                if not lo <= params[0] <= hi:
                    params = dist.fit(x, f0=float(np.clip(params[0], lo, hi)))
            return float(dist.logpdf(x, *params).sum())
        except (ValueError, RuntimeError, FloatingPointError):
            return float("nan")


def _assert_never_below_scipy(x: np.ndarray, families=tuple(SCIPY)) -> dict[str, float]:
    fit = fit_tensor(x, families=families, **KS)
    assert fit.ok, fit.message
    frame = fit.to_frame().set_index("family")
    ours = {}
    for family in families:
        row = frame.loc[family]
        assert "fit_failed" not in row["flags"] and "not_converged" not in row["flags"], row["flags"]
        assert np.isfinite(row["loglik"])
        theirs = _scipy_loglik(family, x)
        if np.isfinite(theirs):
            assert row["loglik"] >= theirs - 1e-7 * abs(theirs) - 1e-6, (family, row["loglik"], theirs)
        ours[family] = row["loglik"]
    return ours


def test_t_half_df_with_extreme_tail_matches_scipy():
    """Issue 10 item 3: df 4.01 and loglik -2778.18 before; scipy: df 0.478, -1925.00."""
    x = np.random.default_rng([34, 3, 10]).standard_t(0.5, 500)
    fit = fit_tensor(x, families=("t",), **KS)
    row = fit.to_frame().iloc[0]
    params = stats.t.fit(x)
    assert row["shape"] == pytest.approx(params[0], rel=1e-3)
    assert row["loglik"] >= stats.t.logpdf(x, *params).sum() - 1e-6
    assert row["loglik"] == pytest.approx(-1925.0041, abs=1e-3)


def test_t_gaussian_bulk_with_three_huge_outliers_finds_the_mle():
    """Issue 10 item 3: 1e5 Gaussians plus three values near ±1e8 gave df 199.8, 8,417 nats below
    the MLE (df ~13), which the family finds on the raw values."""
    rng = np.random.default_rng(2026)
    x = np.concatenate([rng.standard_normal(100_000), [1.0e8, -1.0e8, 1.3e8]])
    frame = fit_tensor(x, families=("t", "gennorm"), **KS).to_frame().set_index("family")
    # scipy's gennorm.fit on this sample (beta 0.344): the local loc search stopped 468 ranks
    # from the best cusp, 15 nats below it.
    assert frame.loc["gennorm", "loglik"] >= -177487.9908
    row = frame.loc["t"]
    direct = get_family("t").fit(np.sort(x))
    assert row["loglik"] == pytest.approx(float(direct.loglik[0]), rel=1e-9)
    assert row["shape"] == pytest.approx(float(direct.shape[0]), rel=1e-5)
    assert 5 < row["shape"] < 50
    assert stats.t.logpdf(x, *_params(row)).sum() == pytest.approx(row["loglik"], rel=1e-9)


def _squeezed(x: np.ndarray) -> np.ndarray:
    """The values as the old mean/std standardization left them: the bulk in a ~1e-7 sliver."""
    z = np.sort(x) / np.abs(x).max()
    return (z - z.mean()) / z.std()


def test_t_fit_recovers_from_a_badly_scaled_row_and_says_whether_it_converged():
    """Even fed the squeezed values directly, the family detects the stall (undamped Newton
    decrement) and refits in robust units."""
    x = np.random.default_rng([34, 3, 10]).standard_t(0.5, 500)
    z = _squeezed(x)
    stalled = fit_t_rows(z[np.newaxis, :])
    theta, ll, _, hess, grad = stalled
    assert not newton_converged(theta, ll, grad, hess)[0]
    fit = get_family("t").fit(z)
    assert fit.converged[0]
    assert float(fit.shape[0]) == pytest.approx(0.4779, rel=1e-3)
    assert float(fit.loglik[0]) > float(ll[0]) + 800


def test_converged_rows_are_recognised():
    rows = np.sort(np.random.default_rng(3).standard_t(4.0, (20, 300)), axis=1)
    theta, ll, _, hess, grad = fit_t_rows(rows)
    assert newton_converged(theta, ll, grad, hess).all()
    assert get_family("t").fit_rows(rows).converged.all()


def test_robust_standardization_bounds_every_value():
    z = np.sort(np.concatenate([np.zeros(10), np.linspace(-1e-14, 1e-14, 90), [1.0]]))
    center, spread = robust_center_spread(z)
    assert np.abs((z - center) / spread).max() <= MAX_STANDARDIZED * (1 + 1e-12)
    # More than half the values on one atom: the quartiles tie, the spread stays positive.
    atom = np.sort(np.concatenate([np.zeros(80), np.linspace(-1, 1, 20)]))
    assert robust_center_spread(atom)[1] > 0


@pytest.mark.parametrize("magnitude", [1e-300, 1e-30, 1.0, 1e30, 1e200])
def test_extreme_magnitudes_with_outliers_stay_finite(magnitude):
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(200), [1e6, -3e6]]) * magnitude
    fit = fit_tensor(x, **KS)
    frame = fit.to_frame()
    assert np.isfinite(frame["loglik"]).all()
    assert frame.set_index("family").loc["t", "shape"] < 5  # the outliers need heavy tails


@st.composite
def outlier_laden(draw):
    """A continuous bulk (no repeated values) plus a few outliers up to 1e12 times its width."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.sampled_from([40, 80, 150]))
    bulk = draw(st.sampled_from(["normal", "laplace", "t1", "t5", "uniform"]))
    x = {"normal": lambda: rng.standard_normal(n), "laplace": lambda: rng.laplace(size=n),
         "t1": lambda: rng.standard_t(1.0, n), "t5": lambda: rng.standard_t(5.0, n),
         "uniform": lambda: rng.uniform(-1, 1, n)}[bulk]()
    k = draw(st.integers(0, 4))
    exponent = draw(st.floats(1.0, 12.0))
    where = rng.choice(n, k, replace=False)
    x[where] = rng.choice([-1.0, 1.0], k) * 10.0**exponent * rng.uniform(1.0, 3.0, k)
    return x * draw(st.sampled_from([1e-6, 1.0, 1e4])) + draw(st.sampled_from([0.0, 3.0]))


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(outlier_laden())
def test_loglik_never_below_scipy_on_outlier_laden_inputs(x):
    _assert_never_below_scipy(x)


@pytest.mark.parametrize("exponent", [30, 100, 140])
def test_t_fits_beside_an_outlier_far_beyond_the_standardization_cap(exponent):
    """Beyond 1e12 interquartile ranges the unit grows and the bulk is squeezed again; t's
    convergence check catches the stall and its refit in robust units finds the heavy tail."""
    x = np.r_[np.random.default_rng(0).standard_normal(1000), 10.0**exponent]
    with np.errstate(all="ignore"):
        frame = fit_tensor(x, **KS).to_frame().set_index("family")
    t = frame.loc["t"]
    assert t["flags"] == "" and np.isfinite(t["loglik"])
    assert 0.5 < t["shape"] < 3
    assert t["loglik"] > frame.loc["gennorm", "loglik"] > frame.loc["normal", "loglik"]


def test_an_outlier_1e170_interquartile_ranges_out_costs_t_only():
    """Past ~1e150 interquartile ranges z² overflows in t's own units: t is flagged, not the layer."""
    x = np.r_[np.random.default_rng(0).standard_normal(1000), 1e170]
    with np.errstate(all="ignore"):
        fit = fit_tensor(x, **KS)
    frame = fit.to_frame().set_index("family")
    assert fit.ok
    assert np.isfinite(frame.drop(index="t")["loglik"]).all()
    t = frame.loc["t"]
    assert np.isfinite(t["loglik"]) or "fit_failed" in t["flags"] or "not_converged" in t["flags"]


def test_t_log_density_beyond_the_square_overflow_is_finite():
    """(x - loc)/scale beyond ~1e154: z² overflows, log(1 + z²/df) must not."""
    t = get_family("t")
    x = np.array([1e300, -1e300, 3.0])
    got = t.logpdf(x, 0.0, 1e-10, 3.0)
    assert np.isfinite(got).all()
    expected = (stats.t.logpdf(3.0 / 1e-10, 3.0) - np.log(1e-10))
    assert got[2] == pytest.approx(expected, rel=1e-12)
    far = float(t.logpdf(np.array([1e300]), 0.0, 1e-10, 3.0)[0])
    # log density ~ c - log(scale) - (df+1)/2 * (2 log|z| - log df)
    assert far == pytest.approx(float(t.logpdf(np.array([1e150]), 0.0, 1e-10, 3.0)[0])
                                - 4.0 * np.log(1e150), rel=1e-9)


def test_atoms_with_a_1e154_value_keep_a_finite_t_fit():
    """Found by a hypothesis search: zeros, -1s, 9e-142 and -9.9e153 made t's Hessian overflow
    (LinAlgError, then "fit_failed"); the far values now enter through logarithms."""
    x = np.zeros(30)
    x[[10, 11, *range(17, 30)]] = -1.0
    x[8], x[13] = -9.92115037e153, 9.40166866e-142
    with np.errstate(all="ignore"):
        frame = fit_tensor(x, **KS).to_frame().set_index("family")
    assert np.isfinite(frame["loglik"]).all()
    assert not frame["flags"].str.contains("fit_failed").any()


# Samples on which a hypothesis search found gennorm below scipy:
# a cusp that was not the highest (beta 0.29: 2 nats), loc and beta not yet converged (6e-5
# nats), and a local optimum at beta 1.10 where scipy's is at 1.22 (0.004 nats).
GENNORM_FOUND = {
    "cusp-below-beta-1": [5.37915371e-06, 4.12439812e-07, -3.27235145e-07, 2.59220709e-08,
        -5.01545055e-06, -7.46243284e-07, -7.31294944e-07, 3.93792675e-07, -7.74282765e-07,
        -1.09484303e-06, 4.89253493e-07, -1.58786752e-07, 2.81635402e-06, -9.77193619e-07,
        1.21647833e-06, -7.12531324e-07, -6.06209981e-06, 2.13393954e-06, -1.55458964e-06,
        -1.17397516e-06, 7.09532853e-07, -2.39950669e-06, 4.17729755e-07, 6.36388728e-07,
        3.75473746e-08, -9.96408363e-07, 5.09686578e-07, 8.12154608e-05, -1.56730663e-07,
        -8.62587123e-07, 2.47036876e-07, -1.71583472e-06, -6.21090845e-07, 3.16673012e-07,
        7.42789253e-06, 1.49117328e-06, 9.83140269e-07, -8.08021074e-07, -1.69217324e-06,
        -1.29005509e-06],
    "coupled-loc-beta": [9.58932883e-07, 1.09224747e-07, 1.32973430e-06, -1.31609742e-06,
        -1.36319693e-06, -6.02661940e-07, 4.01625102e-07, -4.60214195e-07, 1.71970962e-06,
        8.84946902e-08, -1.46003707e-06, -5.56201387e-07, 8.09693483e-07, 1.04276727e-06,
        7.20520104e-07, -2.19976441e-06, -7.33042873e-08, -2.17501919e-06, -1.03261906e-06,
        -4.12840214e-07, 1.05626294e-06, -1.03298482e-06, 7.70100644e-07, 9.93614309e-07,
        1.29557154e-06, -1.71313727e-07, 5.84490370e-07, 8.17276611e-07, 1.90704410e-07,
        1.42500976e-06, -1.50702622e-06, 1.19725913e-06, 4.69774173e-08, 4.82322645e-07,
        3.28200210e-07, -1.71104934e-07, 3.41519008e-07, -6.99074291e-07, -6.78750611e-07,
        -4.36125200e-07],
    "restart-near-beta-1": [-2.69101103e-07, -1.89374680e-06, 1.91491678e-06, 2.13164949e-06,
        2.39782777e-06, 1.14136189e-06, 5.86125724e-07, -3.72784515e-07, -1.44326254e-06,
        1.20385412e-06, -8.42230989e-07, -3.25867872e-07, -1.50914514e-06, 1.45982957e-06,
        -8.54442751e-08, -4.14830665e-07, -3.68749711e-07, 9.78183033e-07, -4.73814839e-07,
        -1.00072882e-06, -1.65035559e-06, -3.16686478e-07, -9.01969946e-07, -3.57050329e-07,
        -8.86717452e-07, 1.98045826e-07, 4.00241871e-07, -1.49843717e-07, -1.00519714e-06,
        4.73181137e-07, 1.51780529e-06, -1.06519064e-06, -1.26130736e-06, -2.99556967e-06,
        -2.20796453e-07, 3.54704426e-06, 1.16551950e-07, 1.25073002e-06, -6.05595716e-07,
        -1.85145368e-06],
}


@pytest.mark.parametrize("name", sorted(GENNORM_FOUND))
def test_gennorm_never_below_scipy_on_found_samples(name):
    x = np.array(GENNORM_FOUND[name])
    _assert_never_below_scipy(x, families=("gennorm",))
