"""The generalized normal's maximum-likelihood fits alone: CPU seconds, and how far two checkouts differ.

Records the ``GenNorm.fit`` / ``GenNorm.fit_weighted`` calls that ``fit_model`` / ``fit_tensor``
make on three workloads, then replays them (best CPU time of ``--repeat`` replays):

* ``heavy``: the heavy-tailed ResNet-50 of ``bench_heavy_tails.py`` (float32, fitted shapes near 1,
  where the likelihood has cusps at the data values);
* ``plain``: the untrained ResNet-50 (``"resnet50:none"``, Gaussian layers, the joint Newton path);
* ``llm``: four bfloat16 tensors with TinyLlama's shapes (scaled t(6) weights), fitted on their
  (value, count) pairs (the counted path).

``--root`` imports weightstats from another checkout (``git worktree add /tmp/old REV``); with
``--against`` a second checkout's replays run in the same process state and the script reports,
per workload, the largest log-likelihood decrease (relative) and parameter differences between
the two. ``--out`` appends a Markdown table row.

    .venv/bin/python benchmarks/bench_gennorm_fit.py --against /tmp/old     # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def record() -> dict:
    """Every GenNorm.fit / fit_weighted input of the three workloads."""
    import torch

    sys.path.insert(0, str(HERE))
    from bench_heavy_tails import heavy_tailed_resnet50

    import weightstats
    from weightstats.fitting import fit_tensor
    from weightstats.fitting.families import get_family

    cls = type(get_family("gennorm"))
    rec: dict[str, list] = {"heavy": [], "plain": [], "llm": []}
    current = ["heavy"]
    fit, fit_weighted = cls.fit, cls.fit_weighted

    def recording_fit(self, x):
        rec[current[0]].append((x.copy(), None))
        return fit(self, x)

    def recording_weighted(self, values, counts, *, start=None):
        rec[current[0]].append((values.copy(), np.asarray(counts, dtype=float).copy()))
        return fit_weighted(self, values, counts, start=start)

    cls.fit, cls.fit_weighted = recording_fit, recording_weighted
    try:
        weightstats.fit_model(heavy_tailed_resnet50(), families=("gennorm",), jobs=1)
        current[0] = "plain"
        weightstats.fit_model("resnet50:none", families=("gennorm",), jobs=1)
        current[0] = "llm"
        rng = np.random.default_rng(0)
        for shape in [(2048, 2048), (256, 2048), (5632, 2048), (2048, 5632)]:
            x = 0.02 * rng.standard_t(6, size=shape).astype(np.float32) / np.sqrt(1.5)
            fit_tensor(torch.from_numpy(x).to(torch.bfloat16), families=("gennorm",))
    finally:
        cls.fit, cls.fit_weighted = fit, fit_weighted
    return rec


def replay(rec: dict, repeat: int) -> tuple[dict, dict]:
    """Best CPU seconds per workload, and each fit's (loc, scale, beta, loglik)."""
    from weightstats.fitting.families import get_family

    fam = get_family("gennorm")

    def run(item):
        values, counts = item
        return fam.fit(values) if counts is None else fam.fit_weighted(values, counts)

    seconds, results = {}, {}
    for name, items in rec.items():
        run(items[0])  # lazy imports
        best = np.inf
        for _ in range(repeat):
            start = time.process_time()
            fits = [run(item) for item in items]
            best = min(best, time.process_time() - start)
        seconds[name] = best
        results[name] = np.array([[f.loc[0], f.scale[0], f.shape[0], f.loglik[0]] for f in fits])
    return seconds, results


def _child(root: str | None, repeat: int, rec_path: str, out_path: str) -> None:
    if root:
        sys.path.insert(0, root)
    import pickle

    with open(rec_path, "rb") as f:
        rec = pickle.load(f)
    seconds, results = replay(rec, repeat)
    with open(out_path, "wb") as f:
        pickle.dump((seconds, results), f)


def _run_child(root: str | None, repeat: int, rec_path: str, out_path: str) -> tuple[dict, dict]:
    import pickle

    cmd = [sys.executable, __file__, "--child", rec_path, out_path, "--repeat", str(repeat)]
    if root:
        cmd += ["--root", root]
    subprocess.run(cmd, check=True)
    with open(out_path, "rb") as f:
        return pickle.load(f)


def _differences(new: np.ndarray, old: np.ndarray) -> tuple[float, float, float]:
    """Largest log-likelihood decrease (relative), scale/beta difference (relative) and loc
    difference (relative to the scale)."""
    dll = float(np.max((old[:, 3] - new[:, 3]) / np.abs(old[:, 3])))
    dpar = float(np.max(np.abs(new[:, 1:3] / old[:, 1:3] - 1.0)))
    dloc = float(np.max(np.abs(new[:, 0] - old[:, 0]) / old[:, 1]))
    return max(dll, 0.0), dpar, dloc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="import weightstats from this checkout")
    parser.add_argument("--against", help="a second checkout, replayed on the same inputs")
    parser.add_argument("--repeat", type=int, default=3, help="replays; the best CPU time is kept")
    parser.add_argument("--out", help="append a Markdown table row here")
    parser.add_argument("--label", default="", help="the row's first cell")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.root, args.repeat, *args.child)
        return
    import pickle
    import tempfile

    if args.root:
        sys.path.insert(0, args.root)
    with tempfile.TemporaryDirectory() as tmp:
        rec_path = str(Path(tmp) / "inputs.pkl")
        with open(rec_path, "wb") as f:
            pickle.dump(record(), f)
        # each checkout replays in a fresh process: same imports, same allocator state
        seconds, results = _run_child(args.root, args.repeat, rec_path, str(Path(tmp) / "a.pkl"))
        other = None
        if args.against:
            other = _run_child(args.against, args.repeat, rec_path, str(Path(tmp) / "b.pkl"))
    print(f"gennorm fits alone, best CPU of {args.repeat} (this checkout"
          + (f" vs {args.against}" if other else "") + "):")
    for name in seconds:
        line = f"  {name:6s} {len(results[name]):3d} fits  {seconds[name]:.3f} s"
        if other:
            dll, dpar, dloc = _differences(results[name], other[1][name])
            line += (f"   vs {other[0][name]:.3f} s; loglik decrease <= {dll:.1e} (relative), "
                     f"scale/beta differ <= {dpar:.1e}, loc <= {dloc:.1e} of the scale")
        print(line)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(f"| {args.label} | " + " | ".join(f"{seconds[k]:.3f}" for k in seconds)
                    + (" | " + " | ".join(f"{other[0][k]:.3f}" for k in seconds) if other else "")
                    + " |\n")


if __name__ == "__main__":
    main()
