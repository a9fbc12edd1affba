"""The command line's tables: the per-layer table and the comparison table, fitted to the
terminal's width (:mod:`weightstats.termtable`).

On a terminal they are drawn by rich with a rule under the header; piped to a file or another
program they are plain aligned text (no box characters, no padding after the last column),
every column in full unless ``COLUMNS`` sets a width.
"""

from __future__ import annotations

import math
import os
from typing import Any

from weightstats.termtable import Column, fit_columns, plain_lines
from weightstats.text import terminal

# rich's SIMPLE_HEAD box with padding (0, 1) and no outer edge: each column takes its width,
# two characters of padding and one of separator, less the two edges.
RICH_PER_COLUMN = 3
RICH_EXTRA = -3
SHORT_LABEL = 10  # family labels longer than this read as their registry names when short
ADEQUACY_SHORT = {"fits approx.": "approx.", "NO FAMILY FITS": "NO FIT"}


def table_width(console: Any) -> int | None:
    """Characters available: ``COLUMNS`` when set, the terminal's width on a terminal, else
    None (a pipe or file gets every column in full)."""
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return console.width if console.is_terminal else None


def _is_name(value: Any) -> bool:
    """A fitted family name; unfitted layers carry NaN (truthy!) or an empty value."""
    return isinstance(value, str) and bool(value)


def compact_count(n: int) -> str:
    """A count in at most five characters: 950, 18.4k, 131k, 2.36M, 7.2G."""
    for step, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= step:
            value = n / step
            digits = 3 - len(str(int(value)))
            return f"{value:.{max(digits, 0)}f}".rstrip("0").rstrip(".") + suffix
    return str(n)


def layer_columns(report: Any) -> list[Column]:
    """The per-layer table's columns, most important first in priority (0 is always shown):
    layer, best family by BIC; then adequacy, size, shapes, excess kurtosis, the AIC verdict,
    kind and the KS distances."""
    from weightstats.report.text import (
        ADEQUACY_LABELS,
        displayed,
        family_label,
        fmt,
        fmt_shape,
        shape_column,
        shape_header,
        shape_symbol,
    )

    def label(name: Any, short: bool = False) -> str:
        if not _is_name(name):
            return ""
        full = family_label(name)
        return name if short and len(full) > SHORT_LABEL else full

    wide = report.wide()
    rows = [row for _, row in wide.iterrows()]
    status = [r["status"] if not _is_name(r["best_bic"]) else "" for r in rows]
    fits = [ADEQUACY_LABELS.get(r.get("adequacy"), "") for r in rows]
    cols = [
        Column("layer", [terminal(r["layer"]) for r in rows], shrink=True),
        Column("kind", [terminal(r["kind"]) for r in rows], priority=7),
        Column("n", [f"{int(r['n']):,}" for r in rows], right=True, priority=2,
               short_cells=[compact_count(int(r["n"])) for r in rows]),
        Column("best (AIC)", [label(r["best_aic"]) for r in rows], right=True, priority=6,
               short_header="AIC", short_cells=[label(r["best_aic"], True) for r in rows]),
        Column("ΔAIC", [fmt(r["delta_aic"], 3) for r in rows], right=True, priority=6),
        Column("best (BIC)", [label(r["best_bic"]) or s for r, s in zip(rows, status, strict=True)],
               right=True, short_cells=[label(r["best_bic"], True) or s
                                        for r, s in zip(rows, status, strict=True)]),
        Column("fit", fits, right=True, priority=1,
               short_cells=[ADEQUACY_SHORT.get(f, f) for f in fits]),
    ]
    for fam in displayed(report.families):  # one column per fitted family's shape
        cells = [fmt_shape(r[shape_column(fam)], fam) for r in rows]
        cols.append(Column(shape_header(fam), cells, right=True, priority=3,
                           short_header=shape_symbol(fam) if len(displayed(report.families)) == 1
                           else None))
    for fam in report.families:
        cols.append(Column(f"D {fam}", [fmt(r[f"ks_D_{fam}"], 3) for r in rows], right=True,
                           priority=8))
    cols.append(Column("ex. kurt", [fmt(r["excess_kurtosis"], 3) for r in rows], right=True,
                       priority=4))
    return cols


def frame_columns(frame: Any, name_column: str = "model") -> list[Column]:
    """A display DataFrame as columns: the name column may shrink, the others are dropped
    from the right when space runs out."""
    cols = []
    for i, col in enumerate(frame.columns):
        cells = [terminal(_cell(v)) for v in frame[col]]
        cols.append(Column(str(col), cells, right=col != name_column, shrink=col == name_column,
                           priority=0 if col == name_column else i))
    return cols


def _cell(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def print_table(console: Any, title: str, columns: list[Column]) -> None:
    """Print ``columns`` under ``title``: a rich table on a terminal, plain text otherwise."""
    width = table_width(console)
    if not console.is_terminal:
        shown = fit_columns(columns, width)
        text = "\n".join([terminal(title), *plain_lines(shown)])
        console.file.write(text + "\n")
        console.file.flush()
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    shown = fit_columns(columns, width, per_column=RICH_PER_COLUMN, extra=RICH_EXTRA)
    # Cells are file content: Text, never parsed as markup; widths fixed by fit_columns.
    table = Table(title=Text(terminal(title)), title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False)
    for c in shown:
        table.add_column(c.header, justify="right" if c.right else "left", no_wrap=True,
                         min_width=c.width, max_width=c.width, overflow="ellipsis")
    for cells in zip(*(c.shown for c in shown), strict=True):
        table.add_row(*[Text(v) for v in cells])
    console.print(table)
