"""TensorFit: the result of fitting one tensor, as tables (pandas) and as JSON-safe data."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .adequacy import assess as assess_adequacy
from .families import get_family
from .flags import flag_codes

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

FRAME_COLUMNS = ["family", "n", "loc", "scale", "shape", "shape_ci_low", "shape_ci_high",
                 "shape_ci_method", "loglik",
                 "loglik_per_weight", "aic", "bic", "ks_stat", "ks_pvalue", "ks_pvalue_se",
                 "ks_pvalue_naive", "ks_n", "ks_stat_sub", "ad_stat", "ad_pvalue", "ad_pvalue_se",
                 "rank_aic", "rank_bic", "n_params", "flags"]
COMPARISON_COLUMNS = ["a", "b", "nested", "test", "statistic", "z", "pvalue", "favored",
                      "mean_llr_per_weight"]
_DESCRIPTIVE_KEYS = ["mean", "std", "skewness", "excess_kurtosis", "zero_fraction", "min", "max",
                    "atom_mass", "n_atoms"]


def _json_safe(value: Any) -> Any:
    """Plain JSON data: NaN becomes None, an infinite float the string "inf" (or "-inf")."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _from_json(value: Any) -> float:
    """A number read back from JSON: None is NaN, "inf"/"-inf" infinite."""
    if value is None:
        return float("nan")
    if isinstance(value, str):
        return float(value)  # "inf", "-inf" (what _json_safe writes)
    return value


def _label(name: Any) -> str:
    """A family's display name ("Student-t"); the name itself when not registered."""
    try:
        return get_family(str(name)).label
    except Exception:
        return str(name)


# The columns of a fit row that hold the first shape parameter or its interval.
SHAPE_COLUMNS = ("shape", "shape_ci_low", "shape_ci_high")


def _cap(family: str) -> float:
    """Where the family's first shape means infinity (a Student-t df at its cap is the Gaussian
    limit); inf for a family without such a cap or one no longer registered."""
    try:
        display = get_family(family).shape_display
    except Exception:
        return math.inf
    return display.infinite_from if display is not None else math.inf


def shown_row(row: dict[str, Any]) -> dict[str, Any]:
    """A fit row as the tables show it: a first shape (and interval end) at or beyond the family's
    cap is ``inf``, so arithmetic on the column is never silently wrong (a t df capped at 1e10
    would dominate any mean); the row's ``df_at_cap`` flag stays."""
    cap = _cap(row.get("family", ""))
    if math.isinf(cap):
        return row
    out = dict(row)
    for col in SHAPE_COLUMNS:
        value = out.get(col)
        if isinstance(value, float) and value >= cap:
            out[col] = math.inf
    params = out.get("params")
    if isinstance(params, dict) and params:
        name = get_family(out["family"]).shape_name
        if isinstance(params.get(name), float) and params[name] >= cap:
            out["params"] = {**params, name: math.inf}
    return out


def ranked(rows: list[dict], key: str) -> list[dict]:
    """Rows from best (lowest ``key``) to worst. Values equal to rounding (1e-9 relative: a
    one-component mixture is the Gaussian itself, its likelihood a hair apart) rank the simpler
    family first, then the one fitted first, so a family never wins by its optimizer's last bits."""
    def compare(a: dict, b: dict) -> int:
        va, vb = a[key], b[key]
        if math.isnan(va) or math.isnan(vb):  # a failed fit ranks last
            return math.isnan(va) - math.isnan(vb)
        if not abs(va - vb) <= 1e-9 * max(1.0, abs(va), abs(vb)):
            return -1 if va < vb else 1
        return (a["n_params"] > b["n_params"]) - (a["n_params"] < b["n_params"])
    return sorted(rows, key=functools.cmp_to_key(compare))


def _verdict(rows: list[dict], comparisons: list[dict]) -> dict[str, Any]:
    by_aic = ranked(rows, "aic")
    by_bic = ranked(rows, "bic")
    best, runner = by_aic[0]["family"], (by_aic[1]["family"] if len(by_aic) > 1 else None)
    verdict = {"best_aic": best, "best_bic": by_bic[0]["family"], "runner_up_aic": runner,
               "delta_aic": (by_aic[1]["aic"] - by_aic[0]["aic"]) if runner else float("nan"),
               "separated": False, "separation_test": None, "separation_pvalue": float("nan")}
    for c in comparisons:
        if {c["a"], c["b"]} == {best, runner}:
            verdict.update(separated=bool(c["pvalue"] < 0.05 and c["favored"] == best),
                           separation_test=c["test"], separation_pvalue=c["pvalue"])
    verdict.update(assess_adequacy(rows, verdict["best_bic"]))  # does the best family fit at all?
    return verdict


