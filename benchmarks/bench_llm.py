"""Time weightstats on a 1.1 B-parameter bfloat16 LLM checkpoint against the counting floor.

Generates (seeded, in a temporary directory deleted afterwards) a checkpoint with TinyLlama-1.1B's
shapes and Hugging Face Llama tensor names, written as two safetensors shards plus
``model.safetensors.index.json``, then measures in the same run, each step in its own subprocess
(so the peak RSS, ``VmHWM`` from ``/proc/self/status``, is that step's own):

* **floor**: for every tensor, read it (``safe_open``, ``framework="pt"``) and ``np.bincount`` its
  ``uint16`` view (``minlength=65536``) in 256 K-value chunks: the least work any exact 16-bit
  method must do (the ratio target is against the count alone, reading excluded);
* **read**: the shard files' bytes read into one reused buffer, nothing else;
* **load**: weightstats' own loaders (``resolve(folder).tensors()``, ``WeightTensor.load()``) and a
  chunked ``np.bincount`` of each loaded tensor's ``uint16`` view: what the loaders cost on the way
  to a counting fit; its peak RSS shows whether they copy (a bfloat16 tensor must arrive in its
  stored dtype as a memory map: about the largest tensor's 131 MB over the interpreter's baseline);
* **fit_model**: ``weightstats.fit_model(folder)`` with its defaults (jobs=1), and with jobs=2;
* **CLI**: ``weightstats fit FOLDER --no-plots --out TMP`` end to end (interpreter start, imports,
  report files), peak RSS from ``getrusage(RUSAGE_CHILDREN)`` in a fresh wrapper process.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_llm.py            # full 1.1 B (~2.2 GB in /tmp)
    .venv/bin/python benchmarks/bench_llm.py --quick --out /tmp/llm_quick.md   # 4 layers

Weights: a scaled Student-t(6) (linear and embedding std 0.02), RMSNorm weights 1 + 0.05 t(6);
the generator writes the safetensors format directly (8-byte header length, JSON header, raw
little-endian bytes) one row block at a time, so generation needs a few hundred MB at most
whatever the model's size (``safetensors.torch.save_file`` would hold a whole shard in memory).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Imported before any step's clock starts (the package pulls in SciPy on import).
from weightstats.fitting.counted import count_bits

HIDDEN = 2048
INTERMEDIATE = 5632
VOCAB = 32000
HEADS = 32
KV_HEADS = 4
HEAD_DIM = HIDDEN // HEADS
FULL_LAYERS = 22
QUICK_LAYERS = 4
LINEAR_STD = 0.02
NORM_STD = 0.05
DF = 6.0
BLOCK_VALUES = 1 << 24  # values generated at once: bounds the generator's memory

TARGET_RATIO = 3.0
TARGET_CLI_S = 15.0
TARGET_RSS_MIB = 1024.0


# ----------------------------------------------------------------------------- checkpoint
def layer_shapes(n_layers: int) -> list[tuple[str, tuple[int, ...]]]:
    """Tensor names and shapes of a TinyLlama-shaped model, in file order."""
    kv = KV_HEADS * HEAD_DIM
    out: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for i in range(n_layers):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (HIDDEN,)),
            (p + "self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
            (p + "self_attn.k_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.v_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
            (p + "post_attention_layernorm.weight", (HIDDEN,)),
            (p + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)),
        ]
    out += [("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]
    return out


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (round to nearest even; inputs are finite)."""
    u = x.view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype("<u2")


