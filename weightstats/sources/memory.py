"""In-memory sources: a live ``torch.nn.Module`` or a state-dict mapping."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from weightstats.errors import SpecError
from weightstats.sources.base import (
    ModelSource,
    WeightTensor,
    tensors_from_module,
    tensors_from_state_dict,
)


class ModuleSource(ModelSource):
    """Weights of an ``nn.Module``; kinds come from the module types (exact)."""

    kind_of_source = "module"

    def __init__(
        self, model: Any, *, name: str | None = None, spec: str | None = None,
        description: str | None = None,
    ) -> None:
        cls = type(model).__name__
        super().__init__(
            name or f"module-{cls}",
            spec or f"<nn.Module {cls}>",
            description or f"in-memory torch module {cls}",
        )
        self.model = model

    def _tensors(self) -> Iterator[WeightTensor]:
        yield from tensors_from_module(self.model)


class StateDictSource(ModelSource):
    """A mapping of name -> tensor/ndarray; kinds come from names and shapes."""

    kind_of_source = "state_dict"

    def __init__(
        self, state: Mapping[str, Any], *, name: str | None = None, spec: str | None = None,
        description: str | None = None,
    ) -> None:
        n = sum(1 for v in state.values() if hasattr(v, "shape"))
        if n == 0:
            raise SpecError(
                "the mapping holds no tensors or arrays: pass a state dict such as "
                "model.state_dict()"
            )
        super().__init__(
            name or "state-dict",
            spec or f"<state dict, {n} tensors>",
            description or f"in-memory state dict with {n} tensors",
        )
        self.state = state

    def _tensors(self) -> Iterator[WeightTensor]:
        yield from tensors_from_state_dict(self.state)
