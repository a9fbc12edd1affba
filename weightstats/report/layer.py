"""One fitted weight tensor of a model report (the summary and the model build on it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, repr=False)
class LayerResult:
    """One fitted weight tensor.

    Attributes
    ----------
    name, kind, group, dtype : str
        From the source's ``WeightTensor``.
    shape : tuple of int
        The tensor's shape.
    index : int
        Depth order (0 = first selected layer).
    fit : TensorFit
        The fitter's result (see docs/CONTRACTS.md).
    """

    name: str
    kind: str
    group: str
    shape: tuple[int, ...]
    dtype: str
    index: int
    fit: Any

    @property
    def numel(self) -> int:
        """Number of elements in the tensor."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def shape_str(self) -> str:
        """Shape as ``64x3x7x7`` (CSV-friendly)."""
        return "x".join(str(s) for s in self.shape)

    def __repr__(self) -> str:
        # One line plus the fit's per-family table, never the histogram.
        return f"LayerResult {self.name} ({self.kind}, depth {self.index}): {self.fit!r}"

    def _repr_html_(self) -> str:
        from html import escape

        fit_html = getattr(self.fit, "_repr_html_", None)
        body = fit_html() if fit_html is not None else f"<pre>{escape(repr(self.fit))}</pre>"
        return f"<p><b>{escape(self.name)}</b> ({escape(self.kind)}, depth {self.index})</p>" + body
