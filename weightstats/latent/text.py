"""The one-sentence answer of a latent report, and its Markdown page."""

from __future__ import annotations

import math
from typing import Any

from weightstats.latent.mvn import ALPHA, holm
from weightstats.report.text import family_label, markdown_table

TEST_LABELS = {
    "mardia_skewness": "Mardia skewness", "mardia_kurtosis": "Mardia kurtosis",
    "henze_zirkler": "Henze–Zirkler", "sphere_rayleigh": "Rayleigh (mean direction)",
    "sphere_bingham": "Bingham (axial)", "standard_normal_moments": "mean 0, covariance I (LR)",
    "correlation_identity": "correlation = I (Bartlett)", "radius_chi2": "|z|² ~ χ²(d) (KS)",
}

READING = [
    "q(z) is the aggregate posterior: the average over the data of each input's posterior "
    "q(z|x). A VAE's KL term pulls each q(z|x) towards the prior N(0, I); the data's q(z) "
    "matches the prior only if the encoder spreads the inputs that way.",
    "Tests use one draw z ~ q(z|x) per input, so their draws are independent draws of q(z); "
    "the other draws per input sharpen the moments, the KL estimate and the figures.",
    "Active units (Burda et al. 2016): Var_x E[z_d|x] above the threshold. A collapsed "
    "dimension ignores its input (q(z_d|x) ≈ the prior for every x); it is reported, its "
    "families are not fitted.",
    "prior_ks_pvalue: one-sample KS against N(0, 1), which has no fitted parameter, so the "
    "p-value is exact. Mardia, Henze–Zirkler and the mixture run on the active dimensions (all "
    "when fewer than two are active); mean/covariance, correlation and radius tests on all.",
    "The answer's 'is / is not N(0, I)' is Holm's family-wise decision at 5% over every "
    "per-dimension prior KS test and every whole-latent test.",
]


