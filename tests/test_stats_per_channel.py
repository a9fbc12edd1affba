"""The per-channel view at small fan-in (issue 10, item 6).

Standardizing k values by their own mean and std gives excess kurtosis -6/(k + 1) under exact
Gaussianity: a depthwise (512, 1, 3, 3) Gaussian tensor was called generalized normal (beta ~ 3.1)
in 40 of 40 draws and the normal KS test rejected in 39 of 40. The view now pools exact Gaussian
scores (weightstats.fitting.channels). ``benchmarks/bench_per_channel.py`` reruns the draws below
at 200 per case.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats

import weightstats
from weightstats.fitting.channels import channel_scores, gaussian_scores

DRAWS = 40


def _depthwise_gaussian(r: int) -> np.ndarray:
    """512 channels of 9 Gaussian values, each channel with its own mean and scale."""
    rng = np.random.default_rng([61, r])
    scale = rng.lognormal(-3.0, 0.7, (512, 1, 1, 1))
    return rng.normal(0.0, 0.01, (512, 1, 1, 1)) + scale * rng.standard_normal((512, 1, 3, 3))


def test_scores_are_exactly_standard_normal_and_independent():
    rng = np.random.default_rng(62)
    rows = rng.normal(rng.normal(0, 5, (40_000, 1)), rng.lognormal(0, 2, (40_000, 1)), (40_000, 9))
    u = gaussian_scores(rows)
    assert u.shape == (40_000, 7)
    # Known parameters (0, 1): scipy's exact KS test applies as it stands.
    assert stats.kstest(u.ravel(), "norm").pvalue > 0.01
    assert abs(stats.kurtosis(u.ravel())) < 0.05  # raw standardization: -6/10 = -0.6
    corr = np.corrcoef(u.T)[np.triu_indices(7, 1)]
    assert np.abs(corr).max() < 0.03  # raw residuals: -1/8 within a channel
    corr2 = np.corrcoef((u * u).T)[np.triu_indices(7, 1)]
    assert np.abs(corr2).max() < 0.03


def test_scores_do_not_depend_on_each_channel_mean_or_scale():
    rows = np.random.default_rng(63).standard_normal((50, 6))
    assert np.allclose(gaussian_scores(3.0 + 1e-6 * rows), gaussian_scores(rows), atol=1e-7)


def test_depthwise_gaussian_is_called_gaussian_and_ks_keeps_its_size():
    best, rejected, pvalues = Counter(), 0, []
    for r in range(DRAWS):
        fit = weightstats.fit_tensor(_depthwise_gaussian(r), per_channel=True)
        best[fit.verdict["best_bic"]] += 1
        frame = fit.to_frame().set_index("family")
        pvalues.append(frame.loc["normal", "ks_pvalue"])
        rejected += frame.loc["normal", "ks_pvalue"] < 0.05
    assert best["normal"] >= 0.9 * DRAWS, best
    assert frame.loc["normal", "n"] == 512 * 7  # two values per channel spent
    # Binomial(40, 0.05): P(X >= 7) = 0.003; the old view rejected in 39 of 40.
    assert rejected <= 6
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01


def test_heavy_tailed_channels_stay_heavy_tailed():
    calls = Counter()
    for r in range(DRAWS):
        x = np.random.default_rng([64, r]).standard_t(4, (64, 3, 3, 3))
        fit = weightstats.fit_tensor(x, per_channel=True)
        best = fit.verdict["best_bic"]
        if best == "gennorm":
            assert fit.params("gennorm")["beta"] < 2.0  # never flatter than Gaussian
        calls[best] += 1
    assert calls["t"] + calls["gennorm"] + calls["laplace"] >= 0.9 * DRAWS, calls


def test_small_and_constant_channels_are_dropped_with_a_note():
    x = np.random.default_rng(65).standard_normal((40, 5))
    x[:3] = 1.0  # constant channels: every score undefined
    x[3, 2:] = np.nan  # two usable values: below the fan-in floor
    scores, notes = channel_scores(x, 0)
    assert scores.size == 36 * 3 and np.isfinite(scores).all()
    assert any("1 channel(s) with fewer than 3 usable values" in n for n in notes)
    assert any("score(s) undefined" in n for n in notes)


def test_channel_axis_and_single_axis():
    x = np.random.default_rng(66).standard_normal((9, 100))
    a, _ = channel_scores(x, 1)
    b, _ = channel_scores(x.T.copy(), 0)
    assert np.array_equal(a, b)
    flat, notes = channel_scores(x[0], 0)
    assert flat.size == 100 and "single axis" in notes[0]


@pytest.mark.parametrize("shape", [(300, 3), (64, 3, 3, 3), (32, 4096)])
def test_every_fan_in_gives_k_minus_two_scores(shape):
    x = np.random.default_rng(67).standard_normal(shape)
    scores, _ = channel_scores(x, 0)
    assert scores.size == shape[0] * (int(np.prod(shape[1:])) - 2)
