"""Property tests of fit_tensor (hypothesis): any finite input fits or says why, and the fit
respects the symmetries of the problem (shuffling, x -> a*x + b, fixed seeds).

Kept fast: few examples, small KS settings (ks_replicates=99 at ks_sample 500/1000, sizes that
reuse the same null tables).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from weightstats.fitting import fit_tensor
from weightstats.fitting.families import DEFAULT_FAMILIES

KS = {"ks_sample": 500, "ks_replicates": 99}
# "quantized": nearly every value on a few levels (atoms), described rather than fitted.
STATUSES = {"ok", "empty", "constant", "too_small", "quantized", "pruned"}
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Sizes below 30 are "too_small"; 30/64 use their own null tables; 500-999 subsample to 500.
SIZES = st.sampled_from([0, 1, 2, 29, 30, 64, 500, 777])
DTYPES = st.sampled_from([np.float16, np.float32, np.float64])
FAMS = DEFAULT_FAMILIES


def _any_finite(dtype: type, size: int):
    """Any finite values of the dtype, subnormals and extremes (1e300, 1e-320) included."""
    elements = st.floats(allow_nan=False, allow_infinity=False, width=np.finfo(dtype).bits)
    return arrays(dtype, size, elements=elements)


@st.composite
def finite_arrays(draw):
    dtype, size = draw(DTYPES), draw(SIZES)
    return draw(_any_finite(dtype, size))


@st.composite
def weightlike(draw, sizes=(500, 777, 1000)):
    """Samples from weight-like distributions (what the symmetry properties are about)."""
    n = draw(st.sampled_from(sizes))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["normal", "laplace", "t3", "uniform", "mixture"]))
    rng = np.random.default_rng(seed)
    x = {"normal": lambda: rng.normal(size=n), "laplace": lambda: rng.laplace(size=n),
         "t3": lambda: rng.standard_t(3, size=n), "uniform": lambda: rng.uniform(-1, 1, n),
         "mixture": lambda: rng.normal(size=n) * rng.choice([0.1, 1.0], size=n)}[kind]()
    scale = draw(st.sampled_from([1e-3, 0.05, 1.0, 30.0]))
    return x * scale


def _check_result(fit) -> None:
    assert fit.status in STATUSES
    if fit.status != "ok":
        assert fit.message and "\n" not in fit.message
        return
    frame = fit.to_frame()
    assert ((frame["ks_stat"] >= 0) & (frame["ks_stat"] <= 1)).all()
    for col in ("ks_pvalue", "ks_pvalue_naive"):
        p = frame[col].dropna()
        assert ((p >= 0) & (p <= 1)).all(), frame[col]
    assert (frame["scale"] > 0).all()
    assert np.isfinite(frame["loglik"]).all()
    comp = fit.comparisons()
    p = comp["pvalue"].dropna()
    assert ((p >= 0) & (p <= 1)).all()


@SETTINGS
@given(finite_arrays())
def test_any_finite_array_fits_or_says_why(x: np.ndarray) -> None:
    _check_result(fit_tensor(x, ("normal", "laplace"), **KS))


@settings(SETTINGS, max_examples=8)
@given(finite_arrays())
def test_any_finite_array_all_families(x: np.ndarray) -> None:
    _check_result(fit_tensor(x, FAMS, **KS))


@settings(SETTINGS, max_examples=10)
@given(weightlike(), st.integers(0, 2**32 - 1))
def test_shuffling_changes_nothing(x: np.ndarray, perm_seed: int) -> None:
    y = np.random.default_rng(perm_seed).permutation(x)
    a, b = fit_tensor(x, FAMS, **KS), fit_tensor(y, FAMS, **KS)
    fa, fb = a.to_frame(), b.to_frame()
    # Not ks_pvalue: its subsample is drawn by position in the tensor (so that it depends on the
    # data), and a shuffle draws another one; the fits and D on all values must not move.
    num = ["loc", "scale", "shape", "loglik", "ks_stat", "aic", "bic"]
    np.testing.assert_allclose(fa[num].to_numpy(float), fb[num].to_numpy(float),
                               rtol=1e-7, atol=1e-12, equal_nan=True)
    # The adequacy reason quotes the subsample's p-values; everything else must agree.
    assert ({k: v for k, v in a.verdict.items() if k != "adequacy_reason"}
            == {k: v for k, v in b.verdict.items() if k != "adequacy_reason"})


def _check_affine(x: np.ndarray, a: float, b: float, fams: tuple[str, ...]) -> None:
    f0 = fit_tensor(x, fams, **KS).to_frame().set_index("family")
    f1 = fit_tensor(a * x + b, fams, **KS).to_frame().set_index("family")
    spread = float(np.std(x)) * a
    for fam in fams:
        r0, r1 = f0.loc[fam], f1.loc[fam]
        assert r1["loc"] == pytest.approx(a * r0["loc"] + b, abs=1e-4 * spread + 1e-9), fam
        assert r1["scale"] == pytest.approx(a * r0["scale"], rel=1e-4), fam
        if np.isfinite(r0["shape"]) and r0["shape"] < 100:  # t's df far out is flat in loglik
            assert r1["shape"] == pytest.approx(r0["shape"], rel=1e-3), fam
        n = r0["n"]
        assert r1["loglik"] == pytest.approx(r0["loglik"] - n * np.log(a), abs=1e-5 * n), fam
        assert r1["ks_stat"] == pytest.approx(r0["ks_stat"], abs=1e-4), fam


AFFINE = (weightlike(sizes=(500, 1000)), st.sampled_from([0.01, 0.5, 3.0, 250.0]),
          st.floats(-5, 5, allow_nan=False))


@settings(SETTINGS, max_examples=12)
@given(*AFFINE)
def test_affine_equivariance(x: np.ndarray, a: float, b: float) -> None:
    _check_affine(x, a, b, FAMS)


@pytest.mark.parametrize("kind", ["normal", "laplace", "t3", "mixture"])
@pytest.mark.parametrize("a", [1e-7, 1e-5, 1e6])
def test_student_t_scale_equivariance_far_from_unit_scale(kind: str, a: float) -> None:
    """Regression: the t fit's df moved by 30-500% for weights of scale ~1e-5."""
    rng = np.random.default_rng(1)
    x = {"normal": rng.normal(size=500), "laplace": rng.laplace(size=500),
         "t3": rng.standard_t(3, size=500),
         "mixture": rng.normal(size=500) * rng.choice([0.1, 1.0], size=500)}[kind]
    _check_affine(x, a, 0.0, ("t",))


