"""weightstats sweep on real Dask clusters (offline): a LocalCluster shared by the tests, and a
separately started ``dask scheduler`` + ``dask worker`` (subprocesses on free ports).

Checked: the same per-layer numbers as ``fit_model`` for every model (whole-model and
per-tensor tasks), byte-identical zoo tables across runs and across 2 and 1 workers, a failing
model in failures.csv with exit code 3, a worker killed mid-sweep (nothing lost, nothing
duplicated), and Ctrl-C then a rerun that resumes to the same tables.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
# One LocalCluster and one reference sweep serve every test here: under `pytest -n 2
# --dist loadgroup` they stay on one xdist worker instead of each worker starting its own.
pytestmark = pytest.mark.xdist_group("sweep-cluster")

from weightstats.report.text import to_csv_text  # noqa: E402

BUILTIN = ["digits-resnet", "digits-vae", "digits-resnet:none", "digits-vae:none"]
SPLIT_ABOVE = 500_000  # digits-vae (531 k weights) and resnet18:none run one task per tensor
TABLES = ("layers.csv", "layers.parquet", "models.csv", "failures.csv", "summary.md")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_model(path: Path, seed: int, df: float) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    save_file({"features.0.weight": (rng.standard_t(df, (32, 16, 3, 3)) * 0.05).astype(np.float32),
               "features.1.weight": (rng.standard_normal((64, 32, 3, 3)) * 0.02).astype(np.float32),
               "head.weight": (rng.laplace(0, 0.01, (10, 256))).astype(np.float32)}, str(path))


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("zoo-files")
    _write_model(folder / "gen-a.safetensors", 1, 4.0)
    _write_model(folder / "gen-b.safetensors", 2, 30.0)
    (folder / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    return {"a": str(folder / "gen-a.safetensors"), "b": str(folder / "gen-b.safetensors"),
            "broken": str(folder / "broken.safetensors")}


@pytest.fixture(scope="module")
def client():
    """One LocalCluster for the module: two single-threaded worker processes."""
    import dask
    from distributed import Client, LocalCluster

    from weightstats.sweep.cluster import WORKER_ENVIRON

    with dask.config.set(WORKER_ENVIRON):  # as `weightstats sweep` starts its own
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=50)
    dask_client = Client(cluster, set_as_default=False)
    yield dask_client
    dask_client.close()
    cluster.close()


@pytest.fixture(scope="module")
def specs(zoo_files: dict[str, str]) -> list[str]:
    return [*BUILTIN, "resnet18:none", zoo_files["a"], zoo_files["b"], zoo_files["broken"]]


@pytest.fixture(scope="module")
def first_run(client, specs: list[str], tmp_path_factory: pytest.TempPathFactory):
    """The reference sweep: 2 workers, 8 specs (one broken)."""
    import weightstats

    out = tmp_path_factory.mktemp("run-a") / "out"
    table = weightstats.sweep(specs, client=client, out=out, formats=("csv", "json"),
                              plots=True, split_above=SPLIT_ABOVE)
    return out, table


def _tables(out: Path) -> dict[str, bytes]:
    return {name: (out / "zoo" / name).read_bytes() for name in TABLES}


def _reference_table(spec: str) -> str:
    """``fit_model``'s tidy table as CSV text (run on the cluster's warm workers: the same
    code gives the same bytes in any process, and the references fit in parallel)."""
    from weightstats.api import fit_model

    return to_csv_text(fit_model(spec).table())


def test_every_model_has_fit_models_numbers(first_run, specs: list[str], client) -> None:
    out, table = first_run
    assert client.status == "running"  # a caller's client is not closed
    models = pd.DataFrame(table.attrs["models"])
    names = ["digits-resnet", "digits-vae", "digits-resnet-none", "digits-vae-none",
             "resnet18-none", "gen-a", "gen-b"]
    assert sorted(models["model"]) == sorted(names)
    expected = client.gather(client.map(_reference_table, specs[:-1], pure=False))
    for name, text in zip(names, expected, strict=True):
        # The model's own report folder holds exactly what `weightstats fit` writes ...
        assert (out / name / "layers.csv").read_text() == text, name
        # ... and the zoo rows are those numbers with the model's columns in front.
        columns = text.split("\n", 1)[0].split(",")
        rows = table[table["model"] == name][columns].reset_index(drop=True)
        assert to_csv_text(rows) == text, name
        assert rows.duplicated(["layer", "family"]).sum() == 0
    row = models.set_index("model").loc["resnet18-none"]
    # Every floating-point value stored: 11,689,512 parameters + 9,600 BatchNorm statistics.
    assert row["model_params"] == 11_699_112 and row["model_dtype"] == "float32"
    assert set(table["spec"]) >= {"gen-a.safetensors", "resnet18:none"}  # no local folders


def test_failing_model_is_listed_and_the_rest_complete(first_run) -> None:
    out, table = first_run
    failures = pd.DataFrame(table.attrs["failures"])
    assert list(failures["model"]) == ["broken"]
    assert "\n" not in failures["error"].iloc[0] and failures["error"].iloc[0]
    lines = (out / "zoo" / "failures.csv").read_text().splitlines()
    assert lines[0] == "model,spec,error" and lines[1].startswith("broken,broken.safetensors,")
    assert not (out / "broken").exists()


def test_zoo_outputs_are_complete_and_self_contained(first_run) -> None:
    from weightstats.fitting.families import DEFAULT_FAMILIES

    out, table = first_run
    zoo = out / "zoo"
    parquet = pd.read_parquet(zoo / "layers.parquet")
    assert len(parquet) == len(table) and list(parquet.columns) == list(table.columns)
    models = pd.read_csv(zoo / "models.csv")
    for fam in DEFAULT_FAMILIES:
        assert f"bic_weight_share_{fam}" in models.columns
    html = (zoo / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 and "src=\"http" not in html
    assert "resnet18-none" in (zoo / "summary.md").read_text()
    assert len(table.merge(table.head(3))) >= 3  # attrs hold plain records: pandas compares them


def test_external_scheduler_one_worker_gives_identical_tables(
        first_run, specs: list[str], tmp_path: Path) -> None:
    """`dask scheduler` + one `dask worker` started apart, used by address (the CLI's
    --scheduler is the same argument; its exit codes are checked below)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    sched = subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port),
                              "--dashboard-address", ":0", "--no-show"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                               "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                              cwd=tmp_path)  # another folder than the client's
    try:
        _wait_for_workers(address, 1)
        out = tmp_path / "out"
        chosen = [s for s in specs if s != "resnet18:none"]  # 6 models + a broken file
        import weightstats

        table = weightstats.sweep(chosen, scheduler=address, out=out, formats=("csv", "json"),
                                  plots=False, split_above=SPLIT_ABOVE)
    finally:
        for p in (worker, sched):
            p.terminate()
        for p in (worker, sched):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    assert [f["model"] for f in table.attrs["failures"]] == ["broken"]
    reference = first_run[1]
    kept = reference[reference["model"] != "resnet18-none"].reset_index(drop=True)
    assert (out / "zoo" / "layers.csv").read_text() == to_csv_text(kept)
    assert (out / "zoo" / "failures.csv").read_bytes() == (
        first_run[0] / "zoo" / "failures.csv").read_bytes()
    models = (first_run[0] / "zoo" / "models.csv").read_text().splitlines()
    assert (out / "zoo" / "models.csv").read_text().splitlines() == [
        line for line in models if not line.startswith("resnet18-none,")]
    for name in ("digits-vae", "digits-resnet", "gen-a"):
        assert ((out / name / "report.json").read_bytes()
                == (first_run[0] / name / "report.json").read_bytes())


