"""Benchmark ``weightstats sweep`` (issue 14): speed-up from 1 to 2 Dask workers, and the cost
of one task.

8 generated models (~2 M float32 weights each: three 256x256x3x3 convolutions and a 512x512
linear layer, Student-t values with a different df per model) in safetensors files in a temp
folder. Each LocalCluster (processes, one thread each) is started and its workers' imports
warmed before the clock starts; the sweep then writes every model's report (csv, json) and the
zoo tables. Also timed: the same 8 fits with ``fit_model`` in one process (no Dask), and the
per-task overhead from 24 one-tensor models of 1,000 weights (sweep on 1 worker minus
``fit_model`` in-process, per model). The zoo tables of the 1- and 2-worker runs are compared
byte for byte.

    .venv/bin/python benchmarks/bench_sweep.py            # writes benchmarks/sweep.md (~3 min)
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = 8
TINY = 24
REPEATS = 3


def write_models(folder: Path) -> list[str]:
    from safetensors.numpy import save_file

    paths = []
    for i in range(MODELS):
        rng = np.random.default_rng(100 + i)
        df = 3.0 + 3 * i
        tensors = {f"block{j}.conv.weight": (rng.standard_t(df, (256, 256, 3, 3)) * 0.02)
                   .astype(np.float32) for j in range(3)}
        tensors["head.weight"] = (rng.standard_t(df, (512, 512)) * 0.01).astype(np.float32)
        path = folder / f"gen{i}.safetensors"
        save_file(tensors, str(path))
        paths.append(str(path))
    return paths


def write_tiny(folder: Path) -> list[str]:
    from safetensors.numpy import save_file

    paths = []
    for i in range(TINY):
        rng = np.random.default_rng(1000 + i)
        path = folder / f"tiny{i}.safetensors"
        save_file({"fc.weight": rng.standard_normal((10, 100)).astype(np.float32)}, str(path))
        paths.append(str(path))
    return paths


def warm() -> None:
    import weightstats.api  # noqa: F401
    import weightstats.fitting  # noqa: F401
    import weightstats.sweep.tasks  # noqa: F401


def start_cluster(workers: int, specs: list[str]) -> tuple[object, object, float]:
    """A LocalCluster as `weightstats sweep` starts it, imports warmed; (cluster, client,
    seconds to start and warm)."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    import weightstats
    from weightstats.sweep.cluster import WORKER_ENVIRON

    t0 = time.perf_counter()
    with dask.config.set(WORKER_ENVIRON):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL)
    client = Client(cluster, set_as_default=False)
    client.run(warm)
    # One small sweep so that each worker has resolved a file and fitted once.
    weightstats.sweep(specs[:workers], client=client, out=None, plots=False)
    return cluster, client, time.perf_counter() - t0


def sweep_once(client: object, specs: list[str], out: Path) -> float:
    """Wall seconds of one sweep into a fresh ``out`` (reports as csv+json, zoo tables)."""
    import shutil

    import weightstats

    if out.exists():
        shutil.rmtree(out)
    t = time.perf_counter()
    weightstats.sweep(specs, client=client, out=out, formats=("csv", "json"), plots=False)
    return time.perf_counter() - t


def timed_sweeps(specs: list[str], folder: Path) -> dict[int, tuple[float, float]]:
    """{workers: (start seconds, best sweep wall)} for 1 and 2 workers, runs interleaved
    (1, 2, 1, 2, ...) so that a burst of other load hits both alike."""
    clusters = {n: start_cluster(n, specs) for n in (1, 2)}
    best = {n: float("inf") for n in clusters}
    try:
        for _ in range(REPEATS):
            for n, (_, client, _) in clusters.items():
                best[n] = min(best[n], sweep_once(client, specs, folder / f"out{n}"))
    finally:
        for cluster, client, _ in clusters.values():
            client.close()
            cluster.close()
    return {n: (clusters[n][2], best[n]) for n in clusters}


def in_process(specs: list[str]) -> float:
    from weightstats.api import fit_model

    fit_model(specs[0])  # warm
    t = time.perf_counter()
    for spec in specs:
        fit_model(spec)
    return time.perf_counter() - t


def load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("sweep.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        specs = write_models(folder)
        tiny = write_tiny(folder)
        n_weights = 3 * 256 * 256 * 9 + 512 * 512
        load_before = load()
        serial = in_process(specs)
        runs = timed_sweeps(specs, folder)
        (start1, one), (start2, two) = runs[1], runs[2]
        same = all((folder / "out1" / "zoo" / f).read_bytes()
                   == (folder / "out2" / "zoo" / f).read_bytes()
                   for f in ("layers.csv", "layers.parquet", "models.csv", "failures.csv"))
        tiny_serial = in_process(tiny)
        cluster, client, _ = start_cluster(1, tiny)
        try:
            tiny_sweep = min(sweep_once(client, tiny, folder / "tiny") for _ in range(REPEATS))
        finally:
            client.close()
            cluster.close()
        load_after = load()
    overhead = (tiny_sweep - tiny_serial) / TINY
    lines = [
        "# weightstats sweep: 1 vs 2 Dask workers (`benchmarks/bench_sweep.py`)",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}. Load average (1/5/15 min) before: {load_before}, "
        f"after: {load_after} (a load above about 0.5 means other jobs shared the cores, and "
        "2 workers did not get 2 whole cores).",
        "",
        f"Input: {MODELS} generated safetensors models, {n_weights:,} float32 weights each "
        "(three 256x256x3x3 convs + a 512x512 linear, Student-t values), default options "
        "(4 families, shipped KS tables), reports written as csv+json, no figures. Cluster "
        "start and worker imports are excluded (warmed first); best of "
        f"{REPEATS} sweeps each, 1- and 2-worker runs interleaved.",
        "",
        "| run | wall (s) | models/s | speed-up vs 1 worker |",
        "|---|---:|---:|---:|",
        f"| fit_model loop, one process (no Dask) | {serial:.2f} | {MODELS / serial:.2f} | "
        f"{one / serial:.2f}x |",
        f"| sweep, LocalCluster 1 worker | {one:.2f} | {MODELS / one:.2f} | 1.00x |",
        f"| sweep, LocalCluster 2 workers | {two:.2f} | {MODELS / two:.2f} | "
        f"**{one / two:.3f}x** |",
        "",
        f"Zoo tables (layers.csv, layers.parquet, models.csv, failures.csv) byte-identical "
        f"between 1 and 2 workers: **{'yes' if same else 'NO'}**.",
        "",
        f"Cluster start + warm imports: {start1:.1f} s (1 worker), {start2:.1f} s (2 workers).",
        "",
        f"Per-task overhead: {TINY} one-tensor models of 1,000 weights take "
        f"{tiny_sweep:.2f} s as a sweep on 1 worker (report folders and markers written) and "
        f"{tiny_serial:.2f} s with fit_model in one process: **{overhead * 1000:.0f} ms per "
        "model task** (resolve on the client and worker, scheduling, record, report and "
        "marker writes).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
