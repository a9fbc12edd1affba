"""The one validator of fitting options, shared by ``fit_tensor``, ``fit_model``, ``select`` and
the CLI, so that all of them accept and refuse the same values with the same one-line message.

Every check runs before any weights are read. Whole numbers are ints (NumPy integers and whole
floats such as ``5e3`` included); booleans, strings and fractions are refused rather than
silently converted. Family names go through the fitter's registry
(:func:`weightstats.fitting.families.get_family`), so its aliases (``gaussian``, ``student-t``,
``generalized-normal`` ...) work everywhere a family is named.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable
from typing import Any

from weightstats.errors import OptionError

# Upper bounds: far above any useful value, low enough that a typo cannot start a
# never-ending run or a memory bomb (the bootstrap draws ks_replicates x ks_sample values per
# table; a histogram of `bins` counts is stored per layer in report.json).
MAX_JOBS = 256
MIN_KS_SAMPLE = 10
MIN_KS_REPLICATES = 19  # the smallest count whose Monte Carlo p-value can reach 0.05
MAX_KS_SAMPLE = 10_000_000
MAX_KS_REPLICATES = 1_000_000
MAX_BINS = 100_000
MAX_SEED = 2**64 - 1
ALL_KINDS = "all"


def _label(name: str, flags: bool) -> str:
    """How an option is named in a message: ``--ks-sample`` (CLI, fit_model) or ``ks_sample``."""
    return "--" + name.replace("_", "-") if flags else name


def whole_number(value: Any, name: str, *, low: int, high: int | None = None,
                 flags: bool = False, unit: str = "") -> int:
    """``value`` as an int in ``[low, high]``, or a one-line OptionError naming the option.

    Parameters
    ----------
    value : Any
        An int, a NumPy integer or a whole float; bools, strings and fractions are refused.
    name : str
        The keyword name (``ks_sample``); shown as ``--ks-sample`` when ``flags``.
    low, high : int
        Inclusive bounds (``high`` None: unbounded).
    flags : bool
        Name the option as a command-line flag.
    unit : str
        Word after the bound ("weights").
    """
    label = _label(name, flags)
    number: int | None = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(float(value)) and float(value).is_integer()):
        number = int(value)
    if number is None:
        raise OptionError(f"{label} must be a whole number, got {value!r:.60}")
    unit = f" {unit}" if unit else ""
    if number < low:
        raise OptionError(f"{label} must be at least {low}{unit}, got {number}")
    if high is not None and number > high:
        raise OptionError(f"{label} must be at most {high:,}{unit}, got {number}")
    return number


def number_from_text(value: Any) -> Any:
    """Command-line text as the number it spells (``"5e3"`` -> 5000.0), for :func:`whole_number`
    to judge exactly as it judges a library caller's value; text that is no number is returned
    unchanged and refused there with the same message."""
    if not isinstance(value, str):
        return value
    for parse in (int, float):
        try:
            return parse(value.strip())
        except ValueError:
            pass
    return value


def _items(value: Any, what: str) -> list[str]:
    """``"a,b"`` or an iterable of strings as a list of stripped, non-blank strings."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, Iterable) and not isinstance(value, bytes | dict):
        items = list(value)
    else:
        raise OptionError(f"{what} must be a comma list or a sequence of names, "
                          f"got {value!r:.60}")
    bad = [v for v in items if not isinstance(v, str)]
    if bad:
        raise OptionError(f"{what} must be names (strings), got {bad[0]!r:.60}")
    return [v.strip() for v in items if v.strip()]


ALL_FAMILIES = "all"  # every registered family
ADD = "+"  # "+X": the default families, then X


def _spelling(text: str) -> str:
    """The registry's spelling rule: case, '-', '_' and spaces do not matter."""
    return "".join(ch for ch in text.strip().lower() if ch not in "-_ ")


def _groups() -> dict[str, tuple[str, ...]]:
    """Each registered group (``mixtures``) and its families, in registry order."""
    from weightstats.fitting.families import FAMILIES, families_in_group

    names = dict.fromkeys(f.group for f in FAMILIES.values() if f.group)
    return {group: families_in_group(group) for group in names}


def _suggest(item: str) -> str:
    """`` (did you mean X?)`` for a near miss among every accepted spelling, else ''."""
    import difflib

    from weightstats.fitting.families import FAMILIES

    table = {_spelling(s): f.name for f in FAMILIES.values() for s in (f.name, f.label, *f.aliases)}
    table.update({_spelling(g): g for g in _groups()})
    table[ALL_FAMILIES] = ALL_FAMILIES
    close = difflib.get_close_matches(_spelling(item), list(table), n=1, cutoff=0.6)
    return f" (did you mean {table[close[0]]}?)" if close else ""


