"""timm models: ``timm:resnet50.a1_in1k`` (pretrained, via the HF hub cache) or ``timm:NAME:none``."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from weightstats.errors import LoadError, OfflineError, SpecError
from weightstats.sources.base import ModelSource, WeightTensor, one_line, tensors_from_module

SEED = 0


@functools.cache
def timm_pretrained_names() -> tuple[str, ...]:
    """``timm.list_models(pretrained=True)``: names with a weights tag, e.g. resnet50.a1_in1k."""
    import timm

    return tuple(timm.list_models(pretrained=True))


def hub_cache_dir() -> Path:
    """The HF hub cache, read at call time so HF_HUB_CACHE changes in-process are honoured."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


class TimmSource(ModelSource):
    """A timm model created with ``timm.create_model`` (pretrained or untrained)."""

    kind_of_source = "timm"

    def __init__(self, rest: str, spec: str) -> None:
        import timm

        name, _, tag = rest.partition(":")
        name = name.strip()
        if not name:
            raise SpecError(f"{spec!r} names no model: use timm:NAME, e.g. timm:resnet50.a1_in1k")
        if tag and tag.lower() != "none":
            raise SpecError(f"unknown option {tag!r} in {spec!r}: timm pretrained tags go after "
                            "a dot (timm:resnet50.a1_in1k); use timm:NAME:none for untrained")
        self.pretrained = not tag
        # A tagged name must be a real pretrained tag; a bare architecture gets timm's default.
        known = name in timm_pretrained_names() or ("." not in name and timm.is_model(name))
        if not known:
            close = difflib.get_close_matches(name, timm_pretrained_names(), n=5, cutoff=0.6)
            hint = (f"did you mean {', '.join('timm:' + c for c in close)}?" if close
                    else "see `weightstats list 'timm:*'`")
            raise SpecError(f"unknown timm model {name!r}: {hint}")
        self.model_name = name
        label = f"timm-{name}" + ("" if self.pretrained else "-none")
        what = "pretrained" if self.pretrained else f"untrained (timm init, seed {SEED})"
        super().__init__(label, spec, f"timm {name}, {what}")

    def _hub_file(self) -> tuple[str | None, str]:
        """(HF repo id, file name) timm will fetch, from the model's pretrained config."""
        import timm

        # An untagged name ("resnet50") gets timm's default tag here, as in create_model.
        cfg = timm.models.get_pretrained_cfg(self.model_name)
        hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        filename = getattr(cfg, "hf_hub_filename", None) or "model.safetensors"
        return hub_id, filename

    def _create(self) -> Any:
        import timm
        import torch

        if not self.pretrained:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(SEED)
                return timm.create_model(self.model_name, pretrained=False)
        hub_id, filename = self._hub_file()
        repo = hub_id or f"timm/{self.model_name}"
        where = hub_cache_dir() / f"models--{repo.replace('/', '--')}"
        try:
            return timm.create_model(self.model_name, pretrained=True)
        except Exception as err:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(repo, filename, cache_dir=hub_cache_dir())
            if isinstance(cached, str):  # weights are there: the failure is not the network
                raise LoadError(f"timm {self.model_name} failed to load from {cached} "
                                f"({type(err).__name__}: {one_line(err, 120)}): delete the "
                                "cached file and download it again") from err
            raise OfflineError(
                f"timm {self.model_name} weights are not cached and could not be downloaded "
                f"({type(err).__name__}: {one_line(err, 120)}): connect to the internet, or put "
                f"{filename} into the HF cache {where} (e.g. `hf download {repo}` elsewhere and "
                f"copy the cache), or use `timm:{self.model_name}:none` (untrained)"
            ) from None

    def _tensors(self) -> Iterator[WeightTensor]:
        yield from tensors_from_module(self._create().eval())
