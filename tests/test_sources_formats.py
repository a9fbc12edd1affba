"""The format table (weightstats.sources.formats) and the import order sources -> layers.

A toy format defined here (a text file of numbers, extension ``.nums``, magic ``NUMS1``) is
registered with one call and read through the normal spec resolution; unregistered, the
same file is refused with the usual one-line error. The table is the only extension list,
and the import graph of weightstats.layers + weightstats.sources.* has no circle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from importgraph import find_cycle, import_graph
from safetensors.numpy import save_file

import weightstats
from weightstats.errors import LoadError, SpecError
from weightstats.sources import (
    WeightTensor,
    list_formats,
    register_format,
    resolve,
    unregister_format,
)
from weightstats.sources.base import tensors_from_state_dict
from weightstats.sources.formats import file_extensions, folder_patterns, format_by_extension

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "weightstats"
MAGIC = "NUMS1"


# ----------------------------------------------------------------------------- the toy format
def read_nums(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """Reader of the toy format: a magic line, then ``name rows cols v1 v2 ...`` per tensor."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != MAGIC:
        raise LoadError(f"{path} is not a numbers file (no {MAGIC} line): write it again")
    state = {}
    for line in lines[1:]:
        name, rows, cols, *values = line.split()
        state[name] = np.array(values, dtype=np.float32).reshape(int(rows), int(cols))
    yield from tensors_from_state_dict(state)


def sniff_nums(head: bytes) -> bool:
    return head.startswith(MAGIC.encode() + b"\n")


@pytest.fixture
def nums() -> Iterator[str]:
    """The toy format, registered for one test (one call: the reader above and this entry)."""
    register_format("nums", (".nums",), read_nums, sniff=sniff_nums, rank=90,
                    folder_names=("*.nums",), label="numbers")
    try:
        yield "nums"
    finally:
        unregister_format("nums")


@pytest.fixture
def values() -> np.ndarray:
    return np.random.default_rng(3).laplace(size=(16, 32)).astype(np.float32)


def write_nums(path: Path, values: np.ndarray, magic: str = MAGIC) -> Path:
    numbers = " ".join(repr(float(v)) for v in values.ravel())
    path.write_text(f"{magic}\nfc.weight {values.shape[0]} {values.shape[1]} {numbers}\n",
                    encoding="utf-8")
    return path


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


def test_a_registered_format_loads_through_the_normal_spec_resolution(
        tmp_path: Path, values: np.ndarray, nums: str) -> None:
    path = write_nums(tmp_path / "toy.nums", values)
    [t] = list(resolve(str(path)).tensors())
    assert (t.name, t.kind, t.shape, t.dtype) == ("fc.weight", "linear", (16, 32), "float32")
    np.testing.assert_array_equal(t.load(), values)
    report = weightstats.fit_model(str(path), families="normal,laplace")
    layer = report.layer("fc.weight")
    assert layer.fit.status == "ok" and layer.shape == (16, 32)
    assert report.model == "toy"


def test_the_table_drives_paths_folders_and_sniffing(
        tmp_path: Path, values: np.ndarray, nums: str) -> None:
    assert ".nums" in file_extensions() and "*.nums" in folder_patterns()
    assert [f.name for f in list_formats()][-1] == "nums"  # rank 90: after the built-ins
    # A missing *.nums spec is a path now (not an unknown model name).
    with pytest.raises(SpecError, match="no such file") as err:
        resolve("missing.nums")
    one_line(err)
    # A folder holding the format: its file is chosen; next to a safetensors file, rank decides.
    folder = tmp_path / "model"
    folder.mkdir()
    write_nums(folder / "weights.nums", values)
    assert resolve(str(folder)).path.name == "weights.nums"
    save_file({"fc.weight": values}, str(folder / "model.safetensors"))
    assert resolve(str(folder)).path.name == "model.safetensors"
    # An unknown extension is recognised by its first bytes.
    plain = write_nums(tmp_path / "weights.data", values)
    np.testing.assert_array_equal(next(iter(resolve(plain).tensors())).load(), values)


def test_unregistered_the_format_is_refused_with_the_usual_one_line(
        tmp_path: Path, values: np.ndarray) -> None:
    assert format_by_extension("toy.nums") is None
    path = write_nums(tmp_path / "toy.nums", values)
    with pytest.raises(LoadError, match="not in a weights format weightstats reads .*: pass a "
                                        r"weights file \(\.safetensors, \.pt, ") as err:
        list(resolve(str(path)).tensors())
    one_line(err)
    with pytest.raises(SpecError, match="unknown model 'missing.nums'") as err:
        resolve("missing.nums")
    one_line(err)
    folder = tmp_path / "model"
    folder.mkdir()
    write_nums(folder / "weights.nums", values)
    with pytest.raises(SpecError, match="directory without a weights file") as err:
        resolve(folder)
    one_line(err)


def test_disguised_files_are_refused_in_one_line(
        tmp_path: Path, values: np.ndarray, nums: str) -> None:
    # A safetensors file named like the toy format, and the toy format named .safetensors.
    save_file({"fc.weight": values}, str(tmp_path / "real.nums"))
    with pytest.raises(LoadError, match="named like a numbers file but its content is a "
                                        "safetensors file") as err:
        list(resolve(tmp_path / "real.nums").tensors())
    one_line(err)
    write_nums(tmp_path / "toy.safetensors", values)
    with pytest.raises(LoadError, match="content is a numbers file: give it the .nums") as err:
        list(resolve(tmp_path / "toy.safetensors").tensors())
    one_line(err)
    # Content its own sniffer rejects and no other claims: the format's reader says why.
    write_nums(tmp_path / "bad.nums", values, magic="NUMS0")
    with pytest.raises(LoadError, match="not a numbers file") as err:
        list(resolve(tmp_path / "bad.nums").tensors())
    one_line(err)


