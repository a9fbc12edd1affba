"""Reproducible reports (issue 16): the README's first command must rewrite the committed reports
byte for byte on any machine. The numbers in CSV and JSON are written at a fixed precision
(``SIGNIFICANT_DIGITS``), so the last-bit differences between CPUs and BLAS/libm builds do not reach
the files; Markdown tables show 4 significant digits.

The first test regenerates the text files of the README's two models as ``weightstats fit`` (and
scripts/make_reports.sh) writes them and compares them with reports/. When it fails after a change
to the report code, regenerate the committed reports: ``bash scripts/make_reports.sh``.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weightstats.api import fit_model
from weightstats.report import ModelReport
from weightstats.report.text import SIGNIFICANT_DIGITS

ROOT = Path(__file__).resolve().parents[1]
# Every text file of a report (report.html and the PNG figures depend on matplotlib's and the
# fonts' versions and are not compared here).
TEXT_FILES = ("layers.csv", "layers_wide.csv", "comparisons.csv", "layers.md", "summary.md",
              "report.json")


@pytest.fixture(scope="module", params=["digits-vae", "digits-resnet"])
def fresh(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[str, ModelReport, Path]:
    """The README's first command, ``weightstats fit digits-vae digits-resnet``, as the library
    runs it (the CLI's defaults are fit_model's), text files only."""
    name = request.param
    report = fit_model(name)
    out = report.save(tmp_path_factory.mktemp("fresh") / name, ("csv", "md", "json"),
                      plots=False)
    return name, report, out


def test_a_fresh_run_gives_the_committed_reports_byte_for_byte(fresh) -> None:
    name, _, out = fresh
    committed = ROOT / "reports" / name
    for file in TEXT_FILES:
        assert (committed / file).is_file(), (
            f"reports/{name}/{file} is missing: regenerate with bash scripts/make_reports.sh")
        assert (out / file).read_bytes() == (committed / file).read_bytes(), (
            f"reports/{name}/{file} differs from a fresh run: the committed reports are stale "
            "(regenerate with bash scripts/make_reports.sh) or the numbers are not reproducible")


def _nudged(value: Any) -> Any:
    """Every non-zero float moved by one unit in the last place: the size of the differences
    between two machines' libm/BLAS results."""
    if isinstance(value, dict):
        return {k: _nudged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nudged(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_nudged(v) for v in value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return np.where(value != 0, np.nextafter(value, np.inf), value)
    if isinstance(value, float) and value != 0 and math.isfinite(value):
        return float(np.nextafter(value, math.inf))
    return value


def test_last_bit_differences_do_not_reach_the_files(fresh, tmp_path: Path) -> None:
    """Another machine, simulated: every float of every fit one ulp off gives the same bytes
    (with floats written in full, 17 digits, every file but the Markdown changed)."""
    name, report, out = fresh
    other = copy.deepcopy(report)
    for lr in other.layers:
        fit = lr.fit
        fit.rows = _nudged(fit.rows)
        fit.comparison_rows = _nudged(fit.comparison_rows)
        fit.descriptives = _nudged(fit.descriptives)
        fit.verdict = _nudged(fit.verdict)
        if fit.histogram is not None:
            fit.histogram = (fit.histogram[0], _nudged(fit.histogram[1]))
    assert other.layers[0].fit.rows[0]["loglik"] != report.layers[0].fit.rows[0]["loglik"]
    again = other.save(tmp_path / name, ("csv", "md", "json"), plots=False)
    for file in TEXT_FILES:
        assert (again / file).read_bytes() == (out / file).read_bytes(), file


def test_the_precision_is_stated_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"{SIGNIFICANT_DIGITS} significant digits" in readme
