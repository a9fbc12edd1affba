"""Pick the weights file(s) of a Hugging Face-style folder (a local directory or a hub repo).

Shared by the directory source and the hub source, so ``hf:ORG/REPO`` and a local clone of
the same repo resolve to the same files.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable

from weightstats.errors import SpecError

WEIGHT_EXTS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".npz")

# Most preferred first: sharded and single safetensors (transformers, timm, diffusers), then
# PyTorch pickles. Anything else is accepted only when it is the only candidate.
_PREFERRED = (
    "model.safetensors.index.json",
    "diffusion_pytorch_model.safetensors.index.json",
    "model.safetensors",
    "diffusion_pytorch_model.safetensors",
    "*.safetensors.index.json",
    "*.safetensors",
    "pytorch_model.bin.index.json",
    "diffusion_pytorch_model.bin.index.json",
    "pytorch_model.bin",
    "diffusion_pytorch_model.bin",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.onnx",
    "*.npz",
)


def is_weight_file(path: str) -> bool:
    """True for file names this package can read (including shard indexes)."""
    return path.endswith(WEIGHT_EXTS) or path.endswith(".index.json")


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
    for pattern in _PREFERRED:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if pattern.startswith("*") and not pattern.endswith(".index.json"):
            # Variant files ("model.fp16.safetensors") and shards listed by an index are not
            # standalone choices when an unsuffixed sibling exists.
            hits = [n for n in hits if "-of-" not in n] or hits
        if len(hits) == 1 or (hits and pattern.endswith(".index.json")):
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
    return sorted({posixpath.dirname(f) for f in files if is_weight_file(f) and "/" in f})
