"""``zoo/report.html``: the sweep on one self-contained page (figures as base64 PNG).

Figures: each model's share of weights won by each family (BIC), and for each family with a
displayed shape parameter (from the registry) its value by model and relative depth. Every
family name, colour and shape comes from :mod:`weightstats.fitting.families`.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import pandas as pd

from weightstats.text import html_text

MAX_MODELS_SHOWN = 60  # bars and legend entries beyond this are unreadable: the tables hold all


def share_figure(models: pd.DataFrame, families: list[str]) -> Any:
    """Horizontal stacked bars: per model, the share of weights each family wins by BIC."""
    from weightstats.report.figures import new_figure
    from weightstats.report.text import family_color, family_label

    shown = models.head(MAX_MODELS_SHOWN)
    fig = new_figure(8, 1.2 + 0.32 * len(shown))
    ax = fig.add_subplot()
    y = np.arange(len(shown))[::-1]
    left = np.zeros(len(shown))
    for fam in families:
        share = shown[f"bic_weight_share_{fam}"].astype(float).fillna(0.0).to_numpy()
        ax.barh(y, share, left=left, color=family_color(fam), label=family_label(fam))
        left += share
    ax.barh(y, np.clip(1 - left, 0, 1), left=left, color="#dddddd",
            label="no family fits / not fitted")
    ax.set_yticks(y, [str(m) for m in shown["model"]])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of fitted weights, best family by BIC")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 if len(shown) > 4 else -0.3),
              ncol=3, fontsize=8, frameon=False)
    return fig


def shape_by_depth_figure(layers: pd.DataFrame, fam: str) -> Any:
    """One family's shape parameter by relative depth (0 = first layer), one colour per model;
    values past the display's cap drawn at the cap as open markers, the display's reference
    values (β = 2: Gaussian ...) as dashed lines."""
    from weightstats.report.figures import draw_references, log_y, new_figure
    from weightstats.report.text import beyond_label, shape_axis_label, shape_display

    display = shape_display(fam)
    cap = display.shown_up_to if display is not None else math.inf
    rows = layers[(layers["family"] == fam) & (layers["status"] == "ok")]
    fig = new_figure(8, 4.5)
    ax = fig.add_subplot()
    cmap = _colors(rows["model"].nunique())
    beyond_drawn = False
    for i, (model, part) in enumerate(rows.groupby("model", sort=True)):
        if i >= MAX_MODELS_SHOWN:
            break
        depth = part["depth"].astype(float).to_numpy()
        span = depth.max() - depth.min()
        rel = (depth - depth.min()) / span if span > 0 else np.zeros_like(depth)
        value = part["shape"].astype(float).to_numpy()
        ax.plot(rel, np.minimum(value, cap), marker="o", ms=3, lw=0.8, color=cmap[i],
                label=str(model))
        beyond = value > cap
        if beyond.any():
            ax.plot(rel[beyond], np.full(beyond.sum(), cap), "o", ms=6, mfc="none",
                    color="#555555", label=None if beyond_drawn else beyond_label(fam))
            beyond_drawn = True
    if display is not None:
        if display.log_axis:
            log_y(ax)
        draw_references(ax, fam, display.references)
    ax.set_xlabel("relative depth (first to last fitted layer)")
    ax.set_ylabel(shape_axis_label(fam))
    title = display.title if display is not None and display.title else shape_axis_label(fam)
    ax.set_title(f"{title}: by model and depth", fontsize=10)
    if len(rows):
        ax.legend(fontsize=7, ncol=2, frameon=False, loc="best")
    return fig


def _colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(max(n, 1))]


def figures(frames: dict[str, pd.DataFrame]) -> list[tuple[str, bytes]]:
    """(caption, PNG bytes) of every zoo figure."""
    from weightstats.report.figures import render
    from weightstats.report.text import displayed, family_label
    from weightstats.sweep.tables import sweep_families

    models, layers = frames["models"], frames["layers"]
    if not len(models):
        return []
    families = sweep_families(models)
    out = [("Share of weights won by each family (BIC)",
            render(share_figure, models, families))]
    for fam in displayed(families):
        out.append((f"{family_label(fam)} shape by model and depth",
                    render(shape_by_depth_figure, layers, fam)))
    return out


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html_text(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html_text(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_page(frames: dict[str, pd.DataFrame], options: dict[str, Any], *,
                plots: bool = True) -> str:
    """The page: overview table, figures, answers, failures."""
    from weightstats.sweep.tables import options_text, overview

    models, failures = frames["models"], frames["failures"]
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<title>weightstats sweep</title><style>body{font-family:sans-serif;margin:2em;}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
             "padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%}</style></head><body>",
             "<h1>weightstats sweep</h1>",
             f"<p>{len(models)} models fitted, {len(failures)} failed. Options: "
             + html_text(options_text(options)) + "</p>"]
    if len(models):
        parts += ["<h2>Models</h2>", _table(overview(models))]
    if plots:
        for caption, png in figures(frames):
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<figure><img alt=\"{html_text(caption)}\" "
                         f"src=\"data:image/png;base64,{data}\"><figcaption>"
                         f"{html_text(caption)}</figcaption></figure>")
    if len(models):
        parts.append("<h2>Answers (best family by BIC)</h2><ul>")
        parts += [f"<li><b>{html_text(m)}</b>: {html_text(s)}</li>"
                  for m, s in zip(models["model"], models["sentence"], strict=True)]
        parts.append("</ul>")
    if len(failures):
        parts += ["<h2>Failures</h2>", _table(failures)]
    parts.append("</body></html>\n")
    return "\n".join(parts)
