"""The result of fitting a whole model: per-layer fits, tidy/wide tables and the answer.

The model of ``weightstats.report``: the renderers (tables, figures, html, compare) read it; it
imports only the leaf helpers (``text``), the layer record and the summary's arithmetic. Saving
and plotting sit above the renderers, in ``model_report.ModelReport``.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from weightstats.fitting.families import DEFAULT_FAMILIES
from weightstats.fitting.flags import FLAG_CODES, flag_codes
from weightstats.fitting.heterogeneity import describe_where
from weightstats.fitting.result import COMPARISON_COLUMNS, FRAME_COLUMNS, shown_row
from weightstats.report.layer import LayerResult
from weightstats.report.summary import Summary, build_summary
from weightstats.report.text import shape_names, shaped

DESCRIPTIVE_COLUMNS = (
    "mean", "std", "skewness", "excess_kurtosis", "zero_fraction", "atom_mass", "min", "max",
    "n_nonfinite",
)
LAYER_COLUMNS = ("layer", "kind", "group", "tensor_shape", "dtype", "path", "depth", "status")


def _clean(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to JSON-safe Python values (NaN -> None,
    an infinite float -> "inf" / "-inf")."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f if math.isfinite(f) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _flags_str(value: Any, note: Any = "") -> str:
    """A row's flags as short codes, ``";"``-joined (``df_at_cap;null_table_edge``): the full
    sentences stay in report.json, the codes' meanings in ``FLAG_CODES``."""
    if isinstance(value, (list, tuple, set, np.ndarray)):
        value = "; ".join(str(v) for v in value)
    return flag_codes(value, note)


# An absolute path (POSIX, ``~``, or a Windows drive) inside free text. Folder names may hold
# single spaces ("My Models") as long as another separator follows; the match ends at the last
# name, which is all that is kept. Hub ids such as "timm/resnet50" are not absolute: untouched.
_SEGMENT = r"[^\s/\\'\"`]+"
_ABS_PATH = re.compile(rf"(?<![\w.:/\\])(?:~|[A-Za-z]:)?[/\\](?:{_SEGMENT}(?: (?!~|[A-Za-z]:){_SEGMENT})*[/\\])+"
                       rf"({_SEGMENT})")


def safe_spec(spec: str) -> str:
    """Spec text without absolute paths (report.json must not depend on where files live)."""
    text = str(spec)
    # Only real absolute/home paths: hub ids such as "timm/resnet50" must stay as they are.
    if os.path.isabs(text) or text.startswith("~"):
        return Path(text).name
    return scrub_paths(text)


def scrub_paths(text: str) -> str:
    """Replace absolute paths inside free text (descriptions, notes) by their file names."""
    return _ABS_PATH.sub(r"\1", str(text))


def _scrub_fit(fit: dict[str, Any]) -> dict[str, Any]:
    """A fit's message and notes without absolute paths (a failed load may quote one)."""
    if isinstance(fit.get("message"), str):
        fit["message"] = scrub_paths(fit["message"])
    if isinstance(fit.get("notes"), list):
        fit["notes"] = [scrub_paths(n) if isinstance(n, str) else n for n in fit["notes"]]
    return fit


def source_identity(source: Any) -> tuple[str, str]:
    """(spec, description) of a resolved source for reports, free of local folder names.

    A local file is recorded by its file name, a folder by its own name and the weights file
    inside it, so ``m.safetensors``, ``./m.safetensors`` and ``/abs/path/m.safetensors`` give
    the same report. Other sources (hub ids, model names) keep their spec, with any absolute
    path in it or in the description (a cache location, an error note) cut to its last name.
    """
    spec, description = str(source.spec), str(getattr(source, "description", "") or "")
    path = getattr(source, "path", None)
    if getattr(source, "kind_of_source", "") == "file" and path is not None:
        typed = Path(os.path.expanduser(spec))
        chosen = Path(path)
        if typed.is_dir():
            folder = typed.resolve().name or typed.resolve().anchor
            try:
                inner = chosen.resolve().relative_to(typed.resolve()).as_posix()
            except ValueError:
                inner = chosen.name
            return folder, f"local folder {folder}, file {inner}"
        return chosen.name, f"local file {chosen.name}"
    return safe_spec(spec), scrub_paths(description)


