"""Command line: outputs, option validation, exit codes, interrupts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from weightstats.cli import cli

FAST = ["--ks-sample", "300", "--ks-replicates", "19"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small .safetensors state dict: two conv layers, one linear, a bias."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(11)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_file({
        "features.conv1.weight": (0.1 * rng.standard_normal((8, 3, 3, 3))).astype(np.float32),
        "features.conv2.weight": (0.05 * rng.laplace(size=(16, 8, 3, 3))).astype(np.float32),
        "head.fc.weight": (0.02 * rng.standard_t(3, size=(10, 64))).astype(np.float32),
        "head.fc.bias": np.zeros(10, np.float32),
    }, str(path))
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a subprocess (exit codes, stderr as a user sees it)."""
    return subprocess.run([sys.executable, "-m", "weightstats", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("weightstats: error: ")
    return lines[0]


def test_fit_writes_report_files(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    result = CliRunner().invoke(cli, ["fit", str(model_file), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert "fits best (BIC)" in result.output
    assert "features.conv2.weight" in result.output and "ex. kurt" in result.output
    assert f"report written to {out}" in result.output
    assert {"layers.csv", "layers_wide.csv", "layers.md", "summary.md", "report.json",
            "report.html", "figures", "comparisons.csv", ".weightstats-report"} == set(os.listdir(out))


def test_fit_default_out_and_format_option(model_file: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["fit", str(model_file), "--format", "csv,json",
                                      "--no-plots", *FAST], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert set(os.listdir(tmp_path / "reports" / "tiny")) == {
        "layers.csv", "layers_wide.csv", "comparisons.csv", "report.json", ".weightstats-report"}
    assert os.listdir(tmp_path / "reports") == ["tiny"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--families", "normal,cauchy"], "valid families: normal,laplace,t,gennorm"),
        (["--kinds", "conv,attn"], "valid kinds"),
        (["--format", "csv,pdf"], "valid formats"),
        (["--ks-sample", "0"], "--ks-sample"),
        (["--ks-sample", "-5"], "--ks-sample"),
        (["--ks-replicates", "0"], "--ks-replicates"),
        (["--jobs", "0"], "--jobs"),
        (["--bogus"], "No such option"),
    ],
)
def test_bad_options_exit_2_with_one_line(model_file: Path, args: list[str],
                                          needle: str) -> None:
    result = CliRunner().invoke(cli, ["fit", str(model_file), *args])
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stderr)
    assert needle in line


def test_unknown_family_subprocess_exit_2(model_file: Path) -> None:
    proc = run_cli("fit", str(model_file), "--families", "normal,cauchy")
    assert proc.returncode == 2
    assert "cauchy" in one_error_line(proc.stderr)


def test_missing_spec_and_out_over_file_exit_2(model_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["fit", str(tmp_path / "nope.safetensors")])
    assert result.exit_code == 2
    one_error_line(result.stderr)
    (tmp_path / "afile").write_text("x")
    result = CliRunner().invoke(cli, ["fit", str(model_file), "--out", str(tmp_path / "afile"),
                                      "--no-plots", *FAST])
    assert result.exit_code == 2
    assert "a file of that name exists" in one_error_line(result.stderr)


def test_no_selectable_layers_names_kinds(model_file: Path) -> None:
    result = CliRunner().invoke(cli, ["fit", str(model_file), "--kinds", "embedding"])
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "--kinds" in line and "conv" in line


def test_list_resnet() -> None:
    result = CliRunner().invoke(cli, ["list", "resnet*"])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines()]  # then the weight tags
    assert "resnet18" in names and "resnet50" in names
    assert all(n.lower().startswith("resnet") for n in names)


def test_help_via_python_m() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0 and "fit" in proc.stdout and "compare" in proc.stdout


def test_compare_two_specs(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = CliRunner().invoke(cli, ["compare", str(model_file), str(model_file),
                                      "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert "tiny-2" in result.output
    assert {"models.csv", "layers.csv", "summary.md", "report.json", "report.html",
            "compare.png", "paired_layers.png", ".weightstats-report"} == set(os.listdir(out))


def test_compare_one_spec_uses_groups(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = CliRunner().invoke(cli, ["compare", str(model_file), "--out", str(out),
                                      "--no-plots", *FAST])
    assert result.exit_code == 0, result.output
    assert "tiny:features" in result.output and "tiny:head" in result.output


def test_sigterm_is_handled_like_ctrl_c(model_file: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The entry point installs a SIGTERM handler: exit 130, no report, no temp dir.

    Runs ``main`` in this process (a subprocess would spend seconds importing torch) and puts
    the previous SIGTERM handler back afterwards.
    """
    import weightstats.fitting as fitting
    from weightstats.cli import main

    real = fitting.fit_tensor
    calls: list[int] = []

    def fit_tensor(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    def not_installed(signum: int, frame: object) -> None:
        # Reached only if main() did not install its handler: fail the test, don't kill pytest.
        raise RuntimeError("main() installed no SIGTERM handler")

    monkeypatch.setattr(fitting, "fit_tensor", fit_tensor)
    previous = signal.signal(signal.SIGTERM, not_installed)
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", str(model_file), "--out", str(tmp_path / "rep"), *FAST])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted; no report written" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def _raise_on_second_layer(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    import weightstats.fitting as fitting

    real = fitting.fit_tensor
    calls: list[int] = []

    def fit_tensor(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(fitting, "fit_tensor", fit_tensor)


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        (KeyboardInterrupt(), 130, "interrupted; no report written"),
        (ZeroDivisionError("boom"), 1, "ZeroDivisionError: boom (rerun with --debug"),
    ],
)
def test_interrupt_and_crash_exit_codes(model_file: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, exc: BaseException,
                                        code: int, needle: str) -> None:
    _raise_on_second_layer(monkeypatch, exc)
    result = CliRunner().invoke(cli, ["fit", str(model_file), "--out", str(tmp_path / "rep"),
                                      *FAST])
    assert result.exit_code == code, result.output
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len([ln for ln in result.stderr.splitlines() if ln.strip()]) == 1
    assert os.listdir(tmp_path) == []  # no report, no temp dir


def test_debug_shows_traceback(model_file: Path, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    _raise_on_second_layer(monkeypatch, ZeroDivisionError("boom"))
    result = CliRunner().invoke(cli, ["fit", str(model_file), "--debug", "--out",
                                      str(tmp_path / "rep"), *FAST])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr
