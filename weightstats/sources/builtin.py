"""Built-in offline models: ``digits-resnet``, ``digits-vae`` and their ``:none`` twins.

The models themselves live in :mod:`weightstats.models.digits` (imported lazily so that the
registry works, and lists these names, without it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from weightstats.errors import LoadError, SpecError
from weightstats.sources.base import ModelSource, WeightTensor, one_line, tensors_from_module

BUILTIN_NAMES: tuple[str, ...] = ("digits-resnet", "digits-vae")


def _digits() -> Any:
    try:
        from weightstats.models import digits
    except ImportError as err:
        raise LoadError(f"built-in models are unavailable ({one_line(err)}): reinstall "
                        "weightstats, or use a torchvision name such as resnet18:none") from None
    return digits


class BuiltinSource(ModelSource):
    """A small model shipped with weightstats (trained weights or the untrained twin)."""

    kind_of_source = "builtin"

    def __init__(self, name: str, tag: str | None, spec: str) -> None:
        if name not in BUILTIN_NAMES:
            raise SpecError(f"unknown built-in model {name!r}: use one of {', '.join(BUILTIN_NAMES)}")
        if tag is not None and tag.lower() != "none":
            raise SpecError(f"unknown weights tag {tag!r} for {name}: use {name} (trained) or "
                            f"{name}:none (untrained)")
        self.model_name = name
        self.pretrained = tag is None
        what = "shipped trained weights" if self.pretrained else "untrained (fixed seed)"
        super().__init__(name if self.pretrained else f"{name}-none", spec,
                         f"built-in {name}, {what}")

    def build(self) -> Any:
        """The ``nn.Module`` (trained or untrained)."""
        digits = _digits()
        if self.pretrained:
            return digits.load_pretrained(self.model_name)
        return digits.build_model(self.model_name)

    def _tensors(self) -> Iterator[WeightTensor]:
        yield from tensors_from_module(self.build().eval())
