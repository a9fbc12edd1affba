"""Two small networks trained on scikit-learn's 8x8 ``load_digits`` images.

They are the offline default of the command line tool: real trained weights that ship with
the package (``weightstats/data/<name>.safetensors``), so the main command works without a
download. The trained weights are produced by ``python -m weightstats.models.train``.

Public API: :data:`BUILTIN_MODELS`, :func:`build_model`, :func:`load_pretrained`,
:func:`training_info`.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from weightstats.errors import LoadError, SpecError

__all__ = ["BUILTIN_MODELS", "build_model", "load_pretrained", "training_info"]

BUILTIN_MODELS: dict[str, str] = {
    "digits-resnet": "small ResNet (32/64/128 wide, 5 BasicBlocks, BatchNorm) classifying 8x8 "
    "scikit-learn digits",
    "digits-vae": "small convolutional VAE (16-d latent, Gaussian pixels) on 8x8 scikit-learn "
    "digits; top-level encoder/decoder",
}

LATENT_DIM = 16
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_REGENERATE = "python -m weightstats.models.train"


# --------------------------------------------------------------------------------------------
# ResNet
# --------------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """ResNet v1 basic block: two 3x3 convs with BatchNorm, identity or 1x1 projection shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        # bias=False: BatchNorm's shift makes a conv bias redundant (standard ResNet practice).
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class DigitsResNet(nn.Module):
    """ResNet for 1x8x8 inputs: 8x8 (32 ch) -> 4x4 (64 ch) -> 2x2 (128 ch) -> GAP -> 10 logits.

    No max-pool after the stem: the images are already tiny, so the stem keeps 8x8.
    """

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128), num_classes: int = 10) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.conv1 = nn.Conv2d(1, w1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w1)
        self.layer1 = nn.Sequential(BasicBlock(w1, w1), BasicBlock(w1, w1))
        self.layer2 = nn.Sequential(BasicBlock(w1, w2, stride=2), BasicBlock(w2, w2))
        self.layer3 = nn.Sequential(BasicBlock(w2, w3, stride=2))
        self.fc = nn.Linear(w3, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # He init as in torchvision's ResNet; PyTorch's default is a scaled uniform,
                # which would make the untrained baseline's weight histogram flat.
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# --------------------------------------------------------------------------------------------
# VAE
# --------------------------------------------------------------------------------------------
class DigitsEncoder(nn.Module):
    """q(z|x): 1x8x8 -> 32x8x8 -> 64x4x4 -> 128x2x2 -> 256 -> (mu, logvar)."""

    def __init__(self, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, stride=2, padding=1)
        self.fc = nn.Linear(128 * 2 * 2, 256)
        self.fc_mu = nn.Linear(256, latent_dim)
        self.fc_logvar = nn.Linear(256, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        h = F.relu(self.conv3(h))
        h = F.relu(self.fc(torch.flatten(h, 1)))
        return self.fc_mu(h), self.fc_logvar(h)


class DigitsDecoder(nn.Module):
    """p(x|z): z -> 256 -> 128x2x2 -> 64x4x4 -> 32x8x8 -> 1x8x8 pixel means, plus one noise scale.

    ``log_sigma`` is the log standard deviation of the Gaussian pixel noise, shared by all
    pixels and learned by maximum likelihood (initialised at sigma = 0.1: starting at 1 lets
    the noise explain everything and the posterior collapses before the decoder learns).
    """

    def __init__(self, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        self.fc1 = nn.Linear(latent_dim, 256)
        self.fc2 = nn.Linear(256, 128 * 2 * 2)
        self.deconv1 = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1)
        self.deconv2 = nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)
        self.conv_out = nn.Conv2d(32, 1, 3, padding=1)
        # Shape (1,), not a 0-d scalar, so every tool that reads the state dict sees a vector.
        self.log_sigma = nn.Parameter(torch.full((1,), math.log(0.1)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc1(z))
        h = F.relu(self.fc2(h)).view(-1, 128, 2, 2)
        h = F.relu(self.deconv1(h))
        h = F.relu(self.deconv2(h))
        return self.conv_out(h)


class DigitsVAE(nn.Module):
    """Convolutional VAE: Gaussian posterior, Gaussian pixel likelihood with learned scale.

    The digits' grey levels are 17 values 0, 1/16, ..., 1. For a proper likelihood they are
    dequantised with uniform noise of one level's width, so the ELBO on the continuous [0, 1]
    scale plus ``64 * log(1/16)`` is a lower bound on the log-probability of the discrete image.
    """

    def __init__(self, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = DigitsEncoder(latent_dim)
        self.decoder = DigitsDecoder(latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructed pixel means; decodes the posterior mean so eval output is deterministic."""
        mu, _ = self.encoder(x)
        return self.decoder(mu)

    def elbo(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        n_samples: int = 1,
        dequantize: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-image ELBO in nats (continuous density on the [0, 1] pixel scale).

        Parameters
        ----------
        x : torch.Tensor
            Images, shape (N, 1, 8, 8), grey levels k/16 in [0, 1].
        generator : torch.Generator, optional
            Source of all noise (latent samples and dequantisation); pass one for reproducibility.
        n_samples : int
            Monte-Carlo samples averaged per image.
        dequantize : bool
            Add U(-1/32, 1/32) to the pixels (one grey level wide) before scoring them.

        Returns
        -------
        elbo, recon_nll, kl : torch.Tensor
            Each of shape (N,): ``elbo = -(recon_nll + kl)``.
        """
        mu, logvar = self.encoder(x)
        std = torch.exp(0.5 * logvar)
        log_sigma = self.decoder.log_sigma
        nll = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for _ in range(n_samples):
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
            mean = self.decoder(mu + std * eps)
            target = x
            if dequantize:
                u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                target = x + (u - 0.5) / 16.0
            z2 = ((target - mean) / log_sigma.exp()).pow(2)
            nll = nll + (0.5 * z2 + log_sigma + _HALF_LOG_2PI).flatten(1).sum(1)
        nll = nll / n_samples
        # Closed-form KL(N(mu, sigma^2) || N(0, 1)), summed over latent dimensions.
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return -(nll + kl), nll, kl


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
_FACTORIES: dict[str, type[nn.Module]] = {"digits-resnet": DigitsResNet, "digits-vae": DigitsVAE}


def _check_name(name: str) -> None:
    if name not in BUILTIN_MODELS:
        valid = ", ".join(sorted(BUILTIN_MODELS))
        raise SpecError(f"unknown built-in model {name!r}; valid names: {valid}")


def build_model(name: str, seed: int = 0) -> nn.Module:
    """Build an untrained built-in model with a deterministic initialisation.

    Parameters
    ----------
    name : str
        One of :data:`BUILTIN_MODELS`.
    seed : int
        Seed of the initialisation; the global torch RNG state is left untouched.

    Returns
    -------
    torch.nn.Module
        The model in eval mode (float32, CPU).

    Raises
    ------
    SpecError
        If ``name`` is not a built-in model.
    """
    _check_name(name)
    # fork_rng restores the global RNG afterwards, so building a model never perturbs the
    # caller's random stream (and vice versa).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _FACTORIES[name]()
    return model.eval()


def _data_file(filename: str) -> resources.abc.Traversable:
    try:
        root = resources.files("weightstats")
    except OSError:
        # An editable install made while weightstats had no __init__.py registers it as a
        # namespace package, whose resource reader raises NotADirectoryError on Python 3.11.
        root = Path(__file__).resolve().parent.parent
    return root.joinpath("data").joinpath(filename)


def load_pretrained(name: str) -> nn.Module:
    """Build a built-in model and load its shipped trained weights.

    Parameters
    ----------
    name : str
        One of :data:`BUILTIN_MODELS`.

    Returns
    -------
    torch.nn.Module
        The trained model in eval mode.

    Raises
    ------
    SpecError
        If ``name`` is not a built-in model.
    LoadError
        If the weights file is missing or does not match the architecture.
    """
    _check_name(name)
    from safetensors.torch import load_file

    res = _data_file(f"{name}.safetensors")
    if not res.is_file():
        raise LoadError(
            f"built-in weights for {name!r} are missing (weightstats/data/{name}.safetensors); "
            f"regenerate them with `{_REGENERATE} --model {name}`"
        )
    model = build_model(name)
    with resources.as_file(res) as path:
        try:
            state = load_file(str(path))
            model.load_state_dict(state, strict=True)
        except Exception as err:  # safetensors raises its own types; normalise for the CLI
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise LoadError(
                f"cannot load built-in weights {path}: {msg}; regenerate them with "
                f"`{_REGENERATE} --model {name}`"
            ) from err
    return model.eval()


def training_info(name: str) -> dict[str, Any]:
    """Return the training record ``weightstats/data/<name>.json`` of a built-in model.

    Raises
    ------
    SpecError
        If ``name`` is not a built-in model.
    LoadError
        If the record is missing or is not valid JSON.
    """
    _check_name(name)
    res = _data_file(f"{name}.json")
    if not res.is_file():
        raise LoadError(
            f"training record for {name!r} is missing (weightstats/data/{name}.json); "
            f"regenerate it with `{_REGENERATE} --model {name}`"
        )
    try:
        return json.loads(res.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise LoadError(
            f"training record weightstats/data/{name}.json is not valid JSON: {err}"
        ) from err
