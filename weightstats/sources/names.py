"""The model names of torchvision and timm, kept in a small JSON file in the cache directory.

Listing them means importing torchvision or timm (seconds); ``weightstats list`` and the
did-you-mean of an unknown name need only the names. The file is keyed by the installed
versions of torch, torchvision and timm (read from package metadata, no import), so an upgrade
rebuilds it; a cache that cannot be read or written only costs the imports.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from weightstats.cachedir import cache_root

FILE_NAME = "model-names-v1.json"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def versions() -> dict[str, str]:
    """Installed versions of the packages the names come from."""
    return {p: _version(p) for p in ("torch", "torchvision", "timm")}


def _build() -> dict[str, Any]:
    """Import torchvision and timm and read their names (the slow path)."""
    import warnings

    import torchvision.models as tvm

    torchvision: dict[str, dict[str, Any]] = {}
    for name in tvm.list_models(module=tvm):
        enum = tvm.get_model_weights(name)
        default = enum["DEFAULT"].name if "DEFAULT" in enum.__members__ else ""
        torchvision[name] = {"tags": [m.name for m in enum], "default": default}
    out: dict[str, Any] = {"versions": versions(), "torchvision": torchvision}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import timm

            out["timm_pretrained"] = list(timm.list_models(pretrained=True))
            out["timm_architectures"] = list(timm.list_models())
    except ImportError:  # pragma: no cover - timm is a dependency
        out["timm_pretrained"], out["timm_architectures"] = [], []
    return out


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("versions") != versions():
        return None
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (a temporary file renamed over the old one); failures are ignored."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".names-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def is_cached() -> bool:
    """True when the names can be read without importing torchvision or timm."""
    return _read(cache_root() / FILE_NAME) is not None


@functools.lru_cache(maxsize=1)
def _index(root: str) -> dict[str, Any]:
    path = Path(root) / FILE_NAME
    data = _read(path)
    if data is None:
        data = _build()
        _write(path, data)
    return data


def index() -> dict[str, Any]:
    """The names: ``torchvision`` (name -> tags and default tag), ``timm_pretrained``,
    ``timm_architectures``."""
    return _index(str(cache_root()))


def torchvision_models() -> dict[str, dict[str, Any]]:
    """torchvision classification models: name -> {"tags": [...], "default": tag}."""
    return index()["torchvision"]


def timm_pretrained() -> tuple[str, ...]:
    """timm names with a weights tag (``resnet50.a1_in1k``)."""
    return tuple(index()["timm_pretrained"])


def timm_architectures() -> frozenset[str]:
    """timm architecture names (``resnet50``)."""
    return frozenset(index()["timm_architectures"])
