"""Benchmark weightstats on an untrained torchvision resnet50 against peers and numpy floors.

    python benchmarks/bench_resnet50.py [--quick | --full] [--out benchmarks/results.md]

Every tool runs in its own subprocess (``--worker NAME``), so each row gets its own peak RSS
(``VmHWM``, which counts numpy/torch buffers that tracemalloc misses). Wall times cover the
work only: interpreter start, imports and building/loading the weights are excluded.
Slow peers are measured on a subset and extrapolated to all 25.5 M weights by per-value rates;
the table says so on every such row. Also writes a cProfile of weightstats on the largest tensor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LARGEST = "layer4.0.conv2.weight"  # 512*512*3*3 = 2,359,296 values
MID = "layer2.0.conv2.weight"  # 128*128*3*3 = 147,456 values
PEER_FAMS = ["norm", "laplace", "t"]
PEERS = ("numpy", "scipy", "torch", "torchvision", "weightstats", "fitter", "distfit",
         "weightwatcher", "powerlaw")


def peak_rss_mb() -> float:
    """Peak RSS (Linux VmHWM: restarts at exec, unlike ru_maxrss which inherits the parent's)."""
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM")) / 1024


_SETUP: list[float] = []


def mark() -> float:
    """Record the peak RSS after imports/setup; the timed work starts now."""
    _SETUP.append(peak_rss_mb())
    return time.perf_counter()


class Weights:
    """The 54 tensors saved as .npy files plus a manifest; arrays load (copy) on access."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        manifest = json.loads((self.folder / "manifest.json").read_text())
        self.files = list(manifest)
        self.sizes = {n: int(np.prod(shape)) for n, shape in manifest.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        return np.load(self.folder / f"{self.files.index(name)}.npy")


def resnet50():
    import torch
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet50()


def stratified(sizes: dict[str, int], k: int, max_size: int | None = None) -> list[str]:
    """k tensors at evenly spaced ranks of the size order (optionally below max_size)."""
    order = sorted((s, n) for n, s in sizes.items() if max_size is None or s < max_size)
    ranks = np.unique(np.linspace(0, len(order) - 1, k).round().astype(int))
    return [order[r][1] for r in ranks]


def naive_scipy(x: np.ndarray) -> None:
    """What a user writes by hand: scipy fit + scipy kstest for each family."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64).ravel()
    for name in PEER_FAMS:
        params = getattr(stats, name).fit(x)
        stats.kstest(x, name, args=params)


# --------------------------------------------------------------------------- workers
# Each returns {"wall": seconds of work, "covered": text}; optional "extrap" = factor applied
# to wall for the whole-model (or whole-tensor) estimate.

def timed(fn, repeat: int = 1) -> float:
    """Best wall time of fn() over repeat runs; setup RSS is recorded first."""
    mark()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def ws_fit(x):
    from weightstats import fit_tensor

    fit = fit_tensor(x)  # defaults: 4 families, ks_sample=5000, ks_replicates=1000, seed=0
    return fit.to_frame(), fit.comparisons()


def w_ws_tensors(z, mode):
    ws_fit(np.arange(50.0))  # import lazily-loaded modules and null tables outside the timing
    per = {}
    wall = timed(lambda: per.update({n: timed(lambda n=n: ws_fit(z[n])) for n in z.files}))
    slope, fixed = np.polyfit([z.sizes[n] for n in per], list(per.values()), 1)
    return {"wall": wall, "covered": f"{len(z.files)}/54 (all)",
            "cost_model": f"{fixed:.3f} s per tensor + {slope * 1e6:.2f} µs per value"}


def w_ws_model(z, mode):
    import weightstats

    model, rep = resnet50(), []
    ws_fit(np.arange(50.0))
    wall = timed(lambda: rep.append(weightstats.fit_model(model)))
    return {"wall": wall, "covered": f"{len(rep[0].layers)}/54 (conv+linear, jobs=1)"}


def w_ws_model_jobs2(z, mode):
    import weightstats

    model, rep = resnet50(), []
    ws_fit(np.arange(50.0))
    wall = timed(lambda: rep.append(weightstats.fit_model(model, jobs=2)))
    return {"wall": wall, "covered": f"{len(rep[0].layers)}/54 (conv+linear, 2 threads)"}


def w_ws_largest(z, mode):
    ws_fit(np.arange(50.0))
    x = z[LARGEST]
    return {"wall": timed(lambda: ws_fit(x)), "covered": f"{LARGEST} ({x.size:,} values)"}


def w_naive(z, mode):
    sizes = z.sizes
    if mode == "full":
        names, how = list(z.files), "all"
    elif mode == "quick":
        names, how = stratified(sizes, 5, max_size=1_000_000), "stratified subset (tensors <1M)"
    else:
        names, how = stratified(sizes, 6), "stratified subset by size rank"
    naive_scipy(np.arange(100.0))  # warm scipy imports
    rate = {}  # seconds per value, per measured tensor
    wall = timed(lambda: rate.update({n: timed(lambda n=n: naive_scipy(z[n])) / sizes[n]
                                      for n in names}))
    # each unmeasured tensor gets the per-value rate of the measured tensor nearest in size
    near = {n: n if n in rate else min(names, key=lambda m, n=n: abs(np.log(sizes[m] / sizes[n])))
            for n in sizes}
    estimate = sum(sizes[n] * rate[near[n]] for n in sizes)
    out = {"wall": wall, "covered": f"{len(names)}/54 {how}: "
           f"{sum(sizes[n] for n in names) / 1e6:.2f} M values",
           "rates_us": {n: round(r * 1e6, 2) for n, r in rate.items()}}
    if len(names) < len(z.files):
        out["covered"] += f" [{', '.join(f'{sizes[n] // 1024}k' for n in names)}]"
        out["extrap"] = estimate / wall
    return out


def w_fitter(z, mode):
    from fitter import Fitter

    x = z[MID].astype(np.float64).ravel()

    def run():  # serial like every other row (fitter's default uses all CPUs)
        f = Fitter(x, distributions=PEER_FAMS, timeout=3600)
        f.fit(max_workers=1)
        f.summary(plot=False)

    return {"wall": timed(run), "covered": f"1/54 {MID} ({x.size:,} values)",
            "extrap": sum(z.sizes.values()) / x.size}


def w_distfit(z, mode):
    from distfit import distfit

    x = z[MID].astype(np.float64).ravel()
    wall = timed(lambda: distfit(distr=PEER_FAMS, verbose=0).fit_transform(x, verbose=0))
    return {"wall": wall, "covered": f"1/54 {MID} ({x.size:,} values)",
            "extrap": sum(z.sizes.values()) / x.size}


def w_weightwatcher(z, mode):
    import logging

    import weightwatcher as ww

    model, out = resnet50(), []
    wall = timed(lambda: out.append(ww.WeightWatcher(model=model,
                                                     log_level=logging.WARNING).analyze()))
    return {"wall": wall, "covered": f"{len(out[0])}/54 layers (ESD of each weight matrix)"}


def w_scipy_t_largest(z, mode):
    from scipy import stats

    x = z[LARGEST].astype(np.float64).ravel()
    stats.t.fit(np.arange(100.0))
    if mode != "quick":
        return {"wall": timed(lambda: stats.t.fit(x)), "covered": f"{LARGEST} ({x.size:,} values)"}
    sub = np.random.default_rng(0).choice(x, x.size // 10, replace=False)
    return {"wall": timed(lambda: stats.t.fit(sub)), "extrap": x.size / sub.size,
            "covered": f"{LARGEST}: random {sub.size:,}-value subsample"}


def floor(kind: str):
    """Worker for one floor: the cheapest passes any full-data fitter must at least make."""

    def run(z, mode):
        from scipy import special

        if kind in ("sort", "moments"):
            x = np.concatenate([z[n].ravel() for n in z.files]).astype(np.float32, copy=False)
            covered = f"all 54 ({x.size:,} float32), best of 3"
        else:
            x = z[LARGEST].astype(np.float64).ravel()
            x = x / 0.01 if kind == "stdtr" else x * x
            covered = f"{LARGEST} ({x.size:,} float64), best of 3"

        def moments():
            x.mean(), x.std()
            np.median(np.abs(x - np.median(x)))

        fn = {"sort": lambda: np.sort(x), "moments": moments,
              "stdtr": lambda: special.stdtr(5.0, x), "log1p": lambda: np.log1p(x)}[kind]
        return {"wall": timed(fn, 3), "covered": covered}

    return run


def w_profile(z, mode, out: Path):
    import cProfile
    import io
    import pstats

    ws_fit(np.arange(50.0))
    x = z[LARGEST]
    prof = cProfile.Profile()
    t0 = mark()
    prof.runcall(ws_fit, x)
    wall = time.perf_counter() - t0
    buf = io.StringIO()
    buf.write(f"# cProfile: weightstats.fit_tensor({LARGEST}, {x.size:,} values), default options\n"
              f"# wall under profiler {wall:.2f} s, load average {os.getloadavg()[0]:.2f}\n\n")
    for key in ("cumulative", "tottime"):
        buf.write(f"## top 20 by {key}\n")
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(20)
    out.write_text(buf.getvalue())
    return {"wall": wall, "covered": LARGEST}


# name: (function, scope, what it computes)
ROWS = {
    "ws_tensors": (w_ws_tensors, "model", "weightstats fit_tensor loop",
                   "4 families (normal, laplace, t, gennorm) MLE, LL/AIC/BIC, KS D on all values, "
                   "valid KS p (bootstrap null tables), Vuong"),
    "ws_model": (w_ws_model, "model", "weightstats fit_model(nn.Module)",
                 "same as above + layer selection, report object"),
    "ws_model_jobs2": (w_ws_model_jobs2, "model", "weightstats fit_model(nn.Module, jobs=2)",
                       "same as above, layers on 2 threads (identical numbers)"),
    "naive": (w_naive, "model", "naive scipy",
              "norm/laplace/t .fit + scipy.stats.kstest each (KS p-values invalid: fitted params)"),
    "fitter": (w_fitter, "model", "fitter",
               "Fitter(norm, laplace, t): scipy fit, histogram SSE, AIC/BIC, KS"),
    "distfit": (w_distfit, "model", "distfit", "distfit(norm, laplace, t): scipy fit, histogram RSS"),
    "weightwatcher": (w_weightwatcher, "model", "WeightWatcher analyze()",
                      "SVD/ESD of each layer, power-law alpha (different question)"),
    "floor_sort": (floor("sort"), "model", "floor: np.sort", "sort all weights"),
    "floor_moments": (floor("moments"), "model", "floor: mean/std/median/MAD", "4 statistics"),
    "ws_largest": (w_ws_largest, "largest", "weightstats fit_tensor (largest)",
                   "everything as row 1, one tensor"),
    "scipy_t_largest": (w_scipy_t_largest, "largest", "scipy t.fit (largest)",
                        "Student-t MLE only"),
    "floor_stdtr": (floor("stdtr"), "largest", "floor: scipy.special.stdtr", "one t-CDF pass"),
    "floor_log1p": (floor("log1p"), "largest", "floor: np.log1p", "one log1p pass"),
}


def worker(name: str, weights: str, mode: str, result: str, profile: str) -> None:
    z = Weights(weights)
    out = w_profile(z, mode, Path(profile)) if name == "profile" else ROWS[name][0](z, mode)
    out.update(peak_rss=peak_rss_mb(), setup_rss=_SETUP[0] if _SETUP else 0.0)
    Path(result).write_text(json.dumps(out))


# --------------------------------------------------------------------------- driver

def run_worker(name: str, args, weights: str, tmp: str) -> dict:
    result = os.path.join(tmp, f"{name}.json")
    cmd = [sys.executable, __file__, "--worker", name, "--weights", weights, "--mode", args.mode,
           "--result", result, "--profile", str(args.profile)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    if proc.returncode != 0 or not os.path.exists(result):
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"failed (rc {proc.returncode}): {last[:160]}"}
    out = json.loads(Path(result).read_text())
    print(f"  {name:16s} {out['wall']:8.2f} s  (process {time.perf_counter() - t0:.1f} s, "
          f"load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    return out


def source_digest() -> str:
    """Hash of weightstats' sources: flags a library edited while the benchmark ran."""
    import hashlib

    import weightstats

    h = hashlib.sha256()
    for f in sorted(Path(weightstats.__file__).parent.rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def versions() -> str:
    def one(pkg: str) -> str:
        try:
            return f"{pkg} {metadata.version(pkg)}"
        except metadata.PackageNotFoundError:
            return f"{pkg} (not installed)"

    return ", ".join(map(one, PEERS))


def fmt_s(s: float) -> str:
    return f"{s:.3f}" if s < 1 else f"{s:.2f}" if s < 100 else f"{s:.0f}"


def table(res: dict, skipped: dict) -> list[str]:
    base = {"model": res.get("ws_tensors", {}).get("wall"),
            "largest": res.get("ws_largest", {}).get("wall")}
    lines = ["| tool | computes | tensors covered | wall s | peak RSS MB (Δ over setup) | "
             "× weightstats |", "|---|---|---|---|---|---|"]
    for key, (_, scope, label, what) in ROWS.items():
        r = res.get(key, {"error": skipped.get(key, "not run")})
        if "error" in r:
            lines.append(f"| {label} | {what} | — | {r['error']} | — | — |")
            continue
        est = r["wall"] * r.get("extrap", 1.0)
        wall = fmt_s(est)
        if "extrap" in r:
            target = "all 54 tensors" if scope == "model" else "whole tensor"
            how = "nearest-size tensor's" if key == "naive" else "per-value"
            wall = (f"≈{wall} **extrapolated** to {target} by {how} rate "
                    f"(×{r['extrap']:.1f}; measured {fmt_s(r['wall'])})")
        ratio = f"{est / base[scope]:.3g}×" if base[scope] else "—"
        rss = f"{r['peak_rss']:.0f} ({r['peak_rss'] - r['setup_rss']:+.0f})"
        lines.append(f"| {label} | {what} | {r['covered']} | {wall} | {rss} | {ratio} |")
    return lines


def summary(res: dict) -> list[str]:
    def est(k):
        r = res.get(k, {})
        return r["wall"] * r.get("extrap", 1.0) if "wall" in r else None

    out = []
    pairs = [("naive scipy / weightstats (all 54)", "naive", "ws_tensors"),
             ("fitter / weightstats (all 54, extrapolated)", "fitter", "ws_tensors"),
             ("distfit / weightstats (all 54, extrapolated)", "distfit", "ws_tensors"),
             ("scipy t.fit alone / weightstats everything (largest tensor)", "scipy_t_largest",
              "ws_largest"),
             ("weightstats (all 54) / np.sort floor", "ws_tensors", "floor_sort"),
             ("weightstats (all 54) / mean+std+median+MAD floor", "ws_tensors", "floor_moments"),
             ("weightstats (largest) / one stdtr pass", "ws_largest", "floor_stdtr"),
             ("weightstats (largest) / one log1p pass", "ws_largest", "floor_log1p")]
    for text, a, b in pairs:
        if est(a) and est(b):
            out.append(f"- {text}: **{est(a) / est(b):.1f}×**")
    if "cost_model" in res.get("ws_tensors", {}):
        out.append(f"- weightstats per-tensor cost, least squares over the 54 fits: "
                   f"{res['ws_tensors']['cost_model']}")
    if "rates_us" in res.get("naive", {}):
        r = res["naive"]["rates_us"]
        rates = (", ".join(f"{n} {v}" for n, v in r.items()) if len(r) <= 8 else
                 "min {:.1f} / median {:.1f} / max {:.1f}".format(*np.percentile(list(r.values()),
                                                                          [0, 50, 100])))
        out.append(f"- naive scipy measured µs/value (not constant: t.fit iterations vary): {rates}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="small naive-scipy subset, t.fit on a 10%% subsample, no WeightWatcher")
    g.add_argument("--full", action="store_true", help="naive scipy on all 54 tensors (~20-30 min)")
    ap.add_argument("--out", type=Path, default=HERE / "results.md")
    ap.add_argument("--profile", type=Path, default=HERE / "profile_largest.txt")
    ap.add_argument("--timeout", type=int, default=3600, help="per-tool limit, seconds")
    ap.add_argument("--only", help="comma-separated row keys (debugging)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.weights, args.mode, args.result, args.profile)
        return
    args.mode = "quick" if args.quick else "full" if args.full else "default"
    load0, digest0 = os.getloadavg(), source_digest()
    started = time.strftime("%Y-%m-%d %H:%M")
    keys = args.only.split(",") if args.only else [*ROWS, "profile"]
    skipped = {}
    if args.mode == "quick" and "weightwatcher" in keys:
        keys.remove("weightwatcher")
        skipped["weightwatcher"] = "skipped in --quick (30-110 s)"
    res: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = tmp  # one .npy per tensor + manifest.json (names -> shapes, in model order)
        params = [(n, p) for n, p in resnet50().named_parameters() if p.dim() in (2, 4)]
        for i, (_, p) in enumerate(params):
            np.save(os.path.join(tmp, f"{i}.npy"), p.detach().numpy())
        Path(tmp, "manifest.json").write_text(json.dumps({n: list(p.shape) for n, p in params}))
        n_values = sum(p.numel() for _, p in params)
        print(f"resnet50 (untrained, seed 0): {len(params)} conv/linear tensors, {n_values:,} "
              f"values; mode {args.mode}", file=sys.stderr)
        del params
        for key in keys:
            res[key] = run_worker(key, args, weights, tmp)
    prof, digest1 = res.pop("profile", None), source_digest()
    changed = "" if digest0 == digest1 else f" → {digest1} (**library changed during the run**)"
    cpu = platform.processor() or platform.machine()
    lines = [
        f"## weightstats vs peers on resnet50 ({args.mode} mode, {started})", "",
        f"Untrained `torchvision.models.resnet50()` after `torch.manual_seed(0)`: 54 conv/linear "
        f"weight tensors, {n_values:,} values, largest `{LARGEST}` (2,359,296).",
        f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}; "
        f"load average at start {load0[0]:.2f} / at end {os.getloadavg()[0]:.2f} "
        "(other jobs share the CPUs: timings are noisy).", "",
        f"Versions: {versions()}; weightstats source digest {digest0}{changed}.", "",
        "Each row is its own subprocess; wall = the work only (no imports/startup); peak RSS = "
        "`VmHWM` of that subprocess, Δ = growth after imports. Ratio rows compare like "
        "scopes (whole model vs `weightstats` fit_tensor loop; largest tensor vs weightstats "
        "on it). Peers are serial (fitter forced to `max_workers=1`).", "",
        *table(res, skipped), "", *summary(res), "",
    ]
    if prof and "wall" in prof:
        lines.append(f"cProfile of weightstats on the largest tensor: `{args.profile.name}` "
                     f"({prof['wall']:.2f} s under the profiler).")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
