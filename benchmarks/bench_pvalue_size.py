"""Size at nominal 5% of the valid KS and Anderson-Darling p-values, at full scale.

Each case draws independent tensors from the null (the family that is fitted, at a fixed true
parameter), fits that family alone with ``fit_tensor``'s default options and a different seed per
draw, and counts p < 0.05. With the shipped 10,000-replicate null tables the size should be within
0.01 of 0.05; the binomial standard error of each rate is printed beside it. The CI version with
fewer draws is ``tests/test_stats_pvalues.py::test_valid_pvalues_hold_their_size_at_5_percent``.

    nice -n 10 .venv/bin/python benchmarks/bench_pvalue_size.py              # 2,000 draws per case
    nice -n 10 .venv/bin/python benchmarks/bench_pvalue_size.py --cases 3,7  # some cases again

Writes benchmarks/pvalue_size.md and keeps each case's numbers in pvalue_size.json beside it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
from scipy import stats

# (label, family fitted, true shape, tensor size). The four sizes from the issue come first; the
# 20,000-value tensors test the 5,000-value subsample drawn by position.
CASES = [
    ("normal n=300", "normal", None, 300),
    ("laplace n=2000", "laplace", None, 2000),
    ("laplace n=5000", "laplace", None, 5000),
    ("t df=3 n=2000", "t", 3.0, 2000),
    ("normal n=50", "normal", None, 50),
    ("normal n=20000 (subsample 5000)", "normal", None, 20000),
    ("laplace n=150 (subsample 100)", "laplace", None, 150),
    ("t df=6 n=5000", "t", 6.0, 5000),
    ("gennorm beta=1.5 n=1000", "gennorm", 1.5, 1000),
    ("gennorm beta=0.8 n=5000", "gennorm", 0.8, 5000),
]


def _draw(family: str, shape: float | None, n: int, rng: np.random.Generator) -> np.ndarray:
    if family == "normal":
        return rng.normal(0.3, 1.7, n)
    if family == "laplace":
        return rng.laplace(-0.2, 0.6, n)
    if family == "t":
        return 0.05 * rng.standard_t(shape, n)
    return stats.gennorm.rvs(shape, scale=0.02, size=n, random_state=rng)


def _one(task: tuple[int, int]) -> tuple[int, float, float]:
    from weightstats.fitting import fit_tensor

    case, r = task
    _, family, shape, n = CASES[case]
    x = _draw(family, shape, n, np.random.default_rng([20261127, case, r]))
    row = fit_tensor(x, families=(family,), seed=r).to_frame().iloc[0]
    return case, float(row.ks_pvalue), float(row.ad_pvalue)


def _table(results: dict[str, dict]) -> list[str]:
    from weightstats.fitting.nulltables import DEFAULT_REPLICATES

    lines = ["# Size of the valid KS and Anderson-Darling p-values at nominal 5%", "",
             "`benchmarks/bench_pvalue_size.py`: each case fits the true family alone to independent "
             f"null tensors with default options (null tables of {DEFAULT_REPLICATES:,} replicates, KS "
             "subsample 5,000), seed = draw index, and counts p < 0.05. SE is the binomial standard "
             "error of the rate, sqrt(0.05 * 0.95 / draws). Target: |size - 0.05| <= 0.01.", "",
             "| case | draws | KS size | AD size | SE | KS within 0.01 | AD within 0.01 | seconds |",
             "|---|---:|---:|---:|---:|:---:|:---:|---:|"]
    for label, *_ in CASES:
        r = results.get(label)
        if r is None:
            lines.append(f"| {label} | not run | | | | | | |")
            continue
        se = float(np.sqrt(0.05 * 0.95 / r["draws"]))
        lines.append(f"| {label} | {r['draws']} | {r['ks']:.4f} | {r['ad']:.4f} | {se:.4f} | "
                     f"{'yes' if abs(r['ks'] - 0.05) <= 0.01 else 'NO'} | "
                     f"{'yes' if abs(r['ad'] - 0.05) <= 0.01 else 'NO'} | {r['seconds']:.0f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cases", default="", help="comma list of case numbers (0-based); default all")
    parser.add_argument("--out", default=str(Path(__file__).with_name("pvalue_size.md")))
    args = parser.parse_args(argv)
    chosen = [int(c) for c in args.cases.split(",") if c.strip()] or list(range(len(CASES)))
    # Results of earlier runs are kept beside the table, so cases can be (re)run separately.
    store = Path(args.out).with_suffix(".json")
    results = json.loads(store.read_text()) if store.exists() else {}
    for c in chosen:
        t0 = time.perf_counter()
        with multiprocessing.Pool(args.jobs) as pool:
            p = np.array([(pk, pa) for _, pk, pa in
                          pool.imap(_one, [(c, r) for r in range(args.draws)], chunksize=20)])
        ks, ad = (p < 0.05).mean(axis=0)
        results[CASES[c][0]] = {"draws": args.draws, "ks": float(ks), "ad": float(ad),
                                "seconds": time.perf_counter() - t0}
        print(f"{CASES[c][0]}: KS {ks:.4f}, AD {ad:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        store.write_text(json.dumps(results, indent=1) + "\n")
        Path(args.out).write_text("\n".join(_table(results)) + "\n")
    print("\n".join(_table(results)))


if __name__ == "__main__":
    main()
