"""Hugging Face hub repos: ``hf:ORG/REPO[@REVISION][/path/in/repo]``.

All transfers go through ``huggingface_hub`` (its cache, its offline mode); there is no HTTP
code here. The cache is consulted when ``HF_HUB_OFFLINE`` is set or the hub is unreachable.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from pathlib import Path

from weightstats.errors import LoadError, OfflineError, SpecError
from weightstats.sources.base import ModelSource, WeightTensor, one_line
from weightstats.sources.formats import SHARD_INDEX_EXT, index_shards, path_tensors
from weightstats.sources.layout import (
    choose_weight_file,
    is_weight_file,
    subfolders_with_weights,
)

# Seconds for the one request that tells whether the hub is reachable at all.
PROBE_TIMEOUT = 10


def hub_cache_dir() -> Path:
    """The hub cache (``$HF_HUB_CACHE``, default ``$HF_HOME/hub``), read at call time."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (in the environment now or at import)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return bool(constants.HF_HUB_OFFLINE) or env in ("1", "true", "yes", "on")


def cached_repo_files(repo_id: str, revision: str | None = None) -> dict[str, Path]:
    """The files of ``repo_id`` at ``revision`` (a branch, tag or commit; default main) in the
    hub cache, path in repo -> local path, from ``huggingface_hub.scan_cache_dir``; empty
    when the revision is not cached."""
    from huggingface_hub import scan_cache_dir

    cache = hub_cache_dir()
    if not (cache / ("models--" + repo_id.replace("/", "--"))).is_dir():
        return {}  # scanning a whole cache only to find nothing: skip it
    rev = revision or "main"
    try:
        info = scan_cache_dir(cache)
    except Exception:  # an unreadable cache reads as an empty one
        return {}
    for repo in info.repos:
        if repo.repo_id != repo_id or repo.repo_type != "model":
            continue
        for cached in repo.revisions:
            if rev in cached.refs or cached.commit_hash == rev:
                return {f.file_path.relative_to(cached.snapshot_path).as_posix(): f.file_path
                        for f in cached.files}
    return {}


