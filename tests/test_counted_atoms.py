"""The counted path's atoms (issue 13): the same atoms, declines and truncated fits as the float path.

A 16-bit tensor is handed to the fitter as its distinct values and their counts. Every function of
the counted path here is run beside its float-path twin on the same tensor written out (sorted the
way ``fit_tensor`` sorts it), and every field of the two answers is compared: atom values and
counts exactly, storage precision, grid step, pruning threshold and the decline messages exactly,
descriptives to rounding, truncated fits to 1e-9 of the log-likelihood and 1e-7 of the parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from weightstats.fitting.atomfit import (
    grid_declined,
    grid_declined_counted,
    take_atoms,
    take_atoms_counted,
)
from weightstats.fitting.atoms import find_atoms, find_atoms_counted
from weightstats.fitting.families import DEFAULT_FAMILIES
from weightstats.fitting.families.base import strided_quantiles
from weightstats.fitting.floatgrid import storage_precision
from weightstats.fitting.runs import SortedRuns
from weightstats.fitting.truncated import _fit_pruned, _Sample, fit_pruned, fit_pruned_counted

MIN_N = 30


# ---- tensors as the two paths receive them -------------------------------------------------------

def _bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (nearest, ties to even), kept as float32 as
    ``fit_tensor`` widens them."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32)


def _stored(x: np.ndarray, dtype: str) -> np.ndarray:
    """The values in storage order as the float path reads them: bfloat16 as float32, float16 as
    itself, integers as float64."""
    if dtype == "bfloat16":
        return _bfloat16(x)
    if dtype == "float16":
        return x.astype(np.float16)
    if dtype.startswith("float8"):
        import ml_dtypes

        return x.astype(getattr(ml_dtypes, dtype)).astype(np.float32)
    info = np.iinfo(dtype)
    return np.clip(np.rint(x), info.min, info.max).astype(dtype).astype(np.float64)


def _both(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted values for the float path, distinct values, counts). Sorted in float64: NumPy's
    float16 sort is wrong on arrays with many ties on some CPUs (AVX-512), which is not what
    these tests are about; -0.0 stays in the float path's array, as it is stored."""
    xs = np.sort(flat.astype(np.float64), kind="stable").astype(flat.dtype)
    values, counts = np.unique(xs.astype(np.float64), return_counts=True)
    return xs, values + 0.0, counts.astype(np.int64)


