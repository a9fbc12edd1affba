"""Registry of distribution families: adding a family means adding one module and one line here.

Everything the package knows about a family lives on its class (label, aliases, colour, marker,
parameters, nesting, how reports show its shape); reports, figures, the CLI and the comparisons
loop over ``FAMILIES``.
"""

from __future__ import annotations

import difflib

from ...errors import OptionError
from .base import BatchFit, Family, Nesting, ShapeDisplay
from .gennorm import GenNorm
from .gsm import GaussianScaleMixture
from .laplace import Laplace
from .logistic import Logistic
from .normal import Normal
from .student_t import StudentT
from .uniform_mix import UniformT

FAMILIES: dict[str, Family] = {f.name: f for f in (Normal(), Laplace(), StudentT(), GenNorm(), Logistic(), GaussianScaleMixture(),
                                                   UniformT())}
DEFAULT_FAMILIES: tuple[str, ...] = tuple(name for name, f in FAMILIES.items() if f.default)


def _lookup() -> dict[str, str]:
    """Every accepted spelling (name, label, alias; case and -/_/space insensitive) -> name."""
    table: dict[str, str] = {}
    for fam in FAMILIES.values():
        for spelling in (fam.name, fam.label, *fam.aliases):
            table[_key(spelling)] = fam.name
    return table


def _key(spelling: str) -> str:
    return "".join(ch for ch in spelling.strip().lower() if ch not in "-_ ")


def get_family(name: str) -> Family:
    """Look up a family by name, display label or alias; unknown names raise a one-line OptionError."""
    if isinstance(name, str) and name in FAMILIES:  # the canonical name: every fit asks this way
        return FAMILIES[name]
    table = _lookup()
    key = _key(str(name))
    if key not in table:
        close = difflib.get_close_matches(key, list(table), n=1, cutoff=0.6)
        hint = f" (did you mean {table[close[0]]!r}?)" if close else ""
        raise OptionError(f"unknown family {name!r}{hint}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[table[key]]


def family_label(name: str) -> str:
    """Human-readable name ("Gaussian", "Laplace", "Student-t", "generalized normal")."""
    return get_family(name).label


def families_in_group(group: str) -> tuple[str, ...]:
    """Names of the registered families of a group (``"mixtures"``), in registry order."""
    return tuple(name for name, f in FAMILIES.items() if f.group == group)


__all__ = ["FAMILIES", "DEFAULT_FAMILIES", "BatchFit", "Family", "Nesting", "ShapeDisplay",
           "get_family", "family_label", "families_in_group"]
