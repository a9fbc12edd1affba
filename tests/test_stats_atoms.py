"""Atoms: exact zeros, magnitude pruning and quantization grids (issue 10, item 4).

A value that repeats far more often than a continuous law allows makes every family's likelihood
unbounded (generalized normal ran to beta 0.1, scale 3e-14). These tests pin the point-mass model,
the pruning and quantization verdicts, and that continuous data never grow atoms.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import optimize, stats

import weightstats
from weightstats.fitting.atoms import find_atoms
from weightstats.fitting.floatgrid import cell_width, storage_precision

REPLICATES = 200  # enough for the p-value columns these tests do not read


def _zero_inflated(seed: int, share: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((512, 512)).astype(np.float32)
    x[rng.random(x.shape) < share] = 0.0
    return x


def _magnitude_pruned(seed: int, share: float = 0.7) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((512, 512)).astype(np.float32)
    x[np.abs(x) < np.quantile(np.abs(x), share)] = 0.0
    return x


def test_zeros_are_a_point_mass_and_the_gaussian_wins():
    x = _zero_inflated(10)
    fit = weightstats.fit_tensor(x, ks_replicates=REPLICATES)
    frame = fit.to_frame().set_index("family")
    zero_share = float(np.mean(x == 0))
    assert fit.verdict["best_bic"] == "normal"
    assert fit.descriptives["atom_mass"] == pytest.approx(0.30, abs=0.005)
    assert fit.descriptives["zero_fraction"] == zero_share
    assert fit.atoms["atoms"] == [{"value": 0.0, "count": int(np.sum(x == 0))}]
    assert frame.loc["normal", "scale"] == pytest.approx(1.0, abs=0.01)
    assert frame.loc["gennorm", "shape"] == pytest.approx(2.0, abs=0.05)
    assert frame.loc["gennorm", "scale"] > 1.0  # sane, not a spike on the zeros
    assert not frame["flags"].str.contains("at_bound").any()
    assert frame["flags"].str.contains(f"{zero_share:.1%} exact zeros modelled as a point mass", regex=False).all()
    # The mixed likelihood (Lebesgue + counting measure), checked against scipy on the nonzeros.
    rest = x[x != 0].astype(np.float64)
    n, n0 = x.size, x.size - rest.size
    mu, sd = stats.norm.fit(rest)
    expected = (stats.norm.logpdf(rest, mu, sd).sum() + n0 * np.log(n0 / n)
                + rest.size * np.log(rest.size / n))
    assert frame.loc["normal", "loglik"] == pytest.approx(expected, rel=1e-9)
    assert frame.loc["normal", "n"] == n and frame.loc["normal", "n_params"] == 3
    assert frame.loc["normal", "bic"] == pytest.approx(3 * np.log(n) - 2 * expected, rel=1e-9)


def test_atom_term_leaves_family_comparisons_unchanged():
    x = _zero_inflated(11)
    with_atoms = weightstats.fit_tensor(x, ks_replicates=REPLICATES).to_frame().set_index("family")
    alone = weightstats.fit_tensor(x[x != 0], ks_replicates=REPLICATES).to_frame().set_index("family")
    diff = with_atoms["loglik"] - alone["loglik"]
    assert np.ptp(diff.to_numpy()) < 1e-6 * abs(diff.iloc[0])  # the same constant for each family
    assert list(with_atoms["rank_bic"]) == list(alone["rank_bic"])
    assert with_atoms.loc["normal", "shape_ci_low"] != with_atoms.loc["normal", "shape_ci_low"]


def test_magnitude_pruning_is_described_and_fitted_truncated():
    x = _magnitude_pruned(12)
    fit = weightstats.fit_tensor(x, ks_replicates=REPLICATES)
    frame = fit.to_frame().set_index("family")
    c = float(np.abs(x[x != 0]).min())
    assert fit.status == "ok" and fit.atoms["pruned_c"] == pytest.approx(c)
    assert frame["flags"].str.startswith(f"pruned: |w| < {c:.4g} removed (70% zeros)").all()
    assert fit.verdict["best_bic"] == "normal"  # not "t df 0.41"
    assert frame.loc["t", "shape"] > 30 and frame.loc["gennorm", "shape"] == pytest.approx(2, abs=0.05)
    assert frame.loc["normal", "scale"] == pytest.approx(1.0, abs=0.01)
    assert np.isnan(frame["ks_pvalue"]).all()  # no null table for truncated fits: none claimed
    assert fit.descriptives["zero_fraction"] == pytest.approx(0.7, abs=1e-3)


def test_truncated_gaussian_likelihood_matches_scipy():
    x = _magnitude_pruned(13, 0.5)[:128]
    fit = weightstats.fit_tensor(x, families=("normal",), ks_replicates=REPLICATES)
    row = fit.to_frame().iloc[0]
    rest = x[x != 0].astype(np.float64)
    c, n, n0 = float(np.abs(rest).min()), x.size, int(np.sum(x == 0))

    def loglik(p):
        loc, scale = p[0], np.exp(p[1])
        kept = 1 - (stats.norm.cdf(c, loc, scale) - stats.norm.cdf(-c, loc, scale))
        return stats.norm.logpdf(rest, loc, scale).sum() - rest.size * np.log(kept)

    best = max((optimize.minimize(lambda p: -loglik(p), s, method="Nelder-Mead",
                                  options={"xatol": 1e-10, "fatol": 1e-10}) for s in
                ([0.0, 0.0], [0.1, np.log(0.5)])), key=lambda r: -r.fun)
    atom_term = n0 * np.log(n0 / n) + rest.size * np.log(rest.size / n)
    assert row["loglik"] >= -best.fun + atom_term - 1e-6
    assert row["loglik"] == pytest.approx(loglik([row["loc"], np.log(row["scale"])]) + atom_term,
                                          rel=1e-10)
    assert row["scale"] == pytest.approx(np.exp(best.x[1]), rel=1e-4)


def test_pruned_heavy_tails_stay_heavy():
    rng = np.random.default_rng(24)
    x = rng.standard_t(4, (512, 512)).astype(np.float32)
    x[np.abs(x) < np.quantile(np.abs(x), 0.7)] = 0.0
    fit = weightstats.fit_tensor(x, ks_replicates=REPLICATES)
    assert fit.verdict["best_bic"] == "t"
    assert fit.params("t")["df"] == pytest.approx(4.0, rel=0.1)


def test_light_pruning_is_pruning_too():
    fit = weightstats.fit_tensor(_magnitude_pruned(13, 0.05), ks_replicates=REPLICATES)
    assert fit.atoms["pruned_c"] > 0 and "(5% zeros)" in fit.to_frame()["flags"][0]
    assert fit.verdict["best_bic"] == "normal"


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8])
def test_values_on_a_grid_are_quantized(dtype):
    rng = np.random.default_rng(14)
    levels = np.clip(np.round(rng.standard_normal((256, 256)) * 30), -127, 127)
    step = 1.0 if dtype == np.int8 else 0.0123
    x = (levels * step).astype(dtype)
    fit = weightstats.fit_tensor(x, ks_replicates=REPLICATES)
    assert fit.status == "quantized"
    assert fit.message.startswith(f"quantized: {np.unique(levels).size} levels, step {step:.4g}")
    assert fit.to_frame().empty


def test_a_codebook_that_is_not_a_grid_is_quantized():
    codebook = np.array([-1.0, -0.53, -0.2, 0.0, 0.07, 0.33, 0.71, 1.0], np.float32)
    x = np.random.default_rng(15).choice(codebook, (128, 128))
    fit = weightstats.fit_tensor(x, ks_replicates=REPLICATES)
    assert fit.status == "quantized" and "8 levels, not evenly spaced" in fit.message


def test_a_repeated_clip_value_is_an_atom_anywhere():
    x = np.random.default_rng(16).standard_normal(20_000)
    x = np.minimum(x, 1.5)  # clipping: 6.7% of the values on 1.5
    atoms = find_atoms(np.sort(x))
    assert atoms.values.tolist() == [1.5] and atoms.pruned_c is None
    fit = weightstats.fit_tensor(x, ks_replicates=REPLICATES)
    assert fit.status == "ok" and fit.descriptives["atom_mass"] == pytest.approx(np.mean(x == 1.5))


def _continuous_float32(kind: str) -> np.ndarray:
    rng = np.random.default_rng(17)
    if kind == "normal64":
        return rng.standard_normal(2_000_000).astype(np.float32)
    if kind == "normal32":  # NumPy's float32 ziggurat: coarser than float32 near zero
        return rng.standard_normal(2_000_000, dtype=np.float32)
    if kind == "t3":
        return (0.02 * rng.standard_t(3, 2_000_000)).astype(np.float32)
    return rng.uniform(-0.05, 0.05, 2_000_000).astype(np.float32)


@pytest.mark.parametrize("kind", ["normal64", "normal32", "t3", "uniform"])
def test_continuous_float32_has_no_atoms(kind):
    xs = np.sort(_continuous_float32(kind))
    assert np.any(xs[1:] == xs[:-1])  # chance repeats from float rounding are there
    assert not find_atoms(xs, "float32")


@pytest.mark.parametrize("dtype", [np.float16, "bfloat16"])
def test_half_precision_rounding_is_not_atoms(dtype):
    x = 0.02 * np.random.default_rng(18).standard_normal(1_000_000)
    if dtype == "bfloat16":  # round to bfloat16 by keeping the top 16 bits of float32
        x = ((x.astype(np.float32).view(np.uint32) + 0x8000) & 0xFFFF0000).view(np.float32)
    else:
        x = x.astype(dtype).astype(np.float32)  # a float16 checkpoint read as float32
    xs = np.sort(x)
    assert storage_precision(xs) == ("bfloat16" if dtype == "bfloat16" else "float16")
    assert not find_atoms(xs, "float32")


def test_continuous_fit_reports_no_atoms():
    fit = weightstats.fit_tensor(_continuous_float32("normal64")[:300_000],
                                 ks_replicates=REPLICATES)
    assert fit.atoms == {} and fit.descriptives["atom_mass"] == 0.0
    assert not fit.to_frame()["flags"].str.contains("point mass").any()


def test_cell_width_matches_nextafter():
    v = np.array([0.0, 1e-40, 0.3, 1.0, 1.5, 2.0, -4.0, 1e30], np.float32)
    up = np.nextafter(v, np.float32(np.inf)).astype(np.float64) - v
    down = v - np.nextafter(v, np.float32(-np.inf)).astype(np.float64)
    assert np.array_equal(cell_width(v, "float32"), (up + down) / 2)


def test_per_channel_view_leaves_atoms_out_and_declines_pruning():
    x = _zero_inflated(19).reshape(512, 8, 8, 8)[:64]
    fit = weightstats.fit_tensor(x, per_channel=True, ks_replicates=REPLICATES)
    assert fit.verdict["best_bic"] == "normal"
    assert fit.to_frame()["flags"].str.contains("left out before the per-channel").all()
    assert fit.atoms["description"].endswith("exact zeros left out before the per-channel transform")
    pruned = weightstats.fit_tensor(_magnitude_pruned(20).reshape(512, 8, 8, 8), per_channel=True)
    assert pruned.status == "pruned" and pruned.descriptives["std"] > 0
    grid = np.round(np.random.default_rng(21).standard_normal((64, 27)) * 20) * 0.01
    quantized = weightstats.fit_tensor(grid, per_channel=True)
    assert quantized.status == "quantized" and quantized.message.startswith("quantized: ")


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
def test_float8_rounding_is_not_atoms_but_zeros_are(dtype):
    torch = pytest.importorskip("torch")
    w = torch.randn(512, 512, generator=torch.Generator().manual_seed(22))
    fit = weightstats.fit_tensor(w.to(getattr(torch, dtype)), ks_replicates=REPLICATES)
    assert fit.status == "ok" and fit.atoms == {}
    w[torch.rand(512, 512, generator=torch.Generator().manual_seed(23)) < 0.3] = 0.0
    fit = weightstats.fit_tensor(w.to(getattr(torch, dtype)), ks_replicates=REPLICATES)
    assert [a["value"] for a in fit.atoms["atoms"]] == [0.0]
    assert fit.descriptives["atom_mass"] == pytest.approx(0.3, abs=0.005)


def test_per_channel_on_a_vector_still_models_zeros():
    x = _zero_inflated(25).ravel()[:20_000]
    fit = weightstats.fit_tensor(x, per_channel=True, ks_replicates=REPLICATES)
    assert "per-channel ignored: the tensor has a single axis" in fit.notes
    assert fit.verdict["best_bic"] == "normal" and fit.atoms["atoms"][0]["value"] == 0.0


def test_model_summary_names_atoms_pruning_and_quantization():
    torch = pytest.importorskip("torch")
    grid = (np.round(np.random.default_rng(26).standard_normal((256, 256)) * 30) * 0.01)
    state = {"zeros.weight": torch.tensor(_zero_inflated(26)[:256]),
             "pruned.weight": torch.tensor(_magnitude_pruned(27)[:256]),
             "grid.weight": torch.tensor(grid.astype(np.float32))}
    report = weightstats.fit_model(state, ks_replicates=REPLICATES)
    info, answer = report.summary().info, report.summary().text
    lines = "\n".join(info["atoms"])
    assert re.search(r"zeros.weight: 30\.\d% exact zeros modelled as a point mass", lines)
    assert "pruned.weight: pruned: |w| < " in lines and "(70% zeros)" in lines
    assert "grid.weight: quantized: " in lines and "step 0.01" in lines
    assert "not fitted: quantized 1" in answer
    assert set(report.table()["atom_mass"].dropna().round(1)) == {0.3, 0.7, 1.0}


def test_pruned_weights_stored_sparse_are_pruned_too():
    x = _magnitude_pruned(28)
    survivors = x[x != 0]  # a sparse checkpoint stores only these
    fit = weightstats.fit_tensor(survivors, ks_replicates=REPLICATES)
    assert fit.atoms["pruned_c"] == pytest.approx(float(np.abs(survivors).min()))
    assert "removed (zeros not stored)" in fit.to_frame()["flags"][0]
    assert fit.verdict["best_bic"] == "normal"
    rng = np.random.default_rng(29)  # two separate modes, not symmetric about zero: no pruning
    two_modes = np.r_[rng.normal(-3, 0.3, 50_000), rng.normal(4, 0.3, 50_000)]
    assert find_atoms(np.sort(two_modes)).pruned_c is None


def test_families_without_a_truncated_fit_are_reported_not_fitted_on_pruned_tensors():
    from weightstats.fitting.families import FAMILIES

    skipped = [name for name, fam in FAMILIES.items() if not fam.truncated_fit]
    assert skipped  # the mixtures declare it; without one this test checks nothing
    x = np.random.default_rng(5).normal(size=20_000)
    x[np.abs(x) < np.quantile(np.abs(x), 0.5)] = 0.0
    fit = weightstats.fit_tensor(x, families=("normal", *skipped), ks_replicates=REPLICATES)
    frame = fit.to_frame().set_index("family")
    assert fit.verdict["best_bic"] == "normal"
    for name in skipped:
        assert frame.loc[name, "flags"].startswith("not_fitted:")
        assert np.isnan(frame.loc[name, "loglik"])


@pytest.mark.parametrize("seed", range(4))
def test_runs_cut_by_chunk_edges_read_as_whole_runs(seed, monkeypatch):
    # find_atoms scans in chunks and takes each run's first and last index from the scan; runs
    # that straddle a chunk edge must read exactly as with one chunk (counts, atoms, pruning).
    from weightstats.fitting import atoms as atoms_module

    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_t(4, 30_000) * 40) / 40  # long runs of every grid level
    x[rng.random(x.size) < 0.2] = 0.0
    x = np.sort(np.concatenate([x, rng.standard_normal(5_000)]).astype(np.float32))
    whole = find_atoms(x, "float32")
    monkeypatch.setattr(atoms_module, "_CHUNK", 997)  # a prime: edges fall inside runs
    chunked = find_atoms(x, "float32")
    assert whole and chunked.summary() == whole.summary()
    np.testing.assert_array_equal(chunked.values, whole.values)
    np.testing.assert_array_equal(chunked.counts, whole.counts)
