"""Families fitted to the survivors of magnitude pruning: likelihoods truncated to |x| >= c.

Magnitude pruning sets every weight with |w| below a threshold to zero. The zeros are a point mass
(``fitting.atoms``); the survivors follow the original law *truncated* to |x| >= c, so an ordinary
fit to them sees a law with a hole in the middle and degenerates (Student-t df 0.41 at 70%
pruning). Here every family is fitted by maximum likelihood to the truncated density

    f(x; theta) / (1 - F(c; theta) + F(-c; theta)),     |x| >= c,

with c the smallest surviving magnitude (the maximum-likelihood estimate of a truncation point).
The optimizer (L-BFGS-B on loc, log scale and log shape) runs on evenly spaced order statistics
of large samples first, then on every value. A 16-bit tensor's survivors (``fit_pruned_counted``,
and ``fit_pruned`` wherever ties at least halve the values) are fitted as runs: each distinct
value once, its log-density weighted by its count, which is the same likelihood in O(distinct
values) and the same fit on either path. What is reported, and what is not:

* loc, scale, shape: the parameters of the law before pruning (scipy's parameterization);
* loglik, AIC, BIC: the truncated likelihood of the survivors plus the point mass of the zeros,
  the same atom term for every family, so the comparisons are those of the truncated fits;
* ks_stat: D between the survivors and the fitted truncated law (the effect size);
* no KS/AD p-value and no shape interval: the shipped null tables and the Wald interval are for
  untruncated fits, and a bootstrap that refits truncated laws is too slow to run per layer. The
  layer's adequacy is then "untested", which is what it is.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import optimize

from .atoms import Atoms
from .compare import compare_pair, llr_moments, pretest_overlaps
from .descriptives import describe, histogram_sorted
from .families import get_family
from .families.base import dot, strided_quantiles
from .guard import NOT_FITTED_FLAG, failed_row
from .ks import ks_statistic_sorted
from .result import TensorFit
from .runs import SortedRuns, one_form

_COARSE = 50_000  # order statistics behind the first optimization of a large sample
def _kept_mass(fam, params: tuple[float, ...], c: float) -> float:
    """1 - P(-c < X < c): the probability a draw from the family survives pruning at c."""
    inside = float(fam.cdf(np.array([c]), *params)[0] - fam.cdf(np.array([-c]), *params)[0])
    return max(1.0 - inside, 1e-300)


def _unpack(theta: np.ndarray) -> tuple[float, ...]:
    """(loc, log scale, log shapes...) -> (loc, scale, shapes...)."""
    return (float(theta[0]), *(math.exp(v) for v in theta[1:]))


class _Sample:
    """Sorted float64 points, each occurring once (``counts`` None) or ``counts`` times."""

    def __init__(self, points: np.ndarray, counts: np.ndarray | None = None) -> None:
        self.points, self.counts = points, counts
        self.weights = None if counts is None else counts.astype(np.float64)
        self.n = int(points.size if counts is None else counts.sum())

    def total(self, v: np.ndarray) -> float:
        """Sum of ``v`` (one entry per point) over the sample written out."""
        return float(np.sum(v)) if self.weights is None else dot(self.weights, v)

    def strided(self, m: int) -> _Sample:
        """About ``m`` evenly spaced order statistics (``strided_quantiles``), each once."""
        if self.counts is None:
            return _Sample(strided_quantiles(self.points[np.newaxis, :], m)[0])
        step = self.n // m
        return _Sample(SortedRuns(self.points, self.counts)[np.arange(step // 2, self.n, step)])


def _negloglik(theta: np.ndarray, fam, u: _Sample, c: float) -> float:
    params = _unpack(theta)
    with np.errstate(all="ignore"):
        ll = u.total(fam.logpdf(u.points, *params)) - u.n * math.log(_kept_mass(fam, params, c))
    return -ll if math.isfinite(ll) else 1e300


def _maximize(fam, u: _Sample, c: float, starts: list[np.ndarray]) -> np.ndarray:
    """Best L-BFGS-B optimum of the truncated likelihood over the given starts."""
    top = max(abs(float(u.points[0])), abs(float(u.points[-1])))  # sorted: max |u|
    bounds = [(None, None), (math.log(1e-3 * c), math.log(1e3 * max(c, top)))]
    bounds += [(math.log(lo), math.log(hi)) for lo, hi in fam.shape_bounds]
    best, best_value = starts[0], math.inf
    for start in starts:
        res = optimize.minimize(_negloglik, start, args=(fam, u, c), method="L-BFGS-B",
                                bounds=bounds)
        if res.fun < best_value:
            best, best_value = res.x, float(res.fun)
    return best


def fit_family_truncated(name: str, u: np.ndarray, c: float, counts: np.ndarray | None = None
                         ) -> tuple[tuple[float, ...], float]:
    """(parameters, loglik) of one family fitted to sorted ``u`` (all |u| >= c), truncated to
    |x| >= c, by a generic optimizer over (loc, log scale, log shapes) within the family's
    ``shape_bounds``. With ``counts``, ``u`` are distinct float64 values and the sample holds
    each that many times (the counted path): the fit of ``np.repeat(u, counts)``."""
    fam = get_family(name)
    if len(fam.shape_bounds) != len(fam.shape_names):
        raise ValueError(f"{fam.label} declares no shape bounds for a truncated fit")
    sample = _Sample(u, counts)
    rms = math.sqrt(sample.total(u * u) / sample.n)
    shapes0 = [math.log(s) for s in fam.shape_start]
    # From the survivors' own spread and from the threshold: 70% pruning leaves a scale near c,
    # 5% pruning one near the survivors' spread.
    starts = [np.array([0.0, math.log(s), *shapes0]) for s in (rms, c, 0.5 * (rms + c))]
    # Order statistics speed up a start on many points; runs of ties (the counted path: at most
    # 65,536 distinct values) are already fewer than they would be.
    coarse = sample.strided(_COARSE) if sample.points.size > 2 * _COARSE else sample
    theta = _maximize(fam, coarse, c, starts)
    if coarse is not sample:
        theta = _maximize(fam, sample, c, [theta])
    return _unpack(theta), -_negloglik(theta, fam, sample, c)


def fit_pruned(xs: np.ndarray, names: list[str], atoms: Atoms, base: dict, bins: int) -> TensorFit:
    """A ``TensorFit`` of a magnitude-pruned tensor: truncated fits of the survivors ``xs``
    (sorted, the zeros already cut out) with the zeros as a point mass (module docstring)."""
    return _fit_pruned(*one_form(xs, None), names, atoms, base, bins)


def fit_pruned_counted(values: np.ndarray, counts: np.ndarray, names: list[str], atoms: Atoms,
                       base: dict, bins: int) -> TensorFit:
    """``fit_pruned`` of the survivors given as distinct ``values`` (sorted, float64, data units)
    and their ``counts`` (the counted path): the same fits as ``fit_pruned`` of
    ``np.repeat(values, counts)``, with likelihoods, moments, D and histogram weighted by the
    counts, in O(distinct values)."""
    return _fit_pruned(*one_form(values, np.asarray(counts, dtype=np.int64)), names, atoms, base,
                       bins)


def _fit_pruned(xs: np.ndarray, counts: np.ndarray | None, names: list[str], atoms: Atoms,
                base: dict, bins: int) -> TensorFit:
    """``fit_pruned`` of sorted survivors ``xs``, each occurring once or, with ``counts``, that
    many times."""
    c_raw = float(atoms.pruned_c)
    n = int(xs.size if counts is None else counts.sum())
    square = np.square(xs, dtype=np.float64)
    unit = math.sqrt((float(np.sum(square)) if counts is None
                      else dot(counts.astype(np.float64), square)) / n)
    del square
    u = xs.astype(np.float64) / unit  # fits are equivariant under scaling; work near unit scale
    c = c_raw / unit
    note = (f"{atoms.describe()}: every family is fitted to the survivors truncated to "
            f"|w| >= {c_raw:.4g}; no KS p-value or shape interval for truncated fits")
    rows, logpdfs = [], {}
    skipped = [name for name in names if not get_family(name).truncated_fit]
    names = [name for name in names if name not in skipped]
    for name in names:
        fam = get_family(name)
        params, ll = fit_family_truncated(name, u, c, counts)
        loc, scale, shapes = params[0], params[1], params[2:]
        log_kept = math.log(_kept_mass(fam, params, c))
        logpdfs[name] = lambda v, out, f=fam, p=params, k=log_kept: f.log_kernel(v, out, *p) - k

        def cdf(v, f=fam, p=params, k=math.exp(log_kept)):
            below = f.cdf(np.array([-c]), *p)[0]
            inside = f.cdf(np.array([c]), *p)[0] - below
            return np.where(v < 0, f.cdf(v, *p), f.cdf(v, *p) - inside) / k

        k_params = fam.n_params
        ll_raw = ll - n * math.log(unit)
        rows.append({
            "family": name, "n": n, "loc": loc * unit, "scale": scale * unit,
            "shape": shapes[0] if shapes else float("nan"),
            "params": dict(zip(fam.param_names, (loc * unit, scale * unit, *shapes), strict=True)),
            "shape_ci_low": float("nan"), "shape_ci_high": float("nan"),
            "shape_ci_method": "omitted" if fam.shape_name else "",
            "loglik": ll_raw, "loglik_per_weight": ll_raw / n, "aic": 2 * k_params - 2 * ll_raw,
            "bic": k_params * math.log(n) - 2 * ll_raw,
            "ks_stat": ks_statistic_sorted(u, cdf, weights=counts),
            "ks_pvalue": float("nan"), "ks_pvalue_naive": float("nan"), "ks_n": 0,
            "ks_stat_sub": float("nan"), "n_params": k_params, "flags": note,
        })
    totals = {r["family"]: r["loglik"] for r in rows}
    pairs = list(itertools.combinations(names, 2))
    moments = llr_moments(u, logpdfs, pairs, weights=counts)
    comparisons = [compare_pair(a, b, n, *moments[(a, b)], totals[a], totals[b]) for a, b in pairs]
    pretest_overlaps(comparisons, totals)
    described = describe(u, weights=counts)
    described.update(mean=described["mean"] * unit, std=described["std"] * unit,
                     min=float(xs[0]), max=float(xs[-1]))
    for row in rows:  # the row flag already says it all; annotate adds the mixed likelihood
        row["flags"] = ""
    atoms.annotate(rows, described)
    for row in rows:
        row["flags"] = note
    rows += [failed_row(name, n, f"{get_family(name).label} has no truncated fit for pruned tensors",
                        flag=NOT_FITTED_FLAG) for name in skipped]
    histogram = histogram_sorted(u, bins, weights=counts)
    base = dict(base, n=atoms.n_total)
    result = TensorFit.fitted(rows=rows, comparisons=comparisons, descriptives=described,
                              histogram=(histogram[0], histogram[1] * unit), **base)
    result.atoms = atoms.summary()
    return result
