"""Student-t maximum likelihood for one sample (one row, optionally counted): the Newton ascent of
``student_t_fit`` with its per-iteration work cut to the passes over the data.

One row is the common case (a long tensor's fit, the counted multiset of a 16-bit tensor, the KS
subsample's refit from the tensor's fit), and there the batched machinery's fixed costs dominated:
each iteration solved its 3x3 systems through batched LAPACK calls and every pass allocated ~10
temporaries. Here the 3x3 algebra runs on Python floats, each pass writes into buffers allocated
once per fit and uses five sums instead of six (the sums in q = z² follow from those in 1/A where
df is moderate). ``StudentT`` sends short rows without a start to the batched ascent instead.

The ascent stops once the Newton decrement (the predicted remaining gain) is below ``_TIGHT`` of
|loglik| (parameters within ~1e-9 of the maximum) and then takes that last Newton step without a
pass of its own: in the quadratic regime it lands on the maximum to within rounding. So the answer
does not depend on the path: the counted multiset and its expanded sample, a start or none, meet
at the same point. A long row first fits a moment-matched compression of itself (``_compress``),
accurate to ~1e-10, so the full data are usually read once, to certify the optimum and give the
exact log-likelihood, gradient and Hessian.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from .base import CHUNK, dot
from .student_t_fit import _HALF_LOG_2PI, _PHI_MAX, _PHI_MIN, _SERIES_FROM, _series

# Converged when the Newton decrement is below this fraction of |loglik| (parameter error ~1e-9
# in standardized units) ...
_TIGHT = 1e-18
# ... or, once rounding stops the decrement from falling quadratically, below the batched
# ascent's own criterion.
_LOOSE = 1e-13
# Rows longer than this are first fitted on their compression.
_COMPRESS_FROM = 1 << 15
# Compression cell width as a fraction of the interquartile range, and the fraction of values
# in each tail kept as they are.
_CELLS_PER_IQR, _TAIL = 512, 1.0 / 1024
_MAX_CELLS = 1 << 16
_MODERATE_DF = 1e3  # below: sums from log(nu + q) and 1/A alone; above: log1p(q / nu) and q-sums


class _Fallback(Exception):
    """The row needs the batched ascent's safeguards (values whose z² overflows, non-finite sums)."""


def _c_one(nu: float) -> float:
    """``student_t_fit._c`` for one df."""
    if nu >= _SERIES_FROM:
        return -_HALF_LOG_2PI + float(_series(0.5 * nu, 0))
    return float(-special.betaln(0.5, 0.5 * nu) - 0.5 * math.log(nu))


def _c1_one(nu: float) -> float:
    if nu >= _SERIES_FROM:
        return 0.5 * float(_series(0.5 * nu, 1))
    return float(0.5 * (special.digamma(0.5 * (nu + 1)) - special.digamma(0.5 * nu)) - 0.5 / nu)


def _c2_one(nu: float) -> float:
    if nu >= _SERIES_FROM:
        return 0.25 * float(_series(0.5 * nu, 2))
    # zeta(2, x) is the trigamma function (polygamma(1, x) computes exactly this).
    return float(0.25 * (special.zeta(2.0, 0.5 * (nu + 1)) - special.zeta(2.0, 0.5 * nu))
                 + 0.5 / nu**2)


