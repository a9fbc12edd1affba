"""The counted path (fitting.counted): a <= 16-bit tensor fitted from its (value, count) pairs.

The oracle is the values path on the very same tensor (``path="values"``): both must give the same
fits, log-likelihoods, KS distances, comparisons, descriptives, atoms and histogram. Only the KS
subsample is drawn differently (by position there, from the multiset here), so the subsample's
statistics and p-values are compared for validity, not for equality.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import torch

from weightstats import fit_tensor
from weightstats.errors import OptionError
from weightstats.fitting.counted import counted_values, raw_bits, weighted_subsample

# Exactness the issue asks for: same multiset, same maximum-likelihood fit.
LOGLIK_RTOL = 1e-9
PARAM_RTOL = 1e-7
D_ATOL = 1e-12


def _draw(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "t6":
        return 0.02 * rng.standard_t(6, n)
    if kind == "skew_right":  # a skewed bulk: gamma minus its mode
        return 0.01 * (rng.gamma(2.0, 1.0, n) - 1.0)
    if kind == "skew_left":
        return -0.01 * (rng.gamma(2.0, 1.0, n) - 1.0)
    if kind == "zeros30":  # 30% exact zeros: an atom the fits must set aside
        x = 0.05 * rng.standard_normal(n)
        x[rng.random(n) < 0.3] = 0.0
        return x
    if kind == "pruned70":  # magnitude pruning: zeros plus a hole, truncated fits of the rest
        x = 0.05 * rng.standard_normal(n)
        x[np.abs(x) < np.quantile(np.abs(x), 0.7)] = 0.0
        return x
    if kind == "levels":  # a few quantization levels: declined as quantized
        return 0.01 * rng.integers(-8, 9, n).astype(np.float64)
    if kind == "nonfinite":  # NaN and ±inf bit patterns: counted, excluded, reported
        x = 0.05 * rng.laplace(size=n)
        x[:7] = np.nan
        x[7:10] = np.inf
        x[10:12] = -np.inf
        return x
    raise ValueError(kind)


def _as(x: np.ndarray, dtype: str, shape: tuple[int, int]) -> np.ndarray:
    stored = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16
    return x.astype(stored).reshape(shape)


def _close(a: float, b: float, rtol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-300)


def assert_same_fit(counted, values) -> None:
    """Every number the two paths must share, field by field."""
    assert counted.path == "counted" and values.path == "values"
    assert (counted.status, counted.n, counted.counts) == (values.status, values.n, values.counts)
    assert counted.notes == values.notes
    assert counted.atoms == values.atoms
    if not counted.ok:
        return
    for rc, rv in zip(counted.rows, values.rows, strict=True):
        fam = rc["family"]
        assert _close(rc["loglik"], rv["loglik"], LOGLIK_RTOL), (fam, rc["loglik"], rv["loglik"])
        for key, vc in rc["params"].items():
            assert _close(vc, rv["params"][key], PARAM_RTOL), (fam, key, vc, rv["params"][key])
        assert abs(rc["ks_stat"] - rv["ks_stat"]) <= D_ATOL, (fam, rc["ks_stat"], rv["ks_stat"])
        assert rc["n"] == rv["n"] and rc["n_params"] == rv["n_params"]
        assert rc["rank_bic"] == rv["rank_bic"]
    for cc, cv in zip(counted.comparison_rows, values.comparison_rows, strict=True):
        assert (cc["a"], cc["b"], cc["test"]) == (cv["a"], cv["b"], cv["test"])
        assert _close(cc["statistic"], cv["statistic"], 1e-6), (cc, cv)
    for key, vc in counted.descriptives.items():
        assert _close(vc, values.descriptives[key], 1e-9), (key, vc, values.descriptives[key])
    np.testing.assert_array_equal(counted.histogram[0], values.histogram[0])
    np.testing.assert_allclose(counted.histogram[1], values.histogram[1], rtol=1e-12)
    assert counted.heterogeneity == values.heterogeneity


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("kind", ["t6", "skew_right", "skew_left", "zeros30", "pruned70",
                                  "levels", "nonfinite"])
def test_counted_equals_values_path(dtype, kind):
    x = _as(_draw(kind, 60_000, seed=len(kind)), dtype, (200, 300))
    counted = fit_tensor(x, path="counted")
    assert_same_fit(counted, fit_tensor(x, path="values"))
    if kind == "nonfinite":
        assert counted.counts == {"n_nan": 7, "n_posinf": 3, "n_neginf": 2}
    if kind == "zeros30":
        assert counted.atoms["zero_count"] > 0.25 * counted.n
    expected_status = {"pruned70": "ok", "levels": "quantized"}.get(kind, "ok")
    assert counted.status == expected_status, counted.message
    if kind == "pruned70":
        assert counted.atoms["pruned_c"] is not None


def test_ten_million_bf16_values_torch():
    """The issue's size: 10 M bf16 weights from a torch tensor, both paths equal."""
    torch.manual_seed(3)
    t = (0.02 * torch.distributions.StudentT(6.0).sample((2500, 4000))).to(torch.bfloat16)
    counted = fit_tensor(t)
    assert counted.path == "counted" and counted.n == 10_000_000
    assert_same_fit(counted, fit_tensor(t, path="values"))


