"""The generalized normal's fit is maximum likelihood to rounding, whichever shortcut it takes.

The fast paths (a long row's strided start by joint Newton, the Taylor-expanded last Newton step,
the loc score near the bracket from ``gennorm_local.LocalCost``) must not cost likelihood. Oracles:
scipy's ``gennorm.logpdf`` summed at the reported parameters (the reported log-likelihood is that
sum), and a reference optimum: joint Newton in (loc, log beta) on every value iterated until its
step is at rounding (beta well above 1, where the optimum is smooth), or a tight Nelder-Mead
polish of the profile likelihood from the fit (any beta: it must find nothing better).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from scipy import optimize, stats

from weightstats.fitting.families.gennorm import BETA_MAX, BETA_MIN, GenNorm
from weightstats.fitting.families.gennorm_newton import (
    _joint_derivatives,
    _joint_sums,
    profile_loglik,
)

SHAPES = (0.6, 0.9, 1.0, 1.1, 1.5, 2.0, 4.0)


def _sample(kind: str, n: int, seed: int) -> np.ndarray:
    """A sorted layer-like sample of scale 0.02."""
    rng = np.random.default_rng(seed)
    if kind.startswith("beta="):
        x = stats.gennorm.rvs(float(kind[5:]), size=n, random_state=rng)
    elif kind == "skewed":
        x = stats.skewnorm.rvs(4.0, size=n, random_state=rng)
    elif kind == "t(6)":
        x = rng.standard_t(6, n)
    elif kind == "channels":  # per-channel scales over a heavy bulk, like bench_heavy_tails
        rows = max(n // 256, 1)
        shape = rng.uniform(0.9, 1.7)
        x = stats.gennorm.rvs(shape, size=(rows, n // rows), random_state=rng)
        x = (x * np.exp(0.3 * rng.standard_normal((rows, 1)))).ravel()
    elif kind == "zeros":  # 20% exact zeros
        x = np.where(rng.random(n) < 0.2, 0.0, rng.laplace(size=n))
    elif kind == "ties":  # bfloat16-rounded: many ties
        x = rng.standard_t(5, n).astype(ml_dtypes.bfloat16).astype(np.float64)
    else:
        raise ValueError(kind)
    return np.sort(0.02 * x)


def _loglik(x: np.ndarray, loc: float, scale: float, beta: float) -> float:
    return float(stats.gennorm.logpdf(x, beta, loc, scale).sum())


def _profile(x: np.ndarray, loc: float, beta: float) -> float:
    s = np.sum(np.abs(x - loc) ** beta)
    return float(profile_loglik(x.size, np.array([beta]), np.array([s]))[0])


def _newton_reference(x: np.ndarray, loc: float, beta: float) -> tuple[float, float]:
    """Full joint Newton steps from (loc, beta) until the step is at rounding."""
    for _ in range(20):
        sums = _joint_sums(x, loc, beta)
        _, grad, hess, _ = _joint_derivatives(x.size, beta, sums)
        step = np.linalg.solve(-hess, grad)
        loc, beta = loc + step[0], beta * np.exp(step[1])
        if abs(step[1]) < 1e-14 and abs(step[0]) < 1e-14 * x.std():
            break
    return loc, beta


def _assert_no_better_nearby(x: np.ndarray, fit) -> None:
    """Nelder-Mead on the profile likelihood from the fit finds no gain above 1e-9 relative."""
    loc, scale, beta, ll = (float(fit.loc[0]), float(fit.scale[0]), float(fit.shape[0]),
                            float(fit.loglik[0]))

    def cost(p):
        b = beta * np.exp(p[1])
        if not BETA_MIN <= b <= BETA_MAX:
            return np.inf
        return -_profile(x, loc + p[0] * scale, b)

    res = optimize.minimize(cost, [0.0, 0.0], method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-12 * abs(ll),
                                     "initial_simplex": [[0, 0], [1e-4, 0], [0, 1e-4]]})
    assert -res.fun <= ll + 1e-9 * abs(ll), (ll, -res.fun)


CASES = ([(f"beta={b}", n) for b in SHAPES for n in (50, 2_000, 40_000)]
         + [(kind, n) for kind in ("skewed", "t(6)", "channels", "zeros", "ties")
            for n in (3_000, 300_000)]
         + [("channels", 2_000_000), ("beta=1.5", 2_000_000)])


@pytest.mark.parametrize(("kind", "n"), CASES)
def test_fit_is_the_maximum_likelihood(kind, n):
    x = _sample(kind, n, seed=n + len(kind))
    fit = GenNorm().fit(x)
    loc, scale, beta, ll = (float(fit.loc[0]), float(fit.scale[0]), float(fit.shape[0]),
                            float(fit.loglik[0]))
    assert ll == pytest.approx(_loglik(x, loc, scale, beta), rel=1e-11)
    if n <= 300_000:
        _assert_no_better_nearby(x, fit)
    if 1.2 < beta < 9.0 and n > 1_000:
        # Near beta = 1 the loc curvature is dominated by the nearest values, so Newton's
        # last step lands a few percent of its length (~1e-6 of the scale) from the optimum.
        ref_loc, ref_beta = _newton_reference(x, loc, beta)
        assert beta == pytest.approx(ref_beta, rel=1e-8)
        assert abs(loc - ref_loc) <= 1e-7 * scale
        assert _profile(x, ref_loc, ref_beta) <= ll + 1e-12 * abs(ll)


def test_fit_is_deterministic():
    x = _sample("channels", 100_000, seed=5)
    a, b = GenNorm().fit(x), GenNorm().fit(x.copy())
    for field in ("loc", "scale", "shape", "loglik", "log_shape_se"):
        assert np.array_equal(getattr(a, field), getattr(b, field), equal_nan=True)


@pytest.mark.parametrize("n", [300_000, 2_000_000])
def test_long_row_newton_reaches_the_optimum(n):
    """A t(6)-like long row (beta ~1.3): the polish used to stop one Newton step short of the
    optimum (beta ~1e-6 away, loc ~1e-6 of the scale); now it takes that step."""
    x = _sample("t(6)", n, seed=1)
    fit = GenNorm().fit(x)
    ref_loc, ref_beta = _newton_reference(x, float(fit.loc[0]), float(fit.shape[0]))
    assert fit.shape[0] == pytest.approx(ref_beta, rel=1e-8)
    assert abs(fit.loc[0] - ref_loc) <= 1e-7 * fit.scale[0]


def test_weighted_fit_takes_the_same_shortcuts():
    """The counted path of a bfloat16 t(6) sample equals the fit of its expansion."""
    x = _sample("ties", 400_000, seed=3)
    values, counts = np.unique(x, return_counts=True)
    family = GenNorm()
    got = family.fit_weighted(values, counts.astype(np.float64))
    want = family.fit(x)
    assert got.loglik[0] == pytest.approx(want.loglik[0], rel=1e-12)
    assert got.shape[0] == pytest.approx(want.shape[0], rel=1e-10)
    assert abs(got.loc[0] - want.loc[0]) <= 1e-10 * want.scale[0]


@pytest.mark.parametrize("beta", [0.5, 0.95, 1.3])
def test_local_cost_far_bands_keep_the_full_sum(beta):
    """A bracket a millionth of the spread wide: the far values fall in every distance band of
    ``LocalCost`` (fewer series terms the farther), and its costs and slopes stay the full sums'."""
    from weightstats.fitting.families.gennorm_local import LocalCost

    rng = np.random.default_rng(7)
    # distances from the bracket log-uniform from 1 to 1e7 of its half-length, both sides
    dist = 1e-6 * np.exp(rng.uniform(0.0, np.log(1e7), 300_000))
    x = np.sort(0.01 + np.where(rng.random(dist.size) < 0.4, -dist, dist))
    w = rng.integers(1, 5, x.size).astype(float)
    lo, hi = 0.01 - 1e-6, 0.01 + 1e-6
    for weights in (None, w):
        local = LocalCost(x, beta, lo, hi, weights)
        for m in (lo, 0.01 - 3e-7, 0.01, hi):
            r = x - m
            full = np.abs(r) ** beta
            sign = np.sign(r) * np.abs(r) ** (beta - 1.0)
            want = full.sum() if weights is None else float(np.sum(full * weights))
            slope = sign.sum() if weights is None else float(np.sum(sign * weights))
            assert local.at(m) == pytest.approx(want, rel=1e-14)
            assert local.slope(m) == pytest.approx(slope, rel=1e-9, abs=1e-9 * want)