def _unknown_family(item: str) -> OptionError:
    from weightstats.fitting.families import FAMILIES

    groups = "".join(f", {g} or +{g}" for g in _groups())
    return OptionError(f"unknown family {item[:60]}{_suggest(item.lstrip(ADD))}; valid families: "
                       f"{','.join(FAMILIES)} (any spelling of a name or label), "
                       f"{ALL_FAMILIES}{groups}; +NAME adds to the defaults")


def _expand(item: str) -> tuple[str, ...]:
    """One item of a family list: a family in any spelling, a group, ``all`` or ``+X``."""
    from weightstats.fitting.families import DEFAULT_FAMILIES, FAMILIES, get_family

    if item.startswith(ADD):
        added = _expand(item[1:].strip())
        return (*DEFAULT_FAMILIES, *added) if added else ()
    key = _spelling(item)
    if key == ALL_FAMILIES:
        return tuple(FAMILIES)
    for group, names in _groups().items():
        if key == _spelling(group):
            return names
    try:
        return (get_family(item).name,)
    except OptionError:
        return ()


def check_families(families: Any) -> tuple[str, ...]:
    """Canonical family names, deduplicated, in the order given.

    Each comma-separated item (or sequence element) is a family in any spelling the registry
    knows (name, display label or alias: ``Gaussian``, ``student-t``, ``generalized normal``),
    a group of families (``mixtures``: every registered family of that group), ``all`` (every
    registered family), or ``+X``: the default families followed by X (``+mixtures``). None
    means the default families.

    Raises
    ------
    OptionError
        An unknown item (with a did-you-mean), or none given.
    """
    from weightstats.fitting.families import DEFAULT_FAMILIES, FAMILIES

    if families is None:
        return DEFAULT_FAMILIES
    given = _items(families, "families")
    if not given:
        raise OptionError(f"no families given; choose from {','.join(FAMILIES)} or "
                          f"{ALL_FAMILIES}")
    names: list[str] = []
    for item in given:
        expanded = _expand(item)
        if not expanded:
            raise _unknown_family(item)
        names.extend(expanded)
    return tuple(dict.fromkeys(names))


def describe_families() -> str:
    """What ``--families`` accepts, from the registry (the CLI's help text)."""
    from weightstats.fitting.families import FAMILIES

    def shown(f: Any) -> str:
        return f.name if f.label.lower() == f.name else f"{f.name} ({f.label})"

    fams = list(FAMILIES.values())
    labelled = [f for f in fams if f.label.lower() != f.name][:1]
    examples = [f.label for f in labelled] + [
        a for f in fams if f not in labelled for a in f.aliases if "-" in a][:1]
    text = "Comma list of distribution families, each a name, label or alias in any case"
    text += f" (e.g. {', '.join(examples)})." if examples else "."
    text += f" Fitted by default: {', '.join(shown(f) for f in fams if f.default)}."
    off = [shown(f) for f in fams if not f.default and not f.group]
    if off:
        text += f" Also: {', '.join(off)}."
    for group, names in _groups().items():
        text += f" Group {group}: {', '.join(shown(FAMILIES[n]) for n in names)}."
    example = f" (e.g. {', '.join('+' + g for g in _groups())})" if _groups() else ""
    return text + f" {ALL_FAMILIES}: every family; +X: the defaults plus X{example}."


def check_kinds(kinds: Any) -> tuple[str, ...]:
    """Layer kinds in canonical order of the names given; ``"all"`` or None means every kind."""
    from weightstats.sources.kinds import KINDS

    if kinds is None:
        return KINDS
    given = [k.lower() for k in _items(kinds, "kinds")]
    if ALL_KINDS in given:
        return KINDS
    bad = [k for k in given if k not in KINDS]
    if bad or not given:
        raise OptionError(f"unknown kind {', '.join(bad) or '(none)'}; valid kinds: "
                          f"{','.join(KINDS)} (or all)")
    return tuple(dict.fromkeys(given))


def check_pattern(pattern: Any) -> str | None:
    """A layer-name glob, or ``re:<regex>`` whose regular expression compiles."""
    if pattern is None or pattern == "":
        return None
    if not isinstance(pattern, str):
        raise OptionError(f"layers must be a glob or 're:<regex>' string, got {pattern!r:.60}")
    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as err:
            raise OptionError(f"invalid regular expression {pattern[3:]!r} ({err}): fix the "
                              "pattern after 're:'") from None
    return pattern


