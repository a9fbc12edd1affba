"""One option validator for every entry point, family names and groups, and the layer runner.

``fit_tensor``, ``fit_model``, ``compare_models`` and the CLI accept and refuse the same family
names with the same one-line message (``weightstats.options``); the library reports progress
through a callback and never loads rich; the runner hands worker errors to the caller.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from weightstats.errors import OptionError

FAST = {"ks_sample": 300, "ks_replicates": 19}
FAST_CLI = ["--ks-sample", "300", "--ks-replicates", "19", "--no-plots", "--format", "csv"]
ROOT = Path(__file__).resolve().parents[1]


def _state(n_layers: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"block{i}.fc.weight": rng.standard_normal((16, 40)).astype(np.float32)
            for i in range(n_layers)}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.numpy import save_file

    path = tmp_path_factory.mktemp("models") / "small.safetensors"
    save_file(_state(2), str(path))
    return path


def _cli(*args: str):
    from weightstats.cli import cli

    return CliRunner().invoke(cli, list(args))


def _error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("weightstats: error: ")
    return lines[0].removeprefix("weightstats: error: ")


# ----------------------------------------------------------------------------- one validator
@pytest.mark.parametrize(("spelling", "name"), [("Gaussian", "normal"), ("student-t", "t"),
                                                ("generalized normal", "gennorm")])
def test_a_spelling_is_accepted_by_every_entry_point(spelling, name, model_file, tmp_path):
    from weightstats import fit_model, fit_tensor

    x = np.random.default_rng(1).standard_normal(400)
    assert [r["family"] for r in fit_tensor(x, [spelling], **FAST).rows] == [name]
    assert fit_model(_state(1), families=spelling, **FAST).families == (name,)
    result = _cli("fit", str(model_file), "--families", spelling, "--out",
                  str(tmp_path / "rep"), *FAST_CLI)
    assert result.exit_code == 0, result.output
    assert "weightstats: error" not in result.output


def test_a_typo_is_refused_by_every_entry_point_with_one_line(model_file, tmp_path):
    from weightstats import fit_model, fit_tensor
    from weightstats.api import compare_models

    x = np.random.default_rng(1).standard_normal(400)
    messages = []
    for call in (lambda: fit_tensor(x, "gausian", **FAST),
                 lambda: fit_model(_state(1), families="gausian", **FAST),
                 lambda: compare_models([_state(1), _state(1)], families="gausian", **FAST)):
        with pytest.raises(OptionError) as err:
            call()
        messages.append(str(err.value))
    result = _cli("fit", str(model_file), "--families", "gausian", "--out",
                  str(tmp_path / "rep"), *FAST_CLI)
    assert result.exit_code == 2, result.output
    messages.append(_error_line(result))
    assert len(set(messages)) == 1, messages
    assert "\n" not in messages[0] and "did you mean normal?" in messages[0]
    assert not (tmp_path / "rep").exists()


def test_numbers_are_checked_by_the_same_rules_in_the_cli(model_file, tmp_path):
    """'5e3' is a whole number for fit_model and for the CLI alike; a fraction for neither."""
    from weightstats import fit_model

    with pytest.raises(OptionError) as err:
        fit_model(_state(1), families="normal", ks_sample=300.5, ks_replicates=19)
    result = _cli("fit", str(model_file), "--families", "normal", "--out", str(tmp_path / "a"),
                  "--ks-sample", "300.5", "--ks-replicates", "19")
    assert result.exit_code == 2
    assert _error_line(result) == str(err.value)
    result = _cli("fit", str(model_file), "--families", "normal", "--out", str(tmp_path / "b"),
                  "--ks-sample", "3e2", "--ks-replicates", "19", "--no-plots", "--format", "csv")
    assert result.exit_code == 0, result.output


def test_select_keeps_what_the_validator_returns():
    from weightstats.layers import select
    from weightstats.options import check_model_options
    from weightstats.sources import resolve

    opt = check_model_options(families="normal", kinds="LINEAR", layers="block1*", min_size=1)
    names = [t.name for t in select(resolve(_state()).tensors(), kinds=opt["kinds"],
                                    pattern=opt["layers"], min_size=opt["min_size"])]
    assert names == ["block1.fc.weight"]


# ----------------------------------------------------------------------------- groups
@pytest.fixture
def throwaway(monkeypatch):
    """A registered family of its own group, off by default (stands in for the mixtures)."""
    from weightstats.fitting.families import FAMILIES
    from weightstats.fitting.families.normal import Normal

    class Throwaway(Normal):
        name = "throwaway"
        label = "Throwaway law"
        aliases = ("tossed",)
        default = False
        group = "testgroup"

    monkeypatch.setitem(FAMILIES, "throwaway", Throwaway())
    return "throwaway"


def test_groups_expand_from_the_registry(throwaway):
    from weightstats.fitting.families import DEFAULT_FAMILIES, FAMILIES
    from weightstats.options import check_families

    assert check_families("+testgroup") == (*DEFAULT_FAMILIES, "throwaway")
    assert check_families("testgroup") == ("throwaway",)
    assert check_families("+Tossed") == (*DEFAULT_FAMILIES, "throwaway")
    assert check_families("all") == tuple(FAMILIES)
    assert "throwaway" in check_families("ALL")
    assert check_families(None) == DEFAULT_FAMILIES
    assert "throwaway" not in DEFAULT_FAMILIES


def test_names_are_canonical_deduplicated_in_the_given_order(throwaway):
    from weightstats.fitting.families import DEFAULT_FAMILIES
    from weightstats.options import check_families

    assert check_families("t,Gaussian,normal,gaussian") == ("t", "normal")
    assert check_families(["throwaway", "+testgroup"]) == ("throwaway", *DEFAULT_FAMILIES)
    assert check_families("gennorm, all")[0] == "gennorm"


@pytest.mark.parametrize("bad", ["+nope", "+", "testgrup", ["normal", 3], ""])
def test_bad_family_items_are_one_line_errors(throwaway, bad):
    from weightstats.options import check_families

    with pytest.raises(OptionError) as err:
        check_families(bad)
    assert "\n" not in str(err.value)


def test_a_group_reaches_the_fit(throwaway):
    from weightstats import fit_tensor

    x = np.random.default_rng(2).standard_normal(300)
    fit = fit_tensor(x, "normal,testgroup", **FAST)
    assert [r["family"] for r in fit.rows] == ["normal", "throwaway"]


def test_a_group_reaches_the_guard_of_a_failing_family(throwaway, monkeypatch):
    """The fallback that refits family by family reads the list as the validator does."""
    from weightstats import fit_tensor
    from weightstats.fitting.families import FAMILIES

    def broken(*args, **kwargs):
        raise RuntimeError("this family always fails")

    monkeypatch.setattr(FAMILIES["throwaway"], "fit_rows", broken)
    x = np.random.default_rng(3).standard_normal(300)
    fit = fit_tensor(x, "laplace,testgroup", **FAST)
    assert [r["family"] for r in fit.rows] == ["laplace", "throwaway"]
    assert any("throwaway not fitted" in note for note in fit.notes)


def test_cli_help_comes_from_the_registry(throwaway):
    from weightstats.fitting.families import DEFAULT_FAMILIES

    result = _cli("fit", "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert ",".join(DEFAULT_FAMILIES) in text  # the default
    assert "Throwaway law" in text and "+testgroup" in text and "all" in text


def test_no_family_name_in_the_option_code():
    """api.py, options.py and cli.py's options take family names from the registry only."""
    from weightstats import api, cli, options
    from weightstats.fitting.families import FAMILIES

    spellings = {s.lower() for f in FAMILIES.values() for s in (f.name, f.label, *f.aliases)}
    for source in (inspect.getsource(api), inspect.getsource(options),
                   inspect.getsource(cli._fit_options)):
        for node in ast.walk(ast.parse(source)):
            body = getattr(node, "body", None)
            docstring = (body[0].value if isinstance(body, list) and body
                         and isinstance(body[0], ast.Expr) else None)
            for const in ast.walk(node):
                if const is docstring or not isinstance(const, ast.Constant):
                    continue
                if isinstance(const.value, str):
                    words = {w.strip(".,;:()'\"").lower() for w in const.value.split(",")}
                    assert not words & spellings, const.value


