"""report.html: one self-contained page (inline CSS, base64 PNGs, no JavaScript, no network)."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import pandas as pd

from weightstats.report.model import ReportData, safe_spec, scrub_paths
from weightstats.report.tables import display_wide, fit_note_lines, no_fit_lines
from weightstats.report.text import (
    displayed,
    family,
    family_label,
    fmt,
    nesting_baseline,
    panel_note,
    shape_display,
    shape_symbol,
)
from weightstats.text import html_text

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #222; background: #fff; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.answer { font-size: 1.15rem; background: #f3f7fc; border-left: 4px solid #1f77b4;
          padding: .7rem 1rem; }
table { border-collapse: collapse; font-size: .8rem; margin: .5rem 0; }
th, td { border: 1px solid #ddd; padding: .2rem .45rem; text-align: right; }
th { background: #f5f5f5; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
tbody tr:nth-child(even) { background: #fafafa; }
.scroll { overflow-x: auto; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
.note { font-size: .9rem; } code { background: #f3f3f3; padding: 0 .2rem; }
"""

def captions(report: ReportData) -> dict[str, str]:
    """Figure captions, naming the report's families from the registry."""
    base = nesting_baseline(report.families)
    shapes = []
    for fam in displayed(report.families):
        refs = ", ".join(f"{shape_symbol(fam)} = {v:g} is {family_label(r)}"
                         for v, r in shape_display(fam).references if family(r) is not None)
        shapes.append(f"{family_label(fam)} {shape_symbol(fam)}" + (f" ({refs})" if refs else ""))
    return {
        "hist": "Weight density on a log scale (grey) with each family's fitted pdf; the tails "
                "are where the families differ.",
        "qq": "QQ plots against each layer's best family by BIC; points off the dashed line are "
              "misfit (usually in the tails).",
        "delta": "Log-likelihood per weight of each family minus "
                 + (f"the {family_label(base)}'s" if base else "the best family's") + ", by depth.",
        "shape": (" and ".join(shapes) + " by depth.") if shapes
                 else "No fitted family has a shape parameter.",
    }


def table_html(frame: pd.DataFrame, text_cols: tuple[str, ...] = ()) -> str:
    """An HTML table with escaped, formatted cells; ``text_cols`` are left-aligned."""
    head = "".join(
        f'<th class="{"text" if c in text_cols else ""}">{html_text(str(c))}</th>'
        for c in frame.columns
    )
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="{"text" if c in text_cols else ""}">{html_text(fmt(v))}</td>'
            for c, v in zip(frame.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
            + "\n".join(body) + "</tbody></table></div>")


def _img(name: str, data: bytes, captions: dict[str, str]) -> str:
    kind = ("hist" if name.startswith("hist") else "qq" if name.startswith("qq")
            else "delta" if name.startswith("delta") else "shape")
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure><img alt="{html_text(name)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{html_text(name)}: {html_text(captions[kind])}</figcaption>"
            "</figure>")


def page(title: str, sections: list[tuple[str, str]], answer: str = "") -> str:
    """Assemble a complete HTML document from ``(heading, inner html)`` sections."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html_text(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        f"<h1>{html_text(title)}</h1>",
    ]
    if answer:
        parts.append(f'<p class="answer">{html_text(answer)}</p>')
    for heading, inner in sections:
        parts.append(f"<section><h2>{html_text(heading)}</h2>{inner}</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def render_html(report: ReportData, pngs: Mapping[str, bytes]) -> str:
    """The full report page for one model."""
    info, answer = report.summary()
    sections: list[tuple[str, str]] = []
    intro = (f"<p>Spec <code>{html_text(safe_spec(report.spec))}</code>"
             + (f" — {html_text(scrub_paths(report.description))}" if report.description else "")
             + f". {info['n_fitted']} of {info['n_layers']} selected layers fitted, "
             f"{info['n_weights']:,} weights.</p>")
    intro += (f"<p>By AIC: {html_text(info['aic_sentence'])} "
              f"<em>{html_text(info['aic_caveat'])}</em></p>")
    counts = pd.DataFrame([
        {"family": family_label(f),
         "layers (BIC)": info["by_criterion"]["bic"][f]["layers"],
         "weights (BIC)": f"{info['by_criterion']['bic'][f]['weight_share']:.1%}",
         "layers (AIC)": info["by_criterion"]["aic"][f]["layers"],
         "weights (AIC)": f"{info['by_criterion']['aic'][f]['weight_share']:.1%}"}
        for f in report.families
    ])
    intro += table_html(counts, text_cols=("family",))
    if info["groups"]:
        intro += "<h3>By group (BIC)</h3><ul>" + "".join(
            f"<li>{html_text(g['sentence'])}</li>" for g in info["groups"].values()) + "</ul>"
    sections.append(("Summary", intro))
    if no_fit_lines(info):
        sections.append(("Layers where no family fits",
                         "<p>Counted apart in the answer and left out of the medians; their shape "
                         "intervals are robust (sandwich) ones or omitted.</p><ul>"
                         + "".join(f"<li>{html_text(line)}</li>" for line in no_fit_lines(info))
                         + "</ul>"))
    sections.append(("Per-layer fits", table_html(display_wide(report),
                                                  text_cols=("layer", "kind", "best (AIC)",
                                                             "best (BIC)"))))
    described = fit_note_lines(report)
    if described:
        sections.append(("Fits in words", "<ul>" + "".join(
            f"<li>{html_text(line)}</li>" for line in described) + "</ul>"))
    if pngs:
        note = panel_note(len(report.layers))
        shown = f"<p>{html_text(note)}</p>" if note else ""
        texts = captions(report)
        sections.append(("Figures", shown + "".join(_img(n, d, texts) for n, d in pngs.items())))
    comp = report.comparisons()
    if len(comp):
        cols = [c for c in ("layer", "a", "b", "nested", "test", "statistic", "z", "pvalue",
                            "favored", "mean_llr_per_weight") if c in comp.columns]
        sections.append(("Pairwise comparisons (Vuong / likelihood ratio)",
                         "<details><summary>Show all comparisons</summary>"
                         + table_html(comp[cols], text_cols=("layer", "a", "b", "test",
                                                             "favored"))
                         + "</details>"))
    options = "<ul>" + "".join(
        f"<li>{html_text(str(k))}: <code>{html_text(str(v))}</code></li>"
        for k, v in sorted(report.options.items())) + "</ul>"
    sections.append(("Options", options))
    notes = "<ul class=\"note\">" + "".join(
        f"<li>{html_text(n)}</li>" for n in info["notes"]) + "</ul>"
    sections.append(("How to read this", notes))
    return page(f"weightstats: {report.model}", sections, answer)
