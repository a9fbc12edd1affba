"""Does any family fit at all? An absolute adequacy verdict per layer, and honest intervals.

Ranking families (AIC, BIC, Vuong) says which misfits least, never whether the best one fits. A layer
where *no family fits* must say so instead of reporting the winner's shape parameter as a finding.

The verdict judges the best family by BIC on two misfit measures, each an effect size that does
not grow with n, each paired with its valid (parametric-bootstrap) p-value:

* KS distance ``D`` on all values (``ks_stat``) with ``ks_pvalue``;
* Anderson-Darling, which weights the tails, as ``A^2 / n`` (``ad_stat`` divided by the number of
  values it was computed on; the weighted Cramer-von Mises distance between the empirical and the
  fitted CDF, so a sample-size-free effect) with ``ad_pvalue``.

"No family fits" when, for either measure, the effect is at least its threshold AND its p-value is
below ``ALPHA``, for the best family and every other one (at small n BIC may pick a wrong family
while the right one fits: that is a wrong pick, reported as "fits approximately", not a misfit). The effect alone would flag small layers by chance; the p-value alone flags every
big layer (with millions of weights every test rejects every family).

Thresholds (the only place they are defined):

* ``D_MIN = 0.05``. The null D of a fitted family at the KS subsample size (5,000) is about
  0.9 / sqrt(5000) = 0.013 at 5% and 0.015 at 1%, so D >= 0.05 is over three times what fitting
  noise gives there, and on all values of a big tensor the noise is smaller still. The best family
  of trained ResNets has D = 0.01-0.03; the half-trained layers that prompted this have D 0.09-0.37;
  the threshold sits between with a margin on both sides.
* ``AD_MIN = 0.006`` per value. For the misfits seen here A^2/n is about 2.5 D^2 (a Gaussian fitted
  to Laplace data: D 0.063, A^2/n 0.0098; to t(5) data: D 0.038, A^2/n 0.0041), so 0.006 matches
  D = 0.05 for a misfit of the bulk and catches a misfit concentrated in the tails that D misses.
  The null A^2 of a fitted family is about 0.5 (99%: about 1.1), i.e. 2e-4 per value at 5,000.
* ``ALPHA = 0.01``: a layer is called misfit only on clear evidence.

When no family fits, a Wald interval of t's df or gennorm's beta from the observed information
assumes the family is true and is not reported. The sandwich (robust) interval replaces it: it
covers the parameter of the family's best approximation to the data (the Kullback-Leibler
projection), whatever the data's law; see :func:`robust_log_shape_se`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from .families import get_family, weighted

D_MIN = 0.05
AD_MIN = 0.006
ALPHA = 0.01
THRESHOLDS = {"d_min": D_MIN, "ad_per_value_min": AD_MIN, "alpha": ALPHA}
# The sandwich's expectations are taken over at most this many evenly spaced order statistics of
# the fitted values (a deterministic quantile sample of the data's law, no seed): a fixed cost per
# layer, and a standard error that matches the all-values one far within its own precision.
ROBUST_SAMPLE = 1 << 18
_Z95 = stats.norm.ppf(0.975)
_H = 1e-4  # step of the central differences of the mean score (error O(h^2) = 1e-8, relative)


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def _ad_per_value(row: Mapping[str, Any]) -> float:
    """A^2 divided by the number of values it was computed on (NaN when A^2 is not there)."""
    a2 = _num(row.get("ad_stat"))
    n = _num(row.get("ad_n") or row.get("ks_n"))
    return a2 / n if n > 0 else float("nan")


def misfit_reasons(row: Mapping[str, Any]) -> list[str]:
    """Reasons why one family's fit is beyond the thresholds (empty: it is not)."""
    reasons = []
    d, p_ks = _num(row.get("ks_stat")), _num(row.get("ks_pvalue"))
    if d >= D_MIN and p_ks < ALPHA:
        reasons.append(f"KS D {d:.3g} >= {D_MIN:g} (p {p_ks:.2g} < {ALPHA:g})")
    ad, p_ad = _ad_per_value(row), _num(row.get("ad_pvalue"))
    if ad >= AD_MIN and p_ad < ALPHA:
        reasons.append(f"Anderson-Darling A^2/n {ad:.3g} >= {AD_MIN:g} (p {p_ad:.2g} < {ALPHA:g})")
    return reasons