@pytest.mark.parametrize("at", ["between", "atom"])
def test_beta_newton_on_a_sorted_row_is_the_general_path(at):
    """Told that its row is sorted, beta's Newton takes |x - loc| by one subtraction per side
    and the values equal to loc as a range: the same numbers as the general path, with loc on
    an atom of tied values too (their log is 0 and their power 0)."""
    from weightstats.fitting.families.gennorm_fit import _beta_newton

    rng = np.random.default_rng(11)
    x = rng.standard_t(3, 200_000)
    x[:20_000] = 0.25  # an atom
    x = np.sort(x)
    w = rng.integers(1, 6, x.size).astype(float)
    loc = np.array([0.25 if at == "atom" else 0.2501])
    for weights in (None, w):
        for beta0 in (0.7, 1.6):
            want = _beta_newton(x[np.newaxis, :], loc, np.array([beta0]), w=weights)
            got = _beta_newton(x[np.newaxis, :], loc, np.array([beta0]), w=weights,
                               sorted_row=True)
            for a, b in zip(got, want, strict=True):
                assert np.array_equal(a, b, equal_nan=True)


def _exact_best(x: np.ndarray, beta: float, center: float) -> float:
    """The best of the 2,048 values nearest ``center`` in rank, every cost summed over all of x."""
    from weightstats.fitting.families.gennorm_cusps import _CANDIDATES, _exact_costs

    k = int(np.searchsorted(x, center))
    lo = max(0, min(k - _CANDIDATES // 2, x.size - _CANDIDATES))
    cand = x[lo:lo + _CANDIDATES]
    return float(cand[int(np.argmin(_exact_costs(x, cand, beta)))])


def test_best_data_loc_ranks_the_candidates_exactly():
    """Below beta = 1 the best data value among 2,048 candidates is decided by cost differences
    of ~1e-5 nats: the far values' term used to come from strided order statistics, off by more
    than that between neighbouring candidates, and picked a value 6.5e-4 nats short here."""
    from weightstats.fitting.families.gennorm_cusps import best_data_loc

    rng = np.random.default_rng(0)
    x = np.sort(0.02 * stats.gennorm.rvs(0.8, size=120_000, random_state=rng))
    center = float(np.median(x))
    assert best_data_loc(x, 0.8, center) == _exact_best(x, 0.8, center)


def test_weighted_best_data_loc_ranks_the_candidates_exactly():
    """The counted search: the same exact best value as on the expanded sample (the strided
    far term, order statistics of the expansion, missed it here)."""
    from weightstats.fitting.families.gennorm_cusps import best_data_loc

    rng = np.random.default_rng(4)
    x = np.sort(np.round(0.02 * stats.gennorm.rvs(0.8, size=120_000, random_state=rng), 6))
    values, counts = np.unique(x, return_counts=True)
    center = float(np.median(x))
    want = _exact_best(x, 0.8, center)
    assert best_data_loc(x, 0.8, center) == want
    assert best_data_loc(values, 0.8, center, counts.astype(np.float64)) == want


@pytest.mark.parametrize("weighted", [False, True])
def test_banded_smooth_costs_equal_the_exact_costs(weighted):
    """``_smooth``: values 2 to 1e6 half-widths from a block of candidates, in distance bands
    with fewer Chebyshev nodes the farther the band; the sums stay the exact ones."""
    from weightstats.fitting.families.gennorm_cusps import _exact_costs, _smooth

    rng = np.random.default_rng(4)
    cand = np.sort(rng.uniform(-1.0, 1.0, 300))
    dist = np.exp(rng.uniform(np.log(2.0), np.log(1e6), 20_000))
    x = np.sort(np.concatenate([np.where(rng.random(dist.size) < 0.5, -dist, dist),
                                rng.uniform(-1.9, 1.9, 500)]))
    w = rng.integers(1, 5, x.size).astype(float) if weighted else None
    lo, hi = np.searchsorted(x, [-2.0, 2.0])
    for beta in (0.3, 0.9, 1.0):
        want = _exact_costs(np.concatenate([x[:lo], x[hi:]]), cand, beta,
                            None if w is None else np.concatenate([w[:lo], w[hi:]]))
        got = _smooth(x, int(lo), int(hi), cand, beta, w, reach=2.0)
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_interpolation_on_a_node_returns_the_node_value():
    from weightstats.fitting.families.gennorm_cusps import _chebyshev, _interpolate

    nodes = _chebyshev(9)[0]
    values = np.arange(9.0) ** 2
    t = np.array([nodes[3], 0.1234, nodes[8]])
    got = _interpolate(values, t)
    assert got[0] == values[3] and got[2] == values[8]
    assert np.isfinite(got[1])


@pytest.mark.parametrize("n", [70_000, 400_000])
def test_long_cusp_row_lands_on_the_exact_best_candidate(n):
    """A long row below beta = 1 leaves loc at the strided optimum for the global search, which
    must end on the best of the data values around the fitted loc (exact costs, fitted beta)."""
    x = _sample("beta=0.8", n, seed=n)
    fit = GenNorm().fit(x)
    loc, beta = float(fit.loc[0]), float(fit.shape[0])
    assert beta < 1.0
    assert loc == _exact_best(x, beta, loc)
    assert float(fit.loglik[0]) == pytest.approx(_loglik(x, loc, float(fit.scale[0]), beta),
                                                 rel=1e-11)


def test_trigamma_is_polygamma_to_the_bit():
    """``log_beta_derivatives`` takes trigamma as zeta(2, .): the same numbers as polygamma."""
    from scipy import special

    from weightstats.fitting.families.gennorm_newton import log_beta_derivatives

    beta = np.geomspace(BETA_MIN, BETA_MAX, 2_001)
    assert np.array_equal(special.zeta(2, 1 / beta), special.polygamma(1, 1 / beta))
    g, h = log_beta_derivatives(1000, beta, 3.0 + beta, 0.5 * beta, 2.0 + beta)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))


