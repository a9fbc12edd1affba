"""fit_tensor: every family fitted to one tensor, with KS tests, comparisons and a verdict."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from scipy import special, stats

from ..arrays import as_values, dtype_name, sorted_copy
from ..errors import OptionError
from .adequacy import honest_intervals
from .atomfit import grid_declined, grid_declined_counted, take_atoms, take_atoms_counted
from .channels import per_channel_view
from .compare import compare_pair, llr_moments, pretest_overlaps
from .counted import counted_values, raw_bits, stored_view, weighted_subsample
from .descriptives import describe, histogram_sorted
from .families import DEFAULT_FAMILIES, get_family
from .guard import guard_families
from .heterogeneity import median_and_mad_sorted, scale_heterogeneity
from .ks import ks_statistic_sorted
from .nulltables import (
    DEFAULT_REPLICATES,
    bootstrap_pvalues,
    position_subsample,
    sample_statistics,
    subsample_size,
)
from .result import TensorFit
from .standardize import robust_center_spread
from .truncated import fit_pruned, fit_pruned_counted

MIN_N = 30  # below this a three-parameter fit and its tests mean little
_SORT_NARROW_UP_TO = 1 << 23
_Z95 = stats.norm.ppf(0.975)


def _histogram(z: np.ndarray, shift: float, unit: float, lo: float, hi: float, bins: int,
               weights: np.ndarray | None = None):
    """Histogram of x = shift + unit * z, binned on z so that max - min cannot overflow."""
    counts, edges = histogram_sorted(z, bins, weights)
    edges = shift + unit * edges
    edges[0], edges[-1] = lo, hi  # exact range, free of the standardization's rounding
    return counts, edges


def _naive_ks_pvalue(d: float, n: int) -> float:
    """scipy's asymptotic KS p-value (``kstest(..., method="asymp")``), which wrongly treats the
    fitted parameters as known: kept only to show why it is not used. (The exact Kolmogorov
    distribution costs up to 0.2 s per call at n ~ 1e5, for a number that is invalid anyway.)"""
    return float(special.kolmogorov(d * math.sqrt(n)))  # kstwobign.sf without its dispatch


def _shape_interval(shape: float, se: float) -> tuple[float, float, str]:
    """Wald 95% interval of a positive shape parameter, built on log(shape): shape * exp(±z·se).

    A huge standard error (a t fit far out towards the Gaussian limit, where the likelihood is flat
    in df) would overflow ``math.exp``; such an upper limit is unbounded and reported as +inf with
    a flag, the lower one underflows to 0. NaN where the standard error is not defined.
    """
    if not (np.isfinite(se) and np.isfinite(shape)):
        return float("nan"), float("nan"), ""
    with np.errstate(over="ignore", under="ignore"):
        low = float(shape * np.exp(-_Z95 * se))
        high = float(shape * np.exp(_Z95 * se))
    return low, high, ("shape_ci_unbounded: the likelihood is nearly flat in the shape"
                       if not math.isfinite(high) else "")


def _to_numpy(x) -> tuple[np.ndarray, int]:
    """Native NumPy values of any tensor or array and the count of masked entries (now NaN).

    See :func:`weightstats.arrays.as_values`: float8/bfloat16 widen exactly, quantized tensors
    dequantize, sparse ones give their stored values, a meta tensor is an ``OptionError``.
    """
    return as_values(x)


def _validate(families: Sequence[str], ks_sample: int, ks_replicates: int, bins: int, *,
              x=None, seed: int = 0, channel_axis: int = 0, per_channel: bool = False,
              path: str = "auto") -> tuple[list[str], str]:
    """Check every argument with the package's one validator (:mod:`weightstats.options`)."""
    from ..options import (
        check_array,
        check_channel_axis,
        check_families,
        check_fit_numbers,
        check_flag,
        check_path,
    )

    names = list(check_families(families))
    check_fit_numbers(ks_sample=ks_sample, ks_replicates=ks_replicates, seed=seed, bins=bins)
    per_channel = check_flag(per_channel, "per_channel")
    check_array(x)
    ndim = len(x.shape) if hasattr(x, "shape") else int(np.ndim(x))
    check_channel_axis(channel_axis, ndim, per_channel)
    return names, check_path(path)