def assess(rows: list[dict[str, Any]], best: str | None) -> dict[str, Any]:
    """The adequacy entries of a layer's verdict, judged on the best family ``best`` (by BIC).

    Returns
    -------
    dict
        ``adequate`` (bool), ``adequacy`` ("fits", "fits approximately": a misfit is detectable
        but below the thresholds, "no family fits", or "untested": no valid p-value),
        ``adequacy_reason`` (one sentence with the numbers) and ``adequacy_thresholds``.
    """
    from .families import family_label

    row = next((r for r in rows if r.get("family") == best), None)
    out: dict[str, Any] = {"adequate": True, "adequacy": "untested", "adequacy_reason": "",
                           "adequacy_thresholds": dict(THRESHOLDS)}
    if row is None:
        return out
    label = family_label(best)
    d, p_ks = _num(row.get("ks_stat")), _num(row.get("ks_pvalue"))
    ad, p_ad = _ad_per_value(row), _num(row.get("ad_pvalue"))
    measured = f"KS D {d:.3g} (p {p_ks:.2g})"
    if math.isfinite(ad):
        measured += f", A^2/n {ad:.3g} (p {p_ad:.2g})"
    reasons = misfit_reasons(row)
    # Every family must misfit: at small n BIC sometimes picks a wrong family while the true one
    # fits, and that is a wrong choice, not a layer that no family describes.
    fitting = [r["family"] for r in rows if not misfit_reasons(r)]
    if reasons and not fitting:
        out.update(adequate=False, adequacy="no family fits",
                   adequacy_reason=f"even the best family, {label}, misfits: " + "; ".join(reasons))
    elif reasons:
        others = ", ".join(family_label(f) for f in fitting)
        out.update(adequacy="fits approximately",
                   adequacy_reason=f"{label} (best by BIC) misfits: " + "; ".join(reasons)
                   + f"; within the thresholds: {others}")
    elif not (math.isfinite(p_ks) or math.isfinite(p_ad)):
        out["adequacy_reason"] = f"{label}: {measured}; no valid p-value"
    elif min(p for p in (p_ks, p_ad) if math.isfinite(p)) < ALPHA:
        out.update(adequacy="fits approximately",
                   adequacy_reason=f"{label}: misfit detectable but small, {measured}")
    else:
        out.update(adequacy="fits", adequacy_reason=f"{label}: {measured}")
    return out


