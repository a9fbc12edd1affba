"""Fixtures shared by the test files."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hubcache import point_hub_cache


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails as it would with the cable pulled."""

    def refuse(*args, **kwargs):
        raise OSError("network blocked by test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> Path:
    """An empty Hugging Face cache, offline (HF_HUB_OFFLINE=1), no network."""
    return point_hub_cache(tmp_path, monkeypatch, offline=True)


@pytest.fixture
def online_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> Path:
    """An empty Hugging Face cache, HF_HUB_OFFLINE unset, every connection refused."""
    return point_hub_cache(tmp_path, monkeypatch, offline=False)
