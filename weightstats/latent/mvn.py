"""Tests on the whole latent: is the aggregate posterior multivariate normal, standard, clustered,
or directional?

Every function takes an ``(n, d)`` array of independent latent vectors (one draw of q(z) per
input) and returns a JSON-safe row: ``test``, ``statistic``, ``df``, ``pvalue``, ``null`` (the
hypothesis the p-value is computed under) and ``method`` (how the p-value is obtained).
scipy is the reference for the distributions; the statistics follow the cited papers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

Row = dict[str, Any]
ALPHA = 0.05  # the level of every decision a report states


def _center_cov(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centered data and the maximum-likelihood (divide by n) covariance."""
    xc = x - x.mean(axis=0)
    return xc, xc.T @ xc / x.shape[0]


def _inverse(cov: np.ndarray) -> np.ndarray | None:
    """The inverse of a covariance, or None when it is singular to working precision."""
    w = np.linalg.eigvalsh(cov)
    if w[0] <= 1e-12 * max(w[-1], 1e-300):
        return None
    return np.linalg.inv(cov)


def _row(test: str, statistic: float, df: float | None, pvalue: float, null: str,
         method: str, **extra: Any) -> Row:
    return {"test": test, "statistic": float(statistic), "df": df, "pvalue": float(pvalue),
            "null": null, "method": method, **extra}


def mardia(x: np.ndarray) -> list[Row]:
    """Mardia's (1970) multivariate skewness and kurtosis tests of normality.

    Skewness b1 = mean over pairs of ((x_i - m)' S^-1 (x_j - m))^3 with the small-sample factor
    of Mardia (1974): n k b1 / 6 ~ chi2 with d(d+1)(d+2)/6 degrees of freedom; kurtosis
    b2 = mean of squared Mahalanobis distances, standardized by its exact null mean
    d(d+2)(n-1)/(n+1) and asymptotic variance 8d(d+2)/n, two-sided against N(0, 1).
    """
    n, d = x.shape
    xc, cov = _center_cov(x)
    inv = _inverse(cov)
    null = "z is multivariate normal (any mean and covariance)"
    if inv is None:
        return [_row("mardia_skewness", math.nan, None, math.nan, null, "singular covariance"),
                _row("mardia_kurtosis", math.nan, None, math.nan, null, "singular covariance")]
    g = xc @ inv @ xc.T
    b1 = float((g**3).sum()) / n**2
    b2 = float((np.diag(g) ** 2).mean())
    k = (d + 1) * (n + 1) * (n + 3) / (n * ((n + 1) * (d + 1) - 6))
    skew = n * k * b1 / 6.0
    df = d * (d + 1) * (d + 2) / 6.0
    kurt = (b2 - d * (d + 2) * (n - 1) / (n + 1)) / math.sqrt(8.0 * d * (d + 2) / n)
    return [
        _row("mardia_skewness", skew, df, stats.chi2.sf(skew, df), null,
             "asymptotic chi2 with Mardia's small-sample factor", b1=b1),
        _row("mardia_kurtosis", kurt, None, 2 * stats.norm.sf(abs(kurt)), null,
             "asymptotic N(0, 1), two-sided", b2=b2),
    ]


