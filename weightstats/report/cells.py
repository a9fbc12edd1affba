"""Table cells for the HTML page: one number format per column, sort keys, family colours.

A column of numbers is shown in one format: integers with thousands separators; floats either
all fixed-point (to three significant digits of the column's smallest magnitude) or, where the
column spans magnitudes that fixed-point cannot show (below 1e-3 or from 1e5 up), all in
scientific notation. Every cell keeps its exact value as a sort key, so sorting a column orders
numbers, not text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from weightstats.fitting.families import FAMILIES

SIG = 3  # significant digits of the smallest magnitude in a fixed-point column
MAX_DECIMALS = 6
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, a sort key (a number's repr, else empty: sorted as text), and
    the colour of the family it names (empty when it names none)."""

    text: str
    sort: str = ""
    color: str = ""


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders digit runs as numbers: ``layer2`` before ``layer10``."""
    return tuple(int(part) if part.isdigit() else part.lower()
                 for part in _DIGITS.split(str(text)))


def natural_sorted(items: Iterable[str]) -> list[str]:
    """``items`` in natural order (0, 1, 2, ..., 10, not 0, 1, 10, 100)."""
    return sorted(items, key=natural_key)


def family_colors() -> dict[str, str]:
    """Every registered family's name and label -> its colour (the figures use the same)."""
    out: dict[str, str] = {}
    for fam in FAMILIES.values():
        out[fam.name] = fam.color
        out[fam.label] = fam.color
    return out


def _number(value: Any) -> float | int | None:
    """A finite int or float from a cell value; None for text, missing or non-finite values."""
    if isinstance(value, bool) or value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _text_sort(text: str) -> str:
    """A sort key for a text cell that holds a number ("1.23", "∞", "[1.2, 1.3]"), else ""."""
    head = text.strip().split(" ")[0].strip("[],")
    if head in ("∞", "inf"):
        return "Infinity"
    try:
        value = float(head.replace(",", ""))
    except ValueError:
        return ""
    return repr(value) if math.isfinite(value) else ""


def float_format(values: Sequence[float]) -> str:
    """The one format spec for a column of floats (see the module docstring)."""
    mags = [abs(v) for v in values if v != 0 and math.isfinite(v)]
    if not mags:
        return ".0f"
    small, large = min(mags), max(mags)
    if small < 1e-3 or large >= 1e5:
        return f".{SIG - 1}e"
    decimals = SIG - 1 - math.floor(math.log10(small))
    return f".{min(max(decimals, 0), MAX_DECIMALS)}f"


def column_cells(values: Sequence[Any]) -> list[Cell]:
    """The cells of one column, numbers in one format (module docstring)."""
    numbers = [_number(v) for v in values]
    floats = [float(v) for v in numbers if isinstance(v, float)]
    spec = float_format(floats) if floats else ""
    # A column of whole floats (counts read back from a table) is shown as integers.
    whole = bool(floats) and all(v.is_integer() and abs(v) < 1e15 for v in floats)
    out = []
    for raw, num in zip(values, numbers, strict=True):
        if isinstance(num, int) or (whole and num is not None):
            out.append(Cell(f"{int(num):,}", repr(float(num))))
        elif num is not None:
            out.append(Cell(format(num, spec), repr(float(num))))
        elif raw is None or (isinstance(raw, float) and math.isnan(raw)) or _isna(raw):
            out.append(Cell(""))
        elif isinstance(raw, bool):
            out.append(Cell("yes" if raw else "no"))
        elif isinstance(raw, float):  # ±inf
            out.append(Cell("∞" if raw > 0 else "−∞", "Infinity" if raw > 0 else "-Infinity"))
        else:
            text = str(raw)
            out.append(Cell(text, _text_sort(text)))
    return out


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def table_rows(frame: pd.DataFrame, family_cols: Iterable[str] = ()) -> list[list[Cell]]:
    """The frame's cells row by row, one format per column; cells of ``family_cols`` that name
    a registered family carry its colour."""
    colors = family_colors()
    coloured = set(family_cols)
    columns = []
    for col in frame.columns:
        cells = column_cells(frame[col].tolist())
        if col in coloured:
            cells = [Cell(c.text, c.sort, colors.get(c.text, "")) for c in cells]
        columns.append(cells)
    return [list(row) for row in zip(*columns, strict=True)] if columns else []
