"""Core types shared by every source: :class:`WeightTensor` and :class:`ModelSource`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weightstats.arrays import (
    is_meta,
    is_quantized,
    layout_name,
    native,
    raw_numpy,
    read_only,
    sparse_values_shape,
    stored_layout,
    stored_numpy_dtype,
    torch_dtype_name,
    torch_values,
)
from weightstats.errors import LoadError, WeightstatsError
from weightstats.sources.graph import Aliases, alias_note, merge_identical
from weightstats.sources.kinds import infer_kinds, kinds_from_module


def one_line(text: object, limit: int = 200) -> str:
    """Squash an exception message to one short line for embedding in our own messages:
    control characters shown escaped, a long path shortened in the middle (both ends kept)."""
    from weightstats.text import one_line as safe_line

    return safe_line(text, limit)


def error_reason(err: BaseException) -> str:
    """A short reason for an exception, never empty (``EOFError()`` has no message)."""
    text = one_line(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def safe_name(text: str) -> str:
    """Turn a spec into a filesystem-safe id (used as ``reports/<name>/``)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return s or "model"


def group_of(name: str) -> str:
    """Top-level prefix of a dotted name (``encoder`` for ``encoder.conv_in.weight``)."""
    head, sep, _ = name.partition(".")
    return head if sep else ""


def tensor_to_numpy(t: Any) -> np.ndarray:
    """A torch tensor's values: of at most 16 bits, a read-only view in the stored dtype
    (:func:`weightstats.arrays.raw_numpy`); otherwise a fresh copy, bfloat16-free
    (:func:`weightstats.arrays.torch_values`)."""
    return raw_numpy(t)


