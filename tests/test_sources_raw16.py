"""Tensors of at most 16 bits load in their stored dtype, unwidened and, where promised, uncopied.

For every format (safetensors, torch .pt, GGUF, .npy, an in-memory module, a state dict) and
float16 / bfloat16 / float8_e4m3fn where the format stores it, ``WeightTensor.load()`` returns the
stored dtype (bfloat16 and float8 as ml_dtypes' types) with bit-identical values, read-only, and
from a file as a view of the file's own memory mapping (no copy: the fitter reads the bytes once,
2 bytes per value). The file is never modified; a corrupt one is a one-line LoadError.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from weightstats.errors import LoadError
from weightstats.sources import resolve
from weightstats.sources.base import tensors_from_module, tensors_from_state_dict

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16,
          "float8_e4m3fn": torch.float8_e4m3fn}
STORED = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16),
          "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn)}
HAS_MAPS = Path("/proc/self/maps").exists()


def sample(dtype: str, shape: tuple[int, ...] = (24, 40), seed: int = 0) -> torch.Tensor:
    """Seeded t(5) weights in ``dtype``, with an exact zero and a negative zero."""
    values = np.random.default_rng(seed).standard_t(5, shape) * 0.05
    x = torch.from_numpy(values.astype(np.float32)).to(DTYPES[dtype])
    flat = x.view(-1)
    flat[0], flat[1] = 0.0, -0.0
    return x


def bits(a: np.ndarray | torch.Tensor) -> np.ndarray:
    """The stored bit patterns (uint8/uint16), for bit-identical comparisons."""
    if isinstance(a, torch.Tensor):
        view = a.contiguous().view(torch.uint8 if a.element_size() == 1 else torch.int16)
        a = view.numpy()
    a = np.ascontiguousarray(a)
    return a.view(np.uint8 if a.itemsize == 1 else np.uint16)


def mapped_from(arr: np.ndarray, path: Path) -> bool:
    """True when ``arr``'s data lies in a memory mapping of the file ``path`` (no copy)."""
    start = arr.__array_interface__["data"][0]
    end = start + max(arr.nbytes, 1)
    real = os.path.realpath(path)
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].strip() == real:
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            if lo <= start and end <= hi:
                return True
    return False


def check_raw(got: np.ndarray, want: torch.Tensor, dtype: str) -> None:
    """Stored dtype, bit-identical, read-only."""
    assert got.dtype == STORED[dtype], (got.dtype, dtype)
    assert got.shape == tuple(want.shape)
    np.testing.assert_array_equal(bits(got), bits(want))
    assert not got.flags.writeable
    with pytest.raises(ValueError):
        got.reshape(-1)[0] = 1


def untouched(path: Path):
    """A check that ``path`` has the bytes and mtime it had when this was called."""
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    return lambda: (path.read_bytes(), path.stat().st_mtime_ns) == before


# ----------------------------------------------------------------------------- files
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_safetensors_is_a_read_only_map_of_the_file(tmp_path: Path, dtype: str) -> None:
    state = {"fc.weight": sample(dtype), "emb.weight": sample(dtype, (50, 8), 1),
             "fc.bias": sample(dtype, (24,), 2), "other": torch.randn(3, 4)}
    path = tmp_path / "m.safetensors"
    save_file(state, str(path))
    same = untouched(path)
    for t in resolve(str(path)).tensors():
        got = t.load()
        if t.name == "other":
            assert got.dtype == np.float32 and got.flags.writeable  # a fresh copy, as before
            continue
        assert t.dtype == dtype
        check_raw(got, state[t.name], dtype)
        if HAS_MAPS:
            assert mapped_from(got, path), t.name
        del got
    assert same()


def test_safetensors_tied_entries_map_their_shared_bytes(tmp_path: Path) -> None:
    # Two names on the same bytes: safetensors' own reader refuses the file, ours maps the range.
    w = sample("bfloat16", (16, 8))
    path = tmp_path / "tied.safetensors"
    save_file({"embed.weight": w}, str(path))
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["lm_head.weight"] = dict(header["embed.weight"])
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])
    (t,) = resolve(str(path)).tensors()
    assert t.aliases == ("lm_head.weight",)
    got = t.load()
    check_raw(got, w, "bfloat16")
    if HAS_MAPS:
        assert mapped_from(got, path)


