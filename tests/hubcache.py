"""A Hugging Face hub cache the tests build in a temporary folder (the layout huggingface_hub
writes: models--ORG--REPO/{refs/<ref>, snapshots/<commit>/}), shared by the hub-facing tests."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def point_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, offline: bool) -> Path:
    """An empty cache under ``tmp_path``, with HF_HUB_OFFLINE set or unset. huggingface_hub
    read the environment at import, so its constants are patched too."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
    return cache


def make_snapshot(cache: Path, repo: str, ref: str = "main") -> Path:
    """The snapshot folder of ``repo`` at ``COMMIT``, with ``refs/<ref>`` pointing at it."""
    storage = cache / ("models--" + repo.replace("/", "--"))
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / ref).write_text(COMMIT)  # no newline, as huggingface_hub writes it
    snap = storage / "snapshots" / COMMIT
    snap.mkdir(parents=True, exist_ok=True)
    return snap
