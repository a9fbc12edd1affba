"""The answer: which family fits best, in how many layers and what share of the weights."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from weightstats.fitting.adequacy import THRESHOLDS
from weightstats.fitting.compare import AIC_NOTE
from weightstats.fitting.heterogeneity import describe_where
from weightstats.report.layer import LayerResult
from weightstats.report.text import displayed, family_label, pct, shape_column, shape_phrase
from weightstats.text import natural_key

AIC_CAVEAT = f"{AIC_NOTE}; BIC is consistent, so the headline uses BIC."
ATOMS_NOTE = (
    "Atoms: a value repeated far more often than a continuous law allows at the storage precision "
    "(exact zeros first) is a point mass with its own weight; the families are fitted to the other "
    "values and their log-likelihoods include the point masses (the same term for every family, "
    "so comparisons are unchanged). In magnitude-pruned layers (exact zeros and no value with "
    "|w| < c) the families are fitted to the survivors as laws truncated to |w| >= c (no KS "
    "p-value: adequacy untested); quantized layers (nearly all values on a few levels) are "
    "described, not fitted."
)
ADEQUACY_NOTE = (
    "Ranking families never says whether the best one fits. A layer is marked \"no family fits\" "
    "when every family, the best by BIC included, misfits beyond an effect size that does not grow "
    "with the number of weights (KS D >= {d_min:g}, or Anderson-Darling A^2/n >= {ad_per_value_min:g}) and the "
    "matching valid p-value is below {alpha:g}. Such layers are counted apart in the answer and left "
    "out of the medians; their shape intervals are sandwich (robust) ones, or omitted. \"Scales "
    "differ by\" names the tensor axis (output channel, input channel, kernel position) along which "
    "slice scales differ beyond i.i.d. sampling noise."
).format(**THRESHOLDS)
EFFECT_SIZES_NOTE = (
    "Too big to fail: with millions of weights every test rejects every family. Read the effect "
    "sizes - KS distance D, log-likelihood per weight, excess kurtosis{shapes} - rather than the "
    "p-values."
)
NOTES = (
    AIC_CAVEAT,
    "KS p-values (`ks_pvalue`) are parametric-bootstrap (Lilliefors-type) p-values computed on a "
    "random subsample of `ks_n` weights, because the parameters were fitted on the same data; "
    "`ks_pvalue_naive` is scipy's asymptotic p-value, which assumes known parameters and is "
    "therefore too large (invalid) after fitting. It is kept only for comparison.",
    EFFECT_SIZES_NOTE,
    "Weights are not i.i.d.: values within one convolution filter or row are correlated, so "
    "p-values that assume independence overstate the evidence.",
    "Laplace and Student-t are scale mixtures of Gaussians: pooling output channels with "
    "different scales makes a tensor look heavy-tailed even when every channel is Gaussian. "
    "`--per-channel` separates the two: each output channel's own mean and scale are removed "
    "exactly (Helmert contrasts, sequentially studentized, mapped to Gaussian scores), so a "
    "tensor whose every channel is Gaussian gives i.i.d. N(0, 1) scores at any fan-in.",
    ATOMS_NOTE,
    ADEQUACY_NOTE,
)


def notes(families: Sequence[str]) -> list[str]:
    """The notes of a report, the effect sizes naming the fitted families' shape parameters."""
    shapes = shape_phrase(families)
    return [n.format(shapes=f", {shapes}" if shapes else "") if n is EFFECT_SIZES_NOTE else n
            for n in NOTES]


def adequate(lr: LayerResult) -> bool:
    """False only for a fitted layer whose verdict says that no family fits."""
    return bool((lr.fit.verdict or {}).get("adequate", True))


def no_fit_summary(misfits: list[LayerResult], total: int) -> dict[str, Any]:
    """The layers where no family fits: count, weights, and each one's reason and axis."""
    weights = sum(int(lr.fit.n) for lr in misfits)
    return {
        "n_layers": len(misfits), "weights": weights,
        "weight_share": (weights / total) if total else 0.0,
        "layers": [{"layer": lr.name,
                    "reason": (lr.fit.verdict or {}).get("adequacy_reason", ""),
                    "scales_differ_by": describe_where(getattr(lr.fit, "heterogeneity", {}) or {})}
                   for lr in misfits],
        "thresholds": dict(THRESHOLDS),
    }


