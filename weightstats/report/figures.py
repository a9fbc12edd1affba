"""Figures: log-density histograms with fitted pdfs, QQ plots, and per-depth effect sizes.

Uses matplotlib's object API with the Agg canvas (never pyplot's global backend), so it works
headless and does not change the backend of a notebook that imports weightstats. PNGs are
deterministic: fixed dpi and no "Software" metadata.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator

from weightstats.fitting.plot import draw_fits, draw_qq_points, fit_ylim, qq_points
from weightstats.report.layer import LayerResult
from weightstats.report.model import ReportData
from weightstats.report.text import (
    MAX_PANEL_LAYERS,
    beyond_label,
    displayed,
    family,
    family_color,
    family_label,
    family_marker,
    nesting_baseline,
    reference_label,
    shape_axis_label,
    shape_column,
    shape_display,
)
from weightstats.report.text import panel_note as _panel_note
from weightstats.text import visible

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes

PER_FIGURE = 20  # small multiples per page: 5 x 4 stays legible at the report's width
# Panels are drawn for the MAX_PANEL_LAYERS largest layers only (``text``), and the per-depth
# figures draw one median point per bin of layers beyond MAX_POINTS. This bounds the number,
# size and drawing time of the figures whatever the model.
MAX_POINTS = 1000
MAX_FIGURES = 2 * math.ceil(MAX_PANEL_LAYERS / PER_FIGURE) + 2
MAX_FIGURE_BYTES = 3_000_000  # all PNGs of one report together (measured: ~1.4 MB at the caps)
NCOLS = 5
DPI = 120  # legible when opened full size; panel sizes below keep files and drawing time small
MAX_NAMED_TICKS = 80  # per-depth figures name their layers on the x axis up to this many
# Colours, markers, shape axes (their caps, log scale, reference lines) come from each
# family's class (``weightstats.fitting.families``): a new family needs no edit here.
_label, _color = family_label, family_color


@contextlib.contextmanager
def plain_text() -> Iterator[None]:
    """Draw text as given: a layer or model name with ``$`` must not be parsed as mathtext.

    Text objects read the setting when created and tick labels are created while drawing, so
    both building and rendering a figure happen inside this block.
    """
    with matplotlib.rc_context({**theme(), "text.parse_math": False}):
        yield


@functools.lru_cache(maxsize=1)
def theme() -> dict[str, Any]:
    """seaborn's "ticks" style and "paper" context as rc settings: one look for every figure
    (light grid, no top/right spines), applied per figure without touching global state."""
    import seaborn as sns

    rc: dict[str, Any] = {**sns.axes_style("ticks"), **sns.plotting_context("paper")}
    rc.update({"axes.grid": True, "grid.color": "#e6e6e6", "grid.linewidth": 0.6,
               "axes.spines.top": False, "axes.spines.right": False})
    return rc


def render(build: Callable[..., Figure], *args: Any) -> bytes:
    """PNG bytes of ``build(*args)``, with names drawn as plain text."""
    with plain_text():
        return to_png(build(*args))


def panel_layers(report: ReportData) -> list[LayerResult]:
    """The layers drawn as panels: all, or the MAX_PANEL_LAYERS largest, in depth order."""
    layers = list(report.layers)
    if len(layers) <= MAX_PANEL_LAYERS:
        return layers
    largest = sorted(range(len(layers)), key=lambda i: (-int(layers[i].fit.n), i))
    return [layers[i] for i in sorted(largest[:MAX_PANEL_LAYERS])]


def panel_note(report: ReportData) -> str | None:
    """The sentence stating which layers the panels show, when not all of them."""
    return _panel_note(len(report.layers)) or None


def _thin(depth: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS points: beyond that, the median of each bin of consecutive layers."""
    depth = np.asarray(depth, dtype=float)
    values = np.asarray(values, dtype=float)
    if depth.size <= MAX_POINTS:
        return depth, values
    bins = np.array_split(np.arange(depth.size), MAX_POINTS)
    x = np.array([depth[b].mean() for b in bins])
    with np.errstate(all="ignore"):
        # inf (a shape at its cap) is a value: only missing ones are skipped.
        y = np.array([np.nanmedian(values[b]) if (~np.isnan(values[b])).any() else np.nan
                      for b in bins])
    return x, y


def log_y(ax: Axes) -> None:
    """A log y axis whose tick labels read "0.1", "10", "1000": the default labels are mathtext,
    which ``plain_text`` (names drawn as given) would print raw as ``$\\mathdefault{10^{1}}$``."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def draw_references(ax: Axes, fam: str, references: tuple[tuple[float, str], ...]) -> None:
    """Dashed lines at the shape values where ``fam`` becomes another family (β = 2: Gaussian),
    in that family's colour; a reference to a family no longer registered is skipped."""
    for value, ref in references:
        if family(ref) is not None:
            ax.axhline(value, color=family_color(ref), ls="--", lw=0.9,
                       label=reference_label(fam, value, ref))


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


