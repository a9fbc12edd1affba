"""weightstats: are trained neural-network weights Gaussian, Laplace or Student-t?

Public API::

    weightstats.fit_tensor(x)          # one tensor -> TensorFit
    weightstats.fit_model(spec)        # a model (name, path, nn.Module, state dict) -> ModelReport
    weightstats.compare_models([a, b]) # several models with the same options -> [ModelReport]
    weightstats.list_models("resnet*") # names that resolve
    weightstats.fit_latents("digits-vae") # a VAE's aggregate posterior vs N(0, I) -> LatentReport
    weightstats.sweep(["resnet*"])     # many models on Dask -> one table (pandas.DataFrame)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["fit_tensor", "fit_model", "compare_models", "list_models", "resolve", "sweep",
           "fit_latents", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import compare_models, fit_model
    from .fitting import fit_tensor
    from .latent import fit_latents
    from .sources import list_models, resolve
    from .sweep import sweep

# Heavy imports (torch, scipy) load on first use so `weightstats --help` stays fast.
_LAZY = {"fit_tensor": "fitting", "fit_model": "api", "compare_models": "api",
         "list_models": "sources", "resolve": "sources", "sweep": "sweep",
         "fit_latents": "latent"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'weightstats' has no attribute {name!r}")
