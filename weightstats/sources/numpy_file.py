"""NumPy files: ``.npz`` archives (shapes from each member's header, data on demand) and ``.npy``."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from weightstats.arrays import native
from weightstats.errors import LoadError
from weightstats.sources.base import WeightTensor, error_reason, group_of, tensors_from_state_dict
from weightstats.sources.kinds import infer_kinds
from weightstats.sources.sniff import zip_kind


def sniff_npz(head: bytes) -> bool:
    """True for a zip whose first member is a ``.npy`` array (``numpy.savez`` writes them), or
    a zip of no known kind."""
    kind = zip_kind(head)
    return kind is not None and kind != "torch"


def sniff_npy(head: bytes) -> bool:
    """True for the ``.npy`` magic string."""
    return head.startswith(b"\x93NUMPY")


def npz_tensors(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """Arrays of a .npz, shapes from each member's .npy header; data loads on demand.

    ``allow_pickle`` is ignored: object arrays are always refused.
    """
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


def npy_tensors(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """A single .npy array, memory-mapped; named after the file.

    float16 and 8/16-bit integer arrays load as a read-only view of the map (no copy, see
    ``WeightTensor.load``); other dtypes as a fresh copy.

    ``allow_pickle`` is ignored: object arrays are always refused.
    """
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:
        raise LoadError(f"{path} is not a readable .npy file ({error_reason(err)}): "
                        "save it again with numpy.save") from None
    yield from tensors_from_state_dict({path.stem: arr})
