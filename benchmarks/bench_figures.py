"""Figure rendering time and size of a report's PNGs (the CLI draws them after the table).

Usage: python benchmarks/bench_figures.py [SPEC ...]   (default: digits-vae resnet18:none)
Fits each model once (small KS settings: the figures do not depend on them), then renders every
figure three times and prints the best wall time, the number of files and their total size.
"""

from __future__ import annotations

import sys
import time

from weightstats.api import fit_model
from weightstats.report import figures


def main(specs: list[str]) -> None:
    for spec in specs:
        rep = fit_model(spec, ks_sample=500, ks_replicates=99)
        best, pngs = float("inf"), []
        for _ in range(3):
            start = time.perf_counter()
            pngs = list(figures.render_all(rep))
            best = min(best, time.perf_counter() - start)
        size = sum(len(d) for _, d in pngs)
        print(f"{spec}: {len(rep.layers)} layers, {len(pngs)} figures, {size / 1e6:.2f} MB, "
              f"{best:.2f} s (dpi {figures.DPI})")


if __name__ == "__main__":
    main(sys.argv[1:] or ["digits-vae", "resnet18:none"])
