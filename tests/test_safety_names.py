"""Hostile layer names and paths in every output, and one option validator before any work.

Layer names come from the weights file, so they are attacker-controlled: an escape sequence
must not reach the terminal, a ``|`` or backtick must not break layers.md, CSV must stay CSV,
HTML must stay inert, and report.json keeps the exact name. Paths must not leak folder names
into reports, and a report must not depend on how the path was typed. Options are checked in
one place, before any weights are read, with one-line errors.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from weightstats.api import fit_model
from weightstats.cli import cli, print_layer_table
from weightstats.errors import OptionError
from weightstats.fitting import fit_tensor
from weightstats.layers import select
from weightstats.report.model_report import scrub_paths
from weightstats.report.tables import to_json_text

FAST = {"ks_sample": 300, "ks_replicates": 19, "families": ("normal",)}
CLI_FAST = ["--ks-sample", "300", "--ks-replicates", "19", "--families", "normal"]

ESCAPE = "evil\x1b[2J\x1b]0;pwned\x07.weight"
HOSTILE = {
    ESCAPE: "escape sequences",
    "x[/].weight": "rich markup",
    "a|b`c`*d*<script>alert(1)</script>.weight": "markdown and html",
    "new\nline,\"quoted\".weight": "csv",
    "=cmd|' /C calc'!A0.weight": "spreadsheet formula",
    "rtl\u202eexe.txt.weight": "bidi override",
}
CONTROL = [chr(c) for c in range(32) if chr(c) not in "\n"] + ["\x7f", "\u202e", "\x9b"]


@pytest.fixture(scope="module")
def hostile_report():
    gen = torch.Generator().manual_seed(0)
    state = {name: torch.randn(20, 20, generator=gen) for name in HOSTILE}
    return fit_model(state, **FAST)


def no_control(text: str, allow_newline: bool = True) -> None:
    bad = [c for c in CONTROL if c in text]
    if not allow_newline and "\n" in text:
        bad.append("\n")
    assert not bad, f"raw control characters {bad!r} in output"


# ----------------------------------------------------------------------------- terminal
def test_terminal_table_shows_hostile_names_inert(hostile_report, capsys) -> None:
    print_layer_table(hostile_report)  # raised rich MarkupError on "x[/].weight"
    out = capsys.readouterr().out
    no_control(out)
    assert "x[/].weight" in out
    assert "\\x1b" in out and "pwned" in out  # shown, visibly escaped


def test_progress_bar_layer_names_are_not_markup(capsys, monkeypatch) -> None:
    from weightstats.cli import _progress

    monkeypatch.setenv("FORCE_COLOR", "1")  # render as on a terminal (the bar is off otherwise)
    with _progress(True, "m[/]") as on_layer:
        on_layer(1, 2, ESCAPE)
        on_layer(2, 2, "x[/].weight")  # rich renders the field as markup: MarkupError
    err = capsys.readouterr().err
    assert "x[/].weight" in err
    assert "\x1b[2J" not in err and "\x1b]0;pwned" not in err and "\x07" not in err


@pytest.fixture(scope="module")
def misfit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hostile name on a bimodal layer no family fits: the answer sentence names it."""
    gen = torch.Generator().manual_seed(0)
    two = torch.cat([torch.randn(400, generator=gen) * 0.1 - 1,
                     torch.randn(400, generator=gen) * 0.1 + 1]).reshape(20, 40)
    path = tmp_path_factory.mktemp("misfit") / "m.safetensors"
    save_file({"x[/]" + ESCAPE: two, "ok.weight": torch.randn(20, 40, generator=gen)}, str(path))
    return path