def test_safetensors_empty_tensor(tmp_path: Path) -> None:
    path = tmp_path / "e.safetensors"
    save_file({"w": torch.zeros(0, 3, dtype=torch.bfloat16), "v": sample("bfloat16")}, str(path))
    got = {t.name: t.load() for t in resolve(str(path)).tensors()}
    assert got["w"].shape == (0, 3) and got["w"].dtype == STORED["bfloat16"]


def _corrupt_offsets(path: Path) -> None:
    """Shrink a 16-bit tensor's byte range by one value: its offsets no longer match its shape."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + n].decode()
    cut = header.replace('"data_offsets":[0,', '"data_offsets":[2,', 1)
    assert cut != header
    path.write_bytes(raw[:8] + cut.encode() + raw[8 + n:])


@pytest.mark.parametrize("how", ["offsets", "truncated-after-resolve", "truncated"])
def test_safetensors_corrupt_is_one_line(tmp_path: Path, how: str) -> None:
    path = tmp_path / "bad.safetensors"
    save_file({"w": sample("bfloat16")}, str(path))
    with pytest.raises(LoadError) as info:
        if how == "offsets":
            _corrupt_offsets(path)
            for t in resolve(str(path)).tensors():
                t.load()
        elif how == "truncated":
            path.write_bytes(path.read_bytes()[:-64])
            for t in resolve(str(path)).tensors():
                t.load()
        else:
            tensors = list(resolve(str(path)).tensors())
            path.write_bytes(path.read_bytes()[:-64])
            for t in tensors:
                t.load()
    assert "\n" not in str(info.value) and "again" in str(info.value)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_torch_checkpoint_views_its_mapped_storage(tmp_path: Path, dtype: str) -> None:
    state = {"fc.weight": sample(dtype), "emb.weight": sample(dtype, (50, 8), 1)}
    path = tmp_path / "m.pt"
    torch.save(state, path)
    same = untouched(path)
    for t in resolve(str(path)).tensors():
        got = t.load()
        assert t.dtype == dtype
        check_raw(got, state[t.name], dtype)
        if HAS_MAPS:  # torch.load(mmap=True): the values are the file's mapped bytes
            assert mapped_from(got, path), t.name
        del got
    assert same()


def mapping_size(arr: np.ndarray, path: Path) -> int:
    """Bytes of the mapping of ``path`` that holds ``arr``'s data (0 if none)."""
    start = arr.__array_interface__["data"][0]
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].strip() == os.path.realpath(path):
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            if lo <= start < hi:
                return hi - lo
    return 0


@pytest.mark.skipif(not HAS_MAPS, reason="needs /proc/self/maps")
def test_torch_checkpoint_tensor_has_a_map_of_its_own(tmp_path: Path) -> None:
    # torch.load(mmap=True) maps the whole file for the state dict's life, so pages read through
    # it would stay resident; each tensor is read through a map of just its bytes, closed with it.
    state = {f"layer{i}.weight": sample("bfloat16", (512, 1024), i) for i in range(4)}
    path = tmp_path / "big.pt"
    torch.save(state, path)
    size = path.stat().st_size
    for t in resolve(str(path)).tensors():
        got = t.load()
        check_raw(got, state[t.name], "bfloat16")
        assert 0 < mapping_size(got, path) <= got.nbytes + 2 * 4096 < size / 2, t.name
        del got


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_legacy_torch_checkpoint(tmp_path: Path, dtype: str) -> None:
    state = {"fc.weight": sample(dtype)}
    path = tmp_path / "legacy.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    (t,) = resolve(str(path)).tensors()
    check_raw(t.load(), state["fc.weight"], dtype)


