"""Pairwise likelihood comparisons: Vuong's test for non-nested pairs, LR tests for nested ones.

Nesting: normal ⊂ t (df → ∞, on the boundary of the parameter space, so the LR statistic is a 50:50
mixture of χ²₀ and χ²₁ — Self & Liang 1987), normal ⊂ gennorm (beta = 2, interior: χ²₁), Laplace ⊂
gennorm (beta = 1, interior: χ²₁; the Laplace cusp makes this approximate). Every other pair is
non-nested and uses Vuong (1989): z = Σd / (√n · sd(d)) with d the pointwise log-likelihood ratio,
two-sided p = erfc(|z| / √2).

t and gennorm overlap: both contain the Gaussian (df = ∞, beta = 2). Where the data are Gaussian
the two fits are the same law, d is ~0 everywhere and z is degenerate (it never rejects, whatever
α). Vuong's procedure for overlapping models (1989, section 6) is two-step: first test whether the
models are observationally equivalent (ω² = var d = 0), and only if that is rejected use z. Two
laws from these families coincide only at a Gaussian, and each family's best Gaussian is the same
(matching mean and variance), so equivalence is the joint hypothesis "the Gaussian is the best t
and the best gennorm": the pre-test is the two nested LR tests, Bonferroni-combined (reject if either
p < α/2), which keeps the whole procedure's false-positive rate at most α.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import special, stats

from .families import FAMILIES
from .families.base import CHUNK, dot

# (smaller, larger) -> (test name, boundary?), from each family's declared nesting.
NESTED = {(nest.inner, big.name): ("LR (boundary: ½χ²₀+½χ²₁)" if nest.boundary else "LR (χ²₁)",
                                   nest.boundary)
          for big in FAMILIES.values() for nest in big.nests}
ALPHA = 0.05
# Non-nested pairs that share a member: (a, b) -> the shared sub-family (the first they both nest).
OVERLAPPING = {(a, b): next(s for s, big in NESTED if big == a and (s, b) in NESTED)
               for a, b in itertools.combinations(FAMILIES, 2)
               if (a, b) not in NESTED and (b, a) not in NESTED
               and any(big == a and (s, b) in NESTED for s, big in NESTED)}
EQUIVALENT = "equivalent"

# How often AIC (penalty 2 per parameter) picks the larger of two nested families when the smaller
# is true: P(LR > 2) under the LR statistic's null law.
AIC_OVERPICK = {pair: float(stats.chi2.sf(2.0, 1)) * (0.5 if boundary else 1.0)
                for pair, (_, boundary) in NESTED.items()}


def _overpick_phrases(short: bool) -> list[str]:
    """Per kind of nesting (interior, then boundary): the over-pick rate and the pairs it concerns;
    the short form names the pairs of the boundary kind only, as the rarer case."""
    phrases = []
    for boundary in (False, True):
        groups: dict[str, list[str]] = {}
        for (small, big), (_, on_edge) in NESTED.items():
            if on_edge == boundary:
                groups.setdefault(big, []).append(FAMILIES[small].label)
        if not groups:
            continue
        rate = stats.chi2.sf(2.0, 1) * (0.5 if boundary else 1.0)
        pairs = " and ".join(f"{' or '.join(inner)} within {FAMILIES[big].label}"
                             for big, inner in groups.items())
        text = f"{rate:.1%}" if boundary else f"{rate:.0%}"
        if short:
            phrases.append(f"{text} for {pairs}" if boundary else f"{text} of the time")
        else:
            phrases.append(f"{text} of the time for {pairs}" + (" (a boundary)" if boundary else ""))
    return phrases


_PHRASES, _SHORT = _overpick_phrases(False), _overpick_phrases(True)
AIC_NOTE = ("AIC picks the larger of two nested families, when the smaller is true, about "
            + " and ".join(_PHRASES)) if _PHRASES else ""
AIC_NOTE_SHORT = (f"AIC over-picks the larger of two nested families ~{_SHORT[0]}"
                  + "".join(f" (~{p})" for p in _SHORT[1:])) if _SHORT else ""


def nested_pvalue(lr: float, boundary: bool) -> float:
    """p-value of a nested LR statistic: χ²₁, or ½χ²₀ + ½χ²₁ on a boundary, whose point mass at 0
    makes P(LR >= 0) = 1 (so LR = 0 gives p = 1, and p = ½·P(χ²₁ >= LR) only for LR > 0)."""
    if not lr > 0:
        return 1.0
    # special.chdtrc is what chi2.sf computes, without its ~50 µs of argument handling per call
    return float(special.chdtrc(1, lr)) * (0.5 if boundary else 1.0)


def nested_lr(total_small: float, total_big: float) -> float:
    """2·(ℓ_big - ℓ_small), and exactly 0 where it is within the rounding of the log-likelihoods
    (a t fit at the df cap is the Gaussian to ~1e-13 of ℓ; its rounding must not look like LR > 0)."""
    lr = 2.0 * (total_big - total_small)
    return lr if lr > 1e-12 * (abs(total_big) + abs(total_small)) else 0.0


def llr_moments(x: np.ndarray, logpdfs: dict, pairs: list[tuple[str, str]],
                weights: np.ndarray | None = None) -> dict:
    """Mean and variance of d = logpdf_a - logpdf_b over ``x`` for every pair, in chunks.

    ``logpdfs[name](chunk, out)`` writes the log-density up to a constant into ``out`` and returns
    the constant (``Family.log_kernel``): the constants move the means only, never the variances.
    ``weights``: how often each value of ``x`` occurs (the counted path's multiset); the moments
    are then those of the multiset written out.

    Each chunk evaluates every log-density once. Differences to the first family are centred, and
    their Gram matrix (six dot products for four families) gives every pair's sum of squares,
    instead of a difference and a dot product per pair; the differences are small numbers, so
    nothing cancels the way raw log-densities (all near -1.4) would. Per-chunk moments are merged
    with Chan et al.'s update, which is as accurate as a two-pass computation; memory stays at a
    few MB.
    """
    names = list(logpdfs)
    index = {name: i for i, name in enumerate(names)}
    n_seen = 0
    mean = np.zeros(len(names))
    gram = np.zeros((len(names), len(names)))
    buffer = np.empty((len(names), min(CHUNK, x.size)))
    constants = np.zeros(len(names))
    for i in range(0, x.size, CHUNK):
        chunk = x[i:i + CHUNK]
        w = None if weights is None else np.asarray(weights[i:i + CHUNK], dtype=np.float64)
        k = chunk.size if w is None else float(w.sum())
        values = buffer[:, :chunk.size]
        for j, name in enumerate(names):
            constants[j] = logpdfs[name](chunk, values[j])
        diffs = values[1:]  # to the first family, whose own row would be zeros
        diffs -= values[0]
        mean_c = np.zeros(len(names))
        mean_c[1:] = diffs.mean(axis=1) if w is None else np.einsum("ij,j->i", diffs, w) / k
        diffs -= mean_c[1:, None]
        mean_c += constants - constants[0]
        weighted = diffs if w is None else diffs * w
        gram_c = np.zeros((len(names), len(names)))  # row and column 0 stay zero
        for a in range(1, len(names)):
            for b in range(a, len(names)):
                gram_c[a, b] = gram_c[b, a] = dot(weighted[a - 1], diffs[b - 1])
        delta = mean_c - mean
        total = n_seen + k
        mean += delta * (k / total)
        gram += gram_c + np.outer(delta, delta) * (n_seen * k / total)
        n_seen = total
    out = {}
    for a, b in pairs:
        ia, ib = index[a], index[b]
        m2 = gram[ia, ia] - 2.0 * gram[ia, ib] + gram[ib, ib]
        out[(a, b)] = (float(mean[ia] - mean[ib]), float(m2) / n_seen)
    return out


def compare_pair(a: str, b: str, n: int, mean_d: float, var_d: float, total_a: float,
                 total_b: float) -> dict:
    """Compare families ``a`` and ``b`` from the moments of their pointwise log-likelihood ratio
    and their total log-likelihoods."""
    sd = float(np.sqrt(max(var_d, 0.0)))
    z = mean_d * np.sqrt(n) / sd if sd > 0 else 0.0
    nested = NESTED.get((a, b)) or NESTED.get((b, a))
    if nested:
        small, big = (a, b) if (a, b) in NESTED else (b, a)
        test, boundary = nested
        lr = nested_lr(total_a, total_b) if big == b else nested_lr(total_b, total_a)
        p = nested_pvalue(lr, boundary)
        favored = big if p < ALPHA else small
        statistic = lr
    else:
        test = "Vuong"
        p = float(special.erfc(abs(z) / np.sqrt(2.0)))
        favored = (a if z > 0 else b) if p < ALPHA else "neither"
        statistic = z
    return {"a": a, "b": b, "nested": bool(nested), "test": test, "statistic": float(statistic),
            "z": float(z), "pvalue": p, "favored": favored, "mean_llr_per_weight": mean_d}


def pretest_overlaps(comparisons: list[dict], totals: dict[str, float]) -> list[dict]:
    """Vuong's two-step procedure for the overlapping pairs (see the module docstring), in place.

    Where the equivalence pre-test does not reject, the pair's row says so: ``favored`` is
    "equivalent", ``pvalue`` is the pre-test's (the evidence that the two models differ at all) and
    ``z`` is kept for information only. Where it rejects, the row is the ordinary Vuong test.
    Without the shared family's fit the pre-test cannot run and the row says that instead.
    """
    for row in comparisons:
        pair = (row["a"], row["b"])
        shared = OVERLAPPING.get(pair) or OVERLAPPING.get(pair[::-1])
        if shared is None:
            continue
        if shared not in totals:
            row["test"] = f"Vuong (overlapping at the {shared}: no pre-test without its fit)"
            continue
        p_each = [nested_pvalue(nested_lr(totals[shared], totals[f]), NESTED[(shared, f)][1])
                  for f in pair]
        p_pre = min(1.0, 2.0 * min(p_each))
        if p_pre >= ALPHA:
            row.update(test=("Vuong two-step: overlap not rejected "
                             f"(both fits ≈ the {FAMILIES[shared].label})"),
                       pvalue=p_pre, favored=EQUIVALENT)
        else:
            row["test"] = "Vuong two-step (overlap rejected first)"
    return comparisons


def compare_pair_rows(x: np.ndarray, fits: dict, families: dict, a: str,
                      b: str) -> list[tuple[dict, dict[str, float]]]:
    """``compare_pair`` for each row of a row-sorted sample, as ``fit_tensor`` compares one tensor,
    given batched fits (``Family.fit_rows``) of ``a``, ``b`` and any other family by name. Returns
    (row, totals) per sample row, before :func:`pretest_overlaps` (which needs the totals), so the
    null studies of the tests and benchmarks can look at both steps of Vuong's procedure."""
    n = x.shape[1]
    out = []
    for i in range(x.shape[0]):
        d = (families[a].logpdf(x[i], *families[a].theta(fits[a], i))
             - families[b].logpdf(x[i], *families[b].theta(fits[b], i)))
        totals = {k: float(f.loglik[i]) for k, f in fits.items()}
        out.append((compare_pair(a, b, n, float(d.mean()), float(d.var()), totals[a], totals[b]),
                    totals))
    return out