@settings(SETTINGS, max_examples=10)
@given(weightlike(), st.integers(0, 2**31 - 1))
def test_same_seed_same_result(x: np.ndarray, seed: int) -> None:
    a = fit_tensor(x, FAMS, seed=seed, **KS).to_dict()
    b = fit_tensor(x.copy(), FAMS, seed=seed, **KS).to_dict()
    assert a == b


@settings(SETTINGS, max_examples=8)
@given(weightlike(sizes=(500,)), DTYPES)
def test_narrow_float_dtypes_fit_like_float64(x: np.ndarray, dtype: type) -> None:
    """float16/float32 input is widened exactly: the fit equals that of the float64 copy."""
    y = x.astype(dtype)
    assume(np.isfinite(y).all() and np.ptp(y) > 0)
    f64 = fit_tensor(y.astype(np.float64), ("normal", "laplace"), **KS).to_frame()
    fnat = fit_tensor(y, ("normal", "laplace"), **KS).to_frame()
    num = ["loc", "scale", "loglik", "ks_stat", "ks_pvalue"]
    np.testing.assert_allclose(fnat[num].to_numpy(float), f64[num].to_numpy(float), rtol=1e-12)


EXTREME = {
    "one-1e154-among-zeros": np.r_[1.36e154, np.zeros(29)],
    "one-1e103-among-zeros": np.r_[3.14e103, np.zeros(29)],
    "one-1e-247-among-zeros": np.r_[2.96e-247, np.zeros(29)],
    "normal-times-1e200": np.random.default_rng(0).normal(size=500) * 1e200,
    "normal-times-1e-300": np.random.default_rng(0).normal(size=500) * 1e-300,
}


