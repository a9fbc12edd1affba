"""Pairwise likelihood comparisons: Vuong's test for non-nested pairs, LR tests for nested ones.

Nesting: normal ⊂ t (df → ∞, on the boundary of the parameter space, so the LR statistic is a 50:50
mixture of χ²₀ and χ²₁ — Self & Liang 1987), normal ⊂ gennorm (beta = 2, interior: χ²₁), Laplace ⊂
gennorm (beta = 1, interior: χ²₁; the Laplace cusp makes this approximate). Every other pair is
non-nested and uses Vuong (1989): z = Σd / (√n · sd(d)) with d the pointwise log-likelihood ratio,
two-sided p = erfc(|z| / √2).
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

# (smaller, larger) -> (test name, boundary?)
NESTED = {
    ("normal", "t"): ("LR (boundary: ½χ²₀+½χ²₁)", True),
    ("normal", "gennorm"): ("LR (χ²₁)", False),
    ("laplace", "gennorm"): ("LR (χ²₁)", False),
}
ALPHA = 0.05


def compare_pair(a: str, b: str, ll_a: np.ndarray, ll_b: np.ndarray, total_a: float,
                 total_b: float) -> dict:
    """Compare families ``a`` and ``b`` from their pointwise and total log-likelihoods."""
    n = ll_a.size
    d = ll_a - ll_b
    mean_d = float(d.mean())
    sd = float(d.std())
    z = mean_d * np.sqrt(n) / sd if sd > 0 else 0.0
    nested = NESTED.get((a, b)) or NESTED.get((b, a))
    if nested:
        small, big = (a, b) if (a, b) in NESTED else (b, a)
        test, boundary = nested
        lr = max(0.0, 2.0 * ((total_b - total_a) if big == b else (total_a - total_b)))
        p = float(stats.chi2.sf(lr, 1)) * (0.5 if boundary else 1.0)
        favored = big if p < ALPHA else small
        statistic = lr
    else:
        test = "Vuong"
        p = float(special.erfc(abs(z) / np.sqrt(2.0)))
        favored = (a if z > 0 else b) if p < ALPHA else "neither"
        statistic = z
    return {"a": a, "b": b, "nested": bool(nested), "test": test, "statistic": float(statistic),
            "z": float(z), "pvalue": p, "favored": favored, "mean_llr_per_weight": mean_d}
