"""Text and numbers for every report renderer: cell formatting, percentages, family labels,
colours and shape parameters, CSV/JSON/Markdown text.

The leaf of ``weightstats.report``: it imports nothing from the package's other report modules,
so the model, the renderers and the writer can all import it. Everything about a family (label,
colour, marker, shape names, how its shape is shown) is read from the registry
(``weightstats.fitting.families``); no family is named here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from weightstats.errors import OptionError
from weightstats.fitting.families import FAMILIES, Family, ShapeDisplay, get_family
from weightstats.text import csv_cell, markdown

# Short cell text for the adequacy verdict and for intervals that are not Wald intervals.
ADEQUACY_LABELS = {"fits": "fits", "fits approximately": "fits approx.",
                   "no family fits": "NO FAMILY FITS", "untested": "untested"}
CI_LABELS = {"sandwich": "(robust)", "omitted": "omitted: no family fits"}
UNKNOWN_COLOR = "#7f7f7f"
# A model of 10,000 layers would need 1,000 pages of small multiples: histogram and QQ panels are
# drawn for the largest layers only (by weight count; every layer stays in the tables).
MAX_PANEL_LAYERS = 40


def panel_note(n_layers: int) -> str:
    """The sentence stating which layers the histogram and QQ panels show, when not all."""
    if n_layers <= MAX_PANEL_LAYERS:
        return ""
    return (f"Histogram and QQ figures show the {MAX_PANEL_LAYERS} of {n_layers} layers with the "
            "most weights; the tables list every layer.")


# ---------------------------------------------------------------------------------- families
def family(name: str) -> Family | None:
    """The registered family called ``name`` (or an alias of it); None when not registered, so
    a report naming a family that is no longer registered still renders."""
    try:
        return get_family(name)
    except OptionError:
        return None


def family_label(name: str) -> str:
    """Human-readable family name ("Gaussian", "Student-t", ...); the name itself if unknown."""
    fam = family(name)
    return fam.label if fam is not None else str(name)


def family_color(name: str) -> str:
    """The family's colour in every figure."""
    fam = family(name)
    return fam.color if fam is not None else UNKNOWN_COLOR


def family_marker(name: str) -> str:
    """The family's marker in per-depth figures."""
    fam = family(name)
    return fam.marker if fam is not None else "o"


def shape_names(name: str) -> tuple[str, ...]:
    """The family's shape parameter names (empty for a pure location-scale family)."""
    fam = family(name)
    return tuple(fam.shape_names) if fam is not None else ()


def shaped(families: Iterable[str]) -> list[str]:
    """The families (in the given order) that have a shape parameter."""
    return [f for f in families if shape_names(f)]


def displayed(families: Iterable[str]) -> list[str]:
    """The families (in the given order) whose first shape the reports show (a ShapeDisplay)."""
    return [f for f in shaped(families) if shape_display(f) is not None]


def shape_display(name: str) -> ShapeDisplay | None:
    """How reports show the family's first shape; None where they do not."""
    fam = family(name)
    return fam.shape_display if fam is not None and fam.shape_names else None


def shape_column(name: str) -> str:
    """The wide table's column of the family's first shape: ``t_df``, ``gennorm_beta``."""
    return f"{name}_{shape_names(name)[0]}"


def shape_symbol(name: str) -> str:
    """The symbol of the family's first shape ("df", "β"), its name without a display."""
    display = shape_display(name)
    return display.symbol if display is not None else shape_names(name)[0]


def shape_header(name: str) -> str:
    """A table header for the family's first shape: "t df", "gennorm β"."""
    return f"{name} {shape_symbol(name)}"


def shape_axis_label(name: str) -> str:
    """A figure axis label: "Student-t df (log)", "generalized normal β"."""
    display = shape_display(name)
    log = " (log)" if display is not None and display.log_axis else ""
    return f"{family_label(name)} {shape_symbol(name)}{log}"


def beyond_label(name: str) -> str:
    """What the values past a figure's cap mean: "df ≥ 1000 (Gaussian limit)"."""
    display = shape_display(name)
    text = f"{display.symbol} ≥ {display.shown_up_to:g}"
    return f"{text} ({display.beyond})" if display.beyond else text


def reference_label(name: str, value: float, ref: str) -> str:
    """A reference line's legend text: "β = 2 (Gaussian)"."""
    return f"{shape_symbol(name)} = {value:g} ({family_label(ref)})"


def fmt_shape(value: Any, name: str) -> str:
    """A family's first shape for a table cell: at or beyond the display's ``infinite_from`` it
    reads "∞" (a Student-t fit that ran to its cap is the Gaussian limit)."""
    display = shape_display(name)
    digits = display.digits if display is not None else 3
    if display is not None and isinstance(value, float) and value >= display.infinite_from:
        return "∞"
    return fmt(value, digits)


