"""The model names of torchvision and timm, kept in small JSON files in the cache directory.

Listing them means importing torchvision or timm (seconds); ``weightstats list`` and the
did-you-mean of an unknown name need only the names. Each file is keyed by the installed
versions of its packages (read from package metadata, no import), so an upgrade rebuilds it;
a cache that cannot be read or written only costs the imports.
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

# One file per package, so that resolving a torchvision name never imports timm.
FILE_NAMES = {"torchvision": "torchvision-names-v1.json", "timm": "timm-names-v1.json"}
PACKAGES = {"torchvision": ("torch", "torchvision"), "timm": ("torch", "timm")}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def versions(part: str) -> dict[str, str]:
    """Installed versions of the packages the names of ``part`` come from."""
    return {p: _version(p) for p in PACKAGES[part]}


def _build(part: str) -> dict[str, Any]:
    """Import torchvision or timm and read its names (the slow path)."""
    import warnings

    out: dict[str, Any] = {"versions": versions(part)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if part == "torchvision":
            import torchvision.models as tvm

            models: dict[str, dict[str, Any]] = {}
            for name in tvm.list_models(module=tvm):
                enum = tvm.get_model_weights(name)
                default = enum["DEFAULT"].name if "DEFAULT" in enum.__members__ else ""
                models[name] = {"tags": [m.name for m in enum], "default": default}
            out["models"] = models
        else:
            import timm

            out["pretrained"] = list(timm.list_models(pretrained=True))
            out["architectures"] = list(timm.list_models())
    return out


def _read(path: Path, part: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("versions") != versions(part):
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


def is_cached(part: str = "torchvision") -> bool:
    """True when the names of ``part`` can be read without importing its package."""
    return _read(cache_root() / FILE_NAMES[part], part) is not None


@functools.lru_cache(maxsize=4)
def _index(root: str, part: str) -> dict[str, Any]:
    path = Path(root) / FILE_NAMES[part]
    data = _read(path, part)
    if data is None:
        data = _build(part)
        _write(path, data)
    return data


def index(part: str) -> dict[str, Any]:
    """The names of ``part``: "torchvision" (``models``: name -> tags and default tag) or
    "timm" (``pretrained`` and ``architectures``)."""
    return _index(str(cache_root()), part)


def torchvision_models() -> dict[str, dict[str, Any]]:
    """torchvision classification models: name -> {"tags": [...], "default": tag}."""
    return index("torchvision")["models"]


def timm_pretrained() -> tuple[str, ...]:
    """timm names with a weights tag (``resnet50.a1_in1k``)."""
    return tuple(index("timm")["pretrained"])


def timm_architectures() -> frozenset[str]:
    """timm architecture names (``resnet50``)."""
    return frozenset(index("timm")["architectures"])
