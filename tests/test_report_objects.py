"""The report and fit objects as a notebook user meets them (issue 16): compact reprs, the
Summary object, one method style, inf for a t df at its cap, flags as short codes,
layers_wide.csv, load_report round trips, TensorFit.plot, the package's dir() and py.typed,
Markdown through tabulate, and the cache folder from platformdirs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import weightstats
from weightstats.api import fit_model
from weightstats.errors import LoadError
from weightstats.fitting.flags import FLAG_CODES, flag_code, flag_codes
from weightstats.report import ModelReport
from weightstats.report.load import load_report
from weightstats.report.summary import Summary
from weightstats.report.text import markdown_table, to_csv_text, to_json_text

ROOT = Path(__file__).resolve().parents[1]
FAST = {"ks_sample": 300, "ks_replicates": 19, "seed": 3}
TEXT_FORMATS = ("csv", "md", "json")


def make_state() -> dict[str, np.ndarray]:
    """A Gaussian layer whose t fit runs to the df cap (seed 0), and a Student-t(3) layer."""
    rng = np.random.default_rng(0)
    return {"a.conv.weight": (0.1 * rng.standard_normal((32, 8, 3, 3))).astype(np.float32),
            "b.fc.weight": (0.02 * rng.standard_t(3, size=(40, 64))).astype(np.float32)}


@pytest.fixture(scope="module")
def report() -> ModelReport:
    return fit_model(make_state(), **FAST)


@pytest.fixture(scope="module")
def saved(report: ModelReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return report.save(tmp_path_factory.mktemp("objects") / "rep", TEXT_FORMATS, plots=False)


def _t_row(report: ModelReport, layer: str) -> dict:
    return next(r for r in report.layer(layer).fit.rows if r["family"] == "t")


# ----------------------------------------------------------------------------- reprs
def test_model_report_repr_is_a_few_lines_without_histograms(report: ModelReport) -> None:
    text = repr(report)
    assert len(text) < 1500 and len(text.splitlines()) <= 8, text
    assert text.startswith("ModelReport ") and "2 layers (2 fitted)" in text
    assert report.summary().text in text and "Student-t" in text
    assert "histogram" not in text and "array(" not in text
    html = report._repr_html_()
    assert html.count("<table") == 2 and "a.conv.weight" in html and "b.fc.weight" in html
    assert "histogram" not in html and len(html) < 20_000


def test_tensor_fit_repr_is_the_per_family_table(report: ModelReport) -> None:
    fit = report.layer("a.conv.weight").fit
    text = repr(fit)
    assert len(text) < 1000 and len(text.splitlines()) == 2 + len(fit.rows), text
    assert text.startswith("TensorFit: 2,304 values (32x8x3x3 float32), best by BIC:")
    assert [line.split()[0] for line in text.splitlines()[2:]] == [
        "normal", "laplace", "t", "gennorm"]
    assert "df_at_cap" in text and "inf" in text and "histogram" not in text
    assert "<table" in fit._repr_html_()
    layer = repr(report.layers[0])  # a layer shows its fit the same way
    assert layer.startswith("LayerResult a.conv.weight (conv, depth 0): TensorFit:")
    assert len(layer) < 1000 and "<table" in report.layers[0]._repr_html_()


# ----------------------------------------------------------------------------- one style
def test_summary_is_an_object_with_text_and_table(report: ModelReport) -> None:
    summary = report.summary()
    assert isinstance(summary, Summary)
    assert str(summary) == summary.text == summary.info["sentence"]
    assert summary.n_fitted == 2 and summary.n_layers == 2 and summary.n_weights == 2304 + 2560
    table = summary.table
    assert list(table["family"]) == list(report.families)
    assert table["layers_bic"].sum() == 2 and table["weight_share_bic"].sum() == pytest.approx(1)
    assert summary.winner in report.families
    with pytest.raises(TypeError):  # the old (dict, str) tuple is gone, not half-supported
        info, sentence = summary  # noqa: F841


def test_tables_are_methods_like_wide_and_comparisons(report: ModelReport) -> None:
    for name in ("table", "wide", "comparisons", "summary"):
        assert callable(getattr(report, name)), name
    assert isinstance(report.table(), pd.DataFrame) and len(report.table()) == 2 * 4


# ----------------------------------------------------------------------------- inf and flags
def test_t_df_at_its_cap_is_inf_in_every_table_and_json(report: ModelReport, saved: Path) -> None:
    raw = _t_row(report, "a.conv.weight")
    assert raw["shape"] >= 1e9 and raw["flags"].startswith("df_at_cap")  # the fitter's own number
    # Arithmetic on the column is no longer silently wrong (a mean of 5e9 before).
    tidy = report.table().query("family == 't'").set_index("layer")
    assert tidy.loc["a.conv.weight", "shape"] == math.inf
    assert "df_at_cap" in tidy.loc["a.conv.weight", "flags"].split(";")
    assert report.wide().set_index("layer").loc["a.conv.weight", "t_df"] == math.inf
    assert report.layer("a.conv.weight").fit.to_frame().set_index("family").loc["t", "shape"] == math.inf
    csv = pd.read_csv(saved / "layers.csv").query("family == 't'").set_index("layer")
    assert csv.loc["a.conv.weight", "shape"] == math.inf
    assert pd.read_csv(saved / "layers_wide.csv").set_index("layer").loc["a.conv.weight", "t_df"] == math.inf
    assert math.isfinite(csv.loc["b.fc.weight", "shape"])
    data = json.loads((saved / "report.json").read_text())
    fit = next(f for f in data["layers"][0]["fit"]["fits"] if f["family"] == "t")
    assert fit["shape"] == "inf" and fit["params"]["df"] == "inf"  # documented: "inf", not null
    assert data["summary"]["medians"]["t_df"] is not None
    # The density still evaluates (the cap's finite value), for plots of a loaded report.
    assert np.isfinite(report.layer("a.conv.weight").fit.frozen("t").pdf(0.0))


def test_flags_are_short_codes_with_the_sentences_in_report_json(report: ModelReport,
                                                                 saved: Path) -> None:
    codes = {c for cell in report.table()["flags"] if isinstance(cell, str) and cell
             for c in cell.split(";")}
    assert "df_at_cap" in codes and codes <= set(FLAG_CODES), codes
    assert all(" " not in c for c in codes)
    data = json.loads((saved / "report.json").read_text())
    assert data["flag_codes"] == FLAG_CODES
    fit = next(f for f in data["layers"][0]["fit"]["fits"] if f["family"] == "t")
    assert fit["flags"].startswith("df_at_cap: the t fit runs to the Gaussian limit")


@pytest.mark.parametrize("sentence, code", [
    ("df_at_cap: the t fit runs to the Gaussian limit", "df_at_cap"),
    ("beta_at_bound", "beta_at_bound"),
    ("not_converged: the optimizer stopped short of a maximum", "not_converged"),
    ("null table at df=1e+06 (fit outside table range)", "null_table_edge"),
    ("p-values by parametric bootstrap of this fit (199 refits)", "bootstrap_pvalue"),
    ("30.0% exact zeros modelled as a point mass", "atoms"),
    ("pruned: |w| < 0.01 removed (70% zeros)", "pruned"),
    ("fit_failed: ValueError: synthetic failure", "fit_failed"),
    ("something new", "note"),
])
def test_flag_code(sentence: str, code: str) -> None:
    assert flag_code(sentence) == code and code in FLAG_CODES


def test_every_family_bound_flag_has_a_documented_code() -> None:
    from weightstats.fitting.families import FAMILIES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [c for c in FLAG_CODES if f"`{c}`" not in readme] == []  # the README's legend
    for fam in FAMILIES.values():
        if not fam.shape_names:
            continue
        for shape in (0.0, 0.5, 1.0, 1e12):
            code = flag_code(fam.bound_flag(shape))
            assert code in FLAG_CODES and code != "note" and f"`{code}`" in readme, (fam.name, code)


def test_flag_codes_keep_order_and_take_the_fit_note_whole() -> None:
    note = "53% still at its uniform initialization; the rest Student-t df 19"
    flags = f"uniform_share_one: every value; {note}; null table at df=6 (fit outside)"
    assert flag_codes(flags, note) == "uniform_share_one;fit_note;null_table_edge"
    assert flag_codes("") == "" and flag_codes(None) == ""


# ----------------------------------------------------------------------------- files
def test_layers_wide_csv_is_the_wide_table(report: ModelReport, saved: Path) -> None:
    wide = pd.read_csv(saved / "layers_wide.csv")
    assert list(wide.columns) == list(report.wide().columns)
    assert list(wide["layer"]) == ["a.conv.weight", "b.fc.weight"]
    assert (saved / "layers_wide.csv").read_text() == to_csv_text(report.wide())


def test_fixed_precision_in_csv_and_json() -> None:
    frame = pd.DataFrame({"x": [0.1 + 0.2, 1 / 3, math.inf, math.nan, 1e-300],
                          "mixed": [0.1 + 0.2, "a", None, True, math.inf]})
    assert to_csv_text(frame).splitlines() == [
        "x,mixed", "0.3,0.3", "0.3333333333,a", "inf,", ",True", "1e-300,inf"]
    assert json.loads(to_json_text({"a": 0.1 + 0.2, "b": [1 / 3, math.inf, -math.inf, math.nan]})) \
        == {"a": 0.3, "b": [0.3333333333, "inf", "-inf", None]}


def test_markdown_tables_come_from_tabulate() -> None:
    frame = pd.DataFrame({"layer": ["a|b", "c"], "D": [0.012345678, 1e-5]})
    text = markdown_table(frame)
    assert text == frame.assign(layer=["a\\|b", "c"], D=["0.01235", "1.000e-05"]).to_markdown(
        index=False, tablefmt="pipe", colalign=["left", "right"], disable_numparse=True) + "\n"
    assert text.splitlines()[1] == "|:--------|----------:|"  # text left, numbers right


# ----------------------------------------------------------------------------- load_report
def test_load_report_round_trips_every_text_file(report: ModelReport, saved: Path,
                                                 tmp_path: Path) -> None:
    loaded = weightstats.load_report(saved)
    assert isinstance(loaded, ModelReport) and loaded.model == report.model
    assert [lr.name for lr in loaded.layers] == [lr.name for lr in report.layers]
    again = loaded.save(tmp_path / "again", TEXT_FORMATS, plots=False)
    names = sorted(p.name for p in saved.iterdir() if p.is_file() and not p.name.startswith("."))
    assert names == ["comparisons.csv", "layers.csv", "layers.md", "layers_wide.csv",
                     "report.json", "summary.md"]
    for name in names:
        assert (again / name).read_bytes() == (saved / name).read_bytes(), name
    assert loaded.summary().text == report.summary().text
    pd.testing.assert_frame_equal(loaded.table(), report.table(), check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(loaded.wide(), report.wide(), check_exact=False, rtol=1e-9)


def test_a_loaded_report_plots(saved: Path) -> None:
    loaded = load_report(saved / "report.json")
    fig = loaded.layer("b.fc.weight").fit.plot(title="b.fc.weight")
    ax_h, ax_q = fig.axes
    assert len(ax_h.get_lines()) == 4  # one fitted pdf per family, none lost on the way
    assert len(ax_q.get_lines()[0].get_xdata()) > 10  # the QQ points
    assert np.isfinite(ax_q.get_lines()[0].get_xdata()).all()


def test_load_report_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no such file"):
        load_report(tmp_path / "missing")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(LoadError, match="not a readable weightstats report"):
        load_report(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"weightstats_sweep": 1}')
    with pytest.raises(LoadError, match="not a weightstats fit report"):
        load_report(tmp_path / "y.json")


def test_load_report_picks_a_model_of_a_comparison(report: ModelReport, tmp_path: Path) -> None:
    other = ModelReport("other", "other", report.layers[:1], report.families, report.options)
    (tmp_path / "report.json").write_text(to_json_text(
        {"weightstats_compare": 1, "models": [report.to_dict(), other.to_dict()]}))
    with pytest.raises(LoadError, match="choose one with load_report"):
        load_report(tmp_path)
    assert len(load_report(tmp_path, model="other").layers) == 1


# ----------------------------------------------------------------------------- plots
def test_tensor_fit_plot_is_a_figure_with_histogram_pdfs_and_qq(report: ModelReport) -> None:
    from matplotlib.figure import Figure

    fig = report.layer("a.conv.weight").fit.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax_h, ax_q = fig.axes
    assert [line.get_label() for line in ax_h.get_lines()] == [
        "Gaussian", "Laplace", "Student-t", "generalized normal"]
    assert ax_h.get_yscale() == "log" and ax_h.get_xlabel() == "weight"
    assert "quantile" in ax_q.get_xlabel()


# ----------------------------------------------------------------------------- the package
def _python(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, **env})
    return out.stdout


def test_dir_and_help_list_the_api_without_importing_torch() -> None:
    out = _python("import sys, pydoc, weightstats as w; d = dir(w); "
                  "print(d); print('torch' in sys.modules, 'matplotlib' in sys.modules); "
                  "print('fit_model' in pydoc.render_doc(w))")
    names, heavy, in_help = out.splitlines()
    for name in ("fit_model", "fit_tensor", "compare_models", "load_report", "ModelReport"):
        assert repr(name) in names
    assert "'TYPE_CHECKING'" not in names
    assert heavy == "False False" and in_help == "True"


def test_fitting_a_tensor_does_not_import_matplotlib() -> None:
    out = _python("import sys, numpy as np, weightstats as w; "
                  "w.fit_tensor(np.random.default_rng(0).standard_normal(500), ks_replicates=19)"
                  "; print('matplotlib' in sys.modules)")
    assert out.strip() == "False"


def test_package_is_typed() -> None:
    assert (ROOT / "weightstats" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()
    import inspect

    hint = str(inspect.signature(weightstats.fit_model).parameters["spec_or_module"].annotation)
    assert "torch.nn.Module" in hint and "os.PathLike" in hint and "Mapping" in hint


def test_cache_folder_honours_xdg_cache_home(tmp_path: Path) -> None:
    code = "from weightstats.fitting.nulltables import _cache_dir; print(_cache_dir())"
    env = {k: v for k, v in os.environ.items() if k != "WEIGHTSTATS_CACHE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**env, "XDG_CACHE_HOME": str(tmp_path / "xdg")}).stdout
    assert Path(out.strip()).parent == tmp_path / "xdg" / "weightstats"
    out = _python(code, WEIGHTSTATS_CACHE=str(tmp_path / "own"), XDG_CACHE_HOME=str(tmp_path))
    assert Path(out.strip()).parent == tmp_path / "own"


def test_groups_are_listed_in_natural_order() -> None:
    """An nn.Sequential's groups are 0, 1, 2, ..., 10, 11, not 0, 1, 10, 11, 2 (text order)."""
    rng = np.random.default_rng(5)
    state = {f"{i}.weight": rng.standard_normal((40, 40)).astype(np.float32) for i in range(12)}
    rep = fit_model(state, ks_replicates=19, ks_sample=500)
    assert list(rep.summary().info["groups"]) == [str(i) for i in range(12)]
