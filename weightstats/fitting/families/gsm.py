"""Gaussian scale mixture: K Gaussians with one common centre and their own scales, K by BIC.

    f(x) = Σ_k w_k · φ((x - loc) / s_k) / s_k,     k = 1..K,  K = 1..K_MAX

Laplace and Student-t are themselves continuous scale mixtures of Gaussians; a finite mixture is
their nonparametric relative, and the model that pooling channels of different scales produces.
K = 1 is the Gaussian fit in closed form. Each K >= 2 is fitted by accelerated EM (``gsm_em``)
from three starts, and Newton (``gsm_newton``) takes every K whose BIC is near the row's best to
its maximum, verified by the Newton decrement (``converged``). Each row keeps the K of the
smallest BIC, 2K·log n - 2·loglik (free parameters: loc, K scales, K - 1 weights), so the
log-likelihood is never below the Gaussian's. Mixture likelihoods have several local maxima;
the three starts find the same maxima as 100 EM cycles from each, but a better one may exist.

Parameters are scale-free apart from loc and scale, as every family's are: ``scale`` is the
main component's (the largest weight: the bulk, which outliers in a far component of tiny weight
cannot inflate as they would the sd), and the shapes are (K, w_1..w_KMAX, r_1..r_KMAX) with
r_k = s_k / scale, components ordered by scale, unused ones at weight 0 and ratio 1. The
density uses the first K components only (weights renormalized), so a generic optimizer started
from a fit cannot switch on components that BIC left out.

EM runs on evenly spaced order statistics of rows over 1,024 values, Newton on all values. The
null law of D depends on all 2K - 1 shapes, so KS/AD p-values come from a parametric bootstrap of
each fit (``null_tables`` False), every replicate refitted with its own K, as the fit was made.

Magnitude-pruned tensors are not fitted (``truncated_fit`` False): the package's truncated fit is a
generic optimizer over every parameter, which for 11 parameters took about 2 minutes of CPU on
200,000 survivors and could stop below the Student-t's likelihood; the row says "not_fitted".
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .base import BatchFit, Family, ShapeDisplay, row_sum
from .gsm_em import FLOOR, collapsed, e_pass, robust_unit, sort_components, squarem
from .gsm_newton import newton

K_MAX = 4
_SUBSAMPLE = 32768
_EXTREMES = 16  # each side, added to the order statistics EM runs on
# Widest row (max - min in robust units) the mixtures are fitted to: s⁴ must stay finite.
_MAX_RANGE = 1e60
# EM only has to get near the optimum; Newton (gsm_newton) finishes and certifies it.
_EM_TOL, _EM_CYCLES = 1e-7, 15
# Each K starts EM three times (mixtures have local maxima): from nested central intervals, and
# from the K - 1 fit with a component added ``_GROW`` times narrower or broader. The starts race
# for ``_RACE_CYCLES`` cycles; the best of each row goes on.
_GROW, _RACE_CYCLES = 2.5, 5
# BIC units (2 nats): fits this close to a row's best are all taken to their exact maximum.
_BIC_MARGIN = 10.0
_LOG_2PI = float(np.log(2.0 * np.pi))
# Central-interval coverages whose Gaussian-equivalent half-widths start the K scales: inner
# intervals see the narrow components, outer ones the broad.
_START_COVER = {k: np.linspace(0.3, 0.98, k) for k in range(2, K_MAX + 1)}


def _start(x: np.ndarray, k: int, unit: np.ndarray, floor: np.ndarray):
    """(loc, s, w) to start EM with K = k: the median, the scales of nested central intervals
    pulled apart a little (equal scales would stay equal under EM), equal weights."""
    n = x.shape[1]
    cover = _START_COVER[k]
    lo = np.floor((1 - cover) / 2 * (n - 1)).astype(int)
    hi = np.ceil((1 + cover) / 2 * (n - 1)).astype(int)
    half = 0.5 * (x[:, hi] - x[:, lo])
    s = half / special.ndtri((1 + cover) / 2)
    s *= np.exp(0.35 * (np.arange(k) - (k - 1) / 2))
    s = np.maximum(np.where(np.isfinite(s) & (s > 0), s, unit[:, None]), floor[:, None])
    s = np.sort(s, axis=1)
    loc = 0.5 * (x[:, (n - 1) // 2] + x[:, n // 2])
    return loc, s, np.full_like(s, 1.0 / k)


def _one_component(x: np.ndarray, floor: np.ndarray):
    """K = 1: the Gaussian maximum-likelihood fit (sd floored like every component)."""
    n = x.shape[1]
    loc = x.mean(axis=1)
    with np.errstate(over="ignore"):  # squares beyond 1e308 (values ~1e200): redone below
        ss = row_sum(x, lambda c: (c - loc[:, None]) ** 2)
    sd = np.sqrt(ss / n)
    with np.errstate(divide="ignore", invalid="ignore"):  # rows replaced below
        ll = -0.5 * n * (_LOG_2PI + 2.0 * np.log(sd) + 1.0)  # the Gaussian family's, to the bit
    low = np.flatnonzero(~((sd >= floor) & np.isfinite(sd)))
    if low.size:
        # Squares that under- or overflowed are summed again in robust units; a constant
        # row stays at the floor, which bounds its likelihood.
        f, u = floor[low], floor[low] / FLOOR
        ss_u = row_sum(x[low], lambda c: ((c - loc[low, None]) / u[:, None]) ** 2)
        sd_low = u * np.sqrt(ss_u / n)
        fits = sd_low >= f
        with np.errstate(divide="ignore"):
            ll[low] = np.where(fits, -0.5 * n * (_LOG_2PI + 2.0 * np.log(sd_low) + 1.0),
                               -0.5 * n * _LOG_2PI - n * np.log(f) - 0.5 * ss_u / FLOOR**2)
        sd[low] = np.maximum(sd_low, f)
    return loc, sd[:, None], np.ones((x.shape[0], 1)), ll


def _coarse_size(n: int) -> int:
    """Evenly spaced order statistics EM runs on, a function of n alone (the observed fit and
    its bootstrap refits must be made alike): all values up to 1,024, then 512 (up to 2,048),
    1,024 (up to 65,536) and 32,768."""
    if n <= 1024:
        return n
    if n <= 2048:
        return 512
    return 1024 if n <= 2 * _SUBSAMPLE else _SUBSAMPLE


def _coarse(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns and weights of the values EM runs on: the ``_EXTREMES`` smallest and largest
    (weight 1: a few far outliers, which an even spacing would skip, need their own component)
    and about ``m`` evenly spaced order statistics between them, each weighted by the number of
    values it stands for, so the weights add up to n."""
    e = _EXTREMES
    step = max(1, (n - 2 * e) // m)
    inner = np.arange(e + step // 2, n - e, step)
    cols = np.concatenate([np.arange(e), inner, np.arange(n - e, n)])
    weight = np.concatenate([np.ones(e), np.full(inner.size, (n - 2 * e) / inner.size),
                             np.ones(e)])
    return cols, weight


def _polish(x, fit, floor, rows):
    """Newton from an EM result, for those of ``rows`` where it applies: not collapsed onto fewer
    components (a flat likelihood, see ``gsm_em.collapsed``) and no scale at its floor (a
    constraint); the other rows keep the EM result and its verdict."""
    loc, s, w, ll, conv = (v.copy() for v in fit)
    s_r, w_r = s[rows], w[rows]
    newton_ok = ~collapsed(s_r, w_r) & (s_r > floor[rows, None] * (1 + 1e-9)).all(axis=1)
    em_rows, rows = rows[~newton_ok], rows[newton_ok]
    if em_rows.size:  # EM on all values to a tight tolerance, with its own score check
        xs = x if em_rows.size == x.shape[0] else x[em_rows]
        e_loc, e_s, e_w, e_ll, e_conv = squarem(xs, loc[em_rows], s[em_rows], w[em_rows],
                                                np.ones(em_rows.size), floor[em_rows],
                                                max_cycles=200)
        better = e_ll >= ll[em_rows]
        take = em_rows[better]
        loc[take], s[take], w[take], ll[take] = e_loc[better], e_s[better], e_w[better], e_ll[better]
        conv[take] = e_conv[better]
    if rows.size:
        xs = x if rows.size == x.shape[0] else x[rows]
        p_loc, p_s, p_w, p_ll, p_conv = newton(xs, loc[rows], s[rows], w[rows], floor[rows])
        better = p_ll >= ll[rows]
        take = rows[better]
        loc[take], s[take], w[take], ll[take] = p_loc[better], p_s[better], p_w[better], p_ll[better]
        conv[take] = p_conv[better]
    return loc, s, w, ll, conv


def _grown(fit, floor, factor: float):
    """A start with one component more than ``fit``: its components at 90% of their weight and
    a new one at 10%, ``factor`` times the narrowest scale (factor < 1) or the broadest."""
    loc, s, w = fit[:3]
    new = s[:, :1] * factor if factor < 1 else s[:, -1:] * factor
    s = np.concatenate([s, np.maximum(new, floor[:, None])], axis=1)
    w = np.concatenate([0.9 * w, np.full((w.shape[0], 1), 0.1)], axis=1)
    return (loc.copy(), *sort_components(s, w))


def _better(a, b):
    """Per row, the fit of the higher log-likelihood (``a`` on ties)."""
    take = b[3] > a[3]
    return tuple(np.where(take.reshape((-1,) + (1,) * (u.ndim - 1)), v, u) for u, v in zip(a, b, strict=True))


def _bic(fits, n: int) -> np.ndarray:
    """BIC per row and K (rows, K_MAX): 2K·log n - 2·loglik, +inf where the fit failed."""
    bic = np.stack([2 * (k + 1) * np.log(n) - 2 * f[3] for k, f in enumerate(fits)], axis=1)
    return np.where(np.isfinite(bic), bic, np.inf)


def fit_all_k(x: np.ndarray):
    """Fits with K = 1..K_MAX for every row (a list of (loc, s, w, ll, conv)) and the rows' scale
    floors. K = 1 is the Gaussian fit, computed as the Gaussian family computes it. K >= 2 is
    fitted in robust units (median 0, spread 1), so any scale works; a row whose range exceeds
    ``_MAX_RANGE`` robust units (a value ~1e60 spreads out) is left at K = 1, marked not
    converged: its components' squared and fourth-power scales would overflow. Rows whose
    spread is within 1e-3..1e3 and median within 1e3 spreads of 0 are fitted as they are."""
    rows, n = x.shape
    unit = robust_unit(x)
    floor = FLOOR * unit
    loc1, s1, w1, ll1 = _one_component(x, floor)
    fits = [(loc1, s1, w1, ll1, np.ones(rows, bool))]
    with np.errstate(over="ignore", invalid="ignore"):
        ok = np.flatnonzero((x[:, -1] - x[:, 0]) / unit <= _MAX_RANGE)
    fits[0][4][np.setdiff1d(np.arange(rows), ok)] = False
    for k in range(2, K_MAX + 1):
        fits.append((np.zeros(rows), np.ones((rows, k)), np.full((rows, k), 1.0 / k),
                     np.full(rows, -np.inf), np.zeros(rows, bool)))
    if ok.size:
        xs = x if ok.size == rows else x[ok]
        med = 0.5 * (xs[:, (n - 1) // 2] + xs[:, n // 2])
        u = unit[ok]
        if np.all((u >= 1e-3) & (u <= 1e3) & (np.abs(med) <= 1e3 * u)):
            # Already in workable units (fit_tensor standardizes, the bootstrap draws standard
            # values): no copy of a long row.
            y, shift, scale, y_unit = xs, np.zeros(ok.size), np.ones(ok.size), u
        else:
            y, shift, scale, y_unit = (xs - med[:, None]) / u[:, None], med, u, np.ones(ok.size)
        log_scale = np.log(scale)
        for k, (loc, s, w, ll, conv) in enumerate(
                _fit_mixtures(y, ll1[ok] + n * log_scale, y_unit), 2):
            fit = fits[k - 1]
            fit[0][ok], fit[1][ok], fit[2][ok] = shift + scale * loc, scale[:, None] * s, w
            fit[3][ok], fit[4][ok] = ll - n * log_scale, conv
    return fits, floor


def _em_k(y, coarse, k: int, prev, weight, unit, floor):
    """EM fit with K = k from three starts (racing), on ``coarse`` (weighted order statistics
    of ``y``, or None: ``y`` itself), with its log-likelihood on all of ``y``."""
    exact = coarse is None
    coarse = y if exact else coarse
    fit = None
    for start in (_start(y, k, unit, floor), _grown(prev, floor, 1 / _GROW),
                  _grown(prev, floor, _GROW)):
        trial = squarem(coarse, *start, unit, floor, tol=_EM_TOL, max_cycles=_RACE_CYCLES,
                        weight=weight)
        fit = trial if fit is None else _better(fit, trial)
    fit = squarem(coarse, *fit[:3], unit, floor, tol=_EM_TOL, max_cycles=_EM_CYCLES,
                  weight=weight)
    if not exact:  # the EM result's likelihood on all values; Newton gives a verdict
        fit = (*fit[:3], e_pass(y, *fit[:3], stats=False)[0], np.zeros(y.shape[0], bool))
    return fit


def _fit_mixtures(y: np.ndarray, ll1: np.ndarray, unit: np.ndarray):
    """K = 2..K_MAX fitted to rows ``y`` of robust spread ``unit`` (near 1), given the K = 1
    log-likelihoods. A row
    stops adding components once one gains less than half a component's BIC price (½·log n
    nats; the rows not tried have log-likelihood -inf). EM to a
    loose tolerance (on the weighted order statistics of ``_coarse``, then evaluated on all
    values), and Newton takes every K whose BIC comes within ``_BIC_MARGIN`` of the row's best
    to its exact maximum on all values. A K further behind keeps its EM likelihood: what EM
    leaves to gain is far below the margin (100 cycles from every start changed no K and no
    log-likelihood by 1e-8 on 400 rows of 5,000 values from Gaussian, two-, three- and
    four-component laws)."""
    rows, n = y.shape
    floor = FLOOR * unit
    m = _coarse_size(n)
    cols, weight = _coarse(n, m) if m < n else (None, None)
    coarse = None if cols is None else y[:, cols]
    prev = _one_component(y, floor)  # starts read all values: cheap, and unweighted
    prev_ll = ll1
    go = np.arange(rows)  # rows still adding components
    fits = []
    for k in range(2, K_MAX + 1):
        fit = (np.zeros(rows), np.ones((rows, k)), np.full((rows, k), 1.0 / k),
               np.full(rows, -np.inf), np.zeros(rows, bool))
        if go.size:
            every = go.size == rows  # a single long row must not be copied
            y_go = y if every else y[go]
            c_go = coarse if coarse is None or every else coarse[go]
            part = _em_k(y_go, c_go, k, tuple(v[go] for v in prev[:3]), weight, unit[go],
                         floor[go])
            for whole, piece in zip(fit, part, strict=True):
                whole[go] = piece
            # Forward selection: a component that gains less than half its BIC price makes
            # a further one pointless (scale mixtures nest: K + 1 refines the K-fit's tails).
            go = go[fit[3][go] - prev_ll[go] > 0.5 * np.log(n)]
        prev, prev_ll = fit, fit[3]
        fits.append(fit)
    bic = _bic([(None, None, None, ll1), *fits], n)
    near = bic <= bic.min(axis=1, keepdims=True) + _BIC_MARGIN
    for k in range(2, K_MAX + 1):
        rows_k = np.flatnonzero(near[:, k - 1])
        if rows_k.size:
            fits[k - 2] = _polish(y, fits[k - 2], floor, rows_k)
    return fits


class GaussianScaleMixture(Family):
    name = "gsm"
    label = "Gaussian scale mixture"
    aliases = ("scale-mixture", "scale mixture", "gaussian-mixture", "gaussian scale mixture")
    color, marker = "#8c564b", "*"
    n_params = 2 * K_MAX
    shape_names = ("K", *(f"w{k}" for k in range(1, K_MAX + 1)),
                   *(f"r{k}" for k in range(1, K_MAX + 1)))
    null_tables = False
    truncated_fit = False  # a generic optimizer over every parameter is minutes per pruned layer
    bootstrap_replicates = 199
    default = False
    group = "mixtures"
    # For generic optimizers: K is a count (the density reads round(K)), weights are renormalized.
    shape_bounds = ((1.0, float(K_MAX)), *(((1e-6, 1.0),) * K_MAX), *(((1e-4, 1e4),) * K_MAX))
    shape_start = (float(K_MAX), *([1.0 / K_MAX] * K_MAX), 0.4, 0.7, 1.1, 1.8)
    shape_display = ShapeDisplay(symbol="K", title="Gaussian scale mixture: components (BIC)",
                                 shown_up_to=float(K_MAX), beyond="", digits=1)

    def fit_rows(self, x: np.ndarray, *, start: BatchFit | None = None) -> BatchFit:
        """Fit K = 1..K_MAX to every row and keep each row's BIC choice. ``start`` is not used:
        the observed fit must be made exactly as the bootstrap refits it."""
        rows, n = x.shape
        fits, floor = fit_all_k(x)
        best = np.argmin(_bic(fits, n), axis=1)
        loc = np.empty(rows)
        ll = np.empty(rows)
        conv = np.empty(rows, bool)
        s = np.ones((rows, K_MAX))
        w = np.zeros((rows, K_MAX))
        for k, (f_loc, f_s, f_w, f_ll, f_conv) in enumerate(fits):
            sel = best == k
            loc[sel], ll[sel], conv[sel] = f_loc[sel], f_ll[sel], f_conv[sel]
            s[sel, :k + 1], w[sel, :k + 1] = f_s[sel], f_w[sel]
        active = w > 0
        # The scale is the main component's (the largest weight): the bulk of the values, which
        # a far component of tiny weight (outliers) cannot inflate as it would the sd.
        scale = np.take_along_axis(s, np.argmax(w, axis=1)[:, None], 1)[:, 0]
        ratio = np.where(active, s / scale[:, None], 1.0)
        at_bound = (active & (s <= floor[:, None] * (1 + 1e-9))).any(axis=1)
        k_used = best + 1.0
        shapes = [k_used, *w.T, *ratio.T]
        return BatchFit(loc, scale, shapes[0], ll, at_bound, np.full(rows, np.nan), conv,
                        more=tuple(shapes[1:]), n_params=2 * (best + 1))

    def bound_flag(self, shape: float) -> str:
        return (f"gsm_component_at_floor: a component's scale stopped at {FLOOR:g} of the robust "
                "spread (a near point mass)")

    def fit_note(self, theta: tuple[float, ...]) -> str:
        k, w, r = _components(theta[2:])
        if k == 1:
            return "1 Gaussian component (the Gaussian fit)"
        parts = [f"{_percent(wi)} at {ri:.2g}x" for wi, ri in zip(w, r, strict=True)]
        return (f"{k} Gaussian components with a common centre: " + ", ".join(parts)
                + " the main component's scale")

    def logpdf(self, x, loc, scale, *shapes):
        k, w, r = _arrays(shapes)
        z = (np.asarray(x, dtype=float) - loc) / scale
        with np.errstate(divide="ignore"):  # unused components: log(0) = -inf drops them
            terms = [np.log(wi) - np.log(ri) - 0.5 * (z / ri) ** 2
                     for wi, ri in zip(w, r, strict=True)]
            mixed = special.logsumexp(np.stack(np.broadcast_arrays(*terms)), axis=0) \
                - 0.5 * _LOG_2PI - np.log(scale)
        # One component: the Gaussian's expression, operation for operation, so that a K = 1 fit
        # and the Gaussian fit give identical pointwise log-likelihoods (Vuong's z is then 0,
        # not a verdict drawn from rounding noise).
        z1 = z / r[0]
        single = -0.5 * z1 * z1 - np.log(scale) - 0.5 * _LOG_2PI - np.log(r[0])
        return np.where(k == 1, single, mixed)

    def cdf(self, x, loc, scale, *shapes):
        _, w, r = _arrays(shapes)
        z = (np.asarray(x, dtype=float) - loc) / scale
        return sum(wi * special.ndtr(z / ri) for wi, ri in zip(w, r, strict=True))

    def standard_rvs(self, rng, size, *shapes):
        k, w, r = _components(shapes)
        which = rng.choice(k, size=size, p=w)
        return rng.standard_normal(size) * np.asarray(r)[which]

    def frozen(self, loc, scale, *shapes):
        return FrozenGSM(self, float(loc), float(scale), tuple(float(v) for v in shapes))


def _percent(w: float) -> str:
    return f"{100 * w:.0f}%" if w >= 0.01 else f"{100 * w:.2g}%"


def _k_of(value) -> np.ndarray:
    return np.clip(np.rint(value), 1, K_MAX)


def _arrays(shapes):
    """Weights (renormalized over the first K components, zero beyond) and ratios, broadcastable
    arrays per component; scalars or per-row arrays alike."""
    k = _k_of(np.asarray(shapes[0], dtype=float))
    w_raw = [np.where(j < k, np.asarray(shapes[1 + j], dtype=float), 0.0) for j in range(K_MAX)]
    total = sum(w_raw)
    w = [wj / total for wj in w_raw]
    r = [np.where(j < k, np.asarray(shapes[1 + K_MAX + j], dtype=float), 1.0) for j in range(K_MAX)]
    return k, w, r


def _components(shapes) -> tuple[int, np.ndarray, np.ndarray]:
    """K and the K used (weight, ratio) pairs of one scalar parameter set."""
    k = int(_k_of(float(shapes[0])))
    w = np.asarray(shapes[1:1 + k], dtype=float)
    return k, w / w.sum(), np.asarray(shapes[1 + K_MAX:1 + K_MAX + k], dtype=float)


class FrozenGSM:
    """A fitted mixture with scipy's frozen-distribution interface; ``ppf`` by bisection between
    the components' own quantiles, which bracket the mixture's."""

    def __init__(self, family: GaussianScaleMixture, loc: float, scale: float, shapes: tuple):
        self.family, self.loc, self.scale, self.shapes = family, loc, scale, shapes
        self.k, self.w, self.r = _components(shapes)

    def logpdf(self, x):
        return self.family.logpdf(x, self.loc, self.scale, *self.shapes)

    def pdf(self, x):
        return np.exp(self.logpdf(x))

    def cdf(self, x):
        return self.family.cdf(x, self.loc, self.scale, *self.shapes)

    def sf(self, x):
        return self.family.cdf(2 * self.loc - np.asarray(x, dtype=float), self.loc, self.scale,
                               *self.shapes)

    def _standard_lower(self, p: np.ndarray) -> np.ndarray:
        """Standardized quantile of lower-tail probabilities p <= 1/2."""
        zq = special.ndtri(p)[..., None] * self.r  # the components' quantiles bracket the mixture's
        lo, hi = zq.min(axis=-1), zq.max(axis=-1)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            below = sum(wi * special.ndtr(mid / ri) for wi, ri in zip(self.w, self.r, strict=True)) < p
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
            if np.all(hi - lo <= 1e-15 * np.maximum(np.abs(hi), 1e-300)):
                break
        return 0.5 * (lo + hi)

    def ppf(self, q):
        q = np.asarray(q, dtype=float)
        upper = q > 0.5
        z = self._standard_lower(np.where(upper, 1.0 - q, q))
        z = np.where(upper, -z, z)
        z = np.where(q == 0.5, 0.0, z)
        z = np.where((q < 0) | (q > 1) | np.isnan(q), np.nan, z)
        return self.loc + self.scale * z

    def isf(self, q):
        return self.ppf(1.0 - np.asarray(q, dtype=float))

    def rvs(self, size=None, random_state=None):
        rng = np.random.default_rng(random_state)
        shape = () if size is None else size
        return self.loc + self.scale * self.family.standard_rvs(rng, shape, *self.shapes)

    def mean(self) -> float:
        return self.loc

    def median(self) -> float:
        return self.loc

    def std(self) -> float:
        return self.scale * float(np.sqrt((self.w * self.r**2).sum()))

    def var(self) -> float:
        return self.std() ** 2

    def interval(self, confidence: float):
        return self.ppf((1 - confidence) / 2), self.ppf((1 + confidence) / 2)


__all__ = ["GaussianScaleMixture", "K_MAX", "fit_all_k", "e_pass"]
