"""TorchScript archives, read without running any of their code.

An archive written by ``torch.jit.save`` is a zip: ``<root>/data.pkl`` pickles the module
tree, ``<root>/code/`` holds the TorchScript source of every class (``__setstate__``
included) and ``<root>/data/<key>`` the raw bytes of each storage. ``torch.jit.load`` runs the
archive's ``__setstate__`` methods, which can do whatever TorchScript can: ``torch.from_file
(path, True, n)`` memory-maps any file the user can write and overwrites it.

Here ``data.pkl`` goes through a restricted unpickler instead: the archive's classes become
inert records of their state, the only callables are stand-ins for torch's tensor-rebuild
functions (they record storage key, offset, shape and stride and nothing else), and which
attributes are parameters and buffers comes from the ``__parameters__``/``__buffers__``
declarations in ``code/``, parsed as text. The names and values equal
``torch.jit.load(path).state_dict()``. A module whose class sets its own state with code
(``__setstate__``) cannot be read that way; it is refused unless the user opts in.
"""

from __future__ import annotations

import ast
import collections
import io
import math
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from weightstats.arrays import stored_layout, torch_values
from weightstats.errors import LoadError
from weightstats.sources.base import WeightTensor, error_reason, group_of, tensors_from_module
from weightstats.sources.graph import MAX_DEPTH, Aliases, merge_identical
from weightstats.sources.kinds import kinds_from_owner_kinds, module_kind

OPT_IN = "pass --allow-pickle (library: allow_pickle=True) only if you trust the file"

_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}  # fmt: skip
_CLASS_RE = re.compile(r"^class ([A-Za-z_]\w*)\((\w+)\):")
_DECL_RE = re.compile(r"^  (__parameters__|__buffers__) = (\[.*\])\s*$")
_MANGLE_RE = re.compile(r"\.___torch_mangle_\d+")


class NeedsCode(Exception):
    """The archive's weights can only be had by running its code (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: str


@dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    dtype: str
    numel: int


@dataclass(frozen=True, slots=True)
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _Object:
    """An instance of one of the archive's classes: its pickled state, nothing run."""

    qualname = ""

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "_state", state)


@dataclass
class _ClassInfo:
    is_module: bool
    params: list[str] = field(default_factory=list)
    buffers: list[str] = field(default_factory=list)
    has_setstate: bool = False


def _counts(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, tuple | list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise ValueError(f"bad tensor {what}")
    return tuple(values)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise ValueError("tensor without a storage record")
    size, stride = _counts(size, "size"), _counts(stride, "stride")
    (offset,) = _counts([offset], "offset")
    if len(size) != len(stride):
        raise ValueError("tensor size and stride differ in length")
    return _TensorRef(storage, offset, size, stride)


def _first(value: Any, *_: Any) -> Any:
    return value


# The only callables a data.pkl may name. None of them runs anything from the file.
_FUNCTIONS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _first,
    ("torch._utils", "_rebuild_parameter_with_state"): _first,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch.jit._pickle", "build_intlist"): _first,
    ("torch.jit._pickle", "build_doublelist"): _first,
    ("torch.jit._pickle", "build_boollist"): _first,
    ("torch.jit._pickle", "build_tensorlist"): _first,
    ("torch.jit._pickle", "build_stringlist"): _first,
    ("torch.jit._pickle", "restore_type_tag"): _first,
}


