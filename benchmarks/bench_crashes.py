"""Crash and finiteness sweep of fit_tensor over many small valid tensors (issue 11 item 5).

Every draw is a valid numeric layer, so every fit must return (status "ok" or a reason) with a
finite log-likelihood for each family that fitted; an exception is a crash.

    .venv/bin/python benchmarks/bench_crashes.py --out benchmarks/crashes.md  # full size, ~25 min
    .venv/bin/python benchmarks/bench_crashes.py --scale 0.1    # quick look
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_robust_properties import small_layer  # noqa: E402  (the property test's mix)
from weightstats.fitting import fit_tensor  # noqa: E402

KS = {"ks_sample": 500, "ks_replicates": 99}


def _linear8(seed: int) -> np.ndarray:
    """Default-initialized nn.Linear(8, 8) weight: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(8), 1/sqrt(8))."""
    import torch

    torch.manual_seed(seed)
    return torch.nn.Linear(8, 8).weight.detach().numpy().copy()


SETS = {
    "nn.Linear(8, 8) default init": (_linear8, 500),
    "Gaussian n=256": (lambda s: np.random.default_rng(s).standard_normal(256), 3000),
    "Gaussian n=1024": (lambda s: np.random.default_rng(s).standard_normal(1024), 3000),
    "Gaussian n=64": (lambda s: np.random.default_rng(s).standard_normal(64), 3000),
    "uniform(-0.35, 0.35) n=30": (lambda s: np.random.default_rng(s).uniform(-.35, .35, 30), 3000),
    "mixed laws, n=30..5000 (tests: small_layer)": (small_layer, 3000),
}


def run(scale: float, only: str = "") -> list[str]:
    lines = ["| set | tensors | crashes | non-finite loglik | failed families | seconds |",
             "|---|---:|---:|---:|---:|---:|"]
    examples = []
    for name, (make, count) in SETS.items():
        if only and only not in name:
            continue
        count = max(1, int(count * scale))
        crashes = nonfinite = failed = 0
        t0 = time.perf_counter()
        for seed in range(count):
            x = make(seed)
            try:
                fit = fit_tensor(x, **KS)
            except Exception as exc:  # the point of the sweep: count anything that escapes
                crashes += 1
                if len(examples) < 10:
                    examples.append(f"- {name} seed {seed}: "
                                    f"{traceback.format_exception_only(exc)[-1].strip()}")
                continue
            if fit.status != "ok":
                continue
            frame = fit.to_frame()
            bad = frame["flags"].astype(str).str.contains("fit_failed")
            failed += int(bad.sum())
            nonfinite += int((~np.isfinite(frame.loc[~bad, "loglik"].to_numpy(float))).sum())
        lines.append(f"| {name} | {count} | {crashes} | {nonfinite} | {failed} | "
                     f"{time.perf_counter() - t0:.0f} |")
        print(lines[-1], flush=True)
    return lines + [""] + (["First crashes:"] + examples if examples else ["No crashes."])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", default="", help="run the sets whose name contains this")
    args = parser.parse_args()
    text = "\n".join(["# fit_tensor crash sweep", "", *run(args.scale, args.only), ""])
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
