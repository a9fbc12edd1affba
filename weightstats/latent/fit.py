"""fit_latents: is a VAE's aggregate posterior q(z) = E_x[q(z|x)] the prior N(0, I)?"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from weightstats.errors import OptionError
from weightstats.latent import dims as dimstats
from weightstats.latent import mvn
from weightstats.latent.encoders import Encoder, Posterior, as_encoder, run_encoder
from weightstats.latent.report import LatentReport

MAX_SAMPLES = 1000


def _check(samples: Any, seed: Any, families: Any, ks_sample: Any, ks_replicates: Any,
           active_threshold: Any, max_components: Any, batch_size: Any, max_rows: Any,
           flags: bool) -> dict[str, Any]:
    from weightstats.options import check_families, check_fit_numbers, whole_number

    out = check_fit_numbers(ks_sample=ks_sample, ks_replicates=ks_replicates, seed=seed,
                            flags=flags)
    out["families"] = check_families(families)
    out["samples"] = whole_number(samples, "samples", low=1, high=MAX_SAMPLES, flags=flags)
    out["max_components"] = whole_number(max_components, "max_components", low=1, high=20,
                                         flags=flags)
    out["batch_size"] = whole_number(batch_size, "batch_size", low=1, flags=flags)
    out["max_rows"] = whole_number(max_rows, "max_rows", low=50, flags=flags)
    try:
        threshold = float(active_threshold)
    except (TypeError, ValueError):
        threshold = math.nan
    if not (math.isfinite(threshold) and threshold >= 0):
        raise OptionError(f"active_threshold must be a number >= 0, got {active_threshold!r:.40}")
    out["active_threshold"] = threshold
    return out


def _inputs(enc: Encoder, data: Any, image_size: int | None) -> tuple[Any, str]:
    from weightstats.latent import data as datasets

    if enc.fixed is not None:
        if data is not None:
            raise OptionError("a torch.distributions posterior is the data set's posterior "
                              "already: pass no data")
        return None, f"{enc.fixed.batch_shape[0]} given posteriors"
    if data is None:
        if enc.default_data is None:
            raise OptionError(f"{enc.spec} needs data: pass --data FOLDER (a folder of images) "
                              "or, in Python, data=<array of inputs>")
        return enc.default_data()
    if isinstance(data, str) or hasattr(data, "__fspath__"):
        size = image_size or enc.image_size
        if size is None:
            raise OptionError(f"{enc.spec} does not say what image size it expects: pass "
                              "--image-size N")
        return datasets.load_images(data, int(size), enc.channels,
                                     unit_pixels=enc.unit_pixels)
    return datasets.as_inputs(data)


def fit_latents(
    model_or_encoder: Any,
    data: Any = None,
    *,
    samples: int = 8,
    seed: int = 0,
    families: str | Sequence[str] | None = None,
    active_threshold: float = dimstats.ACTIVE_THRESHOLD,
    ks_sample: int = 5000,
    ks_replicates: int = 10_000,
    max_components: int = 6,
    image_size: int | None = None,
    batch_size: int = 64,
    max_rows: int = 4096,
    allow_pickle: bool = False,
    _flags: bool = False,
) -> LatentReport:
    """Compare a VAE's aggregate posterior over a data set with its prior N(0, I).

    Parameters
    ----------
    model_or_encoder : str, nn.Module, callable or torch.distributions.Distribution
        ``"digits-vae"`` / ``"digits-vae:none"``, ``"hf:ORG/REPO"`` (a diffusers AutoencoderKL),
        a module with an ``encoder`` or ``encode``, a callable returning ``(mu, logvar)`` or a
        distribution, or the posterior itself (see :mod:`weightstats.latent.encoders`).
    data : array, tensor, folder path or None
        Inputs to encode; a folder of images (resized and center-cropped to the VAE's
        ``sample_size``, scaled to [-1, 1]); None: the built-in models' held-out digits.
    samples : int
        Draws z ~ q(z|x) per input (seeded). The tests use the first draw of each input
        (independent draws of q(z)); all draws feed the moments, KL estimate and figures.
    seed : int
        Seeds the draws, subsamples, mixture fits and KS subsamples: same inputs, same numbers.
    families : str, sequence or None
        Families fitted to each active dimension (default: the registry's defaults).
    active_threshold : float
        A dimension is active when Var_x E[z_d | x] exceeds it (Burda et al. 2016: 0.01).
    ks_sample, ks_replicates : int
        As in :func:`weightstats.fit_tensor`.
    max_components : int
        Largest K of the Gaussian mixtures compared by BIC.
    image_size : int, optional
        Image side for a folder of images (default: the VAE config's ``sample_size``).
    batch_size : int
        Inputs per encoder call.
    max_rows : int
        Image latents: at most this many latent positions (seeded subsample).
    allow_pickle : bool
        As in :func:`weightstats.fit_model`, for specs that are pickle files.

    Returns
    -------
    LatentReport
        ``.table()`` per dimension, ``.tests()`` for the whole latent, ``.summary()``,
        ``.save(directory)``.
    """
    opt = _check(samples, seed, families, ks_sample, ks_replicates, active_threshold,
                 max_components, batch_size, max_rows, _flags)
    if (isinstance(model_or_encoder, str) and model_or_encoder.strip().lower().startswith("hf:")
            and data is None):  # said before a (slow) download or load
        raise OptionError(f"{model_or_encoder.strip()} needs data: pass --data FOLDER, a folder "
                          "of images (in Python: data=FOLDER or an array of images)")
    enc = model_or_encoder if isinstance(model_or_encoder, Encoder) else as_encoder(
        model_or_encoder, allow_pickle=allow_pickle)
    inputs, data_text = _inputs(enc, data, image_size)
    post = run_encoder(enc, inputs, samples=opt["samples"], seed=opt["seed"],
                       batch_size=opt["batch_size"], max_rows=opt["max_rows"])
    return analyse(post, enc, data_text, opt)


def analyse(post: Posterior, enc: Encoder, data_text: str, opt: dict[str, Any]) -> LatentReport:
    """Every per-dimension and whole-latent statistic of an encoded data set."""
    if not np.isfinite(post.samples).all():
        raise OptionError(f"the encoder of {enc.spec} gave non-finite latents (NaN or inf); "
                          "check the inputs' range and the model's weights")
    rng = np.random.default_rng(opt["seed"])
    n_dims = post.mu.shape[1]
    rows, fits = [], {}
    for d in range(n_dims):
        row = dimstats.dimension_row(post, d, threshold=opt["active_threshold"], rng=rng,
                                     kl_components=2000, kl_points=4000)
        if row["active"] and post.mu.shape[0] >= 30:
            fits[d] = dimstats.fit_dimension(post, d, opt["families"], seed=opt["seed"],
                                             ks_sample=opt["ks_sample"],
                                             ks_replicates=opt["ks_replicates"])
        for which in ("z", "mu"):
            best, p, adequacy = dimstats.best_of(fits.get(d, {}).get(which))
            row.update({f"best_{which}": best, f"best_{which}_ks_pvalue": p,
                        f"fit_{which}": adequacy or ("collapsed: not fitted" if not row["active"]
                                                     else "")})
        rows.append(row)
    active = [r["dim"] for r in rows if r["active"]]
    iid = post.samples[:, 0, :]
    shape_dims = active if len(active) >= 2 else list(range(n_dims))
    multivariate: dict[str, Any] = {"shape_dims": shape_dims, "n": int(iid.shape[0])}
    if n_dims >= 2 and iid.shape[0] > n_dims + 1:
        x = iid[:, shape_dims]
        shape = [*mvn.mardia(x), mvn.henze_zirkler(x), *mvn.sphere_uniformity(x)]
        whole = iid
        standard = [mvn.standard_normal_moments(whole, seed=opt["seed"]),
                    mvn.correlation_identity(whole), mvn.radius(whole)]
        for r in shape:
            r["dims"] = "active" if shape_dims is active else "all"
        for r in standard:
            r["dims"] = "all"
        multivariate["tests"] = shape + standard
        multivariate["mixture"] = mvn.gaussian_mixture(x, max_k=opt["max_components"],
                                                       seed=opt["seed"])
    else:
        multivariate["tests"] = []
        multivariate["mixture"] = None
    notes = list(post.notes)
    if post.positions > 1:
        notes.append(f"image latents: one row per latent position ({post.positions} per image); "
                     "positions of one image are not independent, so the p-values treat "
                     "dependent rows as independent and are indicative only (too small)")
    options = {k: (",".join(v) if k == "families" else v) for k, v in opt.items()}
    return LatentReport.build(enc=enc, post=post, data_text=data_text, rows=rows, fits=fits,
                              multivariate=multivariate, options=options, notes=notes)
