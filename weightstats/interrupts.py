"""Interrupts that are never lost: Ctrl-C and SIGTERM always stop a run.

Python runs a signal handler at the next bytecode boundary, which may be inside a weakref
callback or a ``__del__`` (matplotlib creates many while drawing). An exception raised there is
printed as "Exception ignored" and dropped, so a plain ``KeyboardInterrupt`` can vanish and the
run finishes as if nothing happened. Here the handler first records the signal in a flag and
then raises; code that must not outlive an interrupt (the report writer between files and
before its final rename, the CLI before it exits 0) calls :func:`check`, which raises again
from a place where the exception cannot be dropped.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_lock = threading.Lock()
_state: dict[str, Any] = {"signal": None, "depth": 0, "defer": 0}


def interrupted() -> int | None:
    """The signal number received while watching, or None."""
    return _state["signal"]


def check() -> None:
    """Raise ``KeyboardInterrupt`` when a watched signal arrived (even if its raise was lost)."""
    if _state["signal"] is not None:
        raise KeyboardInterrupt


def _wrap(previous: Callable[[int, Any], Any]) -> Callable[[int, Any], Any]:
    def handler(signum: int, frame: Any) -> Any:
        _state["signal"] = signum
        if _state["defer"]:
            # Inside a few-syscall critical section (the final rename): raised by check() after.
            return None
        return previous(signum, frame)

    return handler


@contextlib.contextmanager
def watching() -> Iterator[None]:
    """Record SIGINT / SIGTERM in a flag while the block runs (main thread only).

    The outermost block clears the flag on entry and on exit and puts the previous handlers
    back on exit.
    A handler already installed as a Python function (Python's own Ctrl-C handler, the CLI's
    SIGTERM handler) is called after the flag is set; a default or ignored disposition is
    left alone, so a library caller's SIGTERM still ends the process as before.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _lock:
        outermost = _state["depth"] == 0
        _state["depth"] += 1
    saved: dict[int, Any] = {}
    hook = sys.unraisablehook
    try:
        if outermost:
            _state["signal"] = None
            for sig in SIGNALS:
                previous = signal.getsignal(sig)
                if callable(previous):
                    saved[sig] = previous
                    signal.signal(sig, _wrap(previous))
            sys.unraisablehook = _quiet_dropped_interrupt(hook)
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)
        if outermost:
            sys.unraisablehook = hook
        with _lock:
            _state["depth"] -= 1
            if outermost:  # the flag belongs to this run only
                _state["signal"] = None


def _quiet_dropped_interrupt(previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """No "Exception ignored" traceback for an interrupt the flag already carries."""

    def hook(unraisable: Any) -> Any:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _state["signal"] is not None:
            return None
        return previous(unraisable)

    return hook


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold back the raise of a watched signal during a short critical section.

    The flag is still set; call :func:`check` at the last safe point inside the block and
    again after it.
    """
    _state["defer"] += 1
    try:
        yield
    finally:
        _state["defer"] -= 1

