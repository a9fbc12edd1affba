"""Full-size checks behind tests/test_counted_atoms.py (issue 13: the counted path's atoms).

Writes a Markdown report (default ``benchmarks/counted_atoms.md``) with

1. false atoms of the counted path on continuous bfloat16 and float16 t(6) tensors of 1 M and
   10 M values (the share of tensors with any atom or a pruning hole; the union bound allows
   ALPHA = 0.001 expected false atoms per tensor);
2. timings on one machine, in one run: ``take_atoms`` on the sorted tensor against
   ``take_atoms_counted`` on its (value, count) pairs, and the truncated fits of a 70%
   magnitude-pruned bfloat16 tensor from every value (the fit before the counted path) against
   ``fit_pruned_counted``, with the largest difference between the two fits.

Usage: ``nice -n 10 .venv/bin/python benchmarks/bench_counted_atoms.py [--reps 200] [--out FILE]``
(about two minutes at the default size).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from weightstats.fitting.atomfit import take_atoms, take_atoms_counted
from weightstats.fitting.atoms import ALPHA, find_atoms_counted
from weightstats.fitting.families import DEFAULT_FAMILIES
from weightstats.fitting.truncated import _fit_pruned, fit_pruned_counted


def _bits16(x: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, counts) of ``x`` stored as ``dtype``, by counting bit patterns as the
    counted path does (no sort)."""
    if dtype == "bfloat16":
        u = x.astype(np.float32).view(np.uint32)
        bits = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
        table = (np.arange(1 << 16, dtype=np.uint32) << 16).view(np.float32)
    else:
        bits = x.astype(np.float16).view(np.uint16)
        table = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    counts = np.bincount(bits, minlength=1 << 16)
    present = np.flatnonzero(counts)
    values = table[present].astype(np.float64) + 0.0
    order = np.argsort(values, kind="stable")
    values, counts = values[order], counts[present][order]
    distinct, start = np.unique(values, return_index=True)  # -0.0 and 0.0 are one value
    return distinct, np.add.reduceat(counts, start).astype(np.int64)


def _false_atoms(reps: int) -> list[str]:
    lines = ["| tensor | tensors | with atoms | with a pruning hole | mean time per tensor |",
             "|---|---|---|---|---|"]
    for dtype in ("bfloat16", "float16"):
        for n, r in ((1_000_000, reps), (10_000_000, max(reps // 10, 1))):
            found = holes = 0
            spent = 0.0
            for i in range(r):
                x = np.random.default_rng([131, n, i]).standard_t(6, n) * 0.02
                values, counts = _bits16(x, dtype)
                start = time.perf_counter()
                atoms = find_atoms_counted(values, counts, dtype)
                spent += time.perf_counter() - start
                found += bool(atoms)
                holes += atoms.pruned_c is not None
            lines.append(f"| t(6) x 0.02, {dtype}, {n:,} values | {r} | {found} | {holes} | "
                         f"{1e3 * spent / r:.1f} ms |")
    lines.append(f"\nExpected with atoms at most ALPHA = {ALPHA} per tensor (union bound).")
    return lines


def _timings() -> list[str]:
    n = 10_000_000
    rng = np.random.default_rng(132)
    x = rng.standard_t(6, n) * 0.02
    x[np.abs(x) < np.quantile(np.abs(x), 0.7)] = 0.0
    values, counts = _bits16(x, "bfloat16")
    xs = np.repeat(values, counts).astype(np.float32)  # sorted, as the float path holds it
    flat = xs[rng.permutation(n)]
    base = {"options": {}, "shape_of_tensor": (n,), "dtype": "bfloat16",
            "counts": {"n_nan": 0, "n_posinf": 0, "n_neginf": 0}, "notes": [], "n": n}
    names = list(DEFAULT_FAMILIES)

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start

    (atoms, rest, _, _), t_take = timed(lambda: take_atoms(xs, flat, "bfloat16", None, base, 30))
    (atoms_c, rv, rc, _), t_take_c = timed(
        lambda: take_atoms_counted(values, counts, "bfloat16", base, 30))
    every, t_fit = timed(lambda: _fit_pruned(rest, None, names, atoms, base, 200))
    counted, t_fit_c = timed(lambda: fit_pruned_counted(rv, rc, names, atoms_c, base, 200))
    gains = {a["family"]: b["loglik"] - a["loglik"]
             for a, b in zip(every.rows, counted.rows, strict=True)}
    par = max(abs(b["params"][k] / v - 1) for a, b in zip(every.rows, counted.rows, strict=True)
              for k, v in a["params"].items() if k != "loc")
    return [f"10 M bfloat16 values, 70% magnitude-pruned ({atoms_c.describe()}); "
            f"{values.size:,} distinct values, {rv.size:,} distinct survivors of {rc.sum():,}.",
            "", "| step | float path (every value) | counted path | ratio |", "|---|---|---|---|",
            f"| take_atoms | {t_take:.2f} s | {1e3 * t_take_c:.1f} ms | {t_take / t_take_c:.0f}x |",
            f"| truncated fits, {len(names)} families | {t_fit:.2f} s | {t_fit_c:.2f} s | "
            f"{t_fit / t_fit_c:.1f}x |", "",
            "Log-likelihood of the counted fit minus that of the fit to every value: "
            + ", ".join(f"{name} {gain:+.2g}" for name, gain in gains.items())
            + f"; parameters apart by up to {par:.1e} relative. Where they differ the counted "
            "fit is the higher: L-BFGS-B stops when an iteration gains less than 2.2e-9 of the "
            "log-likelihood, and on 3 M points that left the fit to every value short of the "
            "maximum. (``fit_pruned`` of a 16-bit tensor now fits the same runs as the counted "
            "path, so the two paths agree to the bit.)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("counted_atoms.md"))
    args = parser.parse_args()
    text = ["# Counted path: atoms and truncated fits (issue 13)", "",
            "Written by `benchmarks/bench_counted_atoms.py`; timings on the shared 2-core machine.",
            "", "## False atoms on continuous 16-bit tensors", "", *_false_atoms(args.reps), "",
            "## Float path against counted path", "", *_timings(), ""]
    args.out.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
