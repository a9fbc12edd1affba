"""Full-size checks behind tests/test_stats_adequacy.py (issue 10, "No family fits: say so").

Writes a Markdown report (default ``benchmarks/adequacy.md``) with

1. the false-alarm rate of "no family fits" on tensors drawn from the fitted families themselves
   (Gaussian, t(5), Laplace, gennorm(1.5)) at several sizes;
2. the half-trained layer of the issue and a channel scale mixture: D, A^2/n, verdict, and the
   per-axis heterogeneity statistics;
3. the size of the heterogeneity test (share of i.i.d. tensors with p < 0.01, and with an axis
   called "differs") for light- and heavy-tailed laws;
4. the sandwich standard error of log(shape) against a nonparametric bootstrap on a misspecified
   sample, beside the Wald one.

Usage: ``nice -n 10 .venv/bin/python benchmarks/bench_adequacy.py [--reps 200] [--out FILE]``
(about 10 minutes on two busy cores at the default size; ``--reps 20`` for a quick look).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_stats_adequacy import SHAPE, half_trained  # noqa: E402

from weightstats import fit_tensor  # noqa: E402
from weightstats.fitting.adequacy import AD_MIN, ALPHA, D_MIN, robust_log_shape_se  # noqa: E402
from weightstats.fitting.families import get_family  # noqa: E402
from weightstats.fitting.heterogeneity import scale_heterogeneity  # noqa: E402

DRAWS = {
    "Gaussian": lambda rng, n: rng.standard_normal(n),
    "t(5)": lambda rng, n: rng.standard_t(5, n),
    "Laplace": lambda rng, n: rng.laplace(size=n),
    "gennorm(1.5)": lambda rng, n: stats.gennorm.rvs(1.5, size=n, random_state=rng),
}


def _best(fit) -> dict:
    return next(r for r in fit.rows if r["family"] == fit.verdict["best_bic"])


def _ad_per_value(row: dict) -> float:
    a2 = row.get("ad_stat")
    return float(a2) / row["ks_n"] if a2 is not None and a2 == a2 else float("nan")


def false_alarms(reps: int) -> list[str]:
    lines = ["## 1. False alarms of \"no family fits\" on the families' own draws", "",
             f"Thresholds: D >= {D_MIN}, A^2/n >= {AD_MIN}, valid p < {ALPHA}.", "",
             "| law | n | tensors | no family fits | fits approximately | max best-family D |",
             "|---|---|---|---|---|---|"]
    for name, draw in DRAWS.items():
        for n, r in ((300, reps), (1000, reps), (5000, reps), (100_000, max(5, reps // 10))):
            rng = np.random.default_rng([7, n, len(name)])
            verdicts, ds = [], []
            for i in range(r):
                fit = fit_tensor(draw(rng, n), seed=i)
                verdicts.append(fit.verdict["adequacy"])
                ds.append(_best(fit)["ks_stat"])
            lines.append(f"| {name} | {n:,} | {r} | {verdicts.count('no family fits')} | "
                         f"{verdicts.count('fits approximately')} | {max(ds):.4f} |")
    return lines + [""]


def _het_rows(het: dict) -> list[str]:
    return [f"| {a['axis']} | {a['slices']} | {a['slice_size']} | {a['log_scale_sd']:.3f} | "
            f"{a['null_sd']:.3f} | {a['excess_sd']:.3f} | {a['q_stat']:.1f} (df {a['df']}) | "
            f"{a['pvalue']:.2g} | {a['i2']:.3f} | {'yes' if a['differs'] else 'no'} |"
            for a in het["axes"]]


def test_layers() -> list[str]:
    rng = np.random.default_rng(7)
    mixture = rng.standard_normal(SHAPE) * np.exp(rng.normal(0.0, 0.4, (SHAPE[0], 1, 1, 1)))
    lines = ["## 2. The test layers", ""]
    for label, x in (("half-trained (corner taps U(-c, c), centre cross 30c t(2))", half_trained()),
                     ("channel scale mixture (Gaussian, SD of log scale 0.4 across output "
                      "channels)", mixture)):
        t0 = time.perf_counter()
        fit = fit_tensor(x, seed=0)
        elapsed = time.perf_counter() - t0
        lines += [f"### {label}", "", f"fit_tensor {elapsed:.2f} s; verdict: "
                  f"**{fit.verdict['adequacy']}** ({fit.verdict['adequacy_reason']}); scales "
                  f"differ by: {fit.heterogeneity['summary']}", "",
                  "| family | KS D | KS p | A^2 (subsample) | A^2/n | AD p | shape | shape 95% CI | "
                  "CI method |", "|---|---|---|---|---|---|---|---|---|"]
        for r in fit.rows:
            ci = (f"[{r['shape_ci_low']:.4g}, {r['shape_ci_high']:.4g}]"
                  if r["shape_ci_low"] == r["shape_ci_low"] else "")
            lines.append(f"| {r['family']} | {r['ks_stat']:.4f} | {r['ks_pvalue']:.3g} | "
                         f"{r.get('ad_stat', float('nan')):.4g} | {_ad_per_value(r):.4g} | "
                         f"{r.get('ad_pvalue', float('nan')):.3g} | {r['shape']:.4g} | {ci} | "
                         f"{r['shape_ci_method']} |")
        lines += ["", "| axis | slices | values/slice | SD log scale | i.i.d. SD | excess SD | "
                  "Q | p | I^2 | differs |", "|---|---|---|---|---|---|---|---|---|---|"]
        lines += _het_rows(fit.heterogeneity) + [""]
    return lines


def heterogeneity_size(reps: int) -> list[str]:
    lines = ["## 3. Heterogeneity test on i.i.d. tensors (size)", "",
             "| law | shape | axis | tensors | p < 0.01 | p < 0.05 | \"differs\" |",
             "|---|---|---|---|---|---|---|"]
    laws = {"Gaussian": lambda r, s: r.standard_normal(s), "t(2)": lambda r, s: r.standard_t(2, s),
            "Cauchy": lambda r, s: r.standard_cauchy(s), "uniform": lambda r, s: r.uniform(-1, 1, s)}
    for name, draw in laws.items():
        for shape in (SHAPE, (512, 512)):
            rng = np.random.default_rng([11, len(name), len(shape)])
            per_axis: dict[str, list[tuple[float, bool]]] = {}
            for _ in range(reps):
                for a in scale_heterogeneity(draw(rng, shape))["axes"]:
                    per_axis.setdefault(a["axis"], []).append((a["pvalue"], a["differs"]))
            for axis, vals in per_axis.items():
                p = np.array([v[0] for v in vals])
                lines.append(f"| {name} | {'x'.join(map(str, shape))} | {axis} | {len(p)} | "
                             f"{np.mean(p < 0.01):.3f} | {np.mean(p < 0.05):.3f} | "
                             f"{sum(v[1] for v in vals)} |")
    return lines + [""]


def sandwich_vs_bootstrap(reps: int) -> list[str]:
    rng = np.random.default_rng(3)
    x = np.r_[rng.uniform(-1, 1, 50_000), 0.5 * rng.standard_t(2, 50_000)]
    lines = ["## 4. Sandwich vs bootstrap standard error of log(shape), misspecified sample", "",
             "100,000 values: half U(-1, 1), half 0.5 t(2).", "",
             "| family | shape | Wald SE | sandwich SE | bootstrap SD | bootstrap reps |",
             "|---|---|---|---|---|---|"]
    for family in ("t", "gennorm"):
        fam = get_family(family)
        xs = np.sort(x)
        fit = fam.fit(xs)
        se = robust_log_shape_se(family, xs, float(fit.loc[0]), float(fit.scale[0]),
                                 float(fit.shape[0]))
        boot = [math.log(float(fam.fit(np.sort(rng.choice(x, x.size))).shape[0]))
                for _ in range(reps)]
        lines.append(f"| {family} | {float(fit.shape[0]):.4g} | {float(fit.log_shape_se[0]):.4g} | "
                     f"{se:.4g} | {np.std(boot, ddof=1):.4g} | {reps} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("adequacy.md"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    lines = ["# Adequacy, heterogeneity and robust intervals (benchmarks/bench_adequacy.py)", "",
             f"`--reps {args.reps}`.", ""]
    lines += test_layers()
    lines += false_alarms(args.reps)
    lines += heterogeneity_size(args.reps)
    lines += sandwich_vs_bootstrap(max(20, args.reps // 2))
    lines += [f"Total {time.perf_counter() - t0:.0f} s.", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
