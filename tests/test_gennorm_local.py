"""The generalized normal's shortcuts for heavy tails (issue 13) return what the passes they
replace return: the local cost below beta = 1.05, the cusp search's blocked near costs, and the
coordinate ascent's stop on a repeated round."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from weightstats.fitting.families import gennorm_fit as gm
from weightstats.fitting.families.gennorm import GenNorm
from weightstats.fitting.families.gennorm_cusps import _exact_costs, _near_costs
from weightstats.fitting.families.gennorm_local import LocalCost


@pytest.mark.parametrize("beta", [0.3, 0.93, 1.05])
@pytest.mark.parametrize("weighted", [False, True])
def test_local_cost_equals_the_full_sum(beta, weighted):
    rng = np.random.default_rng(1)
    x = np.sort(rng.standard_t(3, 200_000))
    w = rng.integers(1, 9, x.size).astype(float) if weighted else None
    lo, hi = 0.01 - 2e-3, 0.01 + 2e-3
    local = LocalCost(x, beta, lo, hi, w)
    assert local.near.size < x.size / 20  # the point: few values summed per evaluation
    for m in (lo, 0.0093, 0.01, hi, 0.5):  # 0.5 lies outside: the full pass
        full = np.abs(x - m) ** beta
        want = full.sum() if w is None else float(np.sum(full * w))
        assert local(np.array([m]))[0] == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("beta", [0.4, 0.9])
def test_blocked_near_costs_equal_the_exact_costs(beta):
    rng = np.random.default_rng(2)
    values = np.sort(stats.gennorm.rvs(beta, size=6000, random_state=rng))
    cand = values[2000:4048]
    w = rng.integers(1, 5, values.size).astype(float)
    for weights in (None, w):
        got = _near_costs(values, cand, beta, weights)
        want = _exact_costs(values, cand, beta, weights)
        np.testing.assert_allclose(got, want, rtol=1e-13)
        assert np.argmin(got) == np.argmin(want)


def test_coordinate_ascent_stops_on_a_repeated_round_with_the_same_result(monkeypatch):
    """Below beta = 1 a rejected loc proposal comes back round after round; stopping there
    returns exactly what all the rounds return (checked against the loop without the stop)."""
    # A standardized layer of benchmarks/bench_heavy_tails.py (16,384 values, beta 0.89), as the
    # restart near the cusp sees it: 7 rounds instead of 50.
    x = np.load(Path(__file__).parent / "data" / "gennorm_cusp_cycle.npy")[np.newaxis, :]
    calls = []
    update = gm._update_loc

    def counting(*args, **kwargs):
        calls.append(1)
        return update(*args, **kwargs)

    monkeypatch.setattr(gm, "_update_loc", counting)
    stopped = gm.fit_gennorm_rows(x, x.mean(axis=1), np.full(1, 1.5), rounds=50)
    n_stopped = len(calls)
    # the same loop with the repetition test disabled: np.array_equal never sees a repeat
    calls.clear()
    monkeypatch.setattr(gm.np, "array_equal", lambda *a, **k: False)
    every = gm.fit_gennorm_rows(x, x.mean(axis=1), np.full(1, 1.5), rounds=50)
    monkeypatch.undo()
    assert n_stopped < 10 < len(calls)
    for a, b in zip(stopped, every, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("frac", [0.6, 0.9])
def test_a_majority_atom_fits_without_overflow(frac):
    """More than half the values on one atom: the long row's bracket around it is ~1e-300 wide
    and the far values' series would overflow (r^-15); the local cost falls back to full
    passes, silently, and the fit's log-likelihood is that of its parameters."""
    rng = np.random.default_rng(0)
    x = np.sort(np.where(rng.random(100_000) < frac, 0.0, rng.laplace(size=100_000)))
    family = GenNorm()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = family.fit(x)
    assert np.isfinite(fit.loglik[0])
    theta = family.theta(fit)
    assert fit.loglik[0] == pytest.approx(family.logpdf(x, *theta).sum(), rel=1e-9)