def pfmt(p: float) -> str:
    """A p-value for a sentence."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p n/a"
    return "p < 1e-4" if p < 1e-4 else f"p = {p:.2g}" if p < 0.01 else f"p = {p:.2f}"


def answer(rep: Any) -> tuple[dict[str, Any], str]:
    """(the numbers, the sentence) of a LatentReport."""
    rows = rep.rows
    active = [r for r in rows if r["active"]]
    tests = {t["test"]: t for t in rep.multivariate.get("tests") or []}
    pvals = [r["prior_ks_pvalue"] for r in rows] + [t["pvalue"] for t in tests.values()]
    rejected = holm(pvals)
    is_prior = not any(rejected)
    reject_dims = [r["dim"] for r in active if r["prior_ks_pvalue"] < ALPHA]
    mix = rep.multivariate.get("mixture")
    best_z = [r["best_z"] for r in active if r["best_z"]]
    info = {"n_dims": len(rows), "n_active": len(active), "active_dims": [r["dim"] for r in active],
            "prior_reject_active_dims": reject_dims, "consistent_with_prior": is_prior,
            "holm_rejections": int(sum(rejected)), "n_tests": len(pvals),
            "mixture_k": mix["k_best"] if mix else None,
            "best_family_counts": {f: best_z.count(f) for f in dict.fromkeys(best_z)},
            "kl_total": float(sum(r["kl"] for r in rows)), "reading": READING}
    unit = "channels" if rep.unit == "channel" else "dimensions"
    head = (f"The aggregate posterior of {rep.model} "
            + ("is consistent with N(0, I)" if is_prior else "is not N(0, I)"))
    parts = [f"{len(active)} of {len(rows)} {unit} active"
             + (f", {len(reject_dims)} of them reject N(0, 1) (KS, 5%)" if active else "")]
    if tests:
        shape = ", ".join(f"{TEST_LABELS[k].split(' (')[0]} {pfmt(tests[k]['pvalue'])}"
                          for k in ("mardia_skewness", "mardia_kurtosis", "henze_zirkler")
                          if k in tests)
        parts.append(shape)
    if mix and mix["k_best"] > 1:
        parts.append(f"a Gaussian mixture with K = {mix['k_best']} beats one Gaussian by ΔBIC = "
                     f"{mix['delta_bic_vs_1']:.0f}")
    elif mix and mix["k_max_tried"] > 1:
        upto = mix["k_max_tried"]
        parts.append("by BIC one Gaussian beats " + ("a mixture of 2" if upto == 2 else
                                                     f"mixtures of 2 to {upto}"))
    if "sphere_rayleigh" in tests:
        ray, bing = tests["sphere_rayleigh"]["pvalue"], tests["sphere_bingham"]["pvalue"]
        if ray >= ALPHA and bing >= ALPHA:
            parts.append(f"directions z/|z| look uniform (Rayleigh {pfmt(ray)}, Bingham "
                         f"{pfmt(bing)})")
        else:
            parts.append("directions z/|z|: "
                         + ("a preferred direction" if ray < ALPHA else "no preferred direction")
                         + f" (Rayleigh {pfmt(ray)}), "
                         + ("axial structure" if bing < ALPHA else "no axial structure")
                         + f" (Bingham {pfmt(bing)})")
    if rep.scaling:
        s = rep.scaling
        stds = [c["std"] for c in s["per_channel"]]
        txt = (f"per-channel std {min(stds):.3g}–{max(stds):.3g}, implied scaling factor "
               f"{s['implied_scaling_factor']:.4g}")
        if s["config"].get("scaling_factor") is not None:
            txt += f" vs config {s['config']['scaling_factor']:.5g}"
        if "implied_shift_factor" in s:
            txt += (f", implied shift {s['implied_shift_factor']:.4g} vs config "
                    f"{s['config']['shift_factor']:.4g}")
        parts.append(txt)
    sentence = head + ": " + "; ".join(parts) + "."
    return info, sentence


def markdown_page(rep: Any) -> str:
    """summary.md: the answer, the per-dimension table, the whole-latent tests, the scales."""
    summary = rep.summary()
    info, sentence = summary.info, summary.text
    lines = [f"# weightstats latent: {rep.model}", "", f"**{sentence}**", "",
             f"Spec `{rep.spec}` — {rep.description}. Data: {rep.data}. "
             f"{rep.n_rows} rows × {rep.samples} draws.", ""]
    table = rep.table()
    cols = ["dim", "active", "var_mu", "mean", "std", "prior_ks_pvalue", "kl", "kl_gauss",
            "best_z", "fit_z", "best_mu"]
    shown = table[cols].copy()
    for col in ("best_z", "best_mu"):
        shown[col] = [family_label(v) if v else "" for v in shown[col]]
    lines += [f"## Per {rep.unit}", "", markdown_table(shown), ""]
    tests = rep.tests()
    if len(tests):
        tests = tests.assign(test=[TEST_LABELS.get(t, t) for t in tests["test"]])
        lines += ["## The whole latent", "", markdown_table(tests[["test", "dims", "statistic",
                                                                   "df", "pvalue", "null"]]), ""]
    mix = rep.multivariate.get("mixture")
    if mix:
        bics = ", ".join(f"K={k}: {b:.1f}" for k, b in enumerate(mix["bic"], start=1))
        lines += [f"Gaussian mixtures by BIC ({mix['method']}): {bics}; best K = "
                  f"{mix['k_best']}.", ""]
    if rep.scaling:
        import pandas as pd

        s = rep.scaling
        lines += ["## Per-channel scale", "", markdown_table(pd.DataFrame(s["per_channel"])), "",
                  f"Pooled mean {s['pooled_mean']:.4g}, pooled std {s['pooled_std']:.4g}: "
                  f"implied scaling factor 1/std = {s['implied_scaling_factor']:.5g}"
                  + (f" (config scaling_factor {s['config']['scaling_factor']:.5g})"
                     if s["config"].get("scaling_factor") is not None else "") + ".", ""]
    from weightstats.latent.dims import KL_METHOD

    lines += ["## How to read this", ""] + [f"- {t}" for t in info["reading"]]
    lines += [f"- KL: {KL_METHOD.format(c=2000, m=4000)}."]
    lines += [f"- {n}" for n in rep.notes] + [""]
    return "\n".join(lines)
