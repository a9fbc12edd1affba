"""PyTorch checkpoints (``torch.save``, zip or legacy) and TorchScript archives.

Nothing in a file runs unless the user opts in: ``torch.load(weights_only=True)`` for
checkpoints, a restricted unpickler for TorchScript archives.
"""

from __future__ import annotations

import pickle
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from weightstats.errors import LoadError
from weightstats.sources.base import (
    WeightTensor,
    error_reason,
    tensors_from_module,
    tensors_from_state_dict,
)
from weightstats.sources.filemap import own_map
from weightstats.sources.graph import Aliases, flatten_once
from weightstats.sources.sniff import zip_kind
from weightstats.sources.torchscript import torchscript_tensors

# Keys under which checkpoints nest the weights, most specific first (Lightning, pythae, ...).
_NESTED_KEYS = (
    "state_dict", "model_state_dict", "model", "module", "net", "network", "params",
    "weights", "ema", "model_ema", "state_dict_ema",
)  # fmt: skip
_SKIP_KEYS = {"optimizer", "optimizer_states", "optimizer_state_dict", "lr_schedulers", "scheduler"}
# Wrapper prefixes (DataParallel, Lightning, torch.compile) stripped when every key has one.
_WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")


def sniff_torch(head: bytes) -> bool:
    """True for a torch zip archive (or a zip of no known kind), a legacy pickle checkpoint
    (pickle protocol 2-5) or a legacy tar checkpoint."""
    kind = zip_kind(head)
    if kind is not None:
        return kind != "npz"
    return (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or (
        head[257:262] == b"ustar")


def _is_array(v: Any) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, type)


def _checkpoint_children(obj: Any) -> list[tuple[str, Any]] | None:
    if not isinstance(obj, Mapping):
        return None
    return [(str(k), v) for k, v in obj.items() if str(k) not in _SKIP_KEYS]


def _flatten(obj: Mapping[str, Any]) -> tuple[dict[str, Any], Aliases]:
    """Tensors of nested dicts under dotted names; each dict and tensor visited once."""
    return flatten_once(obj, _checkpoint_children, _is_array)


def find_weights(obj: Any) -> tuple[Any, Aliases]:
    """Find the module or the dict of tensors inside a loaded checkpoint (None if neither).

    Returns the weights and the other names of shared tensors (a dict reached by two keys).
    """
    import torch

    if isinstance(obj, torch.nn.Module):
        return obj, Aliases()
    if not isinstance(obj, Mapping):
        return None, Aliases()
    if obj and all(_is_array(v) for v in obj.values()):
        return dict(obj), Aliases()
    for key in _NESTED_KEYS:
        v = obj.get(key)
        if isinstance(v, torch.nn.Module) or (isinstance(v, Mapping) and _flatten(v)[0]):
            return find_weights(v)
    found, aliases = _flatten(obj)
    return (found or None), aliases


def wrapper_prefix(names: list[str]) -> str:
    """``module.``/``model.``/``_orig_mod.`` (stacked) when every name carries it, else ``""``."""
    prefix = ""
    for p in _WRAPPER_PREFIXES:
        if names and all(k.startswith(prefix + p) for k in names):
            prefix += p
    return prefix


def strip_wrapper_prefix(state: dict[str, Any],
                         aliases: Aliases | None = None) -> tuple[dict[str, Any], Aliases]:
    """Drop wrapper prefixes when every key carries them (display only), aliases included."""
    aliases = aliases or Aliases()
    prefix = wrapper_prefix(list(state))
    if not prefix:
        return state, aliases
    cut = len(prefix)
    renamed = Aliases()
    for first, names in aliases.names.items():
        for n in names:
            renamed.add(first[cut:], n.removeprefix(prefix))
        renamed.counts[first[cut:]] = aliases.counts[first]
    return {k[cut:]: v for k, v in state.items()}, renamed


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zips with a ``code/`` folder and ``constants.pkl``."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False  # not a usable zip: torch.load gives the error message


