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
