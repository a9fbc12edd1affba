"""Where a tensor's heterogeneity lives: do slice scales differ along an axis beyond i.i.d. noise?

For each axis of a weight tensor in PyTorch's layout (output channel, input channel, kernel position:
all trailing axes of a convolution taken together), the values are split into the slices along that
axis. With ``M`` the tensor's median and ``q`` the median of ``|w - M|``, each slice ``i`` gets

* ``share_i``: the share of its values with ``|w - M| <= q`` (a stratified Mood median test of scale),
* ``log median_i |w - M|``: its robust log scale, for the effect size.

Every slice holds one value from each position ``j`` of the other axes. If scales do not differ
along the axis (whatever they do along the others), the indicators are independent Bernoulli(p_j),
so ``Var(share_i) = mean_j p_j (1 - p_j) / s`` exactly, with ``p_j`` estimated across the slices
(unbiased with ``k / (k - 1)``). No density and no family is assumed, so the test is valid under the
heaviest tails and at a jump in the density (a variance-based test such as Bartlett's is not: its
null depends on the kurtosis), and scale differences along another axis do not inflate or hide it.

Per axis this gives
* ``q_stat``: Cochran's Q, the sum over slices of ``(share_i - mean)^2`` divided by their null
  variance; chi-square with ``k - 1`` degrees of freedom under the null, ``pvalue`` from it;
* ``i2``: the share of the observed spread of the shares that is not sampling noise,
  ``max(0, 1 - V_null / V_obs)``;
* ``excess_sd``: the effect size, ``log_scale_sd * sqrt(i2)``: the standard deviation of the slices'
  log scales once sampling noise is taken out (0.1: scales differ by about 10%); ``null_sd`` is the
  part that is noise.

An axis "differs" when its p-value is below ``ALPHA`` and ``excess_sd`` is at least
``MIN_EXCESS_SD``; ``where`` names the axis with the largest effect among those. Slices with fewer
than ``MIN_SLICE`` values are skipped (the chi-square approximation needs a few dozen per slice).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

ALPHA = 0.01  # p-value below which an axis's scale differences are called real
MIN_EXCESS_SD = 0.1  # SD of log scale beyond noise: slices' scales differ by about 10% or more
MIN_SLICE = 64  # values per slice for the chi-square approximation of Q
# Work bounds: each axis sees about this many values (evenly spaced), from at most this many slices,
# so the cost is bounded whatever the tensor's size (0.2 s of CPU for all 54 tensors of ResNet-50, a
# fifth of sorting them); the test stays valid because the null variance is that of the values
# actually used, and a scale difference of 10% stays easy to detect.
MAX_GATHER = 1 << 15
MAX_SLICES = 256
POOL = 1 << 16  # evenly spaced values behind the centre M and the threshold q
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


def median_and_mad_sorted(x_sorted: np.ndarray, counts: np.ndarray | None = None) -> tuple[float, float]:
    """The centre ``M`` and threshold ``q`` of :func:`scale_heterogeneity` from all of a tensor's
    finite values, sorted (``counts``: how often each of the then distinct values occurs).

    ``M`` is the order statistic at rank ``n // 2`` and ``q`` that of ``|x - M|``, the conventions
    of the pooled estimate, but exact and in O(log n): the values within ``t`` of ``M`` form a
    contiguous window of the sorted values, so ``q`` is the smallest radius of a window holding
    ``n // 2 + 1`` values, found by bisection on the window's left end.
    """
    if counts is None:
        n = x_sorted.size
        low = np.arange(n)  # values before index a: a; through index b: b + 1
        cum = None
    else:
        cum = np.cumsum(counts.astype(np.int64))
        n = int(cum[-1])
        low = cum - counts.astype(np.int64)
    rank = n // 2
    center = float(x_sorted[rank] if cum is None else x_sorted[np.searchsorted(cum, rank, "right")])
    need = rank + 1  # values the window must hold

    def right_end(a: int) -> int:
        """Smallest index b with at least ``need`` values in positions a..b (len(x) if none)."""
        if cum is None:
            return a + need - 1
        return int(np.searchsorted(cum, int(low[a]) + need, "left"))

    def radius(a: int) -> float:
        return max(center - float(x_sorted[a]), float(x_sorted[right_end(a)]) - center)

    last = x_sorted.size - 1
    hi = n - need if cum is None else int(np.searchsorted(low, n - need, "right")) - 1
    lo = 0
    # The left distance falls and the right one rises as the window moves right: bisect for the
    # first window whose right distance reaches its left one; the smallest radius is there or
    # just before.
    while lo < hi:
        mid = (lo + hi) // 2
        if float(x_sorted[min(right_end(mid), last)]) - center >= center - float(x_sorted[mid]):
            hi = mid
        else:
            lo = mid + 1
    q = radius(lo)
    if lo > 0:
        q = min(q, radius(lo - 1))
    return center, q


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


def _row_medians(rows: np.ndarray) -> np.ndarray:
    """``np.median(rows, axis=1)`` by sorting the short rows (NumPy's partition along an axis is
    several times slower than sorting rows of a few hundred values)."""
    s = np.sort(rows, axis=1)
    m = rows.shape[1]
    return s[:, m // 2] if m % 2 else 0.5 * (s[:, m // 2 - 1] + s[:, m // 2])


def _axis_result(name: str, dims: tuple[int, ...], rows: np.ndarray, finite: np.ndarray,
                 q: float) -> dict[str, Any] | None:
    """Stratified median test and effect size for one slicing (``rows``: slices x positions of
    ``|w - M|``, NaN where not finite); None when slices are too small or mostly one value."""
    sizes = finite.sum(axis=1).astype(float)
    if np.min(sizes) < MIN_SLICE:
        return None  # too few values for the chi-square approximation (no all-NaN slice below)
    med = _row_medians(rows) if finite.all() else np.nanmedian(rows, axis=1)
    if np.any(~(med > 0)):
        return None  # a slice mostly on one value (pruned): no log scale
    k = rows.shape[0]
    below = (rows <= q) & finite
    share = below.sum(axis=1) / sizes
    # Bernoulli variance per position of the other axes, estimated across the slices.
    n_j = finite.sum(axis=0)
    used = n_j >= 2
    p_j = below.sum(axis=0)[used] / n_j[used]
    v = float(np.mean(p_j * (1.0 - p_j) * n_j[used] / (n_j[used] - 1.0))) if p_j.size else 0.25
    null_var = v / sizes
    if v > 0:
        weights = 1.0 / null_var
        mean = float(np.sum(weights * share) / np.sum(weights))
        q_stat = float(np.sum(weights * (share - mean) ** 2))
    else:  # every position entirely below or above q in every slice: all shares are equal
        q_stat = 0.0
    observed = float(np.var(share, ddof=1))
    i2 = max(0.0, 1.0 - float(np.mean(null_var)) / observed) if observed > 0 else 0.0
    log_sd = float(np.std(np.log(med), ddof=1))
    pvalue = float(special.chdtrc(k - 1, q_stat))  # chi-square survival function
    excess = log_sd * math.sqrt(i2)
    return {
        "axis": name, "dims": list(dims), "slices": int(k), "slice_size": int(np.median(sizes)),
        "log_scale_sd": log_sd, "null_sd": log_sd * math.sqrt(1.0 - i2), "excess_sd": excess,
        "q_stat": q_stat, "df": k - 1, "pvalue": pvalue, "i2": i2,
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


def scale_heterogeneity(arr: np.ndarray, threshold: tuple[float, float] | None = None) -> dict[str, Any]:
    """Per tensor axis, how much slice scales differ beyond i.i.d. sampling (see module docstring).

    Parameters
    ----------
    arr : numpy.ndarray
        The weight tensor in its own shape (non-finite values are ignored).
    threshold : (float, float), optional
        The centre ``M`` and threshold ``q`` from all finite values
        (:func:`median_and_mad_sorted`, free where the caller holds them sorted); by default they
        come from ``POOL`` evenly spaced values.

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
    if threshold is None:
        flat = arr.reshape(-1)
        # The centre and the threshold come from up to POOL evenly spaced values; any fixed
        # threshold keeps the test valid, the median of |w - M| makes it most sensitive.
        pool = flat[_evenly(flat.size, POOL)].astype(np.float64)
        pool = pool[np.isfinite(pool)]
        if pool.size < 2 * MIN_SLICE:
            return out
        center = _order_stats(pool, [0.5])[0]
        q = _order_stats(np.abs(pool - center), [0.5])[0]
    else:
        center, q = threshold
    if not q > 0:
        return out  # half or more of the values sit on one point (pruned): no scale to compare
    for name, dims in slicings:
        rows = np.abs(_gather(arr, dims).astype(np.float64) - center)
        finite = np.isfinite(rows)
        if not finite.all():
            rows[~finite] = np.nan
        result = _axis_result(name, dims, rows, finite, q)
        if result is not None:
            out["axes"].append(result)
    real = sorted((x for x in out["axes"] if x["differs"]), key=lambda x: -x["excess_sd"])
    out["where"] = real[0]["axis"] if real else None
    out["summary"] = describe_where(out)
    return out
