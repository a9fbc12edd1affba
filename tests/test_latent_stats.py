"""weightstats.latent: the whole-latent tests and the per-dimension statistics on synthetic
encoders whose aggregate posterior is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from weightstats.errors import OptionError, SpecError
from weightstats.latent import fit_latents, mvn
from weightstats.latent.encoders import gaussian_posterior

N_CAL, RUNS = 100, 300  # calibration: small n and d keep 300 runs of every test fast


def gaussian_encoder(scale: float = 0.8):
    """mu = scale * x, sigma^2 = 1 - scale^2: for x ~ N(0, I) the aggregate posterior is
    exactly N(0, I)."""
    logvar = math.log(1 - scale**2)

    def encode(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return scale * x, torch.full_like(x, logvar)

    return encode


def inputs(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


def test_multivariate_tests_hold_their_level_under_the_null() -> None:
    rng = np.random.default_rng(2024)
    rejected: dict[str, int] = {}
    for run in range(RUNS):
        x = rng.standard_normal((N_CAL, 3))
        rows = [*mvn.mardia(x), mvn.henze_zirkler(x), mvn.correlation_identity(x),
                mvn.standard_normal_moments(x, replicates=199, seed=run), mvn.radius(x),
                *mvn.sphere_uniformity(x)]
        for r in rows:
            rejected[r["test"]] = rejected.get(r["test"], 0) + (r["pvalue"] < 0.05)
    rates = {k: v / RUNS for k, v in rejected.items()}
    assert len(rates) == 8
    assert all(0.02 <= r <= 0.09 for r in rates.values()), rates


def test_tests_have_power_against_a_skewed_latent() -> None:
    x = np.random.default_rng(1).exponential(size=(200, 3))
    rows = {r["test"]: r["pvalue"] for r in [*mvn.mardia(x), mvn.henze_zirkler(x)]}
    assert max(rows.values()) < 1e-3, rows


def test_bartlett_and_radius_against_scipy() -> None:
    x = inputs(150, 4, seed=3) @ np.array([[1, .5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 2.]])
    row = mvn.correlation_identity(x)
    r = np.corrcoef(x, rowvar=False)
    stat = -(150 - 1 - (2 * 4 + 5) / 6) * math.log(np.linalg.det(r))
    assert row["statistic"] == pytest.approx(stat)
    assert row["pvalue"] == pytest.approx(stats.chi2.sf(stat, 6))
    rad = mvn.radius(x)
    assert rad["pvalue"] == pytest.approx(stats.kstest((x**2).sum(1), stats.chi2(4).cdf).pvalue)


def test_holm() -> None:
    assert mvn.holm([0.01, 0.04, 0.3]) == [True, False, False]
    assert mvn.holm([0.01, 0.02, math.nan]) == [True, True, False]
    assert mvn.holm([0.2, 0.5]) == [False, False]


def test_gaussian_latent_passes() -> None:
    rep = fit_latents(gaussian_encoder(), inputs(400, 3), samples=4, seed=0)
    summary = rep.summary()
    info, sentence = summary.info, summary.text
    assert info["consistent_with_prior"] and summary.consistent_with_prior, sentence
    assert str(summary) == sentence == info["sentence"]
    assert sentence.startswith("The aggregate posterior of encode is consistent with N(0, I)")
    assert info["n_active"] == 3 and info["mixture_k"] == 1
    table = rep.table()
    # Law of total variance: 0.8^2 Var(x) + 0.36 = 1 up to the sample variance of x.
    assert np.allclose(table["var"], 1.0, atol=0.2)
    assert (table["kl"].abs() < 0.05).all() and (table["kl_gauss"] < 0.02).all()
    assert set(table["best_z"]) <= set(rep.families)  # every active dimension fitted


def test_three_cluster_latent_is_a_mixture_with_k_3() -> None:
    centers = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    labels = np.arange(300) % 3
    data = centers[labels]

    def encode(x: torch.Tensor):
        return x, torch.full_like(x, math.log(0.25))

    rep = fit_latents(encode, data, samples=2, seed=1)
    summary = rep.summary()
    info, sentence = summary.info, summary.text
    assert info["mixture_k"] == 3, rep.multivariate["mixture"]
    assert not info["consistent_with_prior"]
    assert "K = 3" in sentence


def test_circle_latent_fails_sphere_uniformity_the_right_way() -> None:
    # Points on a circle of radius 2 in a tilted plane of a 3-d latent (every dimension
    # active): no preferred direction (Rayleigh passes) but every direction lies near one
    # plane (Bingham rejects), and the radius is not chi2(3).
    theta = np.random.default_rng(4).uniform(0, 2 * np.pi, 300)
    plane = np.array([[1.0, 1.0, 0.0], [-1.0, 1.0, 2.0]])
    plane /= np.linalg.norm(plane, axis=1, keepdims=True)
    data = 2 * np.stack([np.cos(theta), np.sin(theta)], axis=1) @ plane

    def encode(x: torch.Tensor):
        return x, torch.full_like(x, math.log(0.01))

    rep = fit_latents(encode, data, samples=1, seed=0)
    tests = {r["test"]: r for r in rep.multivariate["tests"]}
    assert tests["sphere_rayleigh"]["pvalue"] > 0.01
    assert tests["sphere_bingham"]["pvalue"] < 1e-6
    assert tests["sphere_bingham"]["scatter_eigenvalues"][-1] < 0.05  # the empty direction
    assert tests["radius_chi2"]["pvalue"] < 1e-6
    assert "no preferred direction (Rayleigh p = " in rep.summary().text
    assert "axial structure (Bingham p < 1e-4)" in rep.summary().text


def test_a_preferred_direction_fails_rayleigh() -> None:
    data = inputs(300, 3, seed=5) * 0.5 + np.array([1.5, 0.0, 0.0])

    def encode(x: torch.Tensor):
        return x, torch.full_like(x, math.log(0.01))

    tests = {r["test"]: r for r in fit_latents(encode, data, samples=1).multivariate["tests"]}
    assert tests["sphere_rayleigh"]["pvalue"] < 1e-6


def test_collapsed_dimension_reported_inactive_and_not_fitted() -> None:
    def encode(x: torch.Tensor):
        mu = 0.8 * x.clone()
        mu[:, 2] = 0.0  # ignores its input: q(z_2|x) = N(0, 1) for every x
        logvar = torch.full_like(x, math.log(0.36))
        logvar[:, 2] = 0.0
        return mu, logvar

    rep = fit_latents(encode, inputs(300, 4), samples=2)
    table = rep.table().set_index("dim")
    assert not table.loc[2, "active"] and table.loc[2, "var_mu"] == 0.0
    assert table.loc[2, "fit_z"] == "collapsed: not fitted" and table.loc[2, "best_z"] == ""
    assert 2 not in rep.fits and set(rep.fits) == {0, 1, 3}
    assert rep.multivariate["shape_dims"] == [0, 1, 3]
    assert rep.summary().info["n_active"] == 3


def test_kl_estimate_matches_the_closed_form_for_one_gaussian() -> None:
    # Every input has the same posterior N(0.5, 0.6^2): the aggregate posterior is that normal.
    mu, std = np.full((500, 1), 0.5), np.full((500, 1), 0.6)
    post = gaussian_posterior(mu, std, samples=8, seed=0)
    from weightstats.latent.dims import kl_to_prior

    exact = 0.5 * (0.36 + 0.25 - 1 - math.log(0.36))
    assert kl_to_prior(post, 0, np.random.default_rng(0)) == pytest.approx(exact, abs=0.02)


def test_torch_distributions_are_accepted() -> None:
    x = torch.from_numpy(inputs(300, 2)).float()
    normal = torch.distributions.Independent(torch.distributions.Normal(0.8 * x, 0.6), 1)
    rep = fit_latents(normal, samples=2)
    assert rep.summary().info["n_active"] == 2
    laplace = torch.distributions.Laplace(0.8 * x, torch.full_like(x, 0.3))
    rep = fit_latents(laplace, samples=2)
    assert rep.table()["kl"].notna().all() and rep.n_rows == 300
    with pytest.raises(OptionError, match="pass no data"):
        fit_latents(laplace, x)


def test_same_seed_same_numbers_other_seed_other_draws() -> None:
    a = fit_latents(gaussian_encoder(), inputs(200, 2), samples=3, seed=7).to_dict()
    b = fit_latents(gaussian_encoder(), inputs(200, 2), samples=3, seed=7).to_dict()
    c = fit_latents(gaussian_encoder(), inputs(200, 2), samples=3, seed=8).to_dict()
    assert a == b
    assert a["dimensions"] != c["dimensions"]


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(SpecError, match="has no encoder"):
        fit_latents(torch.nn.Linear(3, 2), inputs(50, 3))
    with pytest.raises(OptionError, match="needs data"):
        fit_latents(gaussian_encoder())
    with pytest.raises(OptionError, match="needs data"):
        fit_latents("hf:org/some-vae")
    with pytest.raises(OptionError, match="encoder returned"):
        fit_latents(lambda x: x, inputs(50, 3))
    with pytest.raises(OptionError, match="samples must be at least 1"):
        fit_latents(gaussian_encoder(), inputs(50, 3), samples=0)
    with pytest.raises(OptionError, match="non-finite"):
        fit_latents(lambda x: (x * np.nan, x), inputs(50, 3))


def test_mardia_and_henze_zirkler_match_published_values_on_iris_setosa() -> None:
    # Reference values of R's MVN package (Korkmaz, Goksuluk & Zararsiz 2014) for iris setosa
    # (50 x 4), as other implementations test against them: Henze-Zirkler HZ = 0.9488453,
    # p = 0.04995356; Mardia's skewness with the small-sample factor 27.85973, p = 0.1127617.
    from sklearn.datasets import load_iris

    x = load_iris().data[:50]
    hz = mvn.henze_zirkler(x)
    assert hz["statistic"] == pytest.approx(0.9488453, abs=1e-7)
    assert hz["pvalue"] == pytest.approx(0.04995356, abs=1e-8)
    skew = mvn.mardia(x)[0]
    assert skew["statistic"] == pytest.approx(27.85973, abs=1e-5)
    assert skew["pvalue"] == pytest.approx(0.1127617, abs=1e-7)
