"""Bad inputs at the library level: every failure is one line and a WeightstatsError subclass.

Each test here backs a row of docs/robustness.md; keep the two in step.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from weightstats.errors import LoadError, OptionError, SpecError, WeightstatsError
from weightstats.fitting import fit_tensor
from weightstats.layers import select
from weightstats.sources import resolve

FAST = {"ks_sample": 500, "ks_replicates": 99}


def read_all(spec, **kw) -> list[tuple[str, np.ndarray]]:
    """Resolve, list and load every tensor, as the CLI does."""
    return [(t.name, t.load()) for t in resolve(spec, **kw).tensors()]


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


def raises_one_line(exc: type[BaseException], spec, match: str | None = None, **kw) -> str:
    with pytest.raises(exc, match=match) as err:
        read_all(spec, **kw)
    return one_line(err)


# ----------------------------------------------------------------------------- specs
@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "empty model spec"),
        ("   ", "empty model spec"),
        ("hf:", "names no repository"),
        ("hf:/", "names no repository"),
        ("timm:", "names no model"),
        ("resnet50:NOPE", "unknown weights tag 'NOPE' for resnet50: use one of"),
        ("resnet50:", "empty weights tag"),
        ("digits-vae:NOPE", "unknown weights tag 'NOPE' for digits-vae"),
        ("not-a-model-xyz", "unknown model 'not-a-model-xyz'"),
        ("resnet5O", "did you mean"),
        ("some-org/some-repo", "for a Hugging Face repo use hf:some-org/some-repo"),
    ],
)
def test_malformed_and_unknown_specs(spec: str, match: str) -> None:
    with pytest.raises(SpecError, match=match) as err:
        resolve(spec)
    one_line(err)


def test_unknown_timm_model_hint_reads_well() -> None:
    with pytest.raises(SpecError, match=r"unknown timm model") as err:
        resolve("timm:zzqqxx_not_a_model")
    assert "did you mean see" not in one_line(err)


def test_spec_of_wrong_type() -> None:
    with pytest.raises(SpecError, match="cannot use a int as a model spec") as err:
        resolve(42)
    one_line(err)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file") as err:
        resolve(str(tmp_path / "nope.safetensors"))
    one_line(err)


def test_directory_without_weights(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(SpecError, match="directory without a weights file") as err:
        resolve(str(tmp_path))
    one_line(err)


def test_directory_named_like_a_weights_file(tmp_path: Path) -> None:
    d = tmp_path / "model.safetensors"
    d.mkdir()
    with pytest.raises(SpecError, match="directory without a weights file") as err:
        resolve(str(d))
    one_line(err)


def test_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)  # reading it would block forever
    raises_one_line(LoadError, str(fifo), "not a regular file")


def test_unreadable_file(tmp_path: Path) -> None:
    p = tmp_path / "locked.safetensors"
    save_file({"fc.weight": torch.ones(4, 4)}, str(p))
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as root: chmod 000 does not stop reading")
        raises_one_line(LoadError, str(p), "cannot read .*permission")
    finally:
        p.chmod(0o600)


# ----------------------------------------------------------------------------- corrupt files
def _st_header(header: bytes, data: bytes = b"") -> bytes:
    return len(header).to_bytes(8, "little") + header + data


CORRUPT = {
    "empty.safetensors": (b"", "is empty"),
    "empty.pth": (b"", "is empty"),
    "empty.onnx": (b"", "is empty"),
    "empty.npz": (b"", "is empty"),
    "empty.npy": (b"", "is empty"),
    "badlen.safetensors": (b"\xff" * 8 + b"{}", "bad header length"),
    "badjson.safetensors": (_st_header(b"{not json}"), "corrupt safetensors header"),
    "list.safetensors": (_st_header(b"[1, 2]"), "corrupt safetensors header .not a JSON object"),
    "nooffsets.safetensors": (
        _st_header(b'{"w":{"dtype":"F32","shape":[2]}}', b"\0" * 8), "bad data_offsets"),
    "negshape.safetensors": (
        _st_header(b'{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', b"\0" * 8),
        "bad shape"),
    "short.safetensors": (
        _st_header(b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'), "truncated"),
    "text.pth": (b"hello, I am not a checkpoint", "not a readable PyTorch file"),
    "garbage.onnx": (b"this is not onnx\x00\xff" * 8, "not a readable ONNX model"),
    "garbage.npz": (os.urandom(300), "not a readable .npz file"),
    "garbage.npy": (b"\x93NUMPY garbage" * 4, "not a readable .npy file"),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_files(tmp_path: Path, name: str) -> None:
    data, match = CORRUPT[name]
    p = tmp_path / name
    p.write_bytes(data)
    raises_one_line(LoadError, str(p), match)


def test_safetensors_shape_disagrees_with_data(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    p.write_bytes(_st_header(b'{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}',
                             b"\0" * 8))
    raises_one_line(LoadError, str(p), "cannot read tensor w")


def test_truncated_pth(tmp_path: Path) -> None:
    good = tmp_path / "good.pth"
    torch.save({"fc.weight": torch.randn(64, 64)}, good)
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        p = tmp_path / f"cut{cut}.pth"
        p.write_bytes(data[:cut])
        raises_one_line(LoadError, str(p), "not a readable PyTorch file")


def test_legacy_pth_truncated(tmp_path: Path) -> None:
    good = tmp_path / "good.pth"
    torch.save({"fc.weight": torch.randn(32, 32)}, good, _use_new_zipfile_serialization=False)
    p = tmp_path / "cut.pth"
    p.write_bytes(good.read_bytes()[:-100])
    raises_one_line(LoadError, str(p), "not a readable PyTorch file")


def test_zip_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    for name in ("notes.pth", "notes.zip"):
        p = tmp_path / name
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("hello.txt", "hi")
        raises_one_line(LoadError, str(p), "not a readable PyTorch file")


def test_truncated_npz(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, w=np.random.default_rng(0).normal(size=(20, 20)))
    p = tmp_path / "cut.npz"
    p.write_bytes(good.read_bytes()[:-40])
    raises_one_line(LoadError, str(p), "not a readable .npz file")


def test_npz_member_shorter_than_its_header(tmp_path: Path) -> None:
    """A zip that is intact but whose .npy member holds fewer bytes than its header says."""
    good = tmp_path / "w.npy"
    np.save(good, np.zeros((10, 10)))
    p = tmp_path / "short.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("w.npy", good.read_bytes()[:-80])
    raises_one_line(LoadError, str(p), "w")


def test_shard_index_garbage(tmp_path: Path) -> None:
    for i, text in enumerate(['{"weight_map": [1, 2]}', "[]", "{", '{"weight_map": {"a": 3}}']):
        p = tmp_path / f"m{i}.safetensors.index.json"
        p.write_text(text)
        raises_one_line(LoadError, str(p), "not a valid shard index")


def test_shard_index_missing_shard(tmp_path: Path) -> None:
    p = tmp_path / "model.safetensors.index.json"
    p.write_text('{"weight_map": {"a.weight": "model-00001-of-00002.safetensors"}}')
    raises_one_line(LoadError, str(p), "is missing")


# ----------------------------------------------------------------------------- pickles
class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PAYLOAD_RAN"
    p = tmp_path / "evil.pt"
    torch.save({"fc.weight": torch.randn(8, 8), "x": _Payload(marker)}, p)
    assert not marker.exists()
    msg = raises_one_line(LoadError, str(p), "arbitrary Python objects")
    assert "--allow-pickle" in msg and "allow_pickle=True" in msg
    assert not marker.exists(), "the pickle payload ran while loading with the default settings"
    # A legacy (non-zip) pickle takes another code path in torch.load.
    legacy = tmp_path / "evil_legacy.pt"
    torch.save({"x": _Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    raises_one_line(LoadError, str(legacy), "allow-pickle")
    assert not marker.exists()


def test_pickle_payload_runs_only_when_opted_in(tmp_path: Path) -> None:
    marker = tmp_path / "PAYLOAD_RAN"
    p = tmp_path / "evil.pt"
    torch.save({"fc.weight": torch.randn(8, 8), "x": _Payload(marker)}, p)
    names = [n for n, _ in read_all(str(p), allow_pickle=True)]
    assert names == ["fc.weight"]
    assert marker.exists()  # the opt-in really is what allows code to run


# ----------------------------------------------------------------------------- tensor values
def test_nan_and_inf_are_excluded_counted_reported() -> None:
    x = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    x[:5] = np.nan
    x[5:8] = np.inf
    x[8:10] = -np.inf
    fit = fit_tensor(x, ("normal", "laplace"), **FAST)
    assert fit.status == "ok"
    assert fit.n == 990 and fit.n_nonfinite == 10
    # The non-finite counts live in .counts (CONTRACTS.md).
    d = fit.counts
    assert (d["n_nan"], d["n_posinf"], d["n_neginf"]) == (5, 3, 2)
    assert any("10 non-finite value(s) excluded" in note for note in fit.notes)
    assert np.isfinite(fit.to_frame()[["loc", "scale", "loglik", "ks_stat"]].to_numpy()).all()
    assert fit.to_dict()  # JSON-safe even with the counts


def test_all_nonfinite_is_empty() -> None:
    fit = fit_tensor(np.full(100, np.nan), ("normal",), **FAST)
    assert fit.status == "empty" and fit.message and fit.n_nonfinite == 100


@pytest.mark.parametrize("value", [0.0, 1.5, -3.0])
def test_constant_tensor(value: float) -> None:
    fit = fit_tensor(np.full((40, 40), value, dtype=np.float32), ("normal", "t"), **FAST)
    assert fit.status == "constant" and "\n" not in fit.message


@pytest.mark.parametrize("x", [np.float32(1.0), np.array([2.0]), np.zeros((0, 5)), np.ones(29)],
                         ids=["0-d", "1-element", "empty", "29-elements"])
def test_tiny_tensors(x: np.ndarray) -> None:
    fit = fit_tensor(x, ("normal",), **FAST)
    assert fit.status in ("too_small", "empty", "constant") and fit.message
    assert "\n" not in fit.message


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
def test_integer_tensors_fit_as_numbers(dtype: str) -> None:
    x = np.random.default_rng(1).integers(0, 100, size=2000).astype(dtype)
    fit = fit_tensor(x, ("normal", "laplace"), **FAST)
    # 100 repeated levels are a quantization grid, not a continuous law (tests/test_stats_atoms)
    assert fit.status == "quantized" and fit.message.startswith("quantized: 100 levels, step 1")
    wide = np.random.default_rng(1).integers(0, 100_000, size=2000).astype(dtype)
    if np.unique(wide).size > 1000:  # mostly distinct integers: fitted as numbers
        assert fit_tensor(wide, ("normal", "laplace"), **FAST).status == "ok"


@pytest.mark.parametrize("x", [np.ones(100, dtype=bool), np.ones(100, dtype=np.complex64)],
                         ids=["bool", "complex"])
def test_bool_and_complex_get_a_clear_status(x: np.ndarray) -> None:
    fit = fit_tensor(x, ("normal",), **FAST)
    assert fit.status != "ok" and "only real numbers" in fit.message


def test_torch_tensors_of_odd_dtypes() -> None:
    x = torch.randn(3000)
    assert fit_tensor(x.to(torch.bfloat16), ("normal",), **FAST).status == "ok"
    assert fit_tensor(x.half(), ("normal",), **FAST).status == "ok"
    assert fit_tensor(torch.ones(50, dtype=torch.bool), ("normal",), **FAST).status != "ok"


def test_non_float_tensors_are_never_selected(tmp_path: Path) -> None:
    p = tmp_path / "mixed.safetensors"
    save_file({"fc.weight": torch.randn(8, 8), "idx.weight": torch.ones(8, 8, dtype=torch.int64),
               "mask.weight": torch.ones(8, 8, dtype=torch.bool)}, str(p))
    names = [t.name for t in select(resolve(str(p)).tensors(), kinds="all")]
    assert names == ["fc.weight"]
    state = {"fc.weight": torch.randn(8, 8), "c.weight": torch.randn(8, 8, dtype=torch.complex64)}
    assert [t.name for t in select(resolve(state).tensors())] == ["fc.weight"]


def test_model_with_only_biases_names_kinds_and_flag(tmp_path: Path) -> None:
    from weightstats.api import fit_model

    state = {"fc.bias": torch.randn(10), "fc2.bias": torch.randn(10)}
    with pytest.raises(OptionError, match=r"available kinds: bias \(2\).*--kinds") as err:
        fit_model(state, **FAST)
    one_line(err)


def test_model_without_float_tensors() -> None:
    from weightstats.api import fit_model

    with pytest.raises(WeightstatsError, match="no floating-point weight tensors") as err:
        fit_model({"idx": torch.arange(10)}, **FAST)
    one_line(err)


def test_state_dict_with_non_string_keys() -> None:
    names = [n for n, _ in read_all({0: torch.randn(4, 4), "fc.weight": torch.randn(4, 4)})]
    assert names == ["0", "fc.weight"]


def test_mapping_without_tensors() -> None:
    with pytest.raises(SpecError, match="holds no tensors") as err:
        resolve({"a": 1, "b": "x"})
    one_line(err)


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"families": ("cauchy",)}, "unknown family cauchy; valid families"),
        ({"families": ()}, "no families given"),
        ({"ks_sample": -5}, "at least 10"),
        ({"ks_sample": 0}, "at least 10"),
        ({"ks_replicates": 0}, "at least 19"),
        ({"ks_replicates": 18}, "at least 19"),
        ({"bins": 0}, "bins must be at least 1"),
    ],
)
def test_fit_tensor_options_out_of_range(kw: dict, match: str) -> None:
    args = {"families": ("normal",), **FAST, **kw}
    with pytest.raises(OptionError, match=match) as err:
        fit_tensor(np.random.default_rng(0).normal(size=600), **args)
    one_line(err)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"families": "normal,cauchy"}, "unknown family cauchy"),
        ({"kinds": "conv,foo"}, "unknown kind foo"),
        ({"ks_sample": -1}, "--ks-sample must be at least 10"),
        ({"ks_replicates": 0}, "--ks-replicates must be at least 19"),
        ({"min_size": -1}, "--min-size must be at least 0"),
        ({"jobs": 0}, "--jobs must be at least 1"),
        ({"layers": "re:("}, "invalid regular expression"),
    ],
)
def test_fit_model_options_out_of_range(kw: dict, match: str) -> None:
    from weightstats.api import fit_model

    with pytest.raises(OptionError, match=match) as err:
        fit_model({"fc.weight": torch.randn(30, 30)}, **{**FAST, **kw})
    one_line(err)


def test_select_options_out_of_range() -> None:
    src = resolve({"fc.weight": torch.randn(4, 4)})
    with pytest.raises(OptionError, match="unknown kind nope; valid kinds") as err:
        list(select(src.tensors(), kinds=("conv", "nope")))
    one_line(err)
    with pytest.raises(OptionError, match="min_size must be at least 0"):
        list(select(src.tensors(), min_size=-1))
