"""The counted path: a tensor of at most 16-bit values as (distinct value, count) pairs.

A float16 or bfloat16 tensor holds at most 65,536 distinct values (an 8-bit type 256), so the
multiset of its values *is* its histogram over bit patterns: one counting pass over the stored
bits gives a sufficient statistic of at most 65,536 pairs, and every quantity the fitter reports
(weighted maximum-likelihood fits, log-likelihoods, the exact KS distance, Vuong and LR moments,
descriptives, atoms, histograms) is computed exactly from it. The tensor itself is read once, in
its stored dtype, and never widened: no float copy of it is made, so a layer of 65 M bf16 weights
costs its 131 MB of storage and a few MB besides.

Which dtypes: float16, bfloat16, the float8 types, int8/uint8 and int16/uint16, from torch tensors
and NumPy arrays (``ml_dtypes`` supplies NumPy's bfloat16 and float8). A masked, sparse or
quantized tensor takes the values path (``fit_tensor``'s ``path`` says which ran).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from ..arrays import (
    is_meta,
    is_quantized,
    layout_name,
    raw_numpy,
    stored_numpy_dtype,
    torch_dtype_name,
)

# Values per bincount call: np.bincount widens its input to intp, so a chunk costs 8 bytes per value;
# 256 K values keep that temporary (2 MB) in the cache instead of allocating one the tensor's size.
_COUNT_CHUNK = 1 << 18

@dataclass(frozen=True)
class Counted:
    """A tensor's finite values as a multiset, and what was excluded.

    Attributes
    ----------
    values : ndarray
        float64, sorted ascending, distinct, finite (-0.0 and +0.0 are one value, 0.0).
    counts : ndarray
        int64, positive: how often each value occurs.
    dtype : str
        The stored dtype's name ("bfloat16").
    n_nan, n_posinf, n_neginf : int
        Bit patterns that are NaN or infinite, counted and excluded.
    """

    values: np.ndarray
    counts: np.ndarray
    dtype: str
    n_nan: int = 0
    n_posinf: int = 0
    n_neginf: int = 0

    @property
    def n(self) -> int:
        """Number of finite values."""
        return int(self.counts.sum())


@cache
def decode_table(name: str) -> np.ndarray:
    """float64 value of every bit pattern of the stored dtype ``name`` (index = pattern)."""
    dtype = stored_numpy_dtype(name)
    bits = np.arange(1 << (8 * dtype.itemsize), dtype=f"u{dtype.itemsize}")
    with np.errstate(invalid="ignore"):  # NaN patterns decode to NaN, which is what they are
        table = bits.view(dtype).astype(np.float64)
    table.flags.writeable = False
    return table


@cache
def _sorted_table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The bit patterns of ``name`` in ascending order of their values (NaN patterns last) and
    those values: counts read in this order come out sorted, with no sort per tensor."""
    table = decode_table(name)
    order = np.argsort(table, kind="stable")
    values = table[order]
    for array in (order, values):
        array.flags.writeable = False
    return order, values


def _torch_bits(t: Any) -> tuple[np.ndarray, str] | None:
    """The raw bits of a torch tensor of a counted dtype, through the loaders' zero-copy view
    (:func:`weightstats.arrays.raw_numpy`); None for a layout or dtype it would have to copy."""
    if (stored_numpy_dtype(torch_dtype_name(t.dtype)) is None or is_meta(t) or is_quantized(t)
            or layout_name(t) != "strided"):
        return None
    if t.device.type != "cpu":  # read once into host memory, in the stored dtype
        t = t.detach().cpu()
    return _numpy_bits(raw_numpy(t))


def _numpy_bits(x: np.ndarray) -> tuple[np.ndarray, str] | None:
    """A NumPy array of a counted dtype as unsigned integers of its width (a view)."""
    name = x.dtype.name
    if stored_numpy_dtype(name) is None:
        return None
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return x.view(f"u{x.dtype.itemsize}"), name


def raw_bits(x: Any) -> tuple[np.ndarray, str] | None:
    """``(bits, dtype name)``: a tensor's stored bits as unsigned integers, or None when the
    counted path does not apply (more than 16 bits, masked, sparse, quantized, not numeric).

    No values are copied for a contiguous tensor; a non-contiguous one is read through its view.
    """
    if hasattr(x, "detach") and hasattr(x, "dtype"):  # a torch tensor, without importing torch
        return _torch_bits(x)
    if np.ma.isMaskedArray(x) or not isinstance(x, np.ndarray):
        return None
    return _numpy_bits(x)


def count_bits(bits: np.ndarray) -> np.ndarray:
    """How often each bit pattern occurs (int64, one slot per pattern), in cache-sized chunks."""
    size = 1 << (8 * bits.dtype.itemsize)
    flat = bits.reshape(-1)
    total = np.zeros(size, dtype=np.int64)
    for i in range(0, flat.size, _COUNT_CHUNK):
        total += np.bincount(flat[i:i + _COUNT_CHUNK], minlength=size)
    return total


def stored_view(bits: np.ndarray, name: str) -> np.ndarray:
    """The stored values as NumPy's (or ml_dtypes') dtype ``name``: a view of ``bits``, no copy."""
    return bits.view(stored_numpy_dtype(name))


def counted_values(bits: np.ndarray, name: str) -> Counted:
    """The multiset of finite values held by the bit patterns ``bits`` of stored dtype ``name``
    (as :func:`raw_bits` returns them)."""
    order, table = _sorted_table(name)
    pattern_counts = count_bits(bits)[order]
    present = pattern_counts > 0
    values, counts = table[present], pattern_counts[present]
    finite = np.isfinite(values)
    n_nan = int(counts[np.isnan(values)].sum())
    n_posinf = int(counts[values == np.inf].sum())
    n_neginf = int(counts[values == -np.inf].sum())
    values, counts = values[finite], counts[finite]
    # -0.0 and +0.0 are two bit patterns of one value, next to each other in this order: merged,
    # the values are distinct.
    first = np.concatenate([[True], values[1:] != values[:-1]])
    if not first.all():
        starts = np.flatnonzero(first)
        values, counts = values[starts], np.add.reduceat(counts, starts)
    return Counted(values + 0.0, counts, name, n_nan, n_posinf, n_neginf)


def weighted_subsample(values: np.ndarray, counts: np.ndarray, m: int, seed: int) -> np.ndarray:
    """``m`` values drawn without replacement from the multiset, sorted: a simple random sample
    of the tensor (its counts are multivariate hypergeometric), drawn independently of the values'
    order. Positions in the written-out sorted multiset are drawn as the values path draws
    positions in storage order, and read through the cumulative counts: O(m log distinct), where
    drawing every value's count would touch all of them."""
    pos = np.random.default_rng(seed).choice(int(counts.sum()), m, replace=False)
    pos.sort()
    return values[np.searchsorted(np.cumsum(counts), pos, side="right")]


def expand(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The multiset written out (sorted). For tests and small fallbacks only: it is the size of
    the tensor."""
    return np.repeat(values, counts)
