"""Side-by-side summaries of several models (or of one model's groups)."""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from weightstats.report.atomic import atomic_directory
from weightstats.report.figures import draw_references, log_y, new_figure, render
from weightstats.report.html import page, table_html
from weightstats.report.model import ReportData
from weightstats.report.summary import notes
from weightstats.report.tables import check_outputs
from weightstats.report.text import (
    displayed,
    family_color,
    family_label,
    fmt,
    fmt_shape,
    markdown_table,
    pct,
    shape_column,
    shape_display,
    shape_header,
    to_csv_text,
    to_json_text,
)
from weightstats.text import html_text, markdown, visible

R = TypeVar("R", bound=ReportData)


def split_groups(report: R) -> list[R]:
    """One sub-report per group (e.g. a VAE's encoder and decoder) for ``compare`` of one spec,
    of the same class as ``report``."""
    groups = sorted({lr.group for lr in report.layers if lr.group})
    out = []
    for g in groups:
        members = [lr for lr in report.layers if lr.group == g]
        out.append(dataclasses.replace(report, model=f"{report.model}:{g}", layers=members,
                                       description=f"{report.description} ({g})".strip()))
    return out


def _families(reports: Sequence[ReportData]) -> list[str]:
    """Every family fitted in any of the reports, in first-seen order."""
    return list(dict.fromkeys(f for r in reports for f in r.families))


def compare_frame(reports: Sequence[ReportData]) -> pd.DataFrame:
    """One row per model: layer/weight share per best family (BIC and AIC) and median shapes."""
    rows = []
    for rep in reports:
        summary = rep.summary()
        info, sentence = summary.info, summary.text
        row: dict[str, Any] = {"model": rep.model, "layers": info["n_fitted"],
                               "weights": info["n_weights"], "winner (BIC)":
                               family_label(info["winner_bic"]) if info["winner_bic"] else ""}
        for crit in ("bic", "aic"):
            for fam in rep.families:
                c = info["by_criterion"][crit][fam]
                row[f"{fam} layers ({crit.upper()})"] = c["layers"]
                row[f"{fam} weight share ({crit.upper()})"] = c["weight_share"]
        for key, val in info["medians"].items():
            row[f"median {key}"] = val
        row["summary"] = sentence
        rows.append(row)
    return pd.DataFrame(rows)


def compare_display(reports: Sequence[ReportData]) -> pd.DataFrame:
    """Readable comparison: per family "layers won (share of weights)" by BIC, median shapes."""
    families = _families(reports)
    rows = []
    for rep in reports:
        info = rep.summary().info
        row: dict[str, Any] = {"model": rep.model, "layers": info["n_fitted"],
                               "weights": f"{info['n_weights']:,}"}
        for fam in families:
            c = info["by_criterion"]["bic"].get(fam)
            row[family_label(fam)] = f"{c['layers']} ({pct(c['weight_share'])})" if c else ""
        med = info["medians"]
        for fam in displayed(families):
            row[f"median {shape_header(fam)}"] = fmt_shape(med.get(shape_column(fam)), fam)
        row["median ex. kurt"] = fmt(med.get("excess_kurtosis"), 3)
        rows.append(row)
    return pd.DataFrame(rows)


