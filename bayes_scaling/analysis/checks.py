"""Posterior and prior predictive checks of the transfer model.

- :func:`posterior_predictive_check`: per observed run, the observed ``D_T`` against the posterior predictive
  median and central intervals (replicated ``log D_T`` drawn from the fitted model, noise included).
- :func:`coverage`: the share of observations inside the 50% and 90% central intervals, in-sample (posterior
  predictive) and leave-one-out (from LOO-PIT), against the nominal level. On a well-specified model the
  LOO coverage is close to nominal; in-sample coverage is slightly above it.
- :func:`loo_pit`: LOO-PIT values ``P(y_rep_i <= y_i | y_-i)`` (PSIS-LOO weighted), uniform under a
  calibrated model; a Kolmogorov-Smirnov distance to the uniform summarises the departure.
- :func:`prior_predictive_check`: what the priors alone say about k, alpha, beta and D_T at the observed runs.

>>> ppc = posterior_predictive_check(fit, seed=1)     # doctest: +SKIP
>>> coverage(fit, seed=1)                            # doctest: +SKIP
"""

from __future__ import annotations

import logging
import warnings
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_scaling.data.tables import TransferData
from bayes_scaling.errors import BayesScalingError
from bayes_scaling.inference.sampling import TransferFit
from bayes_scaling.models.transfer import ModelConfig, build_transfer_model, prior_parameterization

__all__ = ["posterior_predictive", "posterior_predictive_check", "coverage", "loo_pit", "LooPit",
           "prior_predictive_check", "PriorPredictive"]

SAMPLE_DIMS = ("chain", "draw")
_PPC_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextmanager
def _quiet_pymc():
    """No "Sampling: [...]" log lines from PyMC's predictive samplers (they say nothing a user needs)."""
    import pymc  # noqa: F401  (importing PyMC sets its logger's level: import first)

    log = logging.getLogger("pymc")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def posterior_predictive(fit: TransferFit, seed: int = 0) -> xr.DataTree:
    """A copy of the fit's DataTree with a ``posterior_predictive`` group (replicated ``log_D_T`` per posterior
    draw, seeded) and a ``log_likelihood`` group. Cached per fit and seed."""
    cache = _PPC_CACHE.setdefault(fit, {})
    if seed in cache:
        return cache[seed]
    import pymc as pm

    model = fit.build_model()
    tree = fit.tree.copy()
    with model, warnings.catch_warnings(), _quiet_pymc():
        warnings.filterwarnings("ignore", category=UserWarning)
        pp = pm.sample_posterior_predictive(tree, var_names=["log_D_T"], random_seed=seed, progressbar=False)
        if "log_likelihood" not in tree.children:
            tree = pm.compute_log_likelihood(tree, progressbar=False)
    tree["posterior_predictive"] = pp["posterior_predictive"]
    cache[seed] = tree
    return tree


def _run_table(fit: TransferFit) -> pd.DataFrame:
    used = fit.data.used
    return pd.DataFrame({"row": used.index.to_numpy(), "pretraining": used["pretraining"].to_numpy(),
                         "N": used["N"].to_numpy(float), "D_F": used["D_F"].to_numpy(float),
                         "D_T": used["D_T"].to_numpy(float)})


def posterior_predictive_check(fit: TransferFit, *, ci_probs: tuple[float, ...] = (0.5, 0.9),
                               seed: int = 0) -> pd.DataFrame:
    """Observed against predicted ``D_T`` for every run used in the fit.

    Columns: ``row`` (of the data table), ``pretraining``, ``N``, ``D_F``, ``D_T`` (observed), ``D_T_median``
    (posterior predictive median), ``lb{P}``/``ub{P}`` (central ``P``% interval of replicated D_T, noise
    included) and ``inside{P}`` for each ``P`` in ``ci_probs``, and ``z`` = (log D_T - mean) / sd of the
    replicated log D_T.

    >>> posterior_predictive_check(fit, seed=1)[["row", "D_T", "D_T_median", "lb90", "ub90"]]   # doctest: +SKIP
    """
    _check_probs(ci_probs)
    rep = posterior_predictive(fit, seed)["posterior_predictive"]["log_D_T"]
    draws = rep.stack(sample=SAMPLE_DIMS).transpose("run", "sample").values
    out = _run_table(fit)
    log_obs = np.log(out["D_T"].to_numpy())
    out["D_T_median"] = np.exp(np.median(draws, axis=1))
    for p in ci_probs:
        lo, hi = np.quantile(draws, [(1 - p) / 2, 1 - (1 - p) / 2], axis=1)
        tag = f"{100 * p:g}"
        out[f"lb{tag}"], out[f"ub{tag}"] = np.exp(lo), np.exp(hi)
        out[f"inside{tag}"] = (log_obs >= lo) & (log_obs <= hi)
    out["z"] = (log_obs - draws.mean(axis=1)) / draws.std(axis=1, ddof=1)
    out.attrs.update(unit=fit.data.unit, seed=seed)
    return out


@dataclass
class LooPit:
    """LOO-PIT values per run (``table``: row, pretraining, N, D_F, D_T, pit) and the Kolmogorov-Smirnov
    distance of their distribution to Uniform(0, 1) with its p-value (approximate: LOO-PIT values are
    slightly dependent)."""

    table: pd.DataFrame
    ks_statistic: float
    ks_pvalue: float

    @property
    def values(self) -> np.ndarray:
        return self.table["pit"].to_numpy()


