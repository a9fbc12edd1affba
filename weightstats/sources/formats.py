"""The table of weight-file formats: one entry per format, like timm's model registry.

An entry says how to recognise a file (its extensions, and a sniffing function that looks at
its first bytes), how to read it (the reader), how much to prefer it (the rank: which file of
a model folder is chosen, which sniffing function is asked first), which names it has in a
model folder, and whether every read runs code from the file (then it is refused unless the
user opts in with ``--allow-pickle``). Path resolution, the model-folder layout
(:mod:`~weightstats.sources.layout`), the "does this spec look like a path" test and the
hints of error messages all read this table: adding a format (GGUF, say) is one reader module
plus one :func:`register_format` call.

How a file is matched (:func:`format_of`):

1. its extension names a format whose sniffing function accepts the first bytes (or that has
   none): that format;
2. the extension names a format, the bytes do not fit it but fit another format: refused with
   a one-line error (a disguised file is never read by a reader its name did not ask for);
3. the extension names a format and no sniffing function accepts the bytes: that format's
   reader, which says what is wrong with the file;
4. an unknown extension: the first format, by rank, whose sniffing function accepts the
   bytes; none: refused with a one-line error.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from weightstats.errors import LoadError
from weightstats.sources.base import WeightTensor, error_reason
from weightstats.sources.gguf_file import gguf_tensors, sniff_gguf
from weightstats.sources.numpy_file import npy_tensors, npz_tensors, sniff_npy, sniff_npz
from weightstats.sources.onnx_source import onnx_tensors, sniff_onnx
from weightstats.sources.safetensors_file import safetensors_tensors, sniff_safetensors
from weightstats.sources.sniff import HEAD_BYTES
from weightstats.sources.torch_file import sniff_torch, torch_file_tensors

__all__ = [
    "SHARD_INDEX_EXT",
    "FileFormat",
    "file_extensions",
    "folder_patterns",
    "format_by_extension",
    "format_of",
    "path_tensors",
    "register_format",
    "registered_formats",
    "unregister_format",
]

Reader = Callable[[Path, bool], Iterable[WeightTensor]]
Sniff = Callable[[bytes], bool]

SHARD_INDEX_EXT = ".index.json"
OPT_IN = "pass --allow-pickle (library: allow_pickle=True) only if you trust the file"


@dataclass(frozen=True)
class FileFormat:
    """One entry of the format table.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"safetensors"``.
    extensions : tuple of str
        Lower-case file-name endings with the dot (``".pt"``, ``".index.json"``).
    reader : callable
        ``reader(path, allow_pickle)`` yielding :class:`~weightstats.sources.WeightTensor` s;
        it raises :class:`~weightstats.errors.LoadError` with a one-line message for a file
        it cannot read.
    sniff : callable or None
        ``sniff(head)`` is True when the first bytes of a file (up to 512) look like this
        format. None: recognised by extension only.
    rank : int
        Lower is preferred: a model folder's files are chosen in rank order, and sniffing
        functions are asked in rank order.
    needs_opt_in : bool
        Every read runs code from the file: refused unless ``allow_pickle``.
    folder_names : tuple of str
        ``fnmatch`` patterns of this format's files in a model folder (shard indexes that
        list them included), most preferred first; empty: never chosen from a folder.
    label : str
        Name in messages (``"PyTorch"``); defaults to ``name``.
    """

    name: str
    extensions: tuple[str, ...]
    reader: Reader
    sniff: Sniff | None = None
    rank: int = 100
    needs_opt_in: bool = False
    folder_names: tuple[str, ...] = ()
    label: str = ""

    @property
    def title(self) -> str:
        """The name used in messages."""
        return self.label or self.name


_TABLE: dict[str, FileFormat] = {}


def _check_entry(fmt: FileFormat, replace: bool) -> None:
    """Refuse an entry that would make the table ambiguous (a programming error)."""
    if not fmt.name or not isinstance(fmt.name, str):
        raise ValueError("a file format needs a non-empty name")
    if fmt.name in _TABLE and not replace:
        raise ValueError(f"file format {fmt.name!r} is already registered (replace=True to swap it)")
    if not fmt.extensions:
        raise ValueError(f"file format {fmt.name!r} needs at least one extension")
    others = [f for f in _TABLE.values() if f.name != fmt.name]
    for ext in fmt.extensions:
        if not (isinstance(ext, str) and ext.startswith(".") and len(ext) > 1 and ext == ext.lower()):
            raise ValueError(f"extension {ext!r} of {fmt.name!r}: use a lower-case '.ext'")
        owner = next((f.name for f in others if ext in f.extensions), None)
        if owner:
            raise ValueError(f"extension {ext} of {fmt.name!r} already belongs to {owner!r}")
    if not callable(fmt.reader) or (fmt.sniff is not None and not callable(fmt.sniff)):
        raise ValueError(f"file format {fmt.name!r}: reader and sniff must be callables")


def register_format(name: str, extensions: Iterable[str], reader: Reader, *,
                    sniff: Sniff | None = None, rank: int = 100, needs_opt_in: bool = False,
                    folder_names: Iterable[str] = (), label: str = "",
                    replace: bool = False) -> FileFormat:
    """Add a file format to the table (see :class:`FileFormat` for the fields).

    Parameters
    ----------
    replace : bool, optional
        Swap an entry of the same name instead of refusing it.

    Returns
    -------
    FileFormat
        The entry, as stored.

    Raises
    ------
    ValueError
        The name is taken, an extension belongs to another format, or an extension is not a
        lower-case ``".ext"``.
    """
    fmt = FileFormat(name=name, extensions=tuple(extensions), reader=reader, sniff=sniff,
                     rank=int(rank), needs_opt_in=bool(needs_opt_in),
                     folder_names=tuple(folder_names), label=label)
    _check_entry(fmt, replace)
    _TABLE[name] = fmt
    return fmt


def unregister_format(name: str) -> FileFormat:
    """Remove a format from the table and return its entry.

    Raises
    ------
    ValueError
        No format of that name is registered.
    """
    if name not in _TABLE:
        raise ValueError(f"no file format {name!r} is registered: one of {', '.join(_TABLE)}")
    return _TABLE.pop(name)


def registered_formats() -> tuple[FileFormat, ...]:
    """The table's entries, most preferred (lowest rank) first."""
    return tuple(sorted(_TABLE.values(), key=lambda f: (f.rank, f.name)))