def _no_fit_sentence(info: dict[str, Any], n_fit_layers: int) -> str:
    """``"No family fits 2 other layers (3% of weights): a, b."``; empty when there are none."""
    k = info["n_layers"]
    if not k:
        return ""
    names = [m["layer"] for m in info["layers"]]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    other = "other " if n_fit_layers else ""
    return (f"No family fits {k} {other}layer{'s' if k != 1 else ''} "
            f"({pct(info['weight_share'])} of weights): {shown}.")


def atom_lines(layers: list[LayerResult]) -> list[str]:
    """``"conv1: 30.0% exact zeros modelled as a point mass"``, one per layer with atoms
    (fitted ones from their atoms, pruned and quantized ones from their message)."""
    lines = []
    for lr in layers:
        atoms = getattr(lr.fit, "atoms", None) or {}
        if lr.fit.status in ("pruned", "quantized"):
            lines.append(f"{lr.name}: {lr.fit.message}")
        elif atoms.get("description"):
            lines.append(f"{lr.name}: {atoms['description']}")
    return lines


def _counts(layers: list[LayerResult], key: str, families: tuple[str, ...],
            total: int | None = None) -> dict[str, Any]:
    """Per family: number of layers where it wins under ``key`` and their share of weights
    (of ``total`` weights, by default those of ``layers``)."""
    if total is None:
        total = sum(int(lr.fit.n) for lr in layers)
    wins: Counter[str] = Counter()
    weights: Counter[str] = Counter()
    for lr in layers:
        best = (lr.fit.verdict or {}).get(key)
        if best is None:
            continue
        wins[best] += 1
        weights[best] += int(lr.fit.n)
    return {
        fam: {
            "layers": int(wins[fam]),
            "weights": int(weights[fam]),
            "weight_share": (weights[fam] / total) if total else 0.0,
        }
        for fam in families
    }


def _order(counts: dict[str, Any], families: tuple[str, ...]) -> list[str]:
    """Families by number of layers won, then share of weights, then fitting order."""
    return sorted(families, key=lambda f: (-counts[f]["layers"], -counts[f]["weights"],
                                           families.index(f)))


def sentence(counts: dict[str, Any], families: tuple[str, ...], n_layers: int,
             criterion: str) -> str:
    """``"Laplace fits best (BIC) in 41 of 54 layers (83% of weights); Student-t in 13 ..."``."""
    if n_layers == 0:
        return "No layer could be fitted."
    order = _order(counts, families)
    first, *rest = order
    c = counts[first]
    parts = [
        f"{family_label(first)} fits best ({criterion.upper()}) in {c['layers']} of "
        f"{n_layers} layers ({pct(c['weight_share'])} of weights)"
    ]
    for fam in rest:
        parts.append(f"{family_label(fam)} in {counts[fam]['layers']} "
                     f"({pct(counts[fam]['weight_share'])})")
    return "; ".join(parts) + "."


def _median(values: list[float]) -> float | None:
    """Median of the values that are not missing; a shape at its cap (inf) counts, as the
    largest value it is."""
    arr = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    return float(np.median(arr)) if arr.size else None