def test_auto_picks_the_path_by_dtype():
    x = _draw("t6", 5000, 1)
    assert fit_tensor(x.astype(np.float16)).path == "counted"
    assert fit_tensor(torch.from_numpy(x).to(torch.bfloat16)).path == "counted"
    assert fit_tensor(x.astype(np.float32)).path == "values"
    # The per-channel view transforms the values, so it runs on values and says so.
    assert fit_tensor(x.astype(np.float16).reshape(50, 100), per_channel=True).path == "values"


def test_counted_path_refused_where_it_cannot_apply():
    with pytest.raises(OptionError, match="at most 16 bits"):
        fit_tensor(np.zeros(100, np.float32), path="counted")
    with pytest.raises(OptionError, match="path must be one of"):
        fit_tensor(np.zeros(100, np.float16), path="fast")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "int8",
                                   "uint8", "int16"])
def test_counts_are_the_multiset(dtype):
    """Every counted dtype, from torch and from NumPy: values and counts are those of the tensor
    read as float64 (np.unique), with -0.0 merged into 0.0."""
    rng = np.random.default_rng(0)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        arr = rng.integers(max(info.min, -300), min(info.max, 300), 20_000).astype(dtype)
    else:
        stored = np.float16 if dtype == "float16" else getattr(ml_dtypes, dtype)
        arr = (rng.standard_normal(20_000) * 2.0).astype(stored)
        arr[:5] = stored(-0.0)
    expected_values, expected_counts = np.unique(arr.astype(np.float64), return_counts=True)
    for x in (arr, torch.from_numpy(arr.view(f"u{arr.itemsize}")).view(getattr(torch, dtype))
              if dtype not in ("uint8",) else torch.from_numpy(arr)):
        bits, name = raw_bits(x)
        assert name == dtype and bits.dtype.kind == "u"
        got = counted_values(bits, name)
        np.testing.assert_array_equal(got.values, expected_values)
        np.testing.assert_array_equal(got.counts, expected_counts)
        assert not np.signbit(got.values).any() or got.values[0] < 0


def test_no_copy_of_the_tensor():
    t = torch.randn(300, 400).to(torch.bfloat16)
    bits, _ = raw_bits(t)
    assert np.shares_memory(bits, t.view(torch.int16).numpy())
    a = np.ones(1000, dtype=np.float16)
    assert np.shares_memory(raw_bits(a)[0], a)


def test_subsample_is_drawn_from_the_multiset():
    values = np.array([-1.0, 0.5, 2.0, 3.0])
    counts = np.array([1000, 10, 5000, 3], dtype=np.int64)
    a = weighted_subsample(values, counts, 600, seed=7)
    assert a.size == 600 and np.all(np.diff(a) >= 0)
    got = {v: int((a == v).sum()) for v in values}
    assert all(got[v] <= c for v, c in zip(values, counts, strict=True))
    np.testing.assert_array_equal(a, weighted_subsample(values, counts, 600, seed=7))
    assert not np.array_equal(a, weighted_subsample(values, counts, 600, seed=8))
    # Expected share of each value is its share of the multiset (here 600 / 6013 of each count).
    assert abs(got[2.0] - 600 * 5000 / 6013) < 5 * math.sqrt(600 * 0.17)


def test_counted_pvalues_are_valid_under_the_null():
    """Gaussian bf16 tensors: the counted path's KS p-value for the Gaussian fit is uniform-ish
    (not all tiny, not all one), since its subsample is a simple random sample."""
    rng = np.random.default_rng(11)
    pvalues = [fit_tensor(rng.standard_normal(20_000).astype(ml_dtypes.bfloat16), "normal",
                          seed=s, ks_sample=1000).rows[0]["ks_pvalue"] for s in range(40)]
    assert float(np.mean(np.array(pvalues) < 0.05)) <= 0.2
    assert 0.3 < float(np.mean(pvalues)) < 0.7


def test_float16_values_path_sorts_correctly():
    """NumPy 2.4's SIMD float16 sort leaves ties out of order on many repeats; the values path
    (and the per-channel view) must still see every level once, as the counted path does."""
    x = (0.01 * np.random.default_rng(0).integers(-8, 9, 60_000)).astype(np.float16)
    for fit in (fit_tensor(x, path="values"), fit_tensor(x.reshape(200, 300), per_channel=True)):
        assert fit.status == "quantized"
        assert "17 levels" in fit.message, fit.message


@pytest.mark.parametrize("family", ["normal", "laplace", "t", "gennorm"])
def test_subsample_statistics_read_each_tied_value_once(family):
    # A bf16 subsample repeats values; sample_statistics evaluates the CDF once per distinct value
    # and must give exactly the D and A^2 of the value-by-value computation the null tables use.
    from weightstats.fitting.families import get_family
    from weightstats.fitting.ks import gof_statistics_rows
    from weightstats.fitting.nulltables import sample_statistics, standardized_tails

    fam = get_family(family)
    theta = fam.theta(fam.fit(np.sort(np.random.default_rng(1).standard_t(6, 4000))))
    sub = np.sort(_as(np.random.default_rng(2).standard_t(6, 5000), "bfloat16", (5000,))
                  .astype(np.float64))
    assert np.unique(sub).size < 0.5 * sub.size
    u, tail = standardized_tails(fam, sub[np.newaxis, :], *theta)
    d, a2 = gof_statistics_rows(u, tail)
    assert sample_statistics(fam, sub, *theta) == (float(d[0]), float(a2[0]))