def t_block(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` Student-t(DF) draws in float32 (normal over the root of a scaled gamma)."""
    z = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_gamma(DF / 2, n, dtype=np.float32)
    z /= np.sqrt(g / np.float32(DF / 2))
    return z


def write_shard(path: Path, tensors: list[tuple[str, tuple[int, ...]]],
                rng: np.random.Generator) -> None:
    """Write one bf16 safetensors shard, generating each tensor block by block."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        nbytes = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for name, shape in tensors:
            n = int(np.prod(shape))
            is_norm = name.endswith("norm.weight")
            for start in range(0, n, BLOCK_VALUES):
                x = t_block(rng, min(BLOCK_VALUES, n - start))
                if is_norm:
                    x = np.float32(1.0) + np.float32(NORM_STD) * x
                else:
                    x *= np.float32(LINEAR_STD / np.sqrt(DF / (DF - 2)))
                f.write(to_bf16_bits(x).tobytes())


def make_checkpoint(folder: Path, n_layers: int, seed: int) -> dict[str, int]:
    """Two shards (embedding + first half of the layers; the rest + norm + lm_head) and the index."""
    shapes = layer_shapes(n_layers)
    cut = 1 + 9 * (n_layers // 2)
    shards = {"model-00001-of-00002.safetensors": shapes[:cut],
              "model-00002-of-00002.safetensors": shapes[cut:]}
    rng = np.random.default_rng(seed)
    weight_map: dict[str, str] = {}
    for fname, tensors in shards.items():
        write_shard(folder / fname, tensors, rng)
        weight_map.update({name: fname for name, _ in tensors})
    n_params = sum(int(np.prod(s)) for _, s in shapes)
    index = {"metadata": {"total_size": 2 * n_params}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return {"params": n_params, "tensors": len(shapes), "bytes": 2 * n_params}


# ----------------------------------------------------------------------------- steps (subprocess)
def vm_hwm_mib() -> float:
    """This process's peak resident set (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def shard_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def count_chunked(bits: np.ndarray) -> np.ndarray:
    """Bit-pattern counts of a uint16 array: the counting floor's only work. The fitter's own
    chunked count (np.bincount over 256 K-value chunks: one call over a whole 65 M-value tensor
    casts it to intp first and ran 3.5x slower), so floor and fit count the same way."""
    return count_bits(bits)


def step_floor(folder: Path) -> dict[str, object]:
    import torch
    from safetensors import safe_open

    read_s = count_s = 0.0
    per_kind: dict[str, float] = {}
    t_all = time.perf_counter()
    for shard in shard_files(folder):
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():
                t0 = time.perf_counter()
                bits = f.get_tensor(name).view(torch.int16).numpy().view(np.uint16).ravel()
                t1 = time.perf_counter()
                count_chunked(bits)
                t2 = time.perf_counter()
                read_s += t1 - t0
                count_s += t2 - t1
                kind = name.split(".")[-2]
                per_kind[kind] = per_kind.get(kind, 0.0) + (t2 - t0)
    return {"wall_s": time.perf_counter() - t_all, "read_s": read_s, "bincount_s": count_s,
            "per_kind_s": per_kind}


def step_read(folder: Path) -> dict[str, object]:
    buf = bytearray(64 << 20)
    view = memoryview(buf)
    total = 0
    t0 = time.perf_counter()
    for shard in shard_files(folder):
        with open(shard, "rb", buffering=0) as f:
            while (n := f.readinto(view)):
                total += n
    return {"wall_s": time.perf_counter() - t0, "bytes": total}




def step_load(folder: Path) -> dict[str, object]:
    from weightstats.sources import resolve

    tensors = list(resolve(str(folder)).tensors())
    base = vm_hwm_mib()
    load_s = count_s = 0.0
    dtypes: set[str] = set()
    n_values = 0
    t_all = time.perf_counter()
    for t in tensors:
        t0 = time.perf_counter()
        values = t.load()
        t1 = time.perf_counter()
        dtypes.add(values.dtype.name)
        bits = values.reshape(-1).view(np.uint16)
        counts = count_chunked(bits)
        n_values += int(counts.sum())
        del values, bits  # drops the memory map: its pages leave the resident set
        count_s += time.perf_counter() - t1
        load_s += t1 - t0
    largest = max(t.numel for t in tensors)
    return {"wall_s": time.perf_counter() - t_all, "load_s": load_s, "bincount_s": count_s,
            "rss_after_imports_mib": base, "dtypes": sorted(dtypes), "values": n_values,
            "largest_tensor_mib": 2 * largest / 2**20}


def step_fit_model_j2(folder: Path) -> dict[str, object]:
    """``fit_model(folder, jobs=2)``: two layers at once on threads (identical numbers)."""
    return step_fit_model(folder, jobs=2)


def step_fit_model(folder: Path, jobs: int = 1) -> dict[str, object]:
    import weightstats

    # warm imports and lazy tables on a small tensor so the timing is the model's work only
    weightstats.fit_tensor(np.random.default_rng(0).standard_t(DF, 4096).astype(np.float32))
    base = vm_hwm_mib()
    per_kind: dict[str, float] = {}
    last = [time.perf_counter()]

    def on_layer(done: int, total: int, name: str) -> None:
        # jobs=1: the time between two calls is one layer's load + fit
        now = time.perf_counter()
        kind = name.split(".")[-2] if "." in name else name
        per_kind[kind] = per_kind.get(kind, 0.0) + now - last[0]
        last[0] = now

    t0 = last[0] = time.perf_counter()
    report = weightstats.fit_model(str(folder), on_layer=on_layer, jobs=jobs)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "rss_after_imports_mib": base, "layers": len(report.layers),
            "per_kind_s": per_kind}


def run_step(step: str, folder: Path) -> dict[str, object]:
    """Run one measured step in a fresh interpreter; return its JSON plus its peak RSS."""
    proc = subprocess.run([sys.executable, __file__, "--step", step, str(folder)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["(no output)"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_cli(folder: Path, out: Path) -> dict[str, object]:
    """``weightstats fit`` end to end in a wrapper whose only child is the CLI."""
    exe = Path(sys.executable).with_name("weightstats")
    cmd = [str(exe), "fit", str(folder), "--no-plots", "--out", str(out)]
    code = ("import json,resource,subprocess,sys,time;t=time.perf_counter();"
            f"p=subprocess.run({cmd!r},capture_output=True,text=True);"
            "w=time.perf_counter()-t;r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
            "print(json.dumps({'wall_s':w,'peak_rss_mib':r/1024,'rc':p.returncode,"
            "'err':p.stderr.strip().splitlines()[-1:]}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report
def fmt(x: object, spec: str = ".2f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "—"


def render(info: dict[str, int], n_layers: int, res: dict[str, dict], gen_s: float,
           quick: bool) -> str:
    floor, read, fit, cli = (res.get(k, {}) for k in ("floor", "read", "fit_model", "cli"))
    load = res.get("load", {})
    floor_s = floor.get("bincount_s")
    floor_read_s = floor.get("wall_s")
    fit_s = fit.get("wall_s")
    ratio = fit_s / floor_s if isinstance(fit_s, float) and floor_s else None
    ratio_rb = fit_s / floor_read_s if isinstance(fit_s, float) and floor_read_s else None
    gb = info["bytes"] / 1e9
    L = []
    L.append(f"# LLM checkpoint benchmark ({'quick: ' + str(n_layers) + ' layers' if quick else 'TinyLlama-1.1B shapes'})\n")
    L.append(f"Generated by `benchmarks/bench_llm.py{' --quick' if quick else ''}` on "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs, "
             f"Python {platform.python_version()}, numpy {np.__version__}; load average "
             f"{info['load_before']:.1f} when the timed steps began (1-minute, over "
             f"{os.cpu_count()} cores). The ratios come from one run.\n")
    L.append(f"Checkpoint: {info['params']:,} bfloat16 values in {info['tensors']} tensors "
             f"({gb:.2f} GB), {n_layers} layers, hidden {HIDDEN}, intermediate {INTERMEDIATE}, "
             f"vocab {VOCAB}, {HEADS} heads / {KV_HEADS} KV heads; two safetensors shards + "
             f"`model.safetensors.index.json`; weights scaled t({DF:g}) (std {LINEAR_STD}), RMSNorm "
             f"weights 1 + {NORM_STD}·t({DF:g}). Generation took {gen_s:.1f} s; the files were in the "
             "page cache for every step (just written), so reading is memory-bound, not disk-bound.\n")
    L.append("| step | wall (s) | peak RSS (MiB) | note |")
    L.append("|---|---:|---:|---|")
    L.append(f"| counting floor: chunked `np.bincount` of every tensor's uint16 view | {fmt(floor_s)} | "
             f"{fmt(floor.get('peak_rss_mib'), '.0f')} | bincount only |")
    L.append(f"| floor incl. `safe_open(...).get_tensor` | {fmt(floor_read_s)} | same process | "
             f"get_tensor {fmt(floor.get('read_s'))} s |")
    L.append(f"| reading the bytes alone (`readinto`, 64 MiB buffer) | {fmt(read.get('wall_s'))} | "
             f"{fmt(read.get('peak_rss_mib'), '.0f')} | {fmt(read.get('bytes', 0) / 1e9)} GB |")
    L.append(f"| weightstats' loaders (`WeightTensor.load()`) + chunked bincount | "
             f"{fmt(load.get('wall_s'))} | {fmt(load.get('peak_rss_mib'), '.0f')} | load "
             f"{fmt(load.get('load_s'))} s, dtypes {', '.join(load.get('dtypes', [])) or '—'}; "
             f"{fmt(load.get('rss_after_imports_mib'), '.0f')} MiB after imports, largest tensor "
             f"{fmt(load.get('largest_tensor_mib'), '.0f')} MiB |")
    L.append(f"| `weightstats.fit_model(folder)` (defaults, jobs=1) | {fmt(fit_s)} | "
             f"{fmt(fit.get('peak_rss_mib'), '.0f')} | {fit.get('layers', '—')} layers fitted; "
             f"{fit.get('error', 'imports warmed first')} |")
    fit2 = res.get("fit_model_j2", {})
    fit2_s = fit2.get("wall_s")
    ratio2 = fit2_s / floor_s if isinstance(fit2_s, float) and floor_s else None
    L.append(f"| `weightstats.fit_model(folder, jobs=2)` | {fmt(fit2_s)} | "
             f"{fmt(fit2.get('peak_rss_mib'), '.0f')} | {fmt(ratio2, '.1f')}× the floor; "
             f"{fit2.get('error', 'two layers at once on threads, identical numbers')} |")
    L.append(f"| `weightstats fit FOLDER --no-plots --out TMP` | {fmt(cli.get('wall_s'))} | "
             f"{fmt(cli.get('peak_rss_mib'), '.0f')} | exit {cli.get('rc')} "
             f"{'; ' + cli['err'][0] if cli.get('rc') and cli.get('err') else ''}|\n")
    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("met" if ok else "**not met**")
    rss = max((x for x in (fit.get("peak_rss_mib"), fit2.get("peak_rss_mib"), cli.get("peak_rss_mib"))
               if isinstance(x, float)),
              default=None)
    cli_s = cli.get("wall_s")
    L.append("| target (issue 13) | measured | verdict |")
    L.append("|---|---:|---|")
    L.append(f"| fit_model ≤ {TARGET_RATIO:g}× counting floor | {fmt(ratio, '.1f')}× "
             f"({fmt(ratio_rb, '.1f')}× floor incl. get_tensor) | "
             f"{verdict(None if ratio is None else ratio <= TARGET_RATIO)} |")
    L.append(f"| CLI ≤ {TARGET_CLI_S:g} s | {fmt(cli_s, '.1f')} s | "
             f"{verdict(None if not isinstance(cli_s, float) or quick else cli_s <= TARGET_CLI_S)} |")
    L.append(f"| peak RSS ≤ {TARGET_RSS_MIB:.0f} MiB | {fmt(rss, '.0f')} MiB | "
             f"{verdict(None if rss is None else rss <= TARGET_RSS_MIB)} |\n")
    if quick:
        L.append("(--quick: the CLI-seconds target applies to the full 1.1 B model only.)\n")
    per_kind = floor.get("per_kind_s") or {}
    if per_kind:
        L.append("Floor time (get_tensor + bincount) by tensor kind, s: " + ", ".join(
            f"{k} {v:.2f}" for k, v in sorted(per_kind.items(), key=lambda kv: -kv[1])) + "\n")
    fit_kind = fit.get("per_kind_s") or {}
    if fit_kind:
        L.append("fit_model time by tensor kind (load + fit, from the progress callback), s: " + ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(fit_kind.items(), key=lambda kv: -kv[1])) + "\n")
    L.append("Peak RSS of the floor step counts the safetensors mmap's file-backed pages it touched "
             "(reclaimable page cache, not allocations).\n")
    if isinstance(fit_s, float):
        per_value_ns = fit_s / info["params"] * 1e9
        L.append(f"Measured fit_model cost: {per_value_ns:.1f} ns per value. At that rate (jobs=1, "
                 f"same machine): Llama-2-7B (6.74 B values) ≈ {6.74e9 * per_value_ns / 1e9 / 60:.1f} min, "
                 f"a 70 B model ≈ {70e9 * per_value_ns / 1e9 / 60:.0f} min.\n")
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_LAYERS} layers instead of {FULL_LAYERS}")
    ap.add_argument("--out", default="benchmarks/llm.md", help="markdown output")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=lambda s: s.split(","),
                    default=["floor", "read", "load", "fit_model", "fit_model_j2", "cli"],
                    help="comma list of the steps to run (default: all); the others show as —")
    ap.add_argument("--step", nargs=2, metavar=("STEP", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        step, folder = args.step
        fn = {"floor": step_floor, "read": step_read, "load": step_load,
              "fit_model": step_fit_model, "fit_model_j2": step_fit_model_j2}[step]
        result = fn(Path(folder))
        result["peak_rss_mib"] = vm_hwm_mib()
        print(json.dumps(result))
        return 0
    n_layers = QUICK_LAYERS if args.quick else FULL_LAYERS
    needed = 2 * sum(int(np.prod(s)) for _, s in layer_shapes(n_layers))
    with tempfile.TemporaryDirectory(prefix="ws_bench_llm_") as tmp:
        if shutil.disk_usage(tmp).free < needed * 1.2:
            print(f"need {needed / 1e9:.1f} GB free in {tmp}", file=sys.stderr)
            return 2
        folder = Path(tmp) / "tinyllama_like"
        folder.mkdir()
        t0 = time.perf_counter()
        info = make_checkpoint(folder, n_layers, args.seed)
        gen_s = time.perf_counter() - t0
        print(f"generated {info['params']:,} values in {gen_s:.1f} s", flush=True)
        res: dict[str, dict] = {}
        load_before = os.getloadavg()[0]
        for step in ("floor", "read", "load", "fit_model", "fit_model_j2"):
            if step in args.steps:
                res[step] = run_step(step, folder)
                print(step, json.dumps(res[step]), flush=True)
        if "cli" in args.steps:
            res["cli"] = run_cli(folder, Path(tmp) / "report")
            print("cli", json.dumps(res["cli"]), flush=True)
        info["load_before"] = load_before
        text = render(info, n_layers, res, gen_s, args.quick)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
