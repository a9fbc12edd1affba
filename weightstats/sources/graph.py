"""Walk nested containers once, and merge tensors that are the same stored values.

A checkpoint is a graph, not a tree: ``d = {"a": d0, "b": d0}`` nested 40 deep is 18 KB on
disk and 2^40 paths. Each container and each tensor is visited once, under the first name
that reaches it; later names are kept as aliases. Tied weights (the same storage at the same
offset, shape and stride, e.g. an embedding reused as the LM head) are one layer too.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

MAX_DEPTH = 64  # deeper nesting is not a checkpoint layout; it is skipped
MAX_ALIASES = 8  # names kept per tensor; the rest are counted


class Aliases:
    """Later names of each tensor: at most :data:`MAX_ALIASES` kept, all counted."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.counts: dict[str, int] = {}

    def add(self, first: str, other: str) -> None:
        if other == first:
            return
        kept = self.names.setdefault(first, [])
        self.counts[first] = self.counts.get(first, 0) + 1
        if len(kept) < MAX_ALIASES and other not in kept:
            kept.append(other)

    def merge(self, other: Aliases, into: Mapping[str, str] | None = None) -> None:
        """Add ``other``'s aliases, each under ``into[first]`` when given (chains collapse)."""
        for first, names in other.names.items():
            target = into.get(first, first) if into else first
            extra = other.counts[first] - len(names)
            for n in names:
                self.add(target, n)
            if extra:
                self.counts[target] = self.counts.get(target, 0) + extra

    def of(self, name: str) -> tuple[tuple[str, ...], int]:
        """(kept alias names, total number of aliases) of ``name``."""
        return tuple(self.names.get(name, ())), self.counts.get(name, 0)


def flatten_once(
    root: Any,
    children: Callable[[Any], Iterable[tuple[str, Any]] | None],
    is_leaf: Callable[[Any], bool],
) -> tuple[dict[str, Any], Aliases]:
    """Leaves of a container graph under dotted names, each object visited once.

    Parameters
    ----------
    root : object
        The top container.
    children : callable
        ``children(node)`` gives ``(key, value)`` pairs of a container, None for anything else.
    is_leaf : callable
        True for the values to collect (tensors).

    Returns
    -------
    leaves : dict of str to object
        First name of each distinct leaf, in depth-first order.
    aliases : Aliases
        Other names of the same leaf, through a shared leaf or a shared container.
    """
    leaves: dict[str, Any] = {}
    aliases = Aliases()
    leaf_names: dict[int, str] = {}
    node_names: dict[int, str] = {}
    shared: list[tuple[str, str]] = []  # (later prefix, first prefix) of a container seen twice

    def visit(node: Any, prefix: str, depth: int) -> None:
        node_names[id(node)] = prefix
        items = children(node)
        if items is None or depth > MAX_DEPTH:
            return
        for key, value in items:
            name = prefix + key
            if is_leaf(value):
                first = leaf_names.setdefault(id(value), name)
                if first == name:
                    leaves[name] = value
                else:
                    aliases.add(first, name)
            elif id(value) in node_names:
                shared.append((name + ".", node_names[id(value)]))
            elif children(value) is not None:
                visit(value, name + ".", depth + 1)

    visit(root, "", 0)
    # A container reached twice holds the same leaves under a second prefix (one level of
    # substitution: the cost is bounded by containers x leaves, never by paths).
    for later, first in shared:
        for name in [n for n in leaves if n.startswith(first)]:
            aliases.add(name, later + name[len(first):])
    return leaves, aliases


def merge_identical(keys: Mapping[str, Hashable | None]) -> tuple[list[str], dict[str, str]]:
    """Group names whose identity key is equal (None never matches).

    Returns
    -------
    kept : list of str
        Names in their original order, without the later members of each group.
    first_of : dict of str to str
        Each dropped name mapped to the first name of its group.
    """
    first_by_key: dict[Hashable, str] = {}
    kept: list[str] = []
    first_of: dict[str, str] = {}
    for name, key in keys.items():
        if key is None:
            kept.append(name)
            continue
        first = first_by_key.setdefault(key, name)
        if first == name:
            kept.append(name)
        else:
            first_of[name] = first
    return kept, first_of


def alias_note(aliases: tuple[str, ...], count: int) -> str:
    """``"tied: also named lm_head.weight; fitted once"`` (empty without aliases)."""
    if not count:
        return ""
    more = f" and {count - len(aliases)} more" if count > len(aliases) else ""
    return f"tied: also named {', '.join(aliases)}{more}; fitted once"
