"""Ranking families by AIC/BIC: ties to rounding go to the simpler family, failed fits rank last."""

from __future__ import annotations

import math

from weightstats.fitting.result import ranked


def _row(name: str, bic: float, k: int) -> dict:
    return {"family": name, "bic": bic, "n_params": k}


def test_a_tie_to_rounding_goes_to_the_simpler_family_then_the_first_fitted():
    # A one-component scale mixture is the Gaussian itself: its likelihood may come out a hair
    # higher from the optimizer's last bits, which must not make it the verdict.
    rows = [_row("mixture", -1000.0 - 1e-10, 3), _row("gaussian", -1000.0, 2),
            _row("other", -1000.0, 2)]
    assert [r["family"] for r in ranked(rows, "bic")] == ["gaussian", "other", "mixture"]


def test_real_differences_and_failed_fits():
    rows = [_row("failed", math.nan, 2), _row("worse", -10.0, 2), _row("better", -11.0, 4)]
    assert [r["family"] for r in ranked(rows, "bic")] == ["better", "worse", "failed"]
