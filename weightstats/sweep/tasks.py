"""What runs on the Dask workers: one task per model, or one per tensor for a big model.

Workers resolve the spec themselves and load their own tensors (no weights pass through the
scheduler; only fits and small records do). A task never raises: a failure comes back as
``{"kind": "failed", "error": one line}`` (an exception may not pickle, and a failed model must
not stop the sweep). Reports and done-markers are written by the worker that finishes a model,
so ``--out`` must be a folder every worker sees (always true for a LocalCluster).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightstats.sweep.plan import Item


@dataclass(frozen=True)
class Settings:
    """One sweep's settings, the same for every task.

    Attributes
    ----------
    opt : dict
        Fitting options as checked by :func:`weightstats.options.check_model_options`.
    out : str or None
        Absolute output folder; None writes nothing (the library's in-memory sweep).
    formats : tuple of str
        Report files per model (as ``weightstats fit --format``).
    plots : bool
        Draw the figures of each model's report.
    split_above : int
        A model with more selected weights than this (and more than one tensor) is fitted
        one task per tensor; 0 never splits.
    allow_pickle : bool
        As ``--allow-pickle``.
    run : str
        A token unique to the sweep (workers cache a resolved model per run only).
    """

    opt: dict[str, Any]
    out: str | None
    formats: tuple[str, ...] = ("csv", "md", "json", "html", "png")
    plots: bool = True
    split_above: int = 50_000_000
    allow_pickle: bool = False
    run: str = field(default="", compare=False)


def failed(err: BaseException) -> dict[str, Any]:
    """A failure as a task result: the exception as one line."""
    from weightstats.errors import WeightstatsError
    from weightstats.report.model import scrub_paths
    from weightstats.text import one_line

    text = str(err) if isinstance(err, WeightstatsError) else f"{type(err).__name__}: {err}"
    return {"kind": "failed", "error": scrub_paths(one_line(text, 300))}


class _Listed:
    """A resolved source whose tensors were listed once (a built-in or torchvision model is
    built again on every ``tensors()`` call); other attributes are the source's."""

    def __init__(self, source: Any, tensors: list) -> None:
        self._source, self._tensors = source, tensors

    def tensors(self) -> list:
        return self._tensors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


@functools.lru_cache(maxsize=1)
def _resolved(target: str, allow_pickle: bool, selection: str,
              run: str) -> tuple[Any, list, tuple[int, str]]:
    """A model resolved once per worker and run (one at a time: a big model's module stays in
    memory while cached): the source, its selected tensors and (parameter count, dtype)."""
    import json

    from weightstats.api import selected_layers
    from weightstats.sources import resolve
    from weightstats.sweep.tables import source_facts

    source = resolve(target, allow_pickle=allow_pickle)
    listed = _Listed(source, list(source.tensors()))
    return source, selected_layers(listed, json.loads(selection)), source_facts(listed)


def _source(item: Item, settings: Settings) -> tuple[Any, list, tuple[int, str]]:
    import json

    selection = json.dumps({k: settings.opt[k] for k in ("kinds", "layers", "min_size")},
                           sort_keys=True)
    return _resolved(item.target, settings.allow_pickle, selection, settings.run)


def model_task(item: Item, settings: Settings) -> dict[str, Any]:
    """Fit a whole model, or say how to split it: ``{"kind": "done" | "split" | "failed"}``."""
    try:
        from weightstats.api import fit_selected_layer

        source, selected, facts = _source(item, settings)
        total = sum(int(t.numel) for t in selected)
        if settings.split_above and total > settings.split_above and len(selected) > 1:
            return {"kind": "split", "tensors": [(i, t.name, int(t.numel))
                                                 for i, t in enumerate(selected)]}
        _resolved.cache_clear()  # fitted here, whole: nothing else needs it cached
        fits = [fit_selected_layer(t, settings.opt) for t in selected]
        return _finish(item, settings, source, selected, fits, facts)
    except Exception as err:
        return failed(err)


def tensor_task(item: Item, settings: Settings, index: int, name: str) -> Any:
    """One selected tensor of a split model, fitted as ``fit_model`` fits it."""
    try:
        from weightstats.api import fit_selected_layer
        from weightstats.errors import LoadError

        _, selected, _ = _source(item, settings)
        if index >= len(selected) or selected[index].name != name:
            raise LoadError(f"{item.spec} changed during the sweep (tensor {name} moved); "
                            "run the sweep again")
        return fit_selected_layer(selected[index], settings.opt)
    except Exception as err:
        return failed(err)


def finish_task(item: Item, settings: Settings, *fits: Any) -> dict[str, Any]:
    """Assemble a split model's report from its tensors' fits (in layer order) and write it."""
    try:
        for fit in fits:
            if isinstance(fit, dict) and fit.get("kind") == "failed":
                return fit
        source, selected, facts = _source(item, settings)
        return {**_finish(item, settings, source, selected, list(fits), facts), "split": True}
    except Exception as err:
        return failed(err)


def _finish(item: Item, settings: Settings, source: Any, selected: list, fits: list,
            facts: tuple[int, str]) -> dict[str, Any]:
    """The report (as ``fit_model`` builds it), its folder and marker, and the zoo record."""
    from weightstats.api import report_from_fits
    from weightstats.sweep.resume import clear_marker, write_marker
    from weightstats.sweep.tables import model_record, roundtrip

    report = report_from_fits(source, selected, fits, settings.opt)
    report.model = item.name
    n_params, dtype = facts
    record = roundtrip(model_record(report, item.spec, n_params, dtype))
    if settings.out is not None:
        folder = Path(settings.out) / item.name
        clear_marker(settings.out, item.name)  # the old marker must not outlive its report
        report.save(folder, list(settings.formats), plots=settings.plots)
        write_marker(settings.out, item.name, item.key, item.spec, record)
    return {"kind": "done", "record": record, "n_tensors": len(selected), "pid": os.getpid()}
