"""The float grid a tensor was stored on: which precision, and each value's rounding cell.

A continuous law stored in floating point puts on each representable value ``v`` the mass of its
round-to-nearest cell; ``fitting.atoms`` compares a value's count with that cell's expected count.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 1 << 20
_FIRST = 1 << 12

# (significand bits including the implicit one, smallest subnormal) per storage precision.
_PRECISIONS = {
    "float8_e5m2": (3, 2.0 ** -16),
    "float8_e4m3": (4, 2.0 ** -9),
    "bfloat16": (8, 2.0 ** -133),
    "float16": (11, 2.0 ** -24),
    "float32": (24, 2.0 ** -149),
    "float64": (53, 2.0 ** -1074),
}


def storage_precision(xs: np.ndarray, dtype: str = "") -> str:
    """The coarsest float format that represents every value of ``xs`` exactly.

    float8 tensors (``dtype`` names them; NumPy has no float8) use their own grid. Otherwise the
    values are read in chunks with an early exit, so a float32 tensor costs one short pass.
    """
    for name in ("float8_e5m2", "float8_e4m3"):
        if dtype.startswith(name):
            return name
    fits = {"bfloat16": True, "float16": True, "float32": True}
    with np.errstate(over="ignore", invalid="ignore"):
        # A short first block: a wide float's values disprove the narrow formats at once.
        edges = [0, *range(_FIRST, xs.size, _CHUNK), xs.size]
        for start, stop in zip(edges[:-1], edges[1:], strict=True):
            block = xs[start:stop]
            x32 = block.astype(np.float32)
            if fits["float32"] and block.dtype != np.float32:
                fits["float32"] = bool(np.all(x32 == block))
            if fits["bfloat16"]:
                fits["bfloat16"] = not np.any(x32.view(np.uint32) & np.uint32(0xFFFF))
            if fits["float16"]:
                fits["float16"] = bool(np.all(block.astype(np.float16) == block))
            if not any(fits.values()):
                break
    return next((name for name, ok in fits.items() if ok), "float64") if fits["float32"] \
        else "float64"


def half_cells(v: np.ndarray, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """Half the gap to the next float below and above each value ``v`` at ``precision``: the
    round-to-nearest cell of ``v`` is ``[v - below, v + above]`` (for ``v < 0`` mirrored)."""
    bits, tiny = _PRECISIONS[precision]
    mant, exp = np.frexp(np.abs(np.asarray(v, dtype=np.float64)))  # |v| = mant * 2**exp, mant in [.5, 1)
    away = np.maximum(np.ldexp(1.0, exp - bits), tiny)  # gap to the next float away from zero
    toward = np.where((mant == 0.5) & (away > tiny), away / 2, away)  # finer below a power of two
    away, toward = np.where(v == 0, tiny, away), np.where(v == 0, tiny, toward)
    positive = np.asarray(v) >= 0
    return (np.where(positive, toward, away) / 2, np.where(positive, away, toward) / 2)


def cell_width(v: np.ndarray, precision: str) -> np.ndarray:
    """Width of the round-to-nearest cell of each value ``v`` at ``precision``."""
    below, above = half_cells(v, precision)
    return below + above


SIGNIFICAND_BITS = {name: bits for name, (bits, _) in _PRECISIONS.items()}
