"""report.html: one self-contained page (inline CSS and script, base64 PNGs, no network),
rendered from Jinja2 templates (``weightstats/report/templates``) with autoescaping.

Tables are sortable and filterable (a few lines of inline script; the page reads fine without
it), each column of numbers in one format (:mod:`weightstats.report.cells`), family names in the
colours the figures use, figures full width with a link to the full-size image.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from weightstats.fitting.folding import folding_summary
from weightstats.report.cells import Cell, float_format, natural_key, table_rows
from weightstats.report.model import ReportData, safe_spec, scrub_paths
from weightstats.report.tables import display_wide, fit_note_lines, no_fit_lines
from weightstats.report.text import (
    displayed,
    family,
    family_color,
    family_label,
    nesting_baseline,
    panel_note,
    shape_column,
    shape_display,
    shape_header,
    shape_symbol,
)
from weightstats.text import html_text, visible

# A model with more groups than this lists them in a collapsed, sortable table.
MAX_GROUP_BULLETS = 8
FAMILY_COLUMNS = ("best (AIC)", "best (BIC)", "family", "winner (BIC)", "a", "b", "favored")


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}``: control characters shown escaped (then autoescaped)."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return visible(value)


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The package's template environment (autoescape on, undefined names are errors)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("weightstats.report", "templates"),
        autoescape=True, finalize=_finalize, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _macro(name: str) -> Any:
    return getattr(environment().get_template("macros.html.j2").module, name)


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
                "are where the families differ. Each panel gives n and the best family by BIC.",
        "qq": "QQ plots against each layer's best family by BIC; points off the dashed line are "
              "misfit (usually in the tails).",
        "delta": "Log-likelihood per weight (nats) of each family minus "
                 + (f"the {family_label(base)}'s" if base else "the best family's") + ", by depth.",
        "shape": ((" and ".join(shapes) + " by depth, with 95% intervals.") if shapes
                  else "No fitted family has a shape parameter."),
        "paired": "Each layer of one model against the same layer of the other.",
    }


def kind_of(name: str) -> str:
    """The caption key of a figure file name."""
    for prefix, kind in (("hist", "hist"), ("qq", "qq"), ("delta", "delta"),
                         ("paired", "paired")):
        if name.startswith(prefix):
            return kind
    return "shape"


def table_data(frame: pd.DataFrame, text_cols: Iterable[str] = (),
               family_cols: Iterable[str] = FAMILY_COLUMNS, *, table_id: str = "",
               filterable: bool = False) -> dict[str, Any]:
    """The template's view of a table: columns, formatted cells, id, filter box."""
    text = set(text_cols)
    columns = [{"name": str(c), "text": c in text} for c in frame.columns]
    rows = table_rows(frame, family_cols=[c for c in frame.columns if c in set(family_cols)])
    if not table_id:
        digest = hashlib.sha1(repr((list(map(str, frame.columns)), len(frame),
                                    [c.text for c in rows[0]] if rows else [])).encode())
        table_id = "table-" + digest.hexdigest()[:10]
    return {"id": table_id, "columns": columns, "rows": rows, "filter": filterable}


def table_html(frame: pd.DataFrame, text_cols: tuple[str, ...] = (), *,
               family_cols: Iterable[str] = FAMILY_COLUMNS, table_id: str = "",
               filterable: bool = False) -> str:
    """A sortable HTML table with escaped cells, numbers in one format per column;
    ``text_cols`` are left-aligned, cells of ``family_cols`` naming a family get its colour."""
    return str(_macro("table")(table_data(frame, text_cols, family_cols, table_id=table_id,
                                          filterable=filterable)))


def figure_html(name: str, data: bytes, caption: str, alt: str = "") -> str:
    """A figure linked to its full-size image (opened from the embedded bytes)."""
    return str(_macro("figure")(figure_data(name, data, caption, alt)))


def figure_data(name: str, data: bytes, caption: str, alt: str = "") -> dict[str, str]:
    return {"id": "fig-" + "".join(c if c.isalnum() else "-" for c in name),
            "name": name, "caption": caption, "alt": alt or caption,
            "b64": base64.b64encode(data).decode("ascii")}


def page(title: str, sections: Sequence[tuple[str, str]], answer: str = "") -> str:
    """A complete HTML document from ``(heading, inner html)`` sections (the inner HTML is the
    caller's, already escaped)."""
    return environment().get_template("page.html.j2").render(
        title=title, answer=answer, sections=[(h, Markup(inner)) for h, inner in sections])


def _counts_table(report: ReportData, info: Mapping[str, Any]) -> pd.DataFrame:
    bic, aic = info["by_criterion"]["bic"], info["by_criterion"]["aic"]
    return pd.DataFrame([
        {"family": family_label(f), "layers (BIC)": bic[f]["layers"],
         "share of weights (BIC)": f"{bic[f]['weight_share']:.1%}",
         "layers (AIC)": aic[f]["layers"], "share of weights (AIC)": f"{aic[f]['weight_share']:.1%}"}
        for f in report.families
    ])