@dataclass(frozen=True)
class Summary:
    """The answer of a report: ``str(summary)`` / ``.text`` is the sentence (by BIC), ``.table``
    the per-family counts, ``.info`` everything (the "summary" of report.json).

    Attributes
    ----------
    info : dict
        ``{"criterion": "bic", "n_layers", "n_fitted", "n_weights", "by_criterion":
        {"bic": {family: {"layers", "weights", "weight_share"}}, "aic": ...}, "winner_bic",
        "groups", "not_fitted", "atoms", "no_family_fits", "medians", "sentence",
        "aic_sentence", "aic_caveat", "notes"}``; a copy, free to change.
    """

    info: dict[str, Any]

    @property
    def text(self) -> str:
        """One sentence answering the question, by BIC (consistent for nested families)."""
        return self.info["sentence"]

    @property
    def aic_text(self) -> str:
        """The same sentence by AIC (see ``info["aic_caveat"]``)."""
        return self.info["aic_sentence"]

    @property
    def winner(self) -> str | None:
        """The family that fits best (BIC) in the most layers; None when none was fitted."""
        return self.info.get("winner_bic")

    @property
    def n_layers(self) -> int:
        return int(self.info["n_layers"])

    @property
    def n_fitted(self) -> int:
        return int(self.info["n_fitted"])

    @property
    def n_weights(self) -> int:
        return int(self.info["n_weights"])

    @property
    def table(self) -> pd.DataFrame:
        """One row per family: layers won and share of the fitted weights, by BIC and by AIC."""
        by = self.info["by_criterion"]
        return pd.DataFrame(
            [{"family": fam, "label": family_label(fam),
              **{f"{what}_{key}": by[key][fam][what] for key in ("bic", "aic")
                 for what in ("layers", "weights", "weight_share")}}
             for fam in by["bic"]],
            columns=["family", "label", "layers_bic", "weights_bic", "weight_share_bic",
                     "layers_aic", "weights_aic", "weight_share_aic"])

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of :attr:`info`."""
        return copy.deepcopy(self.info)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Summary({self.text!r})"

    def _repr_html_(self) -> str:
        from html import escape

        return f"<p><b>{escape(self.text)}</b></p>" + self.table.to_html(index=False)


def build_summary(model: str, layers: Sequence[LayerResult], families: tuple[str, ...],
                  wide: pd.DataFrame) -> dict[str, Any]:
    """Assemble the summary dict of :meth:`ModelReport.summary` from the report's layers and
    its wide table (:meth:`ModelReport.wide`)."""
    ok = [lr for lr in layers if lr.fit.status == "ok"]
    n_fit = len(ok)
    # Layers where no family fits are counted apart: a family's win there is not a finding.
    fitting = [lr for lr in ok if adequate(lr)]
    total = sum(int(lr.fit.n) for lr in ok)
    no_fit = no_fit_summary([lr for lr in ok if not adequate(lr)], total)
    by = {key: _counts(fitting, f"best_{key}", families, total) for key in ("bic", "aic")}
    main = sentence(by["bic"], families, len(fitting), "bic")
    aic = sentence(by["aic"], families, len(fitting), "aic")
    if no_fit["n_layers"]:
        apart = _no_fit_sentence(no_fit, len(fitting))
        main = apart if not fitting else f"{main} {apart}"
        aic = apart if not fitting else f"{aic} {apart}"
    not_fitted = Counter(lr.fit.status for lr in layers if lr.fit.status != "ok")
    if not_fitted:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(not_fitted.items()))
        main = main[:-1] + f" (not fitted: {skipped})."

    groups: dict[str, Any] = {}
    names = sorted({lr.group for lr in ok if lr.group}, key=natural_key)  # layer2 before layer10
    if len(names) >= 2:
        for g in names:
            in_group = [lr for lr in ok if lr.group == g]
            members = [lr for lr in in_group if adequate(lr)]
            n_weights = sum(int(lr.fit.n) for lr in in_group)
            counts = _counts(members, "best_bic", families, n_weights)
            text = sentence(counts, families, len(members), "bic")
            apart = _no_fit_sentence(no_fit_summary([lr for lr in in_group if not adequate(lr)],
                                                    n_weights), len(members))
            if apart:
                text = f"{text} {apart}" if members else apart
            groups[g] = {
                "n_layers": len(in_group),
                "n_weights": n_weights,
                "bic": counts,
                "sentence": f"{g}: {text}",
            }

    medians: dict[str, Any] = {}
    if len(wide):
        # Medians describe the layers that some family fits; the others' shapes mean nothing.
        okw = wide[(wide["status"] == "ok") & (wide["adequate"] != False)]  # noqa: E712
        medians = {shape_column(f): _median(okw[shape_column(f)].tolist())
                   for f in displayed(families)}
        medians["excess_kurtosis"] = _median(okw["excess_kurtosis"].tolist())
        for fam in families:
            medians[f"ks_D_{fam}"] = _median(okw[f"ks_D_{fam}"].tolist())
    return {
        "criterion": "bic",
        "model": model,
        "n_layers": len(layers),
        "n_fitted": n_fit,
        "n_weights": sum(int(lr.fit.n) for lr in ok),
        "by_criterion": by,
        "winner_bic": _order(by["bic"], families)[0] if n_fit else None,
        "groups": groups,
        "not_fitted": dict(sorted(not_fitted.items())),
        "atoms": atom_lines(layers),
        "no_family_fits": no_fit,
        "medians": medians,
        "sentence": main,
        "aic_sentence": aic,
        "aic_caveat": AIC_CAVEAT,
        "notes": notes(families),
    }
