"""Layer selection: which of a source's tensors to fit.

:func:`select` filters a stream of :class:`~weightstats.sources.WeightTensor` by kind, name
pattern and size. Kinds are inferred by the sources while they list tensors
(:mod:`weightstats.sources.kinds`); selection comes after them and imports them, never the
reverse. The kind helpers are re-exported here for callers that import them from this module.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator

from weightstats.sources.base import WeightTensor
from weightstats.sources.kinds import (
    DEFAULT_KINDS,
    KINDS,
    infer_kind,
    infer_kinds,
    kinds_from_module,
    kinds_from_owner_kinds,
    module_kind,
    weight_role,
)

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "infer_kind",
    "infer_kinds",
    "kinds_from_module",
    "kinds_from_owner_kinds",
    "module_kind",
    "select",
    "weight_role",
]


def _matcher(pattern: str | None):
    if pattern is None or pattern == "":
        return lambda name: True
    if pattern.startswith("re:"):
        rx = re.compile(pattern[3:])  # checked by weightstats.options.check_pattern
        return lambda name: rx.search(name) is not None
    return lambda name: fnmatch.fnmatchcase(name, pattern)


def select(
    tensors: Iterable[WeightTensor],
    *,
    kinds: Iterable[str] | None = DEFAULT_KINDS,
    pattern: str | None = None,
    min_size: int = 1,
) -> Iterator[WeightTensor]:
    """Keep the tensors worth fitting.

    Parameters
    ----------
    tensors : iterable of WeightTensor
        Usually ``source.tensors()``; consumed lazily, nothing is loaded.
    kinds : iterable of str or None, optional
        Layer kinds to keep (see :data:`KINDS`); None or ``"all"`` keeps every kind.
    pattern : str, optional
        Glob matched against the full tensor name (``fnmatch``, case-sensitive), or a regular
        expression searched in the name when it starts with ``"re:"``.
    min_size : int, optional
        Skip tensors with fewer elements.

    Yields
    ------
    WeightTensor
        Float tensors passing all filters. Non-float tensors (int, bool, complex) are always
        skipped: they hold indices or shape constants, not weights.
    """
    from weightstats.options import check_kinds, check_min_size, check_pattern

    # The package's one validator: the same answers as fit_model and the CLI.
    wanted = set(check_kinds(kinds))
    min_size = check_min_size(min_size)
    match = _matcher(check_pattern(pattern))
    for t in tensors:
        if t.is_float and t.kind in wanted and t.numel >= min_size and match(t.name):
            yield t


def suggest_layers(pattern: str | None, tensors: Iterable[tuple[str, str]],
                   kinds: Iterable[str]) -> str:
    """A did-you-mean for a ``--layers`` pattern that selected nothing, or ''.

    A module name (``encoder.conv1``) suggests its weight tensor (``encoder.conv1.weight``), or
    ``'encoder.conv1.*'`` when it holds several tensors of the selected kinds; any other pattern
    suggests the closest tensor names.

    Parameters
    ----------
    pattern : str or None
        The ``--layers`` value.
    tensors : iterable of (name, kind)
        The model's floating-point tensors.
    kinds : iterable of str
        The selected kinds.
    """
    if not pattern or pattern.startswith("re:"):
        return ""
    import difflib

    wanted = set(kinds)
    listed = list(tensors)
    inside = [n for n, k in listed if k in wanted and fnmatch.fnmatchcase(n, pattern + ".*")]
    if len(inside) == 1:
        return f"did you mean --layers {inside[0]}?"
    if inside:
        return f"did you mean --layers '{pattern}.*' ({', '.join(inside[:3])}" + \
            (", ...)?" if len(inside) > 3 else ")?")
    names = [n for n, k in listed if k in wanted] or [n for n, _ in listed]
    close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.6)
    return f"did you mean --layers {' or '.join(close)}?" if close else ""
