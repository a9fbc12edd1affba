"""Turn any tensor or array a user can hand us into plain, native NumPy values.

Shared by the fitter (``fit_tensor``) and the model sources, so that a quantized, sparse,
float8, big-endian, masked or expanded tensor reads the same way everywhere. Nothing here
imports torch up front: torch tensors are recognised by their methods.

Two ways out: :func:`as_values` gives values the float path can compute on (bfloat16 and float8
widened to float32, exactly); :func:`raw_numpy` gives a tensor of at most 16 bits in its stored
dtype, as a read-only view (ml_dtypes' types for bfloat16 and float8), which the loaders hand over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from weightstats.bucketsort import bucket_sorted
from weightstats.errors import OptionError

# dtypes NumPy cannot hold exactly; widened to float32, which holds all of their values.
_WIDEN = ("bfloat16", "float8")
# Stored dtypes of at most 16 bits that NumPy itself holds (bfloat16 and float8: ml_dtypes).
_RAW_NUMPY = ("float16", "int8", "uint8", "int16", "uint16")
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


def stored_numpy_dtype(name: str) -> np.dtype | None:
    """The NumPy dtype that holds a stored dtype of at most 16 bits exactly, else None.

    ``"float16"``, ``"bfloat16"``, ``"float8_e4m3fn"`` (and the other float8 formats ml_dtypes
    defines), ``"int8"``, ``"uint8"``, ``"int16"``, ``"uint16"``: loaders hand such tensors over in
    this dtype, unwidened, so that a 16-bit tensor costs 2 bytes per value and its bit patterns
    can be counted. bfloat16 and float8 come from ml_dtypes (NumPy has no such types).
    """
    if name in _RAW_NUMPY:
        return np.dtype(name)
    if name.startswith(_WIDEN):
        import ml_dtypes

        found = getattr(ml_dtypes, name, None)
        return np.dtype(found) if found is not None else None
    return None


def read_only(arr: np.ndarray) -> np.ndarray:
    """A view of ``arr`` that cannot be written through (the data is shared, never copied)."""
    view = arr.view()
    view.flags.writeable = False
    return view


def raw_numpy(t: Any) -> np.ndarray:
    """A torch tensor of at most 16 bits as NumPy values in its stored dtype, without copying.

    For a CPU, strided, non-quantized tensor whose dtype :func:`stored_numpy_dtype` knows
    (float16, bfloat16, float8_*, int8, uint8, int16, uint16): a read-only view of the tensor's own
    memory (bfloat16 and float8 through their bit patterns, reinterpreted as ml_dtypes' types),
    so a loader hands over 2 bytes per value and the caller cannot modify the model. Anything
    else falls back to :func:`torch_values` (a fresh, possibly widened copy); so does a tensor
    off the CPU, which has to be copied to be read at all.

    Raises
    ------
    OptionError
        The tensor is on the meta device (see :func:`torch_values`).
    """
    t = t.detach()
    target = stored_numpy_dtype(torch_dtype_name(t.dtype))
    if (target is None or is_meta(t) or is_quantized(t) or layout_name(t) != "strided"
            or t.device.type != "cpu"):
        return torch_values(t)
    t = t.resolve_neg().resolve_conj()  # numpy() refuses a lazily negated view
    if target.name.startswith(_WIDEN):  # ml_dtypes' types: torch cannot convert them itself
        import torch  # already imported: t is a torch tensor

        bits = torch.int16 if target.itemsize == 2 else torch.uint8
        return read_only(t.view(bits).numpy().view(target))
    return read_only(t.numpy())


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
    if isinstance(x, np.ndarray) and x.dtype.name.startswith(_WIDEN):
        return x.dtype.name  # ml_dtypes' bfloat16 / float8, which ``arr`` holds widened
    return arr.dtype.name if hasattr(x, "dtype") else str(arr.dtype)


def sorted_copy(values: np.ndarray) -> np.ndarray:
    """``np.sort(values)``, with float16 sorted as float32 (exact, one size up).

    NumPy 2.4's vectorized float16 sort (x86-simd-sort on AVX-512 machines) returns arrays that
    are not sorted when values repeat a lot: 60,000 draws from 17 levels came back with ties out
    of order, so 17 levels read as 31. Every other dtype sorts in its own precision.
    """
    if values.dtype == np.float16:
        return np.sort(values.astype(np.float32))
    return bucket_sorted(values)  # np.sort, by buckets of leading bits where that is faster
