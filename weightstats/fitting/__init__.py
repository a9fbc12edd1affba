"""Fitting stage: distribution families, exact KS statistics, valid p-values, comparisons."""

from __future__ import annotations

from .families import DEFAULT_FAMILIES, FAMILIES, family_label, get_family
from .fit import MIN_N, fit_tensor
from .result import COMPARISON_COLUMNS, FRAME_COLUMNS, TensorFit

__all__ = ["fit_tensor", "TensorFit", "FAMILIES", "DEFAULT_FAMILIES", "family_label", "get_family",
           "MIN_N", "FRAME_COLUMNS", "COMPARISON_COLUMNS"]
