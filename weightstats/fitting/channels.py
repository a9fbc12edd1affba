"""The per-channel view: each output channel's own location and scale removed, exactly.

Why not z = (x - mean) / std per channel? With k values per channel those z are bounded by
sqrt(k - 1) and have excess kurtosis -6 / (k + 1) even when every channel is exactly Gaussian, so a
depthwise 3x3 kernel (k = 9) looks platykurtic (generalized normal beta ~ 3) and the KS test of
normality rejects nearly always. Leave-one-out studentized values are exactly Student-t with
k - 2 df, i.e. heavy-tailed by construction, and they are dependent within a channel.

What this module does instead (exact at every fan-in k >= 3). Per channel, with values
x_1..x_k in storage order:

1. Helmert contrasts ``y_j = (j x_{j+1} - (x_1 + ... + x_j)) / sqrt(j (j + 1))``, j = 1..k-1. If the
   channel is i.i.d. N(mu, sigma^2), the y_j are i.i.d. N(0, sigma^2): the mean is gone exactly.
2. Sequential studentization ``t_j = y_j / sqrt((y_1^2 + ... + y_{j-1}^2) / (j - 1))``,
   j = 2..k-1: t_j is Student-t with j - 1 df, and the t_j are mutually independent (t_2..t_j
   are scale-free functions of the direction of (y_1..y_j), which for a spherical Gaussian is
   independent of its length and of y_{j+1}; t_{j+1} depends only on those two).
3. Gaussian scores ``u_j = Phi^-1(F_{t, j-1}(t_j))``.

Under the hypothesis "every channel is i.i.d. Gaussian with its own mean and scale" the pooled
u are therefore exactly i.i.d. N(0, 1), k - 2 per channel: the Gaussian is the true law, the
KS test keeps its nominal size and BIC's choice behaves as on i.i.d. Gaussian data. A channel
whose values are heavy-tailed (or flat) gives scores that are heavy-tailed (or flat) too, so the
verdict still answers "is the shape non-Gaussian within channels, beyond the scale differences
between them?". The fitted df / beta describe the scores, which at large fan-in are close to
(x - running mean) / running std and hence to the weights' own shape; at small fan-in the scores
mix several t laws of few df through the Gaussian quantile, so only the direction of their shape
(heavier or lighter than Gaussian) carries over: i.i.d. t(4) weights in (64, 3, 3, 3) gave t or
generalized normal with beta < 2 in 200 of 200 draws (benchmarks/atoms_channels.md).
The scores depend on the order of the values within a channel (storage order is used, so results
are deterministic); their null distribution does not, for any fixed order.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import special, stats

from ..arrays import sorted_copy
from .atoms import Atoms, find_atoms

MIN_FAN_IN = 3  # two values go to the channel's location and scale; at least one score remains
_BLOCK = 1 << 20  # values per block of channels (bounds the temporaries)


def gaussian_scores(rows: np.ndarray) -> np.ndarray:
    """Exact Gaussian scores of each row (steps 1-3 of the module docstring).

    Parameters
    ----------
    rows : ndarray, shape (channels, k), k >= 3
        Finite values, one channel per row, in storage order.

    Returns
    -------
    ndarray, shape (channels, k - 2)
        NaN where a score is undefined (the earlier contrasts of its channel are all zero).
    """
    x = rows - rows.mean(axis=1, keepdims=True)  # contrasts ignore the shift; this keeps digits
    k = x.shape[1]
    j = np.arange(1, k, dtype=np.float64)
    y = (j * x[:, 1:] - np.cumsum(x[:, :-1], axis=1)) / np.sqrt(j * (j + 1))
    sumsq = np.cumsum(y * y, axis=1)[:, :-1]  # y_1^2 + ... + y_{j-1}^2 for j = 2..k-1
    df = j[:-1]  # t_j has j - 1 df for j = 2..k-1
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sumsq > 0, y[:, 1:] / np.sqrt(sumsq / df), np.nan)
    tail = special.stdtr(df, -np.abs(t))  # the smaller tail, accurate far out
    with np.errstate(divide="ignore"):
        u = special.ndtri(tail)
    deep = np.isfinite(t) & ~(tail > 0)  # underflowed: go through logarithms
    if deep.any():
        df_deep = np.broadcast_to(df, t.shape)[deep]
        u[deep] = special.ndtri_exp(stats.t.logsf(np.abs(t[deep]), df_deep))
    return -np.sign(t) * u


def channel_scores(arr: np.ndarray, axis: int, drop=None) -> tuple[np.ndarray, list[str]]:
    """Pooled Gaussian scores of every slice along ``axis`` (see the module docstring).

    Parameters
    ----------
    arr : ndarray
        The tensor (two or more axes).
    axis : int
        The channel axis (output channels: 0).
    drop : callable, optional
        Maps a float64 array to a boolean mask of values to leave out before the transform
        (atoms: exact zeros of a pruned tensor, quantization levels). Non-finite values are
        always left out.

    Returns
    -------
    scores : ndarray
        1-D float64, ``k - 2`` per channel with ``k`` usable values.
    notes : list of str
        What was left out, and that the values are scores.
    """
    if arr.ndim < 2:
        return arr.reshape(-1), ["per-channel ignored: the tensor has a single axis"]
    rows = np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1).astype(np.float64)
    keep = np.isfinite(rows)
    if drop is not None:
        keep &= ~drop(rows)
    counts = keep.sum(axis=1)
    notes = []
    small = counts < MIN_FAN_IN
    if small.any():
        notes.append(f"{int(small.sum())} channel(s) with fewer than {MIN_FAN_IN} usable values "
                     "dropped")
    parts = []
    for k in np.unique(counts[~small]):  # channels with the same number of usable values
        members = np.flatnonzero(counts == k)
        per_block = max(1, _BLOCK // int(k))
        for b in range(0, members.size, per_block):
            block = rows[members[b:b + per_block]]
            if k < rows.shape[1]:  # usable values first, in storage order (stable sort)
                order = np.argsort(~keep[members[b:b + per_block]], axis=1, kind="stable")[:, :k]
                block = np.take_along_axis(block, order, 1)
            parts.append(gaussian_scores(block).reshape(-1))
    scores = np.concatenate(parts) if parts else np.empty(0)
    undefined = ~np.isfinite(scores)
    if undefined.any():
        notes.append(f"{int(undefined.sum())} score(s) undefined (tied values) dropped")
        scores = scores[~undefined]
    notes.append("per-channel: exact Gaussian scores (Helmert contrasts, sequentially "
                 "studentized; two values per channel spent on its mean and scale)")
    return scores, notes


def per_channel_view(arr: np.ndarray, axis: int, dtype: str,
                     min_n: int) -> tuple[np.ndarray, list[str], Atoms | None]:
    """The fitter's hook: atoms found on the raw values (and left out), then channel scores.

    Atoms must be found before the transform, which turns one exact zero per channel into a
    different value in every channel. Returns the scores, notes, and the atoms (None when there
    are too few finite values to look for them).
    """
    flat = arr.reshape(-1)
    if arr.ndim < 2:  # nothing to standardize: the fitter handles atoms as without the view
        return flat, ["per-channel ignored: the tensor has a single axis"], None
    raw = sorted_copy(flat[np.isfinite(flat)])
    atoms = None
    if raw.size >= min_n and raw[0] != raw[-1]:
        atoms = find_atoms(raw, dtype)
    del raw
    if atoms is not None and atoms.decline(min_n) is not None:
        return flat, [], atoms  # pruned or quantized: the fitter declines on the raw values
    scores, notes = channel_scores(arr, axis, atoms.drop if atoms else None)
    return scores, notes, (replace(atoms, left_out=True) if atoms else atoms)