class _Sample:
    """One row's values (and counts), chunked, with work buffers reused by every pass."""

    def __init__(self, x: np.ndarray, w: np.ndarray | None):
        self.x, self.w = x, w
        self.n = float(x.size) if w is None else float(w.sum())
        self.size = x.size
        width = min(CHUNK, x.size)
        self.buf = [np.empty(width) for _ in range(3)]

    def sums(self, loc: float, sigma: float, nu: float) -> tuple[float, ...]:
        """Σlog(1 + q/nu), Σq/A, Σq/A², Σz/A, Σz/A², Σ1/A (A = nu + q, q = z², each counted)."""
        moderate = nu <= _MODERATE_DF
        tot = [0.0] * 6
        inv_sigma = 1.0 / sigma
        for i in range(0, self.size, CHUNK):
            xc = self.x[i:i + CHUNK]
            m = xc.size
            wc = None if self.w is None else self.w[i:i + CHUNK]
            z, b1, b2 = (b[:m] for b in self.buf)
            np.subtract(xc, loc, out=z)
            z *= inv_sigma
            part = (self._moderate if moderate else self._near_gauss)(z, b1, b2, wc, nu)
            for k in range(6):
                tot[k] += part[k]
        if moderate:
            n = self.n
            tot[0] -= n * math.log(nu)
            # Σq/A = Σ(1 - nu/A), Σq/A² = Σ(1/A - nu/A²): exact to ~1e-13 for df up to 1e3.
            tot[1], tot[2] = n - nu * tot[1], tot[1] - nu * tot[2]
        if not all(math.isfinite(t) for t in tot):
            raise _Fallback
        return tuple(tot)

    @staticmethod
    def _moderate(z, a, b, wc, nu):
        """Per chunk: Σlog A, Σ1/A, Σ1/A², Σz/A, Σz/A², Σ1/A² (the first two become q-sums)."""
        with np.errstate(over="ignore"):
            np.multiply(z, z, out=a)
        a += nu
        np.log(a, out=b)
        np.divide(1.0, a, out=a)  # a is now r = 1/A
        if wc is None:
            s_log, s1 = float(b.sum()), float(a.sum())
            s2 = dot(a, a)
            z *= a
            return s_log, s1, s2, float(z.sum()), dot(z, a), s2
        s_log = dot(b, wc)
        np.multiply(a, wc, out=b)  # b: r * w
        s1, s2 = float(b.sum()), dot(b, a)
        s_z1 = dot(z, b)
        z *= a
        return s_log, s1, s2, s_z1, dot(z, b), s2

    @staticmethod
    def _near_gauss(z, q, b, wc, nu):
        """Per chunk, for large df: the log term as log1p(q/nu), the q-sums directly (without the
        cancellation of Σ(1 - nu/A) when q/nu is tiny)."""
        with np.errstate(over="ignore"):
            np.multiply(z, z, out=q)
        np.divide(q, nu, out=b)
        np.log1p(b, out=b)
        s_log = float(b.sum()) if wc is None else dot(b, wc)
        np.add(q, nu, out=b)
        np.divide(1.0, b, out=b)  # r
        if wc is not None:
            b *= wc  # r * w: every sum below carries one factor r
            r_only = np.divide(1.0, q + nu)
        else:
            r_only = b
        s_q1 = dot(q, b)
        q *= r_only  # q / A
        s_q2 = dot(q, b)
        s_z1 = dot(z, b)
        z *= r_only
        s_z2 = dot(z, b)
        return s_log, s_q1, s_q2, s_z1, s_z2, dot(r_only, b)


def _evaluate_one(sample: _Sample, theta: tuple[float, float, float]):
    """Log-likelihood, gradient and Hessian (nested tuples) at theta = (loc, log scale, 1/df):
    ``student_t_fit._evaluate`` for one row."""
    loc, s, phi = theta
    sig, nu = math.exp(s), 1.0 / phi
    sum_log, sq1, sq2, sz1, sz2, s2 = sample.sums(loc, sig, nu)
    n = sample.n
    ll = n * (_c_one(nu) - s) - 0.5 * (nu + 1) * sum_log
    h = 0.5 * (nu + 1)
    g_nu = n * _c1_one(nu) - 0.5 * sum_log + h * sq1 / nu
    h_munu = (sz1 - 2 * h * sz2) / sig
    h_snu = sq1 - 2 * h * sq2
    h_nunu = n * _c2_one(nu) + sq1 / nu - h * (sq1 + nu * sq2) / nu**2
    nu2 = nu * nu
    h_mumu = 2 * h / sig**2 * (sq2 - nu * s2)
    h_mus = -4 * h * nu / sig * sz2
    h_ss = -4 * h * nu * sq2
    h_mup, h_sp = -nu2 * h_munu, -nu2 * h_snu
    h_pp = nu2 * nu2 * h_nunu + 2 * nu2 * nu * g_nu
    grad = (2 * h / sig * sz1, -n + 2 * h * sq1, -nu2 * g_nu)
    hess = ((h_mumu, h_mus, h_mup), (h_mus, h_ss, h_sp), (h_mup, h_sp, h_pp))
    return ll, grad, hess


