"""Fuzz the loaders: random bytes and mutated real files of every format.

Every case must end in a clean load or a WeightstatsError (LoadError/SpecError); any other
exception, a crash or a hang is a bug. The cases run in one child process that reports each
case on stdout, so a hang (even inside C code) is caught by a per-case timeout and a crash
names the case that caused it.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import save_file

PER_CASE_TIMEOUT_S = 20.0  # generous: the machine may be loaded; a hang is forever
TOTAL_BUDGET_S = 55.0
SEED = 20261125

CHILD = r"""
import json, resource, sys, warnings
warnings.simplefilter("ignore")
# Corrupt size fields must not be able to take the machine's memory.
resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))
from weightstats.errors import WeightstatsError
from weightstats.sources import resolve
for line in sys.stdin:
    case = json.loads(line)
    print("START", case["i"], flush=True)
    try:
        for t in resolve(case["path"]).tensors():
            t.load()
        result = "ok"
    except WeightstatsError as err:
        text = str(err)
        result = "bad-message" if ("\n" in text or not text) else "error"
        detail = type(err).__name__ + ": " + text
    except BaseException as err:
        result = "raw"
        detail = type(err).__name__ + ": " + str(err)[:300]
    print(json.dumps({"i": case["i"], "result": result,
                      "detail": "" if result == "ok" else detail}), flush=True)
