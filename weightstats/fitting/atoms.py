"""Atoms: values a continuous law cannot repeat (pruned zeros, quantization levels, clipping).

A tensor with 30% exact zeros has no density: a continuous family can put an ever narrower spike on
the zeros, so its likelihood is unbounded (generalized normal runs to beta -> 0, scale -> 0). Such
values are *atoms*. The fitter models them as point masses with their own weights and fits the
continuous families to the remaining values; the likelihood is then taken with respect to Lebesgue
plus counting measure and is well defined:

    L = prod_j pi_j ** c_j  *  (1 - sum_j pi_j) ** n_c  *  prod_{i continuous} f(x_i),

maximized by pi_j = c_j / n. The atom factor is the same for every family, so comparisons between
families (log-likelihood differences, Vuong and LR tests, AIC/BIC ranks) are unaffected by it.

Detection (``find_atoms``). A continuous law stored in floating point puts, on a value ``v``, the
mass of the rounding cell around ``v``: about ``lam = n * f(v) * w(v)`` values are expected there,
where ``w(v)`` is the width of the cell at the storage precision (half the gap to each neighbouring
float) and ``n * f(v)`` is estimated from the ``NEIGHBOURS`` nearest distinct values on each side
(the larger of the two one-sided estimates, so a hole next to ``v`` cannot make it look small).
The count ``c`` on ``v`` is then approximately Poisson(lam), and ``v`` is an atom when

    P(Poisson(lam) >= c) < ALPHA * lam / n.

The right-hand side spreads a total error rate ALPHA over all rounding cells in proportion to their
expected counts (they sum to n), so by the union bound the expected number of false atoms in a
continuous tensor is at most ALPHA, however many values it has. Exact zeros are the first case
(their float cell is ~1e-45 wide, so two zeros are already implausible); any value that repeats too
often is treated the same way. The storage precision is the coarsest of bfloat16, float16, float32
and float64 that holds every value exactly (a float16 checkpoint cast to float32 repeats values far
more often than float32 allows, and that is rounding, not atoms).

The counted path (``find_atoms_counted``) holds a 16-bit tensor as its distinct values and their
counts. ``fitting.runs.SortedRuns`` reads those like the sorted array (by position and by
``np.searchsorted``), so the test above runs unchanged on at most 65,536 values instead of the
tensor's millions and finds the same atoms; the storage precision depends on the set of values
only, so the distinct values give it.

Three readings follow from the atoms:

* **point masses** (``modelled``): fits run on the continuous remainder; the table shows the atom
  mass and a flag such as "30.0% exact zeros modelled as a point mass".
* **pruned** (``pruned_c``): exact zeros plus a hole (-c, c) in the continuous remainder that
  would hold at least ``HOLE_MIN_EXPECTED`` values at the density just outside it, i.e. magnitude
  pruning: "pruned: |w| < c removed (70% zeros)". The survivors follow a law truncated to
  |x| >= c, and the families are fitted to them as such (``fitting.truncated``) instead of
  degenerating on the hole; the per-channel view, whose scores would mix the truncation into
  every channel, declines.
* **quantized** (``discrete``): the atoms carry all but a few values (``DISCRETE_SHARE``). The
  law is discrete, so the fitter declines with "quantized: k levels, step s" and reports the
  descriptives (whose excess kurtosis still describes the envelope). Why no fit: with every value
  on an atom nothing continuous is left to fit, and fitting the families to the raw levels brings
  back the unbounded likelihood; the honest continuous model of a quantized tensor is a grouped
  (interval-censored) likelihood, F(v + s/2) - F(v - s/2) per level, which would describe the
  envelope the quantizer rounded, not the stored weights, and is not implemented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from .floatgrid import SIGNIFICAND_BITS, half_cells, storage_precision
from .runs import SortedRuns

ALPHA = 1e-3  # expected number of false atoms in a continuous tensor (union bound)
NEIGHBOURS = 64  # values on each side behind the local density estimate
HOLE_MIN_EXPECTED = 20.0  # P(no value in a hole expected to hold 20) = exp(-20) = 2e-9
HOLE_MAX_ASYMMETRY = 10.0  # a hole without zeros: its edges at most this many values apart
DISCRETE_SHARE = 0.05  # below this share of continuous values a tensor is read as quantized
_CHUNK = 1 << 20

def _log_poisson_tail(c: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """log P(Poisson(lam) >= c), accurate where the probability underflows."""
    with np.errstate(divide="ignore"):
        tail = special.gammainc(c, lam)  # the regularized lower incomplete gamma P(c, lam)
        approx = c * np.log(lam) - lam - special.gammaln(c + 1)  # leading term for small lam
        return np.where(tail > 0, np.log(np.where(tail > 0, tail, 1.0)), approx)


def _first_index(xs, j: np.ndarray) -> np.ndarray:
    """Index of the first value equal to ``xs[j]``: ``j`` itself unless a tie precedes it (rare
    in a continuous sample: a gather and a comparison instead of a binary search per value)."""
    if isinstance(xs, SortedRuns):
        return xs.run_bounds(j)[0]
    tied = (j > 0) & (xs[np.maximum(j - 1, 0)] == xs[j])
    out = j.copy()
    if tied.any():
        out[tied] = np.searchsorted(xs, xs[j[tied]], "left")
    return out


def _end_index(xs, j: np.ndarray) -> np.ndarray:
    """One past the index of the last value equal to ``xs[j]`` (see ``_first_index``)."""
    if isinstance(xs, SortedRuns):
        return xs.run_bounds(j)[1]
    last = xs.size - 1
    tied = (j < last) & (xs[np.minimum(j + 1, last)] == xs[j])
    out = j + 1
    if tied.any():
        out[tied] = np.searchsorted(xs, xs[j[tied]], "right")
    return out


def _test_runs(xs: np.ndarray, values: np.ndarray, precision: str,
               bounds: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Boolean mask: which repeated ``values`` of sorted ``xs`` are atoms (see the module doc).

    ``bounds``: each value's first index and one past its last, where the caller knows them.
    """
    n = xs.size
    bits = SIGNIFICAND_BITS[precision]
    # Values computed in floating point from quantities of the tensor's size (a + (b - a) * u in
    # an initializer, w - lr * g in training) resolve no finer than the unit roundoff at the
    # largest magnitude, however fine the float grid is near zero.
    floor = 2.0 ** -bits * max(abs(float(xs[0])), abs(float(xs[-1]))) / 2

    def halves(v):
        below, above = half_cells(v, precision)
        return np.maximum(below, floor), np.maximum(above, floor)

    # Keys in the sample's own dtype: a float64 key makes searchsorted copy a float32 sample.
    if bounds is None:
        keys = values.astype(xs.dtype)  # exact: every value is one of the sample's
        lo = np.searchsorted(xs, keys, "left")
        hi = np.searchsorted(xs, keys, "right")
    else:
        lo, hi = bounds
    count = (hi - lo).astype(np.float64)
    below, above = halves(values)
    # Density on each side from at least NEIGHBOURS values, counted over whole rounding cells:
    # from the edge of v's cell to the far edge of the cell of the NEIGHBOURS-th value, so a
    # coarse grid (float16, float8) compares v's count with its neighbours' counts.
    k_left = np.minimum(lo, NEIGHBOURS)
    k_right = np.minimum(n - hi, NEIGHBOURS)
    j_left, j_right = np.maximum(lo - k_left, 0), np.minimum(hi + k_right - 1, n - 1)
    w_left, w_right = xs[j_left], xs[j_right]
    in_left = lo - _first_index(xs, j_left)
    in_right = _end_index(xs, j_right) - hi
    # Near the float64 range the window widths overflow; an infinite or NaN width gives density 0
    # or NaN, and neither flags an atom.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        width_left = (values - below) - (w_left.astype(np.float64) - halves(w_left)[0])
        width_right = (w_right.astype(np.float64) + halves(w_right)[1]) - (values + above)
        dens = np.maximum(np.where(k_left > 0, in_left / width_left, 0.0),
                          np.where(k_right > 0, in_right / width_right, 0.0))
        # Values per unit length times the cell's width; never above n (another atom inside a
        # window inflates the density, and the threshold alpha * lam / n must stay below alpha).
        lam = np.minimum(dens * (below + above), n)
        return _log_poisson_tail(count, lam) < math.log(ALPHA / n) + np.log(lam)


