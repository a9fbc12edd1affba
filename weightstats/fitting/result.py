"""TensorFit: the result of fitting one tensor, as tables (pandas) and as JSON-safe data."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .adequacy import assess as assess_adequacy
from .families import get_family

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
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
        """One row per family with the columns of the per-layer report tables."""
        return pd.DataFrame(self.rows, columns=FRAME_COLUMNS)

    def comparisons(self) -> pd.DataFrame:
        """Pairwise tests: Vuong (non-nested) or likelihood ratio (nested), one row per pair."""
        return pd.DataFrame(self.comparison_rows, columns=COMPARISON_COLUMNS)

    def params(self, family: str) -> dict[str, float]:
        """The named parameters of a fitted family (``loc``, ``scale``, then its shapes)."""
        name = get_family(family).name
        for row in self.rows:
            if row["family"] == name:
                fam = get_family(name)
                return dict(row.get("params") or zip(fam.param_names, (row["loc"], row["scale"],
                                                                      row["shape"]), strict=False))
        raise KeyError(f"family {family!r} was not fitted")

    def frozen(self, family: str):
        """The fit as a frozen scipy.stats-like distribution (pdf, cdf, ppf for plots and checks)."""
        return get_family(family).frozen(*self.params(family).values())

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-safe (NaN and ±Inf become None)."""
        counts, edges = self.histogram if self.histogram is not None else ([], [])
        return _json_safe({
            "status": self.status, "message": self.message, "n": self.n, "counts": self.counts,
            "shape_of_tensor": list(self.shape_of_tensor), "dtype": self.dtype,
            "options": self.options, "notes": self.notes, "descriptives": self.descriptives,
            "fits": self.rows, "comparisons": self.comparison_rows, "verdict": self.verdict,
            "histogram": {"counts": counts, "edges": edges},
            "atoms": self.atoms,
            "heterogeneity": self.heterogeneity, "path": self.path,
        })
