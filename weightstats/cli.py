"""Command line: ``weightstats fit``, ``weightstats compare``, ``weightstats sweep``,
``weightstats latent``, ``weightstats list``.

Exit codes: 0 ok; 2 user error (one line on stderr); 3 a sweep finished with some models
failed (zoo/failures.csv); 130 interrupted (Ctrl-C or SIGTERM, no report written; a sweep keeps
the models it finished); 1 unexpected error (one line; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from weightstats import __version__, interrupts
from weightstats.cliutil import add_short_flags, default_compare_out, list_lines, set_help, status
from weightstats.errors import WeightstatsError
from weightstats.latent.cli import latent_options, run_latent_command
from weightstats.text import one_line, terminal

EXIT_USAGE = 2
EXIT_INTERRUPT = 130
# The end of the interrupt line: a sweep keeps the models it finished.
INTERRUPT_NOTE = {"text": "no report written"}


def _err(message: str) -> None:
    """One line on stderr, whatever the message contained: control characters shown escaped
    (a layer name or path cannot drive the terminal), a huge path shortened in the middle."""
    click.echo("weightstats: error: " + one_line(message), err=True)


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM, re-raised past click, which would print a stray blank line."""


class WeightstatsGroup(click.Group):
    """A click group that maps every failure to one line and an exit code."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with its whole first sentence (click cuts them at ~45 characters)."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:
            raise _Interrupted() from e

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            rv = super().main(argv, prog_name or "weightstats", complete_var,
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
            interrupts.check()  # an interrupt whose KeyboardInterrupt Python dropped
        except click.exceptions.Abort:  # click's wrapper around KeyboardInterrupt
            click.echo(f"weightstats: interrupted; {INTERRUPT_NOTE['text']}", err=True)
            code = EXIT_INTERRUPT
        except (KeyboardInterrupt, _Interrupted):
            click.echo(f"weightstats: interrupted; {INTERRUPT_NOTE['text']}", err=True)
            code = EXIT_INTERRUPT
        except click.exceptions.NoArgsIsHelpError as e:
            # Bare `weightstats`: the help text is what the user wants, not an error line.
            click.echo(e.ctx.get_help() if e.ctx is not None else "see weightstats --help")
            code = 0
        except click.UsageError as e:
            hint = f"; see '{e.ctx.command_path} --help'" if e.ctx is not None else ""
            _err(e.format_message().rstrip(".") + hint)
            code = EXIT_USAGE
        except click.ClickException as e:
            _err(e.format_message())
            code = e.exit_code
        except WeightstatsError as e:
            if debug:
                traceback.print_exc()
            _err(str(e))
            code = EXIT_USAGE
        except Exception as e:
            if debug:
                traceback.print_exc()
            _err(f"{type(e).__name__}: {e} (rerun with --debug for a traceback)")
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def _sigterm(signum: int, frame: Any) -> None:
    """SIGTERM is handled like Ctrl-C: the same cleanup, no half-written report."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: runs the command line on ``argv`` (default: the program's
    own arguments) and raises SystemExit with the exit code. Run as the program itself
    (``argv`` None), it ends the process at once after the last line (see :func:`_exit`)."""
    signal.signal(signal.SIGTERM, _sigterm)
    code: Any = 0
    with interrupts.watching():
        try:
            cli.main(args=argv, prog_name="weightstats")
        except SystemExit as done:
            code = done.code
    if argv is not None:  # called from Python (a test, a script): a plain SystemExit
        sys.exit(code)
    _exit(code)


def _exit(code: Any) -> None:
    """Leave with ``code``. Once torch is loaded, Python's teardown of it takes seconds after
    the last line is printed; with nothing left to finish (output flushed, logging shut down,
    no other thread or child process) the process ends at once instead."""
    import multiprocessing
    import threading

    status_code = code if isinstance(code, int) else (0 if code is None else 1)
    if code is not None and not isinstance(code, int):
        click.echo(code, err=True)
    if ("torch" in sys.modules and threading.active_count() == 1
            and not multiprocessing.active_children()):
        import logging

        logging.shutdown()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: its reader has gone, nothing to lose
            pass
        os._exit(status_code)
    sys.exit(status_code)


class _WholeNumber(click.ParamType):
    """A whole-number option: the text becomes the number it spells ("5e3" too) and
    :mod:`weightstats.options` judges it, with the library's messages."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from weightstats.options import number_from_text

        return number_from_text(value)