@guard_families  # a family whose fit raises is flagged; the layer never raises on valid data
def fit_tensor(x, families: Sequence[str] = DEFAULT_FAMILIES, *, seed: int = 0,
               ks_sample: int = 5000, ks_replicates: int = DEFAULT_REPLICATES, per_channel: bool = False,
               channel_axis: int = 0, bins: int = 200, grid: str = "", path: str = "auto") -> TensorFit:
    """Fit Gaussian, Laplace, Student-t and generalized normal distributions to a tensor's values.

    Parameters
    ----------
    x : array_like or torch.Tensor
        Any shape and float dtype (fp16/bf16/fp8/fp32/fp64) or integer dtype; flattened, math in
        float64. NaN and ±Inf are excluded and counted.
    families : str or sequence of str
        Families to fit (a comma list or a sequence; default: the registry's default families).
        Any spelling the registry knows (``"Gaussian"``, ``"student-t"``, ``"generalized
        normal"``), ``"all"`` for every registered family, a group (``"mixtures"``), or ``"+X"``
        for the defaults plus X; canonical names, each once, in the order given
        (:func:`weightstats.options.check_families`).
    seed : int
        Seeds the KS subsample; same input and seed give identical numbers.
    ks_sample : int
        Size of the random subsample on which the valid KS p-value is computed (the observed and the
        null D use the same size). With millions of weights every test rejects every family, so the
        p-value answers "is the misfit visible at this sample size?"; D on all values is the effect.
        The subsample is a simple random sample of the tensor (seeded): drawn by position in the
        stored values, or on the counted path from the multiset (multivariate hypergeometric).
        A tensor with fewer values uses the largest shipped size below its n. The Anderson-Darling
        A^2 (``ad_stat``) is computed on this same subsample and fit (all values would need the
        dear t/gennorm CDFs at every weight), with its own valid p-value from the same replicates.
    ks_replicates : int
        Parametric-bootstrap replicates behind the KS and Anderson-Darling null tables. The default
        (10,000) uses the shipped tables; any other count is simulated on first use and cached.
    per_channel : bool
        Remove each slice's own mean and scale along ``channel_axis`` (output channels) before
        pooling, which removes the heavy tails that mixing channels of different scales creates by
        itself: exact Gaussian scores, k - 2 per channel of k values (``fitting.channels``).
    bins : int
        Histogram bins stored with the result (for plots and report.json).
    grid : str
        Non-empty: the values lie on a quantization grid the atom test cannot see as one (a
        source's description, e.g. GGUF's per-block scales); declined as "quantized" with it.
    path : {"auto", "counted", "values"}
        How the values are read. A tensor of at most 16 bits per value (float16, bfloat16,
        float8, int8, int16) holds at most 65,536 distinct values: ``"counted"`` counts its bit
        patterns once and fits the (value, count) pairs, exactly and without a float copy of the
        tensor (``fitting.counted``); ``"values"`` sorts every value (the only path for wider
        dtypes and the per-channel view). ``"auto"`` counts where it can. The result's ``path``
        says which ran.

    Returns
    -------
    TensorFit
        ``.to_frame()`` has one row per family; ``.status`` is "ok" or says why nothing was fitted.
    """
    names, path = _validate(families, ks_sample, ks_replicates, bins, x=x, seed=seed,
                            channel_axis=channel_axis, per_channel=per_channel, path=path)
    options = {"families": names, "seed": int(seed), "ks_sample": int(ks_sample),
               "ks_replicates": int(ks_replicates), "per_channel": bool(per_channel), "bins": int(bins)}
    found = raw_bits(x) if path != "values" and not per_channel else None
    if found is None and path == "counted":
        raise OptionError("path='counted' needs a tensor of at most 16 bits per value (float16, "
                          "bfloat16, float8, int8, int16) read whole, not the per-channel view: "
                          "use path='auto' or 'values'")
    if found is not None:
        return _tagged(_fit_counted(x, *found, names, options, grid=grid), "counted")
    return _tagged(_fit_values(x, names, options, grid=grid, channel_axis=channel_axis), "values")


