"""Report tables as text: layers.md, summary.md, the readable per-layer table, format names.

A renderer: it reads the model (``ReportData``) and formats with the leaf helpers (``text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from weightstats.errors import OptionError
from weightstats.fitting.compare import AIC_NOTE_SHORT
from weightstats.fitting.folding import folding_summary
from weightstats.report.model import ReportData, safe_spec, scrub_paths
from weightstats.report.text import (
    ADEQUACY_LABELS,
    CI_LABELS,
    displayed,
    family_label,
    fmt,
    fmt_shape,
    markdown_table,
    panel_note,
    shape_column,
    shape_display,
    shape_header,
    shape_symbol,
    to_csv_text,
    to_json_text,
)
from weightstats.text import markdown, markdown_code

ALL_FORMATS = ("csv", "md", "json", "html", "png")


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """Validate format names; raise OptionError naming the valid ones."""
    out = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in out if f not in ALL_FORMATS]
    if bad or not out:
        raise OptionError(
            f"unknown format {', '.join(bad) or '(none)'}; valid formats: {','.join(ALL_FORMATS)}"
        )
    return out


def check_outputs(formats: Sequence[str], *, plots: bool) -> tuple[str, ...]:
    """Validate formats, and refuse a combination that would write nothing (png, no plots)."""
    fmts = check_formats(formats)
    if not plots and set(fmts) <= {"png"}:
        raise OptionError("--format png with --no-plots would write no file: drop --no-plots, "
                          "or add a format such as --format csv,png")
    return fmts


def display_wide(report: ReportData) -> pd.DataFrame:
    """The readable subset of :meth:`ModelReport.wide` used by layers.md and the HTML page:
    one column per fitted family's shape (as its ShapeDisplay shows it), with the interval
    where the display has reference values to compare it with."""
    wide = report.wide()
    shapes = displayed(report.families)
    cols = ["layer", "kind", "n", "best_aic", "delta_aic", "best_bic"]
    cols += [shape_column(f) for f in shapes]
    cols += [f"ks_D_{f}" for f in report.families] + ["excess_kurtosis"]
    out = wide[cols].copy() if len(wide) else pd.DataFrame(columns=cols)
    for col in ("best_aic", "best_bic"):
        out[col] = [family_label(v) if isinstance(v, str) else "" for v in out[col]]
    renamed: dict[str, str] = {}
    for fam in shapes:
        col = shape_column(fam)
        renamed[col] = shape_header(fam)
        if not len(wide):
            continue
        out[col] = [fmt_shape(v, fam) for v in out[col]]
        if shape_display(fam).references:
            # The interval says whether the shape is distinguishable from its reference values
            # (β = 2 Gaussian, β = 1 Laplace).
            renamed[f"{col}_ci"] = f"{shape_symbol(fam)} 95% CI"
            out.insert(out.columns.get_loc(col) + 1, f"{col}_ci", _intervals(wide, col))
    if len(wide):
        out.insert(out.columns.get_loc("best_bic") + 1, "fit",
                   [ADEQUACY_LABELS.get(v, "") for v in wide["adequacy"]])
        out["scales differ by"] = wide["scales_differ_by"].tolist()
    return out.rename(columns={
        "best_aic": "best (AIC)", "delta_aic": "ΔAIC to runner-up", "best_bic": "best (BIC)",
        **renamed, "excess_kurtosis": "excess kurtosis",
        **{f"ks_D_{f}": f"KS D {f}" for f in report.families},
    })


def _intervals(wide: pd.DataFrame, col: str) -> list[str]:
    """``[1.21, 1.35]`` per layer, labelled where it is not a Wald interval."""
    ci = [f"[{fmt(lo, 3)}, {fmt(hi, 3)}]" if lo == lo and hi == hi else ""
          for lo, hi in zip(wide[f"{col}_ci_low"], wide[f"{col}_ci_high"], strict=True)]
    # Where no family fits, the Wald interval is replaced (fitting.adequacy): say by what.
    return [f"{c} {CI_LABELS.get(m, '')}".strip() if m != "omitted" else CI_LABELS[m]
            for c, m in zip(ci, wide[f"{col}_ci_method"], strict=True)]


def fit_notes(report: ReportData) -> list[tuple[str, str, str, bool]]:
    """``(layer, family, note, best by BIC)`` for every fit whose family describes it in words
    (``Family.fit_note``, made once by the fit as the row's ``note``: "53% still at its uniform
    initialization, the rest Student-t df 19"); the same sentence is among its flags in layers.csv."""
    out = []
    for lr in report.ok_layers:
        best = (lr.fit.verdict or {}).get("best_bic")
        for row in lr.fit.rows or []:
            if row.get("note"):
                out.append((lr.name, row["family"], row["note"], row["family"] == best))
    return out


def fit_note_lines(report: ReportData, *, best_only: bool = False) -> list[str]:
    """``"conv1: uniform + Student-t (best by BIC): 53% still at ..."``, one per noted fit."""
    return [f"{layer}: {family_label(fam)}{' (best by BIC)' if best else ''}: {note}"
            for layer, fam, note, best in fit_notes(report) if best or not best_only]


def no_fit_lines(info: dict[str, Any]) -> list[str]:
    """One line per layer where no family fits: its name, why, and where its scales differ."""
    out = []
    for m in (info.get("no_family_fits") or {}).get("layers", []):
        where = {"": "", "none": "; slice scales differ along no axis beyond i.i.d. noise"}.get(
            m["scales_differ_by"], f"; scales differ by {m['scales_differ_by']}")
        out.append(f"{m['layer']}: {m['reason']}{where}")
    return out


def summary_markdown(report: ReportData) -> str:
    """summary.md: the answer, AIC counts with their caveat, groups, options and notes."""
    summary = report.summary()
    info, answer = summary.info, summary.text
    lines = [f"# weightstats: {markdown(report.model)}", "", f"**{markdown(answer)}**", ""]
    fold = folding_summary(report.layers, per_channel=bool(report.options.get("per_channel")))
    if fold["sentence"]:
        lines += [markdown(fold["sentence"]), ""]
    if report.description:
        lines += [f"Model: {markdown(scrub_paths(report.description))} "
                  f"(spec {markdown_code(safe_spec(report.spec))})", ""]
    lines += [f"By AIC: {markdown(info['aic_sentence'])} _Caveat: {info['aic_caveat']}_", ""]
    counts = pd.DataFrame([
        {
            "family": family_label(f),
            "layers (BIC)": info["by_criterion"]["bic"][f]["layers"],
            "share of weights (BIC)": f"{info['by_criterion']['bic'][f]['weight_share']:.1%}",
            "layers (AIC)": info["by_criterion"]["aic"][f]["layers"],
            "share of weights (AIC)": f"{info['by_criterion']['aic'][f]['weight_share']:.1%}",
        }
        for f in report.families
    ])
    lines += ["## Best family per layer", "", markdown_table(counts)]
    if info["groups"]:
        lines += ["## By group (BIC)", ""]
        lines += [f"- {markdown(g['sentence'])}" for g in info["groups"].values()]
        lines += [""]
    if no_fit_lines(info):
        lines += ["## Layers where no family fits", "",
                  "Counted apart in the answer and left out of the medians; their shape "
                  "intervals are robust (sandwich) ones or omitted.", ""]
        lines += [f"- {markdown(line)}" for line in no_fit_lines(info)]
        lines += [""]
    if info.get("atoms"):
        lines += ["## Atoms: point masses, pruning, quantization", ""]
        lines += [f"- {markdown(line)}" for line in info["atoms"]]
        lines += [""]
    med = info["medians"]
    if med:
        lines += ["## Effect sizes (median over layers)", ""]
        lines += [f"- {k}: {fmt(v)}" for k, v in med.items()]
        lines += [""]
    lines += ["## Options", ""]
    lines += [f"- {k}: {markdown_code(v)}" for k, v in sorted(report.options.items())]
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in info["notes"]]
    if panel_note(len(report.layers)):
        lines += [f"- {panel_note(len(report.layers))}"]
    return "\n".join(lines) + "\n"


def layers_markdown(report: ReportData) -> str:
    """layers.md: the wide table, readable, then the fits described in words (mixtures)."""
    answer = report.summary().text
    text = (f"# {markdown(report.model)}: per-layer fits\n\n{markdown(answer)}\n\n"
            f"ΔAIC is to the runner-up; {AIC_NOTE_SHORT}, BIC is consistent. "
            "KS D is the Kolmogorov-Smirnov distance "
            "(effect size).\n\n" + markdown_table(display_wide(report)))
    notes = fit_note_lines(report)
    if notes:
        text += "\n## Fits in words\n\n" + "".join(f"- {markdown(n)}\n" for n in notes)
    return text


__all__ = [
    "ADEQUACY_LABELS",
    "ALL_FORMATS",
    "CI_LABELS",
    "check_formats",
    "check_outputs",
    "display_wide",
    "fit_note_lines",
    "fit_notes",
    "layers_markdown",
    "markdown_table",
    "no_fit_lines",
    "summary_markdown",
    "to_csv_text",
    "to_json_text",
]