class _Unpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` into inert records; refuses every other global."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self._classes: dict[str, type[_Object]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qualname = f"{module}.{name}"
            if qualname not in self._classes:
                self._classes[qualname] = type(name, (_Object,), {"qualname": qualname})
            return self._classes[qualname]
        if (module, name) in _FUNCTIONS:
            return _FUNCTIONS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise NeedsCode(f"its data.pkl calls {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise ValueError("unknown persistent record in data.pkl")
        (numel,) = _counts([pid[4]], "storage size")
        return _Storage(pid[2], pid[1].dtype, numel)


def _parse_classes(z: zipfile.ZipFile, root: str) -> dict[str, _ClassInfo]:
    """Class declarations of ``<root>/code/**.py``, read as text (never compiled or run)."""
    classes: dict[str, _ClassInfo] = {}
    code = f"{root}code/"
    for member in z.namelist():
        if not (member.startswith(code) and member.endswith(".py")):
            continue
        module = member[len(code):-3].replace("/", ".")
        current: _ClassInfo | None = None
        for line in z.read(member).decode("utf-8", "replace").splitlines():
            m = _CLASS_RE.match(line)
            if m:
                current = _ClassInfo(is_module=m.group(2) == "Module")
                classes[f"{module}.{m.group(1)}"] = current
                continue
            if current is None or not line.startswith("  "):
                if line and not line[0].isspace():
                    current = None
                continue
            d = _DECL_RE.match(line)
            if d:
                names = ast.literal_eval(d.group(2))  # a list of string literals, nothing else
                if not all(isinstance(n, str) for n in names):
                    raise ValueError(f"bad {d.group(1)} in {member}")
                setattr(current, "params" if d.group(1) == "__parameters__" else "buffers",
                        list(names))
            elif line.startswith("  def __setstate__("):
                current.has_setstate = True
    return classes


@dataclass
class Archive:
    """What a TorchScript archive holds, read without running it."""

    path: Path
    root: str
    tensors: dict[str, _TensorRef]
    owners: dict[str, str | None]
    aliases: Aliases


def _walk(top: Any, classes: dict[str, _ClassInfo]) -> tuple[dict[str, _TensorRef],
                                                             dict[str, str | None], Aliases]:
    """Parameters and buffers in ``state_dict`` order; each module object visited once."""
    tensors: dict[str, _TensorRef] = {}
    owners: dict[str, str | None] = {}
    aliases = Aliases()
    seen: dict[int, str] = {}
    shared: list[tuple[str, str]] = []

    def visit(obj: _Object, prefix: str, depth: int) -> None:
        info = classes.get(obj.qualname)
        if info is None:
            raise ValueError(f"no declaration of class {obj.qualname} in code/")
        if info.has_setstate:
            raise NeedsCode(f"class {_short(obj.qualname)} sets its state with code "
                            "(__setstate__), which would run when loaded")
        state = getattr(obj, "_state", None)
        if not isinstance(state, dict) or depth > MAX_DEPTH:
            raise ValueError(f"module {prefix or '(top)'} has no readable state")
        seen[id(obj)] = prefix
        owners[prefix.removesuffix(".")] = module_kind(
            SimpleNamespace(original_name=_short(obj.qualname)))
        for attr in info.params + info.buffers:
            value = state.get(attr)
            if isinstance(value, _TensorRef):
                tensors[prefix + attr] = value
        for key, value in state.items():
            if not isinstance(value, _Object) or not getattr(
                    classes.get(value.qualname), "is_module", False):
                continue
            if id(value) in seen:
                shared.append((f"{prefix}{key}.", seen[id(value)]))
            else:
                visit(value, f"{prefix}{key}.", depth + 1)

    if not isinstance(top, _Object):
        raise ValueError("data.pkl does not hold a module")
    visit(top, "", 0)
    for later, first in shared:  # a module registered under two names: its tensors are tied
        for name in [n for n in tensors if n.startswith(first)]:
            aliases.add(name, later + name[len(first):])
    return tensors, owners, aliases


def _short(qualname: str) -> str:
    return _MANGLE_RE.sub("", qualname).rpartition(".")[2]


def read_torchscript(path: Path) -> Archive:
    """List a TorchScript archive's parameters and buffers without running any of its code.

    Raises
    ------
    NeedsCode
        The weights cannot be named without running the archive's code.
    LoadError
        The archive is corrupt.
    """
    try:
        with zipfile.ZipFile(path) as z:
            pickles = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise NeedsCode("it is in the old TorchScript format (no data.pkl)")
            root = pickles[0].removesuffix("data.pkl")
            if root + "byteorder" in z.namelist() and z.read(root + "byteorder") != b"little":
                raise NeedsCode("it stores big-endian data")
            classes = _parse_classes(z, root)
            top = _Unpickler(z.read(pickles[0])).load()
        tensors, owners, aliases = _walk(top, classes)
    except (NeedsCode, LoadError):
        raise
    except Exception as err:  # a corrupt zip or pickle can raise almost anything
        raise LoadError(f"{path} is a corrupt TorchScript archive ({error_reason(err)}): "
                        "export it again") from None
    return Archive(path, root, tensors, owners, aliases)


def _load_ref(archive: Archive, name: str, ref: _TensorRef,
              size: tuple[int, ...], stride: tuple[int, ...]) -> np.ndarray:
    import torch

    dtype = getattr(torch, ref.storage.dtype)
    member = f"{archive.root}data/{ref.storage.key}"
    nbytes = ref.storage.numel * dtype.itemsize
    with zipfile.ZipFile(archive.path) as z:
        info = z.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED or info.file_size < nbytes:
            raise LoadError(f"tensor {name}: storage record {member} is compressed or shorter "
                            f"than its {ref.storage.numel} values: export the archive again")
        with z.open(info) as fh:
            raw = bytearray(fh.read(nbytes))
    flat = torch.frombuffer(raw, dtype=dtype) if nbytes else torch.empty(0, dtype=dtype)
    span = 1 + sum((s - 1) * st for s, st in zip(size, stride, strict=True))
    if math.prod(size) and ref.offset + span > ref.storage.numel:
        raise LoadError(f"tensor {name} reaches past the end of its storage: the archive is "
                        "corrupt, export it again")
    return torch_values(flat.as_strided(size, stride, ref.offset))


def archive_tensors(archive: Archive) -> Iterator[WeightTensor]:
    """The archive's tensors as lazy :class:`WeightTensor` s (tied entries merged)."""
    shapes = {n: r.size for n, r in archive.tensors.items()}
    kinds = kinds_from_owner_kinds(archive.owners, shapes)
    kept, first_of = merge_identical({
        n: (r.storage.key, r.offset, r.size, r.stride, r.storage.dtype) if math.prod(r.size)
        else None for n, r in archive.tensors.items()})
    aliases = Aliases()
    aliases.merge(archive.aliases, into=first_of)
    for dropped, first in first_of.items():
        aliases.add(first, dropped)
    for name in kept:
        ref = archive.tensors[name]
        size, stride = stored_layout(ref.size, ref.stride)
        note = ""
        if size != ref.size:
            note = (f"expanded view: {math.prod(ref.size)} elements over {math.prod(size)} "
                    "stored values, each fitted once")

        def load(name: str = name, ref: _TensorRef = ref, size: tuple[int, ...] = size,
                 stride: tuple[int, ...] = stride) -> np.ndarray:
            return _load_ref(archive, name, ref, size, stride)

        names, count = aliases.of(name)
        yield WeightTensor(name, kinds[name], size, ref.storage.dtype, group_of(name), load,
                           aliases=names, n_aliases=count, note=note)


def torchscript_tensors(path: Path, allow_pickle: bool) -> Iterator[WeightTensor]:
    """Tensors of a TorchScript archive; ``torch.jit.load`` (runs code) only when opted in.

    Raises
    ------
    LoadError
        The archive needs its code run and ``allow_pickle`` is off, or it is corrupt.
    """
    try:
        archive = read_torchscript(path)
    except NeedsCode as why:
        if not allow_pickle:
            raise LoadError(f"{path} is a TorchScript archive that can only be read by running "
                            f"its code ({why}): {OPT_IN}") from None
        yield from _jit_load_tensors(path)
        return
    yield from archive_tensors(archive)


def _jit_load_tensors(path: Path) -> Iterator[WeightTensor]:
    """``torch.jit.load``: runs the archive's code. Only behind the user's explicit opt-in."""
    import torch

    try:
        with warnings.catch_warnings():  # TorchScript is deprecated; reading it is still fine
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:
        raise LoadError(f"{path} is a corrupt TorchScript archive ({error_reason(err)}): "
                        "export it again") from None
    yield from tensors_from_module(module)
