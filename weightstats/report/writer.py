"""Writing a report: every requested file rendered, then the directory replaced atomically.

The writer sits above the renderers (tables, figures, html) and the model; only
``model_report.ModelReport.save`` calls it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from weightstats import interrupts
from weightstats.report import html
from weightstats.report.atomic import atomic_directory
from weightstats.report.model import ReportData
from weightstats.report.tables import ALL_FORMATS, check_outputs, layers_markdown, summary_markdown
from weightstats.report.text import to_csv_text, to_json_text


def write_report(
    report: ReportData,
    directory: str | os.PathLike[str],
    formats: Sequence[str] = ALL_FORMATS,
    *,
    plots: bool = True,
) -> Path:
    """Render every requested file, then write them atomically into ``directory``.

    Figures are rendered before the target directory is touched, so a failing figure leaves
    no trace; the files are then written into a temporary sibling directory and renamed.
    """
    fmts = check_outputs(formats, plots=plots)
    target = Path(directory)
    # Files are written one by one as they are rendered (figures are the slow part), all into
    # the temporary directory; a failure anywhere removes it and leaves any old report as is.
    with atomic_directory(target) as tmp:

        def put(rel: str, data: bytes) -> None:
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        if "csv" in fmts:
            put("layers.csv", to_csv_text(report.table()).encode())
            put("layers_wide.csv", to_csv_text(report.wide()).encode())
            put("comparisons.csv", to_csv_text(report.comparisons()).encode())
        if "md" in fmts:
            put("layers.md", layers_markdown(report).encode())
            put("summary.md", summary_markdown(report).encode())
        if "json" in fmts:
            put("report.json", to_json_text(report.to_dict()).encode())
        pngs: dict[str, bytes] = {}
        if plots and ("png" in fmts or "html" in fmts):
            # matplotlib loads only for a report that draws (a second of --no-plots runs).
            from weightstats.report import figures as figs

            for name, data in figs.render_all(report):
                interrupts.check()  # a Ctrl-C that matplotlib's callbacks swallowed
                if "png" in fmts:
                    put(f"figures/{name}", data)
                if "html" in fmts:
                    pngs[name] = data
        if "html" in fmts:
            put("report.html", html.render_html(report, pngs).encode())
    return target