def _gguf(path: Path, dtype: str, w: torch.Tensor) -> None:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    if dtype == "float16":
        writer.add_tensor("blk.0.ffn_up.weight", w.numpy())
    else:
        raw = bits(w).view(np.uint8)
        writer.add_tensor("blk.0.ffn_up.weight", raw, raw_dtype=gguf.GGMLQuantizationType.BF16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gguf_is_a_read_only_map_of_the_file(tmp_path: Path, dtype: str) -> None:
    pytest.importorskip("gguf")
    w = sample(dtype, (24, 64))
    path = tmp_path / "m.gguf"
    _gguf(path, dtype, w)
    same = untouched(path)
    (t,) = resolve(str(path)).tensors()
    assert (t.dtype, t.shape) == (dtype, (24, 64))  # NumPy order: (out, in)
    got = t.load()
    check_raw(got, w, dtype)
    if HAS_MAPS:
        assert mapped_from(got, path)
    del got
    assert same()


def test_gguf_truncated_after_resolve_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    path = tmp_path / "m.gguf"
    _gguf(path, "bfloat16", sample("bfloat16", (24, 64)))
    (t,) = resolve(str(path)).tensors()
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(LoadError) as info:
        t.load()
    assert "\n" not in str(info.value)


def test_npy_float16_is_a_read_only_map_of_the_file(tmp_path: Path) -> None:
    w = sample("float16")
    path = tmp_path / "w.npy"
    np.save(path, w.numpy())
    same = untouched(path)
    (t,) = resolve(str(path)).tensors()
    got = t.load()
    check_raw(got, w, "float16")
    if HAS_MAPS:
        assert mapped_from(got, path)
    del got
    assert same()


def test_npy_truncated_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "w.npy"
    np.save(path, sample("float16").numpy())
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(LoadError) as info:
        for t in resolve(str(path)).tensors():
            t.load()
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- in memory
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_module_parameters_are_shared_read_only(dtype: str) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(40, 24), torch.nn.Embedding(50, 8))
    with torch.no_grad():
        model[0].weight.copy_(sample("float16").float())
    model = model.to(DTYPES[dtype])
    for t in tensors_from_module(model):
        got = t.load()
        param = model.state_dict()[t.name]
        check_raw(got, param, dtype)
        assert np.shares_memory(got.view(np.uint8), param.view(torch.uint8).numpy())
    # The model cannot be changed through what was loaded, and loading did not change it.
    assert model[0].weight.dtype == DTYPES[dtype]


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_state_dict_tensors_and_arrays_are_shared_read_only(dtype: str) -> None:
    w = sample(dtype)
    arr = w.float().numpy().astype(STORED[dtype])  # an ml_dtypes / float16 NumPy array
    wide = w.expand(3, *w.shape)  # expanded: each stored value once, still a view
    ts = {t.name: t for t in tensors_from_state_dict({"a.weight": w, "b.weight": arr,
                                                      "c.weight": wide})}
    got = ts["a.weight"].load()
    check_raw(got, w, dtype)
    assert np.shares_memory(got.view(np.uint8), w.view(torch.uint8).numpy())
    got = ts["b.weight"].load()
    assert got.dtype == STORED[dtype] and not got.flags.writeable
    assert np.shares_memory(got, arr)
    np.testing.assert_array_equal(bits(got), bits(w))
    assert arr.flags.writeable  # the caller's own array keeps its flags
    got = ts["c.weight"].load()
    check_raw(got, w[None], dtype)  # the stride-0 axis keeps one index
    assert np.shares_memory(got.view(np.uint8), w.view(torch.uint8).numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_wider_arrays_are_still_fresh_copies(dtype: type) -> None:
    arr = np.arange(12, dtype=dtype).reshape(3, 4)
    (t,) = tensors_from_state_dict({"w": arr})
    got = t.load()
    assert got.dtype == dtype and got.flags.writeable and not np.shares_memory(got, arr)
    (t,) = tensors_from_state_dict({"w": torch.from_numpy(arr)})
    got = t.load()
    assert got.dtype == dtype and got.flags.writeable and not np.shares_memory(got, arr)


def test_big_endian_float16_array_is_a_native_copy() -> None:
    arr = sample("float16").numpy().astype(">f2")
    (t,) = tensors_from_state_dict({"w": arr})
    got = t.load()
    assert got.dtype == np.float16 and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


# ----------------------------------------------------------------------------- downstream
def test_fit_and_heterogeneity_read_mapped_bfloat16(tmp_path: Path) -> None:
    from weightstats import fit_tensor
    from weightstats.fitting.heterogeneity import scale_heterogeneity

    w = sample("bfloat16", (64, 96), 3)
    path = tmp_path / "m.safetensors"
    save_file({"fc.weight": w}, str(path))
    (t,) = resolve(str(path)).tensors()
    got = t.load()
    wide = w.float().numpy()
    assert scale_heterogeneity(got) == scale_heterogeneity(wide)
    a = fit_tensor(got, ["normal", "laplace"])
    b = fit_tensor(wide, ["normal", "laplace"])
    assert a.status == b.status == "ok"
    assert a.dtype == "bfloat16"  # the stored dtype, not the widened one
    fa, fb = a.to_frame().set_index("family"), b.to_frame().set_index("family")
    np.testing.assert_allclose(fa["loglik"], fb["loglik"], rtol=1e-9)
    np.testing.assert_allclose(fa["ks_stat"], fb["ks_stat"], rtol=0, atol=1e-12)
