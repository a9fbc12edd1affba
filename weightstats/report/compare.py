"""Side-by-side summaries of several models (or of one model's groups)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from weightstats.report.atomic import atomic_directory
from weightstats.report.model_report import ModelReport, family_label
from weightstats.report.tables import check_outputs, markdown_table, to_csv_text, to_json_text
from weightstats.text import visible


def split_groups(report: ModelReport) -> list[ModelReport]:
    """One sub-report per group (e.g. a VAE's encoder and decoder) for ``compare`` of one spec."""
    groups = sorted({lr.group for lr in report.layers if lr.group})
    out = []
    for g in groups:
        members = [lr for lr in report.layers if lr.group == g]
        out.append(ModelReport(model=f"{report.model}:{g}", spec=report.spec, layers=members,
                               families=report.families, options=report.options,
                               description=f"{report.description} ({g})".strip()))
    return out


def compare_frame(reports: Sequence[ModelReport]) -> pd.DataFrame:
    """One row per model: layer/weight share per best family (BIC and AIC) and median shapes."""
    rows = []
    for rep in reports:
        info, sentence = rep.summary()
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


def compare_display(reports: Sequence[ModelReport]) -> pd.DataFrame:
    """Readable comparison: per family "layers won (share of weights)" by BIC, median shapes."""
    from weightstats.report.summary import pct
    from weightstats.report.tables import fmt, fmt_df

    families = list(dict.fromkeys(f for r in reports for f in r.families))
    rows = []
    for rep in reports:
        info, _ = rep.summary()
        row: dict[str, Any] = {"model": rep.model, "layers": info["n_fitted"],
                               "weights": f"{info['n_weights']:,}"}
        for fam in families:
            c = info["by_criterion"]["bic"].get(fam)
            row[family_label(fam)] = f"{c['layers']} ({pct(c['weight_share'])})" if c else ""
        med = info["medians"]
        row["median t df"] = fmt_df(med.get("t_df"))
        row["median β"] = fmt(med.get("gennorm_beta"), 3)
        row["median ex. kurt"] = fmt(med.get("excess_kurtosis"), 3)
        rows.append(row)
    return pd.DataFrame(rows)


def compare_figure(reports: Sequence[ModelReport]) -> Figure:
    """Share of layers / weights per best family (BIC) per model, and t df / beta per model."""
    from weightstats.report.figures import BETA_SHOWN_UP_TO, COLORS, DF_SHOWN_UP_TO, new_figure

    families = list(dict.fromkeys(f for r in reports for f in r.families))
    names = [visible(r.model) for r in reports]  # group names come from the file
    fig = new_figure(12, 7.5)
    axes = fig.subplots(2, 2)
    for ax, key, title in ((axes[0, 0], "layers", "share of layers"),
                           (axes[0, 1], "weight_share", "share of weights")):
        bottom = np.zeros(len(reports))
        for fam in families:
            vals = []
            for rep in reports:
                info, _ = rep.summary()
                c = info["by_criterion"]["bic"].get(fam, {"layers": 0, "weight_share": 0.0})
                n = max(info["n_fitted"], 1)
                vals.append(c["layers"] / n if key == "layers" else c["weight_share"])
            ax.bar(names, vals, bottom=bottom, color=COLORS.get(fam, "0.5"),
                   label=family_label(fam))
            bottom += np.asarray(vals)
        ax.set_ylim(0, 1)
        ax.set_title(f"best family by BIC: {title}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    axes[0, 0].legend(fontsize=8)
    shapes = ((axes[1, 0], "t_df", DF_SHOWN_UP_TO,
               f"Student-t df per layer (≥{DF_SHOWN_UP_TO:g}: Gaussian limit)", True),
              (axes[1, 1], "gennorm_beta", BETA_SHOWN_UP_TO,
               f"generalized normal β per layer (≥{BETA_SHOWN_UP_TO:g} shown at "
               f"{BETA_SHOWN_UP_TO:g})", False))
    for ax, col, cap, title, log in shapes:
        data = []
        for rep in reports:
            w = rep.wide()
            vals = w.loc[w["status"] == "ok", col].to_numpy(dtype=float) if len(w) else []
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
        if log:
            ax.set_yscale("log")
        else:
            ax.axhline(2, color=COLORS["normal"], ls="--", lw=0.9, label="β = 2 (Gaussian)")
            ax.axhline(1, color=COLORS["laplace"], ls="--", lw=0.9, label="β = 1 (Laplace)")
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.suptitle("weightstats: " + " vs ".join(names), fontsize=11)
    return fig


def compare_markdown(reports: Sequence[ModelReport], frame: pd.DataFrame) -> str:
    """summary.md of a comparison."""
    from weightstats.report.summary import NOTES
    from weightstats.text import markdown

    # Model names of one spec's groups come from layer names (file content): escaped.
    lines = ["# weightstats comparison: " + " vs ".join(markdown(r.model) for r in reports), ""]
    lines += [f"- **{markdown(r.model)}**: {markdown(r.summary()[1])}" for r in reports]
    lines += ["", "Best family by BIC: layers won (share of weights).", "",
              markdown_table(compare_display(reports)), "## Notes", ""]
    lines += [f"- {n}" for n in NOTES]
    return "\n".join(lines) + "\n"


def save_compare(reports: Sequence[ModelReport], directory: str | os.PathLike[str],
                 formats: Sequence[str] = ("csv", "md", "json", "html", "png"), *,
                 plots: bool = True) -> Path:
    """Write the comparison (models.csv, summary.md, report.json, compare.png, report.html)."""
    from weightstats.report.figures import render
    from weightstats.report.html import page, table_html

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
            import base64

            from weightstats.text import html_text

            sections = [("Models (best family by BIC: layers won, share of weights)",
                         table_html(compare_display(reports), text_cols=("model",)))]
            if png:
                b64 = base64.b64encode(png).decode("ascii")
                sections.append(("Figure", f'<figure><img alt="compare" '
                                           f'src="data:image/png;base64,{b64}"></figure>'))
            sections.append(("Summaries", "<ul>" + "".join(
                f"<li><b>{html_text(r.model)}</b>: {html_text(r.summary()[1])}</li>"
                for r in reports) + "</ul>"))
            title = "weightstats: " + " vs ".join(r.model for r in reports)
            (tmp / "report.html").write_text(page(title, sections))
    return target
