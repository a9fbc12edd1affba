"""What a sweep fits: specs expanded into models, each with a report folder name and a run key.

Wildcards go through the same registry as ``weightstats list`` (``resnet*``, ``timm:resnet*``)
or, for paths (``models/*.safetensors``), through the filesystem; ``--from FILE`` holds one spec
per line. Every model gets a unique, filesystem-safe name (the report folder) in plan order.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightstats.errors import SpecError

WILDCARDS = "*?["
ZOO = "zoo"  # the sweep's own tables; no model report may take this name
MAX_SPEC_FILE = 10_000_000  # bytes: a spec list, not a weights file read by mistake


@dataclass(frozen=True)
class Item:
    """One model of a sweep.

    Attributes
    ----------
    index : int
        Position in the plan.
    spec : str
        The spec as given or expanded (recorded in the tables without absolute folders).
    target : str
        What the workers resolve: the spec, with a local path made absolute (a worker's
        current folder may differ from the caller's).
    name : str
        The report folder's name under ``--out`` (unique in the plan).
    key : str
        Hash of the spec, the checked options and the tool's version: a finished model with
        the same key is not fitted again.
    """

    index: int
    spec: str
    target: str
    name: str
    key: str


def read_spec_file(path: str | os.PathLike[str]) -> list[str]:
    """Specs from a file, one per line; blank lines and ``#`` comments are skipped."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_SPEC_FILE:
            raise SpecError(f"--from {p}: larger than {MAX_SPEC_FILE:,} bytes; pass a text file "
                            "with one spec per line")
        text = p.read_text(encoding="utf-8")
    except SpecError:
        raise
    except UnicodeDecodeError:
        raise SpecError(f"--from {p}: not a text file; pass a file with one spec per line") from None
    except OSError as err:
        raise SpecError(f"--from {p}: {err.strerror or err}; pass a file with one spec per "
                        "line") from None
    specs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):  # a '#' inside a path is part of the path
            specs.append(line)
    return specs


def _is_pathlike(spec: str) -> bool:
    from weightstats.sources.formats import file_extensions

    return ("/" in spec or os.sep in spec or spec.startswith((".", "~"))
            or spec.lower().endswith(file_extensions()))


def expand(spec: str) -> list[str]:
    """One spec as the list of specs it stands for (a wildcard matched, else itself)."""
    if not any(ch in spec for ch in WILDCARDS):
        return [spec]
    if spec.lower().startswith(("timm:", "hf:")) or not _is_pathlike(spec):
        if spec.lower().startswith("hf:"):
            raise SpecError(f"{spec!r}: wildcards work for model names, timm:NAME and local "
                            "paths, not hf: repos; list the repos")
        found = _names(spec)
    else:
        found = sorted(glob.glob(os.path.expanduser(spec)))
        if spec.startswith("~"):  # keep the user's spelling in the tables
            home = os.path.expanduser("~")
            found = ["~" + f[len(home):] if f.startswith(home) else f for f in found]
    if not found:
        where = "files" if _is_pathlike(spec) else "model names (see `weightstats list`)"
        raise SpecError(f"no {where} match {spec!r}; quote the pattern so that the shell "
                        "does not expand it")
    return found


def _names(pattern: str) -> list[str]:
    """Registry names matching ``pattern``; a weights tag after the name pattern
    (``digits-*:none``, ``timm:resnet*:none``) is kept on every match."""
    from weightstats.sources import list_models

    prefix = "timm:" if pattern.lower().startswith("timm:") else ""
    name, sep, tag = pattern[len(prefix):].partition(":")
    if not sep:
        return list_models(pattern)
    return [f"{n}:{tag}" for n in list_models(prefix + name)]


def expand_all(specs: Iterable[str]) -> list[str]:
    """Every spec expanded, duplicates dropped (first occurrence kept)."""
    out: dict[str, None] = {}
    for spec in specs:
        spec = str(spec).strip()
        if not spec:
            raise SpecError("empty model spec: pass a model name, a path or a wildcard")
        for s in expand(spec):
            out.setdefault(s, None)
    if not out:
        raise SpecError("no models to sweep: pass SPECs or --from FILE")
    return list(out)


def run_key(spec: str, options: dict[str, Any], version: str) -> str:
    """The identity of one model's result: spec (without local folders), options, version."""
    from weightstats.report.model import safe_spec

    text = json.dumps({"spec": safe_spec(spec), "options": options, "version": version},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def target_of(spec: str) -> str:
    """What a worker resolves: a local path made absolute, anything else as is."""
    path = os.path.expanduser(spec)
    if _is_pathlike(spec) or os.path.exists(path):
        if os.path.exists(path):
            return os.path.abspath(path)
    return spec


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3`` ... when taken (case-insensitively: folders on some
    file systems ignore case); the result is added to ``taken``."""
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{name}-{n}"
    taken.add(candidate.lower())
    return candidate


def plan_items(specs: Sequence[str], names: Sequence[str], options: dict[str, Any],
               version: str, stamps: Sequence[str] | None = None) -> list[Item]:
    """Items in spec order, names made unique (``zoo`` is reserved for the tables).

    ``stamps``: per spec, what identifies its local weights file ("size:mtime", "" for a
    name or hub id), so that a file replaced since the last run is fitted again."""
    taken = {ZOO}
    stamps = list(stamps) if stamps is not None else [""] * len(specs)
    return [Item(index=i, spec=spec, target=target_of(spec), name=unique_name(name, taken),
                 key=run_key(spec, {**options, "file": stamp} if stamp else options, version))
            for i, (spec, name, stamp) in enumerate(zip(specs, names, stamps, strict=True))]


def file_stamp(source: Any) -> str:
    """``"size:mtime_ns"`` of a local source's weights file (its index for shards), else ''."""
    path = getattr(source, "path", None)
    if getattr(source, "kind_of_source", "") != "file" or path is None:
        return ""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}"