def _grid(values: np.ndarray) -> float | None:
    """The step of an evenly spaced grid through ``values`` (sorted, >= 3), or None."""
    if values.size < 3:
        return None
    span = values - values[0]
    step0 = float(np.diff(values).min())
    k = np.rint(span / step0)
    step = float((k * span).sum() / (k * k).sum())  # least squares through the levels
    tol = 1e-4 * step + 4 * np.spacing(np.abs(values).max())
    return step if bool(np.all(np.abs(span - k * step) <= tol)) else None


@dataclass(frozen=True)
class Atoms:
    """The atoms of one sorted sample, and what they mean for the fit.

    Attributes
    ----------
    values, counts : ndarray
        Atom values (ascending) and how many times each occurs.
    n_total : int
        Size of the whole sample (atoms and continuous values).
    precision : str
        Storage precision the Poisson test used ("integer" for integer tensors).
    step : float or None
        Step of the evenly spaced grid the atoms lie on (three or more atoms), else None.
    pruned_c : float or None
        Magnitude-pruning threshold: exact zeros plus no continuous value with |x| < c.
    n_levels : int or None
        Distinct values of a quantized tensor (atoms and the few values seen once).
    """

    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    counts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    n_total: int = 0
    precision: str = ""
    step: float | None = None
    pruned_c: float | None = None
    n_levels: int | None = None
    # Set by ``atomfit.take_atoms`` when the atoms were cut out of the values the families are
    # fitted to: the whole sample's range, which the descriptives report.
    removed_from: tuple[float, float] | None = None
    # Set by the per-channel view: the atoms were left out before its transform, not modelled.
    left_out: bool = False

    def __bool__(self) -> bool:
        return bool(self.values.size)

    @property
    def n_atom_values(self) -> int:
        """Values that sit on atoms."""
        return int(self.counts.sum())

    @property
    def mass(self) -> float:
        """Share of all values that sit on atoms."""
        return self.n_atom_values / self.n_total if self.n_total else 0.0

    @property
    def n_continuous(self) -> int:
        return self.n_total - self.n_atom_values

    @property
    def zero_count(self) -> int:
        hit = self.values == 0
        return int(self.counts[hit].sum())

    @property
    def discrete(self) -> bool:
        """Nearly every value on one of several atoms: a quantized tensor."""
        return self.values.size >= 2 and self.n_continuous < DISCRETE_SHARE * self.n_total

    def loglik(self) -> float:
        """The atom factor of the log-likelihood at its maximum (pi_j = c_j / n)."""
        n, c = self.n_total, self.counts.astype(np.float64)
        nc = self.n_continuous
        return float((c * np.log(c / n)).sum() + (nc * math.log(nc / n) if nc else 0.0))

    def quantized_text(self) -> str:
        """"quantized: 255 levels, step 0.0039" (or "not evenly spaced")."""
        levels = f"{self.n_levels or self.values.size} levels"
        if self.step is not None:
            return f"quantized: {levels}, step {self.step:.4g}"
        return f"quantized: {levels}, not evenly spaced"

    def describe(self, treated: str = "") -> str:
        """One line for notes, flags and the summary; ``treated`` replaces "modelled as a point
        mass" (the per-channel view leaves atoms out instead)."""
        if self.pruned_c is not None:
            zeros = (f"{self.zero_count / self.n_total:.0%} zeros" if self.zero_count
                     else "zeros not stored")
            return f"pruned: |w| < {self.pruned_c:.4g} removed ({zeros})"
        if self.discrete or (self.values.size >= 3 and self.mass >= 0.5):
            return f"{self.quantized_text()} ({self.mass:.1%} of values on them)"
        zeros = self.zero_count
        parts = [f"{zeros / self.n_total:.1%} exact zeros"] if zeros else []
        others = self.values.size - (1 if zeros else 0)
        if others:
            top = np.argsort(-np.where(self.values == 0, -1, self.counts), kind="stable")[:3]
            shown = ", ".join(f"{self.values[i]:.6g}" for i in top if self.values[i] != 0)
            more = ", ..." if others > 3 else ""
            share = (self.n_atom_values - zeros) / self.n_total
            parts.append(f"{share:.1%} on {others} repeated value(s) ({shown}{more})")
        noun = "a point mass" if self.values.size == 1 else "point masses"
        treated = treated or ("left out before the per-channel transform" if self.left_out
                              else f"modelled as {noun}")
        return " and ".join(parts) + " " + treated

    def decline(self, min_n: int) -> tuple[str, str] | None:
        """(status, message) when no continuous family should be fitted, else None."""
        if self.n_continuous < min_n and not self.discrete:
            return "too_small", (f"{self.describe()}; only {self.n_continuous} other values, "
                                 f"at least {min_n} are needed")
        if self.pruned_c is not None:
            return "pruned", (f"{self.describe()}; the per-channel view cannot separate the "
                              f"truncation at |w| >= {self.pruned_c:.4g} from the channels' shapes: "
                              "fit without per-channel for truncated fits")
        if self.discrete:
            return "quantized", (f"{self.quantized_text()} ({self.mass:.1%} of values on them): a "
                                 "discrete law, so no continuous family is fitted")
        return None

    def continuous(self, xs: np.ndarray | SortedRuns) -> np.ndarray | SortedRuns:
        """The sorted values of ``xs`` that are not on an atom (a new array, or new runs)."""
        if isinstance(xs, SortedRuns):
            return xs.without(self.values)
        keys = self.values.astype(xs.dtype)
        lo = np.searchsorted(xs, keys, "left")
        hi = np.searchsorted(xs, keys, "right")
        edges = np.concatenate([[0], np.column_stack([lo, hi]).ravel(), [xs.size]])
        return np.concatenate([xs[a:b] for a, b in zip(edges[::2], edges[1::2], strict=True)
                               if b > a])

    def drop(self, values: np.ndarray) -> np.ndarray:
        """Mask of ``values`` that sit on an atom."""
        return np.isin(values, self.values)

    def annotate(self, rows: list[dict[str, Any]], described: dict[str, float]) -> None:
        """Add the point masses to the fitted rows and the descriptives, in place.

        The rows' log-likelihoods become those of the mixed model (w.r.t. Lebesgue plus
        counting measure), over all ``n_total`` values, and each atom's weight counts as a
        parameter in AIC/BIC; every family gets the same terms, so ranks and tests are unchanged.
        """
        described.update(atom_mass=self.mass, n_atoms=float(self.values.size))
        if not self:
            return
        described["zero_fraction"] = self.zero_count / self.n_total
        if self.left_out:  # the per-channel view: no point masses in its likelihood
            for row in rows:
                row["flags"] = "; ".join(f for f in (row["flags"], self.describe()) if f)
            return
        described.update(min=self.removed_from[0], max=self.removed_from[1])
        n, ll_atoms, extra = self.n_total, self.loglik(), int(self.values.size)
        for row in rows:
            k = row["n_params"] + extra
            ll = row["loglik"] + ll_atoms
            row.update(n=n, n_params=k, loglik=ll, loglik_per_weight=ll / n, aic=2 * k - 2 * ll,
                       bic=k * math.log(n) - 2 * ll,
                       flags="; ".join(f for f in (row["flags"], self.describe()) if f))

    def summary(self, limit: int = 20) -> dict:
        """JSON-safe description: mass, counts and the largest atoms."""
        order = np.argsort(-self.counts, kind="stable")[:limit]
        return {"atom_mass": self.mass, "n_atoms": int(self.values.size),
                "zero_count": self.zero_count, "precision": self.precision, "step": self.step,
                "pruned_c": self.pruned_c, "description": self.describe(),
                "atoms": [{"value": float(self.values[i]), "count": int(self.counts[i])}
                          for i in sorted(order)]}