def loo_pit(fit: TransferFit, *, seed: int = 0) -> LooPit:
    """LOO-PIT of ``log D_T`` (``arviz.loo_pit`` on the seeded posterior predictive)."""
    import arviz as az

    tree = posterior_predictive(fit, seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*|.*[Ee]stimated shape.*")
        pit = az.loo_pit(tree, var_names=["log_D_T"])["log_D_T"].values
    table = _run_table(fit).assign(pit=pit)
    ks = stats.kstest(pit, "uniform")
    return LooPit(table, float(ks.statistic), float(ks.pvalue))


def coverage(fit: TransferFit, *, ci_probs: tuple[float, ...] = (0.5, 0.9), seed: int = 0) -> pd.DataFrame:
    """Share of observed runs inside the central intervals, against the nominal level.

    One row per level: ``nominal``, ``n`` (runs), ``in_sample`` (posterior predictive intervals, which saw the
    run), ``loo`` (leave-one-out intervals: LOO-PIT within ``[(1-P)/2, 1-(1-P)/2]``) and ``binomial_se``
    = sqrt(P (1-P) / n), the sampling error of a coverage share under a calibrated model.

    >>> coverage(fit, seed=1)        # doctest: +SKIP
       nominal   n  in_sample   loo  binomial_se
    0      0.5  98      0.53   0.51        0.051
    """
    _check_probs(ci_probs)
    ppc = posterior_predictive_check(fit, ci_probs=ci_probs, seed=seed)
    pit = loo_pit(fit, seed=seed).values
    rows = []
    n = len(ppc)
    for p in ci_probs:
        lo, hi = (1 - p) / 2, 1 - (1 - p) / 2
        rows.append({"nominal": p, "n": n, "in_sample": float(ppc[f"inside{100 * p:g}"].mean()),
                     "loo": float(np.mean((pit >= lo) & (pit <= hi))),
                     "binomial_se": float(np.sqrt(p * (1 - p) / n))})
    return pd.DataFrame(rows)


def _check_probs(ci_probs) -> None:
    bad = [p for p in ci_probs if not (isinstance(p, (int, float)) and 0 < p < 1)]
    if bad or not ci_probs:
        raise BayesScalingError(f"ci_probs must be probabilities in (0, 1), got {list(ci_probs)!r}")


# ---- prior predictive ----------------------------------------------------------------------------------


@dataclass
class PriorPredictive:
    """Prior predictive check.

    ``parameters``: prior quantiles (5%, 50%, 95%) of k, alpha, beta, sigma. ``runs``: per observed run, the
    observed D_T and the prior predictive 5/50/95% quantiles of D_T, and whether it lies in the 90% and 99%
    intervals. ``coverage``: share of runs inside those intervals. ``orders_90``: median width of the 90%
    prior predictive interval of D_T in orders of magnitude (how vague the prior is). ``tree``: the draws.
    """

    parameters: pd.DataFrame
    runs: pd.DataFrame
    coverage: pd.DataFrame
    orders_90: float
    tree: xr.DataTree
    unit: str


def prior_predictive_check(data: TransferData | TransferFit, config: ModelConfig | None = None, *,
                           draws: int = 1000, seed: int = 0) -> PriorPredictive:
    """Draw from the prior of the transfer model (``pm.sample_prior_predictive``, seeded) at the observed runs.

    ``data`` may be a fit (its data and configuration are used). Default priors: ``ModelConfig()``.

    >>> pri = prior_predictive_check(bs.load_example(), seed=1)     # doctest: +SKIP
    >>> pri.parameters, pri.coverage                                # doctest: +SKIP
    """
    import pymc as pm

    if isinstance(data, TransferFit):
        config = config or data.config
        data = data.data
    config = config or ModelConfig()
    if not isinstance(draws, (int, np.integer)) or draws < 10:
        raise BayesScalingError(f"draws must be an integer >= 10, got {draws!r}")
    model = build_transfer_model(data.arrays(), data.pretraining, config,
                                 parameterization=prior_parameterization(config))
    with model, warnings.catch_warnings(), _quiet_pymc():
        warnings.filterwarnings("ignore", category=UserWarning)
        tree = pm.sample_prior_predictive(draws=draws, random_seed=seed)
    prior = tree["prior"].to_dataset()
    q = [0.05, 0.5, 0.95]
    rows = []
    for v in ("k", "alpha", "beta", "sigma"):
        da = prior[v]
        groups = [str(p) for p in da["pretraining"].values] if "pretraining" in da.dims else [""]
        for p in groups:
            x = (da.sel(pretraining=p) if p else da).values.ravel()
            lo, med, hi = np.quantile(x, q)
            rows.append({"parameter": v, "pretraining": p, "q05": lo, "median": med, "q95": hi})
    params = pd.DataFrame(rows)
    rep = tree["prior_predictive"]["log_D_T"].stack(sample=SAMPLE_DIMS).transpose("run", "sample").values
    used = data.used
    runs = pd.DataFrame({"row": used.index.to_numpy(), "pretraining": used["pretraining"].to_numpy(),
                         "N": used["N"].to_numpy(float), "D_F": used["D_F"].to_numpy(float),
                         "D_T": used["D_T"].to_numpy(float)})
    log_obs = np.log(runs["D_T"].to_numpy())
    qs = np.quantile(rep, [0.005, 0.05, 0.5, 0.95, 0.995], axis=1)
    runs["prior_q05"], runs["prior_median"], runs["prior_q95"] = np.exp(qs[1]), np.exp(qs[2]), np.exp(qs[3])
    runs["inside90"] = (log_obs >= qs[1]) & (log_obs <= qs[3])
    runs["inside99"] = (log_obs >= qs[0]) & (log_obs <= qs[4])
    cov = pd.DataFrame({"nominal": [0.9, 0.99], "n": len(runs),
                        "observed": [runs["inside90"].mean(), runs["inside99"].mean()]})
    orders = float(np.median((qs[3] - qs[1]) / np.log(10)))
    return PriorPredictive(params, runs, cov, orders, tree, data.unit)
