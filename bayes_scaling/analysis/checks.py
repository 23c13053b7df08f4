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
- :func:`prior_predictive_check`: what the priors alone say about a law's parameters and its target at the
  observed runs (the transfer law or any spec).

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
from bayes_scaling.models.transfer import ModelConfig

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
    """Prior predictive check of a law (the transfer law or any spec).

    ``parameters``: prior quantiles (5%, 50%, 95%) of each free parameter of the law and the noise scale, one row
    per parameter and group (the group column named after the spec's group column where it has one, else
    ``group``; ``""`` for a shared parameter). ``runs``: per observed run, the observed target and its prior
    predictive 5/50/95% quantiles, and whether it lies in the 90% and 99% intervals. ``coverage``: share of runs
    inside those intervals. ``orders_90``: median width of the 90% prior predictive interval in orders of
    magnitude of the target (log-scale likelihood; on an identity scale, in units of the target's spread).
    ``tree``: the draws. ``target``: the target column (``D_T`` for the transfer law).
    """

    parameters: pd.DataFrame
    runs: pd.DataFrame
    coverage: pd.DataFrame
    orders_90: float
    tree: xr.DataTree
    unit: str
    target: str = "D_T"
    scale: str = "log"


def _prior_inputs(data, config, model):
    """``(spec, table, unit)`` of a prior predictive check: a transfer data set or fit with its model
    configuration (the transfer spec it states), a law-spec fit, or a table with ``model``."""
    from bayes_scaling.inference.fit import _apply_exclusions, _as_spec
    from bayes_scaling.models.transfer import engine_form, transfer_spec

    if isinstance(data, TransferFit):
        config = config or data.config
        data = data.data
    if isinstance(data, TransferData):
        if model is not None:
            raise BayesScalingError("model: a transfer data set is checked with the transfer law; give a "
                                    "ModelConfig as config, or pass a table for another law")
        config = config or ModelConfig()
        form, _ = engine_form(data.arrays(), len(data.pretraining), config)
        spec = transfer_spec(config, len(data.pretraining), form=form)
        return spec, data.used[["pretraining", "N", "D_F", "D_T"]].reset_index(drop=True), data.unit
    if config is not None:
        raise BayesScalingError("config (a ModelConfig) applies to the transfer law only; a law spec states "
                                "its own priors")
    if isinstance(data, Fit):
        return data.spec, data.table, ""
    if model is None:
        raise BayesScalingError("model: give the law (a built-in name, a spec file or a LawSpec) to check a "
                                "table's priors, e.g. prior_predictive_check(table, model='chinchilla')")
    from bayes_scaling.data.tables import read_table

    spec = _as_spec(model)
    kept, _ = _apply_exclusions(spec, read_table(data, "data"), "the data", warn=True)   # as bs.fit reads them
    return spec, kept.reset_index(drop=True), ""


def prior_predictive_check(data: TransferData | AnyFit | pd.DataFrame | str, config: ModelConfig | None = None, *,
                           model=None, draws: int = 1000, seed: int = 0) -> PriorPredictive:
    """Draw from the prior of a law (``pm.sample_prior_predictive``, seeded) at the observed runs: the model
    ``bs.fit`` samples, with the data's values but the observations left out,
    ``log y ~ Normal(log f(x; theta), sigma)`` (or on the target's own scale), theta from the spec's priors.

    ``data``: a transfer data set (the transfer law with ``config``'s priors; default ``ModelConfig()``), a fit
    (its law, priors and runs), or a table / CSV path with ``model`` (a built-in name, spec file or LawSpec).

    >>> pri = prior_predictive_check(bs.load_example(), seed=1)                       # doctest: +SKIP
    >>> pri = prior_predictive_check(bs.datasets.load_corpora(), model="chinchilla_by_corpus")   # doctest: +SKIP
    >>> pri.parameters, pri.coverage                                                  # doctest: +SKIP
    """
    import pymc as pm

    from bayes_scaling.models import spec_model as sm

    if not isinstance(draws, (int, np.integer)) or draws < 10:
        raise BayesScalingError(f"draws must be an integer >= 10, got {draws!r}")
    spec, table, unit = _prior_inputs(data, config, model)
    plan = sm.plan(spec, table)
    with plan.build() as pm_model, warnings.catch_warnings(), _quiet_pymc():
        warnings.filterwarnings("ignore", category=UserWarning)
        tree = pm.sample_prior_predictive(draws=draws, random_seed=seed)
    prior = tree["prior"].to_dataset()
    group_cols = sorted({p.by for p in spec.parameters.values() if p.by is not None})
    label = group_cols[0] if len(group_cols) == 1 else "group"
    names = [p.name for p in spec.parameters.values() if p.fixed is None and p.name in prior]
    names += [v for v in prior.data_vars if v == "sigma" or v.startswith(("sigma_", "nu"))]
    q = [0.05, 0.5, 0.95]
    rows = []
    for v in names:
        da = prior[v]
        extra = [d for d in da.dims if d not in SAMPLE_DIMS]
        if extra:
            dim = extra[0]
            for g in da[dim].values:
                lo, med, hi = np.quantile(da.sel({dim: g}).values.ravel(), q)
                rows.append({"parameter": v, label: str(g), "q05": lo, "median": med, "q95": hi})
        else:
            lo, med, hi = np.quantile(da.values.ravel(), q)
            rows.append({"parameter": v, label: "", "q05": lo, "median": med, "q95": hi})
    params = pd.DataFrame(rows, columns=["parameter", label, "q05", "median", "q95"])
    obs_name = pm_model.observed_RVs[0].name
    rep = tree["prior_predictive"][obs_name].stack(sample=SAMPLE_DIMS).transpose(..., "sample").values
    rep = rep.reshape(-1, rep.shape[-1])
    if rep.shape[0] != len(table):   # replicate runs: the model observes each cell's mean, not each run
        raise BayesScalingError(f"prior_predictive_check: the law {spec.name!r} observes {rep.shape[0]} cell means "
                                f"of its {len(table)} runs (replicates = true); check it without replicates")
    y = table[spec.target].to_numpy(float)
    log = spec.scale == "log"
    runs = table.reset_index(drop=True).copy()
    runs.insert(0, "row", np.arange(len(runs)))
    obs = np.log(y) if log else y
    qs = np.quantile(rep, [0.005, 0.05, 0.5, 0.95, 0.995], axis=1)
    back = np.exp if log else (lambda x: x)
    runs["prior_q05"], runs["prior_median"], runs["prior_q95"] = back(qs[1]), back(qs[2]), back(qs[3])
    runs["inside90"] = (obs >= qs[1]) & (obs <= qs[3])
    runs["inside99"] = (obs >= qs[0]) & (obs <= qs[4])
    cov = pd.DataFrame({"nominal": [0.9, 0.99], "n": len(runs),
                        "observed": [runs["inside90"].mean(), runs["inside99"].mean()]})
    width = (qs[3] - qs[1]) / (np.log(10) if log else (np.std(y) or 1.0))
    return PriorPredictive(params, runs, cov, float(np.median(width)), tree, unit, spec.target, spec.scale)
