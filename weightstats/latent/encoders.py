"""Encoders: anything that maps inputs to a posterior q(z|x), turned into one :class:`Posterior`.

Accepted (see :func:`as_encoder`):

- a spec string: ``digits-vae`` / ``digits-vae:none`` (built-in), ``hf:ORG/REPO[/subfolder]``
  (a diffusers ``AutoencoderKL``, read through the Hugging Face cache, offline when
  ``HF_HUB_OFFLINE`` is set), or any spec :func:`weightstats.sources.resolve` builds into a
  module with an encoder;
- an ``nn.Module`` with an ``encoder`` (called on the inputs) or an ``encode`` method;
- any callable returning ``(mu, logvar)``, a ``torch.distributions`` object, or an object with
  ``.latent_dist`` (diffusers' output);
- a ``torch.distributions`` object itself, whose batch rows are the inputs (no data needed).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weightstats.errors import LoadError, OptionError, SpecError
from weightstats.text import one_line

_OUTPUT_HINT = ("an encoder must return (mu, logvar), a torch.distributions object, or an object "
                "with .latent_dist (diffusers)")
_NO_ENCODER = ("weightstats latent needs a VAE: digits-vae, hf:ORG/REPO (a diffusers "
               "AutoencoderKL), or in Python fit_latents(encoder, data)")


@dataclass
class Encoder:
    """A runnable encoder and what the report says about it."""

    fn: Callable[[Any], Any] | None
    name: str
    spec: str
    description: str
    default_data: Callable[[], tuple[Any, str]] | None = None
    image_size: int | None = None
    channels: int = 3  # image channels the encoder takes
    unit_pixels: bool = False  # pixels in [0, 1] (the digits) instead of [-1, 1] (diffusers)
    scaling: dict[str, Any] = field(default_factory=dict)
    fixed: Any = None  # a torch.distributions object given instead of an encoder


@dataclass
class Posterior:
    """q(z|x) over a data set, flattened to rows (inputs, or image positions) by units.

    ``mu`` and ``std`` are (N, D); ``samples`` is (N, K, D), seeded. ``component_logpdf(d,
    points, rows)`` is the (M, len(rows)) matrix of log q_d(point | row), for the KL estimate.
    """

    mu: np.ndarray
    std: np.ndarray | None
    samples: np.ndarray
    unit: str  # "dimension" (vector latents) or "channel" (image latents, pooled positions)
    n_inputs: int
    positions: int  # rows per input (1, or the latent's height x width)
    kind: str  # "gaussian" or the torch distribution's class name
    component_logpdf: Callable[[int, np.ndarray, np.ndarray], np.ndarray]
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ resolving
def as_encoder(obj: Any, *, allow_pickle: bool = False) -> Encoder:
    """Wrap a spec, module, callable or distribution as an :class:`Encoder` (nothing runs yet)."""
    import torch

    if isinstance(obj, str):
        return _from_spec(obj, allow_pickle)
    if isinstance(obj, torch.distributions.Distribution):
        return Encoder(None, type(obj).__name__, type(obj).__name__,
                       f"a given {type(obj).__name__} posterior", fixed=obj)
    if isinstance(obj, torch.nn.Module):
        return _from_module(obj, type(obj).__name__, type(obj).__name__,
                            f"nn.Module {type(obj).__name__}", **_digits_extra(obj))
    if callable(obj):
        name = getattr(obj, "__name__", type(obj).__name__)
        name = "encoder" if name == "<lambda>" else name
        return Encoder(obj, name, name, f"encoder function {name}")
    raise OptionError(f"cannot use a {type(obj).__name__} as an encoder: {_NO_ENCODER}")


def _from_module(module: Any, name: str, spec: str, description: str, **extra: Any) -> Encoder:
    module.eval()
    config = getattr(module, "config", None)
    if hasattr(module, "encode") and getattr(config, "latent_channels", None) is not None:
        return _diffusers_encoder(module, name, spec, description)
    enc = getattr(module, "encoder", None)
    if callable(enc):
        return Encoder(enc, name, spec, description, **extra)
    if callable(getattr(module, "encode", None)):
        return Encoder(module.encode, name, spec, description, **extra)
    raise SpecError(f"{spec} has no encoder (no .encoder module or .encode method): {_NO_ENCODER}")


def _from_spec(spec: str, allow_pickle: bool) -> Encoder:
    text = spec.strip()
    if text.lower().startswith("hf:"):
        return load_diffusers(text)
    from weightstats.sources import resolve

    source = resolve(text, allow_pickle=allow_pickle)
    build = getattr(source, "build", None)
    if build is None:
        raise SpecError(f"{text} gives weights only, no model to run, so it has no encoder: "
                        f"{_NO_ENCODER}")
    module = build()
    return _from_module(module, source.name, text, source.description, **_digits_extra(module))


def _digits_extra(module: Any) -> dict[str, Any]:
    """The built-in digits VAE's default data (the held-out split) and image format: 8x8 grey,
    pixels in [0, 1], so that a folder of such images (--data) is read the way it was trained."""
    from weightstats.models.digits import DigitsVAE

    if not isinstance(module, DigitsVAE):
        return {}
    from weightstats.latent.data import digits_heldout

    return {"default_data": digits_heldout, "image_size": 8, "channels": 1, "unit_pixels": True}


def _diffusers_encoder(module: Any, name: str, spec: str, description: str) -> Encoder:
    cfg = module.config
    size = cfg.get("sample_size") if hasattr(cfg, "get") else getattr(cfg, "sample_size", None)
    if isinstance(size, list | tuple):
        size = size[0]
    scaling = {key: (list(v) if isinstance(v, list | tuple) else v) for key in
               ("scaling_factor", "shift_factor", "latents_mean", "latents_std")
               if (v := getattr(cfg, key, None)) is not None}

    def encode(x: Any) -> Any:
        return module.encode(x).latent_dist

    return Encoder(encode, name, spec, description, image_size=int(size) if size else None,
                   channels=int(getattr(cfg, "in_channels", 3) or 3), scaling=scaling)


def load_diffusers(spec: str) -> Encoder:
    """A diffusers ``AutoencoderKL`` from ``hf:ORG/REPO[@REV][/subfolder]`` (a pipeline repo's
    ``vae`` folder is found by itself), through the hub cache; offline with HF_HUB_OFFLINE."""
    from weightstats.sources.hf_source import hub_cache_dir, hub_offline, parse_hf_spec

    repo, rev, path = parse_hf_spec(spec)
    try:
        import diffusers
        from diffusers import AutoencoderKL
    except ImportError:
        raise LoadError(f"{spec} needs diffusers to run its VAE: pip install "
                        "'weightstats[latent]'") from None
    diffusers.logging.set_verbosity_error()
    offline = hub_offline()
    last: Exception | None = None
    # The cache first: a cached VAE loads without a network round trip; online only if not.
    for local_only in ([True] if offline else [True, False]):
        if not local_only and not _hub_reachable(repo, rev):
            break
        for sub in ([path] if path else [None, "vae"]):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = AutoencoderKL.from_pretrained(
                        repo, subfolder=sub, revision=rev, cache_dir=str(hub_cache_dir()),
                        local_files_only=local_only)
            except Exception as err:  # diffusers raises OSError, ValueError, EnvironmentError
                last = err
                continue
            where = f"{repo}/{sub}" if sub else repo
            return _diffusers_encoder(model.float(), "hf-" + where.replace("/", "-"), spec,
                                      f"diffusers AutoencoderKL {where}")
    why = one_line(last, 160).rstrip(".") if last is not None else "not found"
    reachable = not offline and _hub_reachable(repo, rev)
    hint = ("it is not in the Hugging Face cache and the hub cannot be reached: download it "
            "where there is network (hf download " + repo + ") into this cache"
            if not reachable else
            "check the name, that it holds an AutoencoderKL (config.json with latent_channels), "
            "or name its subfolder, e.g. hf:ORG/REPO/vae")
    raise LoadError(f"cannot load a diffusers AutoencoderKL from {spec}: {why}; {hint}")


_REACHABLE: dict[tuple[str, str | None], bool] = {}


def _hub_reachable(repo: str, rev: str | None) -> bool:
    """One quick request (10 s timeout, no retries): is the repo on a reachable hub?"""
    if (repo, rev) not in _REACHABLE:
        from huggingface_hub import HfApi

        try:
            HfApi().model_info(repo, revision=rev, timeout=10)
            _REACHABLE[(repo, rev)] = True
        except Exception:  # unreachable, unknown, gated: the cache was the only chance
            _REACHABLE[(repo, rev)] = False
    return _REACHABLE[(repo, rev)]


# ------------------------------------------------------------------------------ running
def _gaussian_from_output(out: Any) -> tuple[Any, Any] | Any:
    """(mu, logvar) tensors from an encoder's output, or a torch distribution to handle apart."""
    import torch

    if hasattr(out, "latent_dist"):
        out = out.latent_dist
    if hasattr(out, "mean") and hasattr(out, "logvar") and not isinstance(out, tuple):
        return out.mean, out.logvar
    if isinstance(out, torch.distributions.Independent):
        out = out.base_dist
    if isinstance(out, torch.distributions.Normal):
        return out.loc, 2 * torch.log(out.scale)
    if isinstance(out, torch.distributions.Distribution):
        return out
    if isinstance(out, tuple | list) and len(out) == 2 and all(torch.is_tensor(t) for t in out):
        if out[0].shape != out[1].shape:
            raise OptionError(f"encoder returned mu {tuple(out[0].shape)} and logvar "
                              f"{tuple(out[1].shape)} of different shapes; {_OUTPUT_HINT}")
        return out
    raise OptionError(f"encoder returned {type(out).__name__}; {_OUTPUT_HINT}")