def _solve_pd(a, b):
    """Solve a x = b for a symmetric 3x3 ``a`` by Cholesky; None unless clearly positive definite
    (every pivot above 1e-10 of the largest diagonal entry, the batched ascent's threshold)."""
    tiny = 1e-10 * max(abs(a[0][0]), abs(a[1][1]), abs(a[2][2]))
    d0 = a[0][0]
    if not d0 > tiny:
        return None
    l00 = math.sqrt(d0)
    l10, l20 = a[1][0] / l00, a[2][0] / l00
    d1 = a[1][1] - l10 * l10
    if not d1 > tiny:
        return None
    l11 = math.sqrt(d1)
    l21 = (a[2][1] - l20 * l10) / l11
    d2 = a[2][2] - l20 * l20 - l21 * l21
    if not d2 > tiny:
        return None
    l22 = math.sqrt(d2)
    y0 = b[0] / l00
    y1 = (b[1] - l10 * y0) / l11
    y2 = (b[2] - l20 * y0 - l21 * y1) / l22
    x2 = y2 / l22
    x1 = (y1 - l21 * x2) / l11
    x0 = (y0 - l10 * x1 - l20 * x2) / l00
    return x0, x1, x2


def _direction(grad, hess, pinned: bool):
    """Newton ascent direction, decrement ½·stepᵀg and whether the step is the undamped Newton
    one (it is Levenberg-damped where -H is not clearly positive definite); a pinned df keeps its
    value."""
    neg = [[-v for v in row] for row in hess]
    g = list(grad)
    if pinned:
        neg[2] = [0.0, 0.0, 1.0]
        neg[0][2] = neg[1][2] = 0.0
        g[2] = 0.0
    if not (all(math.isfinite(v) for row in neg for v in row) and all(map(math.isfinite, g))):
        return (0.0, 0.0, 0.0), 0.0, False
    step = _solve_pd(neg, g)
    newton = step is not None
    if not newton:
        m = np.array(neg)
        eig_min = float(np.linalg.eigvalsh(m)[0])
        scale = float(np.abs(np.diagonal(m)).max())
        m += (-eig_min + 1e-3 * scale + 1e-300) * np.eye(3)
        step = tuple(float(v) for v in np.linalg.solve(m, np.array(g)))
    return step, 0.5 * (step[0] * g[0] + step[1] * g[1] + step[2] * g[2]), newton


def _ascend(sample: _Sample, theta, max_iter: int = 100, keep: bool = False):
    """Damped Newton from ``theta`` until the decrement rule holds; returns theta, loglik, the
    gradient and Hessian there, and whether the decrement rule stopped it. ``keep``: a start that
    already meets the batched ascent's criterion is returned as it is (as ``fit_t_rows`` returns
    it), so that refitting a sample from its own fit gives that fit back."""
    theta = (theta[0], theta[1], min(max(theta[2], _PHI_MIN), _PHI_MAX))
    ll, grad, hess = _evaluate_one(sample, theta)
    last = math.inf
    for it in range(max_iter):
        phi = theta[2]
        pinned = (phi <= _PHI_MIN and grad[2] < 0) or (phi >= _PHI_MAX and grad[2] > 0)
        step, dec, newton = _direction(grad, hess, pinned)
        if keep and it == 0 and 0 <= dec < _LOOSE * abs(ll):
            return theta, ll, grad, hess, True
        if newton and 0 <= dec <= _TIGHT * abs(ll):
            # In the quadratic regime the last Newton step needs no pass of its own: its point
            # is the maximum to within rounding, and the log-likelihood there is ll + dec to
            # O(|step|³). Both the counted multiset and its expanded sample land on it.
            theta = (theta[0] + step[0], theta[1] + step[1],
                     min(max(theta[2] + step[2], _PHI_MIN), _PHI_MAX))
            return theta, ll + dec, grad, hess, True
        if dec >= 0 and (dec <= _TIGHT * abs(ll) or (dec <= _LOOSE * abs(ll) and dec > 0.1 * last)):
            return theta, ll, grad, hess, True
        last = dec
        big = max(abs(step[1]) / 2.0, abs(step[2]) / 0.5)
        if big > 1.0:
            step = tuple(v / big for v in step)
        t = 1.0
        for _halving in range(40):
            trial = (theta[0] + t * step[0], theta[1] + t * step[1],
                     min(max(theta[2] + t * step[2], _PHI_MIN), _PHI_MAX))
            ll_t, g_t, h_t = _evaluate_one(sample, trial)
            if ll_t >= ll - 1e-12 * abs(ll):
                break
            t *= 0.5
        else:
            break  # no step improves: the optimum to machine precision
        moved = max(abs(a - b) for a, b in zip(trial, theta, strict=True))
        theta, ll, grad, hess = trial, ll_t, g_t, h_t
        if moved == 0.0:
            break
    return theta, ll, grad, hess, False


