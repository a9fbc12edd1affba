"""Deterministically train the built-in digits models and write their shipped weights.

Usage::

    python -m weightstats.models.train [--model digits-resnet|digits-vae|all] [--out DIR]
                                       [--epochs N] [--seed S] [--threads T]

Writes ``<name>.safetensors`` (the full state dict, BatchNorm buffers included) and
``<name>.json`` (hyper-parameters, metrics, versions, sha256 of the weights) into ``--out``
(default: the package's ``weightstats/data``). Needs scikit-learn (``pip install
weightstats[train]``) for ``sklearn.datasets.load_digits``, which ships with scikit-learn.

Determinism: every random draw comes from an explicitly seeded source (init via
``build_model(seed)``, data order and VAE noise from a seeded ``torch.Generator``, the split
from a NumPy ``RandomState``), ``torch.use_deterministic_algorithms(True)`` is on and the
thread count is fixed, so a rerun on the same machine and torch build gives byte-identical
weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from weightstats.errors import OptionError
from weightstats.models.digits import BUILTIN_MODELS, build_model

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SPLIT_SEED = 0  # fixed independently of --seed so every run is evaluated on the same images
TEST_FRACTION = 0.2
EVAL_SEED = 1234  # seed of the VAE's Monte-Carlo ELBO estimate at evaluation
EVAL_SAMPLES = 16

# Per-model recipe. AdamW/Adam with a per-step cosine decay converges within the time budget on
# two CPU cores; weight decay is recorded because it shapes the weight distribution we study.
RECIPES: dict[str, dict[str, Any]] = {
    "digits-resnet": {
        "epochs": 30,
        "batch_size": 64,
        "optimizer": "AdamW",
        "lr": 2e-3,
        "weight_decay": 1e-2,
        "schedule": "cosine per step to 0",
    },
    "digits-vae": {
        "epochs": 150,
        "batch_size": 64,
        "optimizer": "Adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "schedule": "cosine per step to 0",
    },
}


def load_split(
    split_seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the fixed train/test split of ``load_digits`` as float32 images in [0, 1].

    Returns
    -------
    x_train, y_train, x_test, y_test : torch.Tensor
        Images of shape (N, 1, 8, 8) and int64 labels of shape (N,).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    # The grey levels are integers 0..16; dividing by 16 maps them exactly onto [0, 1].
    x = torch.from_numpy((digits.data / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(digits.target.astype(np.int64))
    perm = torch.from_numpy(np.random.RandomState(split_seed).permutation(len(y)))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


@contextmanager
def deterministic_torch(threads: int) -> Iterator[None]:
    """Fix threads and force deterministic kernels; restore the previous settings afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def _batches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    yield from perm.split(batch_size)