@pytest.mark.parametrize("name", sorted(EXTREME))
def test_extreme_magnitudes(name: str) -> None:
    """Regression: raw OverflowError/LinAlgError, or scale 0/inf, at extreme magnitudes."""
    with np.errstate(all="ignore"):
        _check_result(fit_tensor(EXTREME[name], FAMS, **KS))


def small_layer(seed: int) -> np.ndarray:
    """One valid small layer (n = 30 ... 5,000) from a mix of every family's law and hostile but
    valid shapes: normal, Laplace, t with small and large df, gennorm with beta 0.3..4, uniform,
    near-constant, two-valued with noise, heavy outliers, values on a coarse grid; any scale."""
    rng = np.random.default_rng([2026, seed])
    n = int(rng.choice([30, 31, 64, 100, 256, 500, 1024, 2000, 5000]))
    kind = int(rng.integers(10))
    if kind == 0:
        x = rng.standard_normal(n)
    elif kind == 1:
        x = rng.laplace(size=n)
    elif kind == 2:
        x = rng.standard_t(rng.choice([0.5, 1.0, 2.0, 3.0]), n)
    elif kind == 3:
        x = rng.standard_t(rng.choice([30.0, 300.0, 1e4]), n)
    elif kind == 4:
        beta = rng.uniform(0.3, 4.0)
        x = rng.standard_gamma(1 / beta, n) ** (1 / beta) * rng.choice([-1, 1], n)
    elif kind == 5:
        x = rng.uniform(-1, 1, n)
    elif kind == 6:
        x = 1.0 + 1e-9 * rng.standard_normal(n)
    elif kind == 7:
        x = rng.choice([-1.0, 1.0], n) + 1e-3 * rng.standard_normal(n)
    elif kind == 8:
        x = rng.standard_normal(n)
        x[rng.choice(n, 3, replace=False)] = rng.choice([-1, 1], 3) * 10.0 ** rng.uniform(3, 12)
    else:
        x = np.round(rng.standard_normal(n) * 4) / 4
    return x * 10.0 ** rng.uniform(-4, 2)


# Fewer in CI; benchmarks/bench_crashes.py runs 12,500 (every set of issue 11 item 5 at full size).
SMALL_LAYERS = 500


def test_small_layers_of_every_law_never_crash() -> None:
    """Issue 11 item 5: valid layers raised IndexError (gennorm loc search) and OverflowError
    (t's shape interval). Every layer fits ("ok", no family failed, every loglik finite) or
    says why."""
    failed = []
    for seed in range(SMALL_LAYERS):
        fit = fit_tensor(small_layer(seed), FAMS, **KS)
        if fit.status == "ok":
            frame = fit.to_frame()
            if frame["flags"].str.contains("fit_failed").any() or not np.isfinite(
                    frame["loglik"].to_numpy(float)).all():
                failed.append((seed, frame[["family", "loglik", "flags"]].to_dict("records")))
        elif fit.status == "fit_failed" or not fit.message or "\n" in fit.message:
            failed.append((seed, fit.status, fit.message))
    assert not failed, failed[:3]


CRASHERS = {  # the reproductions of issue 11 item 5 and issue 10 item 5
    "uniform-30": lambda: np.random.default_rng(0).uniform(-.35, .35, 30),
    "normal-64-seed-1326": lambda: np.random.default_rng(1326).standard_normal(64),
    "normal-64-seed-2421": lambda: np.random.default_rng(2421).standard_normal(64),
    "normal-256-seed-243": lambda: np.random.default_rng(243).standard_normal(256),
    "normal-1024-seed-58": lambda: np.random.default_rng(58).standard_normal(1024),
    "t30-ci-overflow": lambda: 0.013 + 0.021 * np.random.default_rng([7, 4, 300, 183]).standard_t(
        30, 300),
}


