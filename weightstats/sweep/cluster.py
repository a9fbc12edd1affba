"""The Dask cluster a sweep runs on: a LocalCluster sized to this machine, or an existing
scheduler by address (with a connect timeout, so a wrong address fails in seconds)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from weightstats.errors import OptionError, WeightstatsError

GIB = 1024**3
MIN_WORKER_MEMORY = 2 * GIB  # a worker below this cannot hold a ResNet-50's fits and figures
CONNECT_TIMEOUT_S = 5.0
# Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 for its workers, which also turns off glibc's
# adaptive mmap threshold: every large NumPy temporary is then a fresh mmap, zeroed page by page,
# and the fits run about 2x slower. The local cluster's workers keep glibc's defaults (a real
# cluster's workers follow their own Dask configuration; see README "Sweeps").
WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


class IgnoreInterrupts(WorkerPlugin):
    """Worker plugin: the local cluster's workers ignore SIGINT. Ctrl-C in a terminal reaches
    the whole process group; the sweep's own process stops the cluster, and workers that also
    caught it would each print a traceback. Registered as a plugin so that a worker restarted
    after a crash ignores it too."""

    name = "weightstats-ignore-sigint"

    def setup(self, worker: Any) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def machine() -> tuple[int, int]:
    """(usable CPU cores, total memory in bytes) of this machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    import psutil

    return max(1, cores), int(psutil.virtual_memory().total)


def local_size(workers: int | None) -> tuple[int, int]:
    """(workers, memory limit per worker in bytes) of the default LocalCluster: one process
    per core (fits are single-threaded), fewer when memory would drop below 2 GiB each."""
    cores, memory = machine()
    if workers is None:
        workers = max(1, min(cores, memory // MIN_WORKER_MEMORY))
    return workers, max(memory // workers, 256 * 1024**2)


def check_workers(workers: Any) -> int | None:
    """``--workers``: None (size to the machine) or a whole number from 1 to 1024."""
    if workers is None:
        return None
    from weightstats.options import whole_number

    return whole_number(workers, "workers", low=1, high=1024, flags=True)


@contextlib.contextmanager
def sweep_client(client: Any = None, *, workers: int | None = None,
                 scheduler: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> Iterator[Any]:
    """A ``distributed.Client`` for the sweep.

    Parameters
    ----------
    client : distributed.Client, optional
        Used as is and never closed.
    workers : int, optional
        Workers of the LocalCluster started when neither ``client`` nor ``scheduler`` is
        given (default: one per core, memory permitting).
    scheduler : str, optional
        Address of a running scheduler (``tcp://HOST:8786``); its workers are used.
    connect_timeout : float
        Seconds to wait for the scheduler before a one-line error.
    """
    if client is not None:
        if workers is not None or scheduler is not None:
            raise OptionError("pass either a Dask client or workers/scheduler, not both")
        yield client
        return
    if workers is not None and scheduler is not None:
        raise OptionError("--workers starts a local cluster and --scheduler uses a running one; "
                          "pass one of them")
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with dask.config.set({"distributed.comm.timeouts.connect": f"{connect_timeout}s"}):
            try:
                remote = Client(scheduler, timeout=connect_timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as err:
                raise WeightstatsError(
                    f"cannot reach a Dask scheduler at {scheduler} within {connect_timeout:g} s "
                    f"({type(err).__name__}); start one with `dask scheduler` and workers with "
                    f"`dask worker {scheduler}`, or leave out --scheduler for a local "
                    "cluster") from None
        try:
            yield remote
        finally:
            remote.close()
        return
    n, memory = local_size(workers)
    with dask.config.set(WORKER_ENVIRON):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               memory_limit=memory, dashboard_address=None,
                               silence_logs=logging.CRITICAL)
    try:
        local = Client(cluster, set_as_default=False)
        local.register_plugin(IgnoreInterrupts())
        try:
            yield local
        finally:
            local.close()
    finally:
        cluster.close()
