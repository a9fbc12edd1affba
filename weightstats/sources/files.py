"""Local weight files and HF-style folders: :class:`FileSource`.

Which reader reads a file is decided by the format table (:mod:`~weightstats.sources.formats`);
the readers live in one module per format (safetensors, PyTorch, NumPy, ONNX).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from weightstats.errors import SpecError
from weightstats.sources.base import ModelSource, WeightTensor
from weightstats.sources.formats import (
    SHARD_INDEX_EXT,
    check_file,
    index_shards,
    path_tensors,
    weights_file_hint,
)
from weightstats.sources.layout import choose_weight_file, subfolders_with_weights

__all__ = ["FileSource", "check_file", "index_shards", "local_folder_choice", "path_tensors"]


def local_folder_choice(folder: Path) -> Path:
    """The weights file of an HF-style folder (see :mod:`~weightstats.sources.layout`)."""
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    chosen = choose_weight_file(files, where=str(folder))
    if chosen is None:
        subs = subfolders_with_weights(files)
        hint = (f"pick a subfolder such as {folder / subs[0]}" if subs
                else f"pass {weights_file_hint()}")
        raise SpecError(f"{folder} is a directory without a weights file: {hint}")
    return folder / chosen


class FileSource(ModelSource):
    """A local weights file or HF-style folder."""

    kind_of_source = "file"

    def __init__(self, path: str | os.PathLike[str], *, allow_pickle: bool = False,
                 spec: str | None = None) -> None:
        p = Path(path).expanduser()
        try:
            exists = p.exists()
        except OSError as err:  # a name longer than the file system allows, and the like
            raise SpecError(f"cannot use the path {p} ({err.strerror or err}): check the path "
                            "(or use a model name, see `weightstats list`)") from None
        if not exists:
            raise SpecError(f"no such file: {p}: check the path (or use a model name, see "
                            "`weightstats list`)")
        self.path = local_folder_choice(p) if p.is_dir() else p
        stem = p.name if p.is_dir() else Path(p.name.removesuffix(SHARD_INDEX_EXT)).stem
        super().__init__(stem, spec or str(path), f"local file {self.path}")
        self.allow_pickle = allow_pickle

    def _tensors(self) -> Iterator[WeightTensor]:
        yield from path_tensors(self.path, self.allow_pickle)
