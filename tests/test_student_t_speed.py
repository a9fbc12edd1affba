"""The Student-t fit lands on the maximum of the likelihood, checked by a reference that shares no
code with it: the score in extended precision (``np.longdouble``) and scipy's log-density.

The one-row fitter (``student_t_one``: compressed start, one pass over the data, a last Newton
step taken analytically) must return the maximum to within rounding, so that every path to it
(counted or expanded, with or without a start) gives the same numbers. It fits every row longer
than 32,768 values, every counted multiset of more values, and every row given a start (the KS
subsample's refit); shorter rows without a start keep the batched ascent (the shipped null tables
were simulated with it), which stops within ~1e-7 of the maximum. The certificate: the undamped
Newton step from the fit, computed from the reference score and its finite-difference Jacobian,
predicts a gain (the Newton decrement) below 1e-19 of |loglik|.
"""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np
import pytest
from scipy import optimize, special, stats

from weightstats.fitting.families import FAMILIES
from weightstats.fitting.standardize import robust_center_spread

T = FAMILIES["t"]
DEC_REL = 1e-19  # certified: the predicted remaining gain, relative to |loglik|
SAME_REL = 1e-10  # two paths to the same maximum


def _t(df):
    return lambda rng, n: rng.standard_t(df, n)


def _zeros(rng, n):
    """Pruned weights: 5% exact zeros in a t(4) (few enough that the likelihood stays bounded as
    the scale shrinks onto the atom: 0.05 < (1 - 0.05) * DF_MIN)."""
    x = rng.standard_t(4, n)
    x[rng.random(n) < 0.05] = 0.0
    return x


def _channels(rng, n):
    """Per-channel-scaled t(6): 64 channels, log-normal scales."""
    return rng.standard_t(6, n) * np.exp(0.5 * rng.standard_normal(64))[np.arange(n) % 64]


DRAWS = {
    "t1": _t(1.0), "t2.5": _t(2.5), "t4": _t(4.0), "t6": _t(6.0), "t30": _t(30.0),
    "t300": _t(300.0), "gauss": lambda rng, n: rng.standard_normal(n),
    "skew": lambda rng, n: rng.gamma(2.0, 1.0, n),
    "ties": lambda rng, n: np.round(rng.standard_t(5, n), 1),
    "zeros": _zeros, "channels": _channels,
}


@functools.cache
def standardized(kind: str, n: int) -> np.ndarray:
    """Sorted draws standardized as ``fit_tensor`` does (median 0, robust spread 1)."""
    x = np.sort(DRAWS[kind](np.random.default_rng([29, list(DRAWS).index(kind), n]), n))
    x /= np.abs(x).max()
    center, spread = robust_center_spread(x)
    return (x - center) / spread


def _score(x: np.ndarray, w: np.ndarray | None, loc, scale, df) -> np.ndarray:
    """d loglik / d(loc, scale, df) in extended precision (the textbook t score)."""
    x = x.astype(np.longdouble)
    loc, scale, df = np.longdouble(loc), np.longdouble(scale), np.longdouble(df)
    z = (x - loc) / scale
    q = z * z
    r = (df + 1) / (df + q)
    const = special.digamma((float(df) + 1) / 2) - special.digamma(float(df) / 2) - 1.0 / float(df)
    terms = np.stack([r * z / scale, (r * q - 1) / scale,
                      0.5 * (np.longdouble(const) - np.log1p(q / df) + r * q / df)])
    return terms.sum(axis=1) if w is None else terms @ w.astype(np.longdouble)


