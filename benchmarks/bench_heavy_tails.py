"""fit_model on a ResNet-50 whose layers carry trained-like heavy tails.

The speed target is set on the untrained network, whose layers are Gaussian. Trained layers are
heavier-tailed (generalized-normal shapes near 1, per-channel scales), which sends the gennorm
polish down its slower paths. This gives every conv/linear weight of ``torchvision.models.resnet50``
a gennorm shape drawn from [0.9, 1.7] and a log-normal scale per output channel (seeded), then
times ``fit_model`` with jobs=1 (best of ``--repeat``) and jobs=2, the untrained ResNet-50
(``"resnet50:none"``, defaults) with jobs=1 beside it, and the generalized normal's own share
(its fits replayed alone). Prints the fitted shapes' quartiles.

    .venv/bin/python benchmarks/bench_heavy_tails.py                    # ~2 min on 2 cores
    .venv/bin/python benchmarks/bench_heavy_tails.py --root /tmp/old    # time another checkout

``--root`` imports weightstats from another checkout (``git worktree add /tmp/old REV``), so a
before/after pair is two runs of this script on the same machine state; ``--out`` appends the
numbers as a Markdown table row to a file.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import stats


def heavy_tailed_resnet50(seed: int = 0):
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.resnet50()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim < 2:
                continue
            shape = rng.uniform(0.9, 1.7)
            x = stats.gennorm.rvs(shape, size=p.numel(), random_state=rng).reshape(p.shape)
            x *= np.exp(0.3 * rng.standard_normal((p.shape[0],) + (1,) * (p.ndim - 1)))
            p.copy_(torch.from_numpy((0.02 * x).astype(np.float32)))
    return model


def _timed(fn) -> tuple[float, float, object]:
    """Wall and CPU seconds of one call (CPU time is steadier on shared cores)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def _gennorm_share(model, weightstats) -> tuple[float, float]:
    """Wall and CPU seconds of the generalized normal's fits alone: fit_model's calls to
    ``GenNorm.fit`` are recorded, then replayed."""
    from weightstats.fitting.families import get_family

    fam = get_family("gennorm")
    cls, inputs = type(fam), []
    original = cls.fit

    def recording(self, x):
        inputs.append(x.copy())
        return original(self, x)

    cls.fit = recording
    try:
        weightstats.fit_model(model, families=("gennorm",), jobs=1)
    finally:
        cls.fit = original
    wall, cpu, _ = _timed(lambda: [fam.fit(x) for x in inputs])
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="import weightstats from this checkout")
    parser.add_argument("--repeat", type=int, default=3, help="jobs=1 runs; the best is kept")
    parser.add_argument("--out", help="append a Markdown table row here")
    parser.add_argument("--label", default="", help="the row's first cell")
    args = parser.parse_args()
    if args.root:
        sys.path.insert(0, args.root)
    import weightstats
    from weightstats.fitting import fit_tensor

    model = heavy_tailed_resnet50()
    fit_tensor(np.random.default_rng(0).standard_normal(1000))  # lazy imports, null tables
    heavy = [_timed(lambda: weightstats.fit_model(model, jobs=1)) for _ in range(args.repeat)]
    report = heavy[-1][2]
    jobs2 = _timed(lambda: weightstats.fit_model(model, jobs=2))
    plain = [_timed(lambda: weightstats.fit_model("resnet50:none", jobs=1))
             for _ in range(args.repeat)]
    share = _gennorm_share(model, weightstats)
    best = min(heavy, key=lambda t: t[1])
    best_plain = min(plain, key=lambda t: t[1])
    print(f"weightstats from {weightstats.__file__}")
    print(f"heavy-tailed fit_model(jobs=1): best wall {min(t[0] for t in heavy):.2f} s, "
          f"best CPU {best[1]:.2f} s")
    print(f"heavy-tailed fit_model(jobs=2): wall {jobs2[0]:.2f} s")
    print(f"heavy-tailed gennorm fits alone: wall {share[0]:.2f} s, CPU {share[1]:.2f} s")
    print(f"untrained fit_model(jobs=1): best wall {min(t[0] for t in plain):.2f} s, "
          f"best CPU {best_plain[1]:.2f} s")
    beta = report.wide()["gennorm_beta"]
    quartiles = np.round(np.percentile(beta, [0, 25, 50, 75, 100]), 2)
    print("fitted gennorm beta, quartiles:", quartiles)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(f"| {args.label} | {min(t[0] for t in heavy):.2f} | {best[1]:.2f} | "
                    f"{jobs2[0]:.2f} | {share[0]:.2f} | {share[1]:.2f} | "
                    f"{min(t[0] for t in plain):.2f} | {best_plain[1]:.2f} |\n")


if __name__ == "__main__":
    main()
