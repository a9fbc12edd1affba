"""torchvision classification models: ``resnet50``, ``resnet50:IMAGENET1K_V1``, ``resnet50:none``.

Downloads go through torchvision's own mechanism into ``$TORCH_HOME/hub/checkpoints``; a file
already there is loaded with no network access.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from weightstats.errors import LoadError, OfflineError, SpecError
from weightstats.sources.base import (
    ModelSource,
    WeightTensor,
    one_line,
    tensors_from_module,
    tensors_from_state_dict,
)
from weightstats.sources.torch_file import torch_load

UNTRAINED = "none"
SEED = 0  # untrained models are drawn with this seed, so `NAME:none` is reproducible
PROBE_TIMEOUT = 10  # seconds for the one request that tells whether the server is reachable


def torchvision_names() -> tuple[str, ...]:
    """Classification model names (``torchvision.models.list_models(module=models)``, read
    through the names cache of :mod:`weightstats.sources.names`)."""
    from weightstats.sources.names import torchvision_models

    return tuple(torchvision_models())


def weight_tags(name: str) -> list[str]:
    """Valid weights tags of a torchvision model, e.g. ``["IMAGENET1K_V1", "DEFAULT"]``."""
    import torchvision.models as tvm

    return list(tvm.get_model_weights(name).__members__)


def checkpoint_dir() -> Path:
    """Where torchvision caches weights: ``torch.hub.get_dir()/checkpoints`` (reads TORCH_HOME)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _unreachable(url: str, timeout: float = PROBE_TIMEOUT) -> str:
    """'' when the server of ``url`` answers one HEAD request within ``timeout`` seconds (any
    HTTP status), else the reason in a few words."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return ""  # the server answered
    except Exception as err:  # DNS, refused, timed out, proxy
        reason = getattr(err, "reason", err)
        return f"{type(err).__name__}: {one_line(reason, 60)}"
    return ""


class TorchvisionSource(ModelSource):
    """A torchvision classification model, pretrained (a weights tag) or untrained."""

    kind_of_source = "torchvision"

    def __init__(self, name: str, tag: str | None, spec: str) -> None:
        import torchvision.models as tvm

        self.arch = name
        if tag is not None and tag.lower() == UNTRAINED:
            self.weights = None
            super().__init__(f"{name}-none", spec,
                             f"torchvision {name}, untrained (torchvision init, seed {SEED})")
            return
        tags = weight_tags(name)
        match = [t for t in tags if t.lower() == (tag or "DEFAULT").lower()]
        if not match:
            raise SpecError(
                f"unknown weights tag {tag!r} for {name}: use one of "
                f"{', '.join(tags + [UNTRAINED])} (e.g. {name}:{tags[0]})"
            )
        enum = tvm.get_model_weights(name)
        self.weights = enum[match[0]]
        label = name if match[0] == "DEFAULT" or tag is None else f"{name}-{match[0]}"
        self.filename = os.path.basename(self.weights.url)
        super().__init__(label, spec,
                         f"torchvision {name}, weights {self.weights.name} ({self.filename})")

    @property
    def cache_path(self) -> Path:
        """Where the checkpoint file lives (or would, once downloaded)."""
        return checkpoint_dir() / self.filename

    def _state_dict(self) -> dict[str, Any]:
        path = self.cache_path
        if path.exists():
            # Cached: load it directly (memory-mapped, weights only); no network involved.
            return torch_load(path, allow_pickle=False)
        unreachable = _unreachable(self.weights.url)
        if unreachable:  # torch's download has no timeout: a dead network would hang it
            raise OfflineError(
                f"{self.arch} weights {self.weights.name} are not cached and the download "
                f"server is unreachable ({unreachable}): put {self.filename} at {path}, connect, "
                f"or use `{self.arch}:none` (untrained) or the built-in `digits-resnet`")
        try:
            return self.weights.get_state_dict(progress=sys.stderr.isatty(), check_hash=True)
        except Exception as err:
            if path.exists():  # the download worked but the file is unreadable
                raise LoadError(f"{path} could not be read ({one_line(err)}): delete it and "
                                "run again to re-download") from err
            raise OfflineError(
                f"{self.arch} weights {self.weights.name} are not cached and the download "
                f"failed ({type(err).__name__}: {one_line(err, 120)}): connect to the internet, "
                f"or put {self.filename} at {path}, or use `{self.arch}:none` (untrained) or "
                "the built-in `digits-resnet`"
            ) from None

    def _meta_model(self) -> Any:
        """The architecture on the meta device: module types for kinds, no memory, no init."""
        import torch
        import torchvision.models as tvm

        with warnings.catch_warnings():  # googlenet/inception warn about future init changes
            warnings.simplefilter("ignore", FutureWarning)
            try:
                with torch.device("meta"):
                    return tvm.get_model(self.arch, weights=None)
            except Exception:  # regnet's init calls .item(): build it for real, seeded
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(SEED)
                    return tvm.get_model(self.arch, weights=None)

    def _tensors(self) -> Iterator[WeightTensor]:
        import torch
        import torchvision.models as tvm

        if self.weights is None:
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.manual_seed(SEED)
                model = tvm.get_model(self.arch, weights=None)
            yield from tensors_from_module(model.eval())
            return
        state = self._state_dict()
        shapes = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
        from weightstats.sources.kinds import kinds_from_module

        try:
            kinds = kinds_from_module(self._meta_model(), shapes)
        except Exception:  # an init that cannot run on "meta": fall back to names/shapes
            kinds = None
        yield from tensors_from_state_dict(state, kinds)
