"""Turn any tensor or array a user can hand us into plain, native NumPy values.

Shared by the fitter (``fit_tensor``) and the model sources, so that a quantized, sparse,
float8, big-endian, masked or expanded tensor reads the same way everywhere. Nothing here
imports torch: torch tensors are recognised by their methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from weightstats.errors import OptionError

# dtypes NumPy cannot hold exactly; widened to float32, which holds all of their values.
_WIDEN = ("bfloat16", "float8")
_SPARSE_LAYOUTS = ("sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc")


def torch_dtype_name(dtype: Any) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def layout_name(t: Any) -> str:
    """``"strided"``, ``"sparse_coo"``, ... for a torch tensor."""
    return str(getattr(t, "layout", "torch.strided")).removeprefix("torch.")


def is_meta(t: Any) -> bool:
    """True for a torch tensor on the meta device (a shape without data)."""
    device = getattr(t, "device", None)
    return getattr(device, "type", "") == "meta"


def is_quantized(t: Any) -> bool:
    """True for a quantized torch tensor (qint8, quint8, qint32, ...)."""
    return bool(getattr(t, "is_quantized", False))


def sparse_values(t: Any) -> Any:
    """The stored (non-implicit) values of a sparse torch tensor, duplicates summed (COO)."""
    if layout_name(t) == "sparse_coo":
        return t.coalesce().values()
    return t.values()


def sparse_values_shape(t: Any) -> tuple[int, ...]:
    """Shape of :func:`sparse_values` without coalescing (an upper bound for uncoalesced COO)."""
    values = t._values() if layout_name(t) == "sparse_coo" else t.values()
    return tuple(int(d) for d in values.shape)


def stored_layout(shape: Sequence[int], stride: Sequence[int]) -> tuple[tuple[int, ...],
                                                                         tuple[int, ...]]:
    """A view that visits each stored element at most about once.

    An expanded tensor (stride 0) or one whose strides overlap names far more elements than
    its storage holds: ``torch.tensor([1., 2.]).expand(1 << 27, 2)`` is 2^28 elements over
    2 stored values. Axes of stride 0 keep one index; if the rest still names more elements
    than the storage span it covers, the span itself (contiguous, 1-D) is returned.
    ``(shape, stride)`` comes back unchanged for every ordinary tensor.
    """
    shape, stride = tuple(int(s) for s in shape), tuple(int(s) for s in stride)
    size = tuple(1 if st == 0 else s for s, st in zip(shape, stride, strict=True))
    numel = math.prod(size)
    if numel == 0:
        return shape, stride
    span = 1 + sum((s - 1) * abs(st) for s, st in zip(size, stride, strict=True))
    if numel > span:
        return (span,), (1,)
    return size, stride


def torch_values(t: Any) -> np.ndarray:
    """A fresh NumPy copy of a torch tensor's values, whatever its dtype or layout.

    bfloat16 and float8 are widened to float32 (exact); quantized tensors are dequantized;
    sparse tensors give their stored values (the implicit zeros are not weights anyone
    stored, and densifying could need far more memory than the file).

    Raises
    ------
    OptionError
        The tensor is on the meta device: it has a shape but no values.
    """
    t = t.detach()
    if is_meta(t):
        raise OptionError("the tensor is on the meta device and holds no values (e.g. a model "
                          "built under torch.device('meta')): load real weights first")
    if layout_name(t) in _SPARSE_LAYOUTS:
        t = sparse_values(t)
    if is_quantized(t):
        t = t.dequantize()
    if t.device.type != "cpu":
        t = t.cpu()
    if torch_dtype_name(t.dtype).startswith(_WIDEN):
        t = t.float()
    # Copy: mmap-backed or module-owned storage must not be modified by the caller.
    return np.array(t.numpy(), copy=True)


def native(arr: np.ndarray) -> np.ndarray:
    """``arr`` in the machine's byte order (``>f4`` from a big-endian file becomes ``float32``)."""
    if arr.dtype.isnative:
        return arr
    return arr.astype(arr.dtype.newbyteorder("="))


def as_values(x: Any) -> tuple[np.ndarray, int]:
    """Values to fit and the number of masked entries (which arrive as NaN, to be excluded).

    Accepts NumPy arrays (masked, big-endian), torch tensors of any dtype and layout (see
    :func:`torch_values`) and array-likes.

    Raises
    ------
    OptionError
        A meta tensor (no data).
    """
    if hasattr(x, "detach") and hasattr(x, "dtype"):  # a torch tensor, without importing torch
        return torch_values(x), 0
    if np.ma.isMaskedArray(x):
        mask = np.ma.getmaskarray(x)
        n_masked = int(mask.sum())
        data = native(np.asarray(x.data))
        if n_masked and data.dtype.kind in "fiu":
            data = data.astype(np.result_type(data.dtype, np.float16))
            data[mask] = np.nan
        return data, n_masked
    arr = np.asarray(x)
    if str(arr.dtype).startswith(_WIDEN):
        arr = arr.astype(np.float32)
    return native(arr), 0


def dtype_name(x: Any, arr: np.ndarray) -> str:
    """The dtype to report for ``x``: torch's name, or NumPy's without byte order (``float32``)."""
    if hasattr(x, "detach") and hasattr(x, "dtype"):
        return torch_dtype_name(x.dtype)
    return arr.dtype.name if hasattr(x, "dtype") else str(arr.dtype)
