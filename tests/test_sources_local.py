"""Local files and in-memory objects, all written by the tests themselves (offline)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import save_file
from torch import nn

from weightstats.errors import LoadError, SpecError
from weightstats.layers import select
from weightstats.sources import resolve


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).flatten(1))


@pytest.fixture
def tiny() -> Tiny:
    torch.manual_seed(1)
    return Tiny().eval()


def by_name(source) -> dict:
    return {t.name: t for t in source.tensors()}


def assert_one_line(err: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(err.value) and str(err.value)


def check_tiny(tensors: dict, tiny: Tiny) -> None:
    sd = tiny.state_dict()
    assert tensors["conv.weight"].kind == "conv"
    assert tensors["fc.weight"].kind == "linear"
    assert tensors["bn.weight"].kind == "norm"
    assert tensors["fc.bias"].kind == "bias"
    assert tensors["conv.weight"].shape == (4, 1, 3, 3)
    for name in ("conv.weight", "fc.weight", "bn.weight"):
        np.testing.assert_array_equal(tensors[name].load(), sd[name].numpy())


# ----------------------------------------------------------------------------- in memory
def test_module_and_state_dict(tiny: Tiny) -> None:
    src = resolve(tiny)
    check_tiny(by_name(src), tiny)
    assert src.name == "module-Tiny"
    src = resolve(dict(tiny.state_dict()))
    check_tiny(by_name(src), tiny)
    assert by_name(src)["bn.num_batches_tracked"].is_float is False
    numpy_sd = {"dense.weight": np.ones((3, 2), np.float32)}
    assert by_name(resolve(numpy_sd))["dense.weight"].load().shape == (3, 2)


def test_bad_python_specs() -> None:
    with pytest.raises(SpecError):
        resolve({"a": 1})
    with pytest.raises(SpecError):
        resolve(42)


# ----------------------------------------------------------------------------- safetensors
def test_safetensors_values_bf16_and_name(tmp_path: Path, tiny: Tiny) -> None:
    sd = {k: v.contiguous() for k, v in tiny.state_dict().items()}
    sd["extra.weight"] = torch.randn(5, 6).to(torch.bfloat16)
    path = tmp_path / "tiny-model.safetensors"
    save_file(sd, str(path))
    src = resolve(str(path))
    assert src.name == "tiny-model"
    ts = by_name(src)
    check_tiny(ts, tiny)
    assert ts["extra.weight"].dtype == "bfloat16"
    np.testing.assert_array_equal(ts["extra.weight"].load(), sd["extra.weight"].float().numpy())
    assert resolve(path).name == "tiny-model"  # os.PathLike works too


def test_safetensors_is_lazy(tmp_path: Path, tiny: Tiny, monkeypatch) -> None:
    import safetensors

    path = tmp_path / "m.safetensors"
    save_file(dict(tiny.state_dict()), str(path))
    opened: list[str] = []
    real = safetensors.safe_open

    def spy(*args, **kwargs):
        opened.append(str(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(safetensors, "safe_open", spy)
    ts = list(resolve(path).tensors())
    assert opened == []  # names, shapes and dtypes came from the JSON header alone
    assert {t.name: t.shape for t in ts}["fc.weight"] == (3, 16)
    ts[0].load()
    assert opened == [str(path)]


def test_safetensors_truncated_and_garbage(tmp_path: Path, tiny: Tiny) -> None:
    path = tmp_path / "m.safetensors"
    save_file(dict(tiny.state_dict()), str(path))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(LoadError, match="truncated") as err:
        list(resolve(path).tensors())
    assert_one_line(err)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(LoadError) as err:
        list(resolve(bad).tensors())
    assert_one_line(err)


# ----------------------------------------------------------------------------- torch files
@pytest.mark.parametrize(
    ("wrap", "ext"),
    [
        (lambda sd: sd, ".pt"),
        (lambda sd: {"epoch": 3, "state_dict": {"model." + k: v for k, v in sd.items()},
                     "optimizer_states": [{"lr": 0.1}]}, ".ckpt"),
        (lambda sd: {"model_state_dict": sd, "epoch": 1}, ".pth"),
        (lambda sd: sd, ".bin"),
    ],
    ids=["plain", "lightning", "model_state_dict", "bin"],
)
def test_torch_files(tmp_path: Path, tiny: Tiny, wrap, ext: str) -> None:
    path = tmp_path / f"ckpt{ext}"
    torch.save(wrap(dict(tiny.state_dict())), path)
    ts = by_name(resolve(str(path)))
    check_tiny(ts, tiny)  # Lightning's "model." prefix is stripped for display


def test_legacy_torch_format(tmp_path: Path, tiny: Tiny) -> None:
    path = tmp_path / "old.pt"  # non-zip format: cannot be memory-mapped, still loads
    torch.save(dict(tiny.state_dict()), path, _use_new_zipfile_serialization=False)
    check_tiny(by_name(resolve(path)), tiny)


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_malicious_pickle_does_not_run(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"weight": torch.ones(2), "x": Evil(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(payload, fh)
    with pytest.raises(LoadError, match="arbitrary Python objects.*allow-pickle") as err:
        list(resolve(str(path)).tensors())
    assert_one_line(err)
    assert not marker.exists()


def test_pickled_module_needs_allow_pickle(tmp_path: Path, tiny: Tiny) -> None:
    path = tmp_path / "whole.pt"
    torch.save(tiny, path)
    with pytest.raises(LoadError, match="allow-pickle"):
        list(resolve(path).tensors())
    ts = by_name(resolve(path, allow_pickle=True))
    check_tiny(ts, tiny)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript(tmp_path: Path, tiny: Tiny) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(tiny), str(path))
    check_tiny(by_name(resolve(path)), tiny)  # kinds from the scripted modules' class names


def test_corrupt_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(LoadError) as err:
        list(resolve(path).tensors())
    assert_one_line(err)


def test_torch_file_without_tensors(tmp_path: Path) -> None:
    path = tmp_path / "meta.pt"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(LoadError, match="no tensors"):
        list(resolve(path).tensors())


# ----------------------------------------------------------------------------- numpy
def test_npz_and_npy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {"conv1.weight": rng.normal(size=(4, 2, 3, 3)).astype(np.float32),
              "fc.weight": rng.normal(size=(3, 5)).astype(np.float16),
              "steps": np.arange(3)}
    np.savez(tmp_path / "w.npz", **arrays)
    ts = by_name(resolve(tmp_path / "w.npz"))
    assert (ts["conv1.weight"].kind, ts["fc.weight"].kind, ts["fc.weight"].dtype) == (
        "conv", "linear", "float16")
    np.testing.assert_array_equal(ts["fc.weight"].load(), arrays["fc.weight"])
    assert [t.name for t in select(ts.values(), kinds=None)] == ["conv1.weight", "fc.weight"]
    np.save(tmp_path / "dense.npy", arrays["fc.weight"])
    (t,) = resolve(tmp_path / "dense.npy").tensors()
    assert t.name == "dense" and t.kind == "linear"
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(LoadError):
        list(resolve(tmp_path / "bad.npz").tensors())


# ----------------------------------------------------------------------------- onnx
def _helper_onnx(path: Path) -> None:
    """Conv + Gemm initializers, a float Constant, int64 shape constants, an If subgraph."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 1, 3, 3)).astype(np.float32), "anon_1")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "anon_2")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape_const")
    fcw = numpy_helper.from_array(rng.normal(size=(3, 16)).astype(np.float32), "fc_w")
    sub_w = numpy_helper.from_array(np.ones((3, 3), np.float32), "sub_gemm_w")
    then_g = helper.make_graph(
        [helper.make_node("Gemm", ["y", "sub_gemm_w"], ["z_then"])], "then",
        [], [helper.make_tensor_value_info("z_then", TensorProto.FLOAT, None)], [sub_w])
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["y"], ["z_else"])], "else",
        [], [helper.make_tensor_value_info("z_else", TensorProto.FLOAT, None)])
    const = helper.make_tensor("c", TensorProto.FLOAT, (2, 2), [1.0, 2.0, 3.0, 4.0])
    nodes = [
        helper.make_node("Conv", ["x", "anon_1", "anon_2"], ["h"]),
        helper.make_node("Reshape", ["h", "shape_const"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w"], ["y"], transB=1),
        helper.make_node("Constant", [], ["const_out"], value=const),
        helper.make_node("Constant", [], ["cond"], value=helper.make_tensor(
            "cnd", TensorProto.BOOL, (), [True])),
        helper.make_node("If", ["cond"], ["z"], then_branch=then_g, else_branch=else_g),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [w, b, shape, fcw])
    onnx.save(helper.make_model(graph), str(path))


def test_onnx_helper_graph(tmp_path: Path) -> None:
    path = tmp_path / "g.onnx"
    _helper_onnx(path)
    ts = by_name(resolve(path))
    assert ts["anon_1"].kind == "conv" and ts["anon_2"].kind == "bias"
    assert ts["fc_w"].kind == "linear" and ts["sub_gemm_w"].kind == "linear"
    assert ts["const_out"].shape == (2, 2)
    np.testing.assert_array_equal(ts["const_out"].load(), [[1, 2], [3, 4]])
    assert ts["shape_const"].dtype == "int64" and not ts["shape_const"].is_float
    picked = [t.name for t in select(ts.values(), kinds=None)]
    assert "shape_const" not in picked and "cond" not in picked
    assert {"anon_1", "fc_w", "sub_gemm_w", "const_out"} <= set(picked)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_torch_export(tmp_path: Path, tiny: Tiny) -> None:
    path = tmp_path / "tiny.onnx"
    try:
        torch.onnx.export(tiny, (torch.zeros(1, 1, 4, 4),), str(path), dynamo=False)
    except Exception as err:  # the exporter needs extras on some installs
        pytest.skip(f"torch.onnx.export unavailable offline here: {err}")
    ts = by_name(resolve(path))
    convs = [t for t in ts.values() if t.kind == "conv"]
    assert len(convs) == 1 and convs[0].shape == (4, 1, 3, 3)
    assert any(t.kind == "linear" and t.shape == (3, 16) for t in ts.values())


def test_corrupt_onnx(tmp_path: Path) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\xff\xfe not a protobuf \x00\x01" * 3)
    with pytest.raises(LoadError) as err:
        list(resolve(path).tensors())
    assert_one_line(err)


# ----------------------------------------------------------------------------- folders, specs
def test_hf_style_directory(tmp_path: Path, tiny: Tiny) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    with pytest.raises(SpecError, match="without a weights file"):
        resolve(folder)
    (folder / "config.json").write_text("{}")
    save_file(dict(tiny.state_dict()), str(folder / "model.safetensors"))
    torch.save(dict(tiny.state_dict()), folder / "pytorch_model.bin")
    src = resolve(str(folder))
    assert src.name == "my-model"
    check_tiny(by_name(src), tiny)  # safetensors preferred over the .bin
    other = tmp_path / "two"
    other.mkdir()
    for n in ("a.safetensors", "b.safetensors"):
        save_file(dict(tiny.state_dict()), str(other / n))
    with pytest.raises(SpecError, match="several weights files"):
        resolve(other)


@pytest.mark.parametrize("spec", ["", "   ", "missing/file.safetensors", "nothere.pt"])
def test_missing_or_empty_specs(spec: str) -> None:
    with pytest.raises(SpecError) as err:
        resolve(spec)
    assert_one_line(err)
