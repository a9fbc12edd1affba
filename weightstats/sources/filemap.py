"""Read a tensor that lives in a memory-mapped file through a map of its own bytes (Linux).

``torch.load(mmap=True)`` maps the whole checkpoint for as long as the state dict lives: every
page a fit reads through it stays in the process's resident set until then, so reading a large
checkpoint tensor by tensor would end with the whole file resident. :func:`own_map` finds where
a loaded array's bytes lie in the file (from ``/proc/self/maps``) and returns the same values
over a read-only ``np.memmap`` of just that range, which is unmapped when the array is dropped:
as with a safetensors file, one tensor's pages are resident at a time.

The file's bytes equal the values only where nothing wrote to the mapped pages (a private
mapping keeps such writes in memory): callers use it for checkpoints loaded with
``weights_only=True`` and no byte swapping.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np


def _byte_bounds(arr: np.ndarray) -> tuple[int, int]:
    try:
        from numpy.lib.array_utils import byte_bounds  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        byte_bounds = np.byte_bounds  # noqa: NPY201
    low, high = byte_bounds(arr)
    return int(low), int(high)


def file_offset(path: str, start: int, end: int) -> int | None:
    """Where the memory ``[start, end)`` lies in the file ``path`` (a resolved path), or None
    when it is not inside one mapping of that file."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5] == path:
            low, high = (int(v, 16) for v in parts[0].split("-"))
            if low <= start and end <= high:
                return int(parts[2], 16) + start - low
    return None


def own_map(arr: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    """``arr``'s values read through a read-only map of their own bytes of ``path``.

    ``arr`` itself when it is empty, not in a mapping of ``path``, or off Linux. The result has
    ``arr``'s dtype, shape and strides.
    """
    if not sys.platform.startswith("linux") or arr.nbytes == 0:
        return arr
    low, high = _byte_bounds(arr)
    real = os.path.realpath(path)
    where = file_offset(real, low, high)
    if where is None:
        return arr
    raw = np.memmap(real, dtype=np.uint8, mode="r", offset=where, shape=(high - low,))
    first = arr.__array_interface__["data"][0] - low
    return np.ndarray(arr.shape, arr.dtype, buffer=raw, offset=first, strides=arr.strides)
