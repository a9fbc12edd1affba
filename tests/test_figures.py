"""Figures (issue 16): axis labels and units, n and best family per panel, one legend off the
data, shape intervals, layer names on the depth axis, dpi, alt text, paired compare plot."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from weightstats.api import fit_model
from weightstats.fitting.families import FAMILIES
from weightstats.report import figures as figs
from weightstats.report.compare import paired_figure, paired_layers
from weightstats.report.model_report import LayerResult, ModelReport
from weightstats.report.text import shape_column, shape_display

FAST = {"ks_sample": 300, "ks_replicates": 19}


def state(seed: int = 7, scale: float = 0.1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "enc.conv.weight": (scale * rng.standard_normal((16, 8, 3, 3))).astype(np.float32),
        "enc.fc.weight": (scale * rng.laplace(size=(20, 60))).astype(np.float32),
        "dec.fc.weight": (scale * rng.standard_t(3, size=(30, 50))).astype(np.float32),
    }


@pytest.fixture(scope="module")
def report() -> ModelReport:
    return fit_model(state(), **FAST)


def draw(build, *args):
    with figs.plain_text():
        return build(*args)


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text"))
            if t.get_text()]


def test_small_multiples_label_axes_and_name_n_and_best_per_panel(report: ModelReport) -> None:
    fig = draw(figs.small_multiples, report, report.layers, "hist")
    assert fig.get_supxlabel() == "weight" and "density" in fig.get_supylabel()
    shown = texts(fig)
    for lr in report.layers:
        best = lr.fit.verdict["best_bic"]
        line = f"n = {int(lr.fit.n):,} · best: {FAMILIES[best].label}"
        hit = [t for t in fig.findobj(match=lambda a, line=line: getattr(a, "get_text", None)
                                      and a.get_text() == line)]
        assert hit, (line, shown)
        assert hit[0].get_color() == FAMILIES[best].color  # the family's own colour
    qq = draw(figs.small_multiples, report, report.layers, "qq")
    assert "quantile" in qq.get_supxlabel() and "quantile" in qq.get_supylabel()


def test_one_legend_outside_the_panels(report: ModelReport) -> None:
    fig = draw(figs.small_multiples, report, report.layers, "hist")
    assert len(fig.legends) == 1
    assert all(ax.get_legend() is None for ax in fig.axes)  # none on top of the data
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["data (histogram)", *(FAMILIES[f].label for f in report.families)]
    fig.canvas.draw()
    box = fig.legends[0].get_window_extent()
    assert all(box.y0 >= ax.get_window_extent().y1 for ax in fig.axes if ax.axison)


def test_depth_figures_have_units_names_and_outside_legends(report: ModelReport) -> None:
    delta = draw(figs.delta_ll_figure, report)
    ax = delta.axes[0]
    assert "nats per weight" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == [lr.name for lr in report.layers]
    anchor = ax.get_legend().get_bbox_to_anchor()
    delta.canvas.draw()
    assert anchor.x0 >= ax.get_window_extent().x1  # beside the data, not on it


def test_depth_axis_falls_back_to_the_index_for_many_layers(report: ModelReport) -> None:
    base = report.layers
    many = dataclasses.replace(report, layers=[
        LayerResult(name=f"l{i}.weight", kind="linear", group="", shape=(8, 8), dtype="float32",
                    index=i, fit=base[i % len(base)].fit)
        for i in range(figs.MAX_NAMED_TICKS + 1)])
    ax = draw(figs.delta_ll_figure, many).axes[0]
    assert ax.get_xlabel() == "layer depth (order in the model)"
    assert not any(t.get_text().startswith("l1") for t in ax.get_xticklabels())


def test_shape_figure_draws_the_reports_intervals(report: ModelReport) -> None:
    fig = draw(figs.shape_figure, report)
    wide = report.wide()
    for ax, fam in zip(fig.axes, ("t", "gennorm"), strict=True):
        col = shape_column(fam)
        cap = shape_display(fam).shown_up_to
        bars = [c for c in ax.collections if c.get_label() == "95% interval"]
        assert len(bars) == 1, fam
        segments = bars[0].get_segments()
        have = np.isfinite(wide[f"{col}_ci_low"]) & np.isfinite(wide[f"{col}_ci_high"])
        assert len(segments) == int(have.sum()) > 0
        for seg, (_, row) in zip(segments, wide[have].iterrows(), strict=True):
            assert seg[0][0] == row["depth"]
            assert seg[0][1] == pytest.approx(min(row[f"{col}_ci_low"], cap))
            assert seg[1][1] == pytest.approx(min(row[f"{col}_ci_high"], cap))


def test_pngs_are_at_least_120_dpi(report: ModelReport) -> None:
    assert figs.DPI >= 120
    for name, data in figs.render_all(report):
        img = Image.open(io.BytesIO(data))
        dpi = img.info.get("dpi", (0, 0))[0]
        assert round(dpi) >= 120, (name, img.info)


def test_every_figure_has_alt_text(report: ModelReport) -> None:
    alts = figs.describe(report)
    names = [name for name, _ in figs.render_all(report)]
    assert sorted(alts) == sorted(names)
    assert "enc.conv.weight to dec.fc.weight" in alts["hist_01.png"]
    assert "95% intervals" in alts["shape_vs_depth.png"]


def test_paired_plot_of_trained_vs_untrained(report: ModelReport) -> None:
    other = fit_model(state(seed=8, scale=0.02), **FAST)
    assert paired_layers([report, other]) == [lr.name for lr in report.layers]
    fig = draw(paired_figure, [report, other])
    assert [ax.get_ylabel() for ax in fig.axes] == ["Student-t df (log)",
                                                    "generalized normal β", "excess kurtosis"]
    kurt = fig.axes[-1]
    filled, hollow = (ln for ln in kurt.get_lines() if ln.get_label() in
                      (report.model, other.model))
    assert np.allclose(filled.get_ydata(), report.wide()["excess_kurtosis"])
    assert np.allclose(hollow.get_ydata(), other.wide()["excess_kurtosis"])
    assert hollow.get_markerfacecolor() == "white"
    # different layer names (a model's encoder vs its decoder): no pairs to draw
    renamed = dataclasses.replace(other, layers=[dataclasses.replace(lr, name="x" + lr.name)
                                                 for lr in other.layers])
    assert paired_layers([report, renamed]) == []
    assert paired_layers([report]) == []
