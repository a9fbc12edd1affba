"""GGUF files (llama.cpp): the header is parsed by the ``gguf`` package, tensors load one at a time.

GGUF stores a tensor's dimensions fastest-varying first (``ne0`` is the row length); the shapes
here are reversed to NumPy/PyTorch order, so a linear weight is ``(out, in)`` and ``token_embd``
is ``(vocab, hidden)``, as in the PyTorch checkpoint the file was converted from.

Float tensors (F32, F16, BF16, F64) load exactly; F16, BF16 and I8/I16 in their stored dtype
(bfloat16 as ``ml_dtypes.bfloat16``), as a read-only memory map of their bytes (copied only from
a big-endian file). Quantized tensors (Q8_0, Q4_K, ...) are dequantized by ``gguf.quants.dequantize``:
their values lie on a grid of a few levels per block, each block on its own scale, so the dtype
names the GGUF type (``"gguf:Q4_K"``) and the tensor's ``grid`` says so: the fit declines it as
quantized (a discrete law), as it does a tensor whose atoms carry nearly every value.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from weightstats.arrays import stored_numpy_dtype
from weightstats.errors import LoadError
from weightstats.sources.base import WeightTensor, error_reason, group_of
from weightstats.sources.kinds import infer_kinds

GGUF_MAGIC = b"GGUF"
# The smallest key/value entry and tensor-info entry (an empty name and no dims): a count in the
# header that would need more bytes than the file has is corrupt, refused before parsing it.
_MIN_KV_BYTES = 8 + 4 + 1
_MIN_INFO_BYTES = 8 + 4 + 4 + 8
_FLOATS = {"F32": "float32", "F16": "float16", "F64": "float64", "BF16": "bfloat16"}
_INTS = {"I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64"}
_AGAIN = "download or convert it again"
_VERSIONS = (2, 3)  # what gguf.GGUFReader reads (version 1 predates 64-bit counts)


def sniff_gguf(head: bytes) -> bool:
    """True for the GGUF magic bytes."""
    return head.startswith(GGUF_MAGIC)


@dataclass(frozen=True)
class _Entry:
    """One tensor of the file, as its header describes it (no data)."""

    name: str
    type_name: str
    shape: tuple[int, ...]  # NumPy order (reversed GGUF dims)
    offset: int  # absolute, in the file
    n_bytes: int


def _check_counts(path: Path, size: int) -> None:
    """Refuse a bad magic or header counts that cannot fit in the file, in one line."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or not head.startswith(GGUF_MAGIC):
        what = "too short for a GGUF header" if head.startswith(GGUF_MAGIC) else "bad magic"
        raise LoadError(f"{path} is not a readable GGUF file ({what}): {_AGAIN}")
    order = "<" if int.from_bytes(head[4:8], "little") & 0xFFFF else ">"
    version = int.from_bytes(head[4:8], "little" if order == "<" else "big")
    if version not in _VERSIONS:
        raise LoadError(f"{path} is GGUF version {version}, which weightstats does not read "
                        f"(versions {', '.join(map(str, _VERSIONS))}): convert it again with a "
                        "current llama.cpp")
    n_tensors, n_kv = np.frombuffer(head[8:24], dtype=f"{order}u8").tolist()
    if n_tensors * _MIN_INFO_BYTES + n_kv * _MIN_KV_BYTES > size - 24:
        raise LoadError(f"{path} is not a readable GGUF file (its header counts {n_tensors} "
                        f"tensors and {n_kv} metadata entries, more than the file can hold; "
                        f"it is truncated or corrupt): {_AGAIN}")


def gguf_entries(path: Path) -> tuple[list[_Entry], str]:
    """The tensors a GGUF header lists, and the file's byte order (``"<"`` or ``">"``).

    Raises
    ------
    LoadError
        The file is truncated or its header is corrupt.
    """
    size = path.stat().st_size
    _check_counts(path, size)
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path, "r")
        order = ">" if (reader.byte_order == "S") == (np.little_endian) else "<"
        entries = [
            _Entry(t.name, t.tensor_type.name, tuple(int(d) for d in reversed(t.shape.tolist())),
                   int(t.data_offset), int(t.n_bytes))
            for t in reader.tensors
        ]
    except Exception as err:  # ValueError, IndexError, KeyError, UnicodeDecodeError, ...
        raise LoadError(f"{path} is not a readable GGUF file ({error_reason(err)}; it is "
                        f"truncated or corrupt): {_AGAIN}") from None
    finally:
        reader = None  # unmaps the file: tensors are read again one at a time
    for e in entries:
        if e.offset + e.n_bytes > size:
            raise LoadError(f"{path} is truncated (tensor {e.name!r} ends past the end of the "
                            f"file): {_AGAIN}")
    return entries, order


