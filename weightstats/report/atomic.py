"""Atomic directory writes: a report directory appears complete or not at all.

Everything is written into a hidden temporary directory *beside* the target (same filesystem,
so the final rename is atomic), and only when every file is written is it renamed into place.
An existing report directory is replaced only after the new one is complete; an interrupted or
failed run removes its temporary directory and leaves the old report untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from weightstats.errors import WeightstatsError


def _check_target(target: Path) -> Path:
    """Create the parent of ``target`` and check it can hold a new directory.

    Parameters
    ----------
    target : Path
        The report directory to be written.

    Returns
    -------
    Path
        The (existing) parent directory.

    Raises
    ------
    WeightstatsError
        When ``target`` is an existing file, or its parent cannot be created or written.
    """
    if target.exists() and not target.is_dir():
        raise WeightstatsError(
            f"cannot write report to {target}: a file of that name exists; "
            "remove it or choose another --out"
        )
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:
        raise WeightstatsError(
            f"cannot create report directory {target}: {parent} is a file; choose another --out"
        ) from err
    except OSError as err:
        raise WeightstatsError(
            f"cannot create report directory {target}: {err.strerror or err}; choose another --out"
        ) from err
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WeightstatsError(
            f"cannot write report to {target}: {parent} is not writable; choose another --out"
        )
    return parent


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` when the block succeeds.

    Parameters
    ----------
    target : str or os.PathLike
        Final directory path. Its parent is created if needed.

    Yields
    ------
    Path
        An empty temporary directory beside ``target``; write the report's files into it.

    Raises
    ------
    WeightstatsError
        When the target cannot be written (an existing file, unwritable parent).

    Notes
    -----
    On any exception (including ``KeyboardInterrupt``) the temporary directory is removed and
    the exception propagates; the previous ``target`` (if any) is left as it was.
    """
    target = Path(target)
    parent = _check_target(target)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    except OSError as err:
        raise WeightstatsError(
            f"cannot write report to {target}: {err.strerror or err}; choose another --out"
        ) from err
    try:
        yield tmp
        # mkdtemp creates 0700; a report is an ordinary directory, so use the umask's mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, replacing an existing directory only at the last moment."""
    if not target.exists():
        os.rename(tmp, target)
        return
    # os.replace cannot replace a non-empty directory, so move the old one aside first and
    # put it back if the second rename fails.
    backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(backup)
    os.rename(target, backup)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)
