"""``load_report``: a saved report.json back into a :class:`ModelReport`.

report.json holds every fit (parameters, tests, verdicts, the histogram), so a loaded report has the
same tables, answer and figures as the one that was saved: re-plot it, compare it with a new fit, or
save it again (the same bytes). The raw weights are not in it, so nothing is refitted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from weightstats.errors import LoadError
from weightstats.fitting.result import TensorFit
from weightstats.report.layer import LayerResult
from weightstats.report.model_report import ModelReport
from weightstats.report.summary import build_summary

REPORT_FILE = "report.json"


def _read(path: Path) -> dict[str, Any]:
    """The JSON of ``path`` (a report folder or its report.json), or a one-line LoadError."""
    file = path / REPORT_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoadError(f"{file}: no such file; give a report folder written by weightstats fit "
                        f"(it holds {REPORT_FILE}) or the {REPORT_FILE} itself") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{file}: not a readable weightstats report "
                        f"({type(exc).__name__}); write it again with weightstats fit") from None
    if not isinstance(data, dict):
        raise LoadError(f"{file}: not a weightstats report (no report object)")
    return data


def _model_data(data: dict[str, Any], where: Path, model: str | None) -> dict[str, Any]:
    """The one model's data: the report itself, or the named model of a comparison."""
    if data.get("weightstats_report") == 1:
        return data
    if data.get("weightstats_compare") == 1:
        models = [m for m in data.get("models") or [] if isinstance(m, dict)]
        names = [str(m.get("model")) for m in models]
        if model is None and len(models) == 1:
            return models[0]
        if model in names:
            return models[names.index(model)]
        raise LoadError(f"{where}: a comparison of {', '.join(names)}; choose one with "
                        f"load_report(path, model=NAME)")
    raise LoadError(f"{where}: not a weightstats fit report (no \"weightstats_report\": 1); "
                    "latent and sweep results are read with their own tools")


def report_from_dict(data: dict[str, Any]) -> ModelReport:
    """A :class:`ModelReport` from :meth:`ReportData.to_dict`'s data (report.json)."""
    layers = [
        LayerResult(name=str(entry["name"]), kind=str(entry.get("kind", "")),
                    group=str(entry.get("group", "")),
                    shape=tuple(int(s) for s in entry.get("shape") or ()),
                    dtype=str(entry.get("dtype", "")), index=int(entry.get("depth", i)),
                    fit=TensorFit.from_dict(entry["fit"]))
        for i, entry in enumerate(data.get("layers") or [])
    ]
    report = ModelReport(model=str(data["model"]), spec=str(data.get("spec", "")), layers=layers,
                         families=tuple(data.get("families") or ()),
                         options=dict(data.get("options") or {}),
                         description=str(data.get("description", "")))
    saved = data.get("summary")
    if isinstance(saved, dict):
        # The saved answer, as written: recomputing it from the rounded numbers could move a
        # median's last digit, and a loaded report saved again must give the same bytes.
        fresh = build_summary(report.model, report.layers, report.families, report.wide())
        report._cached("summary", lambda: _in_order_of(_infinities(saved), fresh))
    return report


def _in_order_of(saved: Any, fresh: Any) -> Any:
    """``saved`` with its dicts' keys in the order of ``fresh`` (report.json sorts keys; the
    Markdown lists medians and families in the order the report computes them)."""
    if not (isinstance(saved, dict) and isinstance(fresh, dict)):
        return saved
    keys = [k for k in fresh if k in saved] + [k for k in saved if k not in fresh]
    return {k: _in_order_of(saved[k], fresh.get(k)) for k in keys}


def _infinities(value: Any) -> Any:
    """JSON data with the "inf" / "-inf" strings report.json writes for infinite numbers (a
    median t df at its cap) back as floats."""
    if isinstance(value, dict):
        return {k: _infinities(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_infinities(v) for v in value]
    return float(value) if value in ("inf", "-inf") else value


def load_report(path: str | os.PathLike[str], *, model: str | None = None) -> ModelReport:
    """Read a saved report back: ``weightstats.load_report("reports/digits-vae")``.

    Parameters
    ----------
    path : str or os.PathLike
        A report folder (written by ``weightstats fit`` or :meth:`ModelReport.save`) or the
        report.json inside it; a comparison's folder too (``weightstats compare``).
    model : str, optional
        Which model of a comparison (its folder holds several); not needed for one model.

    Returns
    -------
    ModelReport
        The same tables (``table()``, ``wide()``, ``comparisons()``), answer (``summary()``) and
        figures (``plot_layer``, ``fit.plot()``) as the saved report; ``save`` writes it again.
        Numbers are as saved (10 significant digits).

    Raises
    ------
    LoadError
        No such file, or not a weightstats fit report.
    """
    where = Path(os.path.expanduser(os.fspath(path)))
    data = _model_data(_read(where), where, model)
    try:
        return report_from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LoadError(f"{where}: a damaged weightstats report ({type(exc).__name__}: {exc}); "
                        "write it again with weightstats fit") from None
