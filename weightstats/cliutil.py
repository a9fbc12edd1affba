"""Helpers of the command line that need neither torch nor pandas: short flags, the spinner
shown during silent waits, compare's default folder, and ``weightstats list``'s lines.

Imported by :mod:`weightstats.cli` at start-up, so ``weightstats --help`` and ``--version``
stay fast: only click here; rich is imported when a spinner is actually drawn.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

# Long option -> the short flag users expect; added to every command that has the long one.
SHORT_FLAGS = {"--out": "-o", "--jobs": "-j", "--families": "-f", "--kinds": "-k",
               "--quiet": "-q"}
# Longest default folder name: file systems allow 255 bytes; leave room for the atomic
# writer's temporary suffix.
MAX_FOLDER_NAME = 120


def add_short_flags(command: click.Command) -> None:
    """Give each option of ``command`` listed in :data:`SHORT_FLAGS` its short flag too."""
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        for long, short in SHORT_FLAGS.items():
            if long in param.opts and short not in param.opts:
                param.opts.insert(0, short)


def set_help(command: click.Command, name: str, text: str) -> None:
    """Replace the help text of ``command``'s option ``name`` (its Python name)."""
    for param in command.params:
        if param.name == name and isinstance(param, click.Option):
            param.help = text
            return
    raise KeyError(name)


@contextlib.contextmanager
def status(message: str, enabled: bool | None = None) -> Iterator[Any]:
    """A spinner with ``message`` on stderr while the block runs (only on a terminal).

    Yields a function that replaces the message (or does nothing when no spinner is drawn).
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda text: None
        return
    from rich.console import Console
    from rich.text import Text

    from weightstats.text import terminal

    console = Console(stderr=True)
    with console.status(Text(terminal(message))) as spinner:
        yield lambda text: spinner.update(Text(terminal(text)))


def compare_folder_name(models: Sequence[str]) -> str:
    """Default folder of ``weightstats compare``: ``compare-A-vs-B``; a name longer than
    :data:`MAX_FOLDER_NAME` keeps its start and ends with a hash of the whole name (distinct
    model lists never share a folder, and every file system accepts it)."""
    name = "compare-" + "-vs-".join(m.replace(":", "-").replace("/", "-") for m in models)
    if len(name.encode()) <= MAX_FOLDER_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    head = name.encode()[: MAX_FOLDER_NAME - len(digest) - 1].decode(errors="ignore")
    return f"{head.rstrip('-')}-{digest}"


def default_compare_out(models: Sequence[str]) -> Path:
    """``reports/<compare_folder_name>``."""
    return Path("reports") / compare_folder_name(models)


def list_lines(entries: Sequence[tuple[str, str]]) -> list[str]:
    """``weightstats list``'s output: each name, then its weight tags aligned after it."""
    width = max((len(name) for name, _ in entries), default=0)
    return [f"{name.ljust(width)}  {tags}".rstrip() for name, tags in entries]


class GuardedStdout:
    """``sys.stdout`` for rich, such that a reader that has gone (``weightstats fit m | head``)
    costs no report: on a broken pipe the process's stdout is pointed at ``os.devnull`` and the
    command carries on. Delegates to whatever ``sys.stdout`` is at each call."""

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except BrokenPipeError:
            _stdout_to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _stdout_to_devnull()

    def isatty(self) -> bool:
        return sys.stdout.isatty()

    def fileno(self) -> int:
        return sys.stdout.fileno()

    @property
    def encoding(self) -> str:
        return getattr(sys.stdout, "encoding", None) or "utf-8"


def _stdout_to_devnull() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's buffer)
        pass
