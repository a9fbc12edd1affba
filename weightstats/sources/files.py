"""Local weight files: safetensors (lazy), PyTorch pickles, TorchScript, NumPy, HF-style folders.

ONNX lives in :mod:`weightstats.sources.onnx_source`.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import stat
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weightstats.arrays import native
from weightstats.errors import LoadError, SpecError
from weightstats.layers import infer_kinds
from weightstats.sources.base import (
    ModelSource,
    WeightTensor,
    error_reason,
    group_of,
    one_line,
    tensor_to_numpy,
    tensors_from_module,
    tensors_from_state_dict,
)
from weightstats.sources.graph import Aliases, flatten_once, merge_identical
from weightstats.sources.layout import choose_weight_file, subfolders_with_weights
from weightstats.sources.torchscript import torchscript_tensors

TORCH_EXTS = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".tar", ".jit", ".ptl", ".torchscript")

_ST_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16",
    "U8": "uint8", "BOOL": "bool", "C64": "complex64",
}  # fmt: skip

# Keys under which checkpoints nest the weights, most specific first (Lightning, pythae, ...).
_NESTED_KEYS = (
    "state_dict", "model_state_dict", "model", "module", "net", "network", "params",
    "weights", "ema", "model_ema", "state_dict_ema",
)  # fmt: skip
_SKIP_KEYS = {"optimizer", "optimizer_states", "optimizer_state_dict", "lr_schedulers", "scheduler"}
# Wrapper prefixes (DataParallel, Lightning, torch.compile) stripped when every key has one.
_WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")


# ----------------------------------------------------------------------------- safetensors
def safetensors_header(path: Path) -> dict[str, dict[str, Any]]:
    """Read the JSON header of a .safetensors file (no tensor data is read).

    Raises
    ------
    LoadError
        The header is missing, malformed, or points past the end of the file.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        n = int.from_bytes(raw, "little") if len(raw) == 8 else -1
        if n <= 0 or n > size - 8:
            raise LoadError(f"{path} is not a valid safetensors file (bad header length): "
                            "download or save it again")
        try:
            header = json.loads(fh.read(n))
        except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
            raise LoadError(f"{path} has a corrupt safetensors header ({one_line(err)}): "
                            "download or save it again") from None
    if not isinstance(header, dict):
        raise LoadError(f"{path} has a corrupt safetensors header (not a JSON object): "
                        "download or save it again")
    header.pop("__metadata__", None)
    data_len = size - 8 - n
    for key, info in header.items():
        problem = _bad_header_entry(info, data_len)
        if problem:
            raise LoadError(f"{path} has a corrupt safetensors header (tensor {key!r}: "
                            f"{problem}): download or save it again")
    return header


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _bad_header_entry(info: Any, data_len: int) -> str:
    """Why a safetensors header entry is unusable ("" when it is fine)."""
    if not isinstance(info, dict):
        return "entry is not an object"
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or not dtype:
        return "missing dtype"
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        return "bad shape"
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_count(o) for o in offsets) or offsets[0] > offsets[1]):
        return "bad data_offsets"
    if offsets[1] > data_len:
        return "data ends past the end of the file, it is truncated"
    return ""


def safetensors_tensors(path: Path) -> Iterator[WeightTensor]:
    """Yield a file's tensors in storage order; each opens the file lazily on ``load()``."""
    from safetensors import safe_open

    header = safetensors_header(path)
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    shapes = {k: tuple(int(d) for d in v["shape"]) for k, v in items}
    kinds = infer_kinds(shapes)
    # Names whose entries are the same bytes read as the same tensor are one (tied) tensor.
    kept, first_of = merge_identical({
        k: (tuple(v["data_offsets"]), v["dtype"], shapes[k])
        if v["data_offsets"][1] > v["data_offsets"][0] else None for k, v in items})
    aliases = Aliases()
    for dropped, first in first_of.items():
        aliases.add(first, dropped)
    data_start = 0
    if first_of:
        with open(path, "rb") as fh:
            data_start = 8 + int.from_bytes(fh.read(8), "little")
    for key in kept:
        info = header[key]

        def load(key: str = key) -> np.ndarray:
            if data_start:
                # safetensors refuses a header whose entries share bytes; read the range.
                return _read_safetensors_range(path, data_start, header[key])
            # One tensor at a time: safe_open memory-maps and copies just this tensor.
            with safe_open(str(path), framework="pt") as f:
                return tensor_to_numpy(f.get_tensor(key))

        names, count = aliases.of(key)
        yield WeightTensor(key, kinds[key], shapes[key],
                           _ST_DTYPES.get(info["dtype"], info["dtype"].lower()),
                           group_of(key), load, aliases=names, n_aliases=count)