def visible_short(name: str, width: int = 38) -> str:
    """Keep the informative tail of long layer names; control characters shown escaped (they
    have no glyph: matplotlib would warn on stderr with the raw character)."""
    name = visible(name)
    return name if len(name) <= width else "…" + name[-(width - 1):]


_short = visible_short


def _best(lr: LayerResult) -> str | None:
    return (lr.fit.verdict or {}).get("best_bic") if lr.fit.status == "ok" else None


def panel_title(ax: Axes, lr: LayerResult) -> None:
    """The layer's name, then its n and best family by BIC (in the family's colour), above the
    data so nothing covers it."""
    ax.set_title(_short(lr.name), fontsize=8, loc="left", pad=12)
    best = _best(lr)
    detail = f"n = {int(lr.fit.n):,}" + (f" · best: {_label(best)}" if best else "")
    ax.text(0.0, 1.01, detail, transform=ax.transAxes, fontsize=7, va="bottom", ha="left",
            color=_color(best) if best else "0.35")


def _not_fitted(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8)


def family_handles(families: Sequence[str], data: bool = True) -> tuple[list[Any], list[str]]:
    """Legend entries for the fitted families (registry colours) and the data."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Patch(color="0.35", alpha=0.35)] if data else []
    labels = ["data (histogram)"] if data else []
    for fam in families:
        handles.append(Line2D([], [], color=_color(fam), lw=1.6))
        labels.append(_label(fam))
    return handles, labels


def draw_histogram(ax: Axes, lr: LayerResult, families: Sequence[str], legend: bool) -> None:
    """Histogram on a log-density axis with each family's fitted pdf (the tails differ)."""
    fit = lr.fit
    panel_title(ax, lr)
    ax.tick_params(labelsize=7)
    if fit.status != "ok" or len(fit.histogram[0]) == 0:
        _not_fitted(ax, f"not fitted: {fit.status}")
        return
    dens = draw_fits(ax, fit, families, lw=1.1)
    log_y(ax)
    # Few ticks: tick layout on log axes dominates the drawing time of many small panels.
    ax.yaxis.set_major_locator(LogLocator(numticks=4))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_locator(MaxNLocator(5))
    fit_ylim(ax, dens)
    if legend:  # a single-layer figure: the legend beside the panel, off the data
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def draw_qq(ax: Axes, lr: LayerResult) -> None:
    """QQ plot against the best (BIC) fit, from the histogram's cumulative counts.

    Built from the fitter's histogram, so no raw weights need to be kept after fitting (memory
    stays at one tensor); resolution is one bin.
    """
    fit = lr.fit
    best = _best(lr)
    panel_title(ax, lr)
    ax.tick_params(labelsize=7)
    if fit.status != "ok" or best is None or len(fit.histogram[0]) == 0:
        _not_fitted(ax, f"not fitted: {fit.status}")
        return
    points = qq_points(fit, best)
    if points is None:  # no ppf for a failed fit: leave the panel with a note
        _not_fitted(ax, "no quantile function")
        return
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    draw_qq_points(ax, *points, color=_color(best), ms=2.5)


def _grid(n: int) -> tuple[int, int]:
    cols = min(NCOLS, max(n, 1))
    return math.ceil(max(n, 1) / cols), cols


def small_multiples(report: ReportData, layers: Sequence[LayerResult], what: str) -> Figure:
    """One page of histogram ("hist") or QQ ("qq") panels, one legend above them all."""
    with matplotlib.rc_context({"axes.grid": False}):  # grid lines: many artists, little use
        return _small_multiples(report, layers, what)


def _small_multiples(report: ReportData, layers: Sequence[LayerResult], what: str) -> Figure:
    rows, cols = _grid(len(layers))
    # Fixed margins instead of constrained layout: layout passes re-draw every tick label.
    top_in, bottom_in = 1.05, 0.5
    height = 2.3 * rows + top_in + bottom_in
    fig = new_figure(2.9 * cols + 0.4, height, layout=None)
    fig.subplots_adjust(left=0.45 / (2.9 * cols + 0.4) + 0.03, right=0.99,
                        bottom=bottom_in / height, top=1 - top_in / height,
                        wspace=0.3, hspace=0.62)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(layers):
            ax.set_axis_off()
            continue
        if what == "hist":
            draw_histogram(ax, layers[i], report.families, legend=False)
        else:
            draw_qq(ax, layers[i])
    if what == "hist":
        title = "weight density (log scale) with each family's fitted pdf"
        fig.supxlabel("weight", fontsize=9)
        fig.supylabel("density (per unit weight, log scale)", fontsize=9)
        handles, labels = family_handles(report.families)
    else:
        title = "QQ plots against each layer's best family by BIC"
        fig.supxlabel("fitted quantile (weight units)", fontsize=9)
        fig.supylabel("weight quantile", fontsize=9)
        handles, labels = family_handles(report.families, data=False)
        labels = [f"best: {t}" for t in labels]
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 1 - 0.42 / height))
    shown = "" if len(report.layers) <= MAX_PANEL_LAYERS else (
        f" ({MAX_PANEL_LAYERS} largest of {len(report.layers)} layers)")
    fig.suptitle(f"{visible(report.model)}: {title}{shown}", fontsize=10, y=1 - 0.1 / height)
    return fig