WHOLE = _WholeNumber()


class _FamiliesOption(click.Option):
    """``--families``: its help and default come from the family registry, which is read only
    when the help is shown (it loads scipy; ``weightstats --help`` stays fast)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from weightstats.fitting.families import DEFAULT_FAMILIES
        from weightstats.options import describe_families

        self.help = f"{describe_families()}  [default: {','.join(DEFAULT_FAMILIES)}]"
        return super().get_help_record(ctx)


def _fit_options(f: Any) -> Any:
    """Options shared by ``fit`` and ``compare``."""
    opts = [
        # None: the registry's default families (weightstats.options.check_families).
        click.option("--families", cls=_FamiliesOption, default=None, metavar="LIST"),
        click.option("--kinds", default="conv,linear,embedding", show_default=True,
                     help="Comma list of layer kinds: conv, linear, embedding, norm, bias, other."),
        click.option("--layers", default=None, help="Layer-name glob, or re:<regex>."),
        click.option("--min-size", type=WHOLE, default=1, show_default=True,
                     help="Skip tensors with fewer weights."),
        click.option("--per-channel", is_flag=True,
                     help="Remove each output channel's own mean and scale (exact Gaussian scores) before fitting."),
        *_report_options("reports/<model>/"),
        click.option("--jobs", type=WHOLE, default=1, show_default=True,
                     help="Layers fitted at once, on threads, 1 to 256 (results identical to "
                          "--jobs 1)."),
        *_trust_options(),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _report_options(out_default: str) -> list[Any]:
    """The KS, seed and output options of every command that fits and writes a report (``fit``,
    ``compare``, ``sweep``, ``latent``), so they read and check the same everywhere."""
    return [
        click.option("--ks-sample", type=WHOLE, default=5000, show_default=True,
                     help="Values subsampled for the KS test."),
        click.option("--ks-replicates", type=WHOLE, default=10_000, show_default=True,
                     help="Parametric-bootstrap replicates for the KS and Anderson-Darling p-values (10,000: the shipped tables; other counts are simulated once and cached)."),
        click.option("--seed", type=WHOLE, default=0, show_default=True,
                     help="Random seed (0 to 2**64 - 1)."),
        click.option("--out", type=click.Path(path_type=Path), default=None,
                     help=f"Report directory [default: {out_default}]."),
        click.option("--format", "formats", default="csv,md,json,html,png", show_default=True,
                     help="Comma list of outputs: csv, md, json, html, png."),
        click.option("--no-plots", is_flag=True, help="Skip figures (faster)."),
    ]


def _trust_options() -> list[Any]:
    """--allow-pickle and --debug, last in every command that reads a model."""
    return [
        click.option("--allow-pickle", is_flag=True,
                     help="Allow pickle checkpoints and TorchScript archives that need their "
                          "code run (runs code from the file: trusted files only)."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]


@click.group(cls=WeightstatsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="weightstats",
                      message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, hidden=True)
def cli(debug: bool) -> None:
    """Are trained weights Gaussian, Laplace or heavy-tailed? Per-layer fits and reports."""


def _fit_kwargs(opts: dict[str, Any]) -> dict[str, Any]:
    """The fitting options, checked by the library's one validator before anything is read
    (:func:`weightstats.options.check_model_options`), and the output formats."""
    from weightstats.options import check_model_options
    from weightstats.report.tables import check_formats

    checked = check_model_options(**{k: opts[k] for k in _MODEL_OPTIONS})
    check_formats(opts["formats"].split(","))
    return {**checked, "allow_pickle": opts["allow_pickle"]}


_MODEL_OPTIONS = ("families", "kinds", "layers", "min_size", "ks_sample", "ks_replicates",
                  "seed", "jobs", "per_channel")


def _run_fits(specs: Sequence[str], kwargs: dict[str, Any], progress: bool) -> list[Any]:
    from weightstats.api import fit_model

    reports = []
    for spec in specs:
        with _progress(progress, spec) as on_layer:
            reports.append(fit_model(spec, **kwargs, on_layer=on_layer))
    return reports


def _live(quiet: bool) -> bool:
    """Spinners and bars: on a terminal's stderr, unless --quiet."""
    return not quiet and sys.stderr.isatty()


