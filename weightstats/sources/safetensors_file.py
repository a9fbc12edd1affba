"""Safetensors files: the JSON header gives names, shapes and dtypes; tensors load one at a time."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from weightstats.arrays import read_only, stored_numpy_dtype
from weightstats.errors import LoadError
from weightstats.sources.base import WeightTensor, group_of, one_line, tensor_to_numpy
from weightstats.sources.graph import Aliases, merge_identical
from weightstats.sources.kinds import infer_kinds

_ST_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16",
    "U8": "uint8", "BOOL": "bool", "C64": "complex64",
}  # fmt: skip

# A header longer than this is not a safetensors header (the format caps it at 100 MB).
_MAX_HEADER = 100_000_000


def sniff_safetensors(head: bytes) -> bool:
    """True when the first bytes read as a safetensors file: a little-endian header length,
    then a JSON object."""
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= _MAX_HEADER and head[8:9] == b"{"


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


def safetensors_tensors(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """Yield a file's tensors in storage order; each opens the file lazily on ``load()``.

    ``allow_pickle`` is ignored: a safetensors file holds no code.
    """
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
    with open(path, "rb") as fh:
        data_start = 8 + int.from_bytes(fh.read(8), "little")
    for key in kept:
        info = header[key]

        def load(key: str = key) -> np.ndarray:
            mapped = _map_raw(path, data_start, header[key])
            if mapped is not None:
                return mapped
            if first_of:
                # safetensors refuses a header whose entries share bytes; read the range.
                return _read_safetensors_range(path, data_start, header[key])
            # One tensor at a time: safe_open memory-maps and copies just this tensor.
            with safe_open(str(path), framework="pt") as f:
                return tensor_to_numpy(f.get_tensor(key))

        names, count = aliases.of(key)
        yield WeightTensor(key, kinds[key], shapes[key],
                           _ST_DTYPES.get(info["dtype"], info["dtype"].lower()),
                           group_of(key), load, aliases=names, n_aliases=count)


def _map_raw(path: Path, data_start: int, info: dict[str, Any]) -> np.ndarray | None:
    """A tensor of at most 16 bits as a read-only memory map of its bytes, in its stored dtype
    (None for other dtypes, which are copied).

    Nothing is read until the caller touches the values, nothing is copied, and the mapping
    closes when the caller drops the array: a 16-bit tensor is read once, 2 bytes per value.
    """
    dtype = stored_numpy_dtype(_ST_DTYPES.get(info["dtype"], ""))
    if dtype is None or sys.byteorder != "little":  # the format is little-endian
        return None
    begin, end = info["data_offsets"]
    count, rest = divmod(end - begin, dtype.itemsize)
    if rest or count != math.prod(info["shape"]):
        raise LoadError(f"{path} has a corrupt safetensors header (its data_offsets do not hold "
                        f"{math.prod(info['shape'])} {dtype.name} values): download or save it again")
    if count == 0:  # an empty file range cannot be mapped
        return read_only(np.empty(0, dtype))
    # A plain read-only array over the map (its base), which closes when the array is dropped.
    return np.asarray(np.memmap(path, dtype=dtype, mode="r", offset=data_start + begin,
                                shape=(count,)))


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