def henze_zirkler(x: np.ndarray) -> Row:
    """Henze & Zirkler's (1990) test of multivariate normality, p-value from their log-normal
    approximation of the statistic's null distribution (as in R's MVN package)."""
    n, d = x.shape
    xc, cov = _center_cov(x)
    inv = _inverse(cov)
    null = "z is multivariate normal (any mean and covariance)"
    if inv is None:
        return _row("henze_zirkler", math.nan, None, math.nan, null, "singular covariance")
    beta = (1 / math.sqrt(2)) * ((2 * d + 1) * n / 4) ** (1 / (d + 4))
    b2 = beta * beta
    g = xc @ inv @ xc.T
    di = np.diag(g)
    dij = di[:, None] + di[None, :] - 2 * g  # Mahalanobis distances between pairs
    hz = (np.exp(-b2 / 2 * dij).sum() / n
          - 2 * (1 + b2) ** (-d / 2) * np.exp(-b2 / (2 * (1 + b2)) * di).sum()
          + n * (1 + 2 * b2) ** (-d / 2))
    a = 1 + 2 * b2
    wb = (1 + b2) * (1 + 3 * b2)
    mu = 1 - a ** (-d / 2) * (1 + d * b2 / a + d * (d + 2) * b2**2 / (2 * a**2))
    si2 = (2 * (1 + 4 * b2) ** (-d / 2)
           + 2 * a ** (-d) * (1 + 2 * d * b2**2 / a**2 + 3 * d * (d + 2) * b2**4 / (4 * a**4))
           - 4 * wb ** (-d / 2) * (1 + 3 * d * b2**2 / (2 * wb) + d * (d + 2) * b2**4 / (2 * wb**2)))
    pmu = math.log(math.sqrt(mu**4 / (si2 + mu**2)))
    psi = math.sqrt(math.log((si2 + mu**2) / mu**2))
    p = stats.lognorm.sf(hz, s=psi, scale=math.exp(pmu))
    return _row("henze_zirkler", hz, None, p, null, "log-normal approximation (Henze-Zirkler 1990)",
                beta=beta)


def correlation_identity(x: np.ndarray) -> Row:
    """Bartlett's (1951) test that the correlation matrix is the identity:
    -(n - 1 - (2d + 5)/6) log det R ~ chi2 with d(d - 1)/2 degrees of freedom."""
    n, d = x.shape
    r = np.corrcoef(x, rowvar=False)
    sign, logdet = np.linalg.slogdet(r)
    off = r[np.triu_indices(d, 1)]
    stat = -(n - 1 - (2 * d + 5) / 6) * logdet if sign > 0 else math.inf
    df = d * (d - 1) / 2
    return _row("correlation_identity", stat, df, stats.chi2.sf(stat, df),
                "the coordinates are uncorrelated (normal data)", "Bartlett's asymptotic chi2",
                max_abs_correlation=float(np.abs(off).max()) if off.size else 0.0)


def standard_normal_moments(x: np.ndarray, *, replicates: int = 999, seed: int = 0) -> Row:
    """Likelihood-ratio test of mean 0 and covariance I within the normal family:
    -2 log L = n (tr S - log det S - d) + n |mean|^2. Its p-value is a Monte-Carlo one
    (``replicates`` draws of n vectors from N(0, I), seeded): exact up to Monte-Carlo error,
    where the chi2 limit is poor for small n and large d."""
    n, d = x.shape

    def lrt(batch: np.ndarray) -> np.ndarray:  # batch (r, n, d)
        m = batch.mean(axis=1)
        xc = batch - m[:, None, :]
        s = np.einsum("rni,rnj->rij", xc, xc) / n
        sign, logdet = np.linalg.slogdet(s)
        out = n * (np.trace(s, axis1=1, axis2=2) - logdet - d) + n * (m**2).sum(axis=1)
        return np.where(sign > 0, out, np.inf)

    stat = float(lrt(x[None])[0])
    rng = np.random.default_rng(seed)
    null = np.concatenate([lrt(rng.standard_normal((min(100, replicates - i), n, d)))
                           for i in range(0, replicates, 100)])
    p = (1 + int((null >= stat).sum())) / (replicates + 1)
    return _row("standard_normal_moments", stat, d + d * (d + 1) / 2, p,
                "z ~ N(0, I) (against any normal)",
                f"likelihood ratio, Monte-Carlo p-value ({replicates} null draws)")


def radius(x: np.ndarray) -> Row:
    """|z|^2 against its law under N(0, I), chi2 with d degrees of freedom: one-sample KS with
    no fitted parameter, so the p-value is exact (scipy's exact Kolmogorov distribution)."""
    n, d = x.shape
    r2 = (x**2).sum(axis=1)
    res = stats.kstest(r2, stats.chi2(d).cdf, method="exact" if n <= 10_000 else "asymp")
    return _row("radius_chi2", res.statistic, d, res.pvalue, "|z|^2 ~ chi2(d), as under N(0, I)",
                "one-sample KS, exact", median_radius=float(np.sqrt(np.median(r2))),
                expected_median_radius=float(np.sqrt(stats.chi2(d).median())))


