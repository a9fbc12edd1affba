"""Core types shared by every source: :class:`WeightTensor` and :class:`ModelSource`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weightstats.errors import LoadError, WeightstatsError
from weightstats.layers import infer_kinds, kinds_from_module

# dtypes numpy cannot hold exactly; they are widened to float32 on load (exact for all of them).
_WIDEN = ("bfloat16", "float8")


def one_line(text: object, limit: int = 200) -> str:
    """Squash an exception message to one short line for embedding in our own messages."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


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


def torch_dtype_name(dtype: Any) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def tensor_to_numpy(t: Any) -> np.ndarray:
    """Convert a torch tensor to a fresh numpy array; bfloat16/float8 become float32 exactly."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if any(torch_dtype_name(t.dtype).startswith(w) for w in _WIDEN):
        t = t.float()
    # Copy: mmap-backed or module-owned storage must not be modified by the caller.
    return np.array(t.numpy(), copy=True)


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
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    group: str = ""
    loader: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        """True for real floating dtypes (float16/32/64, bfloat16, float8)."""
        return self.dtype.startswith("float") or self.dtype == "bfloat16"

    def load(self) -> np.ndarray:
        """Read the values; float16 stays float16, bfloat16 comes back as float32 (exact).

        Raises
        ------
        LoadError
            The data cannot be read (truncated or corrupt file).
        """
        if self.loader is None:
            raise LoadError(f"tensor {self.name} has no data attached: resolve the model again")
        try:
            # The reshape is inside: a corrupt file can hold fewer values than its header says.
            return np.asarray(self.loader()).reshape(self.shape)
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


def tensors_from_state_dict(
    state: Mapping[str, Any], kinds: Mapping[str, str] | None = None
) -> Iterator[WeightTensor]:
    """Wrap a mapping of name -> torch tensor / numpy array as lazy :class:`WeightTensor` s.

    Kinds come from ``kinds`` when given (module types), else from names and shapes.
    Non-array values (e.g. ``_extra_state``) are skipped.
    """
    arrays = {str(k): v for k, v in state.items()
              if hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, type)}
    if kinds is not None:
        kinds = {str(k): v for k, v in kinds.items()}
    shapes = {k: tuple(int(d) for d in v.shape) for k, v in arrays.items()}
    if kinds is None:
        kinds = infer_kinds(shapes)
    for key, value in arrays.items():
        if isinstance(value, np.ndarray):
            dtype = str(value.dtype)

            def load(v: np.ndarray = value) -> np.ndarray:
                if str(v.dtype).startswith(_WIDEN):
                    return v.astype(np.float32)
                return np.array(v, copy=True)
        else:
            dtype = torch_dtype_name(value.dtype)

            def load(v: Any = value) -> np.ndarray:
                return tensor_to_numpy(v)

        yield WeightTensor(
            name=key,
            kind=kinds.get(key) or "other",
            shape=shapes[key],
            dtype=dtype,
            group=group_of(key),
            loader=load,
        )


def tensors_from_module(model: Any) -> Iterator[WeightTensor]:
    """Yield the state-dict entries of an ``nn.Module`` with kinds from module types."""
    state = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    yield from tensors_from_state_dict(state, kinds_from_module(model, shapes))
