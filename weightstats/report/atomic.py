"""Safe, atomic report folders: a report appears complete or not at all, and nothing else is harmed.

Everything is written into a hidden temporary folder *beside* the target (same filesystem, so
the final rename is atomic), and only when every file is written is it renamed into place.

Rules that keep the user's files safe:

- Every report folder holds a marker file (:data:`MARKER` with :data:`MARKER_TEXT`). Only a
  folder holding it is ever replaced; an existing folder without it is used only when empty,
  anything else is refused with a one-line error and left untouched.
- ``--out`` that is a symbolic link is written through (the folder it points to is the
  target; the link stays); a dangling link, the current folder or one holding it are refused.
- Temporary folders are named ``.<name>.tmp-<pid>-<random>`` and hold the marker, locked
  (``flock``) by the writing process. A later save removes such folders only when they carry
  the marker and no live process holds the lock (a writer killed by SIGKILL releases it).
- The final swap happens under a lock on the parent folder, so concurrent saves of the same
  report serialize: each one succeeds, the last one wins.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from weightstats import interrupts
from weightstats.errors import WeightstatsError

try:  # POSIX only; elsewhere saves still work, without stale-temporary detection by lock.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MARKER = ".weightstats-report"
MARKER_TEXT = (b"This folder is a weightstats report. weightstats replaces it when asked to write "
               b"a report here; it never replaces a folder without this file.\n")
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-\d+-[A-Za-z0-9_]+$")


def is_report(folder: Path) -> bool:
    """True when ``folder`` is a real folder holding the weightstats marker file."""
    marker = folder / MARKER
    try:
        if folder.is_symlink() or marker.is_symlink() or not marker.is_file():
            return False
        with open(marker, "rb") as fh:
            return fh.read(len(MARKER_TEXT) + 1) == MARKER_TEXT
    except OSError:
        return False


def _is_empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            return next(it, None) is None
    except OSError:
        return False


def _resolve(target: Path) -> Path:
    """Absolute target; a symbolic link is followed (written through, never replaced)."""
    if target.is_symlink():
        real = Path(os.path.realpath(target))
        if not real.exists():
            raise WeightstatsError(
                f"cannot write report to {target}: it is a symbolic link to {real}, which does "
                "not exist; remove the link or choose another --out")
        return real
    return Path(os.path.abspath(target))


def _refuse_cwd(target: Path, shown: Path) -> None:
    # Physical paths: the same folder may be reached through a symbolic link.
    cwd = Path(os.path.realpath(os.getcwd()))
    real = Path(os.path.realpath(target))
    if real == cwd or real in cwd.parents:
        raise WeightstatsError(
            f"cannot write report to {shown}: it is the current folder or holds it; "
            "choose a new folder such as --out reports/NAME")


def _check_parent(target: Path, shown: Path, *, create: bool) -> Path:
    """The parent of ``target`` must be (or become) a writable folder; created only if asked."""
    parent = target.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise WeightstatsError(
            f"cannot create report directory {shown}: {existing} is a file; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WeightstatsError(
            f"cannot write report to {shown}: {existing} is not writable; choose another --out")
    if create:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise WeightstatsError(
                f"cannot create report directory {shown}: {err.strerror or err}; "
                "choose another --out") from err
    return parent


def _refuse_foreign(target: Path, shown: Path) -> None:
    """A folder that exists may be replaced only when it is a report or empty."""
    if target.exists() and not target.is_dir():
        raise WeightstatsError(
            f"cannot write report to {shown}: a file of that name exists; "
            "remove it or choose another --out"
        )
    if target.is_dir() and not is_report(target) and not _is_empty(target):
        raise WeightstatsError(
            f"cannot write report to {shown}: the folder exists and is not a weightstats report "
            f"(it has no {MARKER} file), so it is left as it is; choose a new or empty folder "
            "for --out")


def check_target(target: str | os.PathLike[str], *, create: bool = False) -> Path:
    """Check, before any work, that a report may be written to ``target``; return its real path.

    Parameters
    ----------
    target : str or os.PathLike
        The report folder to be written (created, or replaced when it is a report).

    Returns
    -------
    Path
        The absolute folder that will be written (a symbolic link resolved).

    create : bool
        Create the parent folder (when writing); a check before any work creates nothing.

    Raises
    ------
    WeightstatsError
        An existing file or non-report folder, a dangling link, the current folder, or a parent
        that cannot be created or written.
    """
    shown = Path(target)
    real = _resolve(shown)
    _refuse_cwd(real, shown)
    # Under the parent's lock: another writer's swap moves the old report aside for an instant,
    # and an unlocked look could see the folder, then no marker in it, and refuse a report.
    with _locked(real.parent):
        _refuse_foreign(real, shown)
    _check_parent(real, shown, create=create)
    return real


def check_parent_folder(folder: str | os.PathLike[str], *, may_be_report: bool = False) -> Path:
    """Check a folder that will hold several reports (``fit A B --out R``); return its path.

    It may exist and hold anything (only new or report subfolders are written), but it must
    not be a report itself (unless ``may_be_report``): replacing that report later would take
    the others with it.
    """
    shown = Path(folder)
    real = _resolve(shown)
    if real.exists() and not real.is_dir():
        raise WeightstatsError(
            f"cannot write reports into {shown}: a file of that name exists; "
            "remove it or choose another --out")
    if not may_be_report and is_report(real):
        raise WeightstatsError(
            f"cannot write several reports into {shown}: it is itself a weightstats report; "
            "with several specs --out names the parent folder, choose another")
    _check_parent(real / "report", shown / "report", create=False)
    return real


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[bool]:
    """Exclusive ``flock`` on a folder: serializes the swaps and cleanups of all writers.

    Yields whether the lock is held (False on a filesystem without locks)."""
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(folder, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a filesystem without locks: fall back to unlocked renames
            if fd is not None:
                os.close(fd)
            fd = None
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


def _owned_by_live_writer(folder: Path) -> bool:
    """True while some process holds the lock on the temporary folder's marker."""
    if fcntl is None:  # pragma: no cover - no way to tell: assume it is live
        return True
    try:
        fd = os.open(folder / MARKER, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's lock
    return False


def clean_stale(parent: Path) -> list[str]:
    """Remove the temporaries of writers that died (SIGKILL, power loss) in ``parent``.

    Only folders named like this tool's temporaries, carrying its marker and not locked by a
    live writer are touched. A left-over ``.<name>.old-*`` (an old report moved aside by a
    writer killed mid-swap) is put back when ``<name>`` is missing, removed otherwise. Call
    with the parent locked. Returns the names handled.
    """
    handled = []
    try:
        entries = sorted(os.listdir(parent))
    except OSError:
        return handled
    for entry in entries:
        m = _TEMP.match(entry)
        path = parent / entry
        if m is None or not is_report(path) or _owned_by_live_writer(path):
            continue
        final = parent / m["name"]
        if m["kind"] == "old" and not os.path.lexists(final):
            with contextlib.suppress(OSError):
                os.rename(path, final)
                handled.append(entry)
                continue
        shutil.rmtree(path, ignore_errors=True)
        handled.append(entry)
    return handled


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` when the block succeeds.

    Parameters
    ----------
    target : str or os.PathLike
        Final directory path: new, empty, a weightstats report, or a link to one of those.
        Its parent is created if needed.

    Yields
    ------
    Path
        A temporary directory beside ``target`` holding only the marker file; write the
        report's files into it.

    Raises
    ------
    WeightstatsError
        When the target cannot be written (see :func:`check_target`), also when it turned
        into a non-report folder while the report was being written.
    KeyboardInterrupt
        Ctrl-C or SIGTERM during the block, even one whose first raise Python dropped.

    Notes
    -----
    On any exception (including ``KeyboardInterrupt``) the temporary directory is removed and
    the exception propagates; the previous ``target`` (if any) is left as it was.
    """
    shown = Path(target)
    real = check_target(shown, create=True)
    parent = real.parent
    with interrupts.watching():
        # Under the parent's lock, so that no other writer's cleanup sees this temporary
        # folder between its creation and its lock.
        with _locked(parent) as locked:
            if locked:  # unlocked, a cleanup could race another writer's swap
                clean_stale(parent)
            tmp, lock_fd = _new_temporary(real, shown)
        try:
            yield tmp
            interrupts.check()
            # mkdtemp creates 0700; a report is an ordinary directory, so use the umask's mode.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            with _locked(parent), interrupts.deferred():
                _swap_into_place(tmp, real, shown)
            interrupts.check()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            if lock_fd is not None:
                os.close(lock_fd)


def _new_temporary(real: Path, shown: Path) -> tuple[Path, int | None]:
    """An empty temporary folder beside ``real`` holding the marker, locked by this process."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.tmp-{os.getpid()}-", dir=real.parent))
    except OSError as err:
        raise WeightstatsError(
            f"cannot write report to {shown}: {err.strerror or err}; choose another --out"
        ) from err
    lock_fd = None
    try:
        (tmp / MARKER).write_bytes(MARKER_TEXT)
        if fcntl is not None:
            lock_fd = os.open(tmp / MARKER, os.O_RDONLY)
            with contextlib.suppress(OSError):
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp, lock_fd


def _swap_into_place(tmp: Path, target: Path, shown: Path) -> None:
    """Rename ``tmp`` to ``target`` (parent locked), replacing only a report or an empty folder."""
    _refuse_foreign(target, shown)  # it may have changed while the report was being written
    if target.is_dir() and is_report(target):
        # os.replace cannot replace a non-empty directory, so move the old one aside first and
        # put it back if the second rename fails.
        backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-",
                                       dir=target.parent))
        os.rmdir(backup)
        interrupts.check()  # last point where an interrupt leaves the old report untouched
        os.rename(target, backup)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(backup, target)
            raise
        shutil.rmtree(backup, ignore_errors=True)
        return
    interrupts.check()
    try:
        os.rename(tmp, target)  # absent, or an empty folder, which rename replaces
    except OSError as err:
        raise WeightstatsError(
            f"cannot write report to {shown}: {err.strerror or err} (the folder changed while "
            "the report was written); choose a new or empty folder for --out") from err
