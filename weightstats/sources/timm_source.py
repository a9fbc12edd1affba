"""timm models: ``timm:resnet50.a1_in1k`` (pretrained, via the HF hub cache) or ``timm:NAME:none``.

Pretrained weights are looked up in the hub cache first (``try_to_load_from_cache``) and handed
to timm as a local file, so a cached model loads with no network access. An uncached one costs
one short request to the hub (``model_info``) before anything is downloaded: without a network
the error comes at once, naming the file and the cache folder, instead of after timm's retries.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from weightstats.errors import LoadError, OfflineError, SpecError
from weightstats.sources.base import ModelSource, WeightTensor, one_line, tensors_from_module
from weightstats.sources.hf_source import (
    PROBE_TIMEOUT,
    cached_hub_file,
    hub_cache_dir,
    hub_offline,
)

SEED = 0
# timm's default hub file and the safetensors file it prefers in its place
# (timm.models._hub._get_safe_alternatives).
HF_WEIGHTS_NAME = "pytorch_model.bin"
SAFE_ALTERNATIVES = {"pytorch_model.bin": "model.safetensors",
                     "open_clip_pytorch_model.bin": "open_clip_model.safetensors"}


def timm_pretrained_names() -> tuple[str, ...]:
    """``timm.list_models(pretrained=True)``: names with a weights tag, e.g. resnet50.a1_in1k
    (read through the names cache of :mod:`weightstats.sources.names`)."""
    from weightstats.sources.names import timm_pretrained

    return timm_pretrained()


def candidate_files(filename: str | None) -> list[str]:
    """The files timm would read for a hub config's ``hf_hub_filename``, preferred first."""
    name = filename or HF_WEIGHTS_NAME
    if name.endswith(".safetensors"):
        return [name]
    safe = SAFE_ALTERNATIVES.get(name) or (name[:-4] + ".safetensors" if name.endswith(".bin")
                                           else None)
    return [safe, name] if safe else [name]


class TimmSource(ModelSource):
    """A timm model created with ``timm.create_model`` (pretrained or untrained)."""

    kind_of_source = "timm"

    def __init__(self, rest: str, spec: str) -> None:
        from weightstats.sources.names import timm_architectures

        name, _, tag = rest.partition(":")
        name = name.strip()
        if not name:
            raise SpecError(f"{spec!r} names no model: use timm:NAME, e.g. timm:resnet50.a1_in1k")
        if tag and tag.lower() != "none":
            raise SpecError(f"unknown option {tag!r} in {spec!r}: timm pretrained tags go after "
                            "a dot (timm:resnet50.a1_in1k); use timm:NAME:none for untrained")
        self.pretrained = not tag
        # A tagged name must be a real pretrained tag; a bare architecture gets timm's default.
        known = name in timm_pretrained_names() or ("." not in name
                                                    and name in timm_architectures())
        if not known:
            close = difflib.get_close_matches(name, timm_pretrained_names(), n=5, cutoff=0.6)
            hint = (f"did you mean {', '.join('timm:' + c for c in close)}?" if close
                    else "see `weightstats list 'timm:*'`")
            raise SpecError(f"unknown timm model {name!r}: {hint}")
        self.model_name = name
        label = f"timm-{name}" + ("" if self.pretrained else "-none")
        what = "pretrained" if self.pretrained else f"untrained (timm init, seed {SEED})"
        super().__init__(label, spec, f"timm {name}, {what}")

    def _hub_file(self) -> tuple[str | None, str | None, list[str]]:
        """(HF repo id, revision, candidate files) timm would fetch, from the model's
        pretrained config; repo None when the weights are not on the hub."""
        import timm

        # An untagged name ("resnet50") gets timm's default tag here, as in create_model.
        cfg = timm.models.get_pretrained_cfg(self.model_name)
        hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        if not hub_id:
            return None, None, []
        repo, _, rev = hub_id.partition("@")
        return repo, rev or None, candidate_files(getattr(cfg, "hf_hub_filename", None))

    def _offline_error(self, repo: str, files: list[str], reason: str) -> OfflineError:
        where = hub_cache_dir() / f"models--{repo.replace('/', '--')}"
        alt = f" (or {', '.join(files[1:])})" if len(files) > 1 else ""
        return OfflineError(
            f"timm {self.model_name}: weights not in the HF cache and {reason}: put "
            f"{files[0]}{alt} of hf:{repo} into {where} (`hf download {repo}` where there is "
            f"network), or use timm:{self.model_name}:none (untrained)")

    def _weights_file(self, repo: str, revision: str | None, files: list[str]) -> Path:
        """The cached weights file, downloaded first (after one short request) if needed."""
        for name in files:
            found = cached_hub_file(repo, name, revision)
            if found is not None:
                return found
        if hub_offline():
            raise self._offline_error(repo, files, "HF_HUB_OFFLINE is set")
        from huggingface_hub import HfApi, errors, hf_hub_download

        try:
            info = HfApi().model_info(repo, revision=revision, timeout=PROBE_TIMEOUT)
        except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError) as err:
            raise LoadError(f"timm {self.model_name}: its weights repo hf:{repo} is not on the "
                            f"hub ({type(err).__name__}); use timm:{self.model_name}:none") from None
        except Exception as err:  # DNS, refused, timeout: no network, and no retries
            raise self._offline_error(repo, files,
                                      f"the hub is unreachable ({type(err).__name__})") from None
        present = {s.rfilename for s in info.siblings or []}
        chosen = next((f for f in files if f in present), None)
        if chosen is None:
            raise LoadError(f"hf:{repo} has none of {', '.join(files)}: timm "
                            f"{self.model_name} cannot be loaded from it")
        return Path(hf_hub_download(repo, chosen, revision=revision,
                                    cache_dir=hub_cache_dir()))

    def _create(self) -> Any:
        import timm
        import torch

        if not self.pretrained:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(SEED)
                return timm.create_model(self.model_name, pretrained=False)
        repo, revision, files = self._hub_file()
        if repo is None:  # weights from a URL: timm downloads them (one attempt)
            try:
                return timm.create_model(self.model_name, pretrained=True)
            except Exception as err:
                raise OfflineError(f"timm {self.model_name} weights could not be loaded "
                                   f"({type(err).__name__}: {one_line(err, 120)}): connect to "
                                   f"the internet, or use `timm:{self.model_name}:none`") from None
        path = self._weights_file(repo, revision, files)
        try:
            # A local file: timm reads it (weights only) and never touches the network.
            return timm.create_model(self.model_name, pretrained=True,
                                     pretrained_cfg_overlay={"file": str(path), "source": ""})
        except Exception as err:
            raise LoadError(f"timm {self.model_name} failed to load from {path} "
                            f"({type(err).__name__}: {one_line(err, 120)}): delete the "
                            "cached file and download it again") from err

    def _tensors(self) -> Iterator[WeightTensor]:
        yield from tensors_from_module(self._create().eval())