def certificate(x, w, fit) -> tuple[float, np.ndarray]:
    """The Newton decrement relative to |loglik| and the Newton step relative to (scale, scale, df),
    both from the reference score; df is held where the fit pins it at a bound."""
    p = np.array([fit.loc[0], fit.scale[0], fit.shape[0]])
    free = 2 if fit.at_bound[0] else 3
    g = _score(x, w, *p)[:free]
    jac = np.empty((free, free))
    for j in range(free):
        h = 1e-4 * (p[1] if j < 2 else p[2])
        up, down = p.copy(), p.copy()
        up[j] += h
        down[j] -= h
        jac[:, j] = ((_score(x, w, *up) - _score(x, w, *down))[:free] / (2 * h)).astype(float)
    step = np.linalg.solve(-0.5 * (jac + jac.T), g.astype(float))
    dec = 0.5 * float(step @ g.astype(float))
    return dec / abs(float(fit.loglik[0])), step / np.array([p[1], p[1], p[2]])[:free]


def scipy_loglik(x, w, fit) -> float:
    ll = stats.t.logpdf(x, fit.shape[0], fit.loc[0], fit.scale[0])
    return float(ll.sum() if w is None else ll @ w)


CASES = [(kind, n) for kind in DRAWS for n in (50, 3000, 100_000)] + [
    ("t2.5", 2_000_000), ("t6", 2_000_000), ("gauss", 2_000_000), ("channels", 1_000_000)]


def nudged(fit, by: float = 0.01):
    """A start near ``fit``: loc moved by ``by``, scale and df scaled by 1 + 4·by and 1 + 10·by."""
    return type(fit)(fit.loc + by, fit.scale * (1 + 4 * by), fit.shape * (1 + 10 * by), fit.loglik,
                     fit.at_bound, fit.log_shape_se, fit.converged)


SHORT = 2 * 16384  # rows up to this length are fitted by the batched ascent unless given a start


@pytest.mark.parametrize(("kind", "n"), CASES)
def test_fit_is_the_maximum_to_rounding(kind, n):
    x = standardized(kind, n)
    fit = T.fit(x)
    if n <= SHORT:
        # As the KS subsample is refitted: from a nearby fit (a start that already meets the
        # batched ascent's criterion would be kept as it is).
        fit = T.fit_rows(x[np.newaxis, :], start=nudged(fit))
    assert fit.converged[0]
    dec, step = certificate(x, None, fit)
    assert abs(dec) <= DEC_REL, (dec, step)
    assert float(fit.loglik[0]) == pytest.approx(scipy_loglik(x, None, fit), rel=1e-9)


@pytest.mark.parametrize("kind", ["t1", "t4", "t30", "skew", "zeros", "ties"])
def test_scipy_polish_finds_nothing_better(kind):
    """Nelder-Mead on scipy's log-density, started at the fit, gains nothing beyond rounding."""
    x = standardized(kind, 3000)
    fit = T.fit(x)
    ll = scipy_loglik(x, None, fit)
    start = [fit.loc[0], np.log(fit.scale[0]), np.log(min(fit.shape[0], 1e6))]
    res = optimize.minimize(
        lambda p: -stats.t.logpdf(x, np.exp(p[2]), p[0], np.exp(p[1])).sum(), start,
        method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "initial_simplex":
                                       start + 1e-4 * np.vstack([np.zeros(3), np.eye(3)])})
    assert -res.fun <= ll + 1e-12 * abs(ll)


def _counted(kind: str, n: int):
    values, counts = np.unique(standardized(kind, n).astype(ml_dtypes.bfloat16).astype(float),
                               return_counts=True)
    return values, counts.astype(float)


@pytest.mark.parametrize("kind", ["t2.5", "t6", "gauss", "skew", "zeros", "channels"])
def test_counted_and_expanded_meet_at_the_same_point(kind):
    """A bfloat16 multiset's weighted fit and the fit of the sample it stands for: no longer the
    same path (the expanded row starts from its compression), the same maximum."""
    values, counts = _counted(kind, 400_000)
    got = T.fit_weighted(values, counts)
    want = T.fit(np.repeat(values, counts.astype(np.int64)))
    dec, _ = certificate(values, counts, got)
    assert abs(dec) <= DEC_REL
    for a, b in [(got.loc, want.loc), (got.scale, want.scale)]:
        assert float(a[0]) == pytest.approx(float(b[0]), rel=SAME_REL, abs=SAME_REL)
    if not got.at_bound[0]:
        # Near the Gaussian limit (gauss: df ~1e3) the likelihood is so flat in df that rounding
        # moves the maximum by ~1e-9 of df.
        assert float(got.shape[0]) == pytest.approx(float(want.shape[0]), rel=100 * SAME_REL)
    assert float(got.loglik[0]) == pytest.approx(float(want.loglik[0]), rel=1e-13)
    assert float(got.log_shape_se[0]) == pytest.approx(float(want.log_shape_se[0]), rel=1e-6,
                                                       nan_ok=True)


