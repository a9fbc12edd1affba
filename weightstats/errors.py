"""User-facing errors: one line that names the problem and the fix."""

from __future__ import annotations


class WeightstatsError(Exception):
    """An error the user can act on; the CLI prints ``str(err)`` on one line, no traceback."""


class SpecError(WeightstatsError):
    """A model spec that does not resolve (unknown name, malformed spec, missing file)."""


class LoadError(WeightstatsError):
    """A file or download that exists but cannot be read as weights."""


class OfflineError(LoadError):
    """Weights are not cached and the network is unreachable."""


class OptionError(WeightstatsError):
    """An option value out of range (sample size, family name, replicates)."""
