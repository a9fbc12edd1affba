"""weightstats' cache folder, one definition for every cache (null tables, model names)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$WEIGHTSTATS_CACHE`` if set, else the platform's user cache folder (platformdirs:
    ``$XDG_CACHE_HOME/weightstats``, by default ``~/.cache/weightstats`` on Linux,
    ``~/Library/Caches/weightstats`` on macOS, ``%LOCALAPPDATA%\\weightstats\\Cache`` on Windows)."""
    env = os.environ.get("WEIGHTSTATS_CACHE", "").strip()
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("weightstats", appauthor=False))