def sphere_uniformity(x: np.ndarray) -> list[Row]:
    """Tests that the directions u = z/|z| are uniform on the sphere S^(d-1), which holds for any
    spherically symmetric q(z) about 0, N(0, I) included.

    Rayleigh: n d |mean u|^2 ~ chi2_d; it sees a preferred direction (a von Mises-Fisher
    latent). Bingham (1974): n d (d + 2)/2 (tr T^2 - 1/d) ~ chi2 with (d - 1)(d + 2)/2 degrees
    of freedom, T = mean of u u'; it sees axial structure (directions crowding an axis or a
    plane, e.g. a latent on a circle inside a higher-dimensional space). Both asymptotic.
    """
    n, d = x.shape
    norms = np.linalg.norm(x, axis=1)
    u = x[norms > 0] / norms[norms > 0, None]
    n = u.shape[0]
    null = "z/|z| is uniform on the sphere (q(z) spherically symmetric about 0)"
    mean = u.mean(axis=0)
    ray = n * d * float(mean @ mean)
    t = u.T @ u / n
    bing = n * d * (d + 2) / 2 * (float(np.trace(t @ t)) - 1 / d)
    df_b = (d - 1) * (d + 2) / 2
    eig = np.linalg.eigvalsh(t)
    return [
        _row("sphere_rayleigh", ray, d, stats.chi2.sf(ray, d), null, "asymptotic chi2",
             mean_resultant_length=float(np.sqrt(mean @ mean))),
        _row("sphere_bingham", bing, df_b, stats.chi2.sf(bing, df_b), null, "asymptotic chi2",
             scatter_eigenvalues=[float(v) for v in eig[::-1]]),
    ]


def gaussian_mixture(x: np.ndarray, *, max_k: int = 6, seed: int = 0) -> dict[str, Any]:
    """Gaussian mixtures with K = 1..max_k components (full covariances), K chosen by BIC: the
    Gaussian-mixture-VAE alternative. K = 1 is the single Gaussian. Fitted by scikit-learn's EM
    (k-means start, 3 restarts, seeded)."""
    try:
        from sklearn.mixture import GaussianMixture
    except ImportError as err:  # pragma: no cover - a declared dependency of the latent extra
        from weightstats.errors import LoadError

        raise LoadError("the mixture test needs scikit-learn: pip install "
                        "'weightstats[latent]'") from err
    n, d = x.shape
    per_k = d + d * (d + 1) / 2 + 1
    top = int(max(1, min(max_k, (n - 1) // per_k)))  # at least one point per parameter
    bics: list[float] = []
    weights: list[list[float]] = []
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: these matrices are tiny, and thread start-up per small solve
    # costs more than the solve (and the result does not depend on the thread count).
    with threadpool_limits(1):
        for k in range(1, top + 1):
            gm = GaussianMixture(n_components=k, covariance_type="full", n_init=3,
                                 random_state=seed, reg_covar=1e-6)
            gm.fit(x)
            bics.append(float(gm.bic(x)))
            weights.append(sorted((float(w) for w in gm.weights_), reverse=True))
    best = int(np.argmin(bics))
    return {"test": "gmm_bic", "k_best": best + 1, "bic": bics, "k_max_tried": top,
            "delta_bic_vs_1": bics[0] - bics[best], "weights": weights[best],
            "method": "scikit-learn GaussianMixture, full covariances, 3 restarts; lowest BIC"}


def all_tests(x: np.ndarray, *, seed: int = 0, max_k: int = 6) -> dict[str, Any]:
    """Every multivariate test on independent vectors ``x`` (n, d), d >= 2."""
    x = np.asarray(x, dtype=np.float64)
    rows = [*mardia(x), henze_zirkler(x), correlation_identity(x),
            standard_normal_moments(x, seed=seed), radius(x), *sphere_uniformity(x)]
    return {"n": int(x.shape[0]), "d": int(x.shape[1]), "tests": rows,
            "mixture": gaussian_mixture(x, max_k=max_k, seed=seed)}


def holm(pvalues: list[float]) -> list[bool]:
    """Holm's step-down rejections at level ALPHA (family-wise error), NaN never rejected."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    out = [False] * len(pvalues)
    m = len(order)
    for rank, (p, i) in enumerate(order):
        if p > ALPHA / (m - rank):
            break
        out[i] = True
    return out
