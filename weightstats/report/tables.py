"""Report files: layers.csv, comparisons.csv, layers.md, summary.md, report.json (+ html/png)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from weightstats import interrupts
from weightstats.errors import OptionError
from weightstats.fitting.compare import AIC_NOTE_SHORT
from weightstats.report.atomic import atomic_directory
from weightstats.text import csv_cell, markdown, markdown_code

if TYPE_CHECKING:  # pragma: no cover - typing only
    from weightstats.report.model_report import ModelReport

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


def fmt_df(value: Any, digits: int = 3) -> str:
    """Student-t df for display: a fit that ran to the cap is the Gaussian limit, shown as ∞."""
    from weightstats.fitting.families.student_t import DF_MAX

    if isinstance(value, float) and value >= DF_MAX * (1 - 1e-9):
        return "∞"
    return fmt(value, digits)


def fmt(value: Any, digits: int = 4) -> str:
    """Compact, deterministic text for a table cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return fmt(value.item(), digits)
    return str(value)


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """GitHub-flavoured Markdown table (no tabulate dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        # Text cells (layer names come from the weights file) are escaped; numbers need not be.
        cells = [markdown(v) if isinstance(v, str) else fmt(v, digits) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def display_wide(report: ModelReport) -> pd.DataFrame:
    """The readable subset of :meth:`ModelReport.wide` used by layers.md and the HTML page."""
    from weightstats.report.model_report import family_label

    wide = report.wide()
    cols = ["layer", "kind", "n", "best_aic", "delta_aic", "best_bic", "t_df", "gennorm_beta"]
    cols += [f"ks_D_{f}" for f in report.families] + ["excess_kurtosis"]
    out = wide[cols].copy() if len(wide) else pd.DataFrame(columns=cols)
    for col in ("best_aic", "best_bic"):
        out[col] = [family_label(v) if isinstance(v, str) else "" for v in out[col]]
    if len(wide):
        out["t_df"] = [fmt_df(v) for v in out["t_df"]]
    if len(wide) and "gennorm" in report.families:
        # The interval says whether beta is distinguishable from 2 (Gaussian) or 1 (Laplace).
        ci = [f"[{fmt(lo, 3)}, {fmt(hi, 3)}]" if lo == lo and hi == hi else ""
              for lo, hi in zip(wide["gennorm_beta_ci_low"], wide["gennorm_beta_ci_high"],
                                strict=True)]
        # Where no family fits, the Wald interval is replaced (fitting.adequacy): say by what.
        ci = [f"{c} {CI_LABELS.get(m, '')}".strip() if m != "omitted" else CI_LABELS[m]
              for c, m in zip(ci, wide["gennorm_beta_ci_method"], strict=True)]
        out.insert(out.columns.get_loc("gennorm_beta") + 1, "beta_ci", ci)
    if len(wide):
        out.insert(out.columns.get_loc("best_bic") + 1, "fit",
                   [ADEQUACY_LABELS.get(v, "") for v in wide["adequacy"]])
        out["scales differ by"] = wide["scales_differ_by"].tolist()
    return out.rename(columns={
        "best_aic": "best (AIC)", "delta_aic": "ΔAIC to runner-up", "best_bic": "best (BIC)",
        "t_df": "t df", "gennorm_beta": "gennorm β", "beta_ci": "β 95% CI", "excess_kurtosis": "excess kurtosis",
        **{f"ks_D_{f}": f"KS D {f}" for f in report.families},
    })


# Short cell text for the adequacy verdict and for intervals that are not Wald intervals.
ADEQUACY_LABELS = {"fits": "fits", "fits approximately": "fits approx.",
                   "no family fits": "NO FAMILY FITS", "untested": "untested"}
CI_LABELS = {"sandwich": "(robust)", "omitted": "omitted: no family fits"}


def no_fit_lines(info: dict[str, Any]) -> list[str]:
    """One line per layer where no family fits: its name, why, and where its scales differ."""
    out = []
    for m in (info.get("no_family_fits") or {}).get("layers", []):
        where = {"": "", "none": "; slice scales differ along no axis beyond i.i.d. noise"}.get(
            m["scales_differ_by"], f"; scales differ by {m['scales_differ_by']}")
        out.append(f"{m['layer']}: {m['reason']}{where}")
    return out


def to_csv_text(frame: pd.DataFrame) -> str:
    """CSV with floats in repr precision (round-trippable, deterministic); text fields pass
    through :func:`weightstats.text.csv_cell` (no control characters, no formula cells)."""
    frame = frame.copy()
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            frame[col] = [csv_cell(v) if isinstance(v, str) else v for v in frame[col]]
    return frame.to_csv(index=False, lineterminator="\n", float_format=None)


def to_json_text(data: Any) -> str:
    """Sorted keys, no NaN (already cleaned), trailing newline: byte-identical for equal data."""
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def summary_markdown(report: ModelReport) -> str:
    """summary.md: the answer, AIC counts with their caveat, groups, options and notes."""
    from weightstats.report.model_report import family_label, safe_spec, scrub_paths

    info, answer = report.summary()
    lines = [f"# weightstats: {markdown(report.model)}", "", f"**{markdown(answer)}**", ""]
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
    from weightstats.report.figures import panel_note

    if panel_note(report):
        lines += [f"- {panel_note(report)}"]
    return "\n".join(lines) + "\n"


def layers_markdown(report: ModelReport) -> str:
    """layers.md: the wide table, readable."""
    _, answer = report.summary()
    return (f"# {markdown(report.model)}: per-layer fits\n\n{markdown(answer)}\n\n"
            f"ΔAIC is to the runner-up; {AIC_NOTE_SHORT}, BIC is consistent. "
            "KS D is the Kolmogorov-Smirnov distance "
            "(effect size).\n\n" + markdown_table(display_wide(report)))


def write_report(
    report: ModelReport,
    directory: str | os.PathLike[str],
    formats: Sequence[str] = ALL_FORMATS,
    *,
    plots: bool = True,
) -> Path:
    """Render every requested file, then write them atomically into ``directory``.

    Figures are rendered before the target directory is touched, so a failing figure leaves
    no trace; the files are then written into a temporary sibling directory and renamed.
    """
    from weightstats.report import figures as figs
    from weightstats.report import html

    fmts = check_outputs(formats, plots=plots)
    target = Path(directory)
    # Files are written one by one as they are rendered (figures are the slow part), all into
    # the temporary directory; a failure anywhere removes it and leaves any old report as is.
    with atomic_directory(target) as tmp:

        def put(rel: str, data: bytes) -> None:
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        if "csv" in fmts:
            put("layers.csv", to_csv_text(report.table).encode())
            put("comparisons.csv", to_csv_text(report.comparisons()).encode())
        if "md" in fmts:
            put("layers.md", layers_markdown(report).encode())
            put("summary.md", summary_markdown(report).encode())
        if "json" in fmts:
            put("report.json", to_json_text(report.to_dict()).encode())
        pngs: dict[str, bytes] = {}
        if plots and ("png" in fmts or "html" in fmts):
            for name, data in figs.render_all(report):
                interrupts.check()  # a Ctrl-C that matplotlib's callbacks swallowed
                if "png" in fmts:
                    put(f"figures/{name}", data)
                if "html" in fmts:
                    pngs[name] = data
        if "html" in fmts:
            put("report.html", html.render_html(report, pngs).encode())
    return target