@pytest.mark.parametrize("n", [5000, 40_000])
def test_paths_agree_start_batch_and_alone(n):
    """With or without a start, alone or in a batch of rows: the same maximum, to rounding where
    both fits are the one-row ascent's and to the batched ascent's stopping point (~1e-7)
    elsewhere; a short row alone is fitted exactly as within a batch."""
    rows = np.stack([standardized(kind, n) for kind in ("t4", "t6", "skew")])
    batch = T.fit_rows(rows)
    for r in range(rows.shape[0]):
        alone = T.fit_rows(rows[r:r + 1])
        started = T.fit_rows(rows[r:r + 1], start=nudged(alone, 0.05))
        assert abs(certificate(rows[r], None, started)[0]) <= DEC_REL
        pairs = [(started, 0, 1e-6 if n <= SHORT else SAME_REL), (batch, r, 1e-6)]
        if n <= SHORT:
            assert float(batch.loglik[r]) == float(alone.loglik[0])
            assert float(batch.shape[r]) == float(alone.shape[0])
        for other, i, rel in pairs:
            assert float(other.loc[i]) == pytest.approx(float(alone.loc[0]), abs=rel)
            assert float(other.scale[i]) == pytest.approx(float(alone.scale[0]), rel=rel)
            assert float(other.shape[i]) == pytest.approx(float(alone.shape[0]), rel=10 * rel)


def test_same_input_same_numbers():
    x = standardized("channels", 100_000)
    a, b = T.fit(x), T.fit(x.copy())
    values, counts = _counted("t6", 50_000)
    c, d = T.fit_weighted(values, counts), T.fit_weighted(values.copy(), counts.copy())
    for one, two in ((a, b), (c, d)):
        assert [f.tobytes() for f in (one.loc, one.scale, one.shape, one.loglik, one.log_shape_se)] \
            == [f.tobytes() for f in (two.loc, two.scale, two.shape, two.loglik, two.log_shape_se)]


def test_a_stalled_fit_is_no_worse_than_the_batched_ascent():
    """30% exact zeros: the likelihood grows without bound as the scale shrinks onto the atom, so
    no ascent converges and where each stops depends on its path. The one-row ascent's stopping
    point is compared with the batched ascent's (and the rescaled refit's), and the best kept."""
    from weightstats.fitting.families.student_t import _fit_batched

    rng = np.random.default_rng(5)
    x = rng.standard_t(4, 100_000)
    x[rng.random(x.size) < 0.3] = 0.0
    x = np.sort(x)
    fit = T.fit(x)
    assert not fit.converged[0]
    assert float(fit.loglik[0]) >= float(_fit_batched(x[np.newaxis, :], None, None)[1][0])


@pytest.mark.parametrize("unit", [1e-200, 1e150])
def test_long_rows_far_from_unit_scale(unit):
    """A scale of 1e-200 squares to 0 in Python floats (the one-row fitter's 3x3 algebra): the row
    goes to the batched ascent's rescaled refit, and the fit is the unit-scale fit, rescaled."""
    x = standardized("t4", 60_000)
    fit, far = T.fit(x), T.fit(unit * x)
    assert far.converged[0]
    assert float(far.scale[0]) == pytest.approx(unit * float(fit.scale[0]), rel=1e-6)
    assert float(far.shape[0]) == pytest.approx(float(fit.shape[0]), rel=1e-5)
    assert float(far.loglik[0]) == pytest.approx(float(fit.loglik[0]) - x.size * np.log(unit),
                                                 rel=1e-9)
