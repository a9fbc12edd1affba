"""Writing ``<out>/zoo/``: layers.parquet/.csv, models.csv, failures.csv, summary.md and a
self-contained report.html, all at once (the folder is replaced atomically)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from weightstats.sweep.tables import (
    failures_frame,
    layers_frame,
    models_frame,
    options_text,
    overview,
    parquet_bytes,
)

EXIT_PARTIAL = 3


def zoo_frames(records: Sequence[dict[str, Any]],
               failures: Sequence[dict[str, str]]) -> dict[str, pd.DataFrame]:
    """The three tables: ``layers``, ``models`` and ``failures``."""
    return {"layers": layers_frame(records), "models": models_frame(records),
            "failures": failures_frame(failures)}


def summary_markdown(frames: dict[str, pd.DataFrame], options: dict[str, Any],
                     skipped: int) -> str:
    """zoo/summary.md: the models side by side, the failures, what the columns mean."""
    from weightstats.text import markdown

    models, failures = frames["models"], frames["failures"]
    lines = ["# weightstats sweep", "",
             f"{len(models)} models fitted, {len(failures)} failed.", ""]
    lines += [f"Options: {markdown(options_text(options))}", ""]
    if len(models):
        lines += ["## Models", "", _md_table(overview(models)), ""]
        lines += ["## Answers (best family by BIC)", ""]
        lines += [f"- **{markdown(m)}**: {markdown(s)}"
                  for m, s in zip(models["model"], models["sentence"], strict=True)]
        lines.append("")
    if len(failures):
        lines += ["## Failures", ""]
        lines += [f"- **{markdown(r.model)}** (`{markdown(r.spec)}`): {markdown(r.error)}"
                  for r in failures.itertuples(index=False)]
        lines.append("")
    lines += ["## Columns", "",
              "- Shares by BIC count the layers some family fits (\"no family fits\" layers are "
              "counted apart, as in each model's summary.md); weight shares are of all fitted "
              "weights.",
              "- Medians (shape parameters, excess kurtosis) are over the layers some family fits.",
              "- `layers.csv` / `layers.parquet`: one row per model x layer x family, the "
              "columns of each model's layers.csv after the model's own (spec, source, "
              "parameter count, dtype).", ""]
    return "\n".join(lines)


def _md_table(frame: pd.DataFrame) -> str:
    """A Markdown table of text cells (report.text.markdown_table: tabulate, cells escaped)."""
    from weightstats.report.text import markdown_table

    return markdown_table(frame).rstrip("\n")


def write_zoo(out: str | Path, records: Sequence[dict[str, Any]],
              failures: Sequence[dict[str, str]], options: dict[str, Any], *,
              skipped: int = 0, plots: bool = True) -> Path:
    """Write ``<out>/zoo/`` atomically; returns its path."""
    from weightstats.report.atomic import atomic_directory
    from weightstats.report.text import to_csv_text
    from weightstats.sweep import html
    from weightstats.sweep.plan import ZOO

    frames = zoo_frames(records, failures)
    files = {
        "layers.csv": to_csv_text(frames["layers"]).encode(),
        "layers.parquet": parquet_bytes(frames["layers"]),
        "models.csv": to_csv_text(frames["models"]).encode(),
        "failures.csv": to_csv_text(frames["failures"]).encode(),
        "summary.md": summary_markdown(frames, options, skipped).encode(),
        "report.html": html.render_page(frames, options, plots=plots).encode(),
    }
    target = Path(out) / ZOO
    with atomic_directory(target) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return target