@pytest.mark.parametrize("name", sorted(CRASHERS))
def test_reported_crashers_fit(name: str) -> None:
    fit = fit_tensor(CRASHERS[name](), FAMS, **KS)
    assert fit.status == "ok"
    frame = fit.to_frame()
    assert not frame["flags"].str.contains("fit_failed").any()
    assert np.isfinite(frame["loglik"].to_numpy(float)).all()


def test_a_family_that_raises_is_flagged_and_the_layer_still_fits(monkeypatch) -> None:
    """The last line of defence: an unexpected exception in one family costs that family only."""
    from weightstats.fitting.families import get_family

    def broken(*args, **kwargs):
        raise ValueError("synthetic failure\nsecond line")

    monkeypatch.setattr(type(get_family("gennorm")), "fit_rows", broken)
    fit = fit_tensor(np.random.default_rng(3).standard_normal(300), FAMS, **KS)
    assert fit.status == "ok"
    frame = fit.to_frame().set_index("family")
    assert frame.loc["gennorm", "flags"] == "fit_failed: ValueError: synthetic failure"
    assert np.isnan(frame.loc["gennorm", "loglik"])
    assert np.isfinite(frame.drop(index="gennorm")["loglik"]).all()
    assert "gennorm" not in set(fit.comparisons()[["a", "b"]].to_numpy().ravel())
    assert fit.verdict["best_aic"] != "gennorm"
    monkeypatch.setattr(type(get_family("normal")), "fit_rows", broken)
    monkeypatch.setattr(type(get_family("laplace")), "fit_rows", broken)
    monkeypatch.setattr(type(get_family("t")), "fit_rows", broken)
    fit = fit_tensor(np.random.default_rng(3).standard_normal(300), FAMS, **KS)
    assert fit.status == "fit_failed" and "synthetic failure" in fit.message
    assert "\n" not in fit.message


def test_fit_model_goes_on_past_a_layer_whose_family_fails(monkeypatch) -> None:
    """Through fit_model (what the CLI runs) a layer that used to crash (default-init
    nn.Linear(8, 8), torch seed 106: IndexError) and a family that raises cost no layer."""
    import torch

    from weightstats import fit_model
    from weightstats.fitting.families import get_family

    torch.manual_seed(106)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 16))
    report = fit_model(model, ks_sample=500, ks_replicates=99)
    assert [lr.fit.status for lr in report.layers] == ["ok", "ok"]

    def broken(*args, **kwargs):
        raise FloatingPointError("synthetic")

    monkeypatch.setattr(type(get_family("t")), "fit_rows", broken)
    report = fit_model(model, ks_sample=500, ks_replicates=99, jobs=2)
    assert [lr.fit.status for lr in report.layers] == ["ok", "ok"]
    assert all("fit_failed" in lr.fit.to_frame().set_index("family").loc["t", "flags"]
               for lr in report.layers)


def test_cli_fits_the_t_interval_overflow_tensor(tmp_path) -> None:
    """Issue 10 item 5: this 10 x 30 tensor (t df ~1.2e4, se of log df ~466) raised OverflowError
    in the t shape interval and the CLI exited 1. The interval is now unbounded and flagged."""
    from pathlib import Path

    from click.testing import CliRunner

    from weightstats.cli import cli

    x = np.load(Path(__file__).parent / "data" / "t_ci_overflow.npy")
    row = fit_tensor(x, FAMS, **KS).to_frame().set_index("family").loc["t"]
    if np.isfinite(row["shape_ci_high"]) or np.isfinite(row["shape_ci_low"]):
        assert row["shape_ci_low"] <= row["shape"] <= row["shape_ci_high"]
    spec = tmp_path / "t_ci_overflow.npy"
    spec.write_bytes((Path(__file__).parent / "data" / "t_ci_overflow.npy").read_bytes())
    result = CliRunner().invoke(cli, ["fit", str(spec), "--out", str(tmp_path / "r"), "--no-plots",
                                      "--ks-sample", "300", "--ks-replicates", "19"])
    assert result.exit_code == 0, result.output
