"""Side-by-side summaries of several models (or of one model's groups)."""

from __future__ import annotations

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
from weightstats.report.cells import natural_key
from weightstats.report.figures import (
    MAX_NAMED_TICKS,
    draw_references,
    log_y,
    new_figure,
    render,
    visible_short,
)
from weightstats.report.html import MAX_GROUP_BULLETS, figure_html, page, table_html
from weightstats.report.model import ReportData
from weightstats.report.summary import notes
from weightstats.report.tables import check_outputs
from weightstats.report.text import (
    displayed,
    family_color,
    family_label,
    family_marker,
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
    groups = sorted({lr.group for lr in report.layers if lr.group}, key=natural_key)
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
        ax.set_ylabel(title)
        ax.set_title(f"best family by BIC: {title}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    # One legend for both bar panels, beside them rather than over the bars.
    axes[0, 1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    panels = list(axes[1:].flat)
    for ax, fam in zip(panels, shapes, strict=False):
        _shape_panel(ax, reports, names, fam)
    for ax in panels[len(shapes):]:
        ax.set_axis_off()
    fig.suptitle(visible(_title(reports)), fontsize=11)
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
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    meaning = f": {display.beyond}" if display.beyond else ""
    ax.set_title(f"{family_label(fam)} {display.symbol} per layer (≥{cap:g} shown at "
                 f"{cap:g}{meaning})", fontsize=10)


def paired_layers(reports: Sequence[ReportData]) -> list[str]:
    """The layers two reports share, in the first one's depth order (a trained model and its
    untrained twin); empty unless exactly two reports share at least two fitted layers."""
    if len(reports) != 2:
        return []
    first, second = (set(r.wide().loc[r.wide()["status"] == "ok", "layer"]) if len(r.wide())
                     else set() for r in reports)
    shared = [lr.name for lr in reports[0].layers if lr.name in first & second]
    return shared if len(shared) >= 2 else []


def paired_figure(reports: Sequence[ReportData]) -> Figure:
    """Each shared layer's shapes and excess kurtosis in both models, joined by a line: where
    training moved each layer (one panel per shaped family, values past the cap at the cap)."""
    names = paired_layers(reports)
    families = _families(reports)
    columns = [(f, shape_column(f)) for f in displayed(families)] + [
        (None, "excess_kurtosis")]
    tables = [r.wide().set_index("layer").reindex(names) for r in reports]
    width = min(max(10.0, 0.17 * min(len(names), MAX_NAMED_TICKS) + 3.0), 16.0)
    fig = new_figure(width, 2.6 * len(columns) + (1.4 if len(names) <= MAX_NAMED_TICKS else 0.6))
    axes = fig.subplots(len(columns), 1, sharex=True, squeeze=False)[:, 0]
    x = np.arange(len(names), dtype=float)
    models = [visible(r.model) for r in reports]
    for ax, (fam, col) in zip(axes, columns, strict=True):
        display = shape_display(fam) if fam else None
        cap = display.shown_up_to if display else np.inf
        a, b = (np.minimum(t[col].to_numpy(dtype=float), cap) if col in t else
                np.full(len(names), np.nan) for t in tables)
        color = family_color(fam) if fam else "0.25"
        ax.vlines(x, np.fmin(a, b), np.fmax(a, b), color="0.7", lw=1.2)
        ax.plot(x, a, linestyle="none", marker=family_marker(fam) if fam else "o", ms=5,
                color=color, label=models[0])
        ax.plot(x, b, linestyle="none", marker=family_marker(fam) if fam else "o", ms=5,
                mfc="white", color=color, label=models[1])
        if display is not None:
            if display.log_axis:
                log_y(ax)
            draw_references(ax, fam, display.references)
            ax.set_ylabel(f"{family_label(fam)} {display.symbol}" + (" (log)" if display.log_axis
                                                                      else ""))
        else:
            ax.axhline(0, color="0.5", lw=0.8, ls=":")
            ax.set_ylabel("excess kurtosis")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if len(names) <= MAX_NAMED_TICKS:
        axes[-1].set_xticks(x, [visible_short(n, 28) for n in names], rotation=90, fontsize=6)
    axes[-1].set_xlabel(f"layer (in depth order, {len(names):,} shared layers)")
    fig.suptitle(f"{models[0]} (filled) vs {models[1]} (open), layer by layer", fontsize=10)
    return fig


def _title(reports: Sequence[ReportData]) -> str:
    """The page title: every model for a few, the first ones and a count for many."""
    names = [r.model for r in reports]
    shown = " vs ".join(names[:4])
    return "weightstats: " + (shown if len(names) <= 4 else f"{shown} and {len(names) - 4} more")


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
        drawing = plots and bool({"png", "html"} & set(fmts))
        png = render(compare_figure, reports) if drawing else b""
        paired = render(paired_figure, reports) if drawing and paired_layers(reports) else b""
        if png and "png" in fmts:
            (tmp / "compare.png").write_bytes(png)
        if paired and "png" in fmts:
            (tmp / "paired_layers.png").write_bytes(paired)
        if "html" in fmts:
            sections = [("Models (best family by BIC: layers won, share of weights)",
                         table_html(compare_display(reports), text_cols=("model",),
                                    filterable=len(reports) > 8))]
            figs = []
            if png:
                figs.append(figure_html(
                    "compare.png", png, "Share of layers and of weights won by each family (BIC) "
                    "per model, and each shaped family's shape per layer by model.",
                    "Stacked bars of the share of layers and of weights each family wins by BIC "
                    "for " + ", ".join(r.model for r in reports) + ", and box plots of each "
                    "model's per-layer shape parameters."))
            if paired:
                figs.append(figure_html(
                    "paired_layers.png", paired, "Each layer of " + reports[0].model + " (filled) "
                    "against the same layer of " + reports[1].model + " (open), joined by a line.",
                    f"Paired dot plot over {len(paired_layers(reports))} shared layers: shape "
                    "parameters and excess kurtosis of each layer in both models."))
            if figs:
                sections.append(("Figures", "".join(figs)))
            bullets = "<ul>" + "".join(
                f"<li><b>{html_text(r.model)}</b>: {html_text(r.summary().text)}</li>"
                for r in reports) + "</ul>"
            if len(reports) > MAX_GROUP_BULLETS:  # many groups: collapsed below the table
                bullets = (f"<details><summary>{len(reports)} one-sentence answers</summary>"
                           f"{bullets}</details>")
            sections.append(("Summaries", bullets))
            title = _title(reports)
            (tmp / "report.html").write_text(page(title, sections))
    return target
