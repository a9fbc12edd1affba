"""Full-size checks behind tests/test_stats_atoms.py and tests/test_stats_per_channel.py (issue 10,
items 4 and 6).

Writes a Markdown report (default ``benchmarks/atoms_channels.md``) with

1. the per-channel view on depthwise (512, 1, 3, 3) Gaussian tensors (each channel with its own
   mean and scale) and on i.i.d. t(4) tensors of shape (64, 3, 3, 3): best family by BIC, the
   normal KS test's rejection rate at 5%, and beside it the old view (each channel standardized
   by its own mean and std, then pooled);
2. false atoms on continuous float32 tensors of 2M values (share of tensors with any atom), the
   zero mass and verdict on Gaussian tensors with 30% exact zeros, and the truncated fits of 70%
   magnitude-pruned Gaussian and t(4) tensors.

Usage: ``nice -n 10 .venv/bin/python benchmarks/bench_atoms_channels.py [--reps 200] [--out FILE]``
(a few minutes at the default size).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

import weightstats
from weightstats.fitting.atoms import find_atoms


def _old_view(x: np.ndarray) -> np.ndarray:
    rows = x.reshape(x.shape[0], -1)
    return ((rows - rows.mean(1, keepdims=True)) / rows.std(1, keepdims=True)).ravel()


def _depthwise(r: int) -> np.ndarray:
    rng = np.random.default_rng([161, r])
    scale = rng.lognormal(-3.0, 0.7, (512, 1, 1, 1))
    return rng.normal(0.0, 0.01, (512, 1, 1, 1)) + scale * rng.standard_normal((512, 1, 3, 3))


def _t4(r: int) -> np.ndarray:
    return np.random.default_rng([164, r]).standard_t(4, (64, 3, 3, 3))


def _per_channel(make, reps: int) -> list[str]:
    lines = ["| view | best by BIC | gennorm wins with beta > 2 | normal KS rejects at 5% | "
             "KS of the normal p-values vs U(0,1) |", "|---|---|---|---|---|"]
    for view in ("exact scores (now)", "own mean/std (before)"):
        best, flat, rejected, pvalues = Counter(), 0, 0, []
        for r in range(reps):
            x = make(r)
            fit = (weightstats.fit_tensor(x, per_channel=True) if view.startswith("exact")
                   else weightstats.fit_tensor(_old_view(x)))
            frame = fit.to_frame().set_index("family")
            winner = fit.verdict["best_bic"]
            best[winner] += 1
            flat += winner == "gennorm" and frame.loc["gennorm", "shape"] > 2
            p = frame.loc["normal", "ks_pvalue"]
            pvalues.append(p)
            rejected += p < 0.05
        counts = ", ".join(f"{k} {v}" for k, v in best.most_common())
        lines.append(f"| {view} | {counts} | {flat} of {reps} | {rejected} of {reps} "
                     f"({rejected / reps:.1%}) | p = {stats.kstest(pvalues, 'uniform').pvalue:.3g} |")
    return lines


def _atoms(reps: int) -> list[str]:
    lines = ["| case | tensors | with any atom | note |", "|---|---|---|---|"]
    makers = {
        "N(0,1) float64 -> float32, 2M": lambda g: g.standard_normal(2_000_000).astype(np.float32),
        "N(0,1) float32 ziggurat, 2M": lambda g: g.standard_normal(2_000_000, dtype=np.float32),
        "0.02 t(3) float32, 2M": lambda g: (0.02 * g.standard_t(3, 2_000_000)).astype(np.float32),
        "0.02 N(0,1) float16, 2M": lambda g: (0.02 * g.standard_normal(2_000_000)).astype(np.float16),
    }
    for name, make in makers.items():
        hits = 0
        for r in range(reps):
            x = make(np.random.default_rng([170, r]))
            hits += bool(find_atoms(np.sort(x), str(x.dtype)))
        lines.append(f"| {name} | {reps} | {hits} | continuous: expected ~0 (bound: 0.001 each) |")
    masses, winners = [], Counter()
    for r in range(min(reps, 50)):
        g = np.random.default_rng([171, r])
        x = g.standard_normal((512, 512)).astype(np.float32)
        x[g.random(x.shape) < 0.3] = 0.0
        fit = weightstats.fit_tensor(x)
        masses.append(fit.descriptives["atom_mass"] - float(np.mean(x == 0)))
        winners[fit.verdict["best_bic"]] += 1
    lines.append(f"| N(0,1) (512, 512) + 30% zeros | {len(masses)} | {len(masses)} | best by BIC: "
                 f"{dict(winners)}; atom mass - zero share: max abs {np.abs(masses).max():.1e} |")
    for law, draw, shape_of in (("N(0,1)", lambda g, s: g.standard_normal(s), "gennorm"),
                                ("t(4)", lambda g, s: g.standard_t(4, s), "t")):
        winners, shapes, scales = Counter(), [], []
        for r in range(min(reps, 10)):
            g = np.random.default_rng([172, r])
            x = draw(g, (512, 512)).astype(np.float32)
            x[np.abs(x) < np.quantile(np.abs(x), 0.7)] = 0.0
            fit = weightstats.fit_tensor(x)
            winners[fit.verdict["best_bic"]] += 1
            shapes.append(list(fit.params(shape_of).values())[2])
            scales.append(fit.params("t" if law == "t(4)" else "normal")["scale"])
        lines.append(f"| {law} (512, 512), 70% magnitude-pruned (truncated fits) | {len(shapes)} | "
                     f"{len(shapes)} | best by BIC: {dict(winners)}; {shape_of} shape "
                     f"{min(shapes):.3f}-{max(shapes):.3f}, scale {min(scales):.3f}-{max(scales):.3f} "
                     "(true: 2 / 4, scale 1) |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--out", default=str(Path(__file__).with_name("atoms_channels.md")))
    args = parser.parse_args()
    t0 = time.perf_counter()
    out = ["# Atoms and the per-channel view (issue 10, items 4 and 6)", "",
           f"`benchmarks/bench_atoms_channels.py --reps {args.reps}`", "",
           "## Depthwise (512, 1, 3, 3) Gaussian, per-channel", "", *_per_channel(_depthwise, args.reps),
           "", "## i.i.d. t(4), (64, 3, 3, 3), per-channel", "", *_per_channel(_t4, args.reps), "",
           "## Atoms", "", *_atoms(max(args.reps // 10, 5)), "",
           f"Run time: {time.perf_counter() - t0:.0f} s.", ""]
    Path(args.out).write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