def _read_bytes(path: Path, offset: int, n_bytes: int) -> np.ndarray:
    with open(path, "rb") as fh:
        fh.seek(offset)
        raw = np.fromfile(fh, dtype=np.uint8, count=n_bytes)
    if raw.size != n_bytes:
        raise LoadError(f"{path} is truncated (a tensor ends past the end of the file): {_AGAIN}")
    return raw


def _map_raw(path: Path, e: _Entry, order: str) -> np.ndarray | None:
    """A tensor of at most 16 bits (F16, BF16, I8, I16) in its stored dtype, in NumPy order: a
    read-only memory map of its bytes (a native copy from a big-endian file); None for others."""
    dtype = stored_numpy_dtype({**_FLOATS, **_INTS}.get(e.type_name, ""))
    if dtype is None:
        return None
    count = int(np.prod(e.shape, dtype=np.int64))
    if e.n_bytes != count * dtype.itemsize:
        raise LoadError(f"{path}: tensor {e.name!r} holds {e.n_bytes} bytes, not the "
                        f"{count * dtype.itemsize} its shape needs; it is corrupt: {_AGAIN}")
    if count == 0:
        return np.empty(e.shape, dtype)
    if (order == "<") != (sys.byteorder == "little"):
        bits = f"u{dtype.itemsize}"  # swap as unsigned bit patterns: ml_dtypes has no '>' types
        raw = _read_bytes(path, e.offset, e.n_bytes).view(f"{order}{bits}")
        return raw.astype(f"={bits}").view(dtype).reshape(e.shape)
    # A plain read-only array over the map (its base), which closes when the array is dropped.
    return np.asarray(np.memmap(path, dtype=dtype, mode="r", offset=e.offset, shape=e.shape))


def load_entry(path: Path, e: _Entry, order: str) -> np.ndarray:
    """One tensor's values in NumPy order (see the module docstring for the dtypes)."""
    mapped = _map_raw(path, e, order)
    if mapped is not None:
        return mapped
    raw = _read_bytes(path, e.offset, e.n_bytes)
    plain = {**_FLOATS, **_INTS}
    if e.type_name in plain:
        kind = {"float16": "f2", "float32": "f4", "float64": "f8", "int8": "i1", "int16": "i2",
                "int32": "i4", "int64": "i8"}[plain[e.type_name]]
        return raw.view(f"{order}{kind}").astype(f"={kind}").reshape(e.shape)
    if order != "<":
        raise LoadError(f"{path}: quantized tensor {e.name!r} in a big-endian GGUF file is not "
                        "supported: convert the file on a little-endian machine")
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quant_shape_to_byte_shape

    qtype = GGMLQuantizationType[e.type_name]
    try:
        blocks = raw.reshape(quant_shape_to_byte_shape(e.shape, qtype))
        values = dequantize(blocks, qtype)
    except NotImplementedError:
        raise LoadError(f"{path}: tensor {e.name!r} is GGUF type {e.type_name}, which the gguf "
                        "package cannot dequantize: upgrade gguf (pip install -U gguf)") from None
    return np.asarray(values, dtype=np.float32).reshape(e.shape)


def _dtype_note_grid(type_name: str) -> tuple[str, str, str]:
    """The dtype string, the report's note and the grid description of a GGUF tensor type."""
    if type_name in _FLOATS:
        return _FLOATS[type_name], "", ""
    if type_name in _INTS:
        return _INTS[type_name], "", ""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]][0]
    # Each block has its own scale, so the tensor as a whole is on no single grid: the atom test
    # sees only the levels that blocks happen to share (it read a Q8_0 t(6) tensor as "pruned"
    # and fitted the rest), hence the grid is stated by the reader and the fit declines.
    return (f"gguf:{type_name}", f"stored as GGUF {type_name}, dequantized by the gguf package",
            f"GGUF {type_name}: blocks of {block} values, each on a few levels of its own scale")


def gguf_tensors(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """Yield a GGUF file's tensors in storage order; each reads its own bytes on ``load()``.

    ``allow_pickle`` is ignored: a GGUF file holds no code.
    """
    entries, order = gguf_entries(path)
    kinds = infer_kinds({e.name: e.shape for e in entries})
    for e in entries:
        dtype, note, grid = _dtype_note_grid(e.type_name)

        def load(e: _Entry = e) -> Any:
            return load_entry(path, e, order)

        yield WeightTensor(e.name, kinds[e.name], e.shape, dtype, group_of(e.name), load,
                           note=note, grid=grid)

