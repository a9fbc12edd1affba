"""The command line's output read by another program: a reader that stops early
(`weightstats fit m | head`) must not cost the report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def test_a_reader_that_goes_away_costs_no_report(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(2)
    model = tmp_path / "m.safetensors"
    save_file({f"block.{i}.weight": rng.standard_normal((16, 16)).astype(np.float32)
               for i in range(3)}, str(model))
    out = tmp_path / "rep"
    proc = subprocess.Popen([sys.executable, "-m", "weightstats", "fit", str(model), "-o",
                             str(out), "--ks-sample", "300", "--ks-replicates", "19",
                             "--no-plots", "--format", "csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head -0`: every line the table prints meets a broken pipe
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert err == "" and (out / "layers.csv").is_file()
