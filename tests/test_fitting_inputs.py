"""Inputs of every kind: dtypes, torch tensors, non-finite values, degenerate tensors, options."""

from __future__ import annotations

import numpy as np
import pytest

from weightstats.errors import OptionError
from weightstats.fitting import FRAME_COLUMNS, MIN_N, fit_tensor
from weightstats.fitting.families import DEFAULT_FAMILIES

REQUIRED = ["family", "n", "loc", "scale", "shape", "loglik", "loglik_per_weight", "aic", "bic",
            "ks_stat", "ks_pvalue", "ks_pvalue_naive", "rank_aic"]


def test_frame_columns_and_descriptives():
    x = np.random.default_rng(0).standard_t(5, size=(32, 16, 3, 3)).astype(np.float32)
    fit = fit_tensor(x)
    frame = fit.to_frame()
    assert list(frame.columns) == FRAME_COLUMNS
    assert set(REQUIRED) <= set(frame.columns)
    assert list(frame.family) == list(DEFAULT_FAMILIES)
    assert sorted(frame.rank_aic) == list(range(1, len(DEFAULT_FAMILIES) + 1))
    assert np.isnan(frame.set_index("family").loc["normal", "shape"])
    d = fit.descriptives
    flat = x.astype(np.float64).ravel()
    assert d["mean"] == pytest.approx(flat.mean())
    assert d["std"] == pytest.approx(flat.std())
    assert d["min"] == flat.min() and d["max"] == flat.max()
    from scipy import stats
    assert d["skewness"] == pytest.approx(stats.skew(flat), rel=1e-9)
    assert d["excess_kurtosis"] == pytest.approx(stats.kurtosis(flat), rel=1e-9)
    counts, edges = fit.histogram
    assert counts.sum() == flat.size and edges.size == counts.size + 1
    assert np.array_equal(counts, np.histogram(flat, bins=edges)[0])


def test_deterministic_for_same_seed_and_sensitive_to_seed():
    x = np.random.default_rng(1).laplace(size=30_000)
    a, b = fit_tensor(x, seed=3).to_frame(), fit_tensor(x, seed=3).to_frame()
    assert a.equals(b)
    c = fit_tensor(x, seed=4).to_frame()
    assert not np.allclose(a.ks_stat_sub, c.ks_stat_sub)  # the subsample depends on the seed
    assert np.allclose(a.loglik, c.loglik)  # the fits on all values do not


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "bfloat16"])
def test_dtypes_and_torch_tensors(dtype):
    torch = pytest.importorskip("torch")
    base = torch.randn(64, 64, generator=torch.Generator().manual_seed(0)) * 0.05
    t = base.to(getattr(torch, dtype))
    fit = fit_tensor(t)
    assert fit.ok and fit.n == 4096
    assert fit.dtype == dtype
    expected_mean = t.double().mean().item()
    assert fit.descriptives["mean"] == pytest.approx(expected_mean, rel=1e-12, abs=1e-15)


def test_nonfinite_values_are_excluded_and_counted():
    x = np.random.default_rng(2).normal(size=5000)
    x[:7] = np.nan
    x[7:9] = np.inf
    x[9] = -np.inf
    fit = fit_tensor(x)
    assert fit.ok and fit.n == 4990
    assert fit.counts == {"n_nan": 7, "n_posinf": 2, "n_neginf": 1}
    assert fit.n_nonfinite == 10
    clean = fit_tensor(x[10:]).to_frame()
    assert np.allclose(fit.to_frame().loglik, clean.loglik)


@pytest.mark.parametrize(("values", "status"), [
    (np.zeros(1000), "constant"),
    (np.full(50, 0.3), "constant"),
    (np.array([]), "empty"),
    (np.array([np.nan, np.inf]), "empty"),
    (np.arange(MIN_N - 1, dtype=float), "too_small"),
    (np.array(1.5), "too_small"),
])
def test_degenerate_tensors_get_a_status(values, status):
    fit = fit_tensor(values)
    assert fit.status == status
    assert fit.message
    assert fit.to_frame().empty
    assert fit.to_dict()["status"] == status


def test_complex_tensor_is_refused_with_status():
    fit = fit_tensor(np.ones(100, dtype=complex))
    assert fit.status == "unsupported_dtype"


def test_integer_tensor_is_fitted_as_float():
    # Mostly distinct integers are fitted; a few repeated levels are a grid (tests/test_stats_atoms).
    fit = fit_tensor(np.random.default_rng(0).integers(-10**9, 10**9, 2000))
    assert fit.ok
    assert fit_tensor(np.random.default_rng(0).integers(-50, 50, 2000)).status == "quantized"


def test_per_channel_removes_scale_mixture_tails():
    rng = np.random.default_rng(4)
    scales = np.geomspace(0.01, 1.0, 64)[:, None]
    w = rng.normal(size=(64, 2000)) * scales  # Gaussian channels, different scales
    pooled = fit_tensor(w)
    per_channel = fit_tensor(w, per_channel=True)
    assert pooled.verdict["best_bic"] != "normal"  # pooling alone makes heavy tails
    assert per_channel.verdict["best_bic"] == "normal"
    assert per_channel.options["per_channel"]


@pytest.mark.parametrize("kwargs", [
    {"families": ("normal", "cauchy")}, {"families": ()}, {"ks_sample": -5},
    {"ks_replicates": 0}, {"families": ("normal", "gausian")},
])
def test_bad_options_raise_one_line_option_error(kwargs):
    with pytest.raises(OptionError) as err:
        fit_tensor(np.arange(100.0), **kwargs)
    assert "\n" not in str(err.value)


def test_to_dict_is_json_safe():
    import json

    fit = fit_tensor(np.random.default_rng(0).normal(size=3000))
    text = json.dumps(fit.to_dict(), allow_nan=False)
    assert '"verdict"' in text