def _read_safetensors_range(path: Path, data_start: int, info: dict[str, Any]) -> np.ndarray:
    """One tensor's bytes as values (little-endian, as the format stores them)."""
    import torch

    begin, end = info["data_offsets"]
    dtype = getattr(torch, _ST_DTYPES.get(info["dtype"], ""), None)
    if not isinstance(dtype, torch.dtype):
        raise LoadError(f"{path}: unsupported safetensors dtype {info['dtype']!r}: "
                        "convert the file to a standard dtype")
    with open(path, "rb") as fh:
        fh.seek(data_start + begin)
        raw = bytearray(fh.read(end - begin))
    return tensor_to_numpy(torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype))


def index_shards(index_path: Path) -> list[Path]:
    """Shard files listed by a ``*.index.json`` (order of first appearance)."""
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
        files = list(dict.fromkeys(weight_map.values()))
        if not all(isinstance(f, str) and f for f in files):
            raise TypeError("weight_map values must be file names")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise LoadError(f"{index_path} is not a valid shard index ({error_reason(err)}): "
                        "download it again") from None
    return [index_path.parent / f for f in files]


# ----------------------------------------------------------------------------- torch pickles
def _is_array(v: Any) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, type)


def _checkpoint_children(obj: Any) -> list[tuple[str, Any]] | None:
    if not isinstance(obj, Mapping):
        return None
    return [(str(k), v) for k, v in obj.items() if str(k) not in _SKIP_KEYS]


def _flatten(obj: Mapping[str, Any]) -> tuple[dict[str, Any], Aliases]:
    """Tensors of nested dicts under dotted names; each dict and tensor visited once."""
    return flatten_once(obj, _checkpoint_children, _is_array)


def find_weights(obj: Any) -> tuple[Any, Aliases]:
    """Find the module or the dict of tensors inside a loaded checkpoint (None if neither).

    Returns the weights and the other names of shared tensors (a dict reached by two keys).
    """
    import torch

    if isinstance(obj, torch.nn.Module):
        return obj, Aliases()
    if not isinstance(obj, Mapping):
        return None, Aliases()
    if obj and all(_is_array(v) for v in obj.values()):
        return dict(obj), Aliases()
    for key in _NESTED_KEYS:
        v = obj.get(key)
        if isinstance(v, torch.nn.Module) or (isinstance(v, Mapping) and _flatten(v)[0]):
            return find_weights(v)
    found, aliases = _flatten(obj)
    return (found or None), aliases


def wrapper_prefix(names: list[str]) -> str:
    """``module.``/``model.``/``_orig_mod.`` (stacked) when every name carries it, else ``""``."""
    prefix = ""
    for p in _WRAPPER_PREFIXES:
        if names and all(k.startswith(prefix + p) for k in names):
            prefix += p
    return prefix


def strip_wrapper_prefix(state: dict[str, Any],
                         aliases: Aliases | None = None) -> tuple[dict[str, Any], Aliases]:
    """Drop wrapper prefixes when every key carries them (display only), aliases included."""
    aliases = aliases or Aliases()
    prefix = wrapper_prefix(list(state))
    if not prefix:
        return state, aliases
    cut = len(prefix)
    renamed = Aliases()
    for first, names in aliases.names.items():
        for n in names:
            renamed.add(first[cut:], n.removeprefix(prefix))
        renamed.counts[first[cut:]] = aliases.counts[first]
    return {k[cut:]: v for k, v in state.items()}, renamed


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zips with a ``code/`` folder and ``constants.pkl``."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False  # not a usable zip: torch.load gives the error message


