"""report.html as a page a reader uses (issue 16): number formats, BIC first, sortable and
filterable tables, family colours from the registry, alt text, compact groups, folding note,
templates (Jinja2, autoescaped)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weightstats.api import fit_model
from weightstats.fitting.families import FAMILIES
from weightstats.report import html
from weightstats.report.cells import column_cells, float_format, natural_sorted
from weightstats.report.model_report import LayerResult, ModelReport

FAST = {"ks_sample": 300, "ks_replicates": 19}


def state(folded: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    out = {}
    for i in range(4):
        w = 0.05 * rng.standard_normal((64, 32, 3, 3))
        if folded:  # BatchNorm's γ/σ multiplied into each output channel
            w *= np.exp(0.6 * rng.standard_normal(64))[:, None, None, None]
        out[f"block{i}.conv.weight"] = w.astype(np.float32)
    out["head.fc.weight"] = (0.1 * rng.standard_t(4, size=(10, 300))).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def report() -> ModelReport:
    return fit_model(state(), **FAST)


@pytest.fixture(scope="module")
def page(report: ModelReport, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = report.save(tmp_path_factory.mktemp("page") / "rep", formats=("html",))
    return (out / "report.html").read_text()


# ------------------------------------------------------------------------ number formats
def test_a_column_has_one_format() -> None:
    """The issue's column mixed "0.001" and "9.859e-04": now both scientific, same digits."""
    texts = [c.text for c in column_cells([0.001, 9.859e-04, 0.25])]
    assert texts == ["1.00e-03", "9.86e-04", "2.50e-01"]
    texts = [c.text for c in column_cells([0.0806, 0.0272, 0.1165])]
    assert texts == ["0.0806", "0.0272", "0.1165"]  # fixed point, same decimals
    assert {len(t.split(".")[1]) for t in texts} == {4}
    assert float_format([3854.96, 2.43]) == ".2f"


def test_counts_get_thousands_separators_and_numeric_sort_keys() -> None:
    cells = column_cells([131072, 288, 4096])
    assert [c.text for c in cells] == ["131,072", "288", "4,096"]
    assert [float(c.sort) for c in cells] == [131072.0, 288.0, 4096.0]
    text = column_cells(["7.8", "∞", "", "[1.49, 1.57]"])
    assert [c.sort for c in text] == ["7.8", "Infinity", "", "1.49"]


def test_natural_order() -> None:
    assert natural_sorted(["10", "2", "1", "100", "0"]) == ["0", "1", "2", "10", "100"]


def test_page_numbers_do_not_wrap_and_n_has_separators(report: ModelReport, page: str) -> None:
    assert re.search(r"th, td \{[^}]*white-space: nowrap", page)
    ns = [f"{int(lr.fit.n):,}" for lr in report.layers]
    assert all(n in page for n in ns) and "18,432" in ns


# ------------------------------------------------------------------------ structure
def test_bic_verdict_comes_before_aic(page: str) -> None:
    assert page.index("layers (BIC)") < page.index("layers (AIC)") < page.index("By AIC:")
    assert page.index("fits best (BIC)") < page.index("By AIC:")


def test_tables_are_sortable_and_filterable_inline(page: str) -> None:
    assert page.count('class="sortable"') >= 3  # counts, layers, comparisons
    assert 'data-filter="layers"' in page and "<button" in page
    assert "<script>" in page and "<script src" not in page
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # self-contained
    # every number in the per-layer table carries its exact value for sorting
    body = page[page.index('id="layers"'):]
    body = body[:body.index("</table>")]
    assert len(re.findall(r'data-v="', body)) >= 5 * 4


def test_family_colours_come_from_the_registry(report: ModelReport, page: str) -> None:
    for name in report.families:
        fam = FAMILIES[name]
        assert f'style="--c:{fam.color}">{fam.label}</span>' in page, name


def test_family_colours_follow_a_changed_registry(report: ModelReport, monkeypatch) -> None:
    fam = FAMILIES[report.families[0]]
    monkeypatch.setattr(type(fam), "color", "#123456")
    text = html.render_html(report, {})
    assert f'style="--c:#123456">{fam.label}</span>' in text


def test_figures_have_alt_text_and_full_size_links(report: ModelReport, tmp_path: Path) -> None:
    out = report.save(tmp_path / "rep", formats=("html",))
    text = (out / "report.html").read_text()
    alts = re.findall(r'<img alt="([^"]*)"', text)
    assert len(alts) == 4
    assert all(not a.endswith(".png") and len(a) > 60 for a in alts), alts
    assert any("histogram" in a and "block0.conv.weight" in a for a in alts)
    assert text.count('class="full"') == 2 * len(alts)
    assert re.search(r"figure img \{[^}]*width: 100%", text)
    assert "@media (max-width: 600px)" in text and ".scroll { overflow-x: auto" in text