def depth_axis(ax: Axes, wide: Any) -> None:
    """The x axis of a per-depth figure: the layers' names where they fit, else the index."""
    if 0 < len(wide) <= MAX_NAMED_TICKS:
        ax.set_xticks(wide["depth"].to_numpy(dtype=float),
                      [_short(str(n), 28) for n in wide["layer"]], rotation=90, fontsize=6)
        ax.set_xlabel("layer (in depth order)")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer depth (order in the model)")


def _depth_width(n: int) -> float:
    """Figure width in inches: room for the names of up to MAX_NAMED_TICKS layers."""
    return float(min(max(10.0, 0.17 * min(n, MAX_NAMED_TICKS) + 3.0), 16.0))


def delta_ll_figure(report: ReportData) -> Figure:
    """Log-likelihood per weight of each family relative to the baseline family (the one the
    others nest, :func:`text.nesting_baseline`: the Gaussian) or, without one, the best, vs depth."""
    wide = report.wide()
    wide = wide[wide["status"] == "ok"] if len(wide) else wide
    named = 0 < len(wide) <= MAX_NAMED_TICKS
    fig = new_figure(_depth_width(len(wide)), 5.2 if named else 4.2)
    ax = fig.subplots()
    base_name = nesting_baseline(report.families)
    if len(wide):
        cols = [f"ll_per_weight_{f}" for f in report.families]
        lls = wide[cols].to_numpy(dtype=float)
        base = (wide[f"ll_per_weight_{base_name}"].to_numpy(dtype=float) if base_name
                else np.nanmax(lls, axis=1))
        for j, fam in enumerate(report.families):
            x, y = _thin(wide["depth"].to_numpy(dtype=float), lls[:, j] - base)
            ax.plot(x, y, marker=family_marker(fam), ms=3.5,
                    lw=0.8, color=_color(fam), label=_label(fam))
    ax.axhline(0, color="0.3", lw=0.8)
    ref = _label(base_name) if base_name else "the best family"
    depth_axis(ax, wide)
    ax.set_ylabel(f"log-likelihood per weight − {ref}\n(nats per weight)")
    ax.set_title(f"{visible(report.model)}: fit gain per weight relative to {ref} (higher is "
                 f"better; {len(wide):,} layers)" + _thinned(len(wide)), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def shape_figure(report: ReportData) -> Figure:
    """Each fitted family's shape parameter vs depth with its 95% interval, one panel per
    family with a ShapeDisplay (its cap, log axis and reference lines: Student-t df,
    generalized-normal β)."""
    wide = report.wide()
    wide = wide[wide["status"] == "ok"] if len(wide) else wide
    shapes = displayed(report.families)
    named = 0 < len(wide) <= MAX_NAMED_TICKS
    fig = new_figure(_depth_width(len(wide)),
                     max(3.5, 2.8 * len(shapes)) + (1.2 if named else 0.0))
    axes = fig.subplots(max(len(shapes), 1), 1, sharex=True, squeeze=False)[:, 0]
    if not shapes:
        axes[0].text(0.5, 0.5, "no fitted family has a shape parameter", ha="center",
                     va="center", transform=axes[0].transAxes, fontsize=9)
    for ax, fam in zip(axes, shapes, strict=False):
        _draw_shape(ax, wide, fam)
    depth_axis(axes[-1], wide)
    fig.suptitle(f"{visible(report.model)}: tail shape vs depth, 95% intervals "
                 f"({len(wide):,} layers)" + _thinned(len(wide)), fontsize=10)
    return fig


def _draw_shape(ax: Axes, wide: Any, fam: str) -> None:
    """One family's first shape vs depth with the report's intervals (``_ci_low``/``_ci_high``,
    drawn up to the display's cap): values past the cap drawn as open markers at the cap
    (Student-t df beyond ~1e3 is the Gaussian limit; fits run to the 1e10 cap), and the
    display's reference values as dashed lines in the colour of the family they stand for."""
    display = shape_display(fam)
    color, marker = family_color(fam), family_marker(fam)
    if len(wide):
        top = display.shown_up_to
        col = shape_column(fam)
        raw_depth = wide["depth"].to_numpy(dtype=float)
        depth, value = _thin(raw_depth, wide[col].to_numpy(dtype=float))
        if raw_depth.size <= MAX_POINTS and f"{col}_ci_low" in wide:
            low = wide[f"{col}_ci_low"].to_numpy(dtype=float)
            high = wide[f"{col}_ci_high"].to_numpy(dtype=float)
            has = np.isfinite(low) & np.isfinite(high)
            if has.any():
                ax.vlines(raw_depth[has], np.minimum(low[has], top), np.minimum(high[has], top),
                          color=color, lw=1.0, alpha=0.55, label="95% interval")
        ax.plot(depth, np.minimum(value, top), "-", lw=0.8, color=color)
        inside = value <= top
        ax.plot(depth[inside], value[inside], marker, ms=3.5, color=color)
        beyond = value > top
        if beyond.any():
            ax.plot(depth[beyond], np.full(beyond.sum(), top), marker, ms=5, mfc="none",
                    color=color, label=beyond_label(fam))
        if display.log_axis:
            log_y(ax)
    draw_references(ax, fam, display.references)
    ax.set_ylabel(shape_axis_label(fam))
    if display.title:
        ax.set_title(display.title, fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _thinned(n: int) -> str:
    """Title suffix when per-depth points are bin medians."""
    return f" (median per bin of ~{n / MAX_POINTS:.3g} layers)" if n > MAX_POINTS else ""


def layer_figure(report: ReportData, lr: LayerResult) -> Figure:
    """Histogram and QQ plot of a single layer."""
    with plain_text():
        fig = new_figure(10, 3.8)
        ax_h, ax_q = fig.subplots(1, 2)
        draw_histogram(ax_h, lr, report.families, legend=True)
        draw_qq(ax_q, lr)
        ax_h.set_xlabel("weight")
        ax_h.set_ylabel("density (log scale)")
        ax_q.set_xlabel("fitted quantile")
        ax_q.set_ylabel("weight quantile")
    return fig


def pages(report: ReportData) -> list[tuple[str, list[LayerResult]]]:
    """(file name, layers) of every page of histogram and QQ panels."""
    layers = panel_layers(report)
    count = max(1, math.ceil(len(layers) / PER_FIGURE))
    out = []
    for what in ("hist", "qq"):
        for p in range(count):
            chunk = layers[p * PER_FIGURE:(p + 1) * PER_FIGURE]
            if chunk:
                out.append((f"{what}_{p + 1:02d}.png", chunk))
    return out


def describe(report: ReportData) -> dict[str, str]:
    """Alt text of every figure :func:`render_all` draws: what it shows, for whom it is read
    aloud (the caption says how to read it)."""
    fams = ", ".join(_label(f) for f in report.families)
    out = {}
    for name, chunk in pages(report):
        span = (f"{len(chunk)} layers, {visible(chunk[0].name)} to {visible(chunk[-1].name)}"
                if len(chunk) > 1 else f"layer {visible(chunk[0].name)}")
        if name.startswith("hist"):
            out[name] = (f"Small multiples for {span}: each panel a histogram of the layer's "
                         f"weights on a log density axis with the fitted {fams} densities, "
                         "titled with n and the best family by BIC.")
        else:
            out[name] = (f"QQ plots for {span}: weight quantiles against the quantiles of each "
                         "layer's best family by BIC, with the identity line.")
    n = sum(1 for lr in report.layers if lr.fit.status == "ok")
    base = nesting_baseline(report.families)
    out["delta_loglik_vs_depth.png"] = (
        f"Line chart over {n} layers in depth order: log-likelihood per weight of {fams} "
        f"relative to {_label(base) if base else 'the best family'}, in nats per weight.")
    shapes = " and ".join(f"{_label(f)} {shape_display(f).symbol}"
                          for f in displayed(report.families))
    out["shape_vs_depth.png"] = (
        f"{shapes} of each of {n} layers in depth order, with 95% intervals and reference "
        "lines." if shapes else "No fitted family has a shape parameter.")
    return out


def render_all(report: ReportData) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, PNG bytes)`` for every report figure, one figure in memory at a time.

    At most MAX_FIGURES files: panels for :func:`panel_layers` only.
    """
    for name, chunk in pages(report):
        yield name, render(small_multiples, report, chunk, name[:name.index("_")])
    yield "delta_loglik_vs_depth.png", render(delta_ll_figure, report)
    yield "shape_vs_depth.png", render(shape_figure, report)