def _hole(rest: np.ndarray, precision: str, symmetric: bool = False) -> float | None:
    """Magnitude-pruning threshold c if the sorted continuous values skip (-c, c), else None.

    The hole is the stretch between the rounding cells of the nearest values on either side,
    less the cell of zero itself (values there round to the zero atom); it is real when, at the
    density just outside it (from NEIGHBOURS values each side), it should hold at least
    HOLE_MIN_EXPECTED values. Without exact zeros (pruned weights stored sparse) the hole must
    also be symmetric, |lo| and hi no further apart than ``HOLE_MAX_ASYMMETRY`` values' worth at
    that density, which a law with two separate modes does not mimic by chance.
    """
    i = int(np.searchsorted(rest, 0.0))
    if i < 2 or i > rest.size - 2:
        return None
    edge = np.array([rest[i - 1], rest[i], rest[max(i - NEIGHBOURS, 0)],
                     rest[min(i + NEIGHBOURS - 1, rest.size - 1)], 0.0], dtype=np.float64)
    below, above = half_cells(edge, precision)
    lo, hi, far_lo, far_hi = edge[:4]
    n_left = i - int(np.searchsorted(rest, rest[max(i - NEIGHBOURS, 0)], "left"))
    n_right = int(np.searchsorted(rest, rest[min(i + NEIGHBOURS - 1, rest.size - 1)], "right")) - i
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        left = n_left / ((lo + above[0]) - (far_lo - below[2]))
        right = n_right / ((far_hi + above[3]) - (hi - below[1]))
        width = (hi - below[1]) - (lo + above[0]) - (below[4] + above[4])
        expected = 0.5 * (left + right) * width  # values the hole would hold at the outer density
    if not math.isfinite(expected):  # widths beyond the float range: no density to judge by
        return None
    if symmetric and 0.5 * (left + right) * abs(hi + lo) > HOLE_MAX_ASYMMETRY:
        return None
    return min(-lo, hi) if expected >= HOLE_MIN_EXPECTED else None