def _rows(t: Any) -> tuple[np.ndarray, int]:
    """(B, D) -> itself; (B, C, H, W) -> (B*H*W, C): image latents pooled over positions."""
    a = t.detach().to("cpu").double().numpy()
    if a.ndim == 2:
        return a, 1
    if a.ndim == 4:
        b, c, h, w = a.shape
        return a.transpose(0, 2, 3, 1).reshape(b * h * w, c), h * w
    raise OptionError(f"latent of shape {tuple(a.shape)}: expected (inputs, dims) or "
                      "(images, channels, height, width)")


def run_encoder(enc: Encoder, inputs: Any, *, samples: int, seed: int, batch_size: int = 64,
                max_rows: int = 4096) -> Posterior:
    """Encode ``inputs`` in batches and draw ``samples`` seeded z ~ q(z|x) per row.

    Image latents give one row per latent position; more than ``max_rows`` rows are subsampled
    (seeded, whole data set first) so that every statistic stays cheap.
    """
    import torch

    if enc.fixed is not None:
        return _from_distribution(enc.fixed, samples, seed)
    mus, logvars, n_inputs = [], [], 0
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start:start + batch_size]
            try:
                out = enc.fn(batch)
            except (OptionError, LoadError, SpecError):
                raise
            except Exception as err:
                raise OptionError(f"the encoder of {enc.spec} failed on inputs of shape "
                                  f"{tuple(batch.shape)} ({type(err).__name__}: "
                                  f"{one_line(err, 120)}); pass data of the shape it "
                                  "expects") from None
            parsed = _gaussian_from_output(out)
            if isinstance(parsed, torch.distributions.Distribution):
                if start or len(inputs) > batch_size:
                    raise OptionError("an encoder returning a non-normal torch distribution "
                                      "must get all inputs in one batch: pass batch_size="
                                      f"{len(inputs)}")
                return _from_distribution(parsed, samples, seed)
            mus.append(parsed[0])
            logvars.append(parsed[1])
            n_inputs += len(batch)
    mu, positions = _rows(torch.cat(mus))
    logvar, _ = _rows(torch.cat(logvars))
    return gaussian_posterior(mu, np.exp(0.5 * logvar), samples=samples, seed=seed,
                              n_inputs=n_inputs, positions=positions, max_rows=max_rows)


