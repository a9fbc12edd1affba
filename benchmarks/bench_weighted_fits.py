"""Time each family's weighted fit of a counted 16-bit tensor against its fit of the expanded one.

A 16-bit tensor's multiset is its histogram over bit patterns (issue 13): one ``np.bincount`` of
its ``uint16`` view gives at most 65,536 (value, count) pairs, and ``Family.fit_weighted`` fits
those. This draws 1e7 values of a t(6) (seeded), stores them as bfloat16 and as float16, counts
them, standardizes the distinct values as ``fit_tensor`` does, and for every registered family
that overrides ``fit_weighted`` (``counted_fit``) times, in the same run:

* **count**: ``np.bincount`` of the ``uint16`` view and the decode of the occupied patterns;
* **weighted**: ``fit_weighted(values, counts)``;
* **expanded**: ``fit(np.repeat(values, counts))``, today's path on the same standardized tensor;

and reports how far the two fits differ (log-likelihood relative; loc in units of the scale;
scale and shape relative). Best of ``--repeat`` runs for each time.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_weighted_fits.py --out benchmarks/weighted_fits.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import ml_dtypes
import numpy as np

from weightstats.fitting.families import FAMILIES
from weightstats.fitting.standardize import robust_center_spread


def counted(x16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct finite values (float64, ascending) and their counts, from the bit patterns."""
    hist = np.bincount(x16.view(np.uint16), minlength=1 << 16)
    patterns = np.flatnonzero(hist).astype(np.uint16)
    values = patterns.view(x16.dtype).astype(np.float64)
    order = np.argsort(values, kind="stable")
    values, counts = values[order], hist[patterns][order].astype(np.float64)
    keep = np.isfinite(values)
    values, counts = values[keep], counts[keep]
    # -0.0 and +0.0 are two patterns of one value.
    merged, first = np.unique(values, return_index=True)
    return merged, np.add.reduceat(counts, first)


def best_time(fn, repeat: int):
    out, best = None, np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=float, default=1e7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the Markdown table here too")
    args = parser.parse_args()
    n = int(args.n)
    x = np.random.default_rng(20261127).standard_t(6.0, n)
    lines = [f"# Weighted (counted) fits vs fits of the expanded tensor: {n:,} t(6) values",
             "", f"{platform.machine()}, {os.cpu_count()} CPUs (shared), best of {args.repeat}; "
             "`nice -n 10 .venv/bin/python benchmarks/bench_weighted_fits.py`", "",
             "| dtype | distinct | count ms | family | weighted ms | expanded ms | speed-up "
             "| loglik rel | loc/scale | scale rel | shape rel |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for dname, dtype in (("bfloat16", ml_dtypes.bfloat16), ("float16", np.float16)):
        x16 = x.astype(dtype)
        (values, counts), t_count = best_time(lambda x16=x16: counted(x16), args.repeat)
        top = max(abs(values[0]), abs(values[-1]))
        expanded = np.repeat(values, counts.astype(np.int64)) / top
        center, spread = robust_center_spread(expanded)
        expanded -= center
        expanded /= spread
        values = (values / top - center) / spread
        for name, fam in FAMILIES.items():
            if not fam.counted_fit:
                continue
            w, t_w = best_time(lambda f=fam, v=values, c=counts: f.fit_weighted(v, c), args.repeat)
            e, t_e = best_time(lambda f=fam, x=expanded: f.fit(x), max(1, args.repeat - 1))
            ll = abs(w.loglik[0] / e.loglik[0] - 1)
            loc = abs(w.loc[0] - e.loc[0]) / e.scale[0]
            scale = abs(w.scale[0] / e.scale[0] - 1)
            shape = abs(w.shape[0] / e.shape[0] - 1) if fam.shape_names else float("nan")
            lines.append(f"| {dname} | {values.size:,} | {1e3 * t_count:.1f} | {name} | "
                         f"{1e3 * t_w:.2f} | {1e3 * t_e:.1f} | {t_e / t_w:,.0f}x | {ll:.1e} | "
                         f"{loc:.1e} | {scale:.1e} | "
                         f"{shape:.1e} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
