"""Figures of a latent report: per-dimension histograms and QQ plots against the prior N(0, 1),
the two least normal dimensions as a scatter, active units, and per-channel scales."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy import stats

from weightstats.report.figures import log_y, new_figure, render
from weightstats.report.text import family_color, family_label

MAX_PANELS = 32  # dimensions drawn as panels: the most active ones beyond this
NCOLS = 4
PRIOR = "N(0, 1) prior"


def _panel_dims(rep: Any) -> list[int]:
    rows = rep.rows
    if len(rows) <= MAX_PANELS:
        return [r["dim"] for r in rows]
    top = sorted(rows, key=lambda r: (-r["var_mu"], r["dim"]))[:MAX_PANELS]
    return sorted(r["dim"] for r in top)


def _grid(rep: Any, dims: list[int]) -> tuple[Any, list[Any]]:
    nrows = math.ceil(len(dims) / NCOLS)
    fig = new_figure(3.0 * min(NCOLS, len(dims)), 2.3 * nrows + 0.4)
    axes = fig.subplots(nrows, min(NCOLS, len(dims)), squeeze=False).ravel().tolist()
    for ax in axes[len(dims):]:
        ax.set_visible(False)
    return fig, axes


def _title(rep: Any, d: int) -> str:
    row = rep.rows[d]
    state = "active" if row["active"] else "collapsed"
    return f"z{d} ({state}), KS p={row['prior_ks_pvalue']:.2g}"


def histograms(rep: Any) -> Any:
    """Density of the draws of q_d with the prior and the best family (BIC) overlaid."""
    dims = _panel_dims(rep)
    fig, axes = _grid(rep, dims)
    draws = rep.posterior.samples
    for ax, d in zip(axes, dims, strict=False):
        z = draws[:, :, d].reshape(-1)
        lo, hi = min(float(z.min()), -4.0), max(float(z.max()), 4.0)
        ax.hist(z, bins=60, range=(lo, hi), density=True, color="0.6", alpha=0.6, label="q(z_d)")
        x = np.linspace(lo, hi, 400)
        ax.plot(x, stats.norm.pdf(x), color="black", ls="--", lw=1.0, label=PRIOR)
        fit = rep.fits.get(d, {}).get("z")
        best = rep.rows[d]["best_z"]
        if fit is not None and best:
            ax.plot(x, fit.frozen(best).pdf(x), color=family_color(best), lw=1.2,
                    label=f"best: {family_label(best)}")
        ax.set_title(_title(rep, d), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper right")
    fig.suptitle(f"{rep.model}: each {rep.unit} of q(z) against the prior", fontsize=10)
    return fig


def qq_plots(rep: Any) -> Any:
    """Quantiles of the draws of q_d against N(0, 1): the identity line is the prior."""
    dims = _panel_dims(rep)
    fig, axes = _grid(rep, dims)
    draws = rep.posterior.samples
    for ax, d in zip(axes, dims, strict=False):
        z = np.sort(draws[:, :, d].reshape(-1))
        probs = (np.arange(z.size) + 0.5) / z.size
        step = max(1, z.size // 1000)
        theo = stats.norm.ppf(probs[::step])
        ax.plot(theo, z[::step], ".", ms=2, color="tab:blue")
        lim = max(4.0, float(np.abs(z).max()))
        ax.plot([-lim, lim], [-lim, lim], color="0.3", lw=0.8, ls="--")
        ax.set_title(_title(rep, d), fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{rep.model}: QQ plots against N(0, 1) (dashed: the prior)", fontsize=10)
    return fig


def scatter_top2(rep: Any) -> Any:
    """The two active dimensions whose shape is least normal, one draw per input."""
    pool = [r for r in rep.rows if r["active"]] or rep.rows
    top = sorted(pool, key=lambda r: (-np.nan_to_num(r["nongaussianity_d"]), r["dim"]))[:2]
    fig = new_figure(5.2, 5.0)
    ax = fig.subplots()
    if len(top) < 2:
        ax.text(0.5, 0.5, "one dimension: no scatter", ha="center", transform=ax.transAxes)
        return fig
    a, b = top[0]["dim"], top[1]["dim"]
    iid = rep.posterior.samples[:, 0, :]
    ax.scatter(iid[:, a], iid[:, b], s=6, alpha=0.5, color="tab:blue", label="z ~ q(z), 1 per input")
    t = np.linspace(0, 2 * np.pi, 200)
    for k in (1, 2, 3):
        r = math.sqrt(stats.chi2(2).ppf(1 - math.exp(-k * k / 2)))
        ax.plot(r * np.cos(t), r * np.sin(t), color="black", lw=0.8, ls="--",
                label="N(0, I) 39/86/99% contours" if k == 1 else None)
    ax.set_xlabel(f"z{a} (KS distance to its normal fit {top[0]['nongaussianity_d']:.3f})")
    ax.set_ylabel(f"z{b} (KS distance to its normal fit {top[1]['nongaussianity_d']:.3f})")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(f"{rep.model}: the two least normal {rep.unit}s", fontsize=10)
    return fig


def active_units(rep: Any) -> Any:
    """Var_x E[z_d|x] per dimension on a log axis, with the activity threshold."""
    fig = new_figure(max(5.0, 0.35 * len(rep.rows) + 1.5), 3.4)
    ax = fig.subplots()
    values = np.array([max(r["var_mu"], 1e-8) for r in rep.rows])
    colors = ["tab:green" if r["active"] else "0.6" for r in rep.rows]
    ax.bar(np.arange(len(values)), values, color=colors)
    threshold = float(rep.options["active_threshold"])
    ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:g}")
    log_y(ax)
    ax.set_xlabel(rep.unit)
    ax.set_ylabel("Var_x E[z_d | x]")
    ax.set_title(f"{rep.model}: active units (green) {sum(r['active'] for r in rep.rows)} of "
                 f"{len(rep.rows)}", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def channel_std(rep: Any) -> Any:
    """The std of q_d per dimension or channel, beside the prior's 1 and, for latent diffusion
    VAEs, 1/config.scaling_factor and the pooled std the data give."""
    fig = new_figure(max(5.0, 0.35 * len(rep.rows) + 1.5), 3.4)
    ax = fig.subplots()
    stds = [r["std"] for r in rep.rows]
    ax.bar(np.arange(len(stds)), stds, color="tab:blue", label="std of q(z_d)")
    ax.axhline(1.0, color="black", ls="--", lw=1, label="prior: 1")
    sc = rep.scaling or {}
    sf = (sc.get("config") or {}).get("scaling_factor")
    if sf:
        ax.axhline(1 / sf, color="tab:orange", ls="-", lw=1.2,
                   label=f"1/config.scaling_factor = {1 / sf:.3g}")
    if sc:
        ax.axhline(sc["pooled_std"], color="tab:green", ls=":", lw=1.2,
                   label=f"pooled std {sc['pooled_std']:.3g} (implied factor "
                         f"{sc['implied_scaling_factor']:.3g})")
    ax.set_xlabel(rep.unit)
    ax.set_ylabel("std")
    ax.set_title(f"{rep.model}: per-{rep.unit} std vs the scale the prior needs", fontsize=10)
    ax.legend(fontsize=7)
    return fig


FIGURES = {"hist_dims.png": histograms, "qq_dims.png": qq_plots,
           "scatter_top2.png": scatter_top2, "active_units.png": active_units,
           "channel_std.png": channel_std}
CAPTIONS = {
    "hist_dims.png": "Density of each dimension's draws of q(z) (grey), the N(0, 1) prior "
                     "(dashed) and the best family by BIC of the active dimensions.",
    "qq_dims.png": "Quantiles of each dimension's draws against N(0, 1); on the dashed line "
                   "q(z_d) is the prior.",
    "scatter_top2.png": "The two active dimensions whose shape is least normal, one draw per "
                        "input, with the prior's contours.",
    "active_units.png": "Variance over the data of the posterior mean; above the red line a "
                        "dimension is active.",
    "channel_std.png": "Standard deviation of q(z) per dimension or channel against the prior's "
                       "1 (and 1/scaling_factor where the VAE's config has one).",
}


def render_all(rep: Any) -> Iterator[tuple[str, bytes]]:
    """(file name, PNG bytes) of every figure, in a fixed order."""
    for name, build in FIGURES.items():
        yield name, render(build, rep)