def _optimizer(model: nn.Module, recipe: dict[str, Any], steps: int):
    cls = {"AdamW": torch.optim.AdamW, "Adam": torch.optim.Adam}[recipe["optimizer"]]
    opt = cls(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    return opt, sched


@torch.no_grad()
def resnet_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of a classifier in eval mode (BatchNorm running statistics)."""
    model.eval()
    return float((model(x).argmax(1) == y).double().mean())


@torch.no_grad()
def vae_metrics(model: nn.Module, x: torch.Tensor, seed: int = EVAL_SEED) -> dict[str, float]:
    """Mean per-image ELBO terms (nats) from a seeded MC estimate, plus reconstruction errors."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    elbo, nll, kl = model.elbo(x, generator=gen, n_samples=EVAL_SAMPLES)
    recon = model(x)  # decodes the posterior mean
    mu, _ = model.encoder(x)
    n_pix = x[0].numel()
    # Continuous density on [0, 1] + log(bin width) per pixel = bound on the discrete images.
    discrete = float(elbo.mean()) + n_pix * math.log(1.0 / 16.0)
    return {
        "elbo_nats": float(elbo.mean()),
        "recon_nll_nats": float(nll.mean()),
        "kl_nats": float(kl.mean()),
        "elbo_discrete_nats": discrete,
        "bits_per_pixel_discrete": -discrete / (n_pix * math.log(2.0)),
        "pixel_sigma": float(model.decoder.log_sigma.exp()),
        "recon_mse_per_pixel": float(F.mse_loss(recon, x)),
        "recon_mae_per_pixel": float(F.l1_loss(recon, x)),
        # Latent dims whose posterior mean varies across images: guards against collapse.
        "active_latent_dims": int((mu.var(0) > 0.01).sum()),
    }


def train_model(
    name: str,
    *,
    epochs: int | None = None,
    seed: int = 0,
    threads: int = 1,
    n_train: int | None = None,
    verbose: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train one built-in model deterministically.

    Parameters
    ----------
    name : str
        A key of :data:`~weightstats.models.digits.BUILTIN_MODELS`.
    epochs : int, optional
        Overrides the recipe's epoch count.
    seed : int
        Seeds the initialisation, the batch order and the VAE's reparameterisation noise.
    threads : int
        ``torch.set_num_threads`` during training (results depend on it bit-wise).
    n_train : int, optional
        Use only the first ``n_train`` training images (for quick tests).
    verbose : bool
        Print one line per epoch.

    Returns
    -------
    model, info : torch.nn.Module, dict
        The trained model (eval mode) and its JSON-safe training record (without sha256).
    """
    if name not in RECIPES:
        raise OptionError(f"unknown model {name!r}; choose from {', '.join(RECIPES)} or all")
    recipe = dict(RECIPES[name])
    if epochs is not None:
        if epochs < 1:
            raise OptionError(f"--epochs must be >= 1, got {epochs}")
        recipe["epochs"] = epochs
    x_tr, y_tr, x_te, y_te = load_split()
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    is_vae = name == "digits-vae"

    with deterministic_torch(threads):
        model = build_model(name, seed=seed)
        init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        gen = torch.Generator().manual_seed(seed)
        if is_vae:
            init_metrics = vae_metrics(model, x_te)
        else:
            init_metrics = {"accuracy": resnet_accuracy(model, x_te, y_te)}
        steps_per_epoch = -(-len(x_tr) // recipe["batch_size"])
        opt, sched = _optimizer(model, recipe, recipe["epochs"] * steps_per_epoch)
        t0 = time.perf_counter()
        for epoch in range(recipe["epochs"]):
            model.train()
            total = 0.0
            for idx in _batches(len(x_tr), recipe["batch_size"], gen):
                xb = x_tr[idx]
                if is_vae:
                    loss = -model.elbo(xb, generator=gen)[0].mean()
                else:
                    loss = F.cross_entropy(model(xb), y_tr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            if verbose:
                print(
                    f"{name} epoch {epoch + 1:3d}/{recipe['epochs']} train loss "
                    f"{total / len(x_tr):.4f}  ({time.perf_counter() - t0:.1f}s)",
                    flush=True,
                )
        seconds = time.perf_counter() - t0
        model.eval()
        metrics = (
            vae_metrics(model, x_te)
            if is_vae
            else {
                "accuracy": resnet_accuracy(model, x_te, y_te),
                "train_accuracy": resnet_accuracy(model, x_tr, y_tr),
            }
        )

    import sklearn

    cmd = (
        f"python -m weightstats.models.train --model {name} --epochs {recipe['epochs']} "
        f"--seed {seed} --threads {threads} --out weightstats/data"
    )
    info: dict[str, Any] = {
        "model": name,
        "description": BUILTIN_MODELS[name],
        "seed": seed,
        **recipe,
        "threads": threads,
        "deterministic_algorithms": True,
        "data": "sklearn.datasets.load_digits, pixels / 16 -> [0, 1], shape 1x8x8",
        "split": {
            "method": "numpy RandomState(seed).permutation, first test_size are test",
            "seed": SPLIT_SEED,
            "test_fraction": TEST_FRACTION,
        },
        "train_size": len(x_tr),
        "test_size": len(x_te),
        "param_count": sum(p.numel() for p in model.parameters()),
        # ||W - W0|| / ||W0|| per conv/linear weight: how far training moved each tensor from
        # its initialisation (small values mean the fitted shape is largely the init's).
        "relative_change_from_init": {
            k: round(float((v - init_state[k]).norm() / init_state[k].norm()), 4)
            for k, v in model.state_dict().items()
            if v.dim() >= 2
        },
        "test_metrics": metrics,
        "init_test_metrics": init_metrics,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "command": cmd,
    }
    if is_vae:
        info["likelihood"] = (
            "Gaussian N(mean, sigma^2) per pixel, one learned sigma, on pixels "
            "dequantised by U(-1/32, 1/32); posterior N(mu, diag s^2)"
        )
        info["eval"] = {"mc_samples": EVAL_SAMPLES, "noise_seed": EVAL_SEED}
    if verbose:
        print(f"{name}: trained in {seconds:.1f}s, test metrics {metrics}", flush=True)
    return model, info


def save_model(model: nn.Module, info: dict[str, Any], out_dir: Path) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` (with the file's sha256) to ``out_dir``."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    name = info["model"]
    path = out_dir / f"{name}.safetensors"
    # clone().contiguous(): safetensors refuses shared or strided storage.
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # One metadata key only: safetensors writes its metadata map in hash order, so two keys
    # would make otherwise identical files differ byte-wise between runs.
    save_file(state, str(path), metadata={"weightstats": info["command"]})
    path.chmod(0o644)  # safetensors creates 0600 files; shipped data must be world-readable
    info = {**info, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (out_dir / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(
        prog="python -m weightstats.models.train", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--model", default="all", choices=[*RECIPES, "all"])
    ap.add_argument(
        "--out", type=Path, default=DATA_DIR, help="output folder (default: %(default)s)"
    )
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (fixed for determinism)")
    args = ap.parse_args(argv)
    names = list(RECIPES) if args.model == "all" else [args.model]
    try:
        for name in names:
            model, info = train_model(
                name, epochs=args.epochs, seed=args.seed, threads=args.threads, verbose=True
            )
            print(f"wrote {save_model(model, info, args.out)}", flush=True)
    except OptionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
