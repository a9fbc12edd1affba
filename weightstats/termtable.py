"""Tables that fit a terminal: choose, abbreviate and shorten columns for a given width.

A table is a list of :class:`Column` objects, each with its cells as text, an optional shorter
form (header and cells) and a priority. :func:`fit_columns` picks what fits in ``width``
characters: the full forms if they fit, else the short forms, then the least important columns
dropped, then the one shrinkable column (layer names) shortened in the middle, never below the
width at which its cells stay distinct. :func:`plain_lines` writes the result as aligned text
without box characters or trailing spaces (for pipes and files). Standard library only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from weightstats.text import shorten_name

GAP = 2  # spaces between columns in plain text
NAME_FLOOR = 16  # a shrinkable column is never shortened below this many characters
NAME_SHARE = 0.4  # before dropping columns, names may take this share of the width


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Parameters
    ----------
    header : str
        Its heading.
    cells : sequence of str
        One text per row.
    right : bool
        Right-aligned (numbers).
    priority : int
        Lower is more important; the highest numbers are dropped first when space runs out
        (0 is never dropped).
    short_header, short_cells : optional
        A narrower form used when the full table does not fit.
    shrink : bool
        Cells are names that may be shortened in the middle (:func:`~weightstats.text.shorten_name`).
    """

    header: str
    cells: Sequence[str]
    right: bool = False
    priority: int = 0
    short_header: str | None = None
    short_cells: Sequence[str] | None = None
    shrink: bool = False
    width: int = field(default=0, compare=False)
    shown: Sequence[str] = field(default=(), compare=False)

    def natural(self) -> int:
        """Width of the widest cell or the header."""
        return max([len(self.header), *(len(c) for c in self.cells)])

    def shortened(self) -> Column:
        """The short form (or itself when it has none)."""
        return dataclasses.replace(
            self, header=self.short_header or self.header,
            cells=self.short_cells if self.short_cells is not None else self.cells)

    def sized(self, width: int) -> Column:
        """This column at ``width`` characters; ``shown`` holds its cells as displayed,
        shortened in the middle when the column may shrink."""
        shown = [shorten_name(c, width) for c in self.cells] if self.shrink else self.cells
        return dataclasses.replace(self, width=width, shown=shown)


def distinct_width(names: Sequence[str], floor: int = NAME_FLOOR) -> int:
    """The smallest width (at least ``floor``) at which the shortened names stay as distinct
    as the names themselves, so no two rows read alike."""
    if not names:
        return floor
    full = max(len(n) for n in names)
    wanted = len(set(names))
    width = full
    for w in range(full - 1, floor - 1, -1):
        if len({shorten_name(n, w) for n in names}) < wanted:
            break
        width = w
    return max(min(width, full), min(floor, full))


def total_width(columns: Sequence[Column], per_column: int, extra: int = 0) -> int:
    """Width of a table: the columns, ``per_column`` characters of padding or separator each,
    and ``extra`` for the edges."""
    return sum(c.width or c.natural() for c in columns) + per_column * len(columns) + extra


def fit_columns(columns: Sequence[Column], width: int | None, *, per_column: int = GAP,
                extra: int = -GAP) -> list[Column]:
    """The columns to show in ``width`` characters, each with its final ``width``.

    Parameters
    ----------
    columns : sequence of Column
        In display order.
    width : int or None
        Characters available; None: unlimited (every column in full).
    per_column, extra : int
        The renderer's overhead: characters per column (separators, padding) and in all
        (edges); the plain renderer's defaults mean ``GAP`` between columns.

    Returns
    -------
    list of Column
        A subset in the same order; the shrinkable column at the width chosen.
    """
    cols = list(columns)
    if width is None:
        return [c.sized(c.natural()) for c in cols]

    def fits(cs: Sequence[Column]) -> bool:
        return total_width(cs, per_column, extra) <= width

    if fits(cols):
        return [c.sized(c.natural()) for c in cols]
    cols = [c.shortened() for c in cols]
    floor = {c.header: distinct_width(c.cells) for c in cols if c.shrink}
    # Names first give up what they have beyond NAME_SHARE of the width ...
    cap = max(int(width * NAME_SHARE), NAME_FLOOR)
    cols = [c.sized(max(min(c.natural(), cap), floor[c.header])) if c.shrink else c
            for c in cols]
    # ... then the least important columns go ...
    while not fits(cols):
        droppable = [c for c in cols if c.priority > 0]
        if not droppable:
            break
        worst = max(droppable, key=lambda c: (c.priority, cols.index(c)))
        cols = [c for c in cols if c is not worst]
    # ... and the names take what is left: longer if there is room, shorter (down to their
    # distinct width) if the most important columns alone are too wide.
    spare = width - total_width(cols, per_column, extra)
    out = []
    for c in cols:
        if c.shrink:
            new = max(floor[c.header], min(c.natural(), c.width + spare))
            spare -= new - c.width
            c = c.sized(new)
        out.append(c if c.width else c.sized(c.natural()))
    return out


def plain_lines(columns: Sequence[Column], gap: int = GAP) -> list[str]:
    """The header and one line per row, columns aligned, no trailing spaces."""
    if not columns:
        return []
    rows = [[c.header for c in columns]]
    rows += [list(cells) for cells in zip(*(c.shown for c in columns), strict=True)]
    lines = []
    for row in rows:
        parts = [text.rjust(c.width) if c.right else text.ljust(c.width)
                 for text, c in zip(row, columns, strict=True)]
        lines.append((" " * gap).join(parts).rstrip())
    return lines