@pytest.mark.parametrize("beta", [1.08, 1.3])
def test_illinois_with_local_slopes_finds_the_same_loc(beta):
    """One row's Illinois search reads its slopes from ``LocalCost``: the same root as full
    passes, to the search's tolerance."""
    from weightstats.fitting.families.gennorm_loc import _update_loc

    x = _sample(f"beta={beta}", 5_000, seed=9)[np.newaxis, :]
    loc, b = np.array([float(np.median(x))]), np.array([beta])
    half = np.array([0.1 * float(np.std(x))])
    for w in (None, np.random.default_rng(1).integers(1, 4, x.shape[1]).astype(float)):
        full = _update_loc(x, b, loc, half, 1e-12, w, local_costs=False)
        local = _update_loc(x, b, loc, half, 1e-12, w, local_costs=True)
        assert abs(local[0] - full[0]) <= 1e-9 * half[0]


def test_kept_log_array_gives_the_numbers_of_fresh_ones(monkeypatch):
    """One row's logs live in an array kept per thread between calls: a call after another on a
    longer row, an atom at loc, or another thread's calls gives the numbers of fresh arrays."""
    import threading

    from weightstats.fitting.families import gennorm_fit
    from weightstats.fitting.families.gennorm_fit import _beta_newton

    rng = np.random.default_rng(3)
    rows = [np.sort(rng.standard_t(4, n)) for n in (300_000, 70_001, 5_000)]
    rows[1][30_000:31_000] = rows[1][30_000]  # an atom, taken as loc below
    cases = [(r[np.newaxis, :], np.array([r[min(30_500, r.size // 2)]]), np.array([b]))
             for r in rows for b in (0.8, 1.4)]

    def run():
        return [_beta_newton(x, loc, b, sorted_row=sorted_row)
                for x, loc, b in cases for sorted_row in (False, True)]

    kept = run() + run()
    others = []
    thread = threading.Thread(target=lambda: others.extend(run()))
    thread.start()
    mine = run()
    thread.join()
    monkeypatch.setattr(gennorm_fit, "_log_store", lambda size: None)
    fresh = run()
    for got in (kept[:len(fresh)], kept[len(fresh):], others, mine):
        for a, b in zip(got, fresh, strict=True):
            for u, v in zip(a, b, strict=True):
                assert np.array_equal(u, v, equal_nan=True)


@pytest.mark.parametrize("seed", range(5))
def test_restart_near_cusp_skips_only_a_retraced_start(seed):
    """The restart from beta 2 is skipped when its first step (beta's Newton at the mean) lands
    on the beta 1.5 restart's: the result is as good as the best of both restarts in full."""
    from weightstats.fitting.families.gennorm_fit import fit_gennorm_rows

    rng = np.random.default_rng(seed)
    n = (40, 300, 3_000, 16_384, 30_000)[seed]
    x = np.sort(0.02 * stats.gennorm.rvs(rng.uniform(0.9, 1.4), size=n, random_state=rng))
    family = GenNorm()
    local = family.fit_rows(x[np.newaxis, :])
    got = family._restart_near_cusp(x, local)
    mean = np.array([x.mean()])
    full = [fit_gennorm_rows(x[np.newaxis, :], mean, np.array([b0]), rounds=50, local_costs=True)
            for b0 in (1.5, 2.0)]
    want = max([float(local.loglik[0])] + [float(f[3][0]) for f in full])
    assert float(got.loglik[0]) >= want - 1e-12 * abs(want)
