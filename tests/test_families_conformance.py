"""Conformance suite: every registered family passes these checks without a test of its own.

In the spirit of scipy's ``test_cont_basic`` and scikit-learn's ``check_estimator``: a new family is
one module and one registry line, and this file tests it. The oracles are the family's scipy twin
(``Family.scipy_name``) where it has one, else numerical integration of ``exp(logpdf)`` and a
generic optimizer started from the fit.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from weightstats.fitting import fit_tensor
from weightstats.fitting import nulltables as nt
from weightstats.fitting.families import DEFAULT_FAMILIES, FAMILIES, Family, get_family

NAMES = list(FAMILIES)
LOC, SCALE = 0.3, 1.7
REPLICATES = 19  # the smallest count whose p-value reaches 0.05: the path, not the precision
# The two-sided scan of the density: standardized distances from loc.
DISTANCES = np.concatenate([[0.0], np.geomspace(1e-3, 30.0, 40)])


def _shape_points(fam: Family) -> list[tuple[float, ...]]:
    """Shape values the density checks use: the typical value, and for a one-shape family with
    null tables two inner grid points (one each side of the middle)."""
    points = [tuple(fam.shape_start)]
    grid = fam.shape_grid
    if grid is not None and len(fam.shape_names) == 1 and len(grid) >= 4:
        points += [(grid[1],), (grid[-2],)]
    return list(dict.fromkeys(points))


def _scipy(fam: Family, theta: tuple[float, ...]):
    loc, scale, *shapes = theta
    return getattr(stats, fam.scipy_name)(*shapes, loc=loc, scale=scale)


def _sample(fam: Family, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([20261127, seed, NAMES.index(fam.name)])
    return np.sort(LOC + SCALE * fam.standard_rvs(rng, (n,), *fam.shape_start))


def _same(a, b) -> bool:
    """Equal floats, NaN equal to NaN and to JSON's None."""
    a = float("nan") if a is None else float(a)
    b = float("nan") if b is None else float(b)
    return a == b or (math.isnan(a) and math.isnan(b))


# --- metadata: what the rest of the package reads off the class ---

def test_registry_metadata_is_consistent() -> None:
    colors = [f.color.lower() for f in FAMILIES.values()]
    markers = [f.marker for f in FAMILIES.values()]
    assert len(set(colors)) == len(colors), f"colours shared: {colors}"
    assert len(set(markers)) == len(markers), f"markers shared: {markers}"
    owner: dict[str, str] = {}
    for name, fam in FAMILIES.items():
        assert fam.name == name and fam.label.strip()
        for spelling in (fam.name, fam.label, *fam.aliases):
            key = "".join(ch for ch in spelling.lower() if ch not in "-_ ")
            assert owner.setdefault(key, name) == name, f"{spelling!r}: {owner[key]} and {name}"
            assert get_family(spelling).name == name
    assert DEFAULT_FAMILIES == tuple(n for n, f in FAMILIES.items() if f.default)


@pytest.mark.parametrize("name", NAMES)
def test_family_metadata(name: str) -> None:
    fam = FAMILIES[name]
    k = len(fam.shape_names)
    assert fam.param_names == ("loc", "scale", *fam.shape_names)
    assert len(set(fam.param_names)) == len(fam.param_names)
    assert len(fam.shape_bounds) == k and len(fam.shape_start) == k
    for (lo, hi), start in zip(fam.shape_bounds, fam.shape_start, strict=True):
        assert 0 < lo < hi and lo <= start <= hi  # shapes are positive (fitted in log)
    assert fam.n_params >= 2
    if fam.shape_grid is not None:
        assert k >= 1 and fam.null_tables
        grid = np.asarray(fam.shape_grid)
        lo, hi = fam.shape_bounds[0]
        assert np.all(np.diff(grid) > 0) and lo <= grid[0] and grid[-1] <= hi
    for nesting in fam.nests:
        assert nesting.inner in FAMILIES and nesting.inner != name
        assert k >= 1 and FAMILIES[nesting.inner].n_params < fam.n_params
    if fam.shape_display is not None:
        assert k >= 1
        assert all(ref in FAMILIES for _, ref in fam.shape_display.references)
    if fam.scipy_name is not None:
        assert hasattr(stats, fam.scipy_name)
    assert isinstance(fam.group, str) and isinstance(fam.default, bool)


# --- density, CDF, symmetry, frozen distribution ---