# ---------------------------------------------------------------- sandwich (robust) intervals
def robust_log_shape_se(family: str, z_sorted: np.ndarray, loc: float, scale: float, shape: float,
                        n: int | None = None, weights: np.ndarray | None = None) -> float:
    """Sandwich standard error of log(shape) for a fit of ``family`` (one with analytic
    ``Family.shape_scores``; NaN for the others).

    ``V = A^-1 B A^-1 / n`` in (log scale, log shape), with ``B`` the covariance of the per-value
    scores (analytic, ``Family.shape_scores``) and ``A`` minus the derivative of the mean score (central
    differences of the analytic scores, error O(1e-8)). Both are expectations over the data's own
    law, estimated on up to ``ROBUST_SAMPLE`` evenly spaced order statistics of ``z_sorted``, and
    ``n`` (default: its length) is the number of values the fit used. Location is held at its
    estimate: both families are symmetric, so their information matrix separates location from
    (scale, shape), and gennorm's location score is not square-integrable below beta = 1.
    Under a correct model ``A = B`` and this equals the model-based (Wald) standard error.
    NaN where it is not defined (a shape at its bound, a singular ``A``). ``weights``: how often
    each value of ``z_sorted`` occurs (the counted path); the order statistics are then the
    multiset's.
    """
    cum = None if weights is None else weighted.positions(np.asarray(weights))
    size = z_sorted.size if cum is None else int(cum[-1])
    n = int(n if n is not None else size)
    scores = get_family(family).shape_scores
    if not (math.isfinite(loc) and 0 < scale < math.inf and 0 < shape < math.inf and n > 0):
        return float("nan")  # a failed fit has no interval
    step = max(1, size // ROBUST_SAMPLE)
    if cum is None:
        z = z_sorted[step // 2::step] - loc
    else:
        z = weighted.order_stat(z_sorted, cum, np.arange(step // 2, size, step)) - loc
    log_params = np.array([math.log(scale), math.log(shape)])

    def mean_score(theta: np.ndarray) -> np.ndarray:
        return scores(z, math.exp(theta[0]), math.exp(theta[1])).mean(axis=0)

    try:
        b = np.cov(scores(z, scale, shape), rowvar=False)
    except NotImplementedError:  # a family without analytic scores has no sandwich interval
        return float("nan")
    a = np.empty((2, 2))
    for j in range(2):
        e = np.zeros(2)
        e[j] = _H
        a[:, j] = -(mean_score(log_params + e) - mean_score(log_params - e)) / (2 * _H)
    a = 0.5 * (a + a.T)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    try:
        a_inv = np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return float("nan")
    var = float((a_inv @ b @ a_inv)[1, 1]) / n
    return math.sqrt(var) if var > 0 and math.isfinite(var) else float("nan")


def interval(shape: float, log_se: float) -> tuple[float, float]:
    """95% interval on log(shape), shape * exp(±1.96 se), without overflow (NaN if se is NaN)."""
    if not (math.isfinite(log_se) and math.isfinite(shape) and shape > 0):
        return float("nan"), float("nan")
    with np.errstate(over="ignore", under="ignore"):
        return (float(shape * np.exp(-_Z95 * log_se)), float(shape * np.exp(_Z95 * log_se)))


def honest_intervals(rows: list[dict[str, Any]], verdict: Mapping[str, Any], z_sorted: np.ndarray,
                     shift: float = 0.0, unit: float = 1.0,
                     weights: np.ndarray | None = None) -> None:
    """Set every row's ``shape_ci_method``; where no family fits, replace the Wald intervals.

    ``z_sorted`` are the fitted values standardized as ``(x - shift) / unit``, the rows' loc and
    scale are in the data's units. An adequate layer keeps its Wald interval ("wald"). Otherwise
    each shape family gets the sandwich interval ("sandwich"), or none with the reason where that
    is undefined ("omitted").
    """
    adequate = bool(verdict.get("adequate", True))
    for row in rows:
        family = row.get("family")
        if not get_family(family).shape_names:
            row["shape_ci_method"] = ""
            continue
        if adequate:
            row["shape_ci_method"] = "wald"
            continue
        loc, scale, shape = (row["loc"] - shift) / unit, row["scale"] / unit, row["shape"]
        flags = [f for f in str(row.get("flags") or "").split("; ") if f]
        se = float("nan")
        if not any("at_bound" in f or "at_cap" in f for f in flags):
            se = robust_log_shape_se(family, z_sorted, loc, scale, shape, weights=weights)
        row["shape_ci_low"], row["shape_ci_high"] = interval(shape, se)
        if math.isfinite(se):
            row["shape_ci_method"] = "sandwich"
            flags.append("shape_ci_sandwich: no family fits, so the interval is the robust "
                         "(sandwich) one for the best approximation, not the Wald one")
        else:
            row["shape_ci_method"] = "omitted"
            flags.append("shape_ci_omitted: no family fits, and the robust interval is undefined "
                         "for this fit (shape at its bound, or no fit)")
        row["flags"] = "; ".join(flags)
