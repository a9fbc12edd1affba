"""Built-in digits models: shipped weights, recorded metrics, deterministic build and training."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from weightstats.errors import LoadError, SpecError
from weightstats.models import BUILTIN_MODELS, build_model, load_pretrained, training_info
from weightstats.models import digits as digits_mod

pytest.importorskip("sklearn")
from weightstats.models import train  # noqa: E402  (needs scikit-learn)

NAMES = sorted(BUILTIN_MODELS)


@pytest.fixture(scope="module")
def split() -> tuple[torch.Tensor, ...]:
    return train.load_split()


def _weights_file(name: str) -> Path:
    return Path(str(digits_mod._data_file(f"{name}.safetensors")))


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_load_and_match_record(name: str) -> None:
    model = load_pretrained(name)
    info = training_info(name)
    assert not model.training
    assert info["model"] == name
    assert info["param_count"] == sum(p.numel() for p in model.parameters())
    path = _weights_file(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"]
    assert path.stat().st_size < 4 * 2**20
    # Trained weights must differ from the deterministic untrained twin.
    fresh = build_model(name)
    w_trained = dict(model.named_parameters())
    assert any(not torch.equal(p, w_trained[k]) for k, p in fresh.named_parameters())


def test_resnet_test_accuracy_matches_record(split) -> None:
    _, _, x_te, y_te = split
    info = training_info("digits-resnet")
    assert info["test_size"] == len(y_te)
    acc = train.resnet_accuracy(load_pretrained("digits-resnet"), x_te, y_te)
    assert acc >= 0.9
    # Counts, not floats: a thread-count change may move logits by ulps, never a whole image.
    assert round(acc * len(y_te)) == round(info["test_metrics"]["accuracy"] * len(y_te))
    assert train.resnet_accuracy(build_model("digits-resnet"), x_te, y_te) < 0.5


def test_vae_elbo_much_better_than_untrained(split) -> None:
    _, _, x_te, _ = split
    trained = train.vae_metrics(load_pretrained("digits-vae"), x_te)
    untrained = train.vae_metrics(build_model("digits-vae"), x_te)
    recorded = training_info("digits-vae")["test_metrics"]
    assert trained["elbo_nats"] == pytest.approx(recorded["elbo_nats"], abs=0.05)
    assert trained["elbo_nats"] > untrained["elbo_nats"] + 50.0
    assert trained["recon_mse_per_pixel"] < 0.5 * untrained["recon_mse_per_pixel"]
    # Guards against posterior collapse, which would leave the encoder effectively untrained.
    assert trained["kl_nats"] > 5.0
    assert trained["active_latent_dims"] >= 4


@pytest.mark.parametrize("name", NAMES)
def test_build_model_deterministic_and_leaves_global_rng(name: str) -> None:
    state = torch.random.get_rng_state()
    a, b = build_model(name, seed=3), build_model(name, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    assert not a.training
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    sc = build_model(name, seed=4).state_dict()
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def test_vae_keys_grouped_by_encoder_decoder() -> None:
    keys = list(load_pretrained("digits-vae").state_dict())
    assert all(k.startswith(("encoder.", "decoder.")) for k in keys)
    assert any(k.startswith("encoder.") for k in keys)
    assert any(k.startswith("decoder.") for k in keys)
    assert {"encoder.fc_mu.weight", "encoder.fc_logvar.weight"} <= set(keys)


@pytest.mark.parametrize("name", NAMES)
def test_tensor_sizes_are_fit_worthy(name: str) -> None:
    model = build_model(name)
    weights = [p for p in model.parameters() if p.dim() >= 2]
    assert len(weights) >= 10
    assert max(p.numel() for p in weights) <= 150_000
    assert sum(p.numel() >= 2000 for p in weights) >= 8


@pytest.mark.parametrize("func", [build_model, load_pretrained, training_info])
def test_unknown_name_raises_spec_error(func) -> None:
    with pytest.raises(SpecError) as err:
        func("digits-nope")
    msg = str(err.value)
    assert "\n" not in msg
    assert all(name in msg for name in NAMES)


def test_missing_weights_raise_load_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(digits_mod, "_data_file", lambda filename: tmp_path / filename)
    with pytest.raises(LoadError, match=r"python -m weightstats\.models\.train") as err:
        load_pretrained("digits-resnet")
    assert "\n" not in str(err.value)
    with pytest.raises(LoadError):
        training_info("digits-vae")


def test_corrupt_weights_raise_load_error(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "digits-vae.safetensors").write_bytes(b"not a safetensors file")
    monkeypatch.setattr(digits_mod, "_data_file", lambda filename: tmp_path / filename)
    with pytest.raises(LoadError):
        load_pretrained("digits-vae")


@pytest.mark.parametrize("name", NAMES)
def test_training_is_deterministic_smoke(name: str) -> None:
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    runs = [train.train_model(name, epochs=1, n_train=96, seed=5)[0].state_dict() for _ in "ab"]
    assert torch.get_num_threads() == threads  # settings restored
    assert torch.are_deterministic_algorithms_enabled() == det
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    init = build_model(name, seed=5).state_dict()
    assert any(not torch.equal(init[k], runs[0][k]) for k in init)


def test_cli_writes_byte_identical_files(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        rc = train.main(["--model", "digits-vae", "--epochs", "1", "--out", str(tmp_path / sub)])
        assert rc == 0
    a = (tmp_path / "a" / "digits-vae.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "digits-vae.safetensors").read_bytes()
    info = json.loads((tmp_path / "a" / "digits-vae.json").read_text())
    assert info["sha256"] == hashlib.sha256(a).hexdigest()
    assert info["epochs"] == 1 and info["train_size"] + info["test_size"] == 1797
    assert "--epochs 1" in info["command"]
    drift = info["relative_change_from_init"]
    assert "decoder.deconv1.weight" in drift and all(v > 0 for v in drift.values())
    model = build_model("digits-vae")
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(tmp_path / "a" / "digits-vae.safetensors")))