def file_extensions() -> tuple[str, ...]:
    """Every extension of every registered format, in rank order."""
    return tuple(ext for f in registered_formats() for ext in f.extensions)


def folder_patterns() -> tuple[str, ...]:
    """The file-name patterns a model folder's weights file is chosen by, most preferred first."""
    return tuple(p for f in registered_formats() for p in f.folder_names)


def weights_file_hint() -> str:
    """``"a weights file (.safetensors, .pt, ...)"`` for messages: one extension per format
    that a model folder can hold."""
    exts = [f.extensions[0] for f in registered_formats() if f.folder_names]
    return f"a weights file ({', '.join(exts)})"


def format_by_extension(name: str) -> FileFormat | None:
    """The format whose extension ends ``name`` (case-insensitive; the longest one wins)."""
    lower = name.lower()
    best: tuple[int, FileFormat] | None = None
    for fmt in _TABLE.values():
        for ext in fmt.extensions:
            if lower.endswith(ext) and (best is None or len(ext) > best[0]):
                best = (len(ext), fmt)
    return best[1] if best else None


def format_of(path: Path, head: bytes) -> FileFormat:
    """The format that reads ``path``, from its name and first bytes (see the module docstring).

    Raises
    ------
    LoadError
        The extension names one format and the content is another's, or neither the extension
        nor the content is in the table.
    """
    by_ext = format_by_extension(path.name)
    if by_ext is not None and (by_ext.sniff is None or by_ext.sniff(head)):
        return by_ext
    sniffed = next((f for f in registered_formats()
                    if f is not by_ext and f.sniff is not None and f.sniff(head)), None)
    if by_ext is not None and sniffed is not None:
        raise LoadError(f"{path} is named like a {by_ext.title} file but its content is a "
                        f"{sniffed.title} file: give it the {sniffed.extensions[0]} extension "
                        "if that is what it is, or download or save it again")
    found = by_ext or sniffed
    if found is None:
        raise LoadError(f"{path} is not in a weights format weightstats reads (neither its "
                        f"extension nor its first bytes match one): pass {weights_file_hint()}")
    return found


