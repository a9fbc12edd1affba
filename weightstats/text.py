"""Untrusted text made safe for each output: terminal, Markdown, CSV, HTML and error lines.

Layer names, group names and paths come from the weights file or the command line, so they may
hold escape sequences (which clear the screen or set the terminal title), bidirectional
overrides (which make text read differently than it is), Markdown or rich markup. Each writer
passes them through the function for its format; report.json keeps the exact text (JSON
escapes it). Standard library only: every layer can import this module.
"""

from __future__ import annotations

import html
import re

# C0 and C1 controls, DEL, zero-width and bidirectional formatting characters, line and
# paragraph separators, BOM: invisible or active in a terminal, none belongs in a name.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2064"
                     "\u2066-\u2069\ufeff]")
# Characters Markdown would read as syntax in running text or a table cell.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~&])")
# Underscores emphasize only at word edges (``_x_``); snake_case stays readable.
_MD_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@")
ERROR_LIMIT = 400
WORD_LIMIT = 120


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``text`` with every control or invisible formatting character shown as ``\\xNN``/``\\uNNNN``.

    Examples
    --------
    >>> visible("evil\\x1b[2J.weight")
    'evil\\\\x1b[2J.weight'
    """
    return _UNSAFE.sub(_escape_char, str(text))


def terminal(text: object) -> str:
    """Text for a terminal: control characters shown escaped (print it with markup off)."""
    return visible(text)


def markdown(text: object) -> str:
    """Text for running Markdown or a table cell: visible controls, syntax characters escaped.

    Backslash escapes render as the plain character in CommonMark/GFM, so ``a|b`` stays one
    table cell and ``<script>`` stays text.
    """
    out = _MD_SPECIAL.sub(r"\\\1", visible(text))
    return _MD_EDGE_UNDERSCORE.sub(r"\\_", out)


def markdown_code(text: object) -> str:
    """An inline code span holding ``text`` exactly (backslashes do not escape inside code)."""
    body = visible(text)
    runs = [len(r) for r in re.findall(r"`+", body)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or not body.strip() else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def csv_cell(text: object) -> str:
    """A text field for CSV: visible controls, and no leading formula character.

    The CSV writer quotes commas and quotes; a leading ``'`` keeps a spreadsheet from running
    a name such as ``=cmd|...`` as a formula (report.json keeps the exact name).
    """
    out = visible(text)
    return "'" + out if out.startswith(_FORMULA_START) else out


def html_text(text: object) -> str:
    """Text for HTML element content or a quoted attribute: visible controls, then escaped."""
    return html.escape(visible(text))


def shorten_middle(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters by dropping its middle (keeps both ends)."""
    if len(text) <= limit:
        return text
    keep = max(limit - 3, 2)
    head = (keep + 1) // 2
    return text[:head] + "..." + text[len(text) - (keep - head):]


def one_line(text: object, limit: int = ERROR_LIMIT, word_limit: int = WORD_LIMIT) -> str:
    """One safe, bounded line: whitespace squashed, controls visible, long words and the whole
    line shortened in the middle (a 6,000-character path keeps its start and its file name)."""
    words = [shorten_middle(w, word_limit) for w in visible(" ".join(str(text).split())).split(" ")]
    return shorten_middle(" ".join(words), limit)


ELLIPSIS = "…"


def _digits(part: str) -> bool:
    return any(ch.isdigit() for ch in part)


def shorten_name(name: str, limit: int) -> str:
    """A dotted layer name in at most ``limit`` characters, shortened in the middle.

    Whole components are dropped from the middle and replaced by ``…``, keeping the leaf
    (``weight``) and, first of all, the components that number blocks (``layers.10``), which
    tell rows apart; a name whose ends alone are too long is cut in the middle of its text.

    Examples
    --------
    >>> shorten_name("model.layers.10.self_attn.q_proj.weight", 32)
    'model.layers.10.….q_proj.weight'
    >>> shorten_name("encoder.conv1.weight", 40)
    'encoder.conv1.weight'
    """
    if len(name) <= limit:
        return name
    parts = name.split(".")
    best: tuple[tuple[int, int, int], str] | None = None
    for head in range(len(parts)):
        for tail_start in range(head + 1, len(parts)):  # parts[tail_start:] keeps the leaf
            kept = parts[:head] + parts[tail_start:]
            text = ".".join([*parts[:head], ELLIPSIS, *parts[tail_start:]])
            if len(text) > limit:
                continue
            score = (sum(map(_digits, kept)), len(text), len(parts) - tail_start)
            if best is None or score > best[0]:
                best = (score, text)
    if best is not None:
        return best[1]
    keep = max(limit - 1, 2)
    head_len = (keep + 1) // 2
    return name[:head_len] + ELLIPSIS + name[len(name) - (keep - head_len):]


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key reading runs of digits as numbers: ``0, 1, 2, ..., 10`` rather than
    ``0, 1, 10, 100, 2``."""
    return tuple((0, int(tok)) if tok.isdigit() else (1, tok)
                 for tok in re.split(r"(\d+)", text) if tok)