def shape_phrase(families: Iterable[str]) -> str:
    """The shapes in words, with their reference values: "Student-t df, generalized normal β
    (β = 2: Gaussian, β = 1: Laplace)"."""
    parts = []
    for name in displayed(families):
        display = shape_display(name)
        refs = ", ".join(f"{display.symbol} = {v:g}: {family_label(r)}"
                         for v, r in display.references if family(r) is not None)
        parts.append(f"{family_label(name)} {display.symbol}" + (f" ({refs})" if refs else ""))
    return ", ".join(parts)


def nesting_baseline(families: Iterable[str]) -> str | None:
    """The family the others are measured against: one that registered families nest and that
    nests nothing itself (the Gaussian among the built-in families), nested by the most of them;
    None when no fitted family is one."""
    fitted = list(families)
    nested_by: dict[str, int] = {}
    for fam in FAMILIES.values():
        for nest in fam.nests:
            nested_by[nest.inner] = nested_by.get(nest.inner, 0) + 1
    candidates = [f for f in fitted
                  if nested_by.get(f, 0) and family(f) is not None and not family(f).nests]
    if not candidates:
        return None
    return max(candidates, key=lambda f: (nested_by[f], -fitted.index(f)))


# ---------------------------------------------------------------------------------- numbers
def fmt(value: Any, digits: int = 4) -> str:
    """Compact, deterministic text for a table cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return fmt(value.item(), digits)
    return str(value)


def pct(share: float) -> str:
    """Percent without misleading rounding: 0.3% is "<1%", 99.7% is ">99%"."""
    if 0 < share < 0.005:
        return "<1%"
    if 0.995 <= share < 1:
        return ">99%"
    return f"{share:.0%}"


# ---------------------------------------------------------------------------------- formats
def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """GitHub-flavoured Markdown table (``DataFrame.to_markdown``, i.e. tabulate).

    Cells are formatted here, not by tabulate: text (layer names come from the weights file) is
    escaped, numbers get :func:`fmt`'s ``digits`` significant digits, and tabulate's own number
    parsing is off so that a cell such as ``1e-05`` is printed as written.
    """
    cells = pd.DataFrame(
        [[markdown(v) if isinstance(v, str) else fmt(v, digits) for v in row]
         for row in frame.itertuples(index=False)],
        columns=[markdown(str(c)) for c in frame.columns],
    )
    # Numbers right-aligned (the pipe format's "---:" marks it for renderers too), text left.
    align = ["right" if pd.api.types.is_numeric_dtype(frame[c]) and
             not pd.api.types.is_bool_dtype(frame[c]) else "left" for c in frame.columns]
    return cells.to_markdown(index=False, tablefmt="pipe", colalign=align,
                             disable_numparse=True) + "\n"


# Every float in the CSV and JSON files is written with this many significant digits, so that the
# same command gives the same bytes on any machine: the last bits of a fit differ between CPUs and
# BLAS/libm builds far below this precision. Stated in README ("Output files").
SIGNIFICANT_DIGITS = 10
FLOAT_FORMAT = f"%.{SIGNIFICANT_DIGITS}g"


def fixed(value: float) -> float:
    """``value`` rounded to :data:`SIGNIFICANT_DIGITS` significant digits (non-finite unchanged)."""
    return float(FLOAT_FORMAT % value) if math.isfinite(value) else value


def _csv_value(value: Any) -> Any:
    """A cell of a text column: floats at the fixed precision, text made safe for spreadsheets."""
    if isinstance(value, str):
        return csv_cell(value)
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else FLOAT_FORMAT % value
    return value


def to_csv_text(frame: pd.DataFrame) -> str:
    """CSV with every float at :data:`SIGNIFICANT_DIGITS` significant digits (``inf`` for an
    infinite value, an empty cell for a missing one); text fields pass through
    :func:`weightstats.text.csv_cell` (no control characters, no formula cells)."""
    frame = frame.copy()
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            frame[col] = [_csv_value(v) for v in frame[col]]
    return frame.to_csv(index=False, lineterminator="\n", float_format=FLOAT_FORMAT)


def json_safe(value: Any) -> Any:
    """Plain JSON data with every float at :data:`SIGNIFICANT_DIGITS` significant digits; an
    infinite float becomes the string ``"inf"`` (``"-inf"``), a NaN ``null``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return fixed(value)
    return value


def to_json_text(data: Any) -> str:
    """Sorted keys, floats at the fixed precision (:func:`json_safe`), trailing newline:
    byte-identical for equal data on any machine."""
    return json.dumps(json_safe(data), sort_keys=True, indent=1, ensure_ascii=False,
                      allow_nan=False) + "\n"