def _quiet_option(f: Any) -> Any:
    return click.option("--quiet", is_flag=True,
                        help="Print nothing but errors: no table, summary or progress.")(f)


class _progress:
    """Context manager yielding an ``on_layer(done, total, name)`` callback for the library:
    a rich bar on stderr when enabled, else None."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled, self.label = enabled, label
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        # The label (a spec) and layer names are file content: never markup, never raw
        # control characters.
        self._bar = Progress(TextColumn("{task.description}", markup=False, style="bold"),
                             BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TimeRemainingColumn(),
                             TextColumn("{task.fields[layer]}", markup=False),
                             console=Console(stderr=True), transient=True)
        self._bar.start()
        # The total is known once the layers are selected: the first callback brings it.
        # Until then the model is being resolved, loaded or downloaded.
        task = self._bar.add_task(terminal(f"loading {self.label}"), total=None, layer="")

        def on_layer(done: int, total: int, name: str) -> None:
            self._bar.update(task, completed=done, total=total, layer=terminal(name),
                             description=terminal(f"fitting {self.label}"))

        return on_layer

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _console() -> Any:
    from rich.console import Console

    # Off a terminal rich would wrap at 80 columns; logs and pipes want whole lines (the
    # tables fit themselves, weightstats.clitable).
    from weightstats.cliutil import GuardedStdout

    console = Console(file=GuardedStdout())
    if not console.is_terminal:
        console = Console(file=GuardedStdout(), width=240, soft_wrap=True)
    return console


def _check_out(out: Path | None, n_reports: int = 1, formats: str = "",
               no_plots: bool = False) -> None:
    """Fail before any fitting when the report cannot be written where asked."""
    from weightstats.report.atomic import check_parent_folder, check_target
    from weightstats.report.tables import check_outputs

    check_outputs(formats.split(",") if formats else ["csv"], plots=not no_plots)
    if out is None:
        check_parent_folder(Path("reports"), may_be_report=True)
    elif n_reports == 1:
        check_target(out)
    else:  # --out is the parent of one report per spec, never a report itself
        check_parent_folder(out)


def print_layer_table(report: Any) -> None:
    """The per-layer table, fitted to the terminal (:mod:`weightstats.clitable`)."""
    from weightstats.clitable import layer_columns, print_table

    print_table(_console(), f"{report.model}: per-layer fits", layer_columns(report))


@cli.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC [SPEC ...]")
@_fit_options
@_quiet_option
def fit(specs: tuple[str, ...], quiet: bool, **opts: Any) -> None:
    """Fit each layer of SPEC (a model name, file or hub id) and write a report.

    With several SPECs, --out is the parent directory of one report per model.
    """
    with status("starting", _live(quiet)):  # imports and checks, before the bar
        _check_out(opts["out"], len(specs), opts["formats"], opts["no_plots"])
        from rich.text import Text

        from weightstats.api import unique_names
        from weightstats.fitting.compare import AIC_NOTE_SHORT
        from weightstats.report.tables import fit_note_lines, no_fit_lines

        kwargs = _fit_kwargs(opts)  # everything checked before any (slow) fitting starts
    reports = _run_fits(specs, kwargs, _live(quiet))
    unique_names(reports)
    console = _console()
    failed: list[tuple[str, Exception]] = []
    for rep in reports:
        interrupts.check()
        if opts["out"] is None:
            out = Path("reports") / rep.model
        else:
            out = opts["out"] if len(reports) == 1 else opts["out"] / rep.model
        try:  # one report that cannot be written must not cost the others
            if not quiet:
                print_layer_table(rep)
                summary = rep.summary()
                info, sentence = summary.info, summary.text
                # The answer can name layers (no family fits ...): plain text, never markup.
                console.print(Text(terminal(sentence), style="bold"), highlight=False)
                for line in no_fit_lines(info):  # which layers no family fits, and why
                    console.print(Text(terminal(f"no family fits {line}")), highlight=False)
                for line in fit_note_lines(rep, best_only=True):  # a winning mixture, in words
                    console.print(Text(terminal(line)), highlight=False)
                from weightstats.fitting.folding import folding_summary

                fold = folding_summary(rep.layers, per_channel=bool(rep.options.get("per_channel")))
                if fold["sentence"]:  # BatchNorm folded into the convolutions (γ/σ per channel)
                    console.print(Text(terminal(fold["sentence"])), highlight=False)
                console.print(terminal(f"By AIC: {info['aic_sentence']} ({AIC_NOTE_SHORT}; BIC "
                                       "is consistent.)"), highlight=False, markup=False)
            with status(f"writing the report to {out}/", _live(quiet)):
                path = rep.save(out, opts["formats"].split(","), plots=not opts["no_plots"])
        except Exception as err:
            if len(reports) == 1:
                raise
            failed.append((rep.model, err))
            continue
        if not quiet:
            console.print(f"report written to {terminal(path)}/", highlight=False,
                          soft_wrap=True, markup=False)
    _raise_failed(failed, len(reports))


def _raise_failed(failed: Sequence[tuple[str, Exception]], total: int) -> None:
    """One error line naming each report that was not written (the others were)."""
    if not failed:
        return
    why = "; ".join(f"{name}: {err if isinstance(err, WeightstatsError) else repr(err)}"
                    for name, err in failed)
    raise WeightstatsError(f"{len(failed)} of {total} reports not written ({why}); "
                           "the others were written")


@cli.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC [SPEC ...]")
@_fit_options
@_quiet_option
def compare(specs: tuple[str, ...], quiet: bool, **opts: Any) -> None:
    """Compare the summaries of several models side by side.

    With a single SPEC, its groups (e.g. a VAE's encoder and decoder) are compared.
    """
    with status("starting", _live(quiet)):  # imports and checks, before the bar
        from weightstats.api import compare_models
        from weightstats.clitable import frame_columns, print_table
        from weightstats.report.compare import compare_display, save_compare

        _check_out(opts["out"], 1, opts["formats"], opts["no_plots"])
        kwargs = _fit_kwargs(opts)  # everything checked before any (slow) fitting starts
    label = specs[0] if len(specs) == 1 else f"{len(specs)} models"
    with _progress(_live(quiet), label) as on_layer:
        reports = compare_models(list(specs), **kwargs, on_layer=on_layer)
    out = opts["out"] or default_compare_out([r.model for r in reports])
    console = _console()
    if not quiet:
        print_table(console, "best family by BIC: layers won (share of weights)",
                    frame_columns(compare_display(reports)))
        for rep in reports:
            console.print(terminal(f"{rep.model}: {rep.summary().text}"), highlight=False,
                          markup=False)
    with status(f"writing the report to {out}/", _live(quiet)):
        path = save_compare(reports, out, opts["formats"].split(","), plots=not opts["no_plots"])
    if not quiet:
        console.print(f"report written to {terminal(path)}/", highlight=False, soft_wrap=True,
                      markup=False)


@cli.command()
@click.argument("specs", nargs=-1, metavar="[SPEC ...]")
@click.option("--from", "from_file", type=click.Path(path_type=Path), default=None,
              metavar="FILE", help="More specs, one per line (# comments).")
@click.option("--workers", type=WHOLE, default=None,
              help="Worker processes of the local Dask cluster [default: one per core].")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Use a running Dask scheduler (tcp://HOST:8786) instead of a local cluster.")
@click.option("--split-above", type=WHOLE, default=50_000_000, show_default=True,
              help="Fit a model with more selected weights than this one task per tensor.")
@_fit_options
def sweep(specs: tuple[str, ...], **opts: Any) -> int:
    """Fit many models on Dask and write one table (--out, default reports/sweep).

    SPECs as for fit, or wildcards ('resnet*', 'timm:resnet*', 'models/*.safetensors').
    Models already done in --out with the same options are skipped (rerun to resume).
    Exit code 3: some models failed (listed in zoo/failures.csv), the rest were written.
    """
    from weightstats.sweep.cli import DEFAULT_OUT, run_sweep_command

    out = terminal(opts["out"] if opts["out"] is not None else DEFAULT_OUT)
    INTERRUPT_NOTE["text"] = (f"the models it finished are kept in {out}/: run the same "
                              "command again to resume")
    return run_sweep_command(specs, opts, progress=sys.stderr.isatty())


@cli.command()
@click.argument("spec", metavar="SPEC")
@latent_options(WHOLE, _FamiliesOption,
                [*_report_options("reports/latent/<model>/"), *_trust_options()])
def latent(spec: str, **opts: Any) -> None:
    """Is SPEC's latent space Gaussian? Its aggregate posterior against the prior N(0, I).

    SPEC: digits-vae (digits-vae:none), or hf:ORG/REPO (a diffusers AutoencoderKL) with --data
    a folder of images. Report in --out (default reports/latent/<model>/).
    """
    if opts["out"] is not None:
        _check_out(opts["out"], 1, opts["formats"], opts["no_plots"])
    run_latent_command(spec, opts, _console())


@cli.command(name="list")
@click.argument("pattern", required=False)
def list_cmd(pattern: str | None) -> None:
    """List built-in, torchvision and (with 'timm:*') timm model names and their weights.

    PATTERN is a case-insensitive glob ('resnet*', 'timm:vit_*'). Each line is a name that
    fit takes, then its weights tags (NAME:TAG; NAME:none is untrained).
    """
    from weightstats.sources.names import is_cached

    part = "timm" if (pattern or "").lower().startswith("timm:") else "torchvision"
    with status(f"reading the model names of {part} (once per version)",
                sys.stderr.isatty() and not is_cached(part)):
        from weightstats.sources import BUILTIN_NAMES, list_models, model_tags
        from weightstats.text import natural_key

        names = list_models(pattern)  # built-in models first, then in natural order
        names.sort(key=lambda n: (n not in BUILTIN_NAMES, natural_key(n)))
        entries = [(n, model_tags(n)) for n in names]
    if not entries:
        # stderr: a script reading the names gets none, a person reads why
        more = "" if (pattern or "").lower().startswith("timm:") else \
            "; timm models are listed with 'timm:*'"
        click.echo(f"weightstats: no model names match {terminal(pattern)!r}{more}; a Hugging "
                   "Face repo is fitted as hf:ORG/REPO, a file by its path", err=True)
        return
    for line in list_lines(entries):
        click.echo(terminal(line))


for _command in (fit, compare, sweep, latent):
    add_short_flags(_command)
set_help(compare, "out", "Report directory [default: reports/compare-<A>-vs-<B>/, a long name "
         "cut and ended with a hash; one SPEC: reports/compare-<SPEC>-<group>-vs-...].")
set_help(sweep, "out", "Folder of the sweep's table and per-model reports "
         "[default: reports/sweep/].")

if __name__ == "__main__":  # pragma: no cover
    main()
