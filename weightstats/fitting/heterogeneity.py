"""Where a tensor's heterogeneity lives: do slice scales differ along an axis beyond i.i.d. noise?

For each axis of a weight tensor in PyTorch's layout (output channel, input channel, kernel position:
all trailing axes of a convolution taken together), the values are split into the slices along that
axis and each slice gets a robust scale, ``q_i = median |w - M|`` (M: the tensor's median). If the
values were i.i.d., ``log q_i`` of a slice of ``s`` values would vary only by sampling noise, with
variance ``1 / (4 s g(q)^2 q^2)`` (the asymptotic variance of a sample median, through the delta
method), where ``g`` is the density of ``|w - M|`` at its median ``q``. That density is estimated from
the whole tensor by a quantile difference (Siddiqui's sparsity estimate), so nothing assumes a
family, and medians keep the statistic valid under the heaviest tails (a variance-based test such
as Bartlett's is not: its null depends on the kurtosis and fails for heavy-tailed weights).

Per axis this gives
* ``q_stat``: Cochran's Q, the sum of squared deviations of ``log q_i`` from their mean divided by
  the i.i.d. sampling variance; chi-square with ``k - 1`` degrees of freedom under i.i.d. values,
  ``pvalue`` from it;
* ``excess_sd``: the effect size, ``sqrt(max(0, V_obs - V_iid))``, the standard deviation of the
  slices' true log scales once sampling noise is taken out (0.1: scales differ by about 10%);
* ``i2``: the share of the observed spread that is not sampling noise, ``max(0, 1 - (k-1)/Q)``.

An axis "carries" heterogeneity when its p-value is below ``ALPHA`` and ``excess_sd`` is at least
``MIN_EXCESS_SD``; ``where`` names the axis with the largest effect among those. Slices with fewer
than ``MIN_SLICE`` values are skipped, because the median's asymptotic variance is not yet accurate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

ALPHA = 0.01  # p-value below which an axis's scale differences are called real
MIN_EXCESS_SD = 0.1  # SD of log scale beyond noise: slices' scales differ by about 10% or more
MIN_SLICE = 64  # values per slice for the median's asymptotic variance to hold
# Work bounds: the medians see about this many values per axis (evenly spaced), from at most this
# many slices, so the cost is bounded whatever the tensor's size (0.2 s of CPU for all 54 tensors of
# ResNet-50, a fifth of sorting them); the test stays valid because the null variance is that of the
# values actually used, and a scale difference of 10% stays easy to detect.
MAX_GATHER = 1 << 15
MAX_SLICES = 256
POOL = 1 << 16  # values behind the centre and the i.i.d. null variance
_SPARSITY_H = 0.05  # half-width (in probability) of the quantile difference that estimates g(q)
AXIS_NAMES = ("output channel", "input channel", "kernel position")


def _axes(shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, tensor axes) of each slicing: axis 0, axis 1, and all trailing axes together."""
    if len(shape) < 2:
        return []
    out = [(AXIS_NAMES[0], (0,)), (AXIS_NAMES[1], (1,))]
    if len(shape) > 2:
        out.append((AXIS_NAMES[2], tuple(range(2, len(shape)))))
    return out


def _order_stats(x: np.ndarray, probs: list[float]) -> list[float]:
    """Order statistics at the given probabilities by one partition (no full sort)."""
    ranks = [min(x.size - 1, int(p * x.size)) for p in probs]
    part = np.partition(x, ranks)
    return [float(part[r]) for r in ranks]


def _evenly(total: int, m: int) -> np.ndarray:
    """``m`` evenly spaced indices into ``range(total)``, each from the middle of its block (a
    systematic sample: representative of every part of the tensor, and cache-friendly to read)."""
    if m >= total:
        return np.arange(total)
    step = total // m
    return np.arange(m) * step + step // 2


