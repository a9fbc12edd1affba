"""Short codes for the flags of a fit.

A fit's ``flags`` are sentences joined by ``"; "`` (``"df_at_cap: the t fit runs to the Gaussian
limit; null table at df=1e+06 (fit outside table range)"``): the fitter's full explanation, kept in
``TensorFit.rows`` and in report.json. The tables (layers.csv, the notebook views) show one short
code per flag instead (``df_at_cap;null_table_edge``), which a filter or a spreadsheet can match;
:data:`FLAG_CODES` says what each code means. A flag written as ``code: sentence`` gives its code;
the few sentences without one are recognised here.
"""

from __future__ import annotations

import re

# What each code means (README "Output files" and report.json's "flag_codes" show this legend).
FLAG_CODES: dict[str, str] = {
    "df_at_cap": "the Student-t df ran to its cap (the Gaussian limit); stored as inf",
    "df_at_bound": "the Student-t df stopped at the lower edge of its range",
    "beta_at_bound": "the generalized normal beta stopped at the edge of its range",
    "gsm_component_at_floor": "a Gaussian scale mixture component's scale stopped at its floor "
                              "(a near point mass)",
    "uniform_share_zero": "uniform + Student-t: no uniform part, the mixture is the Student-t",
    "uniform_share_one": "uniform + Student-t: every value sits in the uniform part",
    "not_converged": "the optimizer stopped short of a maximum",
    "shape_ci_unbounded": "the likelihood is nearly flat in the shape: the interval's upper end is inf",
    "shape_ci_sandwich": "no family fits: the shape interval is the robust (sandwich) one",
    "shape_ci_omitted": "no family fits and the robust interval is undefined: no interval",
    "null_table_edge": "the fitted shape lies outside the shipped null tables' grid: the nearest "
                       "table gave the KS/AD p-values",
    "bootstrap_pvalue": "KS/AD p-values by a parametric bootstrap of this very fit",
    "no_shape_estimate": "no shape estimate, so no p-values",
    "atoms": "repeated values (exact zeros, ...) modelled as point masses, or left out",
    "pruned": "magnitude-pruned tensor: fitted as laws truncated to |w| >= c",
    "fit_failed": "the family's fit raised an error (the reason is in report.json)",
    "not_fitted": "the family has no fit for this kind of tensor",
    "fit_note": "the fit is described in words (report.json, layers.md 'Fits in words')",
    "note": "another remark (its sentence is in report.json)",
}

_CODED = re.compile(r"^([a-z][a-z0-9_]*)(?::|$)")
# Sentences that carry no ``code:`` prefix, by what they say.
_SENTENCES = (
    ("null table at ", "null_table_edge"),
    ("p-values by parametric bootstrap", "bootstrap_pvalue"),
    ("no shape estimate", "no_shape_estimate"),
    ("point mass", "atoms"),
    ("left out before the per-channel", "atoms"),
    ("of values on them", "atoms"),
)


def flag_code(flag: str) -> str:
    """The short code of one flag sentence (``"note"`` for one this module does not know)."""
    text = flag.strip()
    match = _CODED.match(text)
    if match:
        return match.group(1)
    for phrase, code in _SENTENCES:
        if phrase in text:
            return code
    return "note"


def flag_codes(flags: object, note: object = "") -> str:
    """The codes of a row's flags, ``";"``-joined in their order, each once (``""`` for none).

    ``note`` is the row's fit note: the same sentence sits among the flags and becomes
    ``fit_note`` (it may itself hold ``"; "``, so it is taken out before splitting).
    """
    if not isinstance(flags, str) or not flags:
        return ""
    if isinstance(note, str) and note:
        flags = flags.replace(note, "fit_note")
    codes = [flag_code(f) for f in flags.split("; ") if f.strip()]
    return ";".join(dict.fromkeys(codes))
