"""Posterior and prior predictive checks: of any law-spec fit (:class:`~bayes_scaling.inference.fit.Fit`) and of
the transfer model.

- :func:`posterior_predictive_check`: per observation, the observed target against the posterior predictive
  median and central intervals (replicated values of the model's observed variable drawn from the fitted model,
  noise included: ``log y`` for a likelihood on the log scale, ``log D_T`` for the transfer model).
- :func:`coverage`: the share of observations inside the 50% and 90% central intervals, in-sample (posterior
  predictive) and leave-one-out (from LOO-PIT), against the nominal level. On a well-specified model the
  LOO coverage is close to nominal; in-sample coverage is slightly above it.
- :func:`loo_pit`: LOO-PIT values ``P(y_rep_i <= y_i | y_-i)`` (PSIS-LOO weighted), uniform under a
  calibrated model; a Kolmogorov-Smirnov distance to the uniform summarises the departure.
- :func:`prior_predictive_check`: what the priors alone say about k, alpha, beta and D_T at the observed runs
  (the transfer model).

The replicated values come from the model's own observed variable (``pm.sample_posterior_predictive`` on the
model rebuilt from the fit: :mod:`bayes_scaling.analysis._fits`), the same likelihood whose pointwise density
PSIS-LOO uses; for a law-spec fit they follow the distribution of ``Fit.predict(kind="observation")`` at the
fitted rows (tested).

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

from bayes_scaling.analysis._fits import build_model, observed
from bayes_scaling.data.tables import TransferData
from bayes_scaling.errors import BayesScalingError
from bayes_scaling.inference.fit import Fit
from bayes_scaling.inference.sampling import TransferFit
from bayes_scaling.models.transfer import ModelConfig, prior_parameterization

__all__ = ["posterior_predictive", "posterior_predictive_check", "coverage", "loo_pit", "LooPit",
           "prior_predictive_check", "PriorPredictive"]

SAMPLE_DIMS = ("chain", "draw")
_PPC_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
AnyFit = Fit | TransferFit


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


def posterior_predictive(fit: AnyFit, seed: int = 0) -> xr.DataTree:
    """A copy of the fit's DataTree with a ``posterior_predictive`` group (replicated observed variable per
    posterior draw, seeded: ``log_D_T`` for a transfer fit, the spec's target on the likelihood's scale for a
    law-spec fit) and a ``log_likelihood`` group. Cached per fit and seed."""
    cache = _PPC_CACHE.setdefault(fit, {})
    if seed in cache:
        return cache[seed]
    import pymc as pm

    var = observed(fit).var
    model = build_model(fit)
    tree = fit.tree.copy()
    with model, warnings.catch_warnings(), _quiet_pymc():
        warnings.filterwarnings("ignore", category=UserWarning)
        pp = pm.sample_posterior_predictive(tree, var_names=[var], random_seed=seed, progressbar=False)
        if "log_likelihood" not in tree.children:
            tree = pm.compute_log_likelihood(tree, progressbar=False)
    tree["posterior_predictive"] = pp["posterior_predictive"]
    cache[seed] = tree
    return tree


def _replicated(fit: AnyFit, seed: int) -> np.ndarray:
    """Replicated observed variable, shape (observations, samples)."""
    var = observed(fit).var
    rep = posterior_predictive(fit, seed)["posterior_predictive"][var]
    dim = next(d for d in rep.dims if d not in SAMPLE_DIMS)
    return rep.stack(sample=SAMPLE_DIMS).transpose(dim, "sample").values


def posterior_predictive_check(fit: AnyFit, *, ci_probs: tuple[float, ...] = (0.5, 0.9),
                               seed: int = 0) -> pd.DataFrame:
    """Observed against predicted target for every observation of the fit.

    Columns: ``row`` (of the data table), the group columns, the inputs and the observed target (a transfer
    fit: ``pretraining``, ``N``, ``D_F``, ``D_T``), ``<target>_median`` (posterior predictive median),
    ``lb{P}``/``ub{P}`` (central ``P``% interval of a replicated observation, noise included) and ``inside{P}``
    for each ``P`` in ``ci_probs``, and ``z`` = (y - mean) / sd of the replicated values, on the likelihood's
    scale (``log y`` for a log-scale likelihood).

    >>> posterior_predictive_check(fit, seed=1)[["row", "loss", "loss_median", "lb90", "ub90"]]   # doctest: +SKIP
    """
    _check_probs(ci_probs)
    obs = observed(fit)
    draws = _replicated(fit, seed)
    out = obs.rows.copy()
    y = obs.values
    out[f"{obs.target}_median"] = obs.from_scale(np.median(draws, axis=1))
    for p in ci_probs:
        lo, hi = np.quantile(draws, [(1 - p) / 2, 1 - (1 - p) / 2], axis=1)
        tag = f"{100 * p:g}"
        out[f"lb{tag}"], out[f"ub{tag}"] = obs.from_scale(lo), obs.from_scale(hi)
        out[f"inside{tag}"] = (y >= lo) & (y <= hi)
    out["z"] = (y - draws.mean(axis=1)) / draws.std(axis=1, ddof=1)
    out.attrs.update(unit=obs.unit, seed=seed, target=obs.target, log=obs.log, groups=list(obs.groups))
    return out


@dataclass
class LooPit:
    """LOO-PIT values per observation (``table``: row, groups, inputs, target, pit) and the Kolmogorov-Smirnov
    distance of their distribution to Uniform(0, 1) with its p-value (approximate: LOO-PIT values are
    slightly dependent)."""

    table: pd.DataFrame
    ks_statistic: float
    ks_pvalue: float

    @property
    def values(self) -> np.ndarray:
        return self.table["pit"].to_numpy()


def loo_pit(fit: AnyFit, *, seed: int = 0) -> LooPit:
    """LOO-PIT of the observed variable (``arviz.loo_pit`` on the seeded posterior predictive):
    ``pit_i = sum_s w_is 1[y_rep_is <= y_i]`` with the PSIS-LOO weights ``w_is`` of observation ``i``."""
    import arviz as az

    obs = observed(fit)
    tree = posterior_predictive(fit, seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*|.*[Ee]stimated shape.*")
        pit = az.loo_pit(tree, var_names=[obs.var])[obs.var].values
    table = obs.rows.assign(pit=pit)
    ks = stats.kstest(pit, "uniform")
    return LooPit(table, float(ks.statistic), float(ks.pvalue))


def coverage(fit: AnyFit, *, ci_probs: tuple[float, ...] = (0.5, 0.9), seed: int = 0) -> pd.DataFrame:
    """Share of observations inside the central intervals, against the nominal level.

    One row per level: ``nominal``, ``n`` (observations), ``in_sample`` (posterior predictive intervals, which
    saw the observation), ``loo`` (leave-one-out intervals: LOO-PIT within ``[(1-P)/2, 1-(1-P)/2]``) and
    ``binomial_se`` = sqrt(P (1-P) / n), the sampling error of a coverage share under a calibrated model.

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
    """Draw from the prior of the transfer model (``pm.sample_prior_predictive``, seeded) at the observed runs: the
    transfer law spec of ``config`` (:func:`~bayes_scaling.models.transfer.transfer_spec`) as the engine builds
    it, k at the data's centre, in the non-centred form (or centred where ``config`` says so).

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
    from bayes_scaling.models import spec_model as sm
    from bayes_scaling.models.transfer import transfer_spec

    form = set(prior_parameterization(config).values()).pop()
    table = data.used[["pretraining", "N", "D_F", "D_T"]].reset_index(drop=True)
    model = sm.plan(transfer_spec(config, len(data.pretraining), form=form), table).build()
    with model, warnings.catch_warnings(), _quiet_pymc():
        warnings.filterwarnings("ignore", category=UserWarning)
        tree = pm.sample_prior_predictive(draws=draws, random_seed=seed)
    prior = tree["prior"].to_dataset()
    q = [0.05, 0.5, 0.95]
    rows = []
    for v in ("k", "alpha", "beta", "sigma"):
        da = prior[v]
        grouped = "pretraining" in da.dims      # a value shared by the distributions: one row each, as varied ones
        per = v in ("k", "alpha") or (v == "beta" and config.variant == "separate_beta")
        for p in ([str(p) for p in da["pretraining"].values] if grouped else
                  [str(p) for p in data.pretraining] if per else [""]):
            x = (da.sel(pretraining=p) if grouped else da).values.ravel()
            lo, med, hi = np.quantile(x, q)
            rows.append({"parameter": v, "pretraining": p, "q05": lo, "median": med, "q95": hi})
    params = pd.DataFrame(rows)
    rep = tree["prior_predictive"]["D_T"].stack(sample=SAMPLE_DIMS).transpose("row", "sample").values   # log D_T
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