def _gather(arr: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    """(slices, values) array: up to ``MAX_SLICES`` slices along ``dims``, each the same evenly
    spaced positions of the other axes, at most ``MAX_GATHER`` values in all (and at least
    ``2 * MIN_SLICE`` per slice where the slices have them).

    Every slice uses the same positions, so structure along the other axes cannot masquerade as a
    difference between slices; the null variance uses the number of values actually taken.
    """
    other = tuple(i for i in range(arr.ndim) if i not in dims)
    k_all = int(np.prod([arr.shape[i] for i in dims]))
    s_all = int(np.prod([arr.shape[i] for i in other]))
    k_idx = _evenly(k_all, MAX_SLICES)
    s_idx = _evenly(s_all, max(2 * MIN_SLICE, MAX_GATHER // k_idx.size))
    # Flat offsets (C order) of slice starts and of positions within a slice: one 1-D take.
    unit = np.cumprod((arr.shape[1:] + (1,))[::-1])[::-1]  # elements per step of each axis
    k_off = sum(i * unit[d] for d, i in zip(dims, np.unravel_index(
        k_idx, [arr.shape[d] for d in dims]), strict=True))
    s_off = sum(i * unit[d] for d, i in zip(other, np.unravel_index(
        s_idx, [arr.shape[d] for d in other]), strict=True))
    return np.ascontiguousarray(arr).reshape(-1)[k_off[:, None] + s_off[None, :]]


def _axis_result(name: str, dims: tuple[int, ...], log_q: np.ndarray, sizes: np.ndarray,
                 var_unit: float) -> dict[str, Any]:
    """Cochran's Q and the effect sizes for one slicing; ``var_unit / s`` is the null variance."""
    k = log_q.size
    null_var = var_unit / sizes  # i.i.d. sampling variance of each slice's log scale
    weights = 1.0 / null_var
    mean = float(np.sum(weights * log_q) / np.sum(weights))
    q_stat = float(np.sum(weights * (log_q - mean) ** 2))
    observed_var = float(np.var(log_q, ddof=1))
    expected_var = float(np.mean(null_var))
    excess = math.sqrt(max(0.0, observed_var - expected_var))
    pvalue = float(special.chdtrc(k - 1, q_stat))  # chi-square survival function
    return {
        "axis": name, "dims": list(dims), "slices": int(k), "slice_size": int(np.median(sizes)),
        "log_scale_sd": math.sqrt(observed_var), "null_sd": math.sqrt(expected_var),
        "excess_sd": excess, "q_stat": q_stat, "df": k - 1, "pvalue": pvalue,
        "i2": max(0.0, 1.0 - (k - 1) / q_stat) if q_stat > 0 else 0.0,
        "differs": bool(pvalue < ALPHA and excess >= MIN_EXCESS_SD),
    }


def describe_where(result: dict[str, Any]) -> str:
    """One phrase for tables: ``"kernel position (x1.9)"``, ``"none"`` or ``""`` (not computed)."""
    axes = [a for a in result.get("axes", []) if a["differs"]]
    if not result.get("axes"):
        return ""
    if not axes:
        return "none"
    axes.sort(key=lambda a: -a["excess_sd"])
    return ", ".join(f"{a['axis']} (x{math.exp(a['excess_sd']):.2g})" for a in axes)


def scale_heterogeneity(arr: np.ndarray) -> dict[str, Any]:
    """Per tensor axis, how much slice scales differ beyond i.i.d. sampling (see module docstring).

    Parameters
    ----------
    arr : numpy.ndarray
        The weight tensor in its own shape (non-finite values are ignored).

    Returns
    -------
    dict
        ``{"axes": [per-axis dicts], "where": name of the axis with the largest real effect or
        None, "summary": short phrase}``; ``axes`` is empty for 1-D tensors or too-small slices.
    """
    out: dict[str, Any] = {"axes": [], "where": None, "summary": ""}
    slicings = [(name, dims) for name, dims in _axes(tuple(arr.shape))
                if int(np.prod([arr.shape[i] for i in dims])) >= 2]
    if not slicings:
        return out
    flat = arr.reshape(-1)
    # The centre and the density at the median come from up to POOL evenly spaced values
    # (relative precision of the null variance about 2%, far below the effect size).
    pool = flat[_evenly(flat.size, POOL)].astype(np.float64)
    pool = pool[np.isfinite(pool)]
    if pool.size < 2 * MIN_SLICE:
        return out
    center = _order_stats(pool, [0.5])[0]
    q_lo, q, q_hi = _order_stats(np.abs(pool - center), [0.5 - _SPARSITY_H, 0.5, 0.5 + _SPARSITY_H])
    if not (q > 0 and q_hi > q_lo):
        return out  # half or more of the values sit on one point (pruned): no scale to compare
    g = 2 * _SPARSITY_H / (q_hi - q_lo)  # density of |w - M| at its median
    var_unit = 1.0 / (4.0 * g * g * q * q)  # s * Var(log median) for i.i.d. values
    for name, dims in slicings:
        rows = np.abs(_gather(arr, dims).astype(np.float64) - center)
        finite = np.isfinite(rows)
        if finite.all():
            sizes, med = np.full(rows.shape[0], float(rows.shape[1])), np.median(rows, axis=1)
        else:
            rows[~finite] = np.nan
            sizes, med = finite.sum(axis=1).astype(float), np.nanmedian(rows, axis=1)
        if np.min(sizes) < MIN_SLICE or np.any(~(med > 0)):
            continue  # slices too small, or mostly one value (pruned): no log scale to compare
        out["axes"].append(_axis_result(name, dims, np.log(med), sizes, var_unit))
    real = sorted((x for x in out["axes"] if x["differs"]), key=lambda x: -x["excess_sd"])
    out["where"] = real[0]["axis"] if real else None
    out["summary"] = describe_where(out)
    return out