def check_file(path: Path) -> bytes:
    """Refuse what cannot be a weights file before any reader touches it; return its first bytes.

    Raises
    ------
    LoadError
        ``path`` is not a regular file (a FIFO or device could block forever), is empty, or
        cannot be read (permissions).
    """
    try:
        st = path.stat()
    except OSError as err:
        raise LoadError(f"cannot read {path} ({err.strerror or error_reason(err)}): check the path "
                        "and its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        raise LoadError(f"{path} is not a regular file: pass {weights_file_hint()}")
    if st.st_size == 0:
        raise LoadError(f"{path} is empty (0 bytes): the download or save did not finish, "
                        "do it again")
    try:
        with open(path, "rb") as fh:
            return fh.read(HEAD_BYTES)
    except OSError as err:
        raise LoadError(f"cannot read {path} ({err.strerror or error_reason(err)}): check the file's "
                        "permissions (e.g. chmod u+r)") from None


def path_tensors(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """Tensors of any file the table can read (by extension, checked against the content).

    Raises
    ------
    LoadError
        Not a readable regular file, a disguised file, a format that runs code without
        ``allow_pickle``, or whatever the format's reader finds wrong.
    """
    fmt = format_of(path, check_file(path))
    if fmt.needs_opt_in and not allow_pickle:
        raise LoadError(f"{path} is a {fmt.title} file, which runs code from the file when it "
                        f"is read: {OPT_IN}")
    yield from fmt.reader(path, allow_pickle)


# ----------------------------------------------------------------------------- shard indexes
def index_shards(index_path: Path) -> list[Path]:
    """Shard files listed by a ``*.index.json`` (order of first appearance)."""
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
        files = list(dict.fromkeys(weight_map.values()))
        if not all(isinstance(f, str) and f for f in files):
            raise TypeError("weight_map values must be file names")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise LoadError(f"{index_path} is not a valid shard index ({error_reason(err)}): "
                        "download it again") from None
    return [index_path.parent / f for f in files]


def shard_index_tensors(path: Path, allow_pickle: bool = False) -> Iterator[WeightTensor]:
    """Tensors of every shard a ``*.index.json`` lists, each read through the table."""
    for shard in index_shards(path):
        if not shard.exists():
            raise LoadError(f"shard {shard} listed in {path.name} is missing: "
                            "download all shards into the same folder")
        yield from path_tensors(shard, allow_pickle)


# ----------------------------------------------------------------------------- the built-ins
register_format("shard-index", (SHARD_INDEX_EXT,), shard_index_tensors, rank=0,
                label="shard index")
register_format("safetensors", (".safetensors",), safetensors_tensors, sniff=sniff_safetensors,
                rank=10, folder_names=(
                    "model.safetensors.index.json", "diffusion_pytorch_model.safetensors.index.json",
                    "model.safetensors", "diffusion_pytorch_model.safetensors",
                    "*.safetensors.index.json", "*.safetensors"))
register_format("pytorch", (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".tar", ".jit", ".ptl",
                            ".torchscript"),
                torch_file_tensors, sniff=sniff_torch, rank=20, label="PyTorch",
                folder_names=(
                    "pytorch_model.bin.index.json", "diffusion_pytorch_model.bin.index.json",
                    "pytorch_model.bin", "diffusion_pytorch_model.bin",
                    "*.bin", "*.pt", "*.pth", "*.ckpt"))
register_format("onnx", (".onnx",), onnx_tensors, sniff=sniff_onnx, rank=30, label="ONNX",
                folder_names=("*.onnx",))
register_format("npz", (".npz",), npz_tensors, sniff=sniff_npz, rank=40, label="NumPy .npz",
                folder_names=("*.npz",))
register_format("npy", (".npy",), npy_tensors, sniff=sniff_npy, rank=50, label="NumPy .npy")
register_format("gguf", (".gguf",), gguf_tensors, sniff=sniff_gguf, rank=35, label="GGUF",
                folder_names=("*.gguf",))