def torch_load(path: Path, allow_pickle: bool) -> Any:
    """``torch.load`` with ``weights_only`` unless allowed, memory-mapped where possible.

    Raises
    ------
    LoadError
        As :func:`torch_load_mapped`.
    """
    return torch_load_mapped(path, allow_pickle)[0]


def torch_load_mapped(path: Path, allow_pickle: bool) -> tuple[Any, bool]:
    """:func:`torch_load`'s object, and whether its storages are a memory map of the file.

    Raises
    ------
    LoadError
        The pickle needs arbitrary Python objects (refused without ``allow_pickle``), or the
        file is corrupt.
    """
    import torch

    kwargs: dict[str, Any] = {"map_location": "cpu", "weights_only": not allow_pickle}
    try:
        with warnings.catch_warnings():
            # Harmless warnings of valid files: old pickle protocols, and torch's notices about
            # quantized/typed storages and sparse-invariant checks. Each would print lines.
            for message in (".*pickle protocol", ".*TypedStorage is deprecated",
                            ".*sparse tensor invariants", ".*quantiz"):
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            try:
                return torch.load(path, mmap=True, **kwargs), True
            except RuntimeError as err:
                # Legacy (non-zip) files cannot be memory-mapped; load them normally.
                if "mmap" not in str(err):
                    raise
                return torch.load(path, **kwargs), False
    except pickle.UnpicklingError as err:
        if not allow_pickle and "weights only" in str(err).lower():
            raise LoadError(
                f"{path} holds arbitrary Python objects, which could run code when loaded: "
                "pass --allow-pickle (library: allow_pickle=True) only if you trust the file"
            ) from None
        raise LoadError(f"{path} is not a readable PyTorch file ({error_reason(err)}): "
                        "download or save it again") from None
    except Exception as err:  # a corrupt pickle can raise almost anything (KeyError, EOFError...)
        raise LoadError(f"{path} is not a readable PyTorch file ({error_reason(err)}): "
                        "download or save it again") from None


def torch_file_tensors(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """Tensors of a .pt/.pth/.bin/.ckpt file or a TorchScript archive."""
    import torch

    if is_torchscript(path):
        yield from torchscript_tensors(path, allow_pickle)
        return
    loaded, mapped = torch_load_mapped(path, allow_pickle)
    found, aliases = find_weights(loaded)
    if found is None:
        raise LoadError(f"{path} holds no tensors (not a state dict or module): "
                        "save model.state_dict() with torch.save")
    if isinstance(found, torch.nn.Module):
        yield from tensors_from_module(found)
        return
    state, aliases = strip_wrapper_prefix(found, aliases)
    own = mapped and not allow_pickle and _unswapped(path)
    for t in tensors_from_state_dict(state, aliases=aliases):
        # torch's map of the whole file lives as long as the state dict, and each page read
        # through it stays resident: a 16-bit tensor is read through a map of its own bytes
        # instead, dropped with the array (weights_only and no byte swap: the pages are the file's).
        yield replace(t, loader=_own_map(t.loader, path)) if own else t


def _unswapped(path: Path) -> bool:
    """True when ``torch.load`` leaves the file's storages as stored (no byte swap)."""
    import torch

    if sys.byteorder != "little":
        return False
    try:
        with zipfile.ZipFile(path) as z:
            marks = [n for n in z.namelist() if n.endswith("/byteorder")]
            if marks:
                return all(z.read(n) == b"little" for n in marks)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return False
    # No mark: torch reads the file as little-endian unless told otherwise.
    return (torch.serialization.get_default_load_endianness()
            != torch.serialization.LoadEndianness.BIG)


def _own_map(loader: Callable[[], Any], path: Path) -> Callable[[], Any]:
    """``loader``, whose read-only views of torch's file map come through their own map."""

    def load() -> Any:
        values = loader()
        if isinstance(values, np.ndarray) and not values.flags.writeable:
            return own_map(values, path)
        return values  # a fresh copy (wider dtypes): nothing mapped to keep

    return load