def test_built_in_formats_disguised_or_without_extension(tmp_path: Path,
                                                         values: np.ndarray) -> None:
    import torch

    torch.save({"fc.weight": torch.from_numpy(values)}, tmp_path / "ckpt.safetensors")
    with pytest.raises(LoadError, match="named like a safetensors file but its content is a "
                                        "PyTorch file: give it the .pt extension") as err:
        list(resolve(tmp_path / "ckpt.safetensors").tensors())
    one_line(err)
    with open(tmp_path / "arrays.pt", "wb") as fh:  # np.savez appends .npz to a name
        np.savez(fh, w=values)
    with pytest.raises(LoadError, match="content is a NumPy .npz file") as err:
        list(resolve(tmp_path / "arrays.pt").tensors())
    one_line(err)
    # Without an extension (or with one nobody registered) the content decides.
    save_file({"fc.weight": values}, str(tmp_path / "weights"))
    torch.save({"fc.weight": torch.from_numpy(values)}, tmp_path / "ckpt.weights")
    with open(tmp_path / "array.data", "wb") as fh:
        np.save(fh, values)
    for name in ("weights", "ckpt.weights", "array.data"):
        [t] = list(resolve(tmp_path / name).tensors())
        np.testing.assert_array_equal(t.load(), values)


def test_a_format_that_runs_code_needs_the_opt_in(tmp_path: Path, values: np.ndarray) -> None:
    register_format("nums-code", (".numc",), read_nums, needs_opt_in=True, label="numbers+code")
    try:
        path = write_nums(tmp_path / "toy.numc", values)
        with pytest.raises(LoadError, match="runs code .*--allow-pickle") as err:
            list(resolve(path).tensors())
        one_line(err)
        assert len(list(resolve(path, allow_pickle=True).tensors())) == 1
    finally:
        unregister_format("nums-code")


def test_registration_refuses_an_ambiguous_table(nums: str) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_format("nums", (".nums2",), read_nums)
    with pytest.raises(ValueError, match="already belongs to 'pytorch'"):
        register_format("other", (".pt",), read_nums)
    with pytest.raises(ValueError, match="lower-case"):
        register_format("other", ("nums",), read_nums)
    with pytest.raises(ValueError, match="no file format 'other'"):
        unregister_format("other")
    replaced = register_format("nums", (".nums",), read_nums, rank=5, replace=True)
    assert list_formats()[1] is replaced  # rank 5: after the shard index (0), before safetensors


@pytest.mark.parametrize("name, expected", [
    ("model.safetensors", "safetensors"), ("model.safetensors.index.json", "shard-index"),
    ("ckpt.PTH", "pytorch"), ("resnet.pth.tar", "pytorch"), ("net.onnx", "onnx"),
    ("w.npz", "npz"), ("w.npy", "npy"), ("notes.txt", None)])
def test_extension_lookup(name: str, expected: str | None) -> None:
    fmt = format_by_extension(name)
    assert (fmt.name if fmt else None) == expected


# ----------------------------------------------------------------------------- one extension list
def _is_extension(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)
            and re.fullmatch(r"(\.[a-z0-9]+)+", node.value) is not None)


def test_the_table_is_the_only_extension_list() -> None:
    """No module but formats.py lists extensions; the resolvers name none at all."""
    lists = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "sources" / "formats.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                if sum(_is_extension(e) for e in node.elts) >= 2:
                    lists.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not lists, f"extension lists outside the format table: {lists}"
    named = []
    for name in ("__init__.py", "files.py", "layout.py", "hf_source.py"):
        path = PACKAGE / "sources" / name
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if _is_extension(node) and node.value in file_extensions():
                named.append(f"{name}:{node.lineno} {node.value}")
    assert not named, f"resolution code naming an extension instead of the table: {named}"


def test_every_extension_the_docs_mention_is_in_the_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    rows = [line for line in readme if line.startswith(("| `path.", "| `hf:"))]
    doc = weightstats.sources.__doc__ or ""
    rows += [line for line in doc.splitlines() if "a path:" in line]
    assert len(rows) >= 3, rows
    # Whole dotted endings: "*.safetensors.index.json" is a shard index.
    mentioned = {m for line in rows for m in re.findall(r"(?:\.[A-Za-z][A-Za-z0-9]+)+", line)}
    assert len(mentioned) >= 8, mentioned
    unknown = sorted(m for m in mentioned if format_by_extension(m) is None)
    assert not unknown, f"extensions the docs mention that the table lacks: {unknown}"


# ----------------------------------------------------------------------------- no import circle
def test_layers_and_sources_import_without_a_circle() -> None:
    graph = import_graph()
    nodes = {n for n in graph if n == "weightstats.layers" or n.startswith("weightstats.sources")}
    assert "weightstats.sources.kinds" in nodes and "weightstats.sources.formats" in nodes
    assert find_cycle(graph, nodes) is None, " -> ".join(find_cycle(graph, nodes) or [])
    # Selection comes after the sources: layers imports them, no source reaches layers through
    # any chain of weightstats modules.
    assert "weightstats.sources.kinds" in graph["weightstats.layers"]
    for source in sorted(nodes - {"weightstats.layers"}):
        seen, todo = set(), [source]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert "weightstats.layers" not in seen, f"{source} reaches weightstats.layers"


def test_kind_names_still_import_from_layers() -> None:
    from weightstats import layers
    from weightstats.sources import kinds

    for name in ("KINDS", "DEFAULT_KINDS", "infer_kind", "infer_kinds", "kinds_from_module",
                 "kinds_from_owner_kinds", "module_kind", "weight_role"):
        assert getattr(layers, name) is getattr(kinds, name)