@pytest.mark.parametrize("name", NAMES)
def test_logpdf_and_cdf_agree_with_the_oracle(name: str) -> None:
    fam = FAMILIES[name]
    for shapes in _shape_points(fam):
        theta = (LOC, SCALE, *shapes)
        x = LOC + SCALE * np.concatenate([-DISTANCES[::-1], DISTANCES])
        logpdf, cdf = fam.logpdf(x, *theta), fam.cdf(x, *theta)
        assert np.all(np.isfinite(logpdf)) and np.all((cdf >= 0) & (cdf <= 1))
        assert np.all(np.diff(cdf) >= 0)
        lower = x <= LOC  # KS and AD read tail probabilities off the lower half: relative accuracy
        if fam.scipy_name is not None:
            ref = _scipy(fam, theta)
            np.testing.assert_allclose(logpdf, ref.logpdf(x), rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(cdf[lower], ref.cdf(x[lower]), rtol=1e-9, atol=1e-300)
            np.testing.assert_allclose(cdf[~lower], ref.cdf(x[~lower]), rtol=0, atol=1e-14)
        # The density integrates to 1 and to the CDF (for scipy twins too: a second oracle).
        def pdf(v, theta=theta):
            return math.exp(float(fam.logpdf(np.array([v]), *theta)[0]))

        total = integrate.quad(pdf, -np.inf, LOC)[0] + integrate.quad(pdf, LOC, np.inf)[0]
        assert total == pytest.approx(1.0, abs=1e-7), (name, shapes)
        for d in (0.25, 1.0, 3.0):
            left = integrate.quad(pdf, -np.inf, LOC - d * SCALE)[0]
            assert float(fam.cdf(np.array([LOC - d * SCALE]), *theta)[0]) == pytest.approx(
                left, rel=1e-6, abs=1e-9), (name, shapes, d)


@pytest.mark.parametrize("name", NAMES)
def test_symmetric_about_loc(name: str) -> None:
    """The null tables and AD read F and 1 - F off one tail: every family must be symmetric."""
    fam = FAMILIES[name]
    for shapes in _shape_points(fam):
        theta = (LOC, SCALE, *shapes)
        d = SCALE * DISTANCES
        low, high = fam.cdf(LOC - d, *theta), fam.cdf(LOC + d, *theta)
        np.testing.assert_allclose(low + high, 1.0, rtol=0, atol=1e-13)
        np.testing.assert_allclose(fam.logpdf(LOC - d, *theta), fam.logpdf(LOC + d, *theta),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_log_kernel_plus_constant_is_logpdf(name: str) -> None:
    """The Vuong moments read log-densities through ``log_kernel``; its in-place shortcut must
    give logpdf to rounding, far into the tails and at loc itself."""
    fam = get_family(name)
    x = LOC + SCALE * np.concatenate([-DISTANCES[::-1], DISTANCES, [1e6, -1e6, 1e200, -1e200]])
    for shapes in _shape_points(fam):
        theta = (LOC, SCALE, *shapes)
        out = np.full(x.size, np.nan)
        with np.errstate(over="ignore"):  # -inf far out is the right answer for light tails
            constant = fam.log_kernel(x, out, *theta)
            expected = fam.logpdf(x, *theta)
        np.testing.assert_allclose(out + constant, expected, rtol=1e-12, atol=1e-12)


def test_a_subclass_redefining_the_density_does_not_inherit_the_kernel() -> None:
    # A plug-in family built on Normal with its own logpdf (here: an extra fixed shape and a
    # tilted density) must get the generic kernel, not the Gaussian's in-place shortcut.
    normal = type(get_family("normal"))

    class Tilted(normal):
        def logpdf(self, x, loc, scale, *shapes):
            return super().logpdf(x, loc, scale) + 0.1 * (x - loc)

    x = np.linspace(-3.0, 3.0, 13)
    out = np.empty_like(x)
    constant = Tilted().log_kernel(x, out, 0.2, 1.3, 3.0)
    np.testing.assert_allclose(out + constant, Tilted().logpdf(x, 0.2, 1.3, 3.0), rtol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_frozen_matches_logpdf_and_cdf(name: str) -> None:
    fam = FAMILIES[name]
    for shapes in _shape_points(fam):
        theta = (LOC, SCALE, *shapes)
        frozen = fam.frozen(*theta)
        x = LOC + SCALE * np.linspace(-6.0, 6.0, 49)
        np.testing.assert_allclose(frozen.pdf(x), np.exp(fam.logpdf(x, *theta)), rtol=1e-9,
                                   atol=1e-300)
        np.testing.assert_allclose(frozen.cdf(x), fam.cdf(x, *theta), rtol=1e-9, atol=1e-15)
        p = np.array([0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
        np.testing.assert_allclose(fam.cdf(frozen.ppf(p), *theta), p, rtol=1e-8)


# --- maximum likelihood ---

def _generic_best(fam: Family, x: np.ndarray, theta: tuple[float, ...]) -> float:
    """Highest log-likelihood Nelder-Mead finds over (loc, log scale, log shapes), shapes within
    ``shape_bounds``, started from ``theta`` (shapes that are not finite stay fixed)."""
    loc0, scale0, *shapes = theta
    free = [i for i, s in enumerate(shapes) if np.isfinite(s) and s > 0]
    bounds = [(None, None), (None, None)] + [tuple(np.log(fam.shape_bounds[i])) for i in free]
    start = [0.0, 0.0] + [float(np.clip(np.log(shapes[i]), *bounds[2 + j]))
                          for j, i in enumerate(free)]

    def negll(p):
        s = list(shapes)
        for j, i in enumerate(free):
            s[i] = math.exp(p[2 + j])
        with np.errstate(all="ignore"):
            ll = float(np.sum(fam.logpdf(x, loc0 + scale0 * p[0], scale0 * math.exp(p[1]), *s)))
        return -ll if np.isfinite(ll) else 1e300

    res = optimize.minimize(negll, start, method="Nelder-Mead", bounds=bounds,
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
    return -min(res.fun, negll(start))


@pytest.mark.parametrize("name", NAMES)
def test_fit_is_a_maximum(name: str) -> None:
    fam = FAMILIES[name]
    n = 400 if fam.group == "mixtures" else 1500
    x = _sample(fam, n, seed=1)
    fit = fam.fit(x)
    theta = fam.theta(fit)
    assert len(theta) == len(fam.param_names)
    assert np.all(np.isfinite(theta[:2])) and theta[1] > 0
    ll = float(fit.loglik[0])
    # The reported likelihood is the likelihood of the reported parameters.
    assert ll == pytest.approx(float(np.sum(fam.logpdf(x, *theta))), rel=1e-9)
    k = fam.n_params if fit.n_params is None else int(fit.n_params[0])
    assert 2 <= k
    assert fit.converged is None or bool(fit.converged[0])
    assert not fit.at_bound[0]  # a sample from the family's typical shape is inside its range
    tol = 1e-7 * abs(ll)
    if fam.scipy_name is not None:
        dist = getattr(stats, fam.scipy_name)
        ll_scipy = float(np.sum(dist.logpdf(x, *dist.fit(x))))
        assert ll >= ll_scipy - tol, (ll, ll_scipy)
    best = _generic_best(fam, x, theta)
    assert ll >= best - tol, (ll, best)


def _scipy_best(fam: Family, x: np.ndarray) -> float:
    """scipy's maximum log-likelihood within the family's shape range: where scipy's shape leaves
    ``shape_bounds`` (a far outlier drives gennorm's beta below its floor), its fit with that
    shape fixed at the bound."""
    dist = getattr(stats, fam.scipy_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's own optimizer may complain on hostile data
        params = dist.fit(x)
        fixed = {f"f{i}": float(np.clip(v, *fam.shape_bounds[i]))
                 for i, v in enumerate(params[:-2]) if not fam.shape_bounds[i][0] <= v
                 <= fam.shape_bounds[i][1]}
        if fixed:
            params = dist.fit(x, **fixed)
        return float(np.sum(dist.logpdf(x, *params)))


@pytest.mark.parametrize("name", NAMES)
def test_fit_with_far_outliers_is_a_maximum(name: str) -> None:
    """Two values 1e12 scales out: the scale the likelihood wants is many orders of magnitude
    from the bulk's, which a fit must reach (or say it did not) and still be a maximum."""
    fam = FAMILIES[name]
    x = np.sort(np.r_[_sample(fam, 300, seed=9), LOC + 1e12 * SCALE * np.array([-1.0, 1.0])])
    fit = fam.fit(x)
    theta = fam.theta(fit)
    ll = float(fit.loglik[0])
    assert ll == pytest.approx(float(np.sum(fam.logpdf(x, *theta))), rel=1e-9)
    assert fit.converged is None or bool(fit.converged[0])
    tol = 1e-7 * abs(ll)
    if fam.scipy_name is not None:
        assert ll >= _scipy_best(fam, x) - tol
    assert ll >= _generic_best(fam, x, theta) - tol


@pytest.mark.parametrize("name", NAMES)
def test_fit_rows_equivariant_and_row_independent(name: str) -> None:
    """Rows are fitted independently (a row's fit does not depend on its batch) and the fit maps
    under x -> a x + b, which is what lets fit_tensor fit standardized values: the moved data's
    maximum is the mapped one, log-likelihood lower by n log a (parameters only as closely as a
    flat likelihood pins them down)."""
    fam = FAMILIES[name]
    n = 200 if fam.group == "mixtures" else 500
    rows = np.stack([_sample(fam, n, seed=s) for s in range(2, 8)])
    batch = fam.fit_rows(rows)
    one = fam.fit_rows(rows[1:2])
    for a, b in zip(fam.theta_rows(batch), fam.theta_rows(one), strict=True):
        assert a[1] == pytest.approx(b[0], rel=1e-6, abs=1e-9)
    assert batch.loglik[1] == pytest.approx(one.loglik[0], rel=1e-9)
    moved = fam.fit_rows(5.0 + 3.0 * rows)
    np.testing.assert_allclose(moved.loglik, batch.loglik - n * math.log(3.0),
                               rtol=1e-7, err_msg="the fit is not equivariant (a local maximum?)")
    np.testing.assert_allclose(moved.loc, 5.0 + 3.0 * batch.loc, rtol=1e-4)
    np.testing.assert_allclose(moved.scale, 3.0 * batch.scale, rtol=1e-4)


# --- standardized draws ---

@pytest.mark.parametrize("name", NAMES)
def test_standard_rvs_follow_the_cdf(name: str) -> None:
    fam = FAMILIES[name]
    for j, shapes in enumerate(_shape_points(fam)):
        rng = np.random.default_rng([7, j, NAMES.index(name)])
        draws = fam.standard_rvs(rng, (20_000,), *shapes)
        assert draws.shape == (20_000,)
        assert fam.standard_rvs(rng, (3, 5), *shapes).shape == (3, 5)
        p = stats.kstest(draws, lambda v, s=shapes: fam.cdf(v, 0.0, 1.0, *s)).pvalue
        assert p > 1e-3, (name, shapes, p)


# --- valid p-values ---

@pytest.mark.parametrize("name", NAMES)
def test_null_table_path_gives_pvalues(name: str, monkeypatch, tmp_path) -> None:
    fam = FAMILIES[name]
    monkeypatch.setenv("WEIGHTSTATS_CACHE", str(tmp_path))
    nt.null_tables.cache_clear()
    try:
        n = 40  # not a shipped size: the table (if the family has them) is simulated here
        x = _sample(fam, n, seed=5)
        theta = fam.theta(fam.fit(x))
        d, a2 = nt.sample_statistics(fam, x, *theta)
        assert 0 < d < 1 and a2 > 0
        out, note = nt.bootstrap_pvalues(fam, n, d, a2, theta[2:], REPLICATES, seed=0)
        again, _ = nt.bootstrap_pvalues(fam, n, d, a2, theta[2:], REPLICATES, seed=0)
    finally:
        nt.null_tables.cache_clear()
    assert out == again  # seeded: same numbers
    for s in nt.STATISTICS:
        assert 0 < out[f"{s}_pvalue"] <= 1
        assert np.isfinite(out[f"{s}_pvalue_se"]) and out[f"{s}_pvalue_se"] >= 0
    assert isinstance(note, str)
    if fam.null_tables:  # simulated into the cache we pointed at, nowhere else
        assert list(tmp_path.rglob("*.npz"))


# --- round trips: TensorFit.to_dict / JSON, the model report ---

@pytest.mark.parametrize("name", NAMES)
def test_params_survive_json(name: str, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WEIGHTSTATS_CACHE", str(tmp_path))
    fam = FAMILIES[name]
    x = _sample(fam, 300, seed=6)
    try:
        result = fit_tensor(x, families=(name,), ks_replicates=REPLICATES)
    finally:
        nt.null_tables.cache_clear()
    assert result.ok
    params = result.params(name)
    assert tuple(params) == fam.param_names
    back = json.loads(json.dumps(result.to_dict()))
    (row,) = [r for r in back["fits"] if r["family"] == name]
    assert set(row["params"]) == set(params)
    assert all(_same(row["params"][k], v) for k, v in params.items())
    assert _same(row["loc"], params["loc"]) and _same(row["scale"], params["scale"])
    p = np.array([0.05, 0.5, 0.95])
    np.testing.assert_allclose(result.frozen(name).ppf(p), fam.frozen(*(row["params"][k] for k in fam.param_names)).ppf(p),
                               rtol=1e-12)
    assert row["ks_pvalue"] is not None and 0 < row["ks_pvalue"] <= 1


@pytest.mark.parametrize("name", NAMES)
def test_params_survive_the_model_report(name: str, monkeypatch, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from weightstats.api import fit_model

    monkeypatch.setenv("WEIGHTSTATS_CACHE", str(tmp_path / "cache"))
    fam = FAMILIES[name]
    model = torch.nn.Sequential(torch.nn.Linear(20, 15))
    with torch.no_grad():
        values = _sample(fam, 300, seed=7)
        model[0].weight.copy_(torch.from_numpy(np.random.default_rng(0).permutation(values)
                                               .reshape(15, 20)))
    try:
        report = fit_model(model, families=(name,), ks_replicates=REPLICATES)
    finally:
        nt.null_tables.cache_clear()
    layer = report.layers[0]
    assert layer.fit.ok
    params = layer.fit.params(name)
    out = report.save(tmp_path / "rep", formats=("json", "md", "csv", "html"), plots=False)
    saved = json.loads((out / "report.json").read_text())
    assert saved["families"] == [name]
    (entry,) = [e for e in saved["layers"] if e["name"] == layer.name]
    (row,) = [r for r in entry["fit"]["fits"] if r["family"] == name]
    # report.json writes floats at the reports' fixed precision (10 significant digits)
    from weightstats.report.text import fixed

    assert all(_same(row["params"][k], fixed(v)) for k, v in params.items())
    figure = report.plot_layer(layer.name)  # its fitted pdf is drawn like any family's
    import matplotlib.pyplot as plt

    plt.close(figure)


# --- shipping one family's null tables without touching the others ---

def test_nulltables_families_option_merges_only_that_family(tmp_path) -> None:
    """``python -m weightstats.fitting.nulltables --families NAME`` adds NAME's tables to the
    existing file: every other stored array comes back byte for byte, a stale table of NAME (any
    replicate count) is replaced."""
    name = next(n for n, f in FAMILIES.items() if f.null_tables and f.shape_grid is None)
    other = next(n for n in FAMILIES if n != name)
    out = tmp_path / "tables.npz"
    rng = np.random.default_rng(0)
    kept = {f"{other}|n=30|B=2000|shape=none|{s}": rng.integers(0, 255, (4, 2000), np.uint8)
            for s in nt.STATISTICS}
    stale = {f"{name}|n=30|B=4000|shape=none|{s}": np.zeros((4, 4000), np.uint8)
             for s in nt.STATISTICS}
    np.savez_compressed(out, **kept, **stale)
    nt.main(["--families", name, "--sizes", "30", "--replicates", "2000",
             "--work", str(tmp_path / "work"), "--out", str(out)])
    with np.load(out) as data:
        stored = {k: data[k] for k in data.files}
    fresh = nt.finish_table([nt.simulate_block(FAMILIES[name], 30, None, 0)])
    assert set(stored) == set(kept) | {f"{name}|n=30|B=2000|shape=none|{s}" for s in nt.STATISTICS}
    for key, value in kept.items():
        assert stored[key].dtype == value.dtype and stored[key].tobytes() == value.tobytes()
    for s in nt.STATISTICS:
        np.testing.assert_array_equal(nt.decode(stored[f"{name}|n=30|B=2000|shape=none|{s}"], s),
                                      fresh[s])
    with pytest.raises(SystemExit):
        nt.main(["--families", "no-such-family", "--out", str(out)])


# Asymptotic upper percentage points of A^2 with loc and scale estimated (case 3), from the
# literature (D'Agostino & Stephens 1986, Goodness-of-Fit Techniques, tables 4.7 and 4.22:
# Stephens 1974 for the normal, Stephens 1979 for the logistic): an oracle for the shipped tables
# that shares no code with them. Levels 10%, 5%, 2.5%, 1%.
PUBLISHED_AD = {"normal": (0.631, 0.752, 0.873, 1.035), "logistic": (0.563, 0.660, 0.769, 0.906)}


@pytest.mark.parametrize("name", [n for n in PUBLISHED_AD if n in FAMILIES])
def test_shipped_ad_table_matches_published_points(name: str) -> None:
    table = nt.null_tables(name, 5000, nt.DEFAULT_REPLICATES, None)["ad"]
    assert table.size >= 10_000
    quantiles = np.quantile(table, [0.90, 0.95, 0.975, 0.99])
    # Monte Carlo error of these quantiles at 10,000 replicates is 0.005-0.015.
    np.testing.assert_allclose(quantiles, PUBLISHED_AD[name], rtol=0.04)
