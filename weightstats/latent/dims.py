"""Per latent dimension (or channel): active units, moments and the prior N(0, 1), a KL
estimate, and the registered families through :func:`weightstats.fitting.fit_tensor`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from weightstats.latent.encoders import Posterior

ACTIVE_THRESHOLD = 0.01  # Burda, Grosse & Salakhutdinov (2016): Var_x E[z_d | x] > 0.01
KL_METHOD = ("Monte Carlo: mean over draws z ~ q_d of log q_d(z) - log N(z; 0, 1), q_d the "
             "mixture of the per-input posteriors over the data (up to {c} components, {m} "
             "draws); kl_gauss is the closed form for the moment-matched normal, a lower bound "
             "(KL = kl_gauss + KL(q_d || its moment-matched normal))")
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def kl_to_prior(post: Posterior, d: int, rng: np.random.Generator, *, components: int = 2000,
                points: int = 4000) -> float:
    """Monte-Carlo KL(q_d || N(0, 1)) of the aggregate posterior of dimension ``d``."""
    n, k = post.samples.shape[:2]
    rows = np.arange(n) if n <= components else np.sort(rng.choice(n, components, replace=False))
    z = post.samples[:, :, d].reshape(-1)
    if z.size > points:
        z = z[np.sort(rng.choice(z.size, points, replace=False))]
    log_q = logsumexp(post.component_logpdf(d, z, rows), axis=1) - math.log(rows.size)
    log_p = -0.5 * z * z - _LOG_SQRT_2PI
    return float(np.mean(log_q - log_p))


def _lilliefors_d(values: np.ndarray) -> float:
    """KS distance between the standardized values and N(0, 1): non-normality of the shape,
    whatever the mean and scale (used to rank dimensions for the scatter figure)."""
    s = values.std()
    if not s > 0:
        return math.nan
    z = np.sort((values - values.mean()) / s)
    cdf = stats.norm.cdf(z)
    i = np.arange(1, z.size + 1)
    return float(max((i / z.size - cdf).max(), (cdf - (i - 1) / z.size).max()))


def dimension_row(post: Posterior, d: int, *, threshold: float, rng: np.random.Generator,
                  kl_components: int, kl_points: int) -> dict[str, Any]:
    """Everything about one dimension that needs no family fit."""
    mu = post.mu[:, d]
    draws = post.samples[:, :, d]
    iid = draws[:, 0]  # one draw per row: independent draws of q_d, for exact tests
    n = iid.size
    var_mu = float(mu.var())
    if post.std is not None:  # law of total variance over the data's mixture: no sampling error
        mean_q = float(mu.mean())
        var_q = var_mu + float((post.std[:, d] ** 2).mean())
        mean_post_var = float((post.std[:, d] ** 2).mean())
    else:
        mean_q, var_q, mean_post_var = float(draws.mean()), float(draws.var()), math.nan
    t_mean = math.sqrt(n) * float(iid.mean())
    chi = float(((iid - iid.mean()) ** 2).sum())
    p_var = 2 * min(stats.chi2.sf(chi, n - 1), stats.chi2.cdf(chi, n - 1))
    ks = stats.kstest(iid, "norm", method="exact" if n <= 10_000 else "asymp")
    kl = kl_to_prior(post, d, rng, components=kl_components, points=kl_points)
    kl_gauss = 0.5 * (var_q + mean_q**2 - 1 - math.log(var_q)) if var_q > 0 else math.inf
    all_draws = draws.reshape(-1)
    return {
        "dim": d, "active": bool(var_mu > threshold), "var_mu": var_mu,
        "mean_posterior_var": mean_post_var, "mean": mean_q, "var": var_q,
        "std": math.sqrt(var_q), "mean_z_pvalue": float(2 * stats.norm.sf(abs(t_mean))),
        "var_pvalue": float(min(1.0, p_var)),
        "prior_ks_stat": float(ks.statistic), "prior_ks_pvalue": float(ks.pvalue),
        "kl": kl, "kl_gauss": float(kl_gauss),
        "skewness": float(stats.skew(all_draws)),
        "excess_kurtosis": float(stats.kurtosis(all_draws)),
        "nongaussianity_d": _lilliefors_d(all_draws),
        "n_iid": n, "n_draws": int(all_draws.size),
    }


def fit_dimension(post: Posterior, d: int, families: Sequence[str], *, seed: int,
                  ks_sample: int, ks_replicates: int) -> dict[str, Any]:
    """The families fitted to one draw per row of q_d (independent, so the KS p-values are
    valid) and to the posterior means mu_d(x)."""
    from weightstats import fitting

    kwargs = {"seed": seed, "ks_sample": ks_sample, "ks_replicates": ks_replicates}
    return {"z": fitting.fit_tensor(post.samples[:, 0, d], list(families), **kwargs),
            "mu": fitting.fit_tensor(post.mu[:, d], list(families), **kwargs)}


def best_of(fit: Any) -> tuple[str, float, str]:
    """(best family by BIC, its KS p-value, adequacy) of a TensorFit; blanks when not fitted."""
    if fit is None or not fit.ok:
        return "", math.nan, ""
    best = fit.verdict.get("best_bic", "")
    p = next((r["ks_pvalue"] for r in fit.rows if r["family"] == best), math.nan)
    return best, float(p), str(fit.verdict.get("adequacy", ""))
