"""LatentReport: the answer for one encoder and data set, as tables, JSON, and a saved folder."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from weightstats.fitting.result import _json_safe
from weightstats.latent.mvn import ALPHA

DIM_COLUMNS = ["dim", "active", "var_mu", "mean_posterior_var", "mean", "var", "std",
               "mean_z_pvalue", "var_pvalue", "prior_ks_stat", "prior_ks_pvalue", "kl",
               "kl_gauss", "skewness", "excess_kurtosis", "best_z", "best_z_ks_pvalue", "fit_z",
               "best_mu", "best_mu_ks_pvalue", "fit_mu", "n_iid", "n_draws"]
TEST_COLUMNS = ["test", "dims", "statistic", "df", "pvalue", "reject_5pct", "null", "method"]


def scaling_table(post: Any, rows: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    """Per-channel mean and std of the latents and the scaling factor they imply (1/std of all
    channels pooled, as latent diffusion's scaling_factor is defined), beside the config's."""
    means = np.array([r["mean"] for r in rows])
    variances = np.array([r["var"] for r in rows])
    pooled_mean = float(means.mean())
    pooled_std = float(math.sqrt((variances + (means - pooled_mean) ** 2).mean()))
    sf = config.get("scaling_factor")
    shift = config.get("shift_factor")
    per_channel = []
    for i, r in enumerate(rows):
        item = {"channel": r["dim"], "mean": r["mean"], "std": r["std"],
                "implied_scale": 1 / r["std"] if r["std"] > 0 else math.inf}
        if sf is not None:
            item["scaled_mean"] = (r["mean"] - (shift or 0.0)) * sf
            item["scaled_std"] = r["std"] * sf
        for key in ("latents_mean", "latents_std"):
            if isinstance(config.get(key), list) and i < len(config[key]):
                item[f"config_{key}"] = config[key][i]
        per_channel.append(item)
    out = {"per_channel": per_channel, "pooled_mean": pooled_mean, "pooled_std": pooled_std,
           "implied_scaling_factor": 1 / pooled_std if pooled_std > 0 else math.inf,
           "config": dict(config)}
    if shift is not None:
        out["implied_shift_factor"] = pooled_mean
    return out


@dataclass(frozen=True)
class LatentSummary:
    """The answer of a latent report, shaped like a model report's summary: ``.text`` (and
    ``str()``) the one sentence, ``.info`` the numbers behind it (report.json's "summary")."""

    info: dict[str, Any]

    @property
    def text(self) -> str:
        return self.info["sentence"]

    @property
    def consistent_with_prior(self) -> bool:
        return bool(self.info["consistent_with_prior"])

    def __str__(self) -> str:
        return self.text


def _without_histogram(fit: dict[str, Any]) -> dict[str, Any]:
    """A fit's JSON without its histogram (the figures draw the draws themselves)."""
    return {k: v for k, v in fit.items() if k != "histogram"}


@dataclass
class LatentReport:
    """Aggregate-posterior statistics of one encoder on one data set; see :meth:`save`."""

    model: str
    spec: str
    description: str
    data: str
    unit: str
    n_inputs: int
    n_rows: int
    samples: int
    families: tuple[str, ...]
    options: dict[str, Any]
    rows: list[dict[str, Any]]
    fits: dict[int, dict[str, Any]]
    multivariate: dict[str, Any]
    scaling: dict[str, Any] | None
    notes: list[str]
    posterior: Any = field(default=None, repr=False)  # the draws, for the figures

    @classmethod
    def build(cls, *, enc: Any, post: Any, data_text: str, rows: list[dict[str, Any]],
              fits: dict[int, dict[str, Any]], multivariate: dict[str, Any],
              options: dict[str, Any], notes: list[str]) -> LatentReport:
        scaling = (scaling_table(post, rows, enc.scaling)
                   if enc.scaling or post.unit == "channel" else None)
        return cls(model=enc.name, spec=enc.spec, description=enc.description, data=data_text,
                   unit=post.unit, n_inputs=int(post.n_inputs), n_rows=int(post.mu.shape[0]),
                   samples=int(post.samples.shape[1]),
                   families=tuple(options["families"].split(",")), options=options, rows=rows,
                   fits=fits, multivariate=multivariate, scaling=scaling, notes=notes,
                   posterior=post)

    # ------------------------------------------------------------------ tables
    def table(self) -> pd.DataFrame:
        """One row per latent dimension (or channel)."""
        return pd.DataFrame(self.rows, columns=DIM_COLUMNS)

    def tests(self) -> pd.DataFrame:
        """The whole-latent tests, one row each, with Holm's family-wise decision."""
        tests = self.multivariate.get("tests") or []
        rows = [dict(t) for t in tests]
        for r in rows:
            r["reject_5pct"] = bool(r["pvalue"] < ALPHA) if not math.isnan(r["pvalue"]) else False
        return pd.DataFrame(rows, columns=TEST_COLUMNS)

    def family_table(self) -> pd.DataFrame:
        """Every family's fit to every active dimension: draws of q_d (z) and means mu_d(x)."""
        out = []
        for d, pair in sorted(self.fits.items()):
            for which, fit in pair.items():
                for r in fit.rows:
                    out.append({"dim": d, "values": which, "family": r["family"],
                                "loc": r["loc"], "scale": r["scale"], "shape": r["shape"],
                                "bic": r["bic"], "rank_bic": r.get("rank_bic"),
                                "ks_stat": r["ks_stat"], "ks_pvalue": r["ks_pvalue"],
                                "ks_n": r["ks_n"]})
        return pd.DataFrame(out, columns=["dim", "values", "family", "loc", "scale", "shape",
                                          "bic", "rank_bic", "ks_stat", "ks_pvalue", "ks_n"])

    # ------------------------------------------------------------------ the answer
    def summary(self) -> LatentSummary:
        """The answer: ``.text`` (``str()``) the sentence, ``.info`` the numbers behind it."""
        from weightstats.latent.text import answer

        info, sentence = answer(self)
        return LatentSummary({**info, "sentence": sentence})

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-safe (NaN and inf become None); the draws are not included."""
        summary = self.summary()
        info, sentence = summary.info, summary.text
        return _json_safe({
            "model": self.model, "spec": self.spec, "description": self.description,
            "data": self.data, "unit": self.unit, "n_inputs": self.n_inputs,
            "n_rows": self.n_rows, "samples": self.samples, "families": list(self.families),
            "options": self.options, "answer": sentence, "summary": info,
            "dimensions": self.rows,
            "fits": {str(d): {w: _without_histogram(f.to_dict()) for w, f in pair.items()}
                     for d, pair in sorted(self.fits.items())},
            "multivariate": self.multivariate, "scaling": self.scaling, "notes": self.notes,
        })

    def save(self, directory: str | os.PathLike[str],
             formats: tuple[str, ...] | list[str] = ("csv", "md", "json", "html", "png"), *,
             plots: bool = True) -> Path:
        """Write the report atomically into ``directory`` (as ModelReport.save) and return it."""
        from weightstats.latent.writer import write_latent_report

        return write_latent_report(self, directory, formats, plots=plots)