def compare_figure(reports: Sequence[ReportData]) -> Figure:
    """Share of layers / weights per best family (BIC) per model, and each shaped family's
    shape per model (one panel per family with a ShapeDisplay)."""
    families = _families(reports)
    shapes = displayed(families)
    names = [visible(r.model) for r in reports]  # group names come from the file
    rows = 1 + -(-len(shapes) // 2)
    fig = new_figure(12, 3.75 * rows)
    axes = fig.subplots(rows, 2, squeeze=False)
    for ax, key, title in ((axes[0, 0], "layers", "share of layers"),
                           (axes[0, 1], "weight_share", "share of weights")):
        bottom = np.zeros(len(reports))
        for fam in families:
            vals = []
            for rep in reports:
                info = rep.summary().info
                c = info["by_criterion"]["bic"].get(fam, {"layers": 0, "weight_share": 0.0})
                n = max(info["n_fitted"], 1)
                vals.append(c["layers"] / n if key == "layers" else c["weight_share"])
            ax.bar(names, vals, bottom=bottom, color=family_color(fam), label=family_label(fam))
            bottom += np.asarray(vals)
        ax.set_ylim(0, 1)
        ax.set_title(f"best family by BIC: {title}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    axes[0, 0].legend(fontsize=8)
    panels = list(axes[1:].flat)
    for ax, fam in zip(panels, shapes, strict=False):
        _shape_panel(ax, reports, names, fam)
    for ax in panels[len(shapes):]:
        ax.set_axis_off()
    fig.suptitle("weightstats: " + " vs ".join(names), fontsize=11)
    return fig


def _shape_panel(ax: Axes, reports: Sequence[ReportData], names: list[str], fam: str) -> None:
    """Box plot of one family's shape per model, capped at its display's ``shown_up_to``."""
    display = shape_display(fam)
    cap = display.shown_up_to
    data = []
    for rep in reports:
        w = rep.wide()
        col = shape_column(fam)
        vals = w.loc[w["status"] == "ok", col].to_numpy(dtype=float) if col in w else []
        vals = np.minimum(np.asarray(vals, dtype=float), cap)
        data.append(vals[np.isfinite(vals)] if len(vals) else np.array([]))
    pos = np.arange(1, len(reports) + 1)
    nonempty = [i for i, d in enumerate(data) if d.size]
    if nonempty:
        ax.boxplot([data[i] for i in nonempty], positions=pos[nonempty], widths=0.5,
                   showfliers=False)
        rng = np.random.default_rng(0)  # fixed jitter: deterministic PNGs
        for i in nonempty:
            ax.plot(pos[i] + rng.uniform(-0.15, 0.15, data[i].size), data[i], ".",
                    color="0.3", ms=4, alpha=0.7)
    ax.set_xticks(pos, names, rotation=20, fontsize=8)
    if display.log_axis:
        log_y(ax)
    draw_references(ax, fam, display.references)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    meaning = f": {display.beyond}" if display.beyond else ""
    ax.set_title(f"{family_label(fam)} {display.symbol} per layer (≥{cap:g} shown at "
                 f"{cap:g}{meaning})", fontsize=10)


def compare_markdown(reports: Sequence[ReportData], frame: pd.DataFrame) -> str:
    """summary.md of a comparison."""
    # Model names of one spec's groups come from layer names (file content): escaped.
    lines = ["# weightstats comparison: " + " vs ".join(markdown(r.model) for r in reports), ""]
    lines += [f"- **{markdown(r.model)}**: {markdown(r.summary().text)}" for r in reports]
    lines += ["", "Best family by BIC: layers won (share of weights).", "",
              markdown_table(compare_display(reports)), "## Notes", ""]
    lines += [f"- {n}" for n in notes(_families(reports))]
    return "\n".join(lines) + "\n"


def save_compare(reports: Sequence[ReportData], directory: str | os.PathLike[str],
                 formats: Sequence[str] = ("csv", "md", "json", "html", "png"), *,
                 plots: bool = True) -> Path:
    """Write the comparison (models.csv, summary.md, report.json, compare.png, report.html)."""
    fmts = check_outputs(formats, plots=plots)
    frame = compare_frame(reports)
    target = Path(directory)
    with atomic_directory(target) as tmp:
        if "csv" in fmts:
            (tmp / "models.csv").write_text(to_csv_text(frame))
            wides = [r.wide().assign(model=r.model) for r in reports]
            (tmp / "layers.csv").write_text(to_csv_text(pd.concat(wides, ignore_index=True)))
        if "md" in fmts:
            (tmp / "summary.md").write_text(compare_markdown(reports, frame))
        if "json" in fmts:
            data = {"weightstats_compare": 1,
                    "models": [r.to_dict() for r in reports]}
            (tmp / "report.json").write_text(to_json_text(data))
        png = render(compare_figure, reports) if plots and {"png", "html"} & set(fmts) else b""
        if png and "png" in fmts:
            (tmp / "compare.png").write_bytes(png)
        if "html" in fmts:
            sections = [("Models (best family by BIC: layers won, share of weights)",
                         table_html(compare_display(reports), text_cols=("model",)))]
            if png:
                b64 = base64.b64encode(png).decode("ascii")
                sections.append(("Figure", f'<figure><img alt="compare" '
                                           f'src="data:image/png;base64,{b64}"></figure>'))
            sections.append(("Summaries", "<ul>" + "".join(
                f"<li><b>{html_text(r.model)}</b>: {html_text(r.summary().text)}</li>"
                for r in reports) + "</ul>"))
            title = "weightstats: " + " vs ".join(r.model for r in reports)
            (tmp / "report.html").write_text(page(title, sections))
    return target