@pytest.mark.parametrize("beta", [0.7, 1.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_local_cost_split_at_m_gives_the_abs_numbers(beta, weighted):
    """``LocalCost.at`` / ``slope`` take |x - m| as one subtraction on either side of m (and
    skip the error-state context where no value equals m): bit for bit the numbers of the abs
    of the difference, at data values (ties included), between them and at the ends."""
    from weightstats.fitting.families.gennorm_local import _horner, _power

    rng = np.random.default_rng(7)
    x = np.sort(np.concatenate([rng.standard_t(3, 20_000), np.full(5, 0.0105)]))
    w = rng.integers(1, 9, x.size).astype(float) if weighted else None
    local = LocalCost(x, beta, 0.01 - 1e-3, 0.01 + 1e-3, w)
    near, near_w = local.near, local.near_w
    inside = near[(near >= local.lo) & (near <= local.hi)]
    for m in [local.lo, local.hi, 0.0105, 0.01, *inside[:5], *inside[-3:],
              0.5 * (inside[1] + inside[2])]:
        p = _power(np.abs(near - m), beta)
        want = (p.sum() if near_w is None else np.dot(p, near_w)) + _horner(local.coef_list,
                                                                            m - local.mid)
        assert local.at(m) == float(want)
        b1 = beta - 1.0
        k = int(np.searchsorted(near, m))
        above, below = _power(near[k:] - m, b1), _power(m - near[:k], b1)
        exact = (np.sum(above) - np.sum(below) if near_w is None
                 else np.dot(above, near_w[k:]) - np.dot(below, near_w[:k]))
        got = local.slope(m)
        want_slope = float(exact) - _horner(local.dcoef.tolist(), m - local.mid) / beta
        assert got == want_slope or (np.isnan(got) and np.isnan(want_slope))


def _rounds_counted(monkeypatch, fit):
    """(result, number of loc searches) of ``fit()``."""
    from weightstats.fitting.families import gennorm_loc

    calls = []
    real = gennorm_loc._update_loc

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gm, "_update_loc", counted)
    out = fit()
    monkeypatch.setattr(gm, "_update_loc", real)
    return out, len(calls)


def test_one_row_stops_after_a_round_that_gains_nothing(monkeypatch):
    """One row's coordinate ascent stops after an accepted round that gained under the
    likelihood's rounding (the restarts near the cusp wandered along near-tied data values for
    several more rounds): fewer loc searches, the likelihood to rounding. A batch keeps every
    round: bit for bit the rows' numbers without the stop."""
    # values on a 1e-4 grid (ties near loc), beta near the cusp
    rows = np.stack([np.round(np.sort(stats.gennorm.rvs(1.1, size=4096, random_state=seed)), 4)
                     for seed in range(3)])
    start = (rows.mean(axis=1), np.full(3, 1.5))
    with_stop = [_rounds_counted(monkeypatch, lambda r=r: gm.fit_gennorm_rows(
        r[None, :], np.array([r.mean()]), np.array([1.5]), rounds=50, local_costs=True))
        for r in rows]
    batch = gm.fit_gennorm_rows(rows, *start, rounds=50)
    monkeypatch.setattr(gm, "_ROUND_GAIN", -1.0)  # never stop on the gain
    without = [_rounds_counted(monkeypatch, lambda r=r: gm.fit_gennorm_rows(
        r[None, :], np.array([r.mean()]), np.array([1.5]), rounds=50, local_costs=True))
        for r in rows]
    batch_without = gm.fit_gennorm_rows(rows, *start, rounds=50)
    for a, b in zip(batch, batch_without, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sum(n for _, n in with_stop) < sum(n for _, n in without)
    for (fit, _), (ref, _) in zip(with_stop, without, strict=True):
        assert fit[3][0] >= ref[3][0] - 1e-13 * abs(ref[3][0])


@pytest.mark.parametrize("beta0", [0.6, 1.0, 1.7])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_row_beta_newton_with_scalar_derivatives_is_the_batch_one(beta0, weighted):
    """One row's beta Newton takes its log-beta derivatives on numpy scalars: the same beta,
    likelihood and curvature as the batch path (length-1 arrays) to rounding."""
    rng = np.random.default_rng(11)
    row = np.sort(stats.gennorm.rvs(beta0, size=3000, random_state=rng))
    w = rng.integers(1, 6, row.size).astype(float) if weighted else None
    loc, start = np.array([float(np.median(row))]), np.array([1.4])
    one = gm._beta_newton(row[None, :], loc, start, w=w)
    if w is None:
        two = gm._beta_newton(np.stack([row, row]), np.repeat(loc, 2), np.repeat(start, 2))
    else:  # the batch path is unweighted: compare with the expanded row's
        big = np.repeat(row, w.astype(int))
        two = gm._beta_newton(np.stack([big, big]), np.repeat(loc, 2), np.repeat(start, 2))
    for got, want, rel in zip(one, two, (1e-9, 1e-12, 1e-13, 1e-7), strict=True):
        assert got[0] == pytest.approx(want[0], rel=rel)


@pytest.mark.parametrize("case", ["bound", "taylor", "halving"])
def test_one_row_newton_loop_is_the_batch_loop(case):
    """One row's Newton iterations (``_newton_one_row``, decided on scalars): at the upper
    bound of beta, from the optimum (the Taylor step) and from far off (step halvings), the
    numbers of the batch loop on the same row to rounding."""
    rng = np.random.default_rng(5)
    if case == "bound":  # a near-uniform row: beta runs to BETA_MAX
        row = np.sort(rng.uniform(-1.0, 1.0, 2000))
    else:
        row = np.sort(stats.gennorm.rvs(0.8, size=2000, random_state=rng))
    loc = np.array([0.0])
    start = np.array([{"bound": 3.0, "taylor": 1.0, "halving": 15.0}[case]])
    if case == "taylor":
        start = gm._beta_newton(row[None, :], loc, start)[0] * (1 + 3e-7)
    one = gm._beta_newton(row[None, :], loc, start.copy())
    two = gm._beta_newton(np.stack([row, row]), np.repeat(loc, 2), np.repeat(start, 2))
    # beta, S and the likelihood to rounding; the curvature is taken where the last step
    # started (one row takes its last tiny step without the pass that would confirm it)
    for got, want, rel in zip(one, two, (1e-9, 1e-9, 1e-12, 1e-6), strict=True):
        assert got[0] == pytest.approx(want[0], rel=rel)
    if case == "bound":
        assert one[0][0] == gm.BETA_MAX
