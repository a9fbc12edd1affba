"""Peak memory of `weightstats fit` on a synthetic ~1e9-parameter safetensors checkpoint.

Usage: python benchmarks/bench_memory.py [--params 1e9] [--largest 64e6] [--dir DIR]

The checkpoint (float32, tensors of up to ``--largest`` values, ~4 GB for 1e9 parameters) is written
directly in the safetensors format, one chunk at a time, so building it needs little memory; then the
CLI analyzes it in a subprocess and its peak RSS (``/usr/bin/time``-style, from ``wait4``) is
reported. Tensors are streamed from disk one at a time and the fitter keeps one float64 copy of
the tensor it is fitting, so the peak is set by the largest tensor, not by the model.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_checkpoint(path: Path, params: int, largest: int, seed: int = 0) -> list[tuple[str, int]]:
    """Write float32 tensors of `largest` values (the last one smaller) adding up to `params`."""
    sizes, left = [], params
    while left > 0:
        sizes.append(min(largest, left))
        left -= sizes[-1]
    header, offset, names = {}, 0, []
    for i, size in enumerate(sizes):
        name = f"layers.{i}.weight"
        cols = 4096 if size % 4096 == 0 else 1
        header[name] = {"dtype": "F32", "shape": [size // cols, cols],
                        "data_offsets": [offset, offset + 4 * size]}
        offset += 4 * size
        names.append((name, size))
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for i, (_, size) in enumerate(names):
            scale = 0.02 * (1 + i % 3)
            for start in range(0, size, 1 << 22):
                n = min(1 << 22, size - start)
                f.write((rng.standard_t(8, n) * scale).astype("<f4").tobytes())
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=1e9)
    parser.add_argument("--largest", type=float, default=64e6)
    parser.add_argument("--dir", default=None, help="where to write the checkpoint (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ckpt = Path(tmp) / "synthetic.safetensors"
        t0 = time.perf_counter()
        names = write_checkpoint(ckpt, int(args.params), int(args.largest))
        written = time.perf_counter() - t0
        exe = Path(sys.executable).with_name("weightstats")
        cmd = [str(exe), "fit", str(ckpt), "--no-plots", "--out", str(Path(tmp) / "report")]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        peak_gib = usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux
        code = os.waitstatus_to_exitcode(status)
        print(f"| checkpoint | {sum(s for _, s in names):,} float32 parameters in {len(names)} tensors "
              f"(largest {max(s for _, s in names):,}); {ckpt.stat().st_size / 2**30:.2f} GiB, "
              f"written in {written:.0f} s |")
        print(f"| `weightstats fit --no-plots` | exit {code}, {wall:.0f} s wall, "
              f"peak RSS {peak_gib:.2f} GiB |")
        if code != 0:
            print(proc.stderr.read().decode(), file=sys.stderr)


if __name__ == "__main__":
    main()
