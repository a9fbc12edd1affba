"""ONNX graphs: initializers, Constant-node tensors, and both inside subgraphs (If/Loop/Scan).

Kinds come from how the graph uses each tensor (a Conv's second input is a conv weight), which
works even for anonymous names like ``onnx::Conv_123``; unused tensors fall back to shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from weightstats.errors import LoadError
from weightstats.sources.base import WeightTensor, group_of, one_line

# (op_type, input index) -> kind.
_USES = {
    ("Conv", 1): "conv", ("ConvTranspose", 1): "conv", ("QLinearConv", 3): "conv",
    ("Conv", 2): "bias", ("ConvTranspose", 2): "bias",
    ("Gemm", 0): "linear", ("Gemm", 1): "linear", ("Gemm", 2): "bias",
    ("MatMul", 0): "linear", ("MatMul", 1): "linear",
    ("Gather", 0): "embedding",
    ("BatchNormalization", 1): "norm", ("BatchNormalization", 2): "bias",
    ("BatchNormalization", 3): "other", ("BatchNormalization", 4): "other",
    ("LayerNormalization", 1): "norm", ("LayerNormalization", 2): "bias",
    ("InstanceNormalization", 1): "norm", ("InstanceNormalization", 2): "bias",
    ("GroupNormalization", 1): "norm", ("GroupNormalization", 2): "bias",
}  # fmt: skip


def _dtype_name(elem_type: int) -> str:
    from onnx import TensorProto, helper

    if elem_type == TensorProto.BFLOAT16:
        return "bfloat16"
    try:
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)))
    except (KeyError, TypeError, ValueError):
        return TensorProto.DataType.Name(elem_type).lower()


def _shape_kind(shape: tuple[int, ...], dtype: str) -> str:
    """Fallback when no known op consumes the tensor: 4-D conv, 2-D linear, 1-D bias."""
    is_float = dtype.startswith("float") or dtype == "bfloat16"
    if not is_float:
        return "other"
    if len(shape) >= 3:
        return "conv"
    if len(shape) == 2:
        return "linear"
    return "bias" if len(shape) == 1 else "other"


def _walk(graph: Any, uses: dict[str, str], found: list[tuple[str, Any]]) -> None:
    """Collect (name, TensorProto) pairs and the first known use of each name, recursively."""
    from onnx import AttributeProto

    for init in graph.initializer:
        found.append((init.name, init))
    for node in graph.node:
        for i, inp in enumerate(node.input):
            kind = _USES.get((node.op_type, i))
            if kind and inp and inp not in uses:
                uses[inp] = kind
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.type == AttributeProto.TENSOR:
                found.append((node.output[0] if node.output else attr.t.name, attr.t))
            elif attr.type == AttributeProto.GRAPH:
                _walk(attr.g, uses, found)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    _walk(g, uses, found)


# Tags of the ModelProto fields that can follow ir_version (field 1) in a serialized model:
# producer_name .. graph, opset_import, metadata_props (protobuf writes fields in order).
_ONNX_NEXT_TAGS = frozenset(b"\x12\x1a\x22\x28\x32\x3a\x42\x72")


def sniff_onnx(head: bytes) -> bool:
    """True when the first bytes read as a serialized ONNX ModelProto: ir_version (field 1,
    a small varint) followed by one of the model's later fields."""
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] < 0x40 and head[2] in _ONNX_NEXT_TAGS


def onnx_tensors(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """Yield the weight tensors of an .onnx file (external data is loaded from its folder).

    ``allow_pickle`` is ignored: weights are read from the protobuf, no code runs.

    Raises
    ------
    LoadError
        The file is not a parseable ONNX model.
    """
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf DecodeError and friends
        raise LoadError(f"{path} is not a readable ONNX model ({one_line(err)}): "
                        "export it again") from None
    if not model.HasField("graph"):
        # Protobuf parses many non-ONNX byte strings as an empty message.
        raise LoadError(f"{path} is not a readable ONNX model (no graph in the file): "
                        "export it again")
    uses: dict[str, str] = {}
    found: list[tuple[str, Any]] = []
    _walk(model.graph, uses, found)
    seen: set[str] = set()
    for name, proto in found:
        if name in seen:
            continue
        seen.add(name)
        shape = tuple(int(d) for d in proto.dims)
        dtype = _dtype_name(proto.data_type)
        kind = uses.get(name) or _shape_kind(shape, dtype)
        if kind == "linear" and len(shape) != 2:
            kind = _shape_kind(shape, dtype)  # MatMul with a 1-D/3-D operand: not a layer

        def load(proto: Any = proto) -> np.ndarray:
            arr = numpy_helper.to_array(proto)
            if not isinstance(arr, np.ndarray) or arr.dtype.kind == "V" or "bfloat16" in str(
                arr.dtype
            ) or "float8" in str(arr.dtype):
                arr = np.asarray(arr, dtype=np.float32)
            return arr

        yield WeightTensor(name, kind, shape, dtype, group_of(name), load)
