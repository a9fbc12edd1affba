"""BatchNorm folding: the per-output-channel γ/σ signature, per tensor and per model."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from weightstats.fitting.folding import MIN_SD, folding_signature, folding_summary
from weightstats.fitting.heterogeneity import scale_heterogeneity


def conv(seed: int, shape: tuple[int, ...] = (64, 32, 3, 3)) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def folded(w: np.ndarray, seed: int, sd: float = 0.5, axis: int = 0) -> np.ndarray:
    """``w`` with each slice along ``axis`` multiplied by a log-normal γ/σ."""
    g = np.exp(sd * np.random.default_rng(seed + 1000).standard_normal(w.shape[axis]))
    shape = [1] * w.ndim
    shape[axis] = -1
    return (w * g.reshape(shape)).astype(np.float32)


def layer(name: str, w: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(name=name, shape=tuple(w.shape),
                           fit=SimpleNamespace(heterogeneity=scale_heterogeneity(w)))


@pytest.mark.parametrize("seed", range(5))
def test_iid_conv_has_no_signature(seed: int) -> None:
    assert folding_signature(scale_heterogeneity(conv(seed))) is None


@pytest.mark.parametrize("seed", range(5))
def test_folded_conv_has_the_signature_with_its_factor(seed: int) -> None:
    factor = folding_signature(scale_heterogeneity(folded(conv(seed), seed, sd=0.5)))
    assert factor is not None
    # The SD of the channels' log scales beyond noise estimates the folded log-normal's 0.5.
    assert 0.35 < math.log(factor) < 0.65, factor


def test_input_channel_scales_are_not_folding() -> None:
    """Folding multiplies output channels only: the same spread along inputs is not it."""
    het = scale_heterogeneity(folded(conv(3), 3, sd=0.5, axis=1))
    assert any(a["axis"] == "input channel" and a["differs"] for a in het["axes"])
    assert folding_signature(het) is None


def test_small_output_spread_is_not_folding() -> None:
    """Channel scales a few percent apart (trained, unfolded) stay below the effect size."""
    het = scale_heterogeneity(folded(conv(4, (256, 64, 3, 3)), 4, sd=0.06))
    assert folding_signature(het) is None
    assert MIN_SD > 0.06


def test_missing_or_empty_heterogeneity() -> None:
    assert folding_signature(None) is None
    assert folding_signature({"axes": []}) is None


def test_model_summary_says_folded_only_for_a_folded_model() -> None:
    plain = [layer(f"c{i}.weight", conv(i)) for i in range(4)]
    summary = folding_summary(plain)
    assert not summary["folded"] and summary["sentence"] == "" and summary["n_conv"] == 4
    bent = [layer(f"c{i}.weight", folded(conv(i), i, sd=0.6)) for i in range(4)]
    summary = folding_summary(bent)
    assert summary["folded"] and summary["n_signature"] == 4
    assert summary["sentence"].startswith("BatchNorm appears folded into these conv weights: "
                                          "in 4 of 4 convolutions")
    assert "(γ/σ)" not in summary["sentence"] and "γ/σ" in summary["sentence"]
    assert summary["sentence"].endswith("see --per-channel.")
    assert "removes them" in folding_summary(bent, per_channel=True)["sentence"]


def test_model_summary_needs_most_convolutions() -> None:
    """One folded-looking head among plain convolutions is not a folded model."""
    mixed = [layer(f"c{i}.weight", conv(i)) for i in range(5)]
    mixed += [layer("head.weight", folded(conv(9), 9, sd=0.8))]
    summary = folding_summary(mixed)
    assert summary["n_signature"] == 1 and not summary["folded"]
    assert list(summary["layers"]) == ["head.weight"]


def test_summary_md_states_the_folding(tmp_path) -> None:
    from weightstats.api import fit_model

    state = {f"c{i}.weight": folded(conv(i), i, sd=0.6) for i in range(4)}
    out = fit_model(state, ks_sample=300, ks_replicates=19).save(tmp_path / "r", formats=("md",))
    text = (out / "summary.md").read_text()
    assert "BatchNorm appears folded into these conv weights: in 4 of 4 convolutions" in text
    plain = {f"c{i}.weight": conv(i) for i in range(4)}
    out = fit_model(plain, ks_sample=300, ks_replicates=19).save(tmp_path / "p", formats=("md",))
    assert "BatchNorm" not in (out / "summary.md").read_text()


def test_cli_prints_the_folding_sentence(tmp_path) -> None:
    from click.testing import CliRunner
    from safetensors.numpy import save_file

    from weightstats.cli import cli

    path = tmp_path / "folded.safetensors"
    save_file({f"c{i}.weight": folded(conv(i), i, sd=0.6) for i in range(4)}, str(path))
    result = CliRunner().invoke(cli, ["fit", str(path), "--out", str(tmp_path / "r"),
                                      "--no-plots", "--ks-sample", "300",
                                      "--ks-replicates", "19"])
    assert result.exit_code == 0, result.output
    assert "BatchNorm appears folded into these conv weights" in " ".join(result.output.split())
