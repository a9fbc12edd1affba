"""The command line as a person at a terminal meets it: tables that fit 80, 120 and 200
columns, plain text in pipes, short flags, --version, help texts, `list`, did-you-means."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from weightstats.cli import cli
from weightstats.cliutil import MAX_FOLDER_NAME, compare_folder_name
from weightstats.termtable import Column, fit_columns, plain_lines
from weightstats.text import natural_key, shorten_name

FAST = ["--ks-sample", "300", "--ks-replicates", "19", "--no-plots"]
BOX = set("│┃━─┏┓┗┛┡┩└┘╇╈┳┻")


@pytest.fixture(scope="module")
def llm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve tensors named like a transformer's: long names that differ in the middle."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    state = {}
    for block in (0, 1, 2, 10, 11, 12):
        for proj in ("q_proj", "v_proj"):
            name = f"model.decoder.layers.{block}.self_attention.{proj}.weight"
            state[name] = (0.02 * rng.standard_t(4, size=(24, 24))).astype(np.float32)
    path = tmp_path_factory.mktemp("llm") / "llm.safetensors"
    save_file(state, str(path))
    return path


@pytest.fixture(scope="module")
def llm_report(llm_file: Path):
    import weightstats

    return weightstats.fit_model(str(llm_file), ks_sample=300, ks_replicates=19)


def _table(report, width: int | None, terminal: bool, monkeypatch) -> list[str]:
    from rich.console import Console

    from weightstats.clitable import layer_columns, print_table

    if width is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(width))
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=terminal, width=width or 80, color_system=None)
    print_table(console, "m: per-layer fits", layer_columns(report))
    return buf.getvalue().splitlines()


def _name_cells(lines: list[str]) -> list[str]:
    return [ln.split()[0] for ln in lines if ln.lstrip().startswith(("model", "…"))]


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("width", [80, 120, 200])
def test_layer_table_fits_the_width(llm_report, width: int, terminal: bool, monkeypatch) -> None:
    lines = _table(llm_report, width, terminal, monkeypatch)
    assert max(len(ln.rstrip()) for ln in lines) <= width, "\n".join(lines)
    names = _name_cells(lines)
    assert len(names) == 12 and len(set(names)) == 12  # every row still tells its layer
    for shown in names:  # the ends and the block number survive
        assert shown.endswith(".weight") and re.search(r"\.(0|1|2|10|11|12)\.", shown), shown
    header = next(ln for ln in lines if "best" in ln)
    assert "best (BIC)" in header and "fit" in header
    assert ("D normal" in header) == (width >= 200)  # the KS distances go first
    if not terminal:
        assert not BOX & set("".join(lines))  # plain text: no box drawing ...
        assert all(ln == ln.rstrip() for ln in lines)  # ... and no padding


def test_piped_table_keeps_every_column_in_full(llm_report, monkeypatch) -> None:
    lines = _table(llm_report, None, False, monkeypatch)
    assert "model.decoder.layers.10.self_attention.q_proj.weight" in "\n".join(lines)
    header = lines[1]
    for col in ("layer", "kind", "best (AIC)", "ΔAIC", "best (BIC)", "D gennorm", "ex. kurt"):
        assert col in header


def test_cli_fit_at_80_columns(llm_file: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = CliRunner().invoke(cli, ["fit", str(llm_file), "-o", str(tmp_path / "r"), *FAST,
                                      "-f", "Gaussian,student-t", "-k", "linear", "-j", "2"])
    assert result.exit_code == 0, result.output
    table = result.output.split("fits best")[0].splitlines()
    assert max(len(ln) for ln in table) <= 80
    assert not BOX & set(result.output)
    assert "…" in result.output and "en…" not in result.output


def test_quiet_prints_nothing(llm_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = CliRunner().invoke(cli, ["fit", str(llm_file), "-q", "-o", str(out), *FAST,
                                      "--format", "csv"])
    assert result.exit_code == 0 and result.output == ""
    assert (out / "layers.csv").is_file()


# ----------------------------------------------------------------------------- helpers
def test_shorten_name_keeps_ends_and_block_numbers() -> None:
    name = "model.layers.10.self_attn.q_proj.weight"
    assert shorten_name(name, 60) == name
    assert shorten_name(name, 32) == "model.layers.10.….q_proj.weight"
    for limit in range(12, len(name)):
        assert len(shorten_name(name, limit)) <= limit
    assert shorten_name("a" * 50, 11) == "aaaaa…aaaaa"


def test_natural_key() -> None:
    groups = [str(i) for i in (100, 10, 2, 1, 0, 11)] + ["b10", "b9", "a"]
    assert sorted(groups, key=natural_key) == ["0", "1", "2", "10", "11", "100", "a", "b9",
                                               "b10"]


def test_fit_columns_drops_by_priority_and_shrinks_names() -> None:
    names = [f"block.{i}.attention.output.dense.weight" for i in range(12)]
    cols = [Column("layer", names, shrink=True), Column("best", ["t"] * 12, priority=0),
            Column("extra", ["x" * 30] * 12, priority=5)]
    assert [c.header for c in fit_columns(cols, None)] == ["layer", "best", "extra"]
    narrow = fit_columns(cols, 40)
    assert [c.header for c in narrow] == ["layer", "best"]
    lines = plain_lines(narrow)
    assert max(map(len, lines)) <= 40 and len({ln.split()[0] for ln in lines[1:]}) == 12


# ----------------------------------------------------------------------------- options, help
def test_version_and_help_descriptions() -> None:
    from weightstats import __version__

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"weightstats {__version__}"
    text = CliRunner().invoke(cli, ["--help"]).output
    commands = text.split("Commands:")[1]
    assert "..." not in commands  # whole descriptions, not cut at ~45 characters
    assert "write a\n" in commands or "write a report" in commands


def test_help_and_version_import_no_numerics() -> None:
    code = ("import sys, runpy; sys.argv = ['weightstats', '--help']\n"
            "try:\n    runpy.run_module('weightstats', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'scipy', 'pandas', 'numpy', 'rich') "
            "if m in sys.modules))")
    for flag in ("--help", "--version"):
        proc = subprocess.run([sys.executable, "-c", code.replace("--help", flag)],
                              capture_output=True, text=True, timeout=120)
        assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr


def test_compare_help_states_its_default_folder() -> None:
    text = CliRunner().invoke(cli, ["compare", "--help"]).output
    assert "reports/compare-" in text
    for flag in ("-o, --out", "-j, --jobs", "-f, --families", "-k, --kinds", "-q, --quiet"):
        assert flag in text
    for command in ("sweep", "latent"):
        sub = CliRunner().invoke(cli, [command, "--help"]).output
        assert "-o, --out" in sub and "-f, --families" in sub


@pytest.mark.parametrize(("args", "needle"), [
    (["--seed", "-1"], "--seed must be at least 0"),
    (["--format", "png", "--no-plots"], "--no-plots"),
])
def test_usage_errors_exit_2_in_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["fit", "digits-vae", "-o", str(tmp_path / "r"), *args])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- list, names
def test_list_shows_weight_tags_in_natural_order() -> None:
    result = CliRunner().invoke(cli, ["list", "resnet*"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    names = [ln.split()[0] for ln in lines]
    assert names.index("resnet18") < names.index("resnet50") < names.index("resnet101")
    resnet50 = lines[names.index("resnet50")]
    assert "IMAGENET1K_V1" in resnet50 and "IMAGENET1K_V2 (default)" in resnet50
    assert resnet50.rstrip().endswith("none")
    vae = CliRunner().invoke(cli, ["list", "digits-vae"]).output
    assert vae.startswith("digits-vae") and "none" in vae
    every = CliRunner().invoke(cli, ["list"]).output.splitlines()
    assert [ln.split()[0] for ln in every[:2]] == ["digits-resnet", "digits-vae"]  # built-ins


def test_list_says_when_nothing_matches() -> None:
    result = CliRunner().invoke(cli, ["list", "zzz*"])
    assert result.exit_code == 0
    assert "no model names match 'zzz*'" in result.output and "timm:*" in result.output


def test_unknown_name_suggests_the_hub() -> None:
    result = CliRunner().invoke(cli, ["fit", "gpt2"])
    assert result.exit_code == 2
    assert "hf:gpt2" in result.output and len(result.output.strip().splitlines()) == 1


def test_module_name_for_layers_suggests_its_weight(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "vae.safetensors"
    rng = np.random.default_rng(0)
    save_file({"encoder.conv1.weight": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
               "encoder.conv1.bias": np.zeros(8, np.float32),
               "encoder.conv2.weight": rng.standard_normal((8, 8, 3, 3)).astype(np.float32)},
              str(path))
    result = CliRunner().invoke(cli, ["fit", str(path), "--layers", "encoder.conv1", *FAST])
    assert result.exit_code == 2
    assert "did you mean --layers encoder.conv1.weight?" in result.output
    result = CliRunner().invoke(cli, ["fit", str(path), "--layers", "encoder", *FAST])
    assert "'encoder.*' (encoder.conv1.weight, encoder.conv2.weight)" in result.output


# ----------------------------------------------------------------------------- compare
def test_compare_folder_name_is_capped_and_hashed() -> None:
    short = compare_folder_name(["a", "b:x"])
    assert short == "compare-a-vs-b-x"
    many = [f"seq:{i}" for i in range(150)]
    name = compare_folder_name(many)
    assert len(name.encode()) <= MAX_FOLDER_NAME and re.search(r"-[0-9a-f]{12}$", name)
    assert name != compare_folder_name(many[:-1])


def test_compare_of_many_groups_writes_a_natural_order(tmp_path: Path, monkeypatch) -> None:
    """One model of 40 top-level modules (an nn.Sequential's 0 ... 39): the default folder
    name would be ~500 characters."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    save_file({f"{i}.weight": rng.standard_normal((4, 8)).astype(np.float32)
               for i in range(40)}, str(tmp_path / "seq.safetensors"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["compare", "seq.safetensors", *FAST, "--format", "csv",
                                      "-f", "normal,laplace"])
    assert result.exit_code == 0, result.output
    (folder,) = os.listdir(tmp_path / "reports")
    assert len(folder) <= MAX_FOLDER_NAME
    models = (tmp_path / "reports" / folder / "models.csv").read_text().splitlines()[1:]
    groups = [int(m.split(",")[0].split(":")[1]) for m in models]
    assert groups == list(range(40))