def test_answer_sentence_naming_layers_is_inert(misfit_file: Path, tmp_path: Path) -> None:
    args = ["fit", str(misfit_file), "--ks-sample", "500", "--ks-replicates", "199",
            "--families", "normal,laplace", "--no-plots", "--format", "md,csv,json",
            "--out", str(tmp_path / "r")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "No family fits" in res.stdout and "x[/]evil" in res.stdout  # printed, not markup
    no_control(res.stdout)
    for name in ("summary.md", "layers.md"):
        text = (tmp_path / "r" / name).read_text(encoding="utf-8")
        assert "No family fits" in text
        no_control(text)


def test_cli_errors_hide_control_characters_and_shorten_long_paths(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["fit", str(tmp_path / (ESCAPE + ".safetensors"))])
    assert res.exit_code == 2
    no_control(res.stderr.rstrip("\n"), allow_newline=False)
    for parts, problem in ((17, "no such file"), (30, "File name too long")):
        deep = str(tmp_path.joinpath(*["d" * 200] * parts, "model.safetensors"))  # 3,400, 6,000
        res = runner.invoke(cli, ["fit", deep])
        line = res.stderr.rstrip("\n")
        assert res.exit_code == 2 and "\n" not in line, (res.exit_code, line)
        assert len(line) < 600, len(line)
        assert "model.safetensors" in line and problem in line  # the end and the problem
    # one name longer than the file system allows (ENAMETOOLONG): a user error, not a crash
    res = runner.invoke(cli, ["fit", str(tmp_path / ("e" * 3000) / "model.safetensors")])
    line = res.stderr.rstrip("\n")
    assert res.exit_code == 2 and "\n" not in line and len(line) < 600, (res.exit_code, line)


# ----------------------------------------------------------------------------- files
def test_report_files_keep_names_inert_and_json_exact(hostile_report, tmp_path: Path) -> None:
    out = hostile_report.save(tmp_path / "rep", ["csv", "md", "json", "html"], plots=False)
    for name in ("layers.md", "summary.md", "report.html", "layers.csv", "layers_wide.csv",
                 "comparisons.csv"):
        no_control((out / name).read_text(encoding="utf-8"))
    wide = list(csv.DictReader(io.StringIO((out / "layers_wide.csv").read_text(encoding="utf-8"))))
    assert len(wide) == len(HOSTILE) and not any(r["layer"][:1] in "=+-@" for r in wide)
    # JSON: the exact names, valid JSON
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [lay["name"] for lay in data["layers"]] == list(HOSTILE)
    # CSV: one row per layer, every field intact, no formula cell
    rows = list(csv.DictReader(io.StringIO((out / "layers.csv").read_text(encoding="utf-8"))))
    assert len(rows) == len(HOSTILE)
    assert not any(r["layer"][:1] in "=+-@" for r in rows)
    assert any("\\x1b" in r["layer"] for r in rows)
    # Markdown: every table row has the header's number of unescaped pipes
    md = (out / "layers.md").read_text(encoding="utf-8")
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(table) == 2 + len(HOSTILE)
    pipes = {len([i for i, c in enumerate(ln) if c == "|" and ln[i - 1] != "\\"]) for ln in table}
    assert len(pipes) == 1, pipes
    assert "<script>" not in md and "`c`" not in md
    html_text = (out / "report.html").read_text(encoding="utf-8")
    # The page has its own inline script; the name's must stay text.
    assert "<script>alert" not in html_text and "&lt;script&gt;" in html_text


def test_figures_draw_hostile_names_without_control_glyphs() -> None:
    """A control character in a title made matplotlib warn "Glyph 27 (\x1b) missing" on
    stderr: the raw escape reached the terminal, and the one-line promise broke."""
    import warnings

    from weightstats.report import figures
    from weightstats.report.compare import compare_figure, split_groups

    gen = torch.Generator().manual_seed(7)
    state = {f"{g}.{name}": torch.randn(20, 20, generator=gen)
             for g in ("enc\x1b[1m", "dec\x07") for name in (ESCAPE, "a$\\foo{$.weight")}
    rep = fit_model(state, **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(list(figures.render_all(rep))) >= 2
        figures.to_png(compare_figure(split_groups(rep)))
    glyphs = [str(w.message) for w in caught if "Glyph" in str(w.message)]
    assert not glyphs, glyphs[:2]


def test_hostile_group_names_in_summary_markdown(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(1)
    state = {f"{g}.fc.weight": torch.randn(20, 20, generator=gen)
             for g in ("enc`|<b>x</b>", "dec\x1b[31m")}
    rep = fit_model(state, **FAST)
    out = rep.save(tmp_path / "rep", ["md", "html"], plots=False)
    md = (out / "summary.md").read_text(encoding="utf-8")
    no_control(md)
    assert "<b>" not in md and "enc`|" not in md


def test_compare_of_hostile_groups_stays_inert(tmp_path: Path, capsys) -> None:
    from weightstats.report.compare import save_compare, split_groups

    gen = torch.Generator().manual_seed(6)
    state = {f"{g}.fc.weight": torch.randn(20, 20, generator=gen)
             for g in ("enc[/]`|<i>", "dec\x1b]0;pwned\x07")}
    parts = split_groups(fit_model(state, **FAST))
    out = save_compare(parts, tmp_path / "cmp", ["csv", "md", "html", "json"], plots=False)
    for name in ("summary.md", "report.html", "models.csv", "layers.csv"):
        no_control((out / name).read_text(encoding="utf-8"))
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "<i>" not in md and "`|" not in md
    assert "<i>" not in (out / "report.html").read_text(encoding="utf-8")


def test_cli_compare_prints_hostile_group_names_inert(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(8)
    path = tmp_path / "m.safetensors"
    save_file({f"{g}.fc.weight": torch.randn(20, 20, generator=gen)
               for g in ("enc[/]", "dec\x1b]0;pwned\x07")}, str(path))
    res = CliRunner().invoke(cli, ["compare", str(path), *CLI_FAST, "--no-plots", "--format",
                                   "md", "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output  # was a rich MarkupError on "enc[/]"
    assert "enc[/]" in res.stdout and "\\x1b]0;pwned" in res.stdout
    no_control(res.stdout)


# ----------------------------------------------------------------------------- paths
def test_scrub_paths_with_spaces_and_drives() -> None:
    text = scrub_paths("local file /home/alice/Secret Project/my models/m.safetensors (sharded)")
    assert "alice" not in text and "Secret" not in text and "models" not in text
    assert "m.safetensors" in text and "(sharded)" in text
    text = scrub_paths(r"local file C:\Users\Bob Smith\Desktop\w.pt")
    assert "Bob" not in text and "Users" not in text and "w.pt" in text
    cache = "/root/.cache/huggingface/hub/models--org--repo/snapshots/abc123/model.safetensors"
    assert scrub_paths(f"failed to load from {cache} (bad)") == \
        "failed to load from model.safetensors (bad)"
    assert scrub_paths("Hugging Face hub timm/resnet50.a1_in1k model.safetensors") == \
        "Hugging Face hub timm/resnet50.a1_in1k model.safetensors"


@pytest.fixture(scope="module")
def spaced_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paths")
    folder = root / "Secret Project" / "my models"
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(2)
    save_file({"fc.weight": torch.randn(20, 20, generator=gen)}, str(folder / "m.safetensors"))
    return folder / "m.safetensors"


def test_absolute_path_with_spaces_leaks_nothing(spaced_model: Path, tmp_path: Path) -> None:
    rep = fit_model(str(spaced_model), **FAST)
    out = rep.save(tmp_path / "rep", ["md", "json", "html", "csv"], plots=False)
    for name in ("report.json", "summary.md", "report.html", "layers.md", "layers.csv"):
        text = (out / name).read_text(encoding="utf-8")
        for secret in ("Secret", "Project", "my models", str(spaced_model.parent.parent.parent)):
            assert secret not in text, (name, secret)


def test_report_does_not_depend_on_how_the_path_was_typed(spaced_model: Path,
                                                          monkeypatch) -> None:
    root = spaced_model.parent.parent.parent
    monkeypatch.chdir(root)
    typed = [str(spaced_model), "Secret Project/my models/m.safetensors",
             "./Secret Project/../Secret Project/my models/m.safetensors", spaced_model]
    texts = {to_json_text(fit_model(spec, **FAST).to_dict()) for spec in typed}
    assert len(texts) == 1
    monkeypatch.chdir(spaced_model.parent)
    assert to_json_text(fit_model("m.safetensors", **FAST).to_dict()) in texts
    # a folder spec: the same whichever way it is typed
    monkeypatch.chdir(root)
    folders = {to_json_text(fit_model(spec, **FAST).to_dict())
               for spec in ("Secret Project/my models", str(spaced_model.parent) + os.sep)}
    assert len(folders) == 1
    assert "Secret" not in folders.pop()


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"jobs": "2"}, "jobs must be a whole number"),
        ({"jobs": 100000}, "jobs must be at most"),
        ({"ks_sample": 10.5}, "ks-sample must be a whole number"),
        ({"ks_replicates": 10**12}, "ks-replicates must be at most"),
        ({"min_size": True}, "min-size must be a whole number"),
        ({"families": 3}, "famil"),
        ({"layers": 5}, "layers"),
        ({"per_channel": "no"}, "per-channel must be True or False"),
    ],
)
def test_fit_model_checks_every_option_before_loading(kw: dict, match: str) -> None:
    # The spec does not exist: an option error must come first (nothing is resolved or read).
    with pytest.raises(OptionError, match=match) as err:
        fit_model("no/such/dir/model.safetensors", **{**FAST, **kw})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("x", "kw", "match"),
    [
        ([[1.0, 2.0], [3.0]], {}, "rectangular"),
        (np.ones((4, 40)), {"per_channel": True, "channel_axis": 5}, "channel_axis"),
        (np.ones(40), {"seed": -1}, "seed"),
        (np.ones(40), {"seed": 1.5}, "seed must be a whole number"),
        (np.ones(40), {"seed": "1"}, "seed must be a whole number"),
        (np.ones(40), {"bins": 10**9}, "bins must be at most"),
        (np.ones(40), {"ks_sample": 2**70}, "ks_sample must be at most"),
        (np.ones(40), {"ks_replicates": 99.5}, "ks_replicates must be a whole number"),
        (np.ones(40), {"families": 7}, "famil"),
        (np.ones(40), {"per_channel": "yes"}, "per_channel must be True or False"),
    ],
)
def test_fit_tensor_bad_arguments_are_option_errors(x, kw: dict, match: str) -> None:
    with pytest.raises(OptionError, match=match) as err:
        fit_tensor(x, **{**FAST, **kw})
    assert "\n" not in str(err.value)


def test_whole_floats_and_numpy_integers_are_accepted() -> None:
    x = np.random.default_rng(0).normal(size=200)
    a = fit_tensor(x, **{**FAST, "ks_sample": 300.0, "seed": np.int64(4)})
    b = fit_tensor(x, **{**FAST, "seed": 4})
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize("families", ["Gaussian,student-t", ("norm", "T"), "gaussian , t"])
def test_family_aliases_accepted_by_library_and_cli(families, tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(3)
    state = {"fc.weight": torch.randn(20, 20, generator=gen)}
    rep = fit_model(state, **{**FAST, "families": families})
    assert rep.families == ("normal", "t")
    assert fit_tensor(state["fc.weight"], **{**FAST, "families": families}).ok


def test_cli_accepts_aliases_and_rejects_bad_options_before_loading(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"fc.weight": torch.randn(20, 20)}, str(path))
    runner = CliRunner()
    res = runner.invoke(cli, ["fit", str(path), *CLI_FAST[:4], "--families", "Gaussian,student-t",
                              "--no-plots", "--format", "json", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    fams = json.loads((tmp_path / "r" / "report.json").read_text())["families"]
    assert fams == ["normal", "t"]
    missing = str(tmp_path / "missing.safetensors")
    for args, needle in ((["--seed", "-1"], "--seed must be at least 0"),
                         (["--jobs", "100000"], "--jobs must be at most"),
                         (["--layers", "re:("], "invalid regular expression"),
                         (["--kinds", "all"], "no such file")):
        res = runner.invoke(cli, ["fit", missing, *args])
        assert res.exit_code == 2, (args, res.output)
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, lines)


def test_one_validator_one_answer() -> None:
    """fit_tensor, fit_model, select and the CLI agree on what is valid."""
    gen = torch.Generator().manual_seed(5)
    state = {"fc.weight": torch.randn(20, 20, generator=gen)}
    for bad in ({"families": "normal,cauchy"}, {"ks_sample": 9}, {"ks_replicates": 18}):
        with pytest.raises(OptionError):
            fit_model(state, **{**FAST, **bad})
        with pytest.raises(OptionError):
            fit_tensor(state["fc.weight"], **{**FAST, **bad})
    with pytest.raises(OptionError, match="min-size|min_size"):
        list(select([], min_size=-1))
    assert fit_model(state, **{**FAST, "kinds": "all"}).layers
    assert fit_model(state, **{**FAST, "kinds": "Linear"}).layers
    # One family named twice is fitted once (the lists are deduplicated, in the given order).
    assert fit_model(state, **{**FAST, "families": "normal,Gaussian"}).families == ("normal",)
