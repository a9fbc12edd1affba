"""Resolve a model spec into a :class:`ModelSource` that streams named weight tensors.

Specs
-----
- ``resnet50``, ``resnet50:IMAGENET1K_V1``, ``resnet50:none``: torchvision classification models.
- ``timm:resnet50.a1_in1k``, ``timm:NAME:none``: timm models (weights from the HF hub).
- ``hf:ORG/REPO[@REVISION][/path/in/repo]``: Hugging Face hub repos.
- ``digits-resnet``, ``digits-vae`` (``:none`` for untrained): built-in, fully offline.
- a path: .safetensors, .pt/.pth/.bin/.ckpt, TorchScript, .onnx, .npz/.npy, .gguf, or an HF-style folder
  (any format of the table in :mod:`~weightstats.sources.formats`: :func:`list_formats`).
- a ``torch.nn.Module`` or a state-dict ``Mapping``.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Mapping
from typing import Any

from weightstats.errors import SpecError
from weightstats.sources.base import ModelSource, WeightTensor
from weightstats.sources.builtin import BUILTIN_NAMES, BuiltinSource
from weightstats.sources.files import FileSource
from weightstats.sources.formats import (
    FileFormat,
    file_extensions,
    register_format,
    registered_formats,
    unregister_format,
)
from weightstats.sources.hf_source import HFSource
from weightstats.sources.memory import ModuleSource, StateDictSource

__all__ = [
    "FileFormat",
    "ModelSource",
    "WeightTensor",
    "list_formats",
    "list_models",
    "register_format",
    "resolve",
    "unregister_format",
    "BUILTIN_NAMES",
]


def list_formats() -> tuple[FileFormat, ...]:
    """The file formats a path can hold, most preferred first (see :mod:`.formats`)."""
    return registered_formats()


def _torchvision_names() -> tuple[str, ...]:
    from weightstats.sources.names import torchvision_models

    return tuple(torchvision_models())


def list_models(pattern: str | None = None) -> list[str]:
    """Names :func:`resolve` accepts, optionally filtered by a case-insensitive glob.

    Parameters
    ----------
    pattern : str, optional
        ``fnmatch`` glob such as ``"resnet*"``. timm models (``timm:NAME``) are listed only
        when the pattern starts with ``"timm:"`` (there are ~1,800 of them).

    Returns
    -------
    list of str
        Built-in names first, then torchvision classification models (sorted).
    """
    names = list(BUILTIN_NAMES) + sorted(_torchvision_names())
    if pattern and pattern.lower().startswith("timm:"):
        from weightstats.sources.names import timm_pretrained

        names = ["timm:" + n for n in timm_pretrained()]
    if not pattern:
        return names
    pat = pattern.lower()
    return [n for n in names if fnmatch.fnmatchcase(n.lower(), pat)]


def _looks_like_path(spec: str) -> bool:
    return (
        "/" in spec
        or os.sep in spec
        or spec.startswith((".", "~"))
        or spec.lower().endswith(file_extensions())
        or os.path.exists(spec)
    )


def model_tags(name: str) -> str:
    """The weights a listed name takes, for ``weightstats list``: ``weights: IMAGENET1K_V1,
    IMAGENET1K_V2 (default), none``; '' for timm names (their tag is part of the name)."""
    from weightstats.sources.names import torchvision_models

    if name in BUILTIN_NAMES:
        return "weights: trained (default), none"
    entry = torchvision_models().get(name)
    if entry is None:
        return ""
    tags = [t + (" (default)" if t == entry["default"] and len(entry["tags"]) > 1 else "")
            for t in entry["tags"]]
    return "weights: " + ", ".join([*tags, "none"])


def _hub_repo_id(name: str) -> bool:
    """True when ``name`` could be a Hugging Face hub repository id."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _unknown_name(name: str, spec: str) -> SpecError:
    from weightstats.sources.names import timm_architectures, timm_pretrained

    known = list(BUILTIN_NAMES) + list(_torchvision_names())
    close = difflib.get_close_matches(name.lower(), known, n=5, cutoff=0.6)
    hints = []
    if name.split(".")[0] in timm_architectures() or name in timm_pretrained():
        hints.append(f"for the timm model use timm:{name}")
    elif close:
        hints.append(f"did you mean {', '.join(close)}?")
    if _hub_repo_id(name):
        hints.append(f"for a Hugging Face hub repo use hf:{name}")
    hints.append("see `weightstats list`; a file path must exist")
    return SpecError(f"unknown model {spec!r}: " + "; ".join(hints))


def _resolve_str(spec: str, allow_pickle: bool) -> ModelSource:
    text = spec.strip()
    if not text:
        raise SpecError("empty model spec: pass a model name (e.g. resnet50, digits-vae), "
                        "hf:ORG/REPO, timm:NAME or a file path")
    lower = text.lower()
    if lower.startswith("hf:"):
        return HFSource(text, allow_pickle=allow_pickle)
    if lower.startswith("timm:"):
        from weightstats.sources.timm_source import TimmSource

        return TimmSource(text[5:], text)
    name, sep, tag = text.partition(":")
    key = name.strip().lower()
    if sep and not tag.strip():
        raise SpecError(f"{text!r} has an empty weights tag: drop the colon for the default "
                        f"weights, or use {name}:none for untrained")
    if key in BUILTIN_NAMES:
        return BuiltinSource(key, tag.strip() if sep else None, text)
    # Torchvision names are plain identifiers; skip its (slow) import for paths and the like.
    if re.fullmatch(r"\w+", key) and key in _torchvision_names():
        from weightstats.sources.torchvision_source import TorchvisionSource

        return TorchvisionSource(key, tag.strip() if sep else None, text)
    if _looks_like_path(text):
        if (
            not os.path.exists(os.path.expanduser(text))
            and re.fullmatch(r"[\w.-]+/[\w.-]+", text)
            and not text.lower().endswith(file_extensions())
        ):
            raise SpecError(f"no such file: {text}: for a Hugging Face repo use hf:{text}")
        return FileSource(text, allow_pickle=allow_pickle)
    raise _unknown_name(text, text)


def resolve(spec: Any, *, allow_pickle: bool = False) -> ModelSource:
    """Turn a spec into a :class:`ModelSource`.

    Parameters
    ----------
    spec : str, os.PathLike, torch.nn.Module or Mapping
        See the module docstring for the accepted strings.
    allow_pickle : bool, optional
        Allow full pickle loading (whole pickled modules, custom classes) and ``torch.jit.load``
        of TorchScript archives whose classes set their state with code, for trusted files.
        Off by default, no format runs code from the file: ``torch.load(weights_only=True)``
        for checkpoints, a restricted unpickler for TorchScript archives.

    Returns
    -------
    ModelSource
        Cheap to create; weights are fetched/read when ``tensors()`` is iterated.

    Raises
    ------
    SpecError
        Unknown name (with the closest matches), malformed spec, or missing path.
    """
    import sys

    # A Module can only exist once torch is imported; strings do not need torch (fast errors).
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(spec, torch.nn.Module):
        return ModuleSource(spec)
    if isinstance(spec, Mapping):
        return StateDictSource(spec)
    if isinstance(spec, os.PathLike):
        return FileSource(spec, allow_pickle=allow_pickle)
    if isinstance(spec, str):
        return _resolve_str(spec, allow_pickle)
    raise SpecError(f"cannot use a {type(spec).__name__} as a model spec: pass a name, a path, "
                    "an nn.Module or a state dict")
