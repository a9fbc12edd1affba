"""Hugging Face hub and timm specs against a hand-built HF cache, with the network blocked."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from hubcache import COMMIT, make_snapshot
from safetensors.torch import save_file

from weightstats.errors import OfflineError, SpecError
from weightstats.layers import select
from weightstats.sources import resolve
from weightstats.sources.hf_source import parse_hf_spec


def vae_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "encoder.conv_in.weight": torch.randn(8, 3, 3, 3, generator=g),
        "encoder.conv_in.bias": torch.zeros(8),
        "encoder.mid_block.attentions.0.query.weight": torch.randn(8, 8, generator=g),
        "encoder.mid_block.resnets.0.norm1.weight": torch.ones(8),
        "decoder.conv_out.weight": torch.randn(3, 8, 3, 3, generator=g),
        "decoder.mid_block.attentions.0.proj_attn.weight": torch.randn(8, 8, generator=g),
        "quant_conv.weight": torch.randn(8, 8, 1, 1, generator=g),
        "post_quant_conv.weight": torch.randn(4, 4, 1, 1, generator=g),
    }


def test_sharded_checkpoint_offline(hub_cache: Path) -> None:
    snap = make_snapshot(hub_cache, "acme/sharded")
    g = torch.Generator().manual_seed(1)
    shard1 = {"model.embed_tokens.weight": torch.randn(50, 16, generator=g),
              "model.layers.0.mlp.up_proj.weight": torch.randn(32, 16, generator=g)}
    shard2 = {"model.layers.0.mlp.down_proj.weight": torch.randn(16, 32, generator=g).half(),
              "model.norm.weight": torch.ones(16)}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    save_file(shard1, str(snap / names[0]))
    save_file(shard2, str(snap / names[1]))
    weight_map = {k: names[0] for k in shard1} | {k: names[1] for k in shard2}
    (snap / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    (snap / "config.json").write_text("{}")

    src = resolve("hf:acme/sharded")
    assert src.name == "hf-acme-sharded"
    ts = {t.name: t for t in src.tensors()}
    assert set(ts) == set(weight_map)
    assert ts["model.embed_tokens.weight"].kind == "embedding"
    assert ts["model.layers.0.mlp.down_proj.weight"].dtype == "float16"
    assert ts["model.norm.weight"].kind == "norm"
    for name, value in (shard1 | shard2).items():
        np.testing.assert_array_equal(ts[name].load(), value.numpy())


def test_diffusers_vae_groups_offline(hub_cache: Path) -> None:
    snap = make_snapshot(hub_cache, "acme/sd-vae")
    state = vae_state()
    save_file(state, str(snap / "diffusion_pytorch_model.safetensors"))
    (snap / "config.json").write_text("{}")

    src = resolve("hf:acme/sd-vae")
    assert src.name == "hf-acme-sd-vae"
    ts = list(src.tensors())
    groups = {t.name: t.group for t in ts}
    assert groups["encoder.conv_in.weight"] == "encoder"
    assert groups["decoder.conv_out.weight"] == "decoder"
    assert groups["post_quant_conv.weight"] == "post_quant_conv"
    picked = list(select(ts))
    by_group: dict[str, list[str]] = {}
    for t in picked:
        by_group.setdefault(t.group, []).append(t.kind)
    assert sorted(by_group["encoder"]) == ["conv", "linear"]
    assert sorted(by_group["decoder"]) == ["conv", "linear"]
    got = {t.name: t for t in ts}
    np.testing.assert_array_equal(got["decoder.conv_out.weight"].load(),
                                  state["decoder.conv_out.weight"].numpy())

    # A pinned commit and an explicit file path resolve to the same file.
    pinned = resolve(f"hf:acme/sd-vae@{COMMIT}/diffusion_pytorch_model.safetensors")
    assert len(list(pinned.tensors())) == len(state)
    assert pinned.name.startswith("hf-acme-sd-vae-")


def test_network_failure_falls_back_to_cache(hub_cache: Path, monkeypatch) -> None:
    """Without HF_HUB_OFFLINE a failed hub call must still find the cached file."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    snap = make_snapshot(hub_cache, "acme/sd-vae")
    save_file(vae_state(), str(snap / "diffusion_pytorch_model.safetensors"))
    assert len(list(resolve("hf:acme/sd-vae").tensors())) == len(vae_state())