def _wait_for_workers(address: str, n: int) -> None:
    from distributed import Client

    deadline = time.monotonic() + 120  # a hang guard: workers import torch on a busy machine
    while True:
        try:
            with Client(address, timeout=5, set_as_default=False) as c:
                c.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise


def test_a_worker_killed_mid_sweep_loses_and_duplicates_nothing(
        client, first_run, zoo_files, tmp_path: Path) -> None:
    import weightstats

    flag = tmp_path / "kill-once"
    flag.write_text("")

    def arm(flag: str = str(flag)) -> None:
        # On the workers: the first fit that removes the flag file kills its own process.
        import weightstats.fitting as fitting

        original = getattr(fitting, "_sweep_test_original", fitting.fit_tensor)
        fitting._sweep_test_original = original

        def fit_tensor(*args, **kwargs):
            try:
                os.unlink(flag)
            except FileNotFoundError:
                return original(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        fitting.fit_tensor = fit_tensor

    def disarm() -> None:
        import weightstats.fitting as fitting

        if hasattr(fitting, "_sweep_test_original"):
            fitting.fit_tensor = fitting._sweep_test_original

    chosen = ["digits-vae", "digits-resnet:none", zoo_files["a"]]
    client.run(arm)
    try:
        out = tmp_path / "out"
        table = weightstats.sweep(chosen, client=client, out=out, formats=("csv",),
                                  plots=False, split_above=SPLIT_ABOVE)
    finally:
        client.run(disarm)
    assert not flag.exists()  # a worker did kill itself in the middle of a fit
    assert table.attrs["failures"] == []
    reference = first_run[1]
    names = sorted(m["model"] for m in table.attrs["models"])
    assert names == ["digits-resnet-none", "digits-vae", "gen-a"]
    expected = reference[reference["model"].isin(names)].reset_index(drop=True)
    assert to_csv_text(table) == to_csv_text(expected)
    assert (out / "zoo" / "layers.csv").read_text() == to_csv_text(expected)
    assert sorted(p.name for p in (out / ".sweep" / "done").iterdir()) == [
        f"{n}.json" for n in names]


def test_interrupt_then_rerun_resumes_to_the_same_tables_exit_3(client, first_run, zoo_files,
                                                         tmp_path: Path) -> None:
    chosen = [*BUILTIN, zoo_files["a"], zoo_files["b"], zoo_files["broken"]]
    out = tmp_path / "out"
    address = client.scheduler.address
    cmd = [sys.executable, "-m", "weightstats", "sweep", *chosen, "--scheduler", address,
           "--out", str(out), "--format", "csv,json", "--split-above", str(SPLIT_ABOVE),
           "--no-plots"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = out / ".sweep" / "done"
    deadline = time.monotonic() + 300  # hang guard
    while not (done.is_dir() and any(done.glob("*.json"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert not (out / "zoo").exists()  # the tables are written only by a finished sweep
    finished = {p.name for p in done.glob("*.json")}
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 3, rerun.stderr  # partial: the broken file failed
    assert "1 of 7 models failed" in rerun.stderr
    assert (out / "zoo" / "failures.csv").read_bytes() == (
        first_run[0] / "zoo" / "failures.csv").read_bytes()
    skipped = int(rerun.stdout.rsplit("(", 1)[1].split(" already")[0])
    assert 1 <= len(finished) <= skipped <= 6  # tasks running at the interrupt may finish
    reference = first_run[1]
    names = sorted(m["model"] for m in reference.attrs["models"])
    names = [n for n in names if n not in ("resnet18-none",)]
    expected = reference[reference["model"].isin(names)].reset_index(drop=True)
    assert (out / "zoo" / "layers.csv").read_text() == to_csv_text(expected)