def _quantile(x: np.ndarray, cum: np.ndarray | None, p: float) -> float:
    """The value at fraction ``p`` of a sorted sample (counted by ``cum``, the cumulative counts)."""
    if cum is None:
        return float(x[int(p * (x.size - 1))])
    return float(x[min(int(np.searchsorted(cum, p * cum[-1])), x.size - 1)])


def _start_one(x: np.ndarray, w: np.ndarray | None) -> tuple[float, float, float]:
    """A start (loc, log scale, 1/df) from the median, the quartiles and the kurtosis (``_start``'s
    recipe with half the interquartile range for the MAD, which needs no second sort)."""
    cum = None if w is None else np.cumsum(w)
    loc = _quantile(x, cum, 0.5)
    half_iqr = 0.5 * (_quantile(x, cum, 0.75) - _quantile(x, cum, 0.25))
    d2 = x - loc
    # Values far out overflow d²; an infinite kurtosis only means "heavy tails" (``_start``).
    with np.errstate(over="ignore", invalid="ignore"):
        d2 *= d2
        if w is None:
            m2, m4 = float(d2.mean()), dot(d2, d2) / x.size
        else:
            n = float(cum[-1])
            m2, m4 = dot(d2, w) / n, float(np.einsum("i,i,i->", d2, d2, w)) / n
        kurt = m4 / m2**2 - 3.0 if m2 > 0 else 0.0
    nu = min(max(4.0 + 6.0 / kurt, 1.0), 200.0) if kurt > 0.05 else 200.0
    scale = half_iqr / float(special.stdtrit(nu, 0.75))
    if not scale > 0:
        scale = math.sqrt(m2)
    if not (scale > 0 and math.isfinite(scale)):
        raise _Fallback
    return loc, math.log(scale), 1.0 / nu


def _cell_sums(x: np.ndarray, w: np.ndarray | None, starts: np.ndarray):
    """Per cell ``x[starts[i]:starts[i+1]]``: Σw, Σw·x, Σw·x² (w = 1 without counts), in chunks
    of ``CHUNK`` values so no full-size temporary is made."""
    cells = starts.size - 1
    out = np.zeros((3, cells))
    buf = np.empty(min(CHUNK, int(starts[-1] - starts[0])))
    for i in range(int(starts[0]), int(starts[-1]), CHUNK):
        j = min(i + CHUNK, int(starts[-1]))
        # The cells this chunk touches; the first may have begun in an earlier chunk.
        first = int(np.searchsorted(starts, i, side="right")) - 1
        last = int(np.searchsorted(starts, j, side="left"))
        local = np.concatenate([[i], starts[first + 1:last]]) - i
        xc = x[i:j]
        t = buf[:j - i]
        if w is None:
            out[0, first:last] += np.diff(np.append(local, j - i))
            out[1, first:last] += np.add.reduceat(xc, local)
        else:
            wc = w[i:j]
            out[0, first:last] += np.add.reduceat(wc, local)
            np.multiply(xc, wc, out=t)
            out[1, first:last] += np.add.reduceat(t, local)
            np.multiply(t, xc, out=t)
            out[2, first:last] += np.add.reduceat(t, local)
            continue
        np.multiply(xc, xc, out=t)
        out[2, first:last] += np.add.reduceat(t, local)
    return out


