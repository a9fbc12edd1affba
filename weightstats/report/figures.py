"""Figures: log-density histograms with fitted pdfs, QQ plots, and per-depth effect sizes.

Uses matplotlib's object API with the Agg canvas (never pyplot's global backend), so it works
headless and does not change the backend of a notebook that imports weightstats. PNGs are
deterministic: fixed dpi and no "Software" metadata.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

from weightstats.text import visible

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes

    from weightstats.report.model_report import LayerResult, ModelReport

PER_FIGURE = 20  # small multiples per page: 5 x 4 stays legible at the report's width
# A model of 10,000 layers would need 1,000 pages of small multiples: panels are drawn for the
# largest layers only (by weight count; every layer stays in the tables), and the per-depth
# figures draw one median point per bin of layers beyond MAX_POINTS. This bounds the number,
# size and drawing time of the figures whatever the model.
MAX_PANEL_LAYERS = 40
MAX_POINTS = 1000
MAX_FIGURES = 2 * math.ceil(MAX_PANEL_LAYERS / PER_FIGURE) + 2
MAX_FIGURE_BYTES = 3_000_000  # all PNGs of one report together (measured: ~1.2 MB at the caps)
NCOLS = 5
DPI = 80
COLORS = {"normal": "#1f77b4", "laplace": "#d62728", "t": "#2ca02c", "gennorm": "#9467bd"}
MARKERS = {"normal": "o", "laplace": "s", "t": "^", "gennorm": "D"}
# Shape axes are capped so that the interesting range stays readable: t df beyond ~1e3 is the
# Gaussian limit (fits run to the 1e10 cap), and gennorm beta runs to its bound 20 for
# uniform-like layers. Capped values are drawn at the cap.
DF_SHOWN_UP_TO = 1e3
BETA_SHOWN_UP_TO = 6.0


def _label(name: str) -> str:
    from weightstats.report.model_report import family_label

    return family_label(name)


def _color(name: str) -> str:
    return COLORS.get(name, "#7f7f7f")


@contextlib.contextmanager
def plain_text() -> Iterator[None]:
    """Draw text as given: a layer or model name with ``$`` must not be parsed as mathtext.

    Text objects read the setting when created and tick labels are created while drawing, so
    both building and rendering a figure happen inside this block.
    """
    with matplotlib.rc_context({"text.parse_math": False}):
        yield


def render(build: Callable[..., Figure], *args: Any) -> bytes:
    """PNG bytes of ``build(*args)``, with names drawn as plain text."""
    with plain_text():
        return to_png(build(*args))


def panel_layers(report: ModelReport) -> list[LayerResult]:
    """The layers drawn as panels: all, or the MAX_PANEL_LAYERS largest, in depth order."""
    layers = list(report.layers)
    if len(layers) <= MAX_PANEL_LAYERS:
        return layers
    largest = sorted(range(len(layers)), key=lambda i: (-int(layers[i].fit.n), i))
    return [layers[i] for i in sorted(largest[:MAX_PANEL_LAYERS])]


def panel_note(report: ModelReport) -> str | None:
    """The sentence stating which layers the panels show, when not all of them."""
    n = len(report.layers)
    if n <= MAX_PANEL_LAYERS:
        return None
    return (f"Histogram and QQ figures show the {MAX_PANEL_LAYERS} of {n} layers with the most "
            "weights; the tables list every layer.")


def _thin(depth: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS points: beyond that, the median of each bin of consecutive layers."""
    depth = np.asarray(depth, dtype=float)
    values = np.asarray(values, dtype=float)
    if depth.size <= MAX_POINTS:
        return depth, values
    bins = np.array_split(np.arange(depth.size), MAX_POINTS)
    x = np.array([depth[b].mean() for b in bins])
    with np.errstate(all="ignore"):
        y = np.array([np.nanmedian(values[b]) if np.isfinite(values[b]).any() else np.nan
                      for b in bins])
    return x, y


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A Figure bound to an Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    """Render ``fig`` to PNG bytes deterministically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _short(name: str, width: int = 38) -> str:
    """Keep the informative tail of long layer names; control characters shown escaped (they
    have no glyph: matplotlib would warn on stderr with the raw character)."""
    name = visible(name)
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _density(fit: Any) -> tuple[np.ndarray, np.ndarray]:
    counts, edges = fit.histogram
    counts = np.asarray(counts, dtype=float)
    edges = np.asarray(edges, dtype=float)
    widths = np.diff(edges)
    total = counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        dens = np.where((counts > 0) & (widths > 0), counts / (total * widths), np.nan)
    return dens, edges


def draw_histogram(ax: Axes, lr: LayerResult, families: Sequence[str], legend: bool) -> None:
    """Histogram on a log-density axis with each family's fitted pdf (the tails differ)."""
    fit = lr.fit
    ax.set_title(_short(lr.name), fontsize=8)
    ax.tick_params(labelsize=7)
    if fit.status != "ok" or len(fit.histogram[0]) == 0:
        ax.text(0.5, 0.5, f"not fitted: {fit.status}", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
        return
    dens, edges = _density(fit)
    ax.stairs(np.nan_to_num(dens, nan=0.0), edges, color="0.35", fill=True, alpha=0.35,
              label="data")
    x = np.linspace(edges[0], edges[-1], 400)
    for fam in families:
        try:
            pdf = np.asarray(fit.frozen(fam).pdf(x), dtype=float)
        except Exception:  # a family whose fit failed has no pdf; the others still plot
            continue
        ax.plot(x, pdf, color=_color(fam), lw=1.1, label=_label(fam))
    ax.set_yscale("log")
    # Few ticks: tick layout on log axes dominates the drawing time of many small panels.
    ax.yaxis.set_major_locator(LogLocator(numticks=4))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_locator(MaxNLocator(5))
    positive = dens[np.isfinite(dens) & (dens > 0)]
    if positive.size:
        ax.set_ylim(positive.min() / 3, positive.max() * 3)
    if legend:
        ax.legend(fontsize=6, loc="upper right")


def draw_qq(ax: Axes, lr: LayerResult) -> None:
    """QQ plot against the best (BIC) fit, from the histogram's cumulative counts.

    Built from the fitter's histogram, so no raw weights need to be kept after fitting (memory
    stays at one tensor); resolution is one bin.
    """
    fit = lr.fit
    best = (fit.verdict or {}).get("best_bic")
    ax.set_title(_short(lr.name), fontsize=8)
    ax.tick_params(labelsize=7)
    if fit.status != "ok" or best is None or len(fit.histogram[0]) == 0:
        ax.text(0.5, 0.5, f"not fitted: {fit.status}", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
        return
    counts, edges = fit.histogram
    counts = np.asarray(counts, dtype=float)
    edges = np.asarray(edges, dtype=float)
    # One point per non-empty bin: its centre against the fitted quantile of the bin's mid
    # cumulative probability (empty tail bins would otherwise stack into vertical streaks).
    prob = (np.cumsum(counts) - counts / 2) / counts.sum()
    keep = counts > 0
    sample = ((edges[:-1] + edges[1:]) / 2)[keep]
    try:
        theo = np.asarray(fit.frozen(best).ppf(prob[keep]), dtype=float)
    except Exception:  # no ppf for a failed fit: leave the panel with a note
        ax.text(0.5, 0.5, "no quantile function", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
        return
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.plot(theo, sample, ".", ms=2.5, color=_color(best))
    finite = np.isfinite(theo)
    if finite.any():
        lo = float(min(theo[finite].min(), sample.min()))
        hi = float(max(theo[finite].max(), sample.max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--")
    ax.text(0.03, 0.95, f"vs {_label(best)}", transform=ax.transAxes, fontsize=7, va="top")


def _grid(n: int) -> tuple[int, int]:
    cols = min(NCOLS, max(n, 1))
    return math.ceil(max(n, 1) / cols), cols


def small_multiples(report: ModelReport, layers: Sequence[LayerResult], what: str) -> Figure:
    """One page of histogram ("hist") or QQ ("qq") panels."""
    rows, cols = _grid(len(layers))
    # Fixed margins instead of constrained layout: layout passes re-draw every tick label.
    height = 2.5 * rows + 0.5
    fig = new_figure(3.2 * cols, height, layout=None)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.35 / height,
                        top=1 - 0.8 / height, wspace=0.28, hspace=0.42)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(layers):
            ax.set_axis_off()
            continue
        if what == "hist":
            draw_histogram(ax, layers[i], report.families, legend=(i == 0))
        else:
            draw_qq(ax, layers[i])
    title = ("weight density (log scale) with fitted pdfs" if what == "hist"
             else "QQ plot against the best (BIC) family: x fitted quantile, y weight")
    shown = "" if len(report.layers) <= MAX_PANEL_LAYERS else (
        f" ({MAX_PANEL_LAYERS} largest of {len(report.layers)} layers)")
    fig.suptitle(f"{visible(report.model)}: {title}{shown}", fontsize=10)
    return fig


def delta_ll_figure(report: ModelReport) -> Figure:
    """Log-likelihood per weight of each family relative to the Gaussian (or the best), vs depth."""
    wide = report.wide()
    wide = wide[wide["status"] == "ok"] if len(wide) else wide
    fig = new_figure(10, 4)
    ax = fig.subplots()
    base_name = "normal" if "normal" in report.families else None
    if len(wide):
        cols = [f"ll_per_weight_{f}" for f in report.families]
        lls = wide[cols].to_numpy(dtype=float)
        base = (wide[f"ll_per_weight_{base_name}"].to_numpy(dtype=float) if base_name
                else np.nanmax(lls, axis=1))
        for j, fam in enumerate(report.families):
            x, y = _thin(wide["depth"].to_numpy(dtype=float), lls[:, j] - base)
            ax.plot(x, y, marker=MARKERS.get(fam, "o"), ms=3.5,
                    lw=0.8, color=_color(fam), label=_label(fam))
    ax.axhline(0, color="0.3", lw=0.8)
    ref = _label(base_name) if base_name else "the best family"
    ax.set_xlabel("layer depth (order in the model)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"log-likelihood per weight − {ref}")
    ax.set_title(f"{visible(report.model)}: fit gain per weight relative to {ref} (higher is better)"
                 + _thinned(len(wide)), fontsize=10)
    ax.legend(fontsize=8)
    return fig


def shape_figure(report: ModelReport) -> Figure:
    """Student-t df (log axis) and generalized-normal beta vs depth, with reference lines."""
    wide = report.wide()
    wide = wide[wide["status"] == "ok"] if len(wide) else wide
    fig = new_figure(10, 6)
    ax_t, ax_b = fig.subplots(2, 1, sharex=True)
    if len(wide) and "t" in report.families:
        # df beyond ~1e3 is indistinguishable from the Gaussian limit (fits run to the 1e10 cap):
        # draw those at the top of the axis as open markers instead of squashing the rest.
        top = DF_SHOWN_UP_TO
        depth, df = _thin(wide["depth"].to_numpy(dtype=float), wide["t_df"].to_numpy(dtype=float))
        ax_t.plot(depth, np.minimum(df, top), "-", lw=0.8, color=_color("t"))
        inside = df < top
        ax_t.plot(depth[inside], df[inside], "^", ms=3.5, color=_color("t"))
        if (~inside).any():
            ax_t.plot(depth[~inside], np.full((~inside).sum(), top), "^", ms=5,
                      mfc="none", color=_color("t"), label=f"df ≥ {top:g} (Gaussian limit)")
            ax_t.legend(fontsize=8)
        ax_t.set_yscale("log")
    ax_t.set_ylabel("Student-t df (log)")
    ax_t.set_title("Student-t degrees of freedom (large df → Gaussian)", fontsize=9)
    if len(wide) and "gennorm" in report.families:
        cap = BETA_SHOWN_UP_TO
        depth, beta = _thin(wide["depth"].to_numpy(dtype=float),
                            wide["gennorm_beta"].to_numpy(dtype=float))
        ax_b.plot(depth, np.minimum(beta, cap), "D-", ms=3.5, lw=0.8,
                  color=_color("gennorm"))
        if (beta > cap).any():
            ax_b.plot(depth[beta > cap], np.full((beta > cap).sum(), cap), "D", ms=6,
                      mfc="none", color=_color("gennorm"), label=f"β ≥ {cap:g} (flat, uniform-like)")
    ax_b.axhline(2, color=_color("normal"), ls="--", lw=0.9, label="β = 2 (Gaussian)")
    ax_b.axhline(1, color=_color("laplace"), ls="--", lw=0.9, label="β = 1 (Laplace)")
    ax_b.set_ylabel("generalized normal β")
    ax_b.set_xlabel("layer depth (order in the model)")
    ax_b.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_b.legend(fontsize=8)
    fig.suptitle(f"{visible(report.model)}: tail shape vs depth" + _thinned(len(wide)), fontsize=10)
    return fig


def _thinned(n: int) -> str:
    """Title suffix when per-depth points are bin medians."""
    return f" (median per bin of ~{n / MAX_POINTS:.3g} layers)" if n > MAX_POINTS else ""


def layer_figure(report: ModelReport, lr: LayerResult) -> Figure:
    """Histogram and QQ plot of a single layer."""
    with plain_text():
        fig = new_figure(9, 3.6)
        ax_h, ax_q = fig.subplots(1, 2)
        draw_histogram(ax_h, lr, report.families, legend=True)
        draw_qq(ax_q, lr)
        ax_h.set_xlabel("weight")
        ax_q.set_xlabel("fitted quantile")
        ax_q.set_ylabel("weight quantile")
    return fig


def render_all(report: ModelReport) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, PNG bytes)`` for every report figure, one figure in memory at a time.

    At most MAX_FIGURES files: panels for :func:`panel_layers` only.
    """
    layers = panel_layers(report)
    pages = max(1, math.ceil(len(layers) / PER_FIGURE))
    for what in ("hist", "qq"):
        for p in range(pages):
            chunk = layers[p * PER_FIGURE:(p + 1) * PER_FIGURE]
            if not chunk:
                continue
            yield f"{what}_{p + 1:02d}.png", render(small_multiples, report, chunk, what)
    yield "delta_loglik_vs_depth.png", render(delta_ll_figure, report)
    yield "shape_vs_depth.png", render(shape_figure, report)