@dataclass(frozen=True)
class WeightTensor:
    """One named weight tensor, loaded only on :meth:`load`.

    Attributes
    ----------
    name : str
        Full dotted name (state-dict key, ONNX initializer name, ...).
    kind : str
        One of ``conv``, ``linear``, ``embedding``, ``norm``, ``bias``, ``other``.
    shape : tuple of int
        Shape, known without loading the data.
    dtype : str
        Storage dtype, e.g. ``"float32"``, ``"bfloat16"``, ``"int64"``.
    group : str
        Top-level prefix of the name (``"encoder"``, ``"decoder"``, ``"layer1"``), ``""`` if none.
    aliases : tuple of str
        Other names of the same stored values (tied weights), listed once under ``name``.
    n_aliases : int
        How many other names there are (``aliases`` keeps the first few).
    note : str
        What was read when it differs from a plain dense tensor (quantized, sparse, expanded).
    grid : str
        Non-empty when the stored values lie on a quantization grid the fitter's atom test cannot
        see as one (GGUF's blocks, each on its own scale): what the grid is. The fit declines
        such a tensor as quantized.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    group: str = ""
    loader: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)
    aliases: tuple[str, ...] = ()
    n_aliases: int = 0
    note: str = ""
    grid: str = ""

    @property
    def notes(self) -> list[str]:
        """Notes for the report: what was read, and the tied names."""
        return [n for n in (self.note, alias_note(self.aliases, self.n_aliases)) if n]

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        """True for real floating dtypes (float16/32/64, bfloat16, float8) and quantized ones
        (torch's qint8 ..., GGUF's ``gguf:Q4_K`` ...)."""
        return self.dtype.startswith(("float", "qint", "quint", "gguf:")) or self.dtype == "bfloat16"

    def load(self) -> np.ndarray:
        """Read the values, in the stored dtype when it has at most 16 bits.

        float16, int8/uint8/int16/uint16 come back as such, bfloat16 and float8 as ml_dtypes'
        types (``ml_dtypes.bfloat16``, ...): never widened, and not copied where the source
        allows (a read-only memory map of the file, or a read-only view of the in-memory
        tensor), so a 16-bit tensor costs 2 bytes per value and its bit patterns can be
        counted. Other dtypes come back as a fresh NumPy array (quantized tensors dequantized).
        Drop the array when done: a memory map stays open as long as it is referenced.

        Raises
        ------
        LoadError
            The data cannot be read (truncated or corrupt file).
        """
        if self.loader is None:
            raise LoadError(f"tensor {self.name} has no data attached: resolve the model again")
        try:
            # The reshape is inside: a corrupt file can hold fewer values than its header says.
            # asanyarray: a masked array keeps its mask (the fitter excludes masked values).
            return np.asanyarray(self.loader()).reshape(self.shape)
        except WeightstatsError:
            raise
        except Exception as err:  # corrupt data must surface as one line, not a traceback
            why = one_line(err) or type(err).__name__
            raise LoadError(
                f"cannot read tensor {self.name} ({why}): the file is corrupt or "
                "truncated, download or save it again"
            ) from err


class ModelSource:
    """A resolved model: a name, a description and a lazy stream of weight tensors.

    Subclasses implement :meth:`_tensors`; :meth:`tensors` adds uniform error handling.
    """

    kind_of_source: str = "model"

    def __init__(self, name: str, spec: str, description: str) -> None:
        self.name = safe_name(name)
        self.spec = spec
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, spec={self.spec!r})"

    def tensors(self) -> Iterator[WeightTensor]:
        """Yield the model's tensors in file/module order; data loads on ``.load()``.

        Raises
        ------
        LoadError, OfflineError
            The weights cannot be fetched or read.
        """
        try:
            yield from self._tensors()
        except WeightstatsError:
            raise
        except Exception as err:
            raise LoadError(
                f"cannot read {self.spec} ({error_reason(err)}): check that "
                "the file is a complete, supported weights file"
            ) from err

    def _tensors(self) -> Iterator[WeightTensor]:  # pragma: no cover - abstract
        raise NotImplementedError


def meta_error(name: str) -> LoadError:
    """A tensor with a shape and no values (built under ``torch.device("meta")``)."""
    return LoadError(f"tensor {name} is on the meta device and holds no values (the model was "
                     "built without its weights): load real weights first, e.g. "
                     "model.to_empty(device='cpu') then model.load_state_dict(...)")


def storage_identity(value: Any) -> tuple[Any, ...] | None:
    """Equal for two tensors/arrays that are the same view of the same memory; None if unknown.

    Tied weights (an embedding reused as the LM head, a module registered twice) share it.
    """
    if isinstance(value, np.ndarray):
        if value.size == 0 or np.ma.isMaskedArray(value):
            return None
        return ("np", value.__array_interface__["data"][0], value.shape, value.strides,
                value.dtype.str)
    try:
        if (value.numel() == 0 or is_meta(value) or is_quantized(value)
                or layout_name(value) != "strided"):
            return None
        return ("torch", str(value.device), value.untyped_storage().data_ptr(),
                value.storage_offset(), tuple(value.shape), tuple(value.stride()),
                str(value.dtype))
    except (AttributeError, RuntimeError, TypeError):
        return None


def _numpy_plan(value: np.ndarray) -> tuple[tuple[int, ...], Callable[[], np.ndarray], str]:
    """(shape to fit, loader, note) of an in-memory NumPy array (masked, big-endian, expanded)."""
    shape = tuple(int(d) for d in value.shape)
    note = ""
    item = value.dtype.itemsize
    if (value.size and not np.ma.isMaskedArray(value) and item
            and all(st >= 0 and st % item == 0 for st in value.strides)):
        size, stride = stored_layout(shape, [st // item for st in value.strides])
        if size != shape:
            note = (f"expanded view: {value.size} elements over {math.prod(size)} stored "
                    "values, each fitted once")
            value = np.lib.stride_tricks.as_strided(value, size, [st * item for st in stride])
            shape = size

    raw = stored_numpy_dtype(value.dtype.name)
    shared = (raw is not None and raw == value.dtype and value.dtype.isnative
              and not np.ma.isMaskedArray(value))

    def load(v: np.ndarray = value) -> np.ndarray:
        if shared:
            return read_only(v)  # at most 16 bits: the stored values, shared (see WeightTensor.load)
        copy = np.ma.array(v, copy=True) if np.ma.isMaskedArray(v) else np.array(v, copy=True)
        return native(copy)

    return shape, load, note


def _torch_plan(name: str, value: Any) -> tuple[tuple[int, ...], Callable[[], np.ndarray], str]:
    """(shape to fit, loader, note) of a torch tensor of any layout and dtype."""
    if is_meta(value):
        raise meta_error(name)
    layout = layout_name(value)
    if layout != "strided":
        if layout == "sparse_coo" and not value.is_coalesced():
            value = value.coalesce()  # duplicate indices are summed, as torch reads them
        shape = sparse_values_shape(value)
        note = (f"sparse ({layout}): its {math.prod(shape)} stored values are fitted, not the "
                "implicit zeros")
        return shape, lambda v=value: torch_values(v), note
    shape = tuple(int(d) for d in value.shape)
    if is_quantized(value):
        note = f"quantized ({torch_dtype_name(value.dtype)}): its dequantized values are fitted"
        return shape, lambda v=value: torch_values(v), note
    size, stride = stored_layout(shape, value.stride())
    # raw_numpy: at most 16 bits -> a read-only view in the stored dtype; else a fresh copy.
    if size == shape:
        return shape, lambda v=value: raw_numpy(v), ""
    view = value.as_strided(size, stride, value.storage_offset())
    note = (f"expanded view: {value.numel()} elements over {math.prod(size)} stored values, "
            "each fitted once")
    return size, lambda v=view: raw_numpy(v), note


def tensors_from_state_dict(
    state: Mapping[str, Any], kinds: Mapping[str, str] | None = None,
    aliases: Aliases | None = None,
) -> Iterator[WeightTensor]:
    """Wrap a mapping of name -> torch tensor / numpy array as lazy :class:`WeightTensor` s.

    Kinds come from ``kinds`` when given (module types), else from names and shapes.
    Non-array values (e.g. ``_extra_state``) are skipped. Entries that are the same view of
    the same memory are one tensor, listed under the first name, the others as its aliases
    (``aliases`` adds names found earlier, e.g. shared references in a checkpoint).

    Raises
    ------
    LoadError
        A tensor on the meta device (it has no values).
    """
    arrays = {str(k): v for k, v in state.items()
              if hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, type)}
    for key, value in arrays.items():
        if is_meta(value):
            raise meta_error(key)
    if kinds is not None:
        kinds = {str(k): v for k, v in kinds.items()}
    shapes = {k: tuple(int(d) for d in v.shape) for k, v in arrays.items()}
    if kinds is None:
        kinds = infer_kinds(shapes)
    kept, first_of = merge_identical({k: storage_identity(v) for k, v in arrays.items()})
    merged = Aliases()
    if aliases is not None:
        merged.merge(aliases, into=first_of)
    for dropped, first in first_of.items():
        merged.add(first, dropped)
    for key in kept:
        value = arrays[key]
        if isinstance(value, np.ndarray):
            dtype = value.dtype.name
            shape, load, note = _numpy_plan(value)
        else:
            dtype = torch_dtype_name(value.dtype)
            shape, load, note = _torch_plan(key, value)
        names, count = merged.of(key)
        yield WeightTensor(
            name=key,
            kind=kinds.get(key) or "other",
            shape=shape,
            dtype=dtype,
            group=group_of(key),
            loader=load,
            aliases=names,
            n_aliases=count,
            note=note,
        )


def tensors_from_module(model: Any) -> Iterator[WeightTensor]:
    """Yield the state-dict entries of an ``nn.Module`` with kinds from module types."""
    state = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    yield from tensors_from_state_dict(state, kinds_from_module(model, shapes))
