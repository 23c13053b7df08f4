"""Rank-normalised split R-hat and bulk/tail effective sample size (Vehtari et al. 2021), in NumPy.

The same estimators as arviz-stats' ``rhat(method="rank")``, ``ess(method="bulk" | "tail")`` and ``eti``
(``arviz_stats.base.array_stats``; ``tests/inference/test_inference_speed.py`` checks agreement to 1e-10).

Why a copy: importing arviz-stats costs more than the 0.3 s a copy must save. Measured on the 2-core development
machine (Python 3.12, arviz-stats 1.3.3, arviz-base 1.3, ``bayes-scaling summary FIT.nc`` in a fresh process,
best of 5): 2.0 s as it is, 3.65 s with ``arviz_stats.base`` imported too (+1.6 s; on its own, after what
``summary`` imports anyway, ``import arviz_stats.base`` took 0.9 s without JAX installed and 1.5 s with it,
because arviz-base imports JAX for its NumPyro converter); ``summary`` imports no ArviZ otherwise (a fit on
nutpie does: ``nutpie.sample`` imports ``arviz``). Arrays are ``(chain, draw)``; :func:`diagnostics_table`
applies the estimators to every variable of a posterior ``Dataset``, and :func:`eti` gives equal-tailed
intervals.

>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(4, 1000))
>>> round(float(rhat(x)), 2), ess_bulk(x) > 3000
(1.0, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["rhat", "ess_bulk", "ess_tail", "eti", "diagnostics_table"]


def _split(ary: np.ndarray) -> np.ndarray:
    half = ary.shape[1] // 2
    return np.vstack((ary[:, :half], ary[:, -half:]))


def _rank(ary: np.ndarray) -> np.ndarray:
    """Average ranks (1..n) of all elements, ties sharing their mean rank."""
    flat = ary.ravel()
    order = np.argsort(flat, kind="mergesort")
    ranks = np.empty(flat.size, float)
    sorted_ = flat[order]
    # start and end of every run of equal values
    new = np.concatenate(([True], sorted_[1:] != sorted_[:-1]))
    starts = np.flatnonzero(new)
    ends = np.concatenate((starts[1:], [flat.size]))
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks.reshape(ary.shape)


def _z_scale(ary: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    c = 3 / 8  # Blom (1958)
    return ndtri((_rank(ary) - c) / (ary.size - 2 * c + 1))


def _rhat_basic(ary: np.ndarray) -> float:
    n = ary.shape[1]
    between = n * np.var(ary.mean(axis=1), ddof=1)
    within = np.mean(np.var(ary, axis=1, ddof=1))
    return float(np.sqrt((between / within + n - 1) / n))


def _valid(ary: np.ndarray, min_chains: int) -> bool:
    return not np.isnan(ary).any() and ary.shape[0] >= min_chains and ary.shape[1] >= 4


def rhat(ary: np.ndarray) -> float:
    """Rank-normalised split R-hat: the larger of the bulk and the folded (tail) versions."""
    ary = np.asarray(ary, float)
    if not _valid(ary, 2):
        return float("nan")
    s = _split(ary)
    return max(_rhat_basic(_z_scale(s)), _rhat_basic(_z_scale(np.abs(s - np.median(s)))))


def _autocov(ary: np.ndarray) -> np.ndarray:
    n = ary.shape[1]
    m = 1 << int(np.ceil(np.log2(2 * n)))
    x = ary - ary.mean(axis=1, keepdims=True)
    f = np.fft.rfft(x, n=m, axis=1)
    acov = np.fft.irfft(f * np.conjugate(f), n=m, axis=1)[:, :n]
    return acov / n


def _ess(ary: np.ndarray) -> float:
    """ESS of (chain, draw) draws with Geyer's initial monotone sequence (as ArviZ)."""
    ary = np.asarray(ary, float)
    if np.max(ary) - np.min(ary) < np.finfo(float).resolution:
        return float(ary.size)
    n_chain, n_draw = ary.shape
    acov = _autocov(ary)
    mean_var = np.mean(acov[:, 0]) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus += np.var(ary.mean(axis=1), ddof=1)
    rho = np.zeros(n_draw)
    rho[0] = rho_even = 1.0
    rho[1] = rho_odd = 1.0 - (mean_var - np.mean(acov[:, 1])) / var_plus
    mean_acov = acov.mean(axis=0)
    t = 1
    while t < n_draw - 3 and rho_even + rho_odd > 0.0:
        rho_even = 1.0 - (mean_var - mean_acov[t + 1]) / var_plus
        rho_odd = 1.0 - (mean_var - mean_acov[t + 2]) / var_plus
        if rho_even + rho_odd >= 0:
            rho[t + 1], rho[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    total = n_chain * n_draw
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1: max_t + 2])
    tau = max(tau, 1 / np.log10(total))
    return float("nan") if np.isnan(rho).any() else float(total / tau)


def ess_bulk(ary: np.ndarray) -> float:
    """Bulk ESS: the ESS of the rank-normalised split chains."""
    ary = np.asarray(ary, float)
    if not _valid(ary, 1):
        return float("nan")
    return _ess(_z_scale(_split(ary)))


def ess_tail(ary: np.ndarray, prob: float = 0.05) -> float:
    """Tail ESS: the smaller ESS of the indicators ``x <= q(prob)`` and ``x <= q(1 - prob)``."""
    ary = np.asarray(ary, float)
    if not _valid(ary, 1):
        return float("nan")
    out = []
    for p in (prob, 1 - prob):
        q = np.quantile(ary, p)
        out.append(_ess(_split((ary <= q).astype(float))))
    return float(min(out))


def eti(x: np.ndarray, prob: float) -> tuple[float, float]:
    """Equal-tailed interval of probability ``prob`` of all draws in ``x`` (linear quantile interpolation)."""
    lo, hi = np.quantile(np.asarray(x, float).ravel(), [(1 - prob) / 2, 1 - (1 - prob) / 2])
    return float(lo), float(hi)


def diagnostics_table(post, var_names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """``{var: {"r_hat": array, "ess_bulk": array, "ess_tail": array}}`` over each variable's non-sample
    dims, for a posterior ``xarray.Dataset`` with dims ``(chain, draw, ...)``."""
    out = {}
    for v in var_names:
        da = post[v].transpose("chain", "draw", ...)
        vals = da.values
        shape = vals.shape[2:]
        flat = vals.reshape(vals.shape[0], vals.shape[1], -1)
        res = {k: np.empty(flat.shape[2]) for k in ("r_hat", "ess_bulk", "ess_tail")}
        for i in range(flat.shape[2]):
            x = flat[:, :, i]
            res["r_hat"][i], res["ess_bulk"][i], res["ess_tail"][i] = rhat(x), ess_bulk(x), ess_tail(x)
        out[v] = {k: a.reshape(shape) for k, a in res.items()}
    return out