def check_seed(seed: Any, *, flags: bool = False) -> int:
    """A seed NumPy accepts: a whole number from 0 to 2**64 - 1."""
    return whole_number(seed, "seed", low=0, high=MAX_SEED, flags=flags)


def check_fit_numbers(*, ks_sample: Any, ks_replicates: Any, seed: Any, bins: Any = 200,
                      flags: bool = False) -> dict[str, int]:
    """The numeric options every fit takes, checked and converted to int."""
    return {
        "ks_sample": whole_number(ks_sample, "ks_sample", low=MIN_KS_SAMPLE, high=MAX_KS_SAMPLE,
                                  flags=flags, unit="weights"),
        "ks_replicates": whole_number(ks_replicates, "ks_replicates", low=MIN_KS_REPLICATES,
                                      high=MAX_KS_REPLICATES, flags=flags),
        "seed": check_seed(seed, flags=flags),
        "bins": whole_number(bins, "bins", low=1, high=MAX_BINS, flags=flags),
    }


def check_min_size(min_size: Any, *, flags: bool = False) -> int:
    """Smallest tensor (in weights) worth fitting; 0 and 1 both keep every tensor with data."""
    return whole_number(min_size, "min_size", low=0, flags=flags, unit="weights")


def check_model_options(*, families: Any, kinds: Any, layers: Any = None, min_size: Any = 1,
                        ks_sample: Any = 5000, ks_replicates: Any = 1000, seed: Any = 0,
                        jobs: Any = 1, per_channel: Any = False) -> dict[str, Any]:
    """Every option of ``fit_model`` and ``weightstats fit``, named by their flags in messages.

    Returns
    -------
    dict
        ``families``, ``kinds`` (tuples of canonical names), ``layers`` (str or None),
        ``min_size``, ``ks_sample``, ``ks_replicates``, ``seed``, ``jobs`` (int) and
        ``per_channel`` (bool).
    """
    out: dict[str, Any] = {"families": check_families(families), "kinds": check_kinds(kinds)}
    out["layers"] = check_pattern(layers)
    out["min_size"] = check_min_size(min_size, flags=True)
    numbers_ = check_fit_numbers(ks_sample=ks_sample, ks_replicates=ks_replicates, seed=seed,
                                 flags=True)
    del numbers_["bins"]
    out.update(numbers_)
    out["jobs"] = whole_number(jobs, "jobs", low=1, high=MAX_JOBS, flags=True)
    out["per_channel"] = check_flag(per_channel, "per_channel", flags=True)
    return out


def check_flag(value: Any, name: str, *, flags: bool = False) -> bool:
    """A yes/no option: a bool (NumPy's too) or 0/1; anything else (a string "no") is refused."""
    import numpy as np

    if isinstance(value, bool | np.bool_) or (
            isinstance(value, numbers.Integral) and int(value) in (0, 1)):
        return bool(value)
    raise OptionError(f"{_label(name, flags)} must be True or False, got {value!r:.60}")


PATHS = ("auto", "counted", "values")


def check_path(path: Any, *, flags: bool = False) -> str:
    """How ``fit_tensor`` reads values: ``auto`` (counted for <= 16-bit dtypes, else values),
    ``counted`` (required: refused for other dtypes) or ``values`` (every value, sorted)."""
    if isinstance(path, str) and path.strip().lower() in PATHS:
        return path.strip().lower()
    raise OptionError(f"{_label('path', flags)} must be one of {', '.join(PATHS)}, "
                      f"got {path!r:.60}")


def check_array(x: Any) -> None:
    """Refuse what NumPy cannot turn into one rectangular array (a ragged list of lists).

    Tensors and arrays pass untouched (they are rectangular by construction); only plain
    Python sequences are converted here, which costs little next to the fit.
    """
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return
    import numpy as np

    try:
        np.asarray(x)
    except (ValueError, TypeError) as err:
        from weightstats.text import one_line

        raise OptionError(f"cannot read the values as one rectangular array of numbers "
                          f"({one_line(err, 120)}): pass a NumPy array, a torch tensor or "
                          "equal-length lists") from None


def check_channel_axis(channel_axis: Any, ndim: int, per_channel: bool) -> int:
    """An axis of the tensor (``-ndim <= axis < ndim``) when per-channel standardization uses it."""
    axis = whole_number(channel_axis, "channel_axis", low=-(2**31))
    if per_channel and ndim >= 2 and not -ndim <= axis < ndim:
        raise OptionError(f"channel_axis {axis} is out of range for a {ndim}-d tensor: use "
                          f"0 to {ndim - 1} (or -{ndim} to -1)")
    return axis
