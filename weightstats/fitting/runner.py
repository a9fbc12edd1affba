"""Run one fit per layer, in layer order, in the calling thread or on worker threads.

The runner knows nothing about families or reports: it loads each layer, hands the array to
``fit`` and yields the results in layer order, calling ``on_layer(done, total, name)`` after
each one (the CLI draws its progress bar from it; the library stays free of terminal code).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

R = TypeVar("R")
OnLayer = Callable[[int, int, str], None]
THREAD_PREFIX = "weightstats-fit"


class Loadable(Protocol):
    """A layer: its name, and its values on demand (``WeightTensor`` is one)."""

    name: str

    def load(self) -> Any: ...


def fit_layers(layers: Sequence[Loadable], fit: Callable[[Any], R], *, jobs: int = 1,
               on_layer: OnLayer | None = None) -> Iterator[R]:
    """``fit(layer.load())`` for each layer, yielded in layer order.

    Parameters
    ----------
    layers : sequence of objects with ``name`` and ``load()``
        Loaded one at a time, in order, in the calling thread (loaders share open files).
    fit : callable
        Called with each loaded array; on ``jobs > 1`` it runs on worker threads, so it must
        be thread-safe (``fit_tensor`` is: it shares no state between calls).
    jobs : int
        Fits running at once; 1 fits in the calling thread.
    on_layer : callable, optional
        ``on_layer(done, total, name)`` after each layer's result is ready, in layer order:
        ``done`` runs from 1 to ``total = len(layers)``.

    Yields
    ------
    Whatever ``fit`` returns, one per layer.

    Raises
    ------
    BaseException
        The first exception of a fit (or of ``on_layer``), KeyboardInterrupt included, in the
        caller's thread; layers not yet started are dropped.
    """
    total = len(layers)

    def tick(done: int, name: str) -> None:
        if on_layer is not None:
            on_layer(done, total, name)

    if jobs <= 1 or total <= 1:
        return _serial(layers, fit, tick)
    return _threads(layers, fit, jobs, tick)


def _serial(layers: Sequence[Loadable], fit: Callable[[Any], R],
            tick: Callable[[int, str], None]) -> Iterator[R]:
    for done, layer in enumerate(layers, start=1):
        array = layer.load()
        result = fit(array)
        del array  # one tensor in memory at a time
        tick(done, layer.name)
        yield result


class _Job:
    """One layer's fit on a worker thread: its result or its exception."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


def _threads(layers: Sequence[Loadable], fit: Callable[[Any], R], jobs: int,
             tick: Callable[[int, str], None]) -> Iterator[R]:
    """Fit on ``jobs`` threads, results in layer order.

    NumPy and scipy.special release the GIL inside every pass, and the fitter makes no BLAS
    calls (idle OpenBLAS threads spin and would compete), so threads scale where processes
    would first spend seconds starting and pickling. Arrays are loaded here, in order (loaders
    share open files), and at most ``jobs + 1`` are in flight, which bounds memory. The threads
    are daemons: Ctrl-C returns at once instead of waiting for the fits still running.
    """
    work: queue.Queue[tuple[_Job, Any] | None] = queue.Queue()

    def worker() -> None:
        while (item := work.get()) is not None:
            job, array = item
            try:
                job.result = fit(array)
            except BaseException as err:  # handed to the caller, which re-raises it
                job.error = err
            finally:
                del array, item
                job.done.set()

    threads = [threading.Thread(target=worker, name=f"{THREAD_PREFIX}-{i}", daemon=True)
               for i in range(jobs)]
    for thread in threads:
        thread.start()
    pending: deque[tuple[Loadable, _Job]] = deque()
    finished = 0

    def finish() -> R:
        nonlocal finished
        layer, job = pending.popleft()
        job.done.wait()
        if job.error is not None:
            raise job.error
        finished += 1
        tick(finished, layer.name)
        return job.result

    try:
        for layer in layers:
            job = _Job()
            work.put((job, layer.load()))
            pending.append((layer, job))
            if len(pending) > jobs:
                yield finish()
        while pending:
            yield finish()
    finally:
        # On an error or Ctrl-C, drop the queued layers; running fits end on their own.
        while True:
            try:
                work.get_nowait()
            except queue.Empty:
                break
        for _ in threads:
            work.put(None)
