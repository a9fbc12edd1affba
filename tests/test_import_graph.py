"""The house has no import circles: sources -> layers -> fitting -> report -> cli, each stage
knowing only the ones below it (the per-stage rules live beside each stage's tests)."""

from __future__ import annotations

from importgraph import find_cycle, import_graph


def test_the_whole_package_imports_without_a_circle() -> None:
    graph = import_graph()
    assert len(graph) > 60
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_option_validator_sits_below_the_fitter() -> None:
    # options.py is read by every entry point and by fit_tensor itself; it may know the family
    # registry but not the fitter, or fitting and validation import each other.
    graph = import_graph()
    assert "weightstats.options" in graph["weightstats.fitting.fit"]
    assert not any(m.startswith("weightstats.fitting.") and m != "weightstats.fitting.families"
                   and not m.startswith("weightstats.fitting.families.")
                   for m in graph["weightstats.options"]), graph["weightstats.options"]


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"a"}, "c": set()}, {"a", "c"}) is None