def _tagged(result: TensorFit, path: str) -> TensorFit:
    result.path = path
    return result


def _common(names: list[str], options: dict) -> dict:
    """The arguments every reading path passes on to :func:`_fit_continuous`."""
    return {"names": names, "bins": options["bins"], "seed": options["seed"],
            "ks_sample": options["ks_sample"], "ks_replicates": options["ks_replicates"]}


def _fit_counted(x, bits: np.ndarray, dtype: str, names: list[str], options: dict, *,
                 grid: str) -> TensorFit:
    """The counted path: the multiset of a <= 16-bit tensor's values (``fitting.counted``)."""
    counted = counted_values(bits, dtype)
    base = {"options": options, "shape_of_tensor": tuple(int(s) for s in bits.shape),
            "dtype": dtype}
    counts = {"n_nan": counted.n_nan, "n_posinf": counted.n_posinf, "n_neginf": counted.n_neginf}
    excluded = sum(counts.values())
    notes = [f"{excluded} non-finite value(s) excluded"] if excluded else []
    values, weights = counted.values, counted.counts
    declined = _check_size(values, counted.n, base, counts, notes)
    if declined is not None:
        return declined
    if grid:
        return grid_declined_counted(values, weights, grid, base)
    threshold = median_and_mad_sorted(values, weights)  # before atoms go: all finite values
    atoms, values, weights, declined = take_atoms_counted(values, weights, dtype, base, MIN_N)
    if declined is not None:
        return declined
    if atoms.pruned_c is not None:  # magnitude pruning: truncated fits of the survivors
        return fit_pruned_counted(values, weights, names, atoms, base, options["bins"])
    stored = stored_view(bits, dtype)
    return _fit_continuous(values.copy(), weights, None, atoms, base, (stored, threshold),
                           **_common(names, options))


def _fit_values(x, names: list[str], options: dict, *, grid: str, channel_axis: int) -> TensorFit:
    """The values path: every value, sorted (dtypes wider than 16 bits, the per-channel view)."""
    arr, n_masked = _to_numpy(x)
    per_channel = options["per_channel"]
    base = {"options": options, "shape_of_tensor": tuple(int(s) for s in arr.shape),
            "dtype": dtype_name(x, arr)}
    if arr.dtype.kind not in "fiu":
        return TensorFit.failed("unsupported_dtype",
                                f"cannot fit {arr.dtype} values; only real numbers", **base)
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    flat = arr.reshape(-1)
    n_nan = n_posinf = n_neginf = 0
    if n_masked or not np.isfinite(flat).all():  # one pass where all are finite, the usual case
        n_nan = int(np.isnan(flat).sum()) - n_masked  # masked entries arrive as NaN
        n_posinf = int(np.isposinf(flat).sum())
        n_neginf = int(np.isneginf(flat).sum())
    counts = {"n_nan": n_nan, "n_posinf": n_posinf, "n_neginf": n_neginf}
    notes = []
    if n_masked:
        counts["n_masked"] = n_masked
        notes.append(f"{n_masked} masked value(s) excluded")
    atoms = None  # point masses; the per-channel view finds them before its transform
    if per_channel and not grid:  # a declined grid reports the raw values' descriptives
        flat, channel_notes, atoms = per_channel_view(arr, channel_axis, base["dtype"], MIN_N)
        notes += channel_notes
    if n_nan + n_posinf + n_neginf + n_masked:
        flat = flat[np.isfinite(flat)]
        if n_nan + n_posinf + n_neginf:
            notes.append(f"{n_nan + n_posinf + n_neginf} non-finite value(s) excluded")
    if flat.size <= _SORT_NARROW_UP_TO:
        xs = sorted_copy(flat)  # sorting in the stored precision is faster and gives the same order
    else:  # a huge tensor: one float64 copy sorted in place, no second full-size array
        xs = flat.astype(np.float64)
        xs.sort()
    declined = _check_size(xs, xs.size, base, counts, notes)
    if declined is not None:
        return declined
    if grid:
        return grid_declined(xs, grid, base)
    # The per-channel view's values are not the stored tensor's: its threshold is pooled there.
    threshold = None if per_channel else median_and_mad_sorted(xs)
    atoms, xs, flat, declined = take_atoms(xs, flat, base["dtype"], atoms, base, MIN_N)
    if declined is not None:
        return declined
    if atoms.pruned_c is not None:  # magnitude pruning: truncated fits of the survivors
        return fit_pruned(xs, names, atoms, base, options["bins"])
    # xs is already our own sorted copy: standardized in place (a float32 one into its one
    # float64 copy), so one float64 copy is all we hold.
    return _fit_continuous(xs, None, flat, atoms, base,
                           (arr, threshold), **_common(names, options))


