"""ModelReport tables, summary, saving (formats, determinism, atomicity) and fit_model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weightstats.api import fit_model
from weightstats.errors import OptionError, WeightstatsError
from weightstats.fitting.families import DEFAULT_FAMILIES
from weightstats.report import ModelReport
from weightstats.report import figures as figs

FAST = {"ks_sample": 300, "ks_replicates": 19, "seed": 3}
FAMILIES = DEFAULT_FAMILIES


def make_state() -> dict[str, np.ndarray]:
    """A tiny two-group model: Gaussian, Laplace and Student-t layers plus skipped extras."""
    rng = np.random.default_rng(7)
    return {
        "encoder.conv1.weight": (0.1 * rng.standard_normal((16, 4, 3, 3))).astype(np.float32),
        "encoder.conv2.weight": (0.05 * rng.laplace(size=(16, 16, 3, 3))).astype(np.float32),
        "encoder.conv2.bias": np.zeros(16, np.float32),
        "decoder.fc.weight": (0.02 * rng.standard_t(3, size=(20, 64))).astype(np.float32),
        "decoder.norm.weight": np.ones(20, np.float32),
    }


@pytest.fixture(scope="module")
def report() -> ModelReport:
    return fit_model(make_state(), **FAST)


def test_table_has_one_row_per_layer_and_family(report: ModelReport) -> None:
    table = report.table()
    assert len(report.layers) == 3
    assert len(table) == 3 * len(FAMILIES)
    assert set(table.groupby("layer")["family"].apply(tuple)) == {FAMILIES}
    required = {"layer", "kind", "group", "tensor_shape", "dtype", "depth", "family", "n",
                "loc", "scale", "shape", "loglik", "loglik_per_weight", "aic", "bic",
                "ks_stat", "ks_pvalue", "ks_pvalue_naive", "ks_n", "rank_aic", "rank_bic",
                "flags", "mean", "std", "skewness", "excess_kurtosis", "zero_fraction", "min",
                "max", "n_nonfinite"}
    assert required <= set(table.columns)
    assert set(table["kind"]) == {"conv", "linear"}
    assert set(table["group"]) == {"encoder", "decoder"}
    assert "16x4x3x3" in set(table["tensor_shape"])


def test_wide_has_one_row_per_layer(report: ModelReport) -> None:
    wide = report.wide()
    assert list(wide["layer"]) == [lr.name for lr in report.layers]
    for col in ["layer", "kind", "n", "best_aic", "delta_aic", "best_bic", "t_df",
                "gennorm_beta", "excess_kurtosis"] + [f"ks_D_{f}" for f in FAMILIES]:
        assert col in wide.columns
    t_shape = report.table().query("family == 't'").set_index("layer")["shape"]
    assert np.allclose(wide.set_index("layer")["t_df"], t_shape.loc[wide["layer"]])


def test_summary_counts_match_table(report: ModelReport) -> None:
    info, sentence = report.summary().info, report.summary().text
    table = report.table()
    winners = table[table["rank_bic"] == 1].set_index("layer")["family"]
    assert len(winners) == 3
    for fam in FAMILIES:
        counted = info["by_criterion"]["bic"][fam]["layers"]
        assert counted == int((winners == fam).sum())
    top = info["winner_bic"]
    from weightstats.report import family_label
    assert sentence.startswith(f"{family_label(top)} fits best (BIC) in "
                               f"{info['by_criterion']['bic'][top]['layers']} of 3 layers")
    shares = sum(c["weight_share"] for c in info["by_criterion"]["bic"].values())
    assert shares == pytest.approx(1.0)
    assert set(info["groups"]) == {"encoder", "decoder"}
    assert "16%" in info["aic_caveat"]


def test_comparisons_have_layer_column(report: ModelReport) -> None:
    comp = report.comparisons()
    assert {"layer", "a", "b", "test", "pvalue", "favored"} <= set(comp.columns)
    assert set(comp["layer"]) == {lr.name for lr in report.layers}


def test_plot_layer_returns_figure(report: ModelReport) -> None:
    from matplotlib.figure import Figure

    fig = report.plot_layer(report.layers[0].name)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    with pytest.raises(KeyError):
        report.plot_layer("no.such.layer")


def test_save_writes_all_formats_and_leaves_nothing_else(report: ModelReport,
                                                         tmp_path: Path) -> None:
    out = report.save(tmp_path / "rep")
    assert os.listdir(tmp_path) == ["rep"]  # no temp dirs left beside it
    names = set(os.listdir(out))
    assert {"layers.csv", "layers_wide.csv", "comparisons.csv", "layers.md", "summary.md", "report.json",
            "report.html", "figures", ".weightstats-report"} == names
    pngs = sorted(os.listdir(out / "figures"))
    assert pngs == ["delta_loglik_vs_depth.png", "hist_01.png", "qq_01.png",
                    "shape_vs_depth.png"]
    assert all((out / "figures" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    csv = pd.read_csv(out / "layers.csv")
    assert len(csv) == len(report.table())
    summary = (out / "summary.md").read_text()
    assert report.summary().text in summary and "16%" in summary and "ks_pvalue_naive" in summary
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    # Inline script only (sortable tables), nothing loaded from elsewhere.
    assert "<script src" not in html and "http://" not in html and "https://" not in html
    data = json.loads((out / "report.json").read_text())
    assert data["summary"]["sentence"] == report.summary().text
    assert len(data["layers"]) == 3 and "histogram" in data["layers"][0]["fit"]


def test_save_subset_of_formats(report: ModelReport, tmp_path: Path) -> None:
    out = report.save(tmp_path / "rep", formats=("json", "md"))
    assert set(os.listdir(out)) == {"report.json", "layers.md", "summary.md",
                                    ".weightstats-report"}
    out = report.save(tmp_path / "rep2", formats=("html",), plots=False)
    assert set(os.listdir(out)) == {"report.html", ".weightstats-report"}
    with pytest.raises(OptionError, match="valid formats"):
        report.save(tmp_path / "rep3", formats=("pdf",))


def test_report_json_is_byte_identical_across_runs(tmp_path: Path) -> None:
    a = fit_model(make_state(), **FAST).save(tmp_path / "a", formats=("json", "png"))
    b = fit_model(make_state(), **FAST).save(tmp_path / "b", formats=("json", "png"))
    ja, jb = (a / "report.json").read_bytes(), (b / "report.json").read_bytes()
    assert ja == jb
    assert str(tmp_path).encode() not in ja
    assert b"NaN" not in ja and b"Infinity" not in ja
    for png in os.listdir(a / "figures"):
        assert (a / "figures" / png).read_bytes() == (b / "figures" / png).read_bytes(), png


def test_failed_save_keeps_previous_report(report: ModelReport, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    target = report.save(tmp_path / "rep")
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("figure writer failed")

    monkeypatch.setattr(figs, "shape_figure", boom)
    with pytest.raises(RuntimeError, match="figure writer failed"):
        report.save(tmp_path / "rep")
    after = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    assert os.listdir(tmp_path) == ["rep"]
    # A first save that fails leaves no directory at all.
    with pytest.raises(RuntimeError):
        report.save(tmp_path / "new")
    assert os.listdir(tmp_path) == ["rep"]


def test_save_over_a_file_is_one_line_error(report: ModelReport, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    with pytest.raises(WeightstatsError) as err:
        report.save(tmp_path / "taken")
    assert "\n" not in str(err.value) and "--out" in str(err.value)
    with pytest.raises(WeightstatsError):
        report.save(tmp_path / "taken" / "sub")


def test_fit_model_validates_options() -> None:
    with pytest.raises(OptionError, match="valid families: normal"):
        fit_model(make_state(), families=("normal", "cauchy"))
    with pytest.raises(OptionError, match="valid kinds"):
        fit_model(make_state(), kinds="conv,attention")
    with pytest.raises(OptionError, match="ks-sample"):
        fit_model(make_state(), ks_sample=0)
    with pytest.raises(OptionError, match="ks-replicates"):
        fit_model(make_state(), ks_replicates=0)


def test_fit_model_no_layers_names_available_kinds() -> None:
    with pytest.raises(WeightstatsError) as err:
        fit_model(make_state(), kinds=("embedding",), **FAST)
    msg = str(err.value)
    assert "\n" not in msg and "--kinds" in msg and "conv" in msg and "norm" in msg


def test_fit_model_selects_by_pattern_and_families() -> None:
    rep = fit_model(make_state(), layers="encoder.*", families="normal,laplace", **FAST)
    assert [lr.name for lr in rep.layers] == ["encoder.conv1.weight", "encoder.conv2.weight"]
    assert set(rep.table()["family"]) == {"normal", "laplace"}
    assert rep.wide()["t_df"].isna().all()


def test_jobs_give_identical_numbers(report: ModelReport) -> None:
    parallel = fit_model(make_state(), jobs=2, **FAST)
    pd.testing.assert_frame_equal(parallel.table(), report.table())
    pd.testing.assert_frame_equal(parallel.comparisons(), report.comparisons())


def _fit_threads_alive() -> list[str]:
    import threading
    import time

    for _ in range(200):  # a running fit ends on its own; queued ones must never start
        alive = [t.name for t in threading.enumerate() if t.name.startswith("weightstats-fit")]
        if not alive:
            break
        time.sleep(0.01)
    return alive


@pytest.mark.parametrize("error", [ValueError("layer failed"), KeyboardInterrupt()],
                         ids=["error", "ctrl-c"])
def test_jobs_hand_a_worker_error_to_the_caller_and_stop(monkeypatch, error) -> None:
    """An exception (or Ctrl-C) in one layer's fit reaches the caller, layers still queued are
    never fitted, and no worker thread is left behind."""
    import weightstats.fitting

    rng = np.random.default_rng(0)
    state = {f"l{i}.weight": rng.standard_normal((32, 32)).astype(np.float32) for i in range(12)}
    real, calls = weightstats.fitting.fit_tensor, []

    def failing(array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return real(array, *args, **kwargs)

    monkeypatch.setattr(weightstats.fitting, "fit_tensor", failing)
    with pytest.raises(type(error)):
        fit_model(state, jobs=2, **FAST)
    assert _fit_threads_alive() == []
    assert len(calls) <= 2 + 3  # the failing one, plus at most jobs + 1 in flight


def test_unfittable_layers_are_reported_not_dropped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    state = {
        "a.conv.weight": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
        "a.tiny.weight": np.ones((2, 2), np.float32),
        "b.const.weight": np.zeros((20, 20), np.float32),
    }
    rep = fit_model(state, **FAST)
    wide = rep.wide().set_index("layer")
    assert wide.loc["a.conv.weight", "status"] == "ok"
    assert wide.loc["b.const.weight", "status"] == "constant"
    assert wide.loc["a.tiny.weight", "status"] == "too_small"
    assert len(rep.table()) == 3 * len(FAMILIES)
    info, sentence = rep.summary().info, rep.summary().text
    assert info["n_fitted"] == 1 and "not fitted: constant 1, too_small 1" in sentence
    out = rep.save(tmp_path / "rep")
    assert (out / "figures" / "hist_01.png").exists()
    json.loads((out / "report.json").read_text())
