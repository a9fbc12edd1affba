"""``weightstats sweep``: the command's body (the click command in :mod:`weightstats.cli` only
declares the options)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from weightstats.text import terminal

DEFAULT_OUT = Path("reports") / "sweep"
MODEL_OPTIONS = ("families", "kinds", "layers", "min_size", "ks_sample", "ks_replicates",
                 "seed", "jobs", "per_channel")


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """An ``on_progress`` callback drawing two rich bars (models, tensors) on stderr, or None."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(TextColumn("{task.description}", markup=False, style="bold"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                   transient=True)
    models = bar.add_task("models", total=None)
    tensors = bar.add_task("tensors", total=None)

    def on_progress(m_done: int, m_total: int, t_done: int, t_known: int) -> None:
        bar.update(models, completed=m_done, total=m_total)
        # A model's tensor count is known once a worker has opened it.
        bar.update(tensors, completed=t_done, total=max(t_known, t_done) or None)

    bar.start()
    try:
        yield on_progress
    finally:
        bar.stop()


def run_sweep_command(specs: Sequence[str], opts: dict[str, Any], *, progress: bool) -> int:
    """Check everything, run the sweep, print where the tables are; the exit code."""
    from weightstats.sweep import EXIT_PARTIAL, sweep
    from weightstats.sweep.cluster import check_workers

    if not specs and opts["from_file"] is None:
        raise click.UsageError("pass one or more SPECs (wildcards allowed) or --from FILE")
    out = opts["out"] if opts["out"] is not None else DEFAULT_OUT
    check_workers(opts["workers"])
    fit_options = {k: opts[k] for k in MODEL_OPTIONS}
    # An interrupt reaches the command line's handler, whose line says what was kept.
    with progress_bar(progress) as on_progress:
        table = sweep(list(specs), out=out, workers=opts["workers"],
                      scheduler=opts["scheduler"], from_file=opts["from_file"],
                      formats=opts["formats"].split(","), plots=not opts["no_plots"],
                      split_above=opts["split_above"], allow_pickle=opts["allow_pickle"],
                      on_progress=on_progress, **fit_options)
    import pandas as pd

    models, failures = pd.DataFrame(table.attrs["models"]), pd.DataFrame(table.attrs["failures"])
    skipped = len(table.attrs["skipped"])
    for row in models.itertuples(index=False):
        click.echo(terminal(f"{row.model}: {row.sentence}"))
    zoo = Path(out) / "zoo"
    click.echo(terminal(f"{len(models)} models done ({skipped} already done before), "
                        f"{len(failures)} failed; zoo tables written to {zoo}/"))
    if len(failures):
        for row in failures.itertuples(index=False):
            click.echo(terminal(f"weightstats: failed: {row.model}: {row.error}"), err=True)
        click.echo(terminal(f"weightstats: {len(failures)} of {len(failures) + len(models)} "
                            f"models failed; see {zoo / 'failures.csv'}"), err=True)
        return EXIT_PARTIAL
    return 0