# ----------------------------------------------------------------------------- library
def test_importing_the_api_loads_no_rich():
    code = "import sys, weightstats.api; print(sorted(m for m in sys.modules if m == 'rich' " \
           "or m.startswith('rich.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=120).stdout
    assert out.strip() == "[]"


def test_api_has_no_rich_or_threads_anywhere():
    from weightstats import api

    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(api))):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    assert not imported & {"rich", "threading", "queue"}
    assert "progress" not in inspect.signature(api.fit_model).parameters


@pytest.mark.parametrize("jobs", [1, 2])
def test_on_layer_is_called_once_per_layer_in_order(jobs):
    from weightstats import fit_model

    calls = []
    rep = fit_model(_state(3), families="normal", jobs=jobs,
                    on_layer=lambda done, total, name: calls.append((done, total, name)), **FAST)
    assert calls == [(i + 1, 3, lr.name) for i, lr in enumerate(rep.layers)]


def test_compare_models_reports_each_model_and_calls_back_per_model():
    from weightstats.api import compare_models

    calls = []
    reps = compare_models([_state(2), _state(3, seed=1)], families="Gaussian,laplace",
                          on_layer=lambda *a: calls.append(a[:2]), **FAST)
    assert [r.families for r in reps] == [("normal", "laplace")] * 2
    assert len({r.model for r in reps}) == 2  # the same short name twice gets a suffix
    assert calls == [(1, 2), (2, 2), (1, 3), (2, 3), (3, 3)]