def _check_size(xs: np.ndarray, n: int, base: dict, counts: dict, notes: list[str]):
    """Record the counts and declines an empty, too small or constant sample (None: fit it)."""
    base.update(counts=counts, notes=notes, n=int(n))
    if n == 0:
        return TensorFit.failed("empty", "no finite values to fit", **base)
    if n < MIN_N:
        return TensorFit.failed("too_small", f"{n} values; at least {MIN_N} are needed", **base)
    if xs[0] == xs[-1]:
        return TensorFit.failed("constant", f"all {n} values equal {xs[0]:g}; nothing to fit", **base)
    return None


def _fit_continuous(z: np.ndarray, weights: np.ndarray | None, flat: np.ndarray | None, atoms,
                    base: dict, stored: tuple[np.ndarray, tuple[float, float] | None], *, names: list[str], bins: int, seed: int,
                    ks_sample: int, ks_replicates: int) -> TensorFit:
    """Every family fitted to the continuous values, with tests, comparisons and descriptives.

    ``z``: sorted values in data units, standardized here in place (the caller's own copy;
    a narrower float type is widened to float64 in the first step); ``weights``: how often each
    occurs (the counted path, values distinct) or None (each once, ``flat`` then holds them in
    storage order for the KS subsample). ``stored``: the tensor
    as stored and its centre and threshold (or None), for the scale-heterogeneity test.
    """
    n = z.size if weights is None else int(weights.sum())
    w = None if weights is None else weights.astype(np.float64)
    lo_x, hi_x = float(z[0]), float(z[-1])
    at_zero = slice(np.searchsorted(z, 0.0, "left"), np.searchsorted(z, 0.0, "right"))
    zeros = (at_zero.stop - at_zero.start) if weights is None else int(weights[at_zero].sum())

    # Fit standardized values. Every family is location-scale, so fits map back exactly; results
    # are equivariant under x -> a*x + b and extreme magnitudes (1e-300, 1e200) cannot overflow.
    top = max(abs(lo_x), abs(hi_x))
    if z.dtype == np.float64:
        z /= top
    else:  # widened and scaled in one pass: the same numbers as astype(float64), then / top
        z = np.divide(z, top, dtype=np.float64)
    # Median and interquartile range, not mean and std: outliers must not squeeze the bulk.
    center, spread = robust_center_spread(z, weights)
    z -= center
    z /= spread
    shift, unit, log_unit = top * center, top * spread, math.log(top) + math.log(spread)
    # Where exact zeros are stored (pruned weights); a fit that puts loc on them reports exactly 0,
    # not 0 plus rounding, which matters when a degenerate fit's scale is tinier than the rounding.
    z_of_zero = (0.0 / top - center) / spread if zeros else None

    m = subsample_size(n, int(ks_sample))
    if m == n:
        sub = z if weights is None else np.repeat(z, weights)
    elif weights is None:  # drawn by position in the stored (unsorted) values
        sub = position_subsample(flat, m, int(seed), top, center, spread)
    else:  # drawn from the multiset: the same law as positions, without reading them again
        sub = weighted_subsample(z, weights, m, int(seed))
    rows, logpdfs = [], {}
    for name in names:
        fam = get_family(name)
        fit = fam.fit(z) if w is None else fam.fit_weighted(z, w)
        zp = fam.theta(fit)
        loc = 0.0 if zp[0] == z_of_zero else shift + unit * zp[0]
        scale, shapes = unit * zp[1], zp[2:]  # shapes are scale-free: they map back unchanged
        shape = shapes[0] if shapes else float("nan")
        k = fam.n_params if fit.n_params is None else int(fit.n_params[0])
        ll = float(fit.loglik[0]) - n * log_unit
        # Pointwise log-densities up to the constant -log_unit (the same for all families).
        logpdfs[name] = lambda v, out, f=fam, p=zp: f.log_kernel(v, out, *p)
        d = ks_statistic_sorted(z, lambda v, f=fam, p=zp: f.cdf(v, *p), weights)
        # The fit on all values is an excellent start for the subsample's own fit.
        sfit = fam.fit_rows(sub[np.newaxis, :], start=fit)
        sp = fam.theta(sfit)
        # D and A^2 of the subsample, computed exactly as the null tables compute them.
        d_sub, a2_sub = sample_statistics(fam, sub, *sp)
        pvalues, p_note = bootstrap_pvalues(fam, m, d_sub, a2_sub, sp[2:], int(ks_replicates),
                                            seed=int(seed))
        flags = [fam.bound_flag(shape)] if fit.at_bound[0] else []
        if fit.converged is not None and not fit.converged[0]:
            flags.append("not_converged: the optimizer stopped short of a maximum")
        flags += [p_note] if p_note else []
        ci_low, ci_high, ci_note = _shape_interval(shape, float(fit.log_shape_se[0]))
        flags += [ci_note] if ci_note else []
        described_fit = fam.fit_note((loc, scale, *shapes))  # in the data's own units
        flags += [described_fit] if described_fit else []
        rows.append({
            "family": name, "n": n, "loc": loc, "scale": scale, "shape": shape,
            "params": dict(zip(fam.param_names, (loc, scale, *shapes), strict=True)),
            "shape_ci_low": ci_low, "shape_ci_high": ci_high,
            "loglik": ll, "loglik_per_weight": ll / n, "aic": 2 * k - 2 * ll,
            "bic": k * math.log(n) - 2 * ll, "ks_stat": d, "ks_pvalue": pvalues["ks_pvalue"],
            "ks_pvalue_se": pvalues["ks_pvalue_se"],
            "ks_pvalue_naive": _naive_ks_pvalue(d, n), "ks_n": m, "ks_stat_sub": d_sub,
            "ad_stat": a2_sub, "ad_pvalue": pvalues["ad_pvalue"],
            "ad_pvalue_se": pvalues["ad_pvalue_se"],
            "n_params": k, "flags": "; ".join(flags), "note": described_fit,
        })
    totals = {r["family"]: r["loglik"] for r in rows}
    pairs = list(itertools.combinations(names, 2))
    moments = llr_moments(z, logpdfs, pairs, weights)
    comparisons = [compare_pair(a, b, n, *moments[(a, b)], totals[a], totals[b]) for a, b in pairs]
    pretest_overlaps(comparisons, totals)  # t vs gennorm: Vuong's two-step for overlapping models
    described = describe(z, weights)  # standardized: map mean and std back; skewness and kurtosis are invariant
    described.update(mean=shift + unit * described["mean"], std=unit * described["std"], min=lo_x,
                     max=hi_x, zero_fraction=zeros / n)
    atoms.annotate(rows, described)
    base["n"] = atoms.n_total or n
    result = TensorFit.fitted(rows=rows, comparisons=comparisons, descriptives=described,
                              histogram=_histogram(z, shift, unit, lo_x, hi_x, int(bins), weights),
                              **base)
    result.atoms = atoms.summary() if atoms else {}
    result.heterogeneity = scale_heterogeneity(*stored)  # which axis do the scales differ along?
    honest_intervals(result.rows, result.verdict, z, shift, unit, weights)  # no Wald CI where no family fits
    return result
