"""Gaussian scale mixture (``gsm``) at full size (tests/test_family_gsm.py runs fewer).

* K selection by BIC: in how many of 100 samples is the true K picked, for Gaussian data (K = 1)
  and well-separated scale mixtures (K = 2: 60/40% at scales 1:4; K = 3: 50/30/20% at 1:4:16),
  at n = 5,000 (the KS subsample's size, the hardest case) and n = 100,000.
* Recovery at n = 100,000: largest error over the runs of each weight, of each component scale
  (relative) and of loc (in units of the mixture's sd).
* Size of the parametric-bootstrap KS/AD p-values (199 refits): P(p <= 0.05) over tensors drawn
  from a fitted-like K = 2 mixture (nominal 0.05).
* Time of one ``fit_tensor(x, families=("gsm",))`` (fit, KS subsample fit, bootstrap) on 1e6 and
  2.4e6 values (a ResNet-like t(8) with channel scales), beside the default families, and of the
  54 tensors of an untrained ResNet-50 (whether gsm could be on by default: issue 12 item 4).

    nice .venv/bin/python benchmarks/bench_mixtures.py --out benchmarks/mixtures.md  # ~15 min
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from weightstats import fit_tensor  # noqa: E402
from weightstats.fitting.families import DEFAULT_FAMILIES, get_family  # noqa: E402
from weightstats.fitting.families.gsm import K_MAX  # noqa: E402

GSM = get_family("gsm")
CASES = {1: ((1.0,), (1.0,)), 2: ((0.6, 0.4), (1.0, 4.0)), 3: ((0.5, 0.3, 0.2), (1.0, 4.0, 16.0))}


def shapes(w, r) -> tuple[float, ...]:
    k = len(w)
    return (float(k), *w, *[0.0] * (K_MAX - k), *r, *[1.0] * (K_MAX - k))


def draw(rng, size, w, r) -> np.ndarray:
    return np.sort(GSM.standard_rvs(rng, size, *shapes(w, r)), axis=-1)


def k_selection(runs: int, n: int, seed: int) -> list[str]:
    lines = []
    for k, (w, r) in CASES.items():
        rng = np.random.default_rng([seed, n, k])
        picked = []
        t0 = time.process_time()
        for start in range(0, runs, max(1, 2_000_000 // n)):  # rows per call, memory-bound
            rows = min(runs - start, max(1, 2_000_000 // n))
            picked.append(GSM.fit_rows(draw(rng, (rows, n), w, r)).shape)
        got = np.concatenate(picked).astype(int)
        counts = np.bincount(got, minlength=K_MAX + 1)[1:]
        cpu = (time.process_time() - t0) / runs
        lines.append(f"| {k} | {n:,} | {runs} | **{(got == k).sum()}** | "
                     f"{' / '.join(map(str, counts))} | {cpu:.3f} |")
    return lines


def recovery(runs: int, n: int, seed: int) -> list[str]:
    lines = []
    for k, (w, r) in CASES.items():
        if k == 1:
            continue
        rng = np.random.default_rng([seed, n, k, 1])
        err_w, err_s, err_loc, wrong_k, unconverged = 0.0, 0.0, 0.0, 0, 0
        sd = math.sqrt(sum(wi * ri**2 for wi, ri in zip(w, r, strict=True)))
        for _ in range(runs):
            fit = GSM.fit(draw(rng, n, w, r))
            theta = GSM.theta(fit)
            if int(theta[2]) != k:
                wrong_k += 1
                continue
            unconverged += int(not fit.converged[0])
            f_w = np.array(theta[3:3 + k])
            f_s = theta[1] * np.array(theta[3 + K_MAX:3 + K_MAX + k])
            err_w = max(err_w, float(np.abs(f_w - w).max()))
            err_s = max(err_s, float(np.abs(f_s / np.array(r) - 1).max()))
            err_loc = max(err_loc, abs(theta[0]) / sd)
        lines.append(f"| {k} | {n:,} | {runs} | {err_w:.4f} | {100 * err_s:.2f}% | "
                     f"{err_loc:.4f} | {wrong_k} | {unconverged} |")
    return lines


def pvalue_size(tensors: int, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng([seed, n, 99])
    w, r = (0.7, 0.3), (1.0, 3.0)
    ks, ad = [], []
    t0 = time.process_time()
    for _ in range(tensors):
        x = GSM.standard_rvs(rng, (n,), *shapes(w, r))
        row = fit_tensor(x, families=("gsm",), seed=int(rng.integers(1 << 30))).rows[0]
        ks.append(row["ks_pvalue"])
        ad.append(row["ad_pvalue"])
    cpu = (time.process_time() - t0) / tensors
    ks, ad = np.array(ks), np.array(ad)
    se = math.sqrt(0.05 * 0.95 / tensors)
    return [f"| K = 2 (70/30%, 1:3) | {n:,} | {tensors} | {np.mean(ks <= 0.05):.3f} | "
            f"{np.mean(ad <= 0.05):.3f} | ±{se:.3f} | {cpu:.2f} |"]


def timings(seed: int) -> list[str]:
    lines = []
    rng = np.random.default_rng(seed)
    for n in (1_000_000, 2_359_296):
        channel = np.exp(rng.normal(0.0, 0.5, size=-(-n // 1000))).repeat(1000)[:n]
        x = (0.01 * rng.standard_t(8, n) * channel).astype(np.float32)
        for fams in (("gsm",), DEFAULT_FAMILIES):
            fit_tensor(x[:5000], families=fams)  # warm imports
            c0, t0 = time.process_time(), time.perf_counter()
            res = fit_tensor(x, families=fams)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            note = ""
            if fams == ("gsm",):
                row = res.rows[0]
                note = f"K = {int(row['params']['K'])}, KS p {row['ks_pvalue']:.3f}"
            lines.append(f"| {n:,} | {', '.join(fams)} | {wall:.2f} | {cpu:.2f} | {note} |")
    return lines


def resnet50_cost() -> list[str]:
    """CPU time of fit_tensor over the 54 conv/linear tensors of an untrained ResNet-50
    (torch.manual_seed(0), as bench_resnet50.py): the default families, gsm alone, and both."""
    try:
        import torch
        import torchvision
    except ImportError:
        return ["(torchvision not installed: skipped)"]
    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    tensors = [p.detach().numpy() for p in model.parameters() if p.ndim >= 2]
    lines = []
    for fams in (DEFAULT_FAMILIES, ("gsm",), (*DEFAULT_FAMILIES, "gsm")):
        c0 = time.process_time()
        fits = [fit_tensor(w, families=fams) for w in tensors]
        ks = [f.params("gsm")["K"] if "gsm" in fams else 0 for f in fits]
        cpu = time.process_time() - c0
        picks = (" / ".join(str(int(np.sum(np.array(ks) == k))) for k in range(1, K_MAX + 1))
                 if "gsm" in fams else "")
        lines.append(f"| {', '.join(fams)} | {len(tensors)} | {cpu:.1f} | {picks} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--recovery-runs", type=int, default=20)
    parser.add_argument("--size-tensors", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
    t0 = time.perf_counter()
    out = ["# Gaussian scale mixture (gsm): K selection, recovery, p-value size, time", "",
           "Made by `benchmarks/bench_mixtures.py` (2 shared CPU cores; wall times vary with "
           "the load, CPU times less).", "",
           "## K chosen by BIC (true K; picks of K = 1 / 2 / 3 / 4)", "",
           "K = 2: weights 60/40% at scales 1:4; K = 3: 50/30/20% at 1:4:16; K = 1: Gaussian.", "",
           "| true K | n | runs | right | picks 1 / 2 / 3 / 4 | CPU s per fit |",
           "|---|---|---|---|---|---|"]
    for n in (5000, 100_000):
        out += k_selection(args.runs, n, args.seed)
    out += ["", "## Recovery (largest error over the runs)", "",
            "| K | n | runs | weight (abs) | component scale (rel) | loc (sd units) | "
            "wrong K | not converged |", "|---|---|---|---|---|---|---|---|"]
    out += recovery(args.recovery_runs, 100_000, args.seed)
    out += ["", "## Size of the bootstrap p-values (nominal 0.05)", "",
            "| law | n | tensors | P(KS p <= 0.05) | P(AD p <= 0.05) | binomial se | CPU s per fit |",
            "|---|---|---|---|---|---|---|"]
    out += pvalue_size(args.size_tensors, 500, args.seed)
    out += ["", "## One fit_tensor (fit, KS-subsample fit, 199-refit bootstrap)", "",
            "t(8) values times per-channel scales exp(N(0, 0.5²)), 1,000 values per channel.", "",
            "| n | families | wall s | CPU s | gsm fit |", "|---|---|---|---|---|"]
    out += timings(args.seed)
    out += ["", "## Untrained ResNet-50, all 54 conv/linear tensors (25.5 M values)", "",
            "Kaiming-uniform initial weights are platykurtic; a scale mixture of Gaussians is "
            "always leptokurtic, so K = 1 is the right answer there.", "",
            "| families | tensors | CPU s | gsm K = 1 / 2 / 3 / 4 |", "|---|---|---|---|"]
    out += resnet50_cost()
    out += ["", f"Total {time.perf_counter() - t0:.0f} s."]
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
