"""GGUF files (llama.cpp) written by gguf's own GGUFWriter: exact floats, dequantized quants,
kinds from GGUF names, the CLI end to end, and one-line errors for broken files."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf.quants import dequantize, quantize  # noqa: E402

import weightstats  # noqa: E402
from weightstats.errors import LoadError  # noqa: E402
from weightstats.sources import resolve  # noqa: E402

Q = gguf.GGMLQuantizationType
EXE = Path(sys.executable).with_name("weightstats")


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 values -> their bfloat16 bit patterns (truncated: exact for the test's purpose)."""
    return (np.ascontiguousarray(x, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def write_gguf(path: Path, tensors: dict[str, tuple[np.ndarray, object]]) -> None:
    """Write ``name -> (array, raw_dtype or None)`` with gguf's own writer."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_token_list(["<s>", "a", "b"])
    for name, (arr, raw) in tensors.items():
        if raw is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A small llama-shaped GGUF file and the values each tensor must load as."""
    rng = np.random.default_rng(7)
    f32 = rng.standard_normal((48, 64)).astype(np.float32)
    f16 = (rng.standard_normal((100, 64)) * 0.02).astype(np.float16)
    bf_bits = bf16_bits(rng.standard_t(5, (64, 96)) * 0.03)
    q8_src = (rng.standard_t(6, (128, 256)) * 0.02).astype(np.float32)
    q8 = quantize(q8_src, Q.Q8_0)
    norm = (1 + 0.1 * rng.standard_normal(64)).astype(np.float32)
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_gguf(path, {
        "token_embd.weight": (f16, None),
        "blk.0.attn_norm.weight": (norm, None),
        "blk.0.attn_q.weight": (f32, None),
        "blk.0.ffn_up.weight": (bf_bits.view(np.uint8), Q.BF16),
        "blk.0.ffn_down.weight": (q8, Q.Q8_0),
        "output_norm.weight": (norm, None),
        "output.weight": (f32, None),
    })
    expected = {
        "token_embd.weight": f16, "blk.0.attn_norm.weight": norm, "blk.0.attn_q.weight": f32,
        "blk.0.ffn_up.weight": (bf_bits.astype(np.uint32) << 16).view(np.float32),
        "blk.0.ffn_down.weight": dequantize(q8, Q.Q8_0), "output_norm.weight": norm,
        "output.weight": f32,
    }
    return path, expected


def test_floats_round_trip_exactly_in_numpy_order(model) -> None:
    path, expected = model
    tensors = {t.name: t for t in resolve(str(path)).tensors()}
    assert list(tensors) == list(expected)
    for name, want in expected.items():
        t = tensors[name]
        got = t.load()
        assert t.shape == want.shape == got.shape, name  # (out, in), as PyTorch stores it
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert tensors["token_embd.weight"].dtype == "float16"
    assert tensors["token_embd.weight"].load().dtype == np.float16
    assert tensors["blk.0.attn_q.weight"].dtype == "float32"
    assert tensors["blk.0.ffn_up.weight"].dtype == "bfloat16"
    assert tensors["blk.0.ffn_up.weight"].load().dtype == ml_dtypes.bfloat16  # stored, unwidened


def test_quantized_tensor_is_dequantized_and_flagged(model) -> None:
    path, expected = model
    t = next(t for t in resolve(str(path)).tensors() if t.name == "blk.0.ffn_down.weight")
    assert t.dtype == "gguf:Q8_0" and t.is_float
    assert "GGUF Q8_0" in t.grid and "blocks of 32" in t.grid
    got = t.load()
    np.testing.assert_array_equal(got, expected["blk.0.ffn_down.weight"])
    # Each block of 32 holds integer multiples of its own scale: the values lie on a grid.
    blocks = got.reshape(-1, 32).astype(np.float64)
    scale = np.abs(blocks).max(axis=1, keepdims=True) / 127
    np.testing.assert_allclose(blocks / scale, np.round(blocks / scale), atol=1e-2)


def q4_k_blocks(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Valid Q4_K bytes (gguf cannot quantize K-types): finite fp16 super-block scales, random
    6-bit sub-scales and 4-bit values; 256 values per 144-byte block."""
    blocks = rng.integers(0, 256, (rows * cols // 256, 144), dtype=np.uint8)
    scales = np.array([0.002, 0.001], np.float16).view(np.uint8)  # d, dmin
    blocks[:, :4] = scales
    return blocks.reshape(rows, cols // 256 * 144)


def test_k_quant_tensor_is_dequantized_in_numpy_order(tmp_path: Path) -> None:
    raw = q4_k_blocks(np.random.default_rng(3), 16, 512)
    path = tmp_path / "k.gguf"
    write_gguf(path, {"blk.0.ffn_gate.weight": (raw, Q.Q4_K)})
    (t,) = resolve(str(path)).tensors()
    assert (t.name, t.kind, t.shape, t.dtype) == ("blk.0.ffn_gate.weight", "linear", (16, 512),
                                                  "gguf:Q4_K")
    got = t.load()
    np.testing.assert_array_equal(got, dequantize(raw, Q.Q4_K))
    assert np.isfinite(got).all() and np.unique(got).size > 16


def test_kinds_from_gguf_names(model) -> None:
    path, _ = model
    kinds = {t.name: t.kind for t in resolve(str(path)).tensors()}
    assert kinds == {
        "token_embd.weight": "embedding", "blk.0.attn_norm.weight": "norm",
        "blk.0.attn_q.weight": "linear", "blk.0.ffn_up.weight": "linear",
        "blk.0.ffn_down.weight": "linear", "output_norm.weight": "norm",
        "output.weight": "linear",
    }


def test_expert_weights_are_linear() -> None:
    from weightstats.sources.kinds import infer_kind

    assert infer_kind("blk.0.ffn_up_exps.weight", (8, 64, 32)) == "linear"
    assert infer_kind("blk.0.conv.weight", (8, 64, 3)) == "conv"


def test_fit_model_reads_gguf_and_notes_the_grid(model) -> None:
    path, _ = model
    report = weightstats.fit_model(str(path), ks_replicates=19, ks_sample=500,
                                   kinds=("linear", "embedding"))
    by_name = {lr.name: lr for lr in report.layers}
    assert set(by_name) == {"token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_up.weight",
                            "blk.0.ffn_down.weight", "output.weight"}
    q8 = by_name["blk.0.ffn_down.weight"]
    assert q8.dtype == "gguf:Q8_0"
    # Declined as quantized: per-block scales hide the grid from the atom test, which read a
    # Q8_0 t(6) tensor as "pruned" and fitted t df 12.8 to the rest.
    assert q8.fit.status == "quantized"
    assert "GGUF Q8_0" in q8.fit.message and "blocks of 32" in q8.fit.message
    assert q8.fit.n == 128 * 256 and np.isfinite(q8.fit.descriptives["std"])
    assert by_name["blk.0.ffn_up.weight"].dtype == "bfloat16"
    assert by_name["blk.0.ffn_up.weight"].fit.status == "ok"
    # 16-bit tensors are fitted from their counted bit patterns, float32 ones from their values.
    assert {name: lr.fit.path for name, lr in by_name.items()} == {
        "token_embd.weight": "counted", "blk.0.attn_q.weight": "values",
        "blk.0.ffn_up.weight": "counted", "blk.0.ffn_down.weight": "values",
        "output.weight": "values"}


def test_cli_end_to_end(model, tmp_path: Path) -> None:
    if not EXE.exists():  # pragma: no cover - the package is installed editable in the venv
        pytest.skip("weightstats console script not installed")
    path, _ = model
    out = tmp_path / "out"
    proc = subprocess.run([str(EXE), "fit", str(path), "--no-plots", "--out", str(out),
                           "--ks-sample", "500", "--ks-replicates", "19"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    csv = (out / "layers.csv").read_text()
    assert "blk.0.attn_q.weight" in csv and "gguf:Q8_0" in csv


def _mutants(data: bytes) -> dict[str, bytes]:
    n_tensors = struct.unpack("<Q", data[8:16])[0]
    return {
        "bad-magic": b"GGUX" + data[4:],
        "header-only": data[:12],
        "half": data[: len(data) // 2],
        "no-tail": data[:-100],
        "huge-tensor-count": data[:8] + struct.pack("<Q", 2**63) + data[16:],
        "huge-kv-count": data[:16] + struct.pack("<Q", 2**40) + data[24:],
        "one-more-tensor": data[:8] + struct.pack("<Q", n_tensors + 1) + data[16:],
        "huge-string": data[:24] + struct.pack("<Q", 2**62) + data[32:],
        "version-99": data[:4] + struct.pack("<I", 99) + data[8:],
    }


@pytest.mark.parametrize("case", sorted(_mutants(b"GGUF" + bytes(60))))
def test_corrupt_files_are_one_line_load_errors(model, tmp_path: Path, case: str) -> None:
    path, _ = model
    bad = tmp_path / f"{case}.gguf"
    bad.write_bytes(_mutants(path.read_bytes())[case])
    with pytest.raises(LoadError) as info:
        for t in resolve(str(bad)).tensors():
            t.load()
    text = str(info.value)
    assert "\n" not in text and str(bad) in text


def test_cli_corrupt_file_exits_2(model, tmp_path: Path) -> None:
    if not EXE.exists():  # pragma: no cover
        pytest.skip("weightstats console script not installed")
    path, _ = model
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(path.read_bytes()[:-100])
    proc = subprocess.run([str(EXE), "fit", str(bad), "--no-plots", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "GGUF" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_sniffed_without_the_extension(model, tmp_path: Path) -> None:
    path, expected = model
    other = tmp_path / "weights.bin.unknown"
    other.write_bytes(path.read_bytes())
    names = [t.name for t in resolve(str(other)).tensors()]
    assert names == list(expected)


@pytest.mark.parametrize("per_channel", [False, True])
def test_fit_tensor_declines_a_stated_grid(per_channel: bool) -> None:
    x = dequantize(quantize(np.random.default_rng(5).standard_t(6, (64, 256)).astype(np.float32)
                            * 0.02, Q.Q8_0), Q.Q8_0)
    assert weightstats.fit_tensor(x, ks_replicates=19, ks_sample=500).status != "quantized"
    fit = weightstats.fit_tensor(x, ks_replicates=19, ks_sample=500, per_channel=per_channel,
                                 grid="GGUF Q8_0: blocks of 32 values")
    assert fit.status == "quantized" and "GGUF Q8_0" in fit.message
    assert fit.n == x.size and fit.descriptives["max"] == float(x.max())