def gaussian_posterior(mu: np.ndarray, std: np.ndarray, *, samples: int, seed: int,
                       n_inputs: int | None = None, positions: int = 1,
                       max_rows: int = 4096) -> Posterior:
    """A diagonal Gaussian posterior per row, with seeded draws (numpy's PCG64)."""
    rng = np.random.default_rng(seed)
    notes = []
    if mu.shape[0] > max_rows:
        keep = np.sort(rng.choice(mu.shape[0], max_rows, replace=False))
        notes.append(f"{max_rows} of {mu.shape[0]} latent positions used (seeded subsample)")
        mu, std = mu[keep], std[keep]
    eps = rng.standard_normal((mu.shape[0], samples, mu.shape[1]))
    draws = mu[:, None, :] + std[:, None, :] * eps

    def logpdf(d: int, points: np.ndarray, rows: np.ndarray) -> np.ndarray:
        m, s = mu[rows, d], std[rows, d]
        zz = (points[:, None] - m[None, :]) / s[None, :]
        return -0.5 * zz * zz - np.log(s)[None, :] - 0.5 * math.log(2 * math.pi)

    return Posterior(mu, std, draws, "channel" if positions > 1 else "dimension",
                     n_inputs if n_inputs is not None else mu.shape[0], positions, "gaussian",
                     logpdf, notes)


def _from_distribution(dist: Any, samples: int, seed: int) -> Posterior:
    """A torch distribution with batch rows = inputs and one column per latent dimension."""
    import torch

    base = dist.base_dist if isinstance(dist, torch.distributions.Independent) else dist
    if isinstance(base, torch.distributions.Normal):
        mu, _ = _rows(base.loc)
        std, positions = _rows(base.scale)
        return gaussian_posterior(mu, std, samples=samples, seed=seed, positions=positions)
    shape = tuple(base.batch_shape)
    if len(shape) != 2 or base.event_shape != torch.Size([]):
        raise OptionError(f"a {type(base).__name__} posterior must have batch shape (inputs, "
                          f"dims) and scalar events (or be Independent over dims); got batch "
                          f"{shape}, event {tuple(base.event_shape)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        draws = base.sample((samples,)).double().numpy().transpose(1, 0, 2)
    mu = base.mean.detach().double().numpy()

    def logpdf(d: int, points: np.ndarray, rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            value = torch.as_tensor(points, dtype=base.mean.dtype)[:, None, None]
            lp = base.log_prob(value.expand(-1, shape[0], shape[1]))
        return lp[:, rows, d].double().numpy()

    std = base.stddev.detach().double().numpy() if _has_stddev(base) else None
    return Posterior(mu, std, draws, "dimension", shape[0], 1, type(base).__name__, logpdf)


def _has_stddev(dist: Any) -> bool:
    try:
        s = dist.stddev
    except NotImplementedError:
        return False
    return bool(np.isfinite(s.detach().double().numpy()).all())
