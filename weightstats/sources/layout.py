"""Pick the weights file(s) of a Hugging Face-style folder (a local directory or a hub repo).

Shared by the directory source and the hub source, so ``hf:ORG/REPO`` and a local clone of
the same repo resolve to the same files. The file names and their order of preference come
from the format table (:func:`~weightstats.sources.formats.folder_patterns`): sharded and
single safetensors first (transformers, timm, diffusers), then PyTorch pickles, ONNX, NumPy.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable

from weightstats.errors import SpecError
from weightstats.sources.formats import SHARD_INDEX_EXT, folder_patterns, format_by_extension


def is_weight_file(path: str) -> bool:
    """True for file names whose extension is in the format table (shard indexes included)."""
    return format_by_extension(posixpath.basename(path)) is not None


def is_folder_candidate(path: str) -> bool:
    """True for file names a model folder's weights file can be chosen among."""
    name = posixpath.basename(path)
    return any(fnmatch.fnmatchcase(name, p) for p in folder_patterns())


def choose_weight_file(files: Iterable[str], subfolder: str = "", where: str = "") -> str | None:
    """Choose the one weights file (or shard index) of a folder.

    Parameters
    ----------
    files : iterable of str
        Repo-relative POSIX paths of all files (any depth).
    subfolder : str, optional
        Only files directly in this folder are considered (``""`` = top level).
    where : str, optional
        How to name the folder in error messages.

    Returns
    -------
    str or None
        Relative path of the chosen file; None when the folder holds no weights file.

    Raises
    ------
    SpecError
        Several unrelated candidates (e.g. two single-file checkpoints): the user must pick one.
    """
    sub = subfolder.strip("/")
    here = sorted(f for f in files if posixpath.dirname(f) == sub)
    names = [posixpath.basename(f) for f in here]
    for pattern in folder_patterns():
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if pattern.startswith("*") and not pattern.endswith(SHARD_INDEX_EXT):
            # Variant files ("model.fp16.safetensors") and shards listed by an index are not
            # standalone choices when an unsuffixed sibling exists.
            hits = [n for n in hits if "-of-" not in n] or hits
        if len(hits) == 1 or (hits and pattern.endswith(SHARD_INDEX_EXT)):
            return posixpath.join(sub, hits[0]) if sub else hits[0]
        if len(hits) > 1:
            listed = ", ".join(hits[:6])
            raise SpecError(
                f"{where or 'the folder'} holds several weights files ({listed}): name one "
                "explicitly, e.g. append /FILENAME to the spec"
            )
    return None


def subfolders_with_weights(files: Iterable[str]) -> list[str]:
    """Folders (one level down or deeper) that hold a weights file, for error hints."""
    return sorted({posixpath.dirname(f) for f in files if is_folder_candidate(f) and "/" in f})