def _integer_atoms(values: np.ndarray, counts: np.ndarray, n: int) -> Atoms:
    """An integer tensor is a grid by construction: every level that repeats is an atom.

    ``values`` are the tensor's distinct levels (sorted), ``counts`` how often each occurs.
    """
    if values.size > n // 2:  # mostly distinct integers: treat them as continuous
        return Atoms(n_total=n, precision="integer")
    return Atoms(values.astype(np.float64), counts.astype(np.int64), n, "integer",
                 _grid(values.astype(np.float64)), n_levels=int(values.size))


def _distinct(xs: np.ndarray) -> np.ndarray:
    """The distinct values of sorted ``xs``. Not np.unique: it sorts again, and NumPy's AVX-512
    float16 sort leaves arrays with many ties out of order on some CPUs."""
    return xs[np.concatenate([[True], xs[1:] != xs[:-1]])]


def find_atoms(xs: np.ndarray, dtype: str = "") -> Atoms:
    """Atoms of a sorted, finite, non-constant sample (see the module docstring for the test).

    Parameters
    ----------
    xs : ndarray
        Sorted finite values, in the dtype they were stored in or float64.
    dtype : str
        The tensor's dtype name as loaded ("int8", "float16", ...); integer dtypes are grids.

    Returns
    -------
    Atoms
        Empty (falsy) when no value repeats more often than a continuous law allows.
    """
    n = int(xs.size)
    if dtype.startswith(("int", "uint")):
        return _integer_atoms(*np.unique(xs, return_counts=True), n)
    precision = storage_precision(xs, dtype)
    found: list[np.ndarray] = []
    for start in range(0, n - 1, _CHUNK):
        block = xs[start:start + _CHUNK + 1]
        tie = np.flatnonzero(block[1:] == block[:-1])  # block[i] == block[i + 1]
        if tie.size:
            # Each run of equal values is a group of consecutive ties: its first index and one
            # past its last come from the scan; a run cut by the block's edges is looked up.
            opens = np.concatenate([[True], np.diff(tie) != 1])
            closes = np.concatenate([opens[1:], [True]])
            lo, hi = tie[opens] + start, tie[closes] + start + 2
            cut = (lo == start) | (hi == start + block.size)
            if cut.any():
                lo[cut] = _first_index(xs, lo[cut])
                hi[cut] = _end_index(xs, hi[cut] - 1)
            candidates = block[tie[opens]].astype(np.float64) + 0.0  # -0.0 is the atom 0.0
            found.append(candidates[_test_runs(xs, candidates, precision, (lo, hi))])
    values = np.unique(np.concatenate(found)) if found else np.empty(0)
    return _read_atoms(xs, values, precision)


