"""weightstats sweep without a cluster: spec expansion, names, run keys, options, markers, the
zoo tables' determinism, and a scheduler address where nothing answers (exit 2, one line)."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weightstats.errors import OptionError, SpecError, WeightstatsError
from weightstats.sweep import check_sweep_options
from weightstats.sweep.plan import expand_all, plan_items, read_spec_file, run_key, unique_name
from weightstats.sweep.resume import read_done, write_marker
from weightstats.sweep.tables import layers_frame, models_frame, roundtrip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _checked(specs, **kw):
    base = {"fit_options": {}, "formats": ["csv"], "plots": False, "split_above": 0,
            "out": None}
    return check_sweep_options(specs, **{**base, **kw})


def test_registry_wildcards_expand_and_keep_a_weights_tag() -> None:
    assert expand_all(["digits-*"]) == ["digits-resnet", "digits-vae"]
    assert expand_all(["digits-*:none", "digits-vae"]) == [
        "digits-resnet:none", "digits-vae:none", "digits-vae"]
    # Duplicates are dropped, first occurrence kept.
    assert expand_all(["digits-vae", "digits-*"]) == ["digits-vae", "digits-resnet"]


def test_path_wildcards_expand_through_the_filesystem(tmp_path: Path) -> None:
    for name in ("b.safetensors", "a.safetensors", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = expand_all([str(tmp_path / "*.safetensors")])
    assert found == [str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")]


def test_a_wildcard_matching_nothing_is_a_one_line_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no model names .* match 'nosuchmodel\\*'"):
        expand_all(["nosuchmodel*"])
    with pytest.raises(SpecError, match="no files match"):
        expand_all([str(tmp_path / "*.safetensors")])


def test_spec_file_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    f = tmp_path / "specs.txt"
    f.write_text("# zoo\n\ndigits-vae\n  digits-resnet:none  \n#digits-resnet\n")
    assert read_spec_file(f) == ["digits-vae", "digits-resnet:none"]
    with pytest.raises(SpecError, match="--from .*missing"):
        read_spec_file(tmp_path / "missing")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SpecError, match="not a text file"):
        read_spec_file(tmp_path / "bin")


def test_names_are_unique_and_never_the_zoo_folder() -> None:
    items = plan_items(["a/m.pt", "b/m.pt", "zoo.pt", "M"], ["m", "m", "zoo", "M"], {}, "1")
    assert [it.name for it in items] == ["m", "m-2", "zoo-2", "M-3"]
    taken: set[str] = set()
    assert [unique_name("x", taken) for _ in range(3)] == ["x", "x-2", "x-3"]


def test_run_key_changes_with_options_and_version_not_with_the_folder() -> None:
    key = run_key("/data/a/m.safetensors", {"seed": 0}, "0.1.0")
    assert key == run_key("/elsewhere/m.safetensors", {"seed": 0}, "0.1.0")
    assert key != run_key("/data/a/m.safetensors", {"seed": 1}, "0.1.0")
    assert key != run_key("/data/a/m.safetensors", {"seed": 0}, "0.2.0")


def test_options_are_checked_before_any_cluster_starts(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="--workers"):
        _checked(["digits-vae"], fit_options={"jobs": 2})
    with pytest.raises(OptionError, match="ks_sample|ks-sample"):
        _checked(["digits-vae"], fit_options={"ks_sample": 1})
    with pytest.raises(OptionError, match="as text"):
        _checked([object()])
    report = tmp_path / "rep"
    report.mkdir()
    (report / ".weightstats-report").write_bytes(
        __import__("weightstats.report.atomic", fromlist=["x"]).MARKER_TEXT)
    with pytest.raises(WeightstatsError, match="itself a weightstats report"):
        _checked(["digits-vae"], out=report)
    names, opt, fmts, split = _checked(["digits-vae"], split_above=5e3)
    assert names == ["digits-vae"] and split == 5000 and fmts == ("csv",)


def _record(model: str, value: float) -> dict:
    head = {"model": model, "spec": model, "source": "s", "model_params": 10,
            "model_dtype": "float32"}
    return roundtrip({"layers": [{**head, "layer": "w", "family": "normal", "ks_stat": value,
                                  "n": 100, "flags": None}],
                      "model": {**head, "n_layers": 1, "median_t_df": math.nan}})


def test_zoo_tables_do_not_depend_on_the_order_models_finish() -> None:
    from weightstats.report.text import to_csv_text

    recs = [_record("b", 0.1 + 0.2), _record("a", 1 / 3), _record("c", float("nan"))]
    one = to_csv_text(layers_frame(recs)) + to_csv_text(models_frame(recs))
    two = to_csv_text(layers_frame(recs[::-1])) + to_csv_text(models_frame(recs[1:] + recs[:1]))
    assert one == two
    frame = layers_frame(recs)
    assert list(frame["model"]) == ["a", "b", "c"]
    assert frame["ks_stat"].iloc[1] == 0.1 + 0.2  # repr precision survives the record


def test_marker_round_trip_needs_the_same_key_and_the_report_folder(tmp_path: Path) -> None:
    from weightstats.report.atomic import MARKER, MARKER_TEXT

    rec = _record("m", 0.5)
    write_marker(tmp_path, "m", "k1", "m", rec)
    assert read_done(tmp_path, "m", "k1") is None  # no report folder yet
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / MARKER).write_bytes(MARKER_TEXT)
    got = read_done(tmp_path, "m", "k1")
    assert got is not None and list(got["layers"][0]) == list(rec["layers"][0])
    pd.testing.assert_frame_equal(layers_frame([got]), layers_frame([rec]))
    assert read_done(tmp_path, "m", "other-options") is None
    path = tmp_path / ".sweep" / "done" / "m.json"
    path.write_text("{not json")
    assert read_done(tmp_path, "m", "k1") is None
    assert json.loads(json.dumps(np.float64(1.0).item())) == 1.0


def test_sweep_is_callable_from_the_package_whatever_was_imported() -> None:
    import weightstats
    import weightstats.sweep.tasks  # noqa: F401  (makes weightstats.sweep the package)

    assert callable(weightstats.sweep)
    assert "sweep" in weightstats.__all__


def test_a_dead_scheduler_address_is_one_line_and_exit_2(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    # The timeout is a hang guard, not a timing assertion: the connect timeout is 5 s.
    proc = subprocess.run([sys.executable, "-m", "weightstats", "sweep", "digits-vae",
                           "--scheduler", address, "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot reach a Dask scheduler at" in lines[0] and address in lines[0]
    assert not (tmp_path / "o").exists()


def test_workers_and_scheduler_together_are_refused() -> None:
    from weightstats.sweep.cluster import sweep_client

    with pytest.raises(OptionError, match="one of them"):
        with sweep_client(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass


def test_a_replaced_weights_file_gets_a_new_run_key(tmp_path: Path) -> None:
    import os

    from weightstats.sources import resolve
    from weightstats.sweep.plan import file_stamp

    path = tmp_path / "m.npy"
    np.save(path, np.zeros((4, 4), np.float32))
    first = plan_items([str(path)], ["m"], {}, "1", [file_stamp(resolve(str(path)))])[0]
    np.save(path, np.ones((8, 8), np.float32))
    os.utime(path, ns=(1, 1))
    second = plan_items([str(path)], ["m"], {}, "1", [file_stamp(resolve(str(path)))])[0]
    assert first.key != second.key
    assert file_stamp(resolve("digits-vae")) == ""


def test_parquet_bytes_do_not_depend_on_the_order_models_finish() -> None:
    from weightstats.sweep.tables import parquet_bytes

    recs = [_record("b", 0.25), _record("a", float("inf")), _record("c", float("nan"))]
    one = parquet_bytes(layers_frame(recs))
    assert one == parquet_bytes(layers_frame(recs[::-1]))
    back = pd.read_parquet(__import__("io").BytesIO(one))
    assert list(back["model"]) == ["a", "b", "c"] and math.isinf(back["ks_stat"].iloc[0])


def test_a_foreign_zoo_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "notes.txt").write_text("mine")
    with pytest.raises(WeightstatsError, match="not a weightstats report"):
        _checked(["digits-vae"], out=tmp_path)
    assert (tmp_path / "zoo" / "notes.txt").read_text() == "mine"