def test_many_groups_are_one_collapsed_table_in_natural_order(report: ModelReport) -> None:
    base = report.layers
    layers = [LayerResult(name=f"{i}.weight", kind="linear", group=str(i), shape=(8, 8),
                          dtype="float32", index=i, fit=base[i % len(base)].fit)
              for i in range(150)]
    many = dataclasses.replace(report, layers=layers)
    text = html.render_html(many, {})
    assert "<details><summary>By group (BIC): 150 groups" in text
    groups = text[text.index('id="groups"'):]
    groups = groups[:groups.index("</table>")]
    order = re.findall(r'<td class="text"[^>]*>(\d+)</td>', groups)
    assert order == [str(i) for i in range(150)]
    assert text.count("<li>") < 60  # no 150 bullets


def test_few_groups_stay_bullets(report: ModelReport) -> None:
    text = html.render_html(dataclasses.replace(report, layers=[
        dataclasses.replace(lr, group=g) for lr, g in zip(
            report.layers, ["b", "a", "b", "a", "a"], strict=True)]), {})
    assert "<h3>By group (BIC)</h3>" in text and 'id="groups"' not in text
    assert text.index("<li>a: ") < text.index("<li>b: ")


# ------------------------------------------------------------------------ folding
def test_folded_model_is_said_and_flagged(tmp_path: Path) -> None:
    rep = fit_model(state(folded=True), **FAST)
    text = html.render_html(rep, {})
    assert "BatchNorm appears folded into these conv weights: in 4 of 4 convolutions" in text
    assert "see --per-channel." in text and "folded γ/σ" in text
    assert len(re.findall(r">x\d(?:\.\d+)?<", text)) >= 4  # the per-layer factors
    plain = html.render_html(fit_model(state(), **FAST), {})
    assert "BatchNorm appears folded" not in plain and "folded γ/σ" not in plain


# ------------------------------------------------------------------------ templates
def test_template_escapes_and_shows_controls() -> None:
    frame = pd.DataFrame({"layer": ["<b>x</b>\x1b[2J"], "n": [3]})
    text = html.table_html(frame, text_cols=("layer",))
    assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;\\x1b[2J" in text
    doc = html.page("t<i>", [("h", "<p>inner</p>")], answer="a & b")
    assert "<title>t&lt;i&gt;</title>" in doc and "<p>inner</p>" in doc and "a &amp; b" in doc


def test_templates_ship_with_the_package() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())
    assert "report/templates/*" in data["tool"]["setuptools"]["package-data"]["weightstats"]
    assert any(d.startswith("jinja2") for d in data["project"]["dependencies"])
    names = {p.name for p in (root / "weightstats" / "report" / "templates").iterdir()}
    assert {"page.html.j2", "report.html.j2", "macros.html.j2", "page.js"} <= names


def _decimals(texts: list[str]) -> set[int]:
    return {len(x.split(".")[1]) for x in re.findall(r"\d+\.\d+", " ".join(texts))}


def test_shape_and_interval_columns_have_one_format(report: ModelReport) -> None:
    """The readable table's shape cells are text with 3 significant digits ("0.88", "0.979");
    the page shows them as numbers in one format per column, intervals alike."""
    table = html._layers_table(report, {})
    names = [c["name"] for c in table["columns"]]
    for head in ("t df", "gennorm β", "β 95% CI"):
        j = names.index(head)
        texts = [row[j].text for row in table["rows"]]
        assert len(_decimals(texts)) == 1, (head, texts)
    j = names.index("gennorm β")
    assert all(row[j].sort for row in table["rows"])  # numbers: sortable by value


def test_compare_of_many_groups_is_natural_and_compact(report: ModelReport, tmp_path: Path) -> None:
    from weightstats.report.compare import save_compare, split_groups

    base = report.layers
    layers = [LayerResult(name=f"{i}.weight", kind="linear", group=str(i), shape=(8, 8),
                          dtype="float32", index=i, fit=base[i % len(base)].fit)
              for i in (0, 1, 2, 10, 11, 100, 3, 4, 5, 6, 7, 8)]
    parts = split_groups(dataclasses.replace(report, model="seq", layers=layers))
    assert [p.model for p in parts] == [f"seq:{g}" for g in (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11,
                                                              100)]
    out = save_compare(parts, tmp_path / "cmp", ["html"], plots=False)
    text = (out / "report.html").read_text()
    assert "<title>weightstats: seq:0 vs seq:1 vs seq:2 vs seq:3 and 8 more</title>" in text
    assert "<details><summary>12 one-sentence answers</summary>" in text
