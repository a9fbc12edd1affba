"""Library entry points: :func:`fit_model` fits every selected layer of a model,
:func:`compare_models` fits several models (or one model's groups) side by side.

Every option goes through :mod:`weightstats.options` before a spec is resolved; the layers run
on :func:`weightstats.fitting.runner.fit_layers`; progress reaches the caller through an
``on_layer(done, total, name)`` callback (the CLI draws its bar from it).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from weightstats.errors import OptionError, WeightstatsError
from weightstats.layers import DEFAULT_KINDS
from weightstats.report.model_report import LayerResult, ModelReport, source_identity

if TYPE_CHECKING:  # pragma: no cover - typing only: torch loads only when a model needs it
    import torch

    from weightstats.sources.base import ModelSource

OnLayer = Callable[[int, int, str], None]


def _no_layers_error(source: Any, kinds: Sequence[str], layers: str | None,
                     min_size: int) -> WeightstatsError:
    """Explain an empty selection: which kinds the model does have, and the flag to use."""
    listed = [(t.name, t.kind) for t in source.tensors() if t.is_float]
    available: Counter[str] = Counter(kind for _, kind in listed)
    if not available:
        return WeightstatsError(f"{source.spec}: no floating-point weight tensors found; "
                                "check that the file holds model weights")
    have = ", ".join(f"{k} ({n})" for k, n in sorted(available.items()))
    extra = ""
    if layers:
        from weightstats.layers import suggest_layers

        hint = suggest_layers(layers, listed, kinds)
        extra += f" matching --layers {layers!r}" + (f" ({hint})" if hint else "")
    if min_size > 1:
        extra += f" with at least {min_size} weights"
    return OptionError(
        f"no {','.join(kinds)} layers{extra} in {source.spec}; available kinds: {have}; "
        "choose them with --kinds (e.g. --kinds " + ",".join(sorted(available)) + ")"
        + (" or relax --layers/--min-size" if extra else "")
    )


def fit_model(
    spec_or_module: str | os.PathLike[str] | torch.nn.Module | Mapping[str, Any] | ModelSource,
    *,
    families: str | Sequence[str] | None = None,
    kinds: str | Sequence[str] = DEFAULT_KINDS,
    layers: str | None = None,
    min_size: int = 1,
    per_channel: bool = False,
    ks_sample: int = 5000,
    ks_replicates: int = 10_000,
    seed: int = 0,
    jobs: int = 1,
    allow_pickle: bool = False,
    on_layer: OnLayer | None = None,
) -> ModelReport:
    """Fit each selected weight tensor of a model against the chosen families.

    Parameters
    ----------
    spec_or_module : str, os.PathLike, torch.nn.Module, Mapping or ModelSource
        Anything :func:`weightstats.sources.resolve` accepts (or an already resolved source).
    families : str, sequence of str or None
        Families to fit, as a comma list or a sequence; None: the registry's default families.
        Any spelling the registry knows (name, display label or alias, in any case:
        ``"Gaussian"``, ``"student-t"``, ``"generalized normal"``); ``"all"``: every registered
        family; a group name (``"mixtures"``): the families of that group; ``"+X"``: the
        defaults plus X (``"+mixtures"``). The report lists canonical names, each once, in the
        order given (see :func:`weightstats.options.check_families`).
    kinds : sequence of str or comma-separated str
        Layer kinds to include ("all" for every kind).
    layers : str, optional
        Name glob, or ``"re:<regex>"``.
    min_size : int
        Skip tensors with fewer weights.
    per_channel : bool
        Remove each output channel's own mean and scale before fitting (exact Gaussian scores,
        see ``weightstats.fitting.channels``): separates scale mixing from shape.
    ks_sample, ks_replicates : int
        KS/Anderson-Darling subsample size and parametric-bootstrap replicates (the defaults use
        the shipped null tables).
    seed : int
        Passed unchanged to every layer's fit (results do not depend on ``jobs``).
    jobs : int
        Layers fitted at once, on threads (ResNet-50: 1.5x faster with 2 on 2 cores); 1 fits in
        the calling thread.
    allow_pickle : bool
        Allow pickle checkpoints and TorchScript archives that need their code run (runs code
        from the file: trusted files only). Off, no format runs code from the file.
    on_layer : callable, optional
        Progress: ``on_layer(done, total, name)`` is called in the calling thread once per
        selected layer, in layer order, after that layer is fitted (``done`` = 1 .. ``total``,
        ``name`` the tensor's name, file content: print it with care). An exception it raises
        (KeyboardInterrupt included) stops the run and reaches the caller.

    Returns
    -------
    ModelReport

    Raises
    ------
    OptionError
        Invalid options, or no layer selected (names the kinds available).
    WeightstatsError
        The spec cannot be resolved or read.
    """
    from weightstats.options import check_model_options

    # Every option is checked before the spec is resolved or any weights are read.
    opt = check_model_options(families=families, kinds=kinds, layers=layers, min_size=min_size,
                              ks_sample=ks_sample, ks_replicates=ks_replicates, seed=seed,
                              jobs=jobs, per_channel=per_channel)
    from weightstats.sources import resolve

    source = spec_or_module
    if not (hasattr(source, "tensors") and hasattr(source, "name")):
        source = resolve(spec_or_module, allow_pickle=allow_pickle)
    selected = selected_layers(source, opt)
    fits = _fit_selected(selected, opt, on_layer)
    return report_from_fits(source, selected, fits, opt)


def selected_layers(source: Any, opt: dict[str, Any]) -> list[Any]:
    """The tensors of a resolved ``source`` that ``opt`` (checked options) selects, in layer
    order; an OptionError naming the kinds available when none is."""
    from weightstats.layers import select

    selected = list(select(source.tensors(), kinds=opt["kinds"], pattern=opt["layers"],
                           min_size=opt["min_size"]))
    if not selected:
        raise _no_layers_error(source, opt["kinds"], opt["layers"], opt["min_size"])
    return selected


def report_from_fits(source: Any, selected: Sequence[Any], fits: Sequence[Any],
                     opt: dict[str, Any]) -> ModelReport:
    """The :class:`ModelReport` of ``source`` from its selected tensors' fits, in layer order.

    ``opt`` is :func:`~weightstats.options.check_model_options`'s result. ``fit_model`` ends
    here, and so does a sweep that fitted the tensors one task each
    (:func:`fit_selected_layer`), so both give the same report.
    """
    results = [
        LayerResult(name=t.name, kind=t.kind, group=t.group, shape=tuple(t.shape),
                    dtype=t.dtype, index=i, fit=fit)
        for i, (t, fit) in enumerate(zip(selected, fits, strict=True))
    ]
    for t, fit in zip(selected, fits, strict=True):
        # What the source read differently (quantized, sparse, expanded) and tied names.
        fit.notes.extend(getattr(t, "notes", []))
    options = {"families": ",".join(opt["families"]), "kinds": ",".join(opt["kinds"]),
               **{k: opt[k] for k in ("layers", "min_size", "per_channel", "ks_sample",
                                      "ks_replicates", "seed")}}
    # Recorded without local folder names: the report does not depend on how a path was typed.
    spec, description = source_identity(source)
    return ModelReport(model=source.name, spec=spec, layers=results, families=opt["families"],
                       options=options, description=description)


def _fit_selected(selected: Sequence[Any], opt: dict[str, Any],
                  on_layer: OnLayer | None) -> list[Any]:
    """Every selected layer's ``fit_tensor`` with the checked options, in layer order."""
    from weightstats.fitting.runner import fit_layers

    def fit(loaded: tuple[Any, str]) -> Any:
        return _fit_loaded(loaded, opt)

    return list(fit_layers([_WithGrid(t) for t in selected], fit, jobs=opt["jobs"],
                           on_layer=on_layer))


def fit_selected_layer(tensor: Any, opt: dict[str, Any]) -> Any:
    """One selected tensor's fit exactly as :func:`fit_model` makes it (``opt`` as checked by
    :func:`~weightstats.options.check_model_options`): a sweep's per-tensor task."""
    return _fit_loaded(_WithGrid(tensor).load(), opt)


def _fit_loaded(loaded: tuple[Any, str], opt: dict[str, Any]) -> Any:
    """``fit_tensor`` of one loaded (array, grid) pair with the checked options."""
    from weightstats import fitting

    fit_tensor = fitting.fit_tensor  # looked up per call: tests may replace it
    kwargs = {k: opt[k] for k in ("seed", "ks_sample", "ks_replicates", "per_channel")}
    array, grid = loaded
    # Only a tensor on a stated grid (GGUF quants) passes it: tests may replace fit_tensor.
    return fit_tensor(array, opt["families"], **kwargs, **({"grid": grid} if grid else {}))


class _WithGrid:
    """A selected tensor whose ``load()`` also returns its quantization grid ("" if none)."""

    def __init__(self, tensor: Any) -> None:
        self.tensor, self.name = tensor, tensor.name

    def load(self) -> tuple[Any, str]:
        return self.tensor.load(), getattr(self.tensor, "grid", "")


def compare_models(
    specs: Sequence[str | os.PathLike[str] | torch.nn.Module | Mapping[str, Any] | ModelSource],
    *,
    families: str | Sequence[str] | None = None,
    kinds: str | Sequence[str] = DEFAULT_KINDS,
    layers: str | None = None,
    min_size: int = 1,
    per_channel: bool = False,
    ks_sample: int = 5000,
    ks_replicates: int = 10_000,
    seed: int = 0,
    jobs: int = 1,
    allow_pickle: bool = False,
    on_layer: OnLayer | None = None,
) -> list[ModelReport]:
    """Fit several models with the same options, for side-by-side comparison.

    Parameters
    ----------
    specs : list or tuple
        Two or more of anything :func:`fit_model` accepts; or one model whose layers fall in
        groups (top-level name prefixes such as encoder/decoder), compared group by group (a
        single spec outside a list counts as one model).
    families : str, sequence of str or None
        As in :func:`fit_model`: any spelling, ``"all"``, a group, ``"+X"``.
    kinds, layers, min_size, per_channel, ks_sample, ks_replicates, seed, jobs, allow_pickle
        As in :func:`fit_model`, the same for every model.
    on_layer : callable, optional
        ``on_layer(done, total, name)`` as in :func:`fit_model`, for each model in turn:
        ``done`` runs from 1 to that model's ``total`` and starts again at 1 for the next.

    Returns
    -------
    list of ModelReport
        One per model (or group), names made unique (a second ``resnet18`` is ``resnet18-2``);
        write them with :func:`weightstats.report.compare.save_compare`.

    Raises
    ------
    OptionError
        Invalid options (checked before any spec is resolved), or a single model without
        groups.
    """
    from weightstats.options import check_model_options

    opt = check_model_options(families=families, kinds=kinds, layers=layers, min_size=min_size,
                              ks_sample=ks_sample, ks_replicates=ks_replicates, seed=seed,
                              jobs=jobs, per_channel=per_channel)
    models = list(specs) if isinstance(specs, list | tuple) else [specs]
    reports = [fit_model(spec, **opt, allow_pickle=allow_pickle, on_layer=on_layer)
               for spec in models]
    if len(reports) == 1:
        from weightstats.report.compare import split_groups
        from weightstats.text import natural_key

        # Groups in natural order: 0, 1, 2, ..., 10 (not 0, 1, 10, 100, 2).
        reports = sorted(split_groups(reports[0]), key=lambda r: natural_key(r.model))
        if len(reports) < 2:
            raise OptionError("compare needs two or more SPECs, or one model with groups "
                              "(top-level name prefixes such as encoder/decoder)")
    unique_names(reports)
    return reports


def unique_names(reports: Sequence[ModelReport]) -> None:
    """Two reports with the same short name (resnet18 twice) get -2, -3 suffixes, in place."""
    seen: dict[str, int] = {}
    for rep in reports:
        n = seen.get(rep.model, 0) + 1
        seen[rep.model] = n
        if n > 1:
            rep.model = f"{rep.model}-{n}"