def cached_hub_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    """``filename`` of ``repo_id`` in the hub cache (``huggingface_hub.try_to_load_from_cache``),
    or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir(),
                                   revision=revision)
    return Path(found) if isinstance(found, str) else None


def parse_hf_spec(spec: str) -> tuple[str, str | None, str]:
    """Split ``hf:ORG/REPO@REV/sub/file`` into (repo_id, revision, path-in-repo).

    Raises
    ------
    SpecError
        Empty or malformed spec.
    """
    rest = spec[3:].strip().strip("/")
    usage = "use hf:ORG/REPO[@REVISION][/path/in/repo], e.g. hf:stabilityai/sd-vae-ft-mse"
    if not rest:
        raise SpecError(f"{spec!r} names no repository: {usage}")
    parts = rest.split("/")
    # A one-segment repo ("gpt2") when the first part carries a revision or the next part is
    # already a file name; otherwise ORG/REPO.
    n = 1 if ("@" in parts[0] or len(parts) == 1 or is_weight_file(parts[1])) else 2
    repo, path = "/".join(parts[:n]), "/".join(parts[n:])
    repo, _, rev = repo.partition("@")
    if not repo or any(not p for p in parts[:n]) or (_ and not rev):
        raise SpecError(f"malformed Hugging Face spec {spec!r}: {usage}")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as err:
        raise SpecError(f"invalid repository id {repo!r} ({one_line(err, 100)}): {usage}") from None
    return repo, rev or None, path


class HFSource(ModelSource):
    """Weights from a Hugging Face hub repo (safetensors, sharded, diffusers, .bin, .pt)."""

    kind_of_source = "hf"

    def __init__(self, spec: str, *, allow_pickle: bool = False) -> None:
        self.repo_id, self.revision, self.path = parse_hf_spec(spec)
        self.allow_pickle = allow_pickle
        label = "hf-" + self.repo_id.replace("/", "-")
        if self.revision:
            label += "-" + self.revision
        if self.path:
            label += "-" + posixpath.splitext(self.path.removesuffix(SHARD_INDEX_EXT))[0]
        at = f"@{self.revision}" if self.revision else ""
        super().__init__(label, spec, f"Hugging Face hub {self.repo_id}{at} {self.path}".strip())
        self._local: Path | None = None

    # ------------------------------------------------------------------ choosing the file
    def _choose(self, files: list[str]) -> str:
        where = f"hf:{self.repo_id}"
        if self.path and is_weight_file(self.path):
            if self.path not in files:
                raise SpecError(f"{self.path} is not in {where}: check the path (files: "
                                f"{', '.join(f for f in files if is_weight_file(f))[:200]})")
            return self.path
        chosen = choose_weight_file(files, subfolder=self.path, where=where)
        if chosen is None:
            subs = subfolders_with_weights(files)
            hint = (f"name a subfolder, e.g. {where}/{subs[0]}" if subs
                    else "this repo has no weights files weightstats can read")
            raise SpecError(f"{where}/{self.path} has no weights file: {hint}".replace("/:", ":"))
        return chosen

    def _cache_hint(self) -> Path:
        return hub_cache_dir() / ("models--" + self.repo_id.replace("/", "--"))

    # ------------------------------------------------------------------ online / cached
    def _download(self) -> Path:
        from huggingface_hub import HfApi, hf_hub_download

        cache = hub_cache_dir()
        # model_info makes one request (list_repo_files retries with backoff for ~25 s when
        # offline). Downloads use the user's revision, not info.sha, so that huggingface_hub
        # records refs/<revision> and a later offline run finds the files.
        info = HfApi().model_info(self.repo_id, revision=self.revision, timeout=PROBE_TIMEOUT)
        files = [s.rfilename for s in info.siblings or []]
        chosen = self._choose(files)
        rev = self.revision
        local = Path(hf_hub_download(self.repo_id, chosen, revision=rev, cache_dir=cache))
        if chosen.endswith(SHARD_INDEX_EXT):
            folder = posixpath.dirname(chosen)
            for shard in index_shards(local):
                hf_hub_download(self.repo_id, posixpath.join(folder, shard.name),
                                revision=rev, cache_dir=cache)
        return local

    def _cached(self, reason: str) -> Path:
        expected = self.path if is_weight_file(self.path) else "model.safetensors"
        files = cached_repo_files(self.repo_id, self.revision)
        if files:
            chosen = self._choose(list(files))
            local = files[chosen]
            missing = []
            if chosen.endswith(SHARD_INDEX_EXT):
                missing = [s.name for s in index_shards(local) if not s.exists()]
            if not missing:
                return local
            expected = missing[0]
        # Short enough that the one error line keeps the cache path whole.
        raise OfflineError(
            f"hf:{self.repo_id} is not in the Hugging Face cache and {reason}: put {expected} "
            f"into {self._cache_hint()} (`hf download {self.repo_id}` where there is network), "
            "or use the built-in digits-vae"
        )

    def local_path(self) -> Path:
        """Download (or find in the cache) the weights file; returns its local path."""
        if self._local is not None:
            return self._local
        from huggingface_hub import errors

        if hub_offline():
            self._local = self._cached("HF_HUB_OFFLINE is set")
            return self._local
        try:
            self._local = self._download()
        except errors.GatedRepoError:
            raise LoadError(f"hf:{self.repo_id} is gated: accept its terms on huggingface.co "
                            "and log in with `hf auth login`") from None
        except errors.RepositoryNotFoundError:
            raise SpecError(f"repository {self.repo_id} not found on the Hugging Face hub (or "
                            "private): check the name, or log in with `hf auth login`") from None
        except errors.RevisionNotFoundError:
            raise SpecError(f"revision {self.revision!r} not found in {self.repo_id}: use a "
                            "branch, tag or commit that exists (default: main)") from None
        except errors.RemoteEntryNotFoundError:
            raise SpecError(f"{self.path} not found in {self.repo_id}: check the path") from None
        except (SpecError, LoadError):
            raise
        except Exception as err:  # connection refused, DNS, timeouts: fall back to the cache
            reason = f"the hub is unreachable ({type(err).__name__})"
            self._local = self._cached(reason)
        return self._local

    def _tensors(self) -> Iterator[WeightTensor]:
        yield from path_tensors(self.local_path(), self.allow_pickle)
