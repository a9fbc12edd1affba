"""Sweeps: many models, one table, on Dask distributed (a LocalCluster by default).

``weightstats.sweep(specs, client=None, out=None, **fit_options)`` fits every model the specs
name (wildcards expanded through the registry or the filesystem) with the same options, one
task per model, or one per tensor for a model above ``split_above`` weights; workers load their
own tensors. With ``out``, each model's usual report folder is written there, plus ``zoo/``
(layers.parquet/.csv, models.csv, failures.csv, summary.md, report.html); a rerun skips the
models already done with the same options and version.

Modules: :mod:`.plan` (specs to models), :mod:`.tasks` (what workers run), :mod:`.run` (the
driver), :mod:`.cluster` (LocalCluster or scheduler address), :mod:`.resume` (done-markers),
:mod:`.tables` and :mod:`.zoo` (the tables), :mod:`.html` (the page and its figures).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from weightstats.sweep.zoo import EXIT_PARTIAL

DEFAULT_SPLIT_ABOVE = 50_000_000

__all__ = ["sweep", "EXIT_PARTIAL", "DEFAULT_SPLIT_ABOVE", "check_sweep_options"]


def check_sweep_options(specs: Any, *, from_file: Any = None, fit_options: dict[str, Any],
                        formats: Any, plots: bool, split_above: Any,
                        out: Any) -> tuple[list[str], dict[str, Any], tuple[str, ...], int]:
    """Everything checked before any cluster starts: (specs expanded, checked fit options,
    formats, split_above). One-line OptionError / SpecError otherwise."""
    from weightstats.errors import OptionError
    from weightstats.layers import DEFAULT_KINDS
    from weightstats.options import check_model_options, whole_number
    from weightstats.report.tables import check_outputs
    from weightstats.sweep.plan import expand_all, read_spec_file

    defaults = {"families": None, "kinds": DEFAULT_KINDS, "layers": None, "min_size": 1,
                "per_channel": False, "ks_sample": 5000, "ks_replicates": 10_000, "seed": 0,
                "jobs": 1}  # fit_model's
    unknown = sorted(set(fit_options) - set(defaults))
    if unknown:
        raise OptionError(f"unknown fit option {unknown[0]!r}; sweep takes "
                          f"{', '.join(defaults)}")
    opt = check_model_options(**{**defaults, **fit_options})
    if opt["jobs"] != 1:
        raise OptionError("a sweep fits one tensor per worker process: use --workers N (or a "
                          "Dask cluster) instead of --jobs")
    fmts = tuple(check_outputs(list(formats), plots=plots))
    split = whole_number(split_above, "split_above", low=0, flags=False)
    if isinstance(specs, str | os.PathLike):
        specs = [specs]
    given = [os.fspath(s) if isinstance(s, os.PathLike) else s for s in (specs or [])]
    bad = [s for s in given if not isinstance(s, str)]
    if bad:
        raise OptionError(f"a sweep takes specs as text (names, paths, wildcards), got a "
                          f"{type(bad[0]).__name__}; use fit_model for a module in memory")
    if from_file is not None:
        given += read_spec_file(from_file)
    if out is not None:
        from pathlib import Path

        from weightstats.report.atomic import check_parent_folder, check_target
        from weightstats.sweep.plan import ZOO

        check_parent_folder(out)
        check_target(Path(out) / ZOO)  # a foreign zoo/ folder is refused now, not at the end
    return expand_all(given), opt, fmts, split


def sweep(
    specs: str | Sequence[str],
    *,
    client: Any = None,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    from_file: str | os.PathLike[str] | None = None,
    formats: Sequence[str] = ("csv", "md", "json", "html", "png"),
    plots: bool = True,
    split_above: int = DEFAULT_SPLIT_ABOVE,
    allow_pickle: bool = False,
    on_progress: Any = None,
    **fit_options: Any,
) -> Any:
    """Fit many models with the same options on Dask and return one table.

    Parameters
    ----------
    specs : str or sequence of str
        Specs as for :func:`weightstats.fit_model`, or wildcards: ``"resnet*"`` and
        ``"timm:resnet*"`` through :func:`weightstats.list_models`, ``"models/*.safetensors"``
        through the filesystem.
    client : distributed.Client, optional
        Used as is, never closed. Default: a LocalCluster (one single-threaded worker process
        per core, memory limit = machine memory / workers), closed at the end.
    out : str or os.PathLike, optional
        Folder for each model's report folder and ``zoo/``; must be reachable by every worker
        (a shared filesystem on a real cluster). None: nothing is written, nothing resumed.
    workers, scheduler : optional
        The LocalCluster's size, or the address of a running scheduler (``tcp://HOST:8786``;
        one that does not answer within 5 s is a one-line error).
    from_file : path, optional
        More specs, one per line (``#`` comments).
    formats, plots
        Each model's report files, as ``weightstats fit --format/--no-plots``; ``plots`` also
        draws zoo/report.html's figures.
    split_above : int
        A model with more selected weights than this is fitted one task per tensor (0: never).
    allow_pickle : bool
        As in :func:`weightstats.fit_model`.
    on_progress : callable, optional
        ``on_progress(models_done, models_total, tensors_done, tensors_known)`` in the
        calling thread as tasks finish.
    **fit_options
        ``families``, ``kinds``, ``layers``, ``min_size``, ``per_channel``, ``ks_sample``,
        ``ks_replicates``, ``seed``: as in :func:`weightstats.fit_model` (``jobs`` must be 1:
        the workers are the parallelism).

    Returns
    -------
    pandas.DataFrame
        The zoo's layers table: one row per model x layer x family (zoo/layers.csv), with
        ``attrs["models"]`` (zoo/models.csv's rows as dicts: ``pandas.DataFrame(...)`` them),
        ``attrs["failures"]`` (dicts of model, spec, one-line error) and ``attrs["skipped"]``
        (models already done in ``out``, not fitted again).

    Raises
    ------
    OptionError, SpecError
        Invalid options, a wildcard that matches nothing, or an unusable ``out`` (before any
        cluster starts). A spec that fails later costs that model only (``failures``).
    WeightstatsError
        The scheduler cannot be reached.
    """
    from weightstats.sweep.cluster import check_workers, sweep_client
    from weightstats.sweep.run import absolute_out, run
    from weightstats.sweep.tasks import Settings
    from weightstats.sweep.zoo import write_zoo, zoo_frames

    names, opt, fmts, split = check_sweep_options(
        specs, from_file=from_file, fit_options=fit_options, formats=formats, plots=plots,
        split_above=split_above, out=out)
    n_workers = check_workers(workers)
    settings = Settings(opt=opt, out=absolute_out(out), formats=fmts, plots=plots,
                        split_above=split, allow_pickle=bool(allow_pickle))
    with sweep_client(client, workers=n_workers, scheduler=scheduler) as dask_client:
        outcome = run(dask_client, names, settings, on_progress=on_progress)
    records = list(outcome.records.values())
    options = {k: v for k, v in opt.items() if k != "jobs"}
    if settings.out is not None:
        write_zoo(settings.out, records, outcome.failures, options,
                  skipped=len(outcome.skipped), plots=plots)
    frames = zoo_frames(records, outcome.failures)
    table = frames["layers"]
    # Plain records, not frames: pandas compares attrs when merging, and frames cannot be.
    table.attrs = {"models": frames["models"].to_dict("records"),
                   "failures": frames["failures"].to_dict("records"),
                   "skipped": list(outcome.skipped)}
    return table


class _CallableModule(type(os)):  # type: ignore[misc]
    """``weightstats.sweep`` is this package once any of its modules is imported (Python sets
    the package attribute), and the function before: both are called the same way."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return sweep(*args, **kwargs)


def _callable_package() -> None:
    import sys

    sys.modules[__name__].__class__ = _CallableModule


_callable_package()