def torch_load(path: Path, allow_pickle: bool) -> Any:
    """``torch.load`` with ``weights_only`` unless allowed, memory-mapped where possible.

    Raises
    ------
    LoadError
        The pickle needs arbitrary Python objects (refused without ``allow_pickle``), or the
        file is corrupt.
    """
    import torch

    kwargs: dict[str, Any] = {"map_location": "cpu", "weights_only": not allow_pickle}
    try:
        with warnings.catch_warnings():
            # Harmless warnings of valid files: old pickle protocols, and torch's notices about
            # quantized/typed storages and sparse-invariant checks. Each would print lines.
            for message in (".*pickle protocol", ".*TypedStorage is deprecated",
                            ".*sparse tensor invariants", ".*quantiz"):
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            try:
                return torch.load(path, mmap=True, **kwargs)
            except RuntimeError as err:
                # Legacy (non-zip) files cannot be memory-mapped; load them normally.
                if "mmap" not in str(err):
                    raise
                return torch.load(path, **kwargs)
    except pickle.UnpicklingError as err:
        if not allow_pickle and "weights only" in str(err).lower():
            raise LoadError(
                f"{path} holds arbitrary Python objects, which could run code when loaded: "
                "pass --allow-pickle (library: allow_pickle=True) only if you trust the file"
            ) from None
        raise LoadError(f"{path} is not a readable PyTorch file ({error_reason(err)}): "
                        "download or save it again") from None
    except Exception as err:  # a corrupt pickle can raise almost anything (KeyError, EOFError...)
        raise LoadError(f"{path} is not a readable PyTorch file ({error_reason(err)}): "
                        "download or save it again") from None


def torch_file_tensors(path: Path, allow_pickle: bool) -> Iterator[WeightTensor]:
    """Tensors of a .pt/.pth/.bin/.ckpt file or a TorchScript archive."""
    import torch

    if is_torchscript(path):
        yield from torchscript_tensors(path, allow_pickle)
        return
    found, aliases = find_weights(torch_load(path, allow_pickle))
    if found is None:
        raise LoadError(f"{path} holds no tensors (not a state dict or module): "
                        "save model.state_dict() with torch.save")
    if isinstance(found, torch.nn.Module):
        yield from tensors_from_module(found)
    else:
        state, aliases = strip_wrapper_prefix(found, aliases)
        yield from tensors_from_state_dict(state, aliases=aliases)


# ----------------------------------------------------------------------------- numpy
def npz_tensors(path: Path) -> Iterator[WeightTensor]:
    """Arrays of a .npz, shapes from each member's .npy header; data loads on demand."""
    meta: dict[str, tuple[tuple[int, ...], str]] = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as fp:
                    version = np.lib.format.read_magic(fp)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = reader(fp)
                    header_len = fp.tell()
                key = info.filename[:-4]
                if dtype.hasobject:
                    raise LoadError(f"{path} member {key} holds Python objects, not numbers: "
                                    "save plain arrays with numpy.savez")
                if info.file_size < header_len + math.prod(shape) * dtype.itemsize:
                    raise LoadError(f"{path} member {key} is truncated (shorter than its "
                                    "header says): save it again with numpy.savez")
                meta[key] = (tuple(shape), dtype.name)
    except LoadError:
        raise
    except Exception as err:  # BadZipFile, ValueError, EOFError, zlib.error, ...
        raise LoadError(f"{path} is not a readable .npz file ({error_reason(err)}): "
                        "save it again with numpy.savez") from None
    kinds = infer_kinds({k: s for k, (s, _) in meta.items()})
    for key, (shape, dtype) in meta.items():

        def load(key: str = key) -> np.ndarray:
            with np.load(path, allow_pickle=False) as z:
                arr = z[key]
            return native(arr)  # a big-endian member (">f4") in the machine's byte order

        yield WeightTensor(key, kinds[key], shape, dtype, group_of(key), load)


