"""Loading never runs code, never blows up memory, and reads every valid tensor right.

Regression tests for issue 11 items 1 (TorchScript runs code), 3 (memory bombs, tied
weights) and 9 (big-endian, masked, sparse, meta, quantized, float8, weight_norm).
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file

import weightstats
from weightstats.errors import LoadError, OptionError
from weightstats.layers import infer_kinds
from weightstats.sources import resolve

FAST = {"ks_sample": 200, "ks_replicates": 19}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _script(module: nn.Module) -> Any:
    with warnings.catch_warnings():  # torch.jit.script is deprecated, still what users ship
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(module)


def _jit_load(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path))


# ----------------------------------------------------------------------------- item 1
class Hostile(nn.Module):
    """Its exported ``__setstate__`` memory-maps the victim file and overwrites it on load."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(64, 64))
        self.victim = victim
        self.hits = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight

    @torch.jit.export
    def __getstate__(self) -> tuple[str, torch.Tensor, bool]:
        return (self.victim, self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, torch.Tensor, bool]) -> None:
        t = torch.from_file(state[0], True, 4, dtype=torch.uint8)
        self.hits = int(t.fill_(88).sum())
        self.victim = state[0]
        self.weight = state[1]
        self.training = state[2]


def _hostile_archive(path: Path, victim: Path) -> Path:
    victim.write_text("safe")
    _script(Hostile(str(victim))).save(str(path))
    return path


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    victim = tmp_path / "victim.txt"
    return _hostile_archive(tmp_path / "model.pt", victim), victim


def test_hostile_torchscript_refused_by_the_library(hostile: tuple[Path, Path]) -> None:
    model, victim = hostile
    with pytest.raises(LoadError, match="--allow-pickle") as err:
        weightstats.fit_model(str(model), **FAST)
    assert "\n" not in str(err.value)
    assert victim.read_text() == "safe"


