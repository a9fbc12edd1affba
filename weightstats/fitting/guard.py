"""The last line of defence around fit_tensor: a family whose fit raises costs that family, not the
layer, and a layer that cannot be fitted at all gets a status, never an exception.

Every known failure has its own fix in the families; this guard is for the ones nobody has found
yet. Option errors (``WeightstatsError``) still raise: they are the caller's to fix. ``MemoryError``
raises too: retrying family by family would only ask for the memory again.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable

from ..errors import WeightstatsError
from .families import get_family
from .result import FRAME_COLUMNS, TensorFit

FAILED_FLAG = "fit_failed"
NOT_FITTED_FLAG = "not_fitted"


def _reason(exc: BaseException) -> str:
    """One line: the exception's type and the first line of its message, at most 200 characters."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def _family_names(families) -> list[str]:
    from ..options import check_families  # the one reading of a family list (groups, "all")

    return list(check_families(families))


def failed_row(family: str, n: int, reason: str, *, flag: str = FAILED_FLAG) -> dict:
    """A table row for a family whose fit raised (or that cannot be fitted to this layer): NaN
    numbers, the reason in the flags."""
    row = {c: math.nan for c in FRAME_COLUMNS}
    row.update(family=family, n=n, n_params=get_family(family).n_params,
               flags=f"{flag}: {reason}")
    return row


def _layer_failure(fit: Callable, x, names: list[str], kwargs: dict, reason: str) -> TensorFit:
    defaults = {k: p.default for k, p in inspect.signature(fit).parameters.items()
                if p.default is not inspect.Parameter.empty}
    options = {k: kwargs.get(k, defaults.get(k)) for k in
               ("seed", "ks_sample", "ks_replicates", "per_channel", "bins")}
    shape = tuple(int(s) for s in getattr(x, "shape", ()))
    return TensorFit.failed("fit_failed", f"no family could be fitted ({reason})",
                            options={"families": names, **options}, shape_of_tensor=shape,
                            dtype=str(getattr(x, "dtype", "")).replace("torch.", ""))


def guard_families(fit: Callable[..., TensorFit]) -> Callable[..., TensorFit]:
    """Wrap ``fit_tensor``: on an unexpected exception, fit each family alone to find the ones that
    fail, refit the others together (comparisons and verdict among them only) and add a flagged
    row per failed family; if none fits, the layer's status is "fit_failed" with the reason."""

    @functools.wraps(fit)
    def guarded(x, families=None, **kwargs) -> TensorFit:
        args = (x,) if families is None else (x, families)
        try:
            return fit(*args, **kwargs)
        except (WeightstatsError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - the point: no data may crash a run
            first = _reason(exc)
        names = _family_names(families if families is not None else
                              inspect.signature(fit).parameters["families"].default)
        failures = {}
        for name in names:
            try:
                fit(x, (name,), **kwargs)
            except (WeightstatsError, MemoryError):
                raise
            except Exception as exc:  # noqa: BLE001
                failures[name] = _reason(exc)
        good = [name for name in names if name not in failures]
        if not good or not failures:  # all fail, or only their combination does
            return _layer_failure(fit, x, names, kwargs, first)
        try:
            result = fit(x, tuple(good), **kwargs)
        except (WeightstatsError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001
            return _layer_failure(fit, x, names, kwargs, _reason(exc))
        by_name = {row["family"]: row for row in result.rows}
        result.rows = [by_name.get(name) or failed_row(name, result.n, failures[name])
                       for name in names]
        result.options["families"] = names
        result.notes = [*result.notes, *(f"{name} not fitted: {why}"
                                         for name, why in failures.items())]
        return result

    return guarded
