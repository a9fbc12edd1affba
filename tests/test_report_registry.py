"""Reports read everything about a family from the registry, and report/ has no import circle.

(a) A family registered inside the test (a subclass of the Gaussian with its own name, label,
colour, marker, a shape parameter with a ShapeDisplay and a fit note) gets its wide-table columns,
its label in Markdown and HTML, its figure panels and its note, with no edit to the report code.
(b) The import graph of ``weightstats.report.*``, module- and function-level imports alike, is
acyclic. (c) No family name is spelled as a string in ``report/*.py`` or ``cli.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from importgraph import find_cycle, import_graph

import weightstats
from weightstats.fitting.families import FAMILIES, ShapeDisplay
from weightstats.fitting.families.normal import Normal

PACKAGE = Path(weightstats.__file__).parent
REPORT = PACKAGE / "report"
NAME, LABEL, COLOR = "kappa_test", "Kappa test law", "#123456"
FAST = {"ks_sample": 300, "ks_replicates": 19, "seed": 3}


class Kappa(Normal):
    """The Gaussian under another name, with a constant fake shape ``kappa`` = 3."""

    name, label, aliases, color, marker = NAME, LABEL, (), COLOR, "X"
    n_params = 3
    shape_names = ("kappa",)
    null_tables = False  # no shipped table: a (small) parametric bootstrap per fit
    bootstrap_replicates = 19
    shape_display = ShapeDisplay(symbol="κ", title="kappa of the test law", shown_up_to=2.5,
                                 beyond="kappa limit", references=((1.5, "laplace"),))

    def fit_rows(self, x, *, start=None):
        fit = super().fit_rows(x)
        three = np.full_like(fit.loc, 3.0)
        return dataclasses.replace(fit, shape=three, log_shape_se=np.full_like(fit.loc, 0.1))

    def logpdf(self, x, loc, scale, *shapes):
        return super().logpdf(x, loc, scale)

    def cdf(self, x, loc, scale, *shapes):
        return super().cdf(x, loc, scale)

    def standard_rvs(self, rng, size, *shapes):
        return super().standard_rvs(rng, size)

    def frozen(self, loc, scale, *shapes):
        return super().frozen(loc, scale)

    def fit_note(self, theta):
        return f"kappa {theta[2]:g}, the rest plain"


@pytest.fixture(scope="module")
def kappa_report():
    from weightstats.api import fit_model

    rng = np.random.default_rng(5)
    state = {"a.conv.weight": (0.1 * rng.standard_normal((8, 4, 3, 3))).astype(np.float32),
             "b.fc.weight": (0.05 * rng.laplace(size=(16, 24))).astype(np.float32)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(FAMILIES, NAME, Kappa())
        report = fit_model(state, families=("normal", "laplace", "t", NAME), **FAST)
        yield report


def test_new_family_gets_wide_columns(kappa_report) -> None:
    wide = kappa_report.wide()
    for col in ("kappa_test_kappa", "kappa_test_kappa_ci_low", "kappa_test_kappa_ci_high",
                "kappa_test_kappa_ci_method", "ks_D_kappa_test", "ks_p_kappa_test",
                "ll_per_weight_kappa_test", "t_df"):
        assert col in wide.columns, col
    assert np.allclose(wide["kappa_test_kappa"], 3.0)
    info = kappa_report.summary().info
    assert info["medians"]["kappa_test_kappa"] == pytest.approx(3.0)
    assert NAME in info["by_criterion"]["bic"]


def test_new_family_in_markdown_html_and_figures(kappa_report, tmp_path: Path) -> None:
    from weightstats.report import figures
    from weightstats.report.compare import compare_display, compare_figure, split_groups
    from weightstats.report.tables import display_wide

    shown = display_wide(kappa_report)
    assert "kappa_test κ" in shown.columns and "κ 95% CI" in shown.columns
    assert "t df" in shown.columns and "gennorm β" not in shown.columns  # gennorm not fitted
    out = kappa_report.save(tmp_path / "rep")
    summary, layers = (out / "summary.md").read_text(), (out / "layers.md").read_text()
    html = (out / "report.html").read_text()
    assert LABEL in summary and LABEL in html
    assert "kappa_test κ" in layers and "kappa 3, the rest plain" in layers  # the fit note
    assert "kappa 3, the rest plain" in html
    assert "Kappa test law κ (κ = 1.5 is Laplace) by depth" in html  # the figure caption
    assert "Kappa test law κ" in " ".join(summary.splitlines())  # the effect-size note
    assert (out / "figures" / "shape_vs_depth.png").stat().st_size > 0
    # One shape panel per fitted family with a ShapeDisplay: t and the new family.
    with figures.plain_text():
        fig = figures.shape_figure(kappa_report)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["Student-t df (log)", "Kappa test law κ"]
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "κ = 1.5 (Laplace)" in legend and "κ ≥ 2.5 (kappa limit)" in legend
    line = next(ln for ln in fig.axes[1].get_lines() if ln.get_label() == "κ = 1.5 (Laplace)")
    assert line.get_color() == FAMILIES["laplace"].color
    delta = figures.delta_ll_figure(kappa_report)
    colors = {ln.get_label(): ln.get_color() for ln in delta.axes[0].get_lines()}
    assert colors[LABEL] == COLOR and "Gaussian" in delta.axes[0].get_ylabel()
    hist = figures.layer_figure(kappa_report, kappa_report.layers[0])
    assert LABEL in [t.get_text() for t in hist.axes[0].get_legend().get_texts()]
    # compare: a median column and a shape panel for the new family
    groups = split_groups(kappa_report)
    assert type(groups[0]) is type(kappa_report)
    assert "median kappa_test κ" in compare_display(groups).columns
    with figures.plain_text():
        titles = [ax.get_title() for ax in compare_figure(groups).axes]
    assert any(t.startswith("Kappa test law κ per layer") for t in titles)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")


def test_delta_baseline_comes_from_nesting() -> None:
    from weightstats.report.text import nesting_baseline

    assert nesting_baseline(("laplace", "t", "gennorm", "normal")) == "normal"
    assert nesting_baseline(("laplace", "gennorm")) == "laplace"
    assert nesting_baseline(("t", "gennorm")) is None


def test_report_import_graph_is_acyclic() -> None:
    graph = import_graph()
    nodes = {m for m in graph if m.startswith("weightstats.report")}
    assert len(nodes) >= 8
    assert find_cycle(graph, nodes) is None, " -> ".join(find_cycle(graph, nodes) or [])
    # The leaf imports nothing from report/; the renderers never import the writer or the top.
    assert not graph["weightstats.report.text"] & nodes
    for renderer in ("summary", "tables", "figures", "html", "compare"):
        assert not graph[f"weightstats.report.{renderer}"] & {
            "weightstats.report.model_report", "weightstats.report.writer", "weightstats.report"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _family_strings(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    return [f"{path.name}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in skip and node.value.strip().lower() in names]


def test_no_family_name_in_report_code_or_cli() -> None:
    names = set(FAMILIES)
    for fam in FAMILIES.values():
        names |= {a.lower() for a in fam.aliases}
    found = [hit for path in [*sorted(REPORT.glob("*.py")), PACKAGE / "cli.py"]
             for hit in _family_strings(path, names)]
    assert not found, found


def test_family_string_finder_sees_literals(tmp_path: Path) -> None:
    code = tmp_path / "m.py"
    code.write_text('"""normal"""\nCOLORS = {"t": 1, "gennorm": 2}\n')
    assert len(_family_strings(code, set(FAMILIES))) == 2