def _groups(report: ReportData, info: Mapping[str, Any]) -> dict[str, Any]:
    """Groups in natural order: bullets for a few, a collapsed sortable table for many."""
    groups = info.get("groups") or {}
    names = sorted(groups, key=natural_key)
    if len(names) <= MAX_GROUP_BULLETS:
        return {"bullets": [groups[g]["sentence"] for g in names], "table": None, "n": len(names)}
    rows = []
    for g in names:
        counts = groups[g]["bic"]
        winner = max(report.families, key=lambda f: (counts[f]["layers"], counts[f]["weights"]))
        rows.append({"group": g, "layers": groups[g]["n_layers"],
                     "weights": groups[g]["n_weights"],
                     "best (BIC)": family_label(winner) if counts[winner]["layers"] else "",
                     **{family_label(f): counts[f]["layers"] for f in report.families}})
    frame = pd.DataFrame(rows)
    return {"bullets": [], "n": len(names),
            "table": table_data(frame, ("group", "best (BIC)"), table_id="groups",
                                filterable=True)}


def _interval_texts(wide: pd.DataFrame, col: str, shown: Sequence[str]) -> list[str]:
    """``[0.459, 0.555]`` per layer in one format for the column (cells.float_format), keeping
    the label the readable table adds where it is not a Wald interval ("(robust)")."""
    low = wide[f"{col}_ci_low"].to_numpy(dtype=float)
    high = wide[f"{col}_ci_high"].to_numpy(dtype=float)
    spec = float_format([v for v in (*low, *high) if math.isfinite(v)])

    def one(v: float) -> str:
        return "∞" if v == math.inf else format(v, spec)

    out = []
    for lo, hi, text in zip(low, high, shown, strict=True):
        label = text[text.index("]") + 1:].strip() if "]" in text else text
        if lo == lo and hi == hi:  # both present (not NaN)
            out.append(f"[{one(lo)}, {one(hi)}] {label}".strip())
        else:
            out.append(label)
    return out


def _consistent_shapes(report: ReportData, frame: pd.DataFrame) -> pd.DataFrame:
    """The shape columns as numbers (one format per column, "∞" from the display's
    ``infinite_from``) instead of the readable table's per-cell text, the intervals alike."""
    wide = report.wide()
    if not len(wide) or len(wide) != len(frame):
        return frame
    frame = frame.copy()
    for fam in displayed(report.families):
        col, display, head = shape_column(fam), shape_display(fam), shape_header(fam)
        if head in frame and col in wide:
            values = wide[col].to_numpy(dtype=float)
            frame[head] = [math.inf if v >= display.infinite_from else float(v) for v in values]
        ci_head = f"{shape_symbol(fam)} 95% CI"
        if ci_head in frame and f"{col}_ci_low" in wide:
            frame[ci_head] = _interval_texts(wide, col, [str(v) for v in frame[ci_head]])
    return frame


def _layers_table(report: ReportData, folded: Mapping[str, float]) -> dict[str, Any]:
    frame = _consistent_shapes(report, display_wide(report))
    if folded and len(frame):
        frame = frame.assign(**{"folded γ/σ": [f"x{folded[n]:.2g}" if n in folded else ""
                                               for n in frame["layer"]]})
    return table_data(frame, ("layer", "kind", "best (AIC)", "best (BIC)", "fit",
                              "scales differ by", "folded γ/σ"),
                      table_id="layers", filterable=True)


def _comparisons(report: ReportData) -> dict[str, Any] | None:
    comp = report.comparisons()
    if not len(comp):
        return None
    cols = [c for c in ("layer", "a", "b", "nested", "test", "statistic", "z", "pvalue",
                        "favored", "mean_llr_per_weight") if c in comp.columns]
    frame = comp[cols].copy()
    for col in ("a", "b", "favored"):
        if col in frame:
            frame[col] = [family_label(v) if isinstance(v, str) and v else v for v in frame[col]]
    return table_data(frame, ("layer", "a", "b", "test", "favored"), table_id="comparisons",
                      filterable=True)


def _figures(report: ReportData, pngs: Mapping[str, bytes]) -> list[dict[str, str]]:
    if not pngs:
        return []
    from weightstats.report.figures import describe  # loaded already: the figures were drawn

    texts, alts = captions(report), describe(report)
    return [figure_data(n, d, texts[kind_of(n)], alts.get(n, "")) for n, d in pngs.items()]


def render_html(report: ReportData, pngs: Mapping[str, bytes]) -> str:
    """The full report page for one model."""
    summary = report.summary()
    info, answer = summary.info, summary.text
    fold = folding_summary(report.layers, per_channel=bool(report.options.get("per_channel")))
    folded = fold["layers"] if fold["folded"] else {}
    return environment().get_template("report.html.j2").render(
        title=f"weightstats: {report.model}", answer=answer, sections=[],
        spec=safe_spec(report.spec), description=scrub_paths(report.description),
        info=info, legend=[(family_label(f), family_color(f)) for f in report.families],
        counts=table_data(_counts_table(report, info), ("family",), table_id="counts"),
        groups=_groups(report, info), folding=fold["sentence"], no_fit=no_fit_lines(info),
        layers=_layers_table(report, folded), fits_in_words=fit_note_lines(report),
        panel_note=panel_note(len(report.layers)), figures=_figures(report, pngs),
        comparisons=_comparisons(report), options=sorted(report.options.items()),
        notes=info["notes"])


__all__ = ["Cell", "captions", "environment", "figure_html", "html_text", "page",
           "render_html", "table_html"]
