"""Writing a report: every requested file rendered, then the directory replaced atomically.

The writer sits above the renderers (tables, figures, html) and the model: ``write_report`` for
``model_report.ModelReport.save``, and ``write_folder`` for every report folder (latents too).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from weightstats import interrupts
from weightstats.report import html
from weightstats.report.atomic import atomic_directory
from weightstats.report.model import ReportData
from weightstats.report.tables import ALL_FORMATS, check_outputs, layers_markdown, summary_markdown
from weightstats.report.text import to_csv_text, to_json_text

TextFile = tuple[str, str, Callable[[], str]]  # (format, file name, renderer)


def write_folder(directory: str | os.PathLike[str], fmts: Sequence[str], texts: Sequence[TextFile],
                 figures: Callable[[], Iterable[tuple[str, bytes]]] | None = None,
                 page: Callable[[dict[str, bytes]], str] | None = None) -> Path:
    """Render the requested files one by one into a temporary sibling folder, then swap it into
    place (``atomic_directory``): a failure anywhere leaves any old report as it was.

    ``texts``: the text files, each written when its format is requested; ``figures``: the PNGs
    (None: no plots), saved under figures/ for "png" and embedded in the page for "html";
    ``page``: report.html from the PNGs. Every report folder (models, latents) is written here.
    """
    target = Path(directory)
    with atomic_directory(target) as tmp:

        def put(rel: str, data: bytes) -> None:
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        for fmt, name, render in texts:
            if fmt in fmts:
                put(name, render().encode())
        pngs: dict[str, bytes] = {}
        if figures is not None and ("png" in fmts or "html" in fmts):
            for name, data in figures():
                interrupts.check()  # a Ctrl-C that matplotlib's callbacks swallowed
                if "png" in fmts:
                    put(f"figures/{name}", data)
                if "html" in fmts:
                    pngs[name] = data
        if page is not None and "html" in fmts:
            put("report.html", page(pngs).encode())
    return target


def write_report(
    report: ReportData,
    directory: str | os.PathLike[str],
    formats: Sequence[str] = ALL_FORMATS,
    *,
    plots: bool = True,
) -> Path:
    """Render every requested file of a model report, then write them atomically into
    ``directory`` (:func:`write_folder`)."""
    fmts = check_outputs(formats, plots=plots)

    def figures() -> Iterable[tuple[str, bytes]]:
        # matplotlib loads only for a report that draws (a second of --no-plots runs).
        from weightstats.report import figures as figs

        return figs.render_all(report)

    texts: list[TextFile] = [
        ("csv", "layers.csv", lambda: to_csv_text(report.table())),
        ("csv", "layers_wide.csv", lambda: to_csv_text(report.wide())),
        ("csv", "comparisons.csv", lambda: to_csv_text(report.comparisons())),
        ("md", "layers.md", lambda: layers_markdown(report)),
        ("md", "summary.md", lambda: summary_markdown(report)),
        ("json", "report.json", lambda: to_json_text(report.to_dict())),
    ]
    return write_folder(directory, fmts, texts, figures if plots else None,
                        lambda pngs: html.render_html(report, pngs))
