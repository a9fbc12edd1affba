"""torchvision names: cached checkpoints load with the network blocked; misses are OfflineError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from weightstats.errors import OfflineError, SpecError
from weightstats.layers import select
from weightstats.sources import list_models, resolve


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert Path(torch.hub.get_dir()) == tmp_path / "torch" / "hub"
    return tmp_path / "torch"


def test_cached_checkpoint_loads_offline(torch_home: Path, no_network: None) -> None:
    torch.manual_seed(123)
    state = torchvision.models.resnet18(weights=None).state_dict()
    ckpt = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(state, ckpt)

    src = resolve("resnet18")
    assert src.name == "resnet18"
    assert "resnet18-f37072fd.pth" in src.description
    tensors = {t.name: t for t in src.tensors()}
    assert set(tensors) == set(state)
    for name in ("conv1.weight", "layer3.1.conv2.weight", "fc.weight", "bn1.weight"):
        np.testing.assert_array_equal(tensors[name].load(), state[name].numpy())
    # Kinds come from the module types, including the oddly named downsample BatchNorm.
    assert tensors["conv1.weight"].kind == "conv"
    assert tensors["fc.weight"].kind == "linear"
    assert tensors["layer2.0.downsample.1.weight"].kind == "norm"
    assert tensors["layer2.0.downsample.1.running_var"].kind == "other"
    assert tensors["layer1.0.conv1.weight"].group == "layer1"
    assert len(list(select(tensors.values()))) == 21  # 20 convs + fc
    # An explicit tag that maps to the same file also loads offline.
    assert resolve("resnet18:IMAGENET1K_V1").name == "resnet18-IMAGENET1K_V1"
    assert len(list(resolve("resnet18:IMAGENET1K_V1").tensors())) == len(state)


def test_missing_checkpoint_is_offline_error(torch_home: Path, no_network: None) -> None:
    expected = torch_home / "hub" / "checkpoints" / "resnet34-b627a593.pth"
    src = resolve("resnet34")
    with pytest.raises(OfflineError) as err:
        next(iter(src.tensors()))
    msg = str(err.value)
    assert "\n" not in msg
    assert str(expected) in msg
    assert "resnet34:none" in msg and "digits-resnet" in msg
    assert not expected.exists()


def test_untrained_is_deterministic_and_leaves_rng_alone() -> None:
    state_before = torch.random.get_rng_state()
    a = {t.name: t for t in resolve("resnet18:none").tensors()}
    assert torch.equal(torch.random.get_rng_state(), state_before)
    b = {t.name: t for t in resolve("resnet18:NONE").tensors()}
    assert resolve("resnet18:none").name == "resnet18-none"
    np.testing.assert_array_equal(a["layer4.1.conv2.weight"].load(),
                                  b["layer4.1.conv2.weight"].load())
    # Kaiming-normal conv init: std = sqrt(2 / fan_out) with fan_out = 512 * 3 * 3.
    w = a["layer4.1.conv2.weight"].load()
    assert abs(w.std() - np.sqrt(2 / (512 * 9))) < 1e-3
    np.testing.assert_array_equal(a["bn1.weight"].load(), np.ones(64, np.float32))


def test_spec_errors() -> None:
    with pytest.raises(SpecError, match="IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT, none"):
        resolve("resnet50:NOPE")
    with pytest.raises(SpecError, match="resnet50") as err:
        resolve("resnet5O")
    assert "\n" not in str(err.value)
    with pytest.raises(SpecError, match="empty weights tag"):
        resolve("resnet50:")
    with pytest.raises(SpecError, match="timm:"):
        resolve("resnet50.a1_in1k")


def test_list_models() -> None:
    every = list_models()
    assert every[:2] == ["digits-resnet", "digits-vae"]
    assert {"resnet18", "resnet152", "wide_resnet50_2", "vit_b_16"} <= set(every)
    assert not any(n.startswith("timm:") for n in every)
    assert list_models("resnet*") == ["resnet101", "resnet152", "resnet18", "resnet34",
                                      "resnet50"]
    assert list_models("RESNET18") == ["resnet18"]
    timm_names = list_models("timm:resnet50.*")
    assert "timm:resnet50.a1_in1k" in timm_names
    assert all(n.startswith("timm:resnet50.") for n in timm_names)
