"""Bad inputs through the real command line (`.venv/bin/weightstats fit ...` in a subprocess).

Every user error: exit 2, exactly one line on stderr ("weightstats: error: ..."), no
traceback, no report directory and no temporary directory left behind. The error cases run
concurrently (each process pays the torch import) and are checked one by one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from sitehooks import marking_sitecustomize

EXE = Path(sys.executable).with_name("weightstats")
if not EXE.exists():  # pragma: no cover - the package is installed editable in the venv
    pytest.skip("weightstats console script not installed", allow_module_level=True)

FAST = ["--ks-sample", "500", "--ks-replicates", "99", "--no-plots"]
# Warnings stay on: a stray warning on stderr would break the one-line promise.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def run(args: list[str], cwd: Path, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**ENV, **kw.pop("env", {})}, **kw)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("robust_cli")
    torch.manual_seed(0)
    save_file({f"l{i}.weight": torch.randn(64, 64) for i in range(3)}, str(d / "small.safetensors"))
    save_file({"fc.bias": torch.randn(10), "fc2.bias": torch.randn(10)},
              str(d / "biases.safetensors"))
    (d / "corrupt.safetensors").write_bytes((10).to_bytes(8, "little") + b"{notjson!}")
    (d / "empty.pth").write_bytes(b"")
    (d / "garbage.onnx").write_bytes(b"this is not onnx\x00\xff" * 8)
    (d / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip" * 5)
    (d / "nodir").mkdir()
    (d / "nodir" / "notes.txt").write_text("no weights here")
    torch.save({"fc.weight": torch.randn(8, 8), "x": _Payload(d / "PAYLOAD_RAN")}, d / "evil.pt")
    (d / "afile").write_text("I am a file")
    return d


# name -> (args, regex on the one stderr line)
ERRORS: dict[str, tuple[list[str], str]] = {
    "empty-spec": (["fit", ""], "empty model spec"),
    "hf-colon": (["fit", "hf:"], "'hf:' names no repository: use hf:ORG/REPO"),
    "bad-tag": (["fit", "resnet50:NOPE"], "unknown weights tag 'NOPE' for resnet50"),
    "unknown-name": (["fit", "not-a-model-xyz"], "unknown model 'not-a-model-xyz'"),
    "missing-path": (["fit", "missing/x.pt"], "no such file"),
    "dir-no-weights": (["fit", "nodir"], "directory without a weights file"),
    "corrupt-safetensors": (["fit", "corrupt.safetensors"], "corrupt safetensors header"),
    "empty-file": (["fit", "empty.pth"], r"is empty \(0 bytes\)"),
    "garbage-onnx": (["fit", "garbage.onnx"], "not a readable ONNX model"),
    "garbage-npz": (["fit", "garbage.npz"], "not a readable .npz file"),
    "pickle": (["fit", "evil.pt"], "arbitrary Python objects.*--allow-pickle"),
    "only-biases": (["fit", "biases.safetensors"],
                    r"available kinds: bias \(2\); choose them with --kinds"),
    "neg-ks-sample": (["fit", "small.safetensors", "--ks-sample", "-5"],
                      "--ks-sample must be at least 10"),
    "unknown-family": (["fit", "small.safetensors", "--families", "normal,cauchy"],
                       "unknown family cauchy"),
    "zero-replicates": (["fit", "small.safetensors", "--ks-replicates", "0"],
                        "--ks-replicates must be at least 19"),
    "zero-jobs": (["fit", "small.safetensors", "--jobs", "0"], "--jobs must be at least 1"),
    "bad-format": (["fit", "small.safetensors", "--format", "pdf"], "unknown format pdf"),
    "bad-kind": (["fit", "small.safetensors", "--kinds", "foo"], "unknown kind foo"),
    "not-an-int": (["fit", "small.safetensors", "--ks-sample", "lots"], "--ks-sample"),
    "out-is-file": (["fit", "small.safetensors", "--out", "afile", *FAST],
                    "a file of that name exists"),
    "out-under-file": (["fit", "small.safetensors", "--out", "afile/rep", *FAST],
                       "afile is a file"),
}


@pytest.fixture(scope="module")
def error_runs(work: Path) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, args, work) for name, (args, _) in ERRORS.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_cli_user_errors(name: str, error_runs: dict, work: Path) -> None:
    import re

    res = error_runs[name]
    lines = res.stderr.splitlines()
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(lines) == 1 and lines[0].startswith("weightstats: error: "), res.stderr
    assert "Traceback" not in res.stderr
    assert re.search(ERRORS[name][1], lines[0]), lines[0]
    assert not (work / "reports").exists(), "a report directory was written for a failed run"
    assert not [p for p in work.iterdir() if p.name.startswith(".")], "temp dir left behind"
    if name == "pickle":
        assert not (work / "PAYLOAD_RAN").exists(), "the pickle payload ran"
    if name.startswith("out-"):
        assert (work / "afile").read_text() == "I am a file"


def test_cli_unwritable_out_dir(work: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a read-only directory is still writable")
        res = run(["fit", str(work / "small.safetensors"), "--out", str(locked / "rep"), *FAST],
                  tmp_path)
        assert res.returncode == 2 and "not writable" in res.stderr
        assert len(res.stderr.splitlines()) == 1
    finally:
        locked.chmod(0o700)


def test_cli_deterministic_outputs(work: Path, tmp_path: Path) -> None:
    args = ["fit", str(work / "small.safetensors"), *FAST, "--format", "csv,json"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.map(lambda out: run([*args, "--out", str(tmp_path / out)], tmp_path),
                        ["a", "b"])
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    for f in ("layers.csv", "report.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


# ----------------------------------------------------------------------------- signals
# Loaded into the CLI process via PYTHONPATH: touches a marker when the first layer fit starts,
# so the test signals a run that is really fitting (not still importing).
SITECUSTOMIZE = marking_sitecustomize("weightstats.fitting.fit", "fit_tensor",
                                      "WS_ROBUST_FIT_STARTED")


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("robust_sig")
    torch.manual_seed(1)
    p = d / "big.safetensors"
    save_file({f"block{i}.weight": torch.randn(256, 256) for i in range(12)}, str(p))
    return p


@pytest.mark.parametrize(("sig", "old_report"), [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGTERM-fresh", "SIGINT-over-old-report"])
def test_cli_interrupted_mid_fit(big_model: Path, tmp_path: Path, sig: int,
                                 old_report: bool) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    started = tmp_path / "FIT_STARTED"
    parent = tmp_path / "reports"
    parent.mkdir()
    out = parent / "big"
    if old_report:
        from weightstats.report.atomic import MARKER, MARKER_TEXT

        out.mkdir()
        (out / MARKER).write_bytes(MARKER_TEXT)  # a report folder: may be replaced
        (out / "layers.csv").write_text("old report\n")
    env = {**ENV, "PYTHONPATH": str(hook), "WS_ROBUST_FIT_STARTED": str(started)}
    proc = subprocess.Popen([str(EXE), "fit", str(big_model), "--out", str(out), "--no-plots"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # A shell would start a background job with SIGINT ignored.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not started.exists():
            assert proc.poll() is None, f"exited before fitting: {proc.communicate()}"
            assert time.monotonic() < deadline, "fitting never started"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, err)
    # click echoes a bare newline on KeyboardInterrupt (after "^C" in a terminal); allow it.
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["weightstats: interrupted; no report written"], err
    if old_report:
        assert sorted(p.name for p in parent.iterdir()) == ["big"]
        assert sorted(p.name for p in out.iterdir()) == [MARKER, "layers.csv"]
        assert (out / "layers.csv").read_text() == "old report\n"
    else:
        assert list(parent.iterdir()) == [], "partial report or temp dir left behind"
    shutil.rmtree(hook)
