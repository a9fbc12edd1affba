"""The zoo tables: one row per model x layer x family (layers), one row per model (models).

Every value reaches the tables through JSON (:func:`model_record` is stored in the model's
done-marker, see :mod:`.resume`), so a resumed sweep builds them from the same records as an
uninterrupted one; rows are sorted and CSV floats have one fixed format (as each model's
layers.csv), so equal results give byte-identical files whichever worker fitted what.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

MODEL_COLUMNS = ("model", "spec", "source", "model_params", "model_dtype")
FAILURE_COLUMNS = ("model", "spec", "error")


def plain(value: Any) -> Any:
    """A JSON-safe Python value (NumPy scalars unwrapped; NaN stays a float NaN)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if value is None or isinstance(value, int | float | str):
        return value
    if value is pd.NA:
        return None
    return str(value)


def source_facts(source: Any) -> tuple[int, str]:
    """(parameter count, dtype holding most of them) over every floating tensor of a source
    (metadata only: nothing is loaded)."""
    by_dtype: Counter[str] = Counter()
    for t in source.tensors():
        if t.is_float:
            by_dtype[t.dtype] += int(t.numel)
    total = sum(by_dtype.values())
    dtype = sorted(by_dtype.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if by_dtype else ""
    return total, dtype


def _adequacy_labels() -> tuple[str, ...]:
    from weightstats.report.text import ADEQUACY_LABELS

    return tuple(ADEQUACY_LABELS)


def _column(text: str) -> str:
    return text.replace(" ", "_")


def model_record(report: Any, spec: str, n_params: int, model_dtype: str) -> dict[str, Any]:
    """Everything the zoo tables need from one model's report, JSON-safe.

    Returns
    -------
    dict
        ``{"layers": [row, ...], "model": row}``: the report's tidy table with the model's
        columns in front, and the per-model row (BIC shares, adequacy counts, medians).
    """
    from weightstats.report.model import safe_spec, scrub_paths

    head = {"model": report.model, "spec": safe_spec(spec),
            "source": scrub_paths(report.description), "model_params": int(n_params),
            "model_dtype": model_dtype}
    layers = [{**head, **plain(row)} for row in report.table().to_dict("records")]
    summary = report.summary()
    info, sentence = summary.info, summary.text
    row: dict[str, Any] = {**head, "families": ",".join(report.families),
                           "n_layers": info["n_layers"], "n_fitted": info["n_fitted"],
                           "weights_fitted": info["n_weights"],
                           "winner_bic": info["winner_bic"] or ""}
    bic = info["by_criterion"]["bic"]
    fitted = info["n_fitted"]
    for fam in report.families:  # names from the fit's options, i.e. from the registry
        counts = bic.get(fam, {"layers": 0, "weight_share": 0.0})
        row[f"bic_layers_{fam}"] = counts["layers"]
        row[f"bic_layer_share_{fam}"] = counts["layers"] / fitted if fitted else math.nan
        row[f"bic_weight_share_{fam}"] = counts["weight_share"]
    adequacy = Counter(str(a) for a in report.wide()["adequacy"] if isinstance(a, str))
    for label in _adequacy_labels():
        row[f"layers_{_column(label)}"] = adequacy.get(label, 0)
    for key, value in info["medians"].items():
        row[f"median_{key}"] = math.nan if value is None else value
    row["sentence"] = sentence
    return plain({"layers": layers, "model": row})


def roundtrip(record: dict[str, Any]) -> dict[str, Any]:
    """The record as the done-marker stores it (JSON, NaN kept), read back."""
    return json.loads(json.dumps(record))


def _frame(rows: list[dict[str, Any]], first: Sequence[str]) -> pd.DataFrame:
    columns: dict[str, None] = dict.fromkeys(first)
    for r in rows:
        columns.update(dict.fromkeys(r))
    return pd.DataFrame.from_records(rows, columns=list(columns))


def layers_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """All models' layer rows, models by name, each in its own layer order."""
    rows = [r for rec in sorted(records, key=lambda r: r["model"]["model"]) for r in rec["layers"]]
    return _frame(rows, MODEL_COLUMNS)


def models_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per model, by name."""
    rows = [rec["model"] for rec in sorted(records, key=lambda r: r["model"]["model"])]
    return _frame(rows, MODEL_COLUMNS)


def failures_frame(failures: Sequence[dict[str, str]]) -> pd.DataFrame:
    """One row per failed model, by name: its spec and the one-line error."""
    rows = sorted(failures, key=lambda r: (r["model"], r["spec"]))
    return pd.DataFrame.from_records(rows, columns=list(FAILURE_COLUMNS))


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as Parquet (pyarrow), the same bytes for the same frame."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{100 * float(value):.0f}%"


def overview(models: pd.DataFrame) -> pd.DataFrame:
    """The human table: per model its size, winner by BIC, BIC weight shares, medians."""
    from weightstats.report.text import family_label

    families = sweep_families(models)
    rows = []
    for _, m in models.iterrows():
        row = {"model": m["model"], "parameters": f"{int(m['model_params']):,}",
               "layers fitted": f"{int(m['n_fitted'])} of {int(m['n_layers'])}",
               "best (BIC)": family_label(m["winner_bic"]) if m["winner_bic"] else ""}
        for fam in families:
            row[f"{family_label(fam)} (weights)"] = _pct(m.get(f"bic_weight_share_{fam}"))
        row["no family fits"] = str(int(m.get("layers_no_family_fits", 0) or 0))
        for col in [c for c in models.columns if c.startswith("median_")
                    and not c.startswith("median_ks_D_")]:
            row[col.replace("median_", "median ").replace("_", " ")] = _number(m[col])
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_families(models: pd.DataFrame) -> list[str]:
    """Families of the sweep, in fitting order (from the models' own records)."""
    out: dict[str, None] = {}
    for text in models.get("families", pd.Series(dtype=str)).tolist():
        out.update(dict.fromkeys(str(text).split(",")))
    return [f for f in out if f]


def options_text(options: dict[str, Any]) -> str:
    """``families=normal,laplace,t,gennorm, kinds=conv,linear, ...`` (jobs left out)."""
    def show(value: Any) -> str:
        return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)

    return "; ".join(f"{k}={show(v)}" for k, v in sorted(options.items()) if k != "jobs")