"""


def _seeds(tmp: Path) -> dict[str, bytes]:
    """Small real files of each supported format."""
    torch.manual_seed(0)
    state = {"conv.weight": torch.randn(4, 2, 3, 3), "fc.weight": torch.randn(6, 8),
             "fc.bias": torch.randn(6), "emb.weight": torch.randn(5, 3).half()}
    save_file(state, str(tmp / "s.safetensors"))
    torch.save(state, tmp / "s.pt")
    torch.save({"state_dict": state, "epoch": 3}, tmp / "legacy.pth",
               _use_new_zipfile_serialization=False)
    np.savez(tmp / "s.npz", **{k: v.float().numpy() for k, v in state.items()})
    np.savez_compressed(tmp / "c.npz", w=np.arange(60, dtype=np.float32).reshape(6, 10))
    np.save(tmp / "s.npy", np.arange(40, dtype=np.float64).reshape(5, 8))
    w = numpy_helper.from_array(np.ones((3, 4), np.float32), "W")
    node = helper.make_node("MatMul", ["X", "W"], ["Y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])], [w])
    onnx.save(helper.make_model(graph), str(tmp / "s.onnx"))
    _gguf_seed(tmp / "s.gguf")
    names = ("s.safetensors", "s.pt", "legacy.pth", "s.npz", "c.npz", "s.npy", "s.onnx", "s.gguf")
    return {n: (tmp / n).read_bytes() for n in names}


def _gguf_seed(path: Path) -> None:
    """A GGUF file with metadata (a string array) and F32, F16, BF16 and Q8_0 tensors."""
    import gguf
    from gguf.quants import quantize

    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_token_list(["<s>", "a", "b"])
    w.add_tensor("token_embd.weight", rng.standard_normal((6, 32)).astype(np.float16))
    w.add_tensor("blk.0.attn_q.weight", rng.standard_normal((4, 32)).astype(np.float32))
    bits = (rng.standard_normal((3, 32)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor("blk.0.ffn_up.weight", bits.view(np.uint8), raw_dtype=gguf.GGMLQuantizationType.BF16)
    q8 = quantize(rng.standard_normal((2, 64)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("blk.0.ffn_down.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _gguf_header_mutations(data: bytes) -> list[bytes]:
    """Targeted GGUF damage: magic, version, the two header counts, a string length."""
    u64 = lambda v: v.to_bytes(8, "little")  # noqa: E731
    return [b"GGUX" + data[4:], data[:12], data[:4] + (99).to_bytes(4, "little") + data[8:],
            data[:8] + u64(2**63) + data[16:], data[:16] + u64(2**40) + data[24:],
            data[:8] + u64(int.from_bytes(data[8:16], "little") + 1) + data[16:],
            data[:24] + u64(2**62) + data[32:]]


def _mutations(data: bytes, rng: np.random.Generator, k: int) -> list[bytes]:
    out = []
    for j in range(k):
        b = bytearray(data)
        op = j % 4
        if op == 0:  # truncate
            b = b[: int(rng.integers(1, max(2, len(b))))]
        elif op == 1:  # flip a few bytes anywhere
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 8))):
                b[pos] ^= int(rng.integers(1, 256))
        elif op == 2:  # flip bytes in the first 200 (headers, magic numbers, lengths)
            for pos in rng.integers(0, min(200, len(b)), size=int(rng.integers(1, 4))):
                b[pos] = int(rng.integers(0, 256))
        else:  # overwrite a run with random bytes
            start = int(rng.integers(0, len(b)))
            run = rng.integers(0, 256, size=min(64, len(b) - start), dtype=np.uint8)
            b[start:start + run.size] = run.tobytes()
        out.append(bytes(b))
    return out


def _cases(tmp: Path) -> list[dict]:
    rng = np.random.default_rng(SEED)
    (tmp / "seeds_dir").mkdir()
    seeds = _seeds(tmp / "seeds_dir")
    cases: list[tuple[str, bytes]] = []
    for name, data in seeds.items():
        ext = name[name.index("."):]
        cases += [(f"mut{j}{ext}", b) for j, b in enumerate(_mutations(data, rng, 40))]
    cases += [(f"hdr{j}.gguf", b) for j, b in enumerate(_gguf_header_mutations(seeds["s.gguf"]))]
    for ext in (".safetensors", ".pt", ".bin", ".onnx", ".npz", ".npy", ".ckpt", ".gguf"):
        for j in range(4):
            size = int(rng.choice([1, 7, 8, 9, 64, 1000]))
            cases.append((f"rand{j}{ext}", rng.integers(0, 256, size, dtype=np.uint8).tobytes()))
    out = []
    for i, (name, data) in enumerate(cases):
        p = tmp / f"{i:04d}_{name}"
        p.write_bytes(data)
        out.append({"i": i, "path": str(p)})
    return out


def test_fuzz_loaders(tmp_path: Path) -> None:
    cases = _cases(tmp_path)
    assert len(cases) > 150
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("".join(json.dumps(c) + "\n" for c in cases))
    proc.stdin.close()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    results: dict[int, dict] = {}
    current, deadline_case = None, time.monotonic() + 60.0  # first case includes imports
    start = time.monotonic()
    try:
        while len(results) < len(cases):
            if not sel.select(timeout=max(0.0, deadline_case - time.monotonic())):
                name = cases[current]["path"] if current is not None else "(startup)"
                pytest.fail(f"loader hung for more than {PER_CASE_TIMEOUT_S}s on {name}")
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                name = cases[current]["path"] if current is not None else "(startup)"
                pytest.fail(f"fuzz child died on {name}: {err[-2000:]}")
            if line.startswith("START"):
                current = int(line.split()[1])
                deadline_case = time.monotonic() + PER_CASE_TIMEOUT_S
                continue
            rec = json.loads(line)
            results[rec["i"]] = rec
    finally:
        proc.kill()
        proc.wait()
    elapsed = time.monotonic() - start
    bad = [f"{Path(cases[i]['path']).name}: {r['result']}: {r['detail']}"
           for i, r in sorted(results.items()) if r["result"] not in ("ok", "error")]
    assert not bad, "\n".join(bad)
    # Sanity: the fuzz exercised the error paths, not just clean loads.
    assert sum(r["result"] == "error" for r in results.values()) > len(cases) // 3
    assert elapsed < 4 * TOTAL_BUDGET_S, f"fuzz took {elapsed:.0f}s"
