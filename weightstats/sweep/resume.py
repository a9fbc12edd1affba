"""Done-markers: a model whose report is written leaves ``<out>/.sweep/done/<name>.json``.

The marker holds the model's run key (spec, options, tool version) and its zoo record, and is
written atomically (a temporary file beside it, then ``os.replace``) only after the report
folder is in place. A rerun skips a model whose marker has the same key and whose report folder
is still a weightstats report, and builds its zoo rows from the marker, so an interrupted and
resumed sweep gives the same tables as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE = ".sweep"
MARKER_VERSION = 1


def marker_path(out: str | os.PathLike[str], name: str) -> Path:
    """Where the done-marker of the model whose report folder is ``name`` lives."""
    return Path(out) / STATE / "done" / f"{name}.json"


def write_marker(out: str | os.PathLike[str], name: str, key: str, spec: str,
                 record: dict[str, Any]) -> Path:
    """Write the marker atomically: readers see the old one, the new one or none, never half."""
    path = marker_path(out, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keys in the record's own order: the tables' column order is read from it.
    text = json.dumps({"weightstats_sweep": MARKER_VERSION, "key": key, "name": name,
                       "spec": spec, "record": record})
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a marker is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read_done(out: str | os.PathLike[str], name: str, key: str) -> dict[str, Any] | None:
    """The zoo record of a finished model with this key, or None (absent, other options or
    version, unreadable, or its report folder gone)."""
    from weightstats.report.atomic import is_report

    path = marker_path(out, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(data, dict) or data.get("weightstats_sweep") != MARKER_VERSION
            or data.get("key") != key or not isinstance(data.get("record"), dict)):
        return None
    if not is_report(Path(out) / name):
        return None
    return data["record"]


def clear_marker(out: str | os.PathLike[str], name: str) -> None:
    """Forget a model's marker (its report is about to be replaced)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker_path(out, name))