def _compress(x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """A sorted row summarized by narrow cells: each cell's values replaced by two points at its
    mean ± standard deviation, half its count each (equal mass, mean and variance, so the
    log-likelihood of the cell is kept to fourth order in its width, a 512th of the interquartile
    range); the outer ``_TAIL`` of the values on each side kept as they are. None where the
    quartiles tie (an atom: cells would not be narrow on the t's scale)."""
    size = x.size
    cum = None if w is None else np.cumsum(w)
    q1, q3 = _quantile(x, cum, 0.25), _quantile(x, cum, 0.75)
    if not (q3 > q1 and math.isfinite(q3 - q1)):
        return None
    k = max(1, int(size * _TAIL))
    lo, hi = x[k], x[size - 1 - k]
    width = (q3 - q1) / _CELLS_PER_IQR
    cells = min(_MAX_CELLS, max(1, math.ceil((hi - lo) / width)))
    edges = np.linspace(lo, hi, cells + 1)[1:-1]
    starts = np.concatenate([[k], np.searchsorted(x, edges, side="left"), [size - k]])
    starts = starts[np.flatnonzero(np.diff(starts, append=size + 1))]  # empty cells dropped
    cnt, s1, s2 = _cell_sums(x, w, starts)
    mean = s1 / cnt
    sd = np.sqrt(np.maximum(s2 / cnt - mean * mean, 0.0))
    sd = np.minimum(sd, np.minimum(mean - x[starts[:-1]], x[starts[1:] - 1] - mean))
    pts = np.stack([mean - sd, mean + sd], axis=1).ravel()
    half = np.repeat(0.5 * cnt, 2)
    a, b = int(starts[0]), int(starts[-1])
    tails = (np.ones(a), np.ones(size - b)) if w is None else (w[:a], w[b:])
    return np.concatenate([x[:a], pts, x[b:]]), np.concatenate([tails[0], half, tails[1]])


def fit_t_one(x: np.ndarray, w: np.ndarray | None = None, theta0=None, *, compress: bool = True):
    """Maximum-likelihood t fit of one sorted sample ``x`` (1-D, optionally with per-value counts
    ``w``), as ``fit_t_rows`` returns it for one row: theta (1, 3), loglik (1,), at_bound (1,),
    Hessian (1, 3, 3), gradient (1, 3). ``theta0``: a start (loc, log scale, 1/df), else the
    fit of the row's compression or the median/MAD/kurtosis start. Raises ``_Fallback`` where
    the row needs the batched ascent."""
    if not (math.isfinite(x[0]) and math.isfinite(x[-1])):
        raise _Fallback
    try:
        return _fit(x, w, theta0, compress)
    except ArithmeticError:
        # Python floats raise where NumPy's would turn inf (a scale of 1e-200 squared): such a
        # row needs the batched ascent's rescaled refit.
        raise _Fallback from None


def _fit(x: np.ndarray, w: np.ndarray | None, theta0, compress: bool):
    started, max_iter = theta0 is not None, 100
    if theta0 is None and compress and x.size > _COMPRESS_FROM:
        packed = _compress(x, w)
        if packed is None:
            raise _Fallback  # half the values on one atom: the batched ascent's safeguards
        theta0, _, _, _, met = _ascend(_Sample(*packed), _start_one(*packed))
        if not met:
            # No maximum on the compression (an atom with enough mass: the likelihood grows as
            # the scale shrinks onto it): the batched ascent, without passes spent here.
            raise _Fallback
        # From there the full data need a pass or two; more means something is off.
        max_iter = 8
    if theta0 is None:
        theta0 = _start_one(x, w)
    theta, ll, grad, hess, _ = _ascend(_Sample(x, w), tuple(float(v) for v in theta0),
                                       max_iter=max_iter, keep=started)
    at_bound = theta[2] <= _PHI_MIN * (1 + 1e-9) or theta[2] >= _PHI_MAX * (1 - 1e-9)
    return (np.array([theta]), np.array([ll]), np.array([at_bound]), np.array([hess]),
            np.array([grad]))
