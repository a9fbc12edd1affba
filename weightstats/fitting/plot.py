"""``TensorFit.plot``: one tensor's histogram with every fitted density, and its QQ plot.

matplotlib is imported here, on the first plot: fitting a tensor never loads it. The figure is a
bare ``matplotlib.figure.Figure`` (no pyplot state), which notebooks display and ``savefig`` saves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .families import get_family

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _label(name: str) -> str:
    try:
        return get_family(name).label
    except Exception:  # a family no longer registered still plots under its name
        return name


def _color(name: str) -> str:
    try:
        return get_family(name).color
    except Exception:
        return "#7f7f7f"


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def histogram_density(fit: Any) -> tuple[np.ndarray, np.ndarray]:
    """The fitter's histogram as a density (NaN in empty bins) and its edges."""
    counts = np.asarray(fit.histogram[0], dtype=float)
    edges = np.asarray(fit.histogram[1], dtype=float)
    widths = np.diff(edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        dens = np.where((counts > 0) & (widths > 0), counts / (counts.sum() * widths), np.nan)
    return dens, edges


def draw_fits(ax: Axes, fit: Any, families: Sequence[str], *, lw: float = 1.2,
              data_label: str = "data") -> np.ndarray:
    """The histogram as a density with each family's fitted pdf over it (linear axes; the
    caller picks the scale, then :func:`fit_ylim`). Returns the density."""
    dens, edges = histogram_density(fit)
    ax.stairs(np.nan_to_num(dens, nan=0.0), edges, color="0.35", fill=True, alpha=0.35,
              label=data_label)
    x = np.linspace(edges[0], edges[-1], 400)
    for fam in families:
        try:
            pdf = np.asarray(fit.frozen(fam).pdf(x), dtype=float)
        except Exception:  # a family whose fit failed has no pdf; the others still plot
            continue
        ax.plot(x, pdf, color=_color(fam), lw=lw, label=_label(fam))
    return dens


def fit_ylim(ax: Axes, dens: np.ndarray) -> None:
    """Log-axis limits a factor 3 beyond the data's smallest and largest density."""
    positive = dens[np.isfinite(dens) & (dens > 0)]
    if positive.size:
        ax.set_ylim(positive.min() / 3, positive.max() * 3)


def draw_density(ax: Axes, fit: Any, families: list[str]) -> None:
    """The histogram as a density on a log axis (the tails are where families differ), with
    each family's fitted pdf."""
    dens = draw_fits(ax, fit, families, data_label=f"data (n = {fit.n:,})")
    ax.set_yscale("log")
    fit_ylim(ax, dens)
    ax.set_xlabel("weight")
    ax.set_ylabel("density (log)")
    ax.legend(fontsize=7, loc="upper right")


def qq_points(fit: Any, family: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(fitted quantiles, weight quantiles): one point per non-empty bin of the fitter's
    histogram, its centre against the fitted quantile of the bin's mid cumulative probability
    (empty tail bins would otherwise stack into vertical streaks); None without a quantile
    function (a failed fit)."""
    counts = np.asarray(fit.histogram[0], dtype=float)
    edges = np.asarray(fit.histogram[1], dtype=float)
    prob = (np.cumsum(counts) - counts / 2) / counts.sum()
    keep = counts > 0
    sample = ((edges[:-1] + edges[1:]) / 2)[keep]
    try:
        theo = np.asarray(fit.frozen(family).ppf(prob[keep]), dtype=float)
    except Exception:
        return None
    return theo, sample


def draw_qq_points(ax: Axes, theo: np.ndarray, sample: np.ndarray, *, color: str,
                   ms: float) -> None:
    """The QQ points and the identity line over their finite range."""
    ax.plot(theo, sample, ".", ms=ms, color=color)
    finite = np.isfinite(theo)
    if finite.any():
        lo = float(min(theo[finite].min(), sample.min()))
        hi = float(max(theo[finite].max(), sample.max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--")


def draw_qq(ax: Axes, fit: Any, family: str) -> None:
    """Weight quantiles against ``family``'s fitted quantiles, one point per non-empty bin of
    the fitter's histogram (its resolution: the raw values are not kept)."""
    points = qq_points(fit, family)
    if points is None:
        _message(ax, "no quantile function")
        return
    draw_qq_points(ax, *points, color=_color(family), ms=3)
    ax.set_xlabel(f"fitted {_label(family)} quantile")
    ax.set_ylabel("weight quantile")


def tensor_figure(fit: Any, families: list[str] | None = None, title: str = "") -> Figure:
    """Histogram + fitted pdfs (left) and a QQ plot against the best family by BIC (right)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_h, ax_q = fig.subplots(1, 2)
    best = (fit.verdict or {}).get("best_bic")
    names = [r["family"] for r in fit.rows] if families is None else list(families)
    if fit.status != "ok" or fit.histogram is None or len(fit.histogram[0]) == 0:
        for ax in (ax_h, ax_q):
            _message(ax, f"not fitted: {fit.status}")
    else:
        draw_density(ax_h, fit, names)
        draw_qq(ax_q, fit, best)
        ax_q.set_title(f"best by BIC: {_label(best)}", fontsize=9)
    if title:
        fig.suptitle(title.replace("$", r"\$"), fontsize=10)  # a name is text, not mathtext
    return fig
