"""BatchNorm folded into convolution weights: the signature it leaves, and the report's sentence.

Exporters (ONNX, TensorRT, many mobile toolchains) fold an inference-time BatchNorm into the
preceding convolution: output channel ``o`` of the weight is multiplied by ``γ_o / σ_o``. Each
output channel then carries its own scale, on top of whatever the training gave it, so the pooled
weights of the tensor are a scale mixture *by construction*, heavy-tailed even when every channel
is Gaussian.

The signature is read from the scale-heterogeneity test the fitter already runs on every tensor
(:mod:`weightstats.fitting.heterogeneity`): the output-channel axis

* differs beyond i.i.d. (fan-in) sampling noise (its stratified median test rejects), with
* a large effect: the SD of the channels' log scales beyond noise is at least ``MIN_SD``
  (channel scales typically a factor ``exp(MIN_SD)`` apart), and
* dominates the other axes: at least ``DOMINANCE`` times the excess of the input-channel and
  kernel-position axes, since folding multiplies rows and leaves columns alone.

A model is called folded when at least ``MIN_SHARE`` of its convolutions (tensors with a kernel
position axis) whose output channels could be tested carry the signature, and at least
``MIN_LAYERS`` of them. Trained convolutions
kept next to their BatchNorm, and models without BatchNorm, spread their channel scales by far
less (measured: SD 0.0-0.16 in the built-in digits models, 0.2-1.1 in nudenet's YOLOv8n, which
ships folded), and evenly across input and output channels. A tensor property, so the verdict is
"appears folded": it is evidence about the weights, not knowledge of the export.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

MIN_SD = 0.18  # output-channel log-scale SD beyond noise (channel scales ~x1.2 apart or more)
DOMINANCE = 1.2  # ... and this many times the other axes' excess SD
MIN_SHARE = 0.5  # share of a model's convolutions with the signature
MIN_LAYERS = 3
OUTPUT_AXIS = "output channel"


def _excess(axes: Iterable[Mapping[str, Any]], name: str) -> float:
    """The axis's excess SD, 0 where it was not computed (too small) or does not differ."""
    for axis in axes:
        if axis.get("axis") == name:
            return float(axis.get("excess_sd") or 0.0) if axis.get("differs") else 0.0
    return 0.0


def folding_signature(heterogeneity: Mapping[str, Any] | None) -> float | None:
    """The factor by which output-channel scales differ (``exp`` of their log-scale SD beyond
    noise) when a tensor carries the folding signature (module docstring), else None.

    Parameters
    ----------
    heterogeneity : dict or None
        :func:`weightstats.fitting.heterogeneity.scale_heterogeneity`'s result for the tensor.
    """
    axes = list((heterogeneity or {}).get("axes") or [])
    out = _excess(axes, OUTPUT_AXIS)
    others = max((_excess(axes, str(a.get("axis"))) for a in axes
                  if a.get("axis") != OUTPUT_AXIS), default=0.0)
    if out >= MIN_SD and out >= DOMINANCE * others:
        return math.exp(out)
    return None


def is_convolution(shape: tuple[int, ...]) -> bool:
    """A tensor with a kernel axis (conv weight, ``out x in x k...``), even a 1x1 kernel."""
    return len(shape) >= 3


def folding_summary(layers: Iterable[Any], *, per_channel: bool = False) -> dict[str, Any]:
    """Does BatchNorm appear folded into this model's convolutions?

    Parameters
    ----------
    layers : iterable of LayerResult
        The report's layers (``name``, ``shape``, ``fit.heterogeneity``).
    per_channel : bool
        Whether the report standardized each output channel (``--per-channel``): the sentence
        then says that this removed the folded scales.

    Returns
    -------
    dict
        ``{"folded": bool, "n_conv": int, "n_signature": int, "layers": {name: factor},
        "median_factor": float | None, "max_factor": float | None, "sentence": str}``; the
        sentence is empty unless the model appears folded.
    """
    n_conv = in_conv = 0
    flagged: dict[str, float] = {}
    for lr in layers:
        het = getattr(lr.fit, "heterogeneity", None) or {}
        # Only convolutions whose output channels could be tested count (a 1x1 kernel with few
        # inputs, or a layer too small to fit, has no output-channel result).
        conv = is_convolution(tuple(lr.shape)) and any(
            a.get("axis") == OUTPUT_AXIS for a in het.get("axes") or [])
        n_conv += conv
        factor = folding_signature(het)
        if factor is not None:
            flagged[lr.name] = factor
            in_conv += conv
    folded = n_conv > 0 and in_conv >= MIN_LAYERS and in_conv >= MIN_SHARE * n_conv
    factors = sorted(flagged.values())
    median = factors[len(factors) // 2] if factors else None
    out: dict[str, Any] = {
        "folded": bool(folded), "n_conv": int(n_conv), "n_signature": len(flagged),
        "layers": flagged, "median_factor": median, "max_factor": factors[-1] if factors else None,
        "sentence": "",
    }
    if folded:
        tail = ("; this report standardizes each output channel (--per-channel), which removes "
                "them." if per_channel else "; see --per-channel.")
        out["sentence"] = (
            f"BatchNorm appears folded into these conv weights: in {in_conv} of {n_conv} "
            f"convolutions tested the per-output-channel scales vary by x{median:.2g} (median; up to "
            f"x{factors[-1]:.2g}) beyond sampling noise, as a folded γ/σ makes them, so the "
            f"pooled weights are a scale mixture by construction{tail}")
    return out
