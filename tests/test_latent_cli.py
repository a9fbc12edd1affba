"""``weightstats latent``: the built-in digits-vae end to end, a tiny diffusers AutoencoderKL
from a hand-built Hugging Face cache (offline), the report files, and the error paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hubcache import COMMIT, make_snapshot

from weightstats.cli import cli

REPO = "tiny-org/tiny-vae"
FAST = ["--ks-replicates", "200"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("weightstats: error: "), result.stderr
    return lines[0]


def cache_vae(cache: Path, repo: str = REPO, **config) -> None:
    """A tiny random AutoencoderKL saved into models--ORG--REPO/snapshots/<commit>/."""
    import torch
    from diffusers import AutoencoderKL

    snap = make_snapshot(cache, repo)
    torch.manual_seed(0)
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16),
                        layers_per_block=1, latent_channels=4, norm_num_groups=8,
                        sample_size=16, **config)
    vae.save_pretrained(snap)


def make_images(folder: Path, n: int = 6) -> Path:
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):  # different sizes and modes: resized, cropped, converted to RGB
        size = (24 + 4 * i, 20 + 2 * i)
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).convert("L" if i == 0 else "RGB").save(folder / f"img{i}.png")
    return folder


def test_diffusers_vae_offline_reports_per_channel_scales(hub_cache: Path, tmp_path: Path) -> None:
    cache_vae(hub_cache, scaling_factor=0.5, shift_factor=0.1)
    images = make_images(tmp_path / "images")
    out = tmp_path / "report"
    result = invoke("latent", f"hf:{REPO}", "--data", str(images), "--out", str(out),
                    "--no-plots", *FAST)
    assert result.exit_code == 0, result.output
    scaling = pd.read_csv(out / "scaling.csv")
    assert len(scaling) == 4 and set(scaling["channel"]) == {0, 1, 2, 3}
    assert np.allclose(scaling["implied_scale"], 1 / scaling["std"])
    assert np.allclose(scaling["scaled_std"], 0.5 * scaling["std"])
    report = json.loads((out / "report.json").read_text())
    s = report["scaling"]
    assert s["config"]["scaling_factor"] == 0.5 and s["config"]["shift_factor"] == 0.1
    pooled = np.sqrt(np.mean(scaling["std"] ** 2 + (scaling["mean"] - scaling["mean"].mean()) ** 2))
    assert s["implied_scaling_factor"] == pytest.approx(1 / pooled)
    assert s["implied_shift_factor"] == pytest.approx(scaling["mean"].mean())
    # 6 images of 16x16 -> 8x8 latents: one row per latent position, 4 channels.
    assert report["unit"] == "channel" and report["n_inputs"] == 6 and report["n_rows"] == 384
    assert "implied scaling factor" in report["answer"] and "vs config 0.5" in report["answer"]
    assert any("positions of one image are not independent" in n for n in report["notes"])


def test_diffusers_pipeline_repo_finds_its_vae_folder(hub_cache: Path, tmp_path: Path) -> None:
    cache_vae(hub_cache, repo="tiny-org/pipe")
    snap = hub_cache / "models--tiny-org--pipe" / "snapshots" / COMMIT
    (snap / "vae").mkdir()
    for f in list(snap.iterdir()):
        if f.is_file():
            f.rename(snap / "vae" / f.name)
    from weightstats.latent.encoders import load_diffusers

    enc = load_diffusers("hf:tiny-org/pipe")
    assert enc.image_size == 16 and enc.scaling["scaling_factor"] == pytest.approx(0.18215)


def test_latent_error_paths(hub_cache: Path, tmp_path: Path) -> None:
    cache_vae(hub_cache)
    line = one_error_line(invoke("latent", f"hf:{REPO}"))
    assert "needs data: pass --data FOLDER" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    assert "holds no images" in one_error_line(invoke("latent", f"hf:{REPO}", "--data", str(empty)))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG but not really")
    line = one_error_line(invoke("latent", f"hf:{REPO}", "--data", str(bad)))
    assert "cannot read image broken.png" in line
    line = one_error_line(invoke("latent", f"hf:{REPO}", "--data", str(tmp_path / "nowhere")))
    assert "no such folder" in line
    line = one_error_line(invoke("latent", "digits-resnet"))
    assert "has no encoder" in line
    line = one_error_line(invoke("latent", "hf:nobody/not-cached", "--data", str(bad)))
    assert "not in the Hugging Face cache" in line
    assert "--samples must be at least 1" in one_error_line(invoke("latent", "digits-vae",
                                                                    "--samples", "0"))
    for folder in (empty, bad):  # nothing written where the run failed
        assert sorted(p.name for p in folder.iterdir()) in (["notes.txt"], ["broken.png"])


def test_digits_vae_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "digits"
    result = invoke("latent", "digits-vae", "--out", str(out), "--format", "csv,md,json",
                    "--no-plots", *FAST)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n_inputs"] == 359 and report["unit"] == "dimension"
    dims = pd.read_csv(out / "dimensions.csv")
    assert len(dims) == 16
    active = dims["active"].sum()
    assert 4 <= active < 16  # trained: some dimensions used, some collapsed
    assert (dims.loc[~dims["active"], "fit_z"] == "collapsed: not fitted").all()
    assert dims.loc[dims["active"], "best_z"].notna().all()
    answer = report["answer"]
    assert answer.startswith(f"The aggregate posterior of digits-vae is not N(0, I): {active} "
                             "of 16 dimensions active")
    assert answer in (out / "summary.md").read_text()
    tests = pd.read_csv(out / "tests.csv").set_index("test")
    assert tests.loc["henze_zirkler", "pvalue"] < 0.05  # the trained latent is not normal
    assert set(tests.index) >= {"mardia_skewness", "mardia_kurtosis", "sphere_bingham"}
    assert (out / ".weightstats-report").is_file()


def test_report_with_figures_and_html(tmp_path: Path) -> None:
    import math

    import torch

    from weightstats.latent import fit_latents

    x = np.random.default_rng(0).standard_normal((200, 3))
    rep = fit_latents(lambda t: (0.8 * t, torch.full_like(t, math.log(0.36))), x, samples=2,
                      ks_replicates=200)
    path = rep.save(tmp_path / "r")
    figs = sorted(p.name for p in (path / "figures").iterdir())
    assert figs == ["active_units.png", "channel_std.png", "hist_dims.png", "qq_dims.png",
                    "scatter_top2.png"]
    html = (path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and 'src="http' not in html  # self-contained
    from weightstats.text import html_text

    assert f'<p class="answer">{html_text(rep.summary().text)}</p>' in html
    assert "of encoder is consistent with N(0, I)" in rep.summary().text  # a lambda's name
    again = rep.save(tmp_path / "r")  # replacing its own report is fine, bytes identical
    assert (again / "report.json").read_bytes() == (path / "report.json").read_bytes()


def test_digits_vae_reads_a_folder_of_grey_images(tmp_path: Path) -> None:
    # The held-out digits written as 8x8 PNGs (levels k/16 -> round(255 k/16)) and read back
    # through --data give the same latent as the built-in split, to the 8-bit rounding.
    from PIL import Image

    from weightstats.latent import fit_latents
    from weightstats.latent.data import digits_heldout

    x, _ = digits_heldout()
    folder = tmp_path / "digits"
    folder.mkdir()
    for i in range(60):
        Image.fromarray(np.round(x[i, 0].numpy() * 255).astype(np.uint8)).save(
            folder / f"{i:03d}.png")
    from_folder = fit_latents("digits-vae", folder, samples=1, ks_replicates=200)
    from weightstats.models.digits import load_pretrained

    module = load_pretrained("digits-vae")  # the module itself, not its spec
    built_in = fit_latents(module, x[:60].numpy(), samples=1, ks_replicates=200)
    assert from_folder.n_inputs == 60 and "scaled to [0, 1]" in from_folder.data
    assert np.allclose(from_folder.posterior.mu, built_in.posterior.mu, atol=0.02)
    assert fit_latents(module, samples=1, ks_replicates=200).n_inputs == 359  # default data
