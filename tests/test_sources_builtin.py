"""Built-in digits models wired into the registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from weightstats.errors import SpecError
from weightstats.layers import select
from weightstats.sources import resolve

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("weightstats.models.digits") is None,
    reason="weightstats.models.digits (built-in models) is not in this checkout yet",
)


def _shipped(name: str) -> bool:
    spec = importlib.util.find_spec("weightstats.models.digits")
    package_dir = Path(spec.origin).parents[1]  # weightstats/
    return (package_dir / "data" / f"{name}.safetensors").is_file()


@pytest.mark.parametrize("name", ["digits-resnet", "digits-vae"])
def test_untrained_twins(name: str) -> None:
    src = resolve(f"{name}:none")
    assert src.name == f"{name}-none"
    a = {t.name: t for t in src.tensors()}
    b = {t.name: t for t in resolve(f"{name}:none").tensors()}
    picked = list(select(a.values()))
    assert picked, "a built-in model must have conv/linear layers"
    first = picked[0].name
    np.testing.assert_array_equal(a[first].load(), b[first].load())  # deterministic init


def test_vae_groups() -> None:
    groups = {t.group for t in select(resolve("digits-vae:none").tensors())}
    assert {"encoder", "decoder"} <= groups


@pytest.mark.parametrize("name", ["digits-resnet", "digits-vae"])
def test_pretrained(name: str) -> None:
    if not _shipped(name):
        pytest.skip(f"weightstats/data/{name}.safetensors is not shipped in this checkout yet")
    src = resolve(name)
    assert src.name == name
    trained = {t.name: t.load() for t in select(src.tensors())}
    untrained = {t.name: t.load() for t in select(resolve(f"{name}:none").tensors())}
    assert trained.keys() == untrained.keys()
    assert any(not np.array_equal(trained[k], untrained[k]) for k in trained)


def test_bad_builtin_tag() -> None:
    with pytest.raises(SpecError, match="digits-vae:none"):
        resolve("digits-vae:v2")
