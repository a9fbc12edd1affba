"""Layer kinds (from names/shapes and from module types) and layer selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from weightstats.errors import OptionError
from weightstats.layers import KINDS, infer_kind, infer_kinds, kinds_from_module, select
from weightstats.sources.base import WeightTensor


@pytest.mark.parametrize(
    ("name", "shape", "kind"),
    [
        ("layer1.0.conv1.weight", (64, 64, 3, 3), "conv"),
        ("conv3d.weight", (8, 4, 3, 3, 3), "conv"),
        ("conv1d.weight", (8, 4, 3), "conv"),
        ("fc.weight", (1000, 512), "linear"),
        ("fc.bias", (1000,), "bias"),
        ("bn1.weight", (64,), "norm"),
        ("bn1.running_mean", (64,), "other"),
        ("bn1.num_batches_tracked", (), "other"),
        ("transformer.ln_f.weight", (768,), "norm"),
        ("model.layers.0.input_layernorm.weight", (4096,), "norm"),
        ("transformer.wte.weight", (50257, 768), "embedding"),
        ("transformer.wpe.weight", (1024, 768), "embedding"),
        ("model.embed_tokens.weight", (32000, 4096), "embedding"),
        ("embeddings.word_embeddings.weight", (30522, 768), "embedding"),
        ("patch_embed.proj.weight", (768, 3, 16, 16), "conv"),
        ("pos_embed", (1, 197, 768), "embedding"),
        ("cls_token", (1, 1, 768), "other"),
        ("encoder.mid.attn_1.q.weight", (512, 512), "linear"),
        ("W1", (10, 5), "linear"),
        ("something.odd", (10, 5), "other"),
        ("scalar", (), "other"),
    ],
)
def test_infer_kind(name: str, shape: tuple[int, ...], kind: str) -> None:
    assert infer_kind(name, shape) == kind


def test_infer_kinds_uses_running_stats_siblings() -> None:
    # torchvision names the downsample BatchNorm "downsample.1": only its buffers reveal it.
    shapes = {
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.weight": (128,),
        "layer2.0.downsample.1.running_mean": (128,),
        "layer2.0.downsample.1.running_var": (128,),
        "head.1.weight": (10,),
    }
    kinds = infer_kinds(shapes)
    assert kinds["layer2.0.downsample.1.weight"] == "norm"
    assert kinds["layer2.0.downsample.0.weight"] == "conv"
    assert kinds["head.1.weight"] == "other"


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.stem = nn.ConvTranspose2d(4, 4, 3)
        self.norm = nn.GroupNorm(2, 4)
        self.head = nn.Linear(4, 3)
        self.attn = nn.MultiheadAttention(4, 2)


def test_kinds_from_module_types() -> None:
    net = _Net()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    kinds = kinds_from_module(net, shapes)
    assert kinds["emb.weight"] == "embedding"
    assert kinds["stem.weight"] == "conv"
    assert kinds["norm.weight"] == "norm"
    assert kinds["norm.bias"] == "bias"
    assert kinds["head.weight"] == "linear"
    assert kinds["attn.in_proj_weight"] == "linear"
    assert kinds["attn.in_proj_bias"] == "bias"
    assert kinds["attn.out_proj.weight"] == "linear"


def _wt(name: str, kind: str, shape: tuple[int, ...], dtype: str = "float32") -> WeightTensor:
    return WeightTensor(name, kind, shape, dtype, name.split(".")[0],
                        lambda: np.zeros(shape, dtype=np.float32))


TENSORS = [
    _wt("conv1.weight", "conv", (8, 3, 3, 3)),
    _wt("bn1.weight", "norm", (8,)),
    _wt("bn1.num_batches_tracked", "other", (), "int64"),
    _wt("fc.weight", "linear", (10, 8)),
    _wt("fc.bias", "bias", (10,)),
    _wt("emb.weight", "embedding", (5, 4), "bfloat16"),
    _wt("shape_const", "linear", (2, 2), "int64"),
    _wt("mask", "conv", (2, 2, 2, 2), "bool"),
    _wt("cplx", "linear", (2, 2), "complex64"),
    _wt("tiny.weight", "linear", (1, 1)),
]


def names(ts) -> list[str]:
    return [t.name for t in ts]


def test_select_default_kinds_and_skips_non_float() -> None:
    assert names(select(TENSORS)) == ["conv1.weight", "fc.weight", "emb.weight", "tiny.weight"]


def test_select_all_kinds_still_skips_non_float() -> None:
    got = names(select(TENSORS, kinds=None))
    assert "bn1.num_batches_tracked" not in got
    assert "shape_const" not in got and "mask" not in got and "cplx" not in got
    assert {"bn1.weight", "fc.bias"} <= set(got)
    assert names(select(TENSORS, kinds="all")) == got


def test_select_pattern_glob_and_regex() -> None:
    assert names(select(TENSORS, pattern="fc.*", kinds=KINDS)) == ["fc.weight", "fc.bias"]
    assert names(select(TENSORS, pattern="re:^(conv|emb)")) == ["conv1.weight", "emb.weight"]
    # A glob must match the whole name; a regex is searched anywhere.
    assert names(select(TENSORS, pattern="weight")) == []
    assert names(select(TENSORS, pattern="re:weight$")) == [
        "conv1.weight", "fc.weight", "emb.weight", "tiny.weight"]


def test_select_min_size() -> None:
    assert names(select(TENSORS, min_size=21)) == ["conv1.weight", "fc.weight"]


def test_select_is_lazy_and_does_not_load() -> None:
    def boom() -> np.ndarray:
        raise AssertionError("select must not load data")

    t = WeightTensor("conv.weight", "conv", (2, 2, 3, 3), "float32", "conv", boom)
    assert list(select(iter([t]))) == [t]


def test_select_bad_options() -> None:
    with pytest.raises(OptionError, match="unknown kind attention; valid kinds"):
        list(select(TENSORS, kinds=("conv", "attention")))
    with pytest.raises(OptionError, match="invalid regular expression"):
        list(select(TENSORS, pattern="re:(unclosed"))


def test_weighttensor_props_and_bf16_load() -> None:
    src = torch.randn(3, 4).to(torch.bfloat16)
    from weightstats.sources.base import tensors_from_state_dict

    (t,) = tensors_from_state_dict({"tok_embed.weight": src})
    assert (t.dtype, t.kind, t.group, t.numel, t.is_float) == (
        "bfloat16", "embedding", "tok_embed", 12, True)
    arr = t.load()
    assert arr.dtype.name == "bfloat16"  # the stored dtype (ml_dtypes), not widened
    np.testing.assert_array_equal(arr.astype(np.float32), src.float().numpy())
    (h,) = tensors_from_state_dict({"w": torch.ones(2, dtype=torch.float16)})
    assert h.load().dtype == np.float16