@dataclass
class ReportData:
    """All per-layer fits of one model: the tables and the answer (``ModelReport`` adds saving
    and plotting on top).

    Parameters
    ----------
    model : str
        Short, filesystem-safe model name (``reports/<model>/``).
    spec : str
        The spec as given (absolute paths are reduced to the file name in saved output).
    layers : list of LayerResult
        Fitted layers in depth order.
    families : tuple of str
        Families fitted, in order.
    options : dict
        Fitting options (recorded in summary.md and report.json).
    description : str
        The source's one-line description.
    """

    model: str
    spec: str
    layers: list[LayerResult]
    families: tuple[str, ...] = DEFAULT_FAMILIES
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    _memo: dict[str, tuple[Any, Any]] = field(default_factory=dict, init=False, repr=False)

    def _cached(self, key: str, build: Any) -> Any:
        """``build()`` once per state of the report: saving calls wide() and summary() several
        times, and each walks every layer (minutes for 10,000 layers)."""
        stamp = (self.model, tuple(self.families), tuple(map(id, self.layers)))
        hit = self._memo.get(key)
        if hit is None or hit[0] != stamp:
            hit = (stamp, build())
            self._memo[key] = hit
        return hit[1]

    # ------------------------------------------------------------------ tables
    @property
    def ok_layers(self) -> list[LayerResult]:
        """Layers whose fit succeeded (status "ok")."""
        return [lr for lr in self.layers if lr.fit.status == "ok"]

    def layer(self, name: str) -> LayerResult:
        """Return the layer called ``name`` (KeyError naming close alternatives otherwise)."""
        for lr in self.layers:
            if lr.name == name:
                return lr
        raise KeyError(f"no layer {name!r}; layers: {', '.join(lr.name for lr in self.layers[:8])}...")

    def table(self) -> pd.DataFrame:
        """Tidy table (layers.csv): one row per layer x family.

        A first shape at its cap (a Student-t df run to the Gaussian limit) is ``inf``, with the
        ``df_at_cap`` flag; ``flags`` are short codes (``weightstats.fitting.flags.FLAG_CODES``).
        """
        return self._cached("table", self._build_table).copy()

    def _build_table(self) -> pd.DataFrame:
        # One frame from plain records: a DataFrame per layer took minutes for 10,000 layers.
        records: list[dict[str, Any]] = []
        for lr in self.layers:
            meta = {
                "layer": lr.name, "kind": lr.kind, "group": lr.group,
                "tensor_shape": lr.shape_str, "dtype": lr.dtype,
                "path": getattr(lr.fit, "path", ""), "depth": lr.index, "status": lr.fit.status,
            }
            desc = dict(lr.fit.descriptives or {})
            desc["n_nonfinite"] = lr.fit.n_nonfinite
            tail = {key: desc.get(key, np.nan) for key in DESCRIPTIVE_COLUMNS}
            for raw in lr.fit.rows or []:
                row = shown_row(raw)
                rec = {**meta, **{c: row.get(c) for c in FRAME_COLUMNS}, **tail}
                rec["flags"] = _flags_str(rec["flags"], row.get("note"))
                records.append(rec)
            if not lr.fit.rows:
                # A layer that could not be fitted still gets its rows, so every layer shows up.
                records += [{**meta, "family": fam, **tail} for fam in self.families]
        columns = [*LAYER_COLUMNS, *FRAME_COLUMNS, *DESCRIPTIVE_COLUMNS]
        if not records:
            return pd.DataFrame(columns=[*LAYER_COLUMNS, "family", *DESCRIPTIVE_COLUMNS])
        return pd.DataFrame.from_records(records, columns=columns)

    def wide(self) -> pd.DataFrame:
        """One row per layer (layers_wide.csv): verdicts, shape parameters, KS D of each
        family, kurtosis; a shape at its cap is ``inf``."""
        return self._cached("wide", self._build_wide).copy()

    def _build_wide(self) -> pd.DataFrame:
        # Shape columns of every fitted family with a shape parameter, and of the default ones
        # even when not fitted (NaN), so the columns do not depend on --families.
        shape_families = shaped(dict.fromkeys((*DEFAULT_FAMILIES, *self.families)))
        rows = []
        for lr in self.layers:
            fit = lr.fit
            verdict = dict(fit.verdict or {})
            # Plain dicts, not a DataFrame per layer: 10,000 small frames took minutes.
            by_family = _rows_by_family(fit)
            desc = fit.descriptives or {}

            def get(family: str, col: str, by_family: dict = by_family) -> float:
                return _num(by_family.get(family, {}).get(col))

            row: dict[str, Any] = {
                "layer": lr.name, "kind": lr.kind, "group": lr.group, "depth": lr.index,
                "n": int(fit.n), "status": fit.status,
                "best_aic": verdict.get("best_aic"),
                "runner_up_aic": verdict.get("runner_up_aic"),
                "delta_aic": _num(verdict.get("delta_aic")),
                "best_bic": verdict.get("best_bic"),
                "separated": verdict.get("separated"),
                # Does the best family fit at all (fitting.adequacy), and along which tensor axis
                # do slice scales differ (fitting.heterogeneity)?
                "adequate": verdict.get("adequate"),
                "adequacy": verdict.get("adequacy"),
                "adequacy_reason": verdict.get("adequacy_reason"),
                "scales_differ_by": describe_where(getattr(fit, "heterogeneity", None) or {}),
            }
            for fam in shape_families:
                row.update(_shape_cells(fam, by_family.get(fam, {})))
            for fam in self.families:
                row[f"ks_D_{fam}"] = get(fam, "ks_stat")
            for fam in self.families:
                row[f"ks_p_{fam}"] = get(fam, "ks_pvalue")
            for fam in self.families:
                row[f"ll_per_weight_{fam}"] = get(fam, "loglik_per_weight")
            for key in ("excess_kurtosis", "skewness", "std", "zero_fraction", "atom_mass"):
                row[key] = _num(desc.get(key))
            rows.append(row)
        return pd.DataFrame(rows)

    def comparisons(self) -> pd.DataFrame:
        """Pairwise family comparisons of every layer (the fitter's columns plus layer/depth)."""
        return self._cached("comparisons", self._build_comparisons).copy()

    def _build_comparisons(self) -> pd.DataFrame:
        records = [
            {"layer": lr.name, "kind": lr.kind, "depth": lr.index,
             **{c: row.get(c) for c in COMPARISON_COLUMNS}}
            for lr in self.layers if lr.fit.status == "ok"
            for row in lr.fit.comparison_rows or []
        ]
        if not records:
            return pd.DataFrame(columns=["layer", "kind", "depth", "a", "b", "nested", "test",
                                         "statistic", "z", "pvalue", "favored",
                                         "mean_llr_per_weight"])
        return pd.DataFrame.from_records(records, columns=["layer", "kind", "depth",
                                                           *COMPARISON_COLUMNS])

    # ------------------------------------------------------------------ summary
    def summary(self) -> Summary:
        """The answer: best families per criterion, by layers and by share of weights.

        Returns
        -------
        Summary
            ``.text`` (also ``str()``): one sentence answering the question, by BIC (consistent
            for nested families); ``.table``: one row per family, layers won and share of
            weights by BIC and AIC; ``.info``: everything, as report.json's "summary" holds it.
        """
        return Summary(copy.deepcopy(self._cached("summary", lambda: build_summary(
            self.model, self.layers, tuple(self.families), self.wide()))))

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-safe and deterministic (no timestamps, no absolute paths)."""
        info = self.summary().info
        layers = []
        for lr in self.layers:
            entry = _clean({"name": lr.name, "kind": lr.kind, "group": lr.group,
                            "shape": list(lr.shape), "dtype": lr.dtype, "depth": lr.index})
            # TensorFit.to_dict is JSON-safe already: a second _clean pass over every histogram
            # doubled the time of saving a many-layer model.
            entry["fit"] = _scrub_fit(lr.fit.to_dict())
            layers.append(entry)
        out = _clean({
            "weightstats_report": 1,
            "model": self.model,
            "spec": safe_spec(self.spec),
            "description": scrub_paths(self.description),
            "families": list(self.families),
            "options": self.options,
            "summary": info,
            "flag_codes": FLAG_CODES,
        })
        out["layers"] = layers
        return out


def _rows_by_family(fit: Any) -> dict[str, dict[str, Any]]:
    """A fitted layer's table rows by family, restricted to the report's columns."""
    if fit.status != "ok":
        return {}
    return {row["family"]: {c: row.get(c) for c in (*FRAME_COLUMNS, "params")}
            for row in map(shown_row, fit.rows)}


def _shape_cells(family: str, row: dict[str, Any]) -> dict[str, Any]:
    """A shaped family's wide-table cells: its first shape with the interval and how it was made
    (``t_df``, ``t_df_ci_low``, ``t_df_ci_high``, ``t_df_ci_method``), then any further shape
    parameters by name (a mixture's weights and scales)."""
    first, *more = shape_names(family)
    col = f"{family}_{first}"
    method = row.get("shape_ci_method")
    cells = {col: _num(row.get("shape")), f"{col}_ci_low": _num(row.get("shape_ci_low")),
             f"{col}_ci_high": _num(row.get("shape_ci_high")),
             f"{col}_ci_method": method if isinstance(method, str) else ""}
    params = row.get("params") or {}
    for name in more:
        cells[f"{family}_{name}"] = _num(params.get(name))
    return cells


def _num(value: Any) -> float:
    """A float, NaN for None/missing."""
    if value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
