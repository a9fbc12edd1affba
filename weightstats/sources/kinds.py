"""Layer kinds of weight tensors: ``conv``, ``linear``, ``embedding``, ``norm``, ``bias``, ``other``.

Readers classify tensors while they list them (a file's names and shapes, or a module's
types), so kinds live with the sources; selection (:mod:`weightstats.layers`) comes after.
Kinds come from module types when a module is at hand (exact), otherwise from tensor names
and shapes (a heuristic).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

KINDS: tuple[str, ...] = ("conv", "linear", "embedding", "norm", "bias", "other")
DEFAULT_KINDS: tuple[str, ...] = ("conv", "linear", "embedding")

# Tokens that mark an embedding table in common naming schemes (BERT, GPT-2, LLaMA, ViT, GGUF's
# token_embd).
_EMBED_RE = re.compile(r"embe?d|wte|wpe", re.IGNORECASE)
# GGUF's mixture-of-experts weights (blk.0.ffn_up_exps.weight): one (out, in) matrix per expert.
_EXPERTS_RE = re.compile(r"_exps$")
# Norm-ish module names: bn1, ln_f, norm1, input_layernorm, gn, LayerNorm, final_norm ...
_NORM_RE = re.compile(r"(^|[._])(bn|ln|gn)(\d+|_\w+)?$|norm", re.IGNORECASE)
# Norm buffers; they are statistics, not weights.
_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _split(name: str) -> tuple[str, str]:
    """Split ``a.b.weight`` into (``a.b``, ``weight``); a bare name is its own last part."""
    module, _, last = name.rpartition(".")
    return module, last


# torch.nn.utils.parametrize stores ``conv.weight`` as ``conv.parametrizations.weight.original``
# (``original0``/``original1`` for weight_norm: the per-channel norm g, then the direction v).
_PARAMETRIZED = re.compile(r"^(?:(.*)\.)?parametrizations\.([^.]+)\.original(\d*)$")


def weight_role(name: str) -> tuple[str, bool]:
    """The tensor a stored name stands for, and whether it is a weight-norm gain.

    ``conv.weight_v`` and ``conv.parametrizations.weight.original1`` (weight_norm's direction)
    are the convolution's weight; ``conv.weight_g`` and ``...original0`` are weight_norm's
    per-output-channel norms, gains like a norm layer's weight, not a layer of weights.
    """
    m = _PARAMETRIZED.match(name)
    if m:
        owner, param, index = m.group(1), m.group(2), m.group(3)
        full = f"{owner}.{param}" if owner else param
        return full, index == "0"
    module, last = _split(name)
    if last in ("weight_g", "weight_v"):
        full = f"{module}.weight" if module else "weight"
        return full, last == "weight_g"
    return name, False


def infer_kind(name: str, shape: Sequence[int], *, norm_modules: frozenset[str] = frozenset()) -> str:
    """Guess a tensor's layer kind from its name and shape (no module available).

    Parameters
    ----------
    name : str
        Dotted tensor name, e.g. ``"layer1.0.conv1.weight"``.
    shape : sequence of int
        Tensor shape.
    norm_modules : frozenset of str, optional
        Module prefixes known to be norm layers (e.g. siblings hold ``running_mean``), which
        catches BatchNorms with uninformative names such as ``downsample.1``.

    Returns
    -------
    str
        One of :data:`KINDS`.
    """
    name, is_gain = weight_role(name)
    if is_gain:
        return "norm"
    module, last = _split(name)
    ndim = len(shape)
    lower_last = last.lower()
    if "bias" in lower_last:
        return "bias"
    if lower_last in _NORM_BUFFERS or ndim == 0:
        return "other"
    is_weight = lower_last.endswith("weight") or lower_last in ("kernel", "w") or not module
    if ndim == 3 and is_weight and _EXPERTS_RE.search(_split(module)[1]):
        return "linear"
    if ndim >= 3:
        # pos_embed (1, N, D) and cls_token (1, 1, D) are 3-D but are not convolutions.
        if _EMBED_RE.search(last) or "token" in lower_last:
            return "embedding" if _EMBED_RE.search(last) else "other"
        return "conv"
    if ndim == 2:
        # Look at the module part (or the bare name), so "patch_embed.proj.weight" stays linear.
        owner = _split(module)[1] if is_weight and module else last
        if _EMBED_RE.search(owner):
            return "embedding"
        return "linear" if is_weight else "other"
    # ndim == 1
    if is_weight and (module in norm_modules or _NORM_RE.search(_split(module)[1] or last)):
        return "norm"
    if lower_last in ("gamma", "scale") and _NORM_RE.search(module):
        return "norm"
    return "other"


def infer_kinds(shapes: Mapping[str, Sequence[int]]) -> dict[str, str]:
    """Classify a whole state dict by names and shapes, using sibling tensors as hints.

    A module whose state holds ``running_mean`` is a BatchNorm whatever its name is.
    """
    norm_modules = frozenset(
        _split(n)[0] for n in shapes if _split(n)[1] in ("running_mean", "running_var")
    )
    return {n: infer_kind(n, s, norm_modules=norm_modules) for n, s in shapes.items()}


def module_kind(module: object) -> str | None:
    """Return the kind of a module's ``weight`` from its type, or None when the type is unknown.

    Subclasses count (timm's ``StdConv2d`` is a Conv2d). TorchScript modules keep the
    original class name in ``original_name``, so names are checked too.
    """
    import torch.nn as nn

    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return "embedding"
    norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    if isinstance(module, norm_types) or (hasattr(nn, "RMSNorm") and isinstance(module, nn.RMSNorm)):
        return "norm"
    cls = str(getattr(module, "original_name", "") or type(module).__name__)
    if cls.startswith("Conv") or cls.endswith(("Conv1d", "Conv2d", "Conv3d")):
        return "conv"
    if cls.endswith("Linear"):
        return "linear"
    if cls.startswith("Embedding"):
        return "embedding"
    if "Norm" in cls:
        return "norm"
    return None


def kinds_from_module(model: object, shapes: Mapping[str, Sequence[int]]) -> dict[str, str]:
    """Classify the state-dict entries of ``model`` using the types of the owning modules.

    Entries owned by modules of unknown type fall back to :func:`infer_kinds`.
    """
    owners = {name: module_kind(m) for name, m in model.named_modules()}  # type: ignore[attr-defined]
    return kinds_from_owner_kinds(owners, shapes)


def kinds_from_owner_kinds(owners: Mapping[str, str | None],
                           shapes: Mapping[str, Sequence[int]]) -> dict[str, str]:
    """Classify state-dict entries given each owning module's kind (None when unknown).

    Shared by live modules and TorchScript archives read without running them (whose module
    kinds come from their class names).
    """
    guessed = infer_kinds(shapes)
    kinds: dict[str, str] = {}
    for stored, shape in shapes.items():
        name, is_gain = weight_role(stored)
        owner, last = _split(name)
        kind = owners.get(owner)
        if is_gain:
            kinds[stored] = "norm"
        elif "bias" in last.lower():
            kinds[stored] = "bias"
        elif kind is None:
            kinds[stored] = guessed[stored]
        elif last == "weight" or (last.endswith("weight") and len(shape) >= 2):
            kinds[stored] = kind
        else:
            # Buffers (running_mean, position_ids, ...) are not trainable weights.
            kinds[stored] = "other"
    return kinds
