"""Monte Carlo margins for tests that compare random estimates (shared by the test modules).

A posterior quantile estimated from S correlated draws has a Monte Carlo standard error; a test that asks
"is the truth inside the 95% interval" or "is this interval wider than that one" must allow a few of them, or
it turns on the last digits of the sampler (another numpy, another CPU). Normal approximation of the quantile's
MCSE (Vehtari et al. 2021, "Rank-normalization, folding, and localization", section 4):
``se(q_p) = sd * sqrt(p (1 - p) / ESS) / phi(z_p)``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

#: how many Monte Carlo standard errors a margin allows (about 1 in 370 per side by chance)
K = 3.0


def quantile_mcse(sd: float, ess: float, prob: float) -> float:
    """MCSE of the ``prob`` quantile of draws with standard deviation ``sd`` and effective size ``ess``."""
    ess = max(float(ess), 1.0)
    return float(sd) * np.sqrt(prob * (1 - prob) / ess) / norm.pdf(norm.ppf(prob))


def interval_margin(row, ci_prob: float, k: float = K) -> float:
    """``k`` MCSEs of the endpoints of a summary row's equal-tailed ``ci_prob`` interval (``sd``, ``ess_tail``)."""
    return k * quantile_mcse(row["sd"], row["ess_tail"], (1 - ci_prob) / 2)


def inside(row, value: float, ci_prob: float, k: float = K) -> bool:
    """Whether ``value`` lies in the summary row's ``ci_prob`` interval, widened by its Monte Carlo margin."""
    pct = f"{100 * ci_prob:g}"
    m = interval_margin(row, ci_prob, k)
    return row[f"eti{pct}_lb"] - m <= value <= row[f"eti{pct}_ub"] + m


def draws_inside(draws: np.ndarray, value: float, ci_prob: float, ess: float | None = None, k: float = K) -> bool:
    """The same for raw draws (``ess`` defaults to the number of draws: independent draws)."""
    x = np.asarray(draws, dtype=float).ravel()
    p = (1 - ci_prob) / 2
    lo, hi = np.quantile(x, [p, 1 - p])
    m = k * quantile_mcse(x.std(ddof=1), len(x) if ess is None else ess, p)
    return lo - m <= value <= hi + m


def means_agree(a: np.ndarray, b: np.ndarray, ess_a: float, ess_b: float, k: float = K) -> bool:
    """Whether two posterior means of one quantity (draws ``a``, ``b``, bulk ESS ``ess_a``, ``ess_b``) agree
    within ``k`` Monte Carlo standard errors of their difference, ``sqrt(sd_a**2 / ess_a + sd_b**2 / ess_b)``."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    se = np.sqrt(a.var(ddof=1) / max(float(ess_a), 1.0) + b.var(ddof=1) / max(float(ess_b), 1.0))
    return abs(a.mean() - b.mean()) <= k * se