# ----------------------------------------------------------------------------- exit
def test_program_exit_skips_the_torch_teardown(monkeypatch, capsys) -> None:
    """Run as the program, main ends the process right after flushing (Python's teardown of
    torch takes seconds); called from Python it raises SystemExit as before."""
    import torch  # noqa: F401  (the teardown in question)

    import weightstats.cli as cli_module

    class Ended(Exception):
        pass

    def fake_exit(code: int) -> None:
        raise Ended(code)

    monkeypatch.setattr(cli_module.os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["weightstats", "--version"])
    with pytest.raises(Ended) as ended:
        cli_module.main()
    assert ended.value.args == (0,) and "weightstats" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        cli_module.main(["--version"])
    assert exited.value.code == 0


def test_every_silent_wait_shows_a_status(llm_file: Path, tmp_path: Path, monkeypatch) -> None:
    """On a terminal: a spinner while starting (imports, checks), the bar from resolving the
    model on, a spinner while the report and its figures are written."""
    import contextlib

    import weightstats.cli as cli_module

    seen: list[tuple[str, bool]] = []
    bars: list[tuple[bool, str]] = []

    @contextlib.contextmanager
    def status(message: str, enabled: bool | None = None):
        seen.append((message, bool(enabled)))
        yield lambda text: None

    class progress:
        def __init__(self, enabled: bool, label: str) -> None:
            bars.append((enabled, label))

        def __enter__(self):
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(cli_module, "status", status)
    monkeypatch.setattr(cli_module, "_progress", progress)
    monkeypatch.setattr(cli_module, "_live", lambda quiet: not quiet)
    out = tmp_path / "r"
    result = CliRunner().invoke(cli, ["fit", str(llm_file), "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert seen == [("starting", True), (f"writing the report to {out}/", True)]
    assert bars == [(True, str(llm_file))]
    seen.clear()
    CliRunner().invoke(cli, ["fit", str(llm_file), "-q", "-o", str(tmp_path / "q"), *FAST])
    assert seen and not any(enabled for _, enabled in seen)