def test_hostile_torchscript_refused_by_the_cli(hostile: tuple[Path, Path], tmp_path: Path) -> None:
    model, victim = hostile
    exe = Path(sys.executable).with_name("weightstats")
    proc = subprocess.run([str(exe), "fit", str(model), "--out", str(tmp_path / "r"),
                           "--no-plots", "--ks-sample", "200", "--ks-replicates", "19"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-pickle" in lines[0], proc.stderr
    assert victim.read_text() == "safe"
    assert not (tmp_path / "r").exists()


def test_hostile_torchscript_in_a_hub_cache_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    import huggingface_hub.constants

    cache = tmp_path / "hf" / "hub"
    storage = cache / "models--evil--repo"
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT)
    snap = storage / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    _hostile_archive(snap / "pytorch_model.bin", victim)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(LoadError, match="--allow-pickle"):
        list(resolve("hf:evil/repo").tensors())
    assert victim.read_text() == "safe"


def test_hostile_torchscript_runs_only_when_opted_in(hostile: tuple[Path, Path]) -> None:
    model, victim = hostile
    names = [t.name for t in resolve(str(model), allow_pickle=True).tensors()]
    assert names == ["weight"]
    assert victim.read_text() == "XXXX"  # the opt-in really is the gate


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 5)
        self.register_buffer("scale", torch.linspace(0.5, 2.0, 5))
        self.plain = torch.ones(3)  # a tensor attribute: neither parameter nor buffer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.inner = Inner()
        self.emb = nn.Embedding(10, 6)
        self.gain = nn.Parameter(torch.randn(7, 3))
        self.strided = nn.Parameter(torch.randn(8, 6)[::2, 1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + self.gain.sum() + self.strided.sum() + self.bn(self.conv(
            torch.zeros(1, 3, 5, 5))).sum() + self.emb.weight.sum()


def test_torchscript_read_without_running_code_matches_jit_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    path = tmp_path / "ok.pt"
    _script(Outer()).save(str(path))
    expected = _jit_load(path).state_dict()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch.jit.load runs the archive's code")

    monkeypatch.setattr(torch.jit, "load", refuse)
    tensors = list(resolve(str(path)).tensors())
    assert [t.name for t in tensors] == list(expected)
    for t in tensors:
        want = expected[t.name].numpy()
        got = t.load()
        assert got.dtype == want.dtype and got.shape == want.shape, t.name
        np.testing.assert_array_equal(got, want, err_msg=t.name)
    kinds = {t.name: t.kind for t in tensors}
    assert kinds["conv.weight"] == "conv" and kinds["inner.lin.weight"] == "linear"
    assert kinds["emb.weight"] == "embedding" and kinds["bn.weight"] == "norm"
    assert kinds["bn.running_mean"] == "other" and kinds["conv.bias"] == "bias"


def test_torchscript_reader_refuses_unknown_globals(tmp_path: Path) -> None:
    """A data.pkl naming any callable outside the tensor-rebuild set is refused, never called."""
    import zipfile

    path = tmp_path / "odd.pt"
    _script(Inner()).save(str(path))
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    key = next(n for n in members if n.endswith("/data.pkl"))
    marker = tmp_path / "RAN"
    members[key] = (b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len(f"touch {marker}"))
                    + f"touch {marker}".encode() + b"\x85R.")
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(LoadError, match="calls posix.system.*--allow-pickle"):
        list(resolve(str(path)).tensors())
    assert not marker.exists()


# ----------------------------------------------------------------------------- item 3
def _nested_bomb(depth: int) -> dict[str, Any]:
    d: dict[str, Any] = {"w": torch.randn(64, 64)}
    for _ in range(depth):
        d = {"a": d, "b": d}
    return d


def test_shared_reference_dicts_are_walked_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb12.pt"
    torch.save(_nested_bomb(12), path)
    tensors = list(resolve(str(path)).tensors())
    assert len(tensors) == 1  # one tensor, not 4,096 layers
    assert tensors[0].name == "a." * 12 + "w"


def test_nested_dict_bomb_40_deep_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "bomb40.pt"
    torch.save(_nested_bomb(40), path)
    assert path.stat().st_size < 64_000
    tracemalloc.start()
    tensors = list(resolve(str(path)).tensors())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(tensors) == 1
    assert peak < 50_000_000


@pytest.mark.parametrize("rows", [1 << 16, 1 << 27])
def test_stride_zero_tensor_fits_its_stored_values(tmp_path: Path, rows: int) -> None:
    path = tmp_path / "expand.pt"
    torch.save({"fc.weight": torch.tensor([1.0, -1.0, 0.5, 2.0]).as_strided((rows, 2), (0, 1))},
               path)
    assert path.stat().st_size < 4_000
    (t,) = list(resolve(str(path)).tensors())
    assert t.numel <= 4
    tracemalloc.start()
    values = t.load()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert values.size <= 4 and peak < 1_000_000
    np.testing.assert_array_equal(values.reshape(-1), [1.0, -1.0])
    assert "stored" in t.note


def test_overlapping_strides_fit_the_storage_span() -> None:
    base = torch.arange(40.0)
    state = {"w.weight": base.as_strided((10, 30), (1, 1))}  # 300 elements over 39 stored
    (t,) = list(resolve(state).tensors())
    assert t.numel == 39
    np.testing.assert_array_equal(t.load(), np.arange(39.0))


def _tied_lm() -> nn.Module:
    class LM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.body = nn.Linear(16, 16)
            self.lm_head = nn.Linear(16, 50, bias=False)
            self.lm_head.weight = self.embed.weight
            self.again = self.body  # the same Linear registered twice

    torch.manual_seed(0)
    return LM()


def _assert_tied(tensors: list[Any]) -> None:
    by_name = {t.name: t for t in tensors}
    assert "lm_head.weight" not in by_name and "again.weight" not in by_name
    assert by_name["embed.weight"].aliases == ("lm_head.weight",)
    assert by_name["body.weight"].aliases == ("again.weight",)
    assert by_name["body.bias"].aliases == ("again.bias",)


def test_tied_weights_are_one_layer_in_a_module() -> None:
    _assert_tied(list(resolve(_tied_lm()).tensors()))


def test_tied_weights_are_one_layer_in_a_state_dict_and_a_file(tmp_path: Path) -> None:
    state = _tied_lm().state_dict()
    _assert_tied(list(resolve(dict(state)).tensors()))
    torch.save(state, tmp_path / "tied.pt")
    _assert_tied(list(resolve(str(tmp_path / "tied.pt")).tensors()))


def test_tied_weights_fitted_once_with_the_alias_noted() -> None:
    report = weightstats.fit_model(_tied_lm(), **FAST)
    names = [layer.name for layer in report.layers]
    assert names == ["embed.weight", "body.weight"]
    notes = report.layers[0].fit.notes
    assert any("lm_head.weight" in n for n in notes), notes


def test_safetensors_names_sharing_offsets_are_one_layer(tmp_path: Path) -> None:
    w = torch.randn(32, 32, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "tied.safetensors"
    save_file({"embed.weight": w, "body.weight": w * 2}, str(path))
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header["lm_head.weight"] = dict(header["embed.weight"])
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    tensors = list(resolve(str(path)).tensors())
    by_name = {t.name: t for t in tensors}
    assert set(by_name) == {"embed.weight", "body.weight"}
    assert by_name["embed.weight"].aliases == ("lm_head.weight",)
    np.testing.assert_array_equal(by_name["embed.weight"].load(), w.numpy())
    np.testing.assert_array_equal(by_name["body.weight"].load(), (w * 2).numpy())


def test_torchscript_tied_module_registered_twice(tmp_path: Path) -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = self.a

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    path = tmp_path / "twice.pt"
    _script(Twice()).save(str(path))
    tensors = list(resolve(str(path)).tensors())
    assert [t.name for t in tensors] == ["a.weight", "a.bias"]
    assert tensors[0].aliases == ("b.weight",)


# ----------------------------------------------------------------------------- item 9
@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f4"])
def test_big_endian_npy_and_npz(tmp_path: Path, dtype: str) -> None:
    x = np.random.default_rng(0).standard_normal((64, 32)).astype(dtype)
    np.save(tmp_path / "w.npy", x)
    np.savez(tmp_path / "m.npz", **{"fc.weight": x})
    for path in (tmp_path / "w.npy", tmp_path / "m.npz"):
        (t,) = list(resolve(str(path)).tensors())
        assert t.dtype == np.dtype(dtype).name and t.is_float
        values = t.load()
        assert values.dtype.isnative
        np.testing.assert_array_equal(values, x)
    report = weightstats.fit_model(str(tmp_path / "m.npz"), **FAST)
    assert report.layers[0].fit.status == "ok"


def test_masked_array_excludes_and_counts_masked_values() -> None:
    x = np.random.default_rng(0).standard_normal(100)
    mask = np.arange(100) % 2 == 0
    x[mask] = 1e6  # masked garbage that would wreck the fit if it were used
    fit = weightstats.fit_tensor(np.ma.array(x, mask=mask), **FAST)
    assert fit.n == 50
    assert fit.counts["n_masked"] == 50 and fit.counts["n_nan"] == 0
    assert any("masked" in note for note in fit.notes)
    plain = weightstats.fit_tensor(x[~mask], **FAST)
    assert fit.to_frame()["loglik"].tolist() == plain.to_frame()["loglik"].tolist()


def test_masked_array_in_a_state_dict() -> None:
    x = np.random.default_rng(0).standard_normal((10, 10))
    mask = np.zeros((10, 10), bool)
    mask[:5] = True
    report = weightstats.fit_model({"fc.weight": np.ma.array(x, mask=mask)}, **FAST)
    assert report.layers[0].fit.n == 50


def _file_loads_without_warnings(path: Path) -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensors = list(resolve(str(path)).tensors())
        arrays = [t.load() for t in tensors]
    return list(zip(tensors, arrays, strict=True))


def test_sparse_coo_file_fits_its_stored_values(tmp_path: Path) -> None:
    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    w[w.abs() < 1] = 0
    torch.save({"fc.weight": w.to_sparse()}, tmp_path / "sparse.pt")
    ((t, values),) = _file_loads_without_warnings(tmp_path / "sparse.pt")
    nnz = int((w != 0).sum())
    assert t.shape == (nnz,) and t.kind == "linear" and "sparse" in t.note
    np.testing.assert_array_equal(np.sort(values), np.sort(w[w != 0].numpy()))


def test_meta_tensors_give_one_line(tmp_path: Path) -> None:
    torch.save({"fc.weight": torch.empty(64, 64, device="meta")}, tmp_path / "meta.pt")
    with pytest.raises(LoadError, match="meta device") as err:
        weightstats.fit_model(str(tmp_path / "meta.pt"), **FAST)
    assert "\n" not in str(err.value) and "corrupt" not in str(err.value)
    with torch.device("meta"):
        model = nn.Linear(64, 64)
    with pytest.raises(LoadError, match="meta device"):
        weightstats.fit_model(model, **FAST)


def _quantized(w: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # quantized creation is deprecated
        return torch.quantize_per_tensor(w, 0.05, 0, torch.qint8)


def test_quantized_tensors_are_dequantized_and_flagged(tmp_path: Path) -> None:
    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    q = _quantized(w)
    torch.save({"fc.weight": q}, tmp_path / "q.pt")
    ((t, values),) = _file_loads_without_warnings(tmp_path / "q.pt")
    assert t.dtype == "qint8" and t.is_float and "quantized" in t.note
    np.testing.assert_array_equal(values, q.dequantize().numpy())
    report = weightstats.fit_model(str(tmp_path / "q.pt"), **FAST)
    layer = report.layers[0]  # the values sit on 128 levels; the fitter may say so ("quantized")
    assert layer.dtype == "qint8" and layer.fit.status in ("ok", "quantized"), layer.fit.message
    assert any("dequantized" in note for note in layer.fit.notes)


def test_fit_tensor_on_odd_torch_tensors() -> None:
    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    f8 = weightstats.fit_tensor(w.to(torch.float8_e4m3fn), **FAST)
    assert f8.status == "ok" and f8.n == 4096
    q = _quantized(w)
    fq = weightstats.fit_tensor(q, **FAST)
    assert fq.to_dict() == weightstats.fit_tensor(q.dequantize(), **FAST).to_dict() | {
        "dtype": "qint8"}
    s = w.clone()
    s[s.abs() < 0.5] = 0
    fs = weightstats.fit_tensor(s.to_sparse(), **FAST)
    assert fs.status == "ok" and fs.n == int((s != 0).sum())
    with pytest.raises(OptionError, match="meta"):
        weightstats.fit_tensor(torch.empty(64, device="meta"), **FAST)


def test_weight_norm_gains_are_not_conv_layers(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the old API is deprecated
        old = nn.utils.weight_norm(nn.Conv2d(3, 8, 3))
    new = nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 8, 3))
    lin = nn.utils.parametrizations.weight_norm(nn.Linear(6, 4))
    model = nn.ModuleDict({"old": old, "new": new, "lin": lin})
    want = {"old.weight_g": "norm", "old.weight_v": "conv", "old.bias": "bias",
            "new.parametrizations.weight.original0": "norm",
            "new.parametrizations.weight.original1": "conv",
            "lin.parametrizations.weight.original0": "norm",
            "lin.parametrizations.weight.original1": "linear"}
    from_module = {t.name: t.kind for t in resolve(model).tensors()}
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    from_names = infer_kinds(shapes)
    for name, kind in want.items():
        assert from_module[name] == kind, (name, from_module[name])
        assert from_names[name] == kind, (name, from_names[name])
    # torch's naming: original0 is the per-channel norm g, original1 the direction v
    assert math.prod(shapes["new.parametrizations.weight.original0"]) == 8


def test_mutated_torchscript_archives_load_or_say_why(tmp_path: Path) -> None:
    """Byte flips and truncations inside data.pkl and code/: a clean load or one LoadError."""
    import zipfile

    path = tmp_path / "ok.pt"
    torch.manual_seed(0)
    _script(Outer()).save(str(path))
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    targets = [n for n in members if n.endswith("/data.pkl") or n.endswith("code/__torch__.py")]
    rng = np.random.default_rng(0)
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(80):
        name = targets[case % len(targets)]
        data = bytearray(members[name])
        if case % 4 == 3:
            data = data[: int(rng.integers(1, len(data)))]
        else:
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
                data[pos] = int(rng.integers(0, 256))
        bad = tmp_path / f"m{case}.pt"
        with zipfile.ZipFile(bad, "w") as z:
            for n, content in members.items():
                z.writestr(n, bytes(data) if n == name else content)
        try:
            for t in resolve(str(bad)).tensors():
                t.load()
            outcomes["loaded"] += 1
        except LoadError as err:
            assert "\n" not in str(err)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0