def find_atoms_counted(values: np.ndarray, counts: np.ndarray, dtype: str = "") -> Atoms:
    """``find_atoms`` of the sample holding each of ``values`` ``counts`` times, in
    O(distinct values): the same atoms, counts, precision, grid and pruning threshold as
    ``find_atoms(np.repeat(values, counts), dtype)``.

    Parameters
    ----------
    values : ndarray
        Distinct finite values, sorted ascending, float64, in data units; at least two.
    counts : ndarray
        Positive whole numbers (int64): how often each value occurs.
    dtype : str
        The tensor's stored dtype name ("bfloat16", "int8", ...).
    """
    runs = SortedRuns(values, counts)
    if dtype.startswith(("int", "uint")):
        return _integer_atoms(runs.values, runs.counts, runs.size)
    # The storage precision depends on the set of values only, not on how often each occurs.
    precision = storage_precision(runs.values, dtype)
    repeated = runs.counts > 1
    candidates = runs.values[repeated].astype(np.float64) + 0.0  # the repeated values
    if candidates.size:
        bounds = tuple(b[repeated] for b in runs.all_bounds())
        candidates = candidates[_test_runs(runs, candidates, precision, bounds)]
    return _read_atoms(runs, candidates, precision)


def _read_atoms(xs: np.ndarray | SortedRuns, values: np.ndarray, precision: str) -> Atoms:
    """The ``Atoms`` of sorted ``xs`` (an array or its runs) whose atom values the Poisson test
    found: their counts, and the quantized or pruned reading they give."""
    n = int(xs.size)
    if not values.size:
        # Pruned weights stored sparse: no zeros, but a symmetric hole (-c, c) all the same.
        return Atoms(n_total=n, precision=precision, pruned_c=_hole(xs, precision, symmetric=True))
    keys = values.astype(xs.dtype)
    counts = np.searchsorted(xs, keys, "right") - np.searchsorted(xs, keys, "left")
    atoms = Atoms(values, counts.astype(np.int64), n, precision, _grid(values))
    if atoms.discrete:  # the few values off the atoms are levels too (seen once): all on the grid?
        levels = (xs.values if isinstance(xs, SortedRuns) else _distinct(xs)).astype(np.float64)
        return Atoms(values, atoms.counts, n, precision, _grid(levels), n_levels=int(levels.size))
    if atoms.n_continuous >= 2:
        c = _hole(atoms.continuous(xs), precision, symmetric=not atoms.zero_count)
        if c is not None:
            atoms = Atoms(values, atoms.counts, n, precision, atoms.step, c)
    return atoms