@dataclass
class TensorFit:
    """Fits of every family to one tensor; see ``to_frame`` and ``comparisons``."""

    status: str
    message: str
    n: int
    counts: dict[str, int]
    options: dict[str, Any]
    shape_of_tensor: tuple[int, ...] = ()
    dtype: str = ""
    notes: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    comparison_rows: list[dict[str, Any]] = field(default_factory=list)
    descriptives: dict[str, float] = field(default_factory=dict)
    histogram: tuple[np.ndarray, np.ndarray] | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    # Point masses found among the values (fitting.atoms.Atoms.summary); empty when none.
    atoms: dict[str, Any] = field(default_factory=dict)
    # Per tensor axis, how much slice scales differ (fitting.heterogeneity.scale_heterogeneity).
    heterogeneity: dict[str, Any] = field(default_factory=dict)
    # How the values were read: "counted" (distinct values of a <= 16-bit tensor and their counts,
    # fitting.counted) or "values" (every value, sorted); "" before any value was read.
    path: str = ""

    @classmethod
    def failed(cls, status: str, message: str, *, options, shape_of_tensor=(), dtype="", counts=None,
               notes=(), n=0) -> TensorFit:
        counts = counts or {"n_nan": 0, "n_posinf": 0, "n_neginf": 0}
        return cls(status, message, n, counts, options, shape_of_tensor, dtype, list(notes),
                   descriptives={k: float("nan") for k in _DESCRIPTIVE_KEYS})

    @classmethod
    def fitted(cls, *, rows, comparisons, descriptives, histogram, options, shape_of_tensor, dtype,
               counts, notes, n) -> TensorFit:
        for key in ("aic", "bic"):
            for rank, row in enumerate(ranked(rows, key), start=1):
                row[f"rank_{key}"] = rank
        return cls("ok", "", n, counts, options, shape_of_tensor, dtype, list(notes), rows,
                   comparisons, descriptives, histogram, _verdict(rows, comparisons))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def n_nonfinite(self) -> int:
        return int(sum(self.counts.values()))

    def to_frame(self) -> pd.DataFrame:
        """One row per family with the columns of the per-layer report tables (a shape at its
        cap reads ``inf``; ``flags`` are the full sentences, :func:`flag_codes` shortens them)."""
        return pd.DataFrame([shown_row(r) for r in self.rows], columns=FRAME_COLUMNS)

    def comparisons(self) -> pd.DataFrame:
        """Pairwise tests: Vuong (non-nested) or likelihood ratio (nested), one row per pair."""
        return pd.DataFrame(self.comparison_rows, columns=COMPARISON_COLUMNS)

    def params(self, family: str) -> dict[str, float]:
        """The named parameters of a fitted family (``loc``, ``scale``, then its shapes)."""
        name = get_family(family).name
        for row in self.rows:
            if row["family"] == name:
                fam = get_family(name)
                params = dict(row.get("params") or zip(fam.param_names, (row["loc"], row["scale"],
                                                                        row["shape"]), strict=False))
                # A shape stored as inf (a report read back from JSON) is the fit at its cap:
                # the density needs the finite value the fit ran to.
                if fam.shape_name and params.get(fam.shape_name) == math.inf:
                    params[fam.shape_name] = _cap(name)
                # In the family's order (frozen() passes them by position; report.json sorts keys).
                return {k: params[k] for k in fam.param_names if k in params}
        raise KeyError(f"family {family!r} was not fitted")

    def frozen(self, family: str):
        """The fit as a frozen scipy.stats-like distribution (pdf, cdf, ppf for plots and checks)."""
        return get_family(family).frozen(*self.params(family).values())

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-safe: NaN becomes None, an infinite value (a shape at its cap, an
        unbounded interval) the string "inf"; :meth:`from_dict` reads it back."""
        counts, edges = self.histogram if self.histogram is not None else ([], [])
        return _json_safe({
            "status": self.status, "message": self.message, "n": self.n, "counts": self.counts,
            "shape_of_tensor": list(self.shape_of_tensor), "dtype": self.dtype,
            "options": self.options, "notes": self.notes, "descriptives": self.descriptives,
            "fits": [shown_row(r) for r in self.rows], "comparisons": self.comparison_rows,
            "verdict": self.verdict,
            "histogram": {"counts": counts, "edges": edges},
            "atoms": self.atoms,
            "heterogeneity": self.heterogeneity, "path": self.path,
        })

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorFit:
        """The fit back from :meth:`to_dict`'s JSON form (numbers as saved: None is NaN, "inf"
        infinite). The raw weights are not in it: plots use the saved histogram."""
        def numbers(record: dict[str, Any], text: tuple[str, ...]) -> dict[str, Any]:
            return {k: (v if k in text or isinstance(v, bool | dict | list) else _from_json(v))
                    for k, v in record.items()}

        rows = [numbers(r, ("family", "shape_ci_method", "flags", "note")) for r in
                data.get("fits") or []]
        for row in rows:
            if isinstance(row.get("params"), dict):
                row["params"] = {k: _from_json(v) for k, v in row["params"].items()}
        comparisons = [numbers(c, ("a", "b", "test", "favored")) for c in
                       data.get("comparisons") or []]
        verdict = dict(data.get("verdict") or {})
        for key in ("delta_aic", "separation_pvalue"):
            if key in verdict:
                verdict[key] = _from_json(verdict[key])
        hist = data.get("histogram") or {}
        histogram = None
        if hist.get("edges"):
            histogram = (np.asarray(hist["counts"], dtype=np.int64),
                         np.asarray([_from_json(e) for e in hist["edges"]], dtype=float))
        return cls(
            status=data["status"], message=data.get("message", ""), n=int(data.get("n", 0)),
            counts=dict(data.get("counts") or {}), options=dict(data.get("options") or {}),
            shape_of_tensor=tuple(data.get("shape_of_tensor") or ()), dtype=data.get("dtype", ""),
            notes=list(data.get("notes") or []), rows=rows, comparison_rows=comparisons,
            descriptives={k: _from_json(v) for k, v in (data.get("descriptives") or {}).items()},
            histogram=histogram, verdict=verdict, atoms=dict(data.get("atoms") or {}),
            heterogeneity=dict(data.get("heterogeneity") or {}), path=data.get("path", ""))

    # ------------------------------------------------------------------ notebook views
    def overview(self) -> pd.DataFrame:
        """The few columns worth a glance, one row per family: shape, KS D and its valid
        p-value, log-likelihood per weight, ΔBIC to the best, flags as short codes."""
        rows = [shown_row(r) for r in self.rows]
        best = min((r["bic"] for r in rows if r["bic"] == r["bic"]), default=float("nan"))
        return pd.DataFrame(
            [{"family": r["family"], "shape": r["shape"], "ks_D": r["ks_stat"],
              "ks_p": r["ks_pvalue"], "loglik/weight": r["loglik_per_weight"],
              "ΔBIC": r["bic"] - best, "flags": flag_codes(r.get("flags"), r.get("note"))}
             for r in rows]).set_index("family")

    def headline(self) -> str:
        """One line: the tensor, its status, the best family by BIC and whether it fits."""
        shape = "x".join(str(s) for s in self.shape_of_tensor)
        where = f" ({shape} {self.dtype})".replace("( ", "(") if shape or self.dtype else ""
        head = f"TensorFit: {self.n:,} values{where}"
        if not self.ok:
            return f"{head}, {self.status}: {self.message}"
        v = self.verdict or {}
        fits = v.get("adequacy")
        return (f"{head}, best by BIC: {_label(v.get('best_bic'))}, "
                f"by AIC: {_label(v.get('best_aic'))}" + (f" ({fits})" if fits else ""))

    def __repr__(self) -> str:
        if not self.ok or not self.rows:
            return self.headline()
        with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 100):
            return f"{self.headline()}\n{self.overview().reset_index().to_string(index=False)}"

    def _repr_html_(self) -> str:
        from html import escape

        head = f"<p><b>{escape(self.headline())}</b></p>"
        if not self.ok or not self.rows:
            return head
        with pd.option_context("display.float_format", "{:.4g}".format):
            return head + self.overview().to_html()

    def plot(self, families: list[str] | None = None, title: str = "") -> Figure:
        """Histogram with every fitted density (log scale) beside a QQ plot against the best
        family by BIC; a ``matplotlib.figure.Figure`` (matplotlib loads on the first call).

        Parameters
        ----------
        families : list of str, optional
            The densities to draw (default: every fitted family).
        title : str
            Figure title (a layer name, say).
        """
        from .plot import tensor_figure

        return tensor_figure(self, families, title)