def npy_tensors(path: Path) -> Iterator[WeightTensor]:
    """A single .npy array, memory-mapped; named after the file."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:
        raise LoadError(f"{path} is not a readable .npy file ({error_reason(err)}): "
                        "save it again with numpy.save") from None
    yield from tensors_from_state_dict({path.stem: arr})


# ----------------------------------------------------------------------------- dispatch
def check_file(path: Path) -> None:
    """Refuse what cannot be a weights file before any reader touches it.

    Raises
    ------
    LoadError
        ``path`` is not a regular file (a FIFO or device could block forever), is empty, or
        cannot be read (permissions).
    """
    try:
        st = path.stat()
    except OSError as err:
        raise LoadError(f"cannot read {path} ({err.strerror or error_reason(err)}): check the path "
                        "and its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        raise LoadError(f"{path} is not a regular file: pass a weights file (.safetensors, "
                        ".pt, .bin, .onnx, .npz)")
    if st.st_size == 0:
        raise LoadError(f"{path} is empty (0 bytes): the download or save did not finish, "
                        "do it again")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as err:
        raise LoadError(f"cannot read {path} ({err.strerror or error_reason(err)}): check the file's "
                        "permissions (e.g. chmod u+r)") from None


def path_tensors(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """Tensors of any supported file (by extension, then by content)."""
    name = path.name.lower()
    check_file(path)
    if name.endswith(".index.json"):
        for shard in index_shards(path):
            if not shard.exists():
                raise LoadError(f"shard {shard} listed in {path.name} is missing: "
                                "download all shards into the same folder")
            yield from path_tensors(shard, allow_pickle)
    elif name.endswith(".safetensors"):
        yield from safetensors_tensors(path)
    elif name.endswith(".onnx"):
        from weightstats.sources.onnx_source import onnx_tensors

        yield from onnx_tensors(path)
    elif name.endswith(".npz"):
        yield from npz_tensors(path)
    elif name.endswith(".npy"):
        yield from npy_tensors(path)
    else:
        # .pt/.pth/.bin/.ckpt and unknown extensions: torch.load refuses what it cannot read.
        yield from torch_file_tensors(path, allow_pickle)


def local_folder_choice(folder: Path) -> Path:
    """The weights file of an HF-style folder (see :mod:`~weightstats.sources.layout`)."""
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    chosen = choose_weight_file(files, where=str(folder))
    if chosen is None:
        subs = subfolders_with_weights(files)
        hint = (f"pick a subfolder such as {folder / subs[0]}" if subs
                else "pass a weights file (.safetensors, .pt, .bin, .onnx, .npz)")
        raise SpecError(f"{folder} is a directory without a weights file: {hint}")
    return folder / chosen


class FileSource(ModelSource):
    """A local weights file or HF-style folder."""

    kind_of_source = "file"

    def __init__(self, path: str | os.PathLike[str], *, allow_pickle: bool = False,
                 spec: str | None = None) -> None:
        p = Path(path).expanduser()
        try:
            exists = p.exists()
        except OSError as err:  # a name longer than the file system allows, and the like
            raise SpecError(f"cannot use the path {p} ({err.strerror or err}): check the path "
                            "(or use a model name, see `weightstats list`)") from None
        if not exists:
            raise SpecError(f"no such file: {p}: check the path (or use a model name, see "
                            "`weightstats list`)")
        self.path = local_folder_choice(p) if p.is_dir() else p
        stem = p.name if p.is_dir() else Path(p.name.removesuffix(".index.json")).stem
        super().__init__(stem, spec or str(path), f"local file {self.path}")
        self.allow_pickle = allow_pickle

    def _tensors(self) -> Iterator[WeightTensor]:
        yield from path_tensors(self.path, self.allow_pickle)