def test_uncached_repo_is_offline_error(hub_cache: Path) -> None:
    with pytest.raises(OfflineError) as err:
        list(resolve("hf:acme/missing").tensors())
    msg = str(err.value)
    assert "\n" not in msg
    assert str(hub_cache / "models--acme--missing") in msg
    assert "model.safetensors" in msg and "HF_HUB_OFFLINE" in msg


def test_partial_shards_are_offline_error(hub_cache: Path) -> None:
    snap = make_snapshot(hub_cache, "acme/partial")
    save_file({"a.weight": torch.ones(2, 2)}, str(snap / "model-00001-of-00002.safetensors"))
    (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a.weight": "model-00001-of-00002.safetensors",
        "b.weight": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(OfflineError, match="model-00002-of-00002.safetensors"):
        list(resolve("hf:acme/partial").tensors())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hf:org/repo", ("org/repo", None, "")),
        ("hf:org/repo@v1.0", ("org/repo", "v1.0", "")),
        ("hf:org/repo@main/vae/diffusion_pytorch_model.safetensors",
         ("org/repo", "main", "vae/diffusion_pytorch_model.safetensors")),
        ("hf:org/repo/unet", ("org/repo", None, "unet")),
        ("hf:gpt2", ("gpt2", None, "")),
        ("hf:gpt2/model.safetensors", ("gpt2", None, "model.safetensors")),
    ],
)
def test_parse_hf_spec(spec: str, expected: tuple) -> None:
    assert parse_hf_spec(spec) == expected


@pytest.mark.parametrize("spec", ["hf:", "hf:   ", "hf:org/repo@", "hf:bad repo!/x"])
def test_bad_hf_specs(spec: str) -> None:
    with pytest.raises(SpecError) as err:
        resolve(spec)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- timm
def test_timm_uncached_is_offline_error(hub_cache: Path) -> None:
    src = resolve("timm:resnet18.a1_in1k")
    assert src.name == "timm-resnet18.a1_in1k"
    with pytest.raises(OfflineError) as err:
        list(src.tensors())
    msg = str(err.value)
    assert "\n" not in msg
    assert str(hub_cache / "models--timm--resnet18.a1_in1k") in msg
    assert "model.safetensors" in msg and "timm:resnet18.a1_in1k:none" in msg


def test_timm_cached_weights_load_offline(hub_cache: Path) -> None:
    import timm

    torch.manual_seed(5)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    snap = make_snapshot(hub_cache, "timm/resnet18.a1_in1k")
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    ts = {t.name: t for t in resolve("timm:resnet18.a1_in1k").tensors()}
    np.testing.assert_array_equal(ts["layer1.0.conv1.weight"].load(),
                                  state["layer1.0.conv1.weight"].numpy())
    assert ts["layer1.0.conv1.weight"].kind == "conv" and ts["fc.weight"].kind == "linear"


def test_timm_untrained_and_bad_names() -> None:
    a = {t.name: t for t in resolve("timm:resnet18:none").tensors()}
    b = {t.name: t for t in resolve("timm:resnet18:none").tensors()}
    np.testing.assert_array_equal(a["conv1.weight"].load(), b["conv1.weight"].load())
    assert a["bn1.weight"].kind == "norm"
    assert resolve("timm:resnet18:none").name == "timm-resnet18-none"
    with pytest.raises(SpecError, match="timm:resnet50"):
        resolve("timm:resnet50.a1_in1kk")
    with pytest.raises(SpecError):
        resolve("timm:")
