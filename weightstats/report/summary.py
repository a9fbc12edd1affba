"""The answer: which family fits best, in how many layers and what share of the weights."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from weightstats.report.model_report import LayerResult, ModelReport

AIC_CAVEAT = (
    "AIC picks the larger of two nested families (normal within Student-t and generalized "
    "normal, Laplace within generalized normal) about 16% of the time when the smaller one is "
    "true; BIC is consistent, so the headline uses BIC."
)
NOTES = (
    AIC_CAVEAT,
    "KS p-values (`ks_pvalue`) are parametric-bootstrap (Lilliefors-type) p-values computed on a "
    "random subsample of `ks_n` weights, because the parameters were fitted on the same data; "
    "`ks_pvalue_naive` is scipy's asymptotic p-value, which assumes known parameters and is "
    "therefore too large (invalid) after fitting. It is kept only for comparison.",
    "Too big to fail: with millions of weights every test rejects every family. Read the effect "
    "sizes - KS distance D, log-likelihood per weight, excess kurtosis, Student-t df, "
    "generalized-normal beta (2 = Gaussian, 1 = Laplace) - rather than the p-values.",
    "Weights are not i.i.d.: values within one convolution filter or row are correlated, so "
    "p-values that assume independence overstate the evidence.",
    "Laplace and Student-t are scale mixtures of Gaussians: pooling output channels with "
    "different scales makes a tensor look heavy-tailed even when every channel is Gaussian. "
    "`--per-channel` standardizes each output channel before fitting to separate the two.",
)


def _counts(layers: list[LayerResult], key: str, families: tuple[str, ...]) -> dict[str, Any]:
    """Per family: number of layers where it wins under ``key`` and their share of weights."""
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


def pct(share: float) -> str:
    """Percent without misleading rounding: 0.3% is "<1%", 99.7% is ">99%"."""
    if 0 < share < 0.005:
        return "<1%"
    if 0.995 <= share < 1:
        return ">99%"
    return f"{share:.0%}"


def sentence(counts: dict[str, Any], families: tuple[str, ...], n_layers: int,
             criterion: str) -> str:
    """``"Laplace fits best (BIC) in 41 of 54 layers (83% of weights); Student-t in 13 ..."``."""
    from weightstats.report.model_report import family_label

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
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    return float(np.median(arr)) if arr.size else None


def build_summary(report: ModelReport) -> dict[str, Any]:
    """Assemble the summary dict of :meth:`ModelReport.summary`."""
    families = tuple(report.families)
    ok = report.ok_layers
    n_fit = len(ok)
    by = {key: _counts(ok, f"best_{key}", families) for key in ("bic", "aic")}
    main = sentence(by["bic"], families, n_fit, "bic")
    aic = sentence(by["aic"], families, n_fit, "aic")
    not_fitted = Counter(lr.fit.status for lr in report.layers if lr.fit.status != "ok")
    if not_fitted:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(not_fitted.items()))
        main = main[:-1] + f" (not fitted: {skipped})."

    groups: dict[str, Any] = {}
    names = sorted({lr.group for lr in ok if lr.group})
    if len(names) >= 2:
        for g in names:
            members = [lr for lr in ok if lr.group == g]
            counts = _counts(members, "best_bic", families)
            groups[g] = {
                "n_layers": len(members),
                "n_weights": sum(int(lr.fit.n) for lr in members),
                "bic": counts,
                "sentence": f"{g}: " + sentence(counts, families, len(members), "bic"),
            }

    wide = report.wide()
    medians: dict[str, Any] = {}
    if len(wide):
        okw = wide[wide["status"] == "ok"]
        medians = {
            "t_df": _median(okw["t_df"].tolist()),
            "gennorm_beta": _median(okw["gennorm_beta"].tolist()),
            "excess_kurtosis": _median(okw["excess_kurtosis"].tolist()),
        }
        for fam in families:
            medians[f"ks_D_{fam}"] = _median(okw[f"ks_D_{fam}"].tolist())
    return {
        "criterion": "bic",
        "model": report.model,
        "n_layers": len(report.layers),
        "n_fitted": n_fit,
        "n_weights": sum(int(lr.fit.n) for lr in ok),
        "by_criterion": by,
        "winner_bic": _order(by["bic"], families)[0] if n_fit else None,
        "groups": groups,
        "not_fitted": dict(sorted(not_fitted.items())),
        "medians": medians,
        "sentence": main,
        "aic_sentence": aic,
        "aic_caveat": AIC_CAVEAT,
        "notes": list(NOTES),
    }
