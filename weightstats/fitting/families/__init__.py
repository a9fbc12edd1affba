"""Registry of distribution families; adding a family means adding one module and one line here."""

from __future__ import annotations

from ...errors import OptionError
from .base import BatchFit, Family
from .gennorm import GenNorm
from .laplace import Laplace
from .normal import Normal
from .student_t import StudentT

FAMILIES: dict[str, Family] = {f.name: f for f in (Normal(), Laplace(), StudentT(), GenNorm())}
DEFAULT_FAMILIES: tuple[str, ...] = ("normal", "laplace", "t", "gennorm")
_ALIASES = {"gaussian": "normal", "norm": "normal", "student-t": "t", "studentt": "t",
            "student_t": "t", "generalized-normal": "gennorm", "ggd": "gennorm"}


def get_family(name: str) -> Family:
    """Look up a family by name or common alias; unknown names raise a one-line OptionError."""
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in FAMILIES:
        raise OptionError(f"unknown family {name!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[key]


def family_label(name: str) -> str:
    """Human-readable name ("Gaussian", "Laplace", "Student-t", "generalized normal")."""
    return get_family(name).label


__all__ = ["FAMILIES", "DEFAULT_FAMILIES", "BatchFit", "Family", "get_family", "family_label"]