def test_compare_models_needs_two_models_or_groups():
    from weightstats import compare_models  # public, like fit_model

    one = {"weight": np.random.default_rng(0).standard_normal((20, 20))}  # no groups
    with pytest.raises(OptionError, match="two or more"):
        compare_models([one], families="normal", **FAST)


# ----------------------------------------------------------------------------- runner
class _Layer:
    def __init__(self, i: int) -> None:
        self.name, self.i = f"layer{i}", i

    def load(self) -> int:
        return self.i


def _runner_threads() -> list[str]:
    for _ in range(200):  # a running job ends on its own; queued ones never start
        alive = [t.name for t in threading.enumerate() if t.name.startswith("weightstats-fit")]
        if not alive:
            break
        time.sleep(0.01)
    return alive


@pytest.mark.parametrize("jobs", [1, 3])
def test_runner_keeps_layer_order_and_reports_progress(jobs):
    from weightstats.fitting.runner import fit_layers

    calls = []
    out = list(fit_layers([_Layer(i) for i in range(7)], lambda v: v * v, jobs=jobs,
                          on_layer=lambda *a: calls.append(a)))
    assert out == [i * i for i in range(7)]
    assert calls == [(i + 1, 7, f"layer{i}") for i in range(7)]
    assert _runner_threads() == []


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("error", [ValueError("layer failed"), KeyboardInterrupt()],
                         ids=["error", "ctrl-c"])
def test_runner_hands_a_worker_error_to_the_caller_and_stops(jobs, error):
    from weightstats.fitting.runner import fit_layers

    started = []

    def fit(v: int) -> int:
        started.append(v)
        if v == 1:
            raise error
        return v

    with pytest.raises(type(error)):
        list(fit_layers([_Layer(i) for i in range(20)], fit, jobs=jobs))
    assert _runner_threads() == []
    assert len(started) <= 2 + jobs + 1  # the failing one, plus at most jobs + 1 in flight


def test_runner_stops_when_the_callback_raises():
    from weightstats.fitting.runner import fit_layers

    started = []

    def stop(done, total, name):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(fit_layers([_Layer(i) for i in range(20)], started.append, jobs=2, on_layer=stop))
    assert _runner_threads() == []
    assert len(started) <= 2 + 3


def test_fit_model_worker_error_reaches_the_caller(monkeypatch):
    import weightstats.fitting
    from weightstats import fit_model

    def failing(*args, **kwargs):
        raise ValueError("boom in a worker")

    monkeypatch.setattr(weightstats.fitting, "fit_tensor", failing)
    with pytest.raises(ValueError, match="boom in a worker"):
        fit_model(_state(4), families="normal", jobs=2, **FAST)
    assert _runner_threads() == []
