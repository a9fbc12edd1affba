"""The Student-t fit's own share of ``fit_tensor`` / ``fit_model``, replayed alone.

Records every call ``fit_tensor`` makes to ``StudentT.fit_weighted`` / ``StudentT.fit_rows`` (one
row: the fit of all values and the KS subsample's refit from it; the bootstrap's batches are not
recorded) on three workloads, then replays them and reports CPU time, best of ``--repeat``:

- bf16: four TinyLlama-shaped bfloat16 tensors of scaled t(6) weights (the counted path: the
  weighted fit of the distinct values, then the 5,000-value subsample refit), ms per tensor;
- heavy: the heavy-tailed ResNet-50 of ``bench_heavy_tails.py`` (float32, 25.5 M weights);
- plain: the untrained ResNet-50 (Gaussian-like layers, most t fits run to the df cap).

    .venv/bin/python benchmarks/bench_t_fit.py                  # ~1 min on 2 cores
    .venv/bin/python benchmarks/bench_t_fit.py --root /tmp/old  # another checkout, same inputs

``--out`` appends a Markdown table row (``--label`` its first cell). CPU time is the steadier
measure on shared cores; compare two checkouts in back-to-back runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

TINYLLAMA = [(2048, 2048), (256, 2048), (5632, 2048), (2048, 5632)]


def _record(run) -> list[tuple]:
    """The one-row t calls ``run()`` makes: (method, data, counts, start)."""
    from weightstats.fitting.families.student_t import StudentT

    calls, weighted, rows = [], StudentT.fit_weighted, StudentT.fit_rows

    def fit_weighted(self, values, counts, *, start=None):
        calls.append(("w", values.copy(), counts.copy(), start))
        return weighted(self, values, counts, start=start)

    def fit_rows(self, x, *, start=None):
        if x.shape[0] == 1:
            calls.append(("r", x.copy(), None, start))
        return rows(self, x, start=start)

    StudentT.fit_weighted, StudentT.fit_rows = fit_weighted, fit_rows
    try:
        run()
    finally:
        StudentT.fit_weighted, StudentT.fit_rows = weighted, rows
    return calls


def _replay(calls: list[tuple], repeat: int) -> float:
    """Best CPU seconds of replaying ``calls``."""
    from weightstats.fitting.families import get_family

    fam = get_family("t")
    best = np.inf
    for _ in range(repeat):
        c0 = time.process_time()
        for kind, x, counts, start in calls:
            if kind == "w":
                fam.fit_weighted(x, counts, start=start)
            else:
                fam.fit_rows(x, start=start)
        best = min(best, time.process_time() - c0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="import weightstats from this checkout")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", help="append a Markdown table row here")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    if args.root:
        sys.path.insert(0, args.root)
    sys.path.insert(1, str(Path(__file__).resolve().parent))
    import torch
    from bench_heavy_tails import heavy_tailed_resnet50

    import weightstats
    from weightstats.fitting import fit_tensor

    rng = np.random.default_rng(0)
    tensors = [torch.from_numpy((0.02 / np.sqrt(1.5) * rng.standard_t(6, s)).astype(np.float32))
               .to(torch.bfloat16) for s in TINYLLAMA]
    bf16 = _record(lambda: [fit_tensor(t) for t in tensors])
    weighted = [c for c in bf16 if c[0] == "w"]
    refits = [c for c in bf16 if c[0] == "r"]
    heavy = _record(lambda: weightstats.fit_model(heavy_tailed_resnet50(), jobs=1))
    plain = _record(lambda: weightstats.fit_model("resnet50:none", jobs=1))
    ms_w = 1e3 * _replay(weighted, 4 * args.repeat) / len(weighted)
    ms_r = 1e3 * _replay(refits, 4 * args.repeat) / len(refits)
    s_heavy, s_plain = _replay(heavy, args.repeat), _replay(plain, args.repeat)
    print(f"weightstats from {weightstats.__file__}")
    print(f"bf16 (counted) fit_weighted: {ms_w:.2f} ms per tensor; subsample refit: {ms_r:.2f} ms")
    print(f"heavy-tailed ResNet-50 t fits ({len(heavy)} calls): {s_heavy:.3f} s CPU")
    print(f"untrained ResNet-50 t fits ({len(plain)} calls): {s_plain:.3f} s CPU")
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(f"| {args.label} | {ms_w:.2f} | {ms_r:.2f} | {s_heavy:.3f} | {s_plain:.3f} |\n")


if __name__ == "__main__":
    main()
