"""The fitter's hooks on atoms (``fitting.atoms``): cut them out, or decline the fit.

``take_atoms`` (the float path: a sorted array and the same values in storage order) and
``take_atoms_counted`` (the counted path: distinct values and their counts) find the atoms, and
either return the continuous remainder the families are fitted to or a finished ``TensorFit`` that
says why no family is fitted (quantized, too few continuous values; pruned in the per-channel
view), with the raw values' descriptives. ``grid_declined`` and ``grid_declined_counted`` decline
values a source says lie on a quantization grid. Both paths share every step, so a 16-bit tensor
gets the same answer from either.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .atoms import Atoms, find_atoms, find_atoms_counted
from .descriptives import describe
from .result import TensorFit
from .runs import SortedRuns, one_form


def _describe_raw(xs: np.ndarray, counts: np.ndarray | None = None) -> dict[str, float]:
    """``describe`` of raw sorted values (each occurring ``counts`` times, if given), computed on
    x / max|x| so no power can overflow."""
    top = max(abs(float(xs[0])), abs(float(xs[-1])))
    points, counts = one_form(xs, counts)  # the same sums on either path
    described = describe(points.astype(np.float64) / top, weights=counts)
    described.update(mean=described["mean"] * top, std=described["std"] * top,
                     min=float(xs[0]), max=float(xs[-1]))
    return described


def grid_declined(xs: np.ndarray, grid: str, base: dict[str, Any]) -> TensorFit:
    """The declined ``TensorFit`` of values a source says lie on a quantization grid.

    GGUF's quantized blocks each carry their own scale, so the tensor as a whole is on no single
    grid and the atom test sees only the levels blocks happen to share; the source states the
    grid instead (``grid``, e.g. "GGUF Q8_0: blocks of 32 values, ...") and the reading is the
    same as for a tensor whose atoms carry nearly every value: a discrete law, no family fitted.
    """
    return _grid_fit(grid, base, _describe_raw(xs))


def grid_declined_counted(values: np.ndarray, counts: np.ndarray, grid: str,
                          base: dict[str, Any]) -> TensorFit:
    """``grid_declined`` of the sample holding each of ``values`` (sorted, distinct) ``counts``
    times (the counted path)."""
    return _grid_fit(grid, base, _describe_raw(values, counts))


def _grid_fit(grid: str, base: dict[str, Any], described: dict[str, float]) -> TensorFit:
    fit = TensorFit.failed("quantized", f"quantized ({grid}): a discrete law, so no continuous "
                           "family is fitted", **base)
    fit.descriptives.update(described)
    return fit


def _declined(atoms: Atoms, reason: tuple[str, str], base: dict[str, Any],
              described: dict[str, float]) -> TensorFit:
    """The finished ``TensorFit`` of atoms that decline the fit, with the raw descriptives."""
    fit = TensorFit.failed(*reason, **base)
    fit.descriptives.update(described)
    fit.descriptives.update(atom_mass=atoms.mass, n_atoms=float(atoms.values.size),
                            zero_fraction=atoms.zero_count / atoms.n_total)
    fit.atoms = atoms.summary()
    return fit


def _reason(atoms: Atoms, min_n: int, known: bool) -> tuple[str, str] | None:
    """Why ``atoms`` decline the fit, or None; a pruned tensor is fitted truncated
    (``fitting.truncated``) unless its atoms came from the per-channel view."""
    reason = atoms.decline(min_n)
    return None if reason is not None and reason[0] == "pruned" and not known else reason


def take_atoms(xs: np.ndarray, flat: np.ndarray, dtype: str, known: Atoms | None,
               base: dict[str, Any], min_n: int):
    """The fitter's hook: find the atoms of sorted ``xs`` and cut them out.

    Parameters
    ----------
    xs : ndarray
        Sorted finite values (non-constant, at least ``min_n``).
    flat : ndarray
        The same values in storage order (the KS subsample is drawn from them by position).
    dtype : str
        The tensor's dtype name.
    known : Atoms or None
        Atoms already found on the raw values by the per-channel view; ``xs`` are then its
        scores (returned as they are), or the raw values where the atoms decline the fit.
    base : dict
        The fitter's common ``TensorFit`` fields, for a declined result.
    min_n : int
        Fewest continuous values worth fitting.

    Returns
    -------
    atoms, xs, flat, declined
        The continuous values, sorted and in storage order; ``declined`` is a finished
        ``TensorFit`` (status "pruned", "quantized" or "too_small", with descriptives and the
        atoms) when no family should be fitted, else None.
    """
    atoms = known if known is not None else find_atoms(xs, dtype)
    reason = _reason(atoms, min_n, known is not None)
    if reason is not None:  # raw values' descriptives (the per-channel view too)
        return atoms, xs, flat, _declined(atoms, reason, base, _describe_raw(xs))
    if atoms and known is None:
        whole = (float(xs[0]), float(xs[-1]))
        kept = flat != 0 if np.array_equal(atoms.values, [0.0]) else ~atoms.drop(flat)
        return replace(atoms, removed_from=whole), atoms.continuous(xs), flat[kept], None
    return atoms, xs, flat, None


def take_atoms_counted(values: np.ndarray, counts: np.ndarray, dtype: str, base: dict[str, Any],
                       min_n: int):
    """``take_atoms`` of the sample holding each of ``values`` ``counts`` times (the counted
    path), in O(distinct values).

    Parameters
    ----------
    values : ndarray
        Distinct finite values, sorted ascending, float64, in data units (non-constant).
    counts : ndarray
        Positive whole numbers (int64), at least ``min_n`` in all.
    dtype, base, min_n
        As for ``take_atoms``.

    Returns
    -------
    atoms, values, counts, declined
        As ``take_atoms`` returns them for ``np.repeat(values, counts)``, the continuous values
        given by their distinct values and counts.
    """
    atoms = find_atoms_counted(values, counts, dtype)
    reason = _reason(atoms, min_n, False)
    if reason is not None:
        return atoms, values, counts, _declined(atoms, reason, base, _describe_raw(values, counts))
    if atoms:
        rest = atoms.continuous(SortedRuns(values, counts))
        whole = (float(values[0]), float(values[-1]))
        return replace(atoms, removed_from=whole), rest.values, rest.counts, None
    return atoms, values, counts, None
