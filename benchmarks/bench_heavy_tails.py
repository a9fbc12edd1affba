"""fit_model on a ResNet-50 whose layers carry trained-like heavy tails.

The speed target is set on the untrained network, whose layers are Gaussian. Trained layers are
heavier-tailed (generalized-normal shapes near 1, per-channel scales), which sends the gennorm
polish down its slower paths. This gives every conv/linear weight of ``torchvision.models.resnet50``
a gennorm shape drawn from [0.9, 1.7] and a log-normal scale per output channel (seeded), then
times ``fit_model`` with jobs=1 and jobs=2 and prints the fitted shapes' quartiles.

    .venv/bin/python benchmarks/bench_heavy_tails.py        # ~1 min on 2 cores
"""

from __future__ import annotations

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


def main() -> None:
    import weightstats
    from weightstats.fitting import fit_tensor

    model = heavy_tailed_resnet50()
    fit_tensor(np.random.default_rng(0).standard_normal(1000))  # lazy imports, null tables
    for jobs in (1, 2):
        t0 = time.perf_counter()
        report = weightstats.fit_model(model, jobs=jobs)
        print(f"fit_model(jobs={jobs}): {time.perf_counter() - t0:.2f} s")
    beta = report.wide()["gennorm_beta"]
    print("fitted gennorm beta, quartiles:", np.round(np.percentile(beta, [0, 25, 50, 75, 100]), 2))


if __name__ == "__main__":
    main()
