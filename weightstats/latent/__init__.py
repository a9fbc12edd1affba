"""Is a VAE's latent space Gaussian? The aggregate posterior q(z) = E_x[q(z|x)] against the
prior N(0, I): per-dimension fits and exact prior tests, active units, KL estimates, and
multivariate normality, mixture and sphere-uniformity tests (:func:`fit_latents`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["fit_latents", "LatentReport"]

if TYPE_CHECKING:  # pragma: no cover
    from .fit import fit_latents
    from .report import LatentReport


def __getattr__(name: str) -> Any:
    if name == "fit_latents":
        from .fit import fit_latents

        return fit_latents
    if name == "LatentReport":
        from .report import LatentReport

        return LatentReport
    raise AttributeError(f"module 'weightstats.latent' has no attribute {name!r}")
