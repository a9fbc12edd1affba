"""The sweep driver: plan the models, skip the finished ones, run the rest on Dask, and write
the zoo tables from every model's record (see :mod:`.tables`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightstats.sweep.plan import Item, plan_items
from weightstats.sweep.tasks import Settings, finish_task, model_task, tensor_task

OnProgress = Callable[[int, int, int, int], None]


@dataclass
class Outcome:
    """What a sweep did.

    Attributes
    ----------
    records : dict
        Zoo record of each finished model (fitted now or earlier), by report name.
    failures : list of dict
        ``{"model", "spec", "error"}`` of each model that failed.
    skipped : list of str
        Models already done with the same options and version (not fitted again).
    items : list of Item
        The plan.
    """

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)


def plan(specs: Sequence[str], settings: Settings, version: str,
         outcome: Outcome) -> list[Item]:
    """Items for ``specs`` (names from resolving each spec here: cheap, nothing is loaded); a
    spec that does not resolve is a failure of that model only."""
    from weightstats.errors import WeightstatsError
    from weightstats.sources import resolve
    from weightstats.sources.base import safe_name
    from weightstats.sweep.plan import file_stamp
    from weightstats.sweep.tasks import failed

    names, stamps, errors = [], [], {}
    for spec in specs:
        try:
            source = resolve(spec, allow_pickle=settings.allow_pickle)
            names.append(source.name)
            stamps.append(file_stamp(source))
        except WeightstatsError as err:
            names.append(safe_name(spec))
            stamps.append("")
            errors[spec] = failed(err)["error"]
    key_options = {**settings.opt, "formats": sorted(settings.formats), "plots": settings.plots}
    key_options.pop("jobs", None)
    items = plan_items(specs, names, key_options, version, stamps)
    for item in items:
        if item.spec in errors:
            outcome.failures.append({"model": item.name, "spec": _shown(item.spec),
                                     "error": errors[item.spec]})
    outcome.items = items
    return [it for it in items if it.spec not in errors]


def _shown(spec: str) -> str:
    from weightstats.report.model import safe_spec

    return safe_spec(spec)


def run(client: Any, specs: Sequence[str], settings: Settings, *,
        on_progress: OnProgress | None = None) -> Outcome:
    """Fit every model of ``specs`` on ``client``'s workers (finished ones skipped)."""
    from distributed import as_completed

    from weightstats.sweep.resume import read_done

    settings = Settings(**{**settings.__dict__, "run": uuid.uuid4().hex})
    outcome = Outcome()
    todo = []
    for item in plan(specs, settings, _version(), outcome):
        record = read_done(settings.out, item.name, item.key) if settings.out else None
        if record is not None:
            outcome.records[item.name] = record
            outcome.skipped.append(item.name)
        else:
            todo.append(item)
    counts = {"models": len(outcome.records), "tensors": 0, "known": 0}
    n_models = len(outcome.items) - len(outcome.failures)

    def tick() -> None:
        if on_progress is not None:
            on_progress(counts["models"], n_models, counts["tensors"], counts["known"])

    tick()
    run_id = settings.run[:8]
    role: dict[Any, tuple[str, Item]] = {}
    futures = []
    for item in todo:
        fut = client.submit(model_task, item, settings, pure=False, retries=0,
                            key=f"weightstats-model-{item.name}-{run_id}")
        role[fut] = ("model", item)
        futures.append(fut)
    queue = as_completed(futures, loop=client.loop)
    try:
        for fut in queue:
            kind, item = role.pop(fut)
            if kind == "tensor":  # its fit goes to the finishing worker, not here
                counts["tensors"] += 1
                fut.release()
                tick()
                continue
            try:
                result = fut.result()
            except Exception as err:  # the task itself never raises: a worker died repeatedly
                from weightstats.sweep.tasks import failed

                result = failed(err)
            fut.release()
            _handle(client, queue, role, item, result, settings, run_id, outcome, counts)
            tick()
    except BaseException:
        client.cancel(list(role))
        raise
    return outcome


def _version() -> str:
    """The tool's version (read from the loaded package: importing it here would be a
    circle)."""
    import sys

    return str(sys.modules["weightstats"].__version__)


def _handle(client: Any, queue: Any, role: dict, item: Item, result: dict[str, Any],
            settings: Settings, run_id: str, outcome: Outcome, counts: dict[str, int]) -> None:
    """Record a model task's result: done, failed, or split into one task per tensor."""
    if result["kind"] == "done":
        outcome.records[item.name] = result["record"]
        counts["models"] += 1
        if not result.get("split"):
            counts["tensors"] += result["n_tensors"]
            counts["known"] += result["n_tensors"]
    elif result["kind"] == "split":
        tensors = result["tensors"]
        counts["known"] += len(tensors)
        fits = []
        for index, name, _ in tensors:
            fut = client.submit(tensor_task, item, settings, index, name, pure=False,
                                key=f"weightstats-tensor-{item.name}-{index}-{run_id}")
            fits.append(fut)
            role[fut] = ("tensor", item)
            queue.add(fut)
        done = client.submit(finish_task, item, settings, *fits, pure=False,
                             key=f"weightstats-finish-{item.name}-{run_id}")
        role[done] = ("model", item)
        queue.add(done)
    else:
        outcome.failures.append({"model": item.name, "spec": _shown(item.spec),
                                 "error": result["error"]})
        counts["models"] += 1


def absolute_out(out: str | os.PathLike[str] | None) -> str | None:
    """``--out`` as an absolute path (workers may run in another folder)."""
    return None if out is None else os.path.abspath(os.path.expanduser(os.fspath(out)))


def zoo_folder(out: str) -> Path:
    from weightstats.sweep.plan import ZOO

    return Path(out) / ZOO