def _t6(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(6, n) * 0.02


def _zeros(n: int, seed: int, share: float = 0.3) -> np.ndarray:
    x = _t6(n, seed)
    x[np.random.default_rng(seed + 1).random(n) < share] = 0.0
    return x


def _pruned(n: int, seed: int, share: float = 0.7) -> np.ndarray:
    x = _t6(n, seed)
    x[np.abs(x) < np.quantile(np.abs(x), share)] = 0.0
    return x


def _sparse_pruned(n: int, seed: int, share: float = 0.7) -> np.ndarray:
    """Magnitude-pruned weights stored sparse: the survivors only, no zeros."""
    x = _t6(n, seed)
    return x[np.abs(x) >= np.quantile(np.abs(x), share)]


def _quantized(n: int, seed: int, levels: int = 15, step: float | None = None) -> np.ndarray:
    x = _t6(n, seed)
    step = step or 6 * x.std() / levels
    return np.clip(np.rint(x / step), -(levels // 2), levels // 2) * step


def _clipped(n: int, seed: int) -> np.ndarray:
    x = _t6(n, seed)
    c = float(np.quantile(np.abs(x), 0.97))
    return np.clip(x, -c, c)


def _base(n: int, dtype: str) -> dict:
    return {"options": {"families": list(DEFAULT_FAMILIES)}, "shape_of_tensor": (n,),
            "dtype": dtype, "counts": {"n_nan": 0, "n_posinf": 0, "n_neginf": 0}, "notes": [],
            "n": n}


# ---- field-by-field comparison -------------------------------------------------------------------

def _same_atoms(a, b) -> None:
    """Every field of two ``Atoms``: values (sign of zero included) and counts exactly."""
    assert a.values.dtype == b.values.dtype == np.float64
    assert np.array_equal(a.values, b.values)
    assert np.array_equal(np.signbit(a.values), np.signbit(b.values))
    assert a.counts.dtype == b.counts.dtype == np.int64
    assert np.array_equal(a.counts, b.counts)
    for name in ("n_total", "precision", "step", "pruned_c", "n_levels", "removed_from",
                 "left_out"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.describe() == b.describe()
    assert a.summary() == b.summary()
    assert a.decline(MIN_N) == b.decline(MIN_N)


def _close(a, b, path: str, rel: float, abs_: float) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            _close(a[key], b[key], f"{path}.{key}", rel, abs_)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]", rel, abs_)
    elif isinstance(a, float) and not isinstance(b, bool):
        assert isinstance(b, float | int), path
        assert b == pytest.approx(a, rel=rel, abs=abs_), path
    else:
        assert a == b, path


def _same_fit(a, b, rel: float = 1e-12, abs_: float = 1e-12) -> None:
    """Two ``TensorFit``s field by field (their JSON form): strings, counts and flags exactly,
    numbers to ``rel``/``abs_``."""
    _close(a.to_dict(), b.to_dict(), "fit", rel, abs_)


def _same_take(flat, xs, values, counts, dtype: str) -> None:
    """take_atoms on the written-out tensor and take_atoms_counted on its multiset agree."""
    base = _base(xs.size, dtype)
    atoms, rest, kept, declined = take_atoms(xs, flat, dtype, None, base, MIN_N)
    atoms_c, rest_v, rest_c, declined_c = take_atoms_counted(values, counts, dtype, base, MIN_N)
    _same_atoms(atoms, atoms_c)
    assert (declined is None) == (declined_c is None)
    if declined is None:
        assert rest_c.dtype == np.int64 and np.all(rest_c > 0)
        assert np.array_equal(np.repeat(rest_v, rest_c), rest.astype(np.float64))
        assert rest_c.sum() == kept.size
    else:
        assert rest_v is values and rest_c is counts
        _same_fit(declined, declined_c, rel=0.0, abs_=0.0)  # the very same sums, to the bit
    return atoms_c, rest_v, rest_c


# ---- the run-length view -------------------------------------------------------------------------

def test_sorted_runs_reads_like_the_written_out_array():
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.random(300) + 0.01) - 100
    counts = rng.integers(1, 20, values.size)
    runs, xs = SortedRuns(values, counts), np.repeat(values, counts)
    assert runs.size == len(runs) == xs.size and runs.dtype == xs.dtype
    idx = rng.integers(-xs.size, xs.size, 1000)
    assert np.array_equal(runs[idx], xs[idx])
    assert runs[0] == xs[0] and runs[-1] == xs[-1] and runs[17] == xs[17]
    assert np.array_equal(runs[5:400:7], xs[5:400:7])
    keys = np.concatenate([values, rng.uniform(-120, 200, 500), [-np.inf, np.inf]])
    for side in ("left", "right"):
        assert np.array_equal(np.searchsorted(runs, keys, side), np.searchsorted(xs, keys, side))
    assert np.searchsorted(runs, 0.0) == np.searchsorted(xs, 0.0)
    rest = runs.without(values[::3])
    assert np.array_equal(rest.expand(), xs[~np.isin(xs, values[::3])])
    with pytest.raises(IndexError):
        runs[xs.size]
    with pytest.raises(TypeError):
        runs[np.array([0.5])]


def test_storage_precision_depends_on_the_set_of_values():
    for dtype, x in [("bfloat16", _t6(50_000, 1)), ("float16", _t6(50_000, 2)),
                     ("float32", _t6(50_000, 3).astype(np.float32)), ("float64", _t6(50_000, 4)),
                     ("float8_e4m3fn", _t6(1000, 5))]:
        stored = x if dtype in ("float32", "float64") else _stored(x, dtype if "float8" not in dtype
                                                                   else "float16")
        xs, values, _ = _both(stored)
        assert storage_precision(values, dtype) == storage_precision(xs, dtype)


# ---- atoms: every reading the float path has ------------------------------------------------------

CASES = {
    "zeros-bf16": (lambda: _zeros(400_000, 10), "bfloat16", "exact zeros modelled"),
    "zeros-fp16": (lambda: _zeros(400_000, 11), "float16", "exact zeros modelled"),
    "pruned-fp16": (lambda: _pruned(400_000, 12), "float16", "pruned: |w| <"),
    "pruned-bf16": (lambda: _pruned(400_000, 13), "bfloat16", "pruned: |w| <"),
    "sparse-pruned-bf16": (lambda: _sparse_pruned(400_000, 14), "bfloat16", "zeros not stored"),
    "quantized-fp16": (lambda: _quantized(400_000, 15, 15, 2.0 ** -7), "float16",
                       "quantized: 15 levels, step 0.007812"),
    "quantized-bf16": (lambda: _quantized(400_000, 16, 9), "bfloat16",
                       "quantized: 9 levels, not evenly spaced"),
    "clipped-bf16": (lambda: _clipped(400_000, 17), "bfloat16", "on 2 repeated value(s)"),
    "int8": (lambda: _t6(200_000, 18) * 2000, "int8", "quantized: 256 levels, step 1"),
    "int16-continuous": (lambda: _t6(20_000, 19) * 2e5, "int16", None),
    "zeros-float8_e4m3fn": (lambda: _zeros(200_000, 22) * 50, "float8_e4m3fn",
                            "exact zeros modelled"),
    "float8_e5m2": (lambda: _t6(200_000, 23) * 50, "float8_e5m2", None),
    "t6-bf16": (lambda: _t6(400_000, 20), "bfloat16", None),
    "t6-fp16": (lambda: _t6(400_000, 21), "float16", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_counted_atoms_equal_the_float_path(case):
    make, dtype, expected = CASES[case]
    flat = _stored(make(), dtype)
    xs, values, counts = _both(flat)
    atoms = find_atoms(xs, dtype)
    _same_atoms(atoms, find_atoms_counted(values, counts, dtype))
    # The case is what it says: the reading the test is about did happen.
    if expected is None:
        assert not atoms and atoms.pruned_c is None
    else:
        assert expected in atoms.describe()
    _same_take(flat, xs, values, counts, dtype)


def test_continuous_bf16_grows_no_false_atoms():
    """Rounding to bfloat16 repeats every value many times; none of it is an atom, over seeds."""
    for seed in range(8):
        flat = _stored(_t6(300_000, 100 + seed), "bfloat16")
        xs, values, counts = _both(flat)
        assert counts.max() > 100  # heavily tied: the test has something to decline
        atoms = find_atoms_counted(values, counts, "bfloat16")
        assert not atoms and atoms.pruned_c is None and atoms.precision == "bfloat16"
        if seed < 2:
            _same_atoms(find_atoms(xs, "bfloat16"), atoms)


def test_ten_million_values():
    # Clipping atoms at +-c as well as the zeros.
    flat = _stored(np.clip(_zeros(10_000_000, 30, share=0.3), -0.15, 0.15), "bfloat16")
    xs, values, counts = _both(flat)
    assert values.size < 65_536 and counts.sum() == 10_000_000
    atoms, _, rest_c = _same_take(flat, xs, values, counts, "bfloat16")
    assert list(atoms.values) == [-0.150390625, 0.0, 0.150390625]
    assert rest_c.sum() == atoms.n_continuous


def test_too_few_continuous_values_decline_alike():
    x = _t6(2000, 40)
    x[200:] = 0.0
    x[:190] = 0.0  # 10 continuous values left
    flat = _stored(x, "bfloat16")
    xs, values, counts = _both(flat)
    _, _, _, declined = take_atoms_counted(values, counts, "bfloat16", _base(xs.size, "bfloat16"),
                                           MIN_N)
    assert declined.status == "too_small"
    _same_take(flat, xs, values, counts, "bfloat16")


def test_float16_sort_ties_and_negative_zero_do_not_change_the_float_path():
    """Regression: find_atoms took the levels of a quantized float16 tensor with np.unique, whose
    float16 sort leaves many ties out of order on AVX-512 CPUs (77 'levels' for 41, no step),
    and named the zero atom -0.0 when a -0.0 came first among the zeros."""
    x = np.clip(np.rint(_t6(1_000_000, 50) / 0.005), -20, 20) * 0.25  # -0.0 from rounding
    flat = x.astype(np.float16)
    xs, values, counts = _both(flat)
    zeros = np.flatnonzero(xs == 0)
    xs[zeros[0]] = -0.0  # the float path's sorted array starts its zero run with -0.0
    atoms = find_atoms(xs, "float16")
    assert atoms.n_levels == 41 and atoms.step == 0.25
    assert 0.0 in atoms.values and not np.signbit(atoms.values[atoms.values == 0]).any()
    _same_atoms(atoms, find_atoms_counted(values, counts, "float16"))


def test_grid_declined_counted_equals_the_float_path():
    flat = _stored(_t6(100_000, 60), "bfloat16")
    xs, values, counts = _both(flat)
    grid = "GGUF Q8_0: blocks of 32 values, each on a few levels of its own scale"
    base = _base(xs.size, "bfloat16")
    fit, fit_c = grid_declined(xs, grid, base), grid_declined_counted(values, counts, grid, base)
    assert fit_c.status == "quantized" and grid in fit_c.message
    _same_fit(fit, fit_c, rel=0.0, abs_=0.0)
    assert fit_c.descriptives["excess_kurtosis"] == pytest.approx(3.0, abs=0.5)


# ---- truncated fits of pruned tensors ------------------------------------------------------------

def _pruned_fits(flat: np.ndarray, dtype: str):
    xs, values, counts = _both(flat)
    base = _base(xs.size, dtype)
    atoms, rest, _, declined = take_atoms(xs, flat, dtype, None, base, MIN_N)
    atoms_c, rest_v, rest_c, _ = take_atoms_counted(values, counts, dtype, base, MIN_N)
    assert declined is None and atoms.pruned_c is not None
    names = list(DEFAULT_FAMILIES)
    return (fit_pruned(rest, names, atoms, base, 200),
            fit_pruned_counted(rest_v, rest_c, names, atoms_c, base, 200))


def _same_truncated(fit, fit_c) -> None:
    assert fit.status == fit_c.status == "ok"
    for row, row_c in zip(fit.rows, fit_c.rows, strict=True):
        assert row["family"] == row_c["family"] and row["flags"] == row_c["flags"]
        if not math.isfinite(row["loglik"]):
            continue
        assert row_c["loglik"] == pytest.approx(row["loglik"], rel=1e-9)
        assert row_c["scale"] == pytest.approx(row["scale"], rel=1e-7)
        assert row_c["loc"] == pytest.approx(row["loc"], abs=1e-7 * row["scale"])
        for name, value in row["params"].items():
            if name not in ("loc", "scale"):
                assert row_c["params"][name] == pytest.approx(value, rel=1e-7), name
        assert row_c["ks_stat"] == pytest.approx(row["ks_stat"], abs=1e-9)
    # Everything else (comparisons, descriptives, histogram, atoms, counts of every kind): both
    # paths fit the same arrays (runs.one_form), so to the bit.
    _same_fit(fit, fit_c, rel=0.0, abs_=0.0)


@pytest.mark.parametrize("dtype,n", [("float16", 400_000), ("bfloat16", 60_000)])
def test_pruned_fits_equal_the_float_path(dtype, n):
    """70% magnitude pruning: survivors above and below the coarse-start size (100,000)."""
    fit, fit_c = _pruned_fits(_stored(_pruned(n, 70), dtype), dtype)
    assert fit_c.atoms["pruned_c"] is not None and fit_c.atoms["zero_count"] > 0
    _same_truncated(fit, fit_c)


def test_sparse_pruned_fits_equal_the_float_path():
    """Pruned weights stored without their zeros: a hole but no atom; small enough for the
    exhaustive KS branch."""
    fit, fit_c = _pruned_fits(_stored(_sparse_pruned(6000, 71), "bfloat16"), "bfloat16")
    assert fit_c.atoms["zero_count"] == 0 and fit_c.atoms["n_atoms"] == 0
    _same_truncated(fit, fit_c)


def test_truncated_fits_are_those_of_the_written_out_sample():
    """Independent of the shared code: each counted row's log-likelihood is scipy's truncated
    log-likelihood of the written-out survivors at the row's parameters (plus the zeros' point
    mass), and it is the maximum the unweighted fit of every value finds."""
    flat = _stored(_pruned(30_000, 72), "bfloat16")
    fit, fit_c = _pruned_fits(flat, "bfloat16")
    xs, values, counts = _both(flat)
    base = _base(xs.size, "bfloat16")
    atoms, rest, _, _ = take_atoms(xs, flat, "bfloat16", None, base, MIN_N)
    survivors = rest.astype(np.float64)
    c = atoms.pruned_c
    laws = {"normal": stats.norm, "laplace": stats.laplace, "t": stats.t, "gennorm": stats.gennorm}
    unweighted = _fit_pruned(rest, None, list(DEFAULT_FAMILIES), atoms, base, 200)
    pointwise = {}
    for row, row_u in zip(fit_c.rows, unweighted.rows, strict=True):
        p = row["params"]
        shapes = [v for k, v in p.items() if k not in ("loc", "scale")]
        law = laws[row["family"]](*shapes, loc=p["loc"], scale=p["scale"])
        inside = law.cdf(c) - law.cdf(-c)
        kept = 1.0 - inside
        pointwise[row["family"]] = law.logpdf(survivors) - np.log(kept)
        expected = pointwise[row["family"]].sum() + atoms.loglik()
        assert row["loglik"] == pytest.approx(expected, rel=1e-10), row["family"]
        assert row["loglik"] == pytest.approx(row_u["loglik"], rel=1e-9), row["family"]
        assert row["scale"] == pytest.approx(row_u["scale"], rel=1e-3), row["family"]
        d = stats.kstest(survivors, lambda v, law=law, inside=inside, kept=kept: np.where(
            v < 0, law.cdf(v), law.cdf(v) - inside) / kept).statistic
        assert row["ks_stat"] == pytest.approx(d, abs=1e-12), row["family"]
    for comparison in fit_c.comparison_rows:
        d = pointwise[comparison["a"]] - pointwise[comparison["b"]]
        assert comparison["mean_llr_per_weight"] == pytest.approx(d.mean(), rel=1e-9, abs=1e-15)
        if comparison["test"] == "Vuong":
            assert comparison["z"] == pytest.approx(d.mean() * np.sqrt(d.size) / d.std(), rel=1e-8)
    described = fit_c.descriptives
    assert described["mean"] == pytest.approx(survivors.mean(), rel=1e-10)
    assert described["std"] == pytest.approx(survivors.std(), rel=1e-10)
    assert described["skewness"] == pytest.approx(stats.skew(survivors), rel=1e-8, abs=1e-12)
    assert described["excess_kurtosis"] == pytest.approx(stats.kurtosis(survivors), rel=1e-10)
    assert np.array_equal(fit_c.histogram[0], unweighted.histogram[0])
    assert fit_c.histogram[0].sum() == survivors.size


def test_strided_order_statistics_of_runs_are_those_of_the_array():
    """A truncated fit starts from evenly spaced order statistics of a large sample; from runs of
    ties they are gathered by position, the very values the written-out array gives."""
    rng = np.random.default_rng(73)
    values = np.sort(rng.choice(np.arange(-200_000, 200_000), 150_000, replace=False)) * 1e-3
    counts = rng.integers(1, 4, values.size)
    runs = _Sample(values, counts).strided(50_000)
    assert runs.counts is None
    assert np.array_equal(runs.points,
                          strided_quantiles(np.repeat(values, counts)[np.newaxis, :], 50_000)[0])
