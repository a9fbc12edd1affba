"""weightstats: are trained neural-network weights Gaussian, Laplace or Student-t?

Public API::

    weightstats.fit_tensor(x)          # one tensor -> TensorFit
    weightstats.fit_model(spec)        # a model (name, path, nn.Module, state dict) -> ModelReport
    weightstats.compare_models([a, b]) # several models with the same options -> [ModelReport]
    weightstats.list_models("resnet*") # names that resolve
    weightstats.fit_latents("digits-vae") # a VAE's aggregate posterior vs N(0, I) -> LatentReport
    weightstats.sweep(["resnet*"])     # many models on Dask -> one table (pandas.DataFrame)
    weightstats.load_report("reports/digits-vae")  # a saved report.json -> ModelReport
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["fit_tensor", "fit_model", "compare_models", "list_models", "resolve", "sweep",
           "fit_latents", "load_report", "ModelReport", "TensorFit", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import compare_models, fit_model
    from .fitting import fit_tensor
    from .fitting.result import TensorFit
    from .latent import fit_latents
    from .report.load import load_report
    from .report.model_report import ModelReport
    from .sources import list_models, resolve
    from .sweep import sweep

# Heavy imports (torch, scipy) load on first use so `weightstats --help` stays fast. The names are
# still listed by dir() (tab completion) and help() (SPEC 1: lazy loading of submodules).
_LAZY = {"fit_tensor": "fitting", "fit_model": "api", "compare_models": "api",
         "list_models": "sources", "resolve": "sources", "sweep": "sweep",
         "fit_latents": "latent", "load_report": "report.load",
         "ModelReport": "report.model_report", "TensorFit": "fitting.result"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'weightstats' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (as lazy_loader's ``__dir__``): what tab completion should offer."""
    return sorted(__all__)
