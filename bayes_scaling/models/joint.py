"""Joint model of from-scratch and fine-tuned losses: the uncertainty of ``D_E`` flows into ``k, alpha, beta``.
Fitted by :func:`bayes_scaling.fit_joint` (:mod:`bayes_scaling.inference.joint`); compared with the two-stage
pipeline in :mod:`bayes_scaling.analysis.joint`.

Model (natural logs; ``L`` = the Chinchilla or Kaplan law of :mod:`bayes_scaling.models.losslaws`)::

    log loss_scratch[i]  ~ Normal(log L(N_i, D_i), sigma_scratch)             (or Student-t)
    log loss_finetune[j] ~ Normal(log L(N_j, D_F,j + D_T,j), sigma_finetune)  (or Student-t)
    D_T,j = k[p_j] * D_F,j**alpha[p_j] * N_j**beta                             (laws.transfer)

Instead of first estimating ``D_E`` (interpolation or law inversion) and then treating ``log D_T`` as data
(the two-stage pipeline: :mod:`bayes_scaling.analysis.effective` then :func:`bayes_scaling.fit_transfer`), the
fine-tuned losses inform ``k, alpha, beta`` *and* the loss law together. Priors of ``k, alpha, beta`` are the
foundation's (:data:`bayes_scaling.models.transfer.DEFAULT_PRIORS`; ``log D_T`` at the centre of the data is sampled,
``log_k`` is a Deterministic), independent per pre-training distribution (no pooling: a handful of
distributions). Loss-law priors are :data:`~bayes_scaling.models.losslaws.DEFAULT_LOSS_PRIORS`. All parameters are
sampled in a Laplace-whitened basis (as in :func:`~bayes_scaling.inference.scratch.fit_scratch`).

Measured against the two-stage pipeline (:func:`~bayes_scaling.analysis.joint.compare_with_two_stage`, ``python -m bayes_scaling.analysis.joint``;
30 seeds of the default :func:`~bayes_scaling.data.simulate.simulate_losses` design, Kaplan law, 0.5% loss noise,
2 chains x 500 draws, 90% equal-tailed intervals; two-stage = interpolation -> low-data ``fit_transfer``)::

    parameter          coverage joint / two-stage   mean width joint / two-stage   mean |error| joint / two-stage
    alpha[text]            0.97 / 1.00                 0.028 / 0.076                  0.005 / 0.012
    alpha[text+code]       0.77 / 0.83                 0.038 / 0.076                  0.011 / 0.023
    beta                   0.90 / 0.77                 0.030 / 0.054                  0.007 / 0.019
    log_k[text]            0.87 / 0.93                 0.61  / 1.40                   0.16  / 0.40
    log_k[text+code]       0.87 / 0.70                 0.75  / 1.42                   0.19  / 0.43
    all                    0.87 / 0.85

The joint intervals are about half as wide, its medians 2-3x closer to the truth, with similar overall coverage;
the two-stage coverage is uneven (beta 0.77, log_k[text+code] 0.70: interpolation errors of D_E are treated as
noise of log D_T). With law inversion as the first stage (10 seeds) the two-stage coverage was 0.86 at a mean
width 1.6x the joint's. The joint model under-covers alpha[text+code] (0.77 of 30; a transfer that is almost all
D_T, measured where the loss curves flatten).

By default only low-data runs enter (``D_F <= 0.1 D(N)``, with ``D(N)`` from the posterior mode of the
from-scratch law): the others are kept in ``fit.data.finetune`` with ``excluded`` and a reason.

**Seeds.** Runs of one configuration with different ``seed`` values (from scratch: ``N, D``; fine-tuned:
``pretraining, N, D_F``) are replicates: each kind's likelihood is then that of
:func:`~bayes_scaling.models.losslaws.replicate_likelihood` (the configuration's mean log loss with its standard
error, and the within-configuration scatter), with its own seed noise ``sigma_seed(N)`` (``sigma_seed_scratch``,
``seed_slope_scratch``; ``sigma_seed_finetune``, ``seed_slope_finetune``), so the measured seed-to-seed spread
enters the intervals of ``k, alpha, beta`` and ``sigma_*`` is the law's misfit between configurations. One
run per configuration: the model above.

>>> import bayes_scaling as bs
>>> from bayes_scaling.data.datasets import load_scratch_losses, load_finetune_losses
>>> fit = bs.fit_joint(load_scratch_losses(), load_finetune_losses(), law="kaplan", seed=1)  # doctest: +SKIP
>>> fit.summary()                                                                         # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_scaling.errors import format_rows
from bayes_scaling.laws import formulas as laws
from bayes_scaling.models.losslaws import (
    LossLawConfig,
    _centres,
    _deterministics,
    _likelihood,
    build_loss_model,
    laplace_whitening,
    law_loss,
    law_parameters,
    loss_spec,
    replicate_cells,
    replicate_likelihood,
    seed_noise_spec,
    whitened_vector,
)
from bayes_scaling.models.transfer import ModelConfig

__all__ = ["JointData", "build_joint_model"]


@dataclass
class JointData:
    """Inputs of a joint fit: from-scratch runs, fine-tuned runs (with ``regime``, ``excluded``,
    ``exclusion_reason``), the unit of data."""

    scratch: pd.DataFrame
    finetune: pd.DataFrame
    unit: str = "tokens"
    source: str = ""

    @property
    def used(self) -> pd.DataFrame:
        return self.finetune.loc[~self.finetune["excluded"].astype(bool)]

    @property
    def n_used(self) -> int:
        return int((~self.finetune["excluded"].astype(bool)).sum())

    @property
    def n_excluded(self) -> int:
        return len(self.finetune) - self.n_used

    @property
    def pretraining(self) -> tuple[str, ...]:
        return tuple(pd.unique(self.used["pretraining"].astype(str)))

    def exclusion_report(self) -> str:
        ex = self.finetune.loc[self.finetune["excluded"].astype(bool)]
        if len(ex) == 0:
            return "no fine-tuned runs excluded"
        parts = [f"{reason}: {len(g)} run(s) [{format_rows(g.index.tolist())}]"
                 for reason, g in ex.groupby("exclusion_reason", sort=False)]
        return f"excluded {len(ex)} of {len(self.finetune)} fine-tuned runs: " + "; ".join(parts)


def _map_law(scratch: pd.DataFrame, config: LossLawConfig) -> dict[str, float]:
    """Natural parameters of the loss law at the posterior mode (from-scratch runs only)."""
    centres = _centres(scratch)
    spec = loss_spec(config, centres, replicate_cells(scratch, ("N", "D"), what="from-scratch runs").replicated)
    m, _ = laplace_whitening(lambda m0, L0: build_loss_model(scratch, config, centres, m0, L0)[0], spec)
    vals = {}
    for (name, *_), x in zip(spec, m, strict=True):
        vals[name] = x
        if name.startswith("log_"):
            vals[name[4:]] = np.exp(x)
    natural, _ = law_parameters(config.law, vals, centres, np)
    return {k: float(v) for k, v in natural.items()}


def _transfer_spec(P: int, c_F: float, c_N: float, tcfg: ModelConfig, likelihood: str, pri_loss: dict) -> list:
    p = tcfg.priors
    m_a, s_a = tcfg.centre_prior(c_F, c_N)
    spec = [(f"a[{i}]", "normal", m_a, s_a) for i in range(P)]
    spec += [(f"alpha[{i}]", "normal", p["alpha"]["mu"], p["alpha"]["sigma"]) for i in range(P)]
    spec += [("beta", "normal", p["beta"]["mu"], p["beta"]["sigma"]),
             ("log_sigma_finetune", "halfnormal", 0.0, pri_loss["sigma"]["sigma"])]
    if likelihood == "student_t":
        spec.append(("log_nu_finetune", "gamma", pri_loss["nu"]["alpha"], pri_loss["nu"]["beta"]))
    return spec


def build_joint_model(scratch: pd.DataFrame, used: pd.DataFrame, pretraining: tuple[str, ...],
                      config: LossLawConfig, tcfg: ModelConfig, m: np.ndarray | None = None,
                      L: np.ndarray | None = None):
    """The joint PyMC model (module docstring); ``m, L``: the whitening of the parameter vector."""
    import pymc as pm
    import pytensor.tensor as pt

    law = config.law
    centres = _centres(scratch)
    c_F = float(np.mean(np.log(used["D_F"])))
    c_NF = float(np.mean(np.log(used["N"])))
    P = len(pretraining)
    sc_cells = replicate_cells(scratch, ("N", "D"), what="from-scratch runs")
    ft_cells = replicate_cells(used, ("pretraining", "N", "D_F"), what="fine-tuned runs")
    # the scratch seed noise is named *_scratch in the posterior: its sampled names get a suffix here
    spec = loss_spec(config, centres) + (seed_noise_spec("_scratch") if sc_cells.replicated else []) + \
        _transfer_spec(P, c_F, c_NF, tcfg, config.likelihood, config.priors) + \
        (seed_noise_spec("_finetune") if ft_cells.replicated else [])
    index = {p: i for i, p in enumerate(pretraining)}
    model = pm.Model(coords={"scratch_run": np.arange(len(scratch)), "run": np.arange(len(used)),
                             "pretraining": list(pretraining), "scratch_cell": np.arange(len(sc_cells.table)),
                             "finetune_cell": np.arange(len(ft_cells.table))})
    vals = whitened_vector(model, spec, m, L)
    with model:
        natural, scaled = law_parameters(law, vals, centres, pt)
        _deterministics(law, vals, natural, config, noise_suffix="_scratch")
        if sc_cells.replicated:
            t = sc_cells.table
            n_s = pm.Data("N_scaled", t["N"].to_numpy(float) * np.exp(-centres["c_N"]), dims="scratch_cell")
            d_s = pm.Data("D_scaled", t["D"].to_numpy(float) * np.exp(-centres["c_D"]), dims="scratch_cell")
            replicate_likelihood("log_loss", pt.log(law_loss(law, n_s, d_s, scaled)), vals, config.likelihood,
                                 sc_cells, centres["c_N"], "scratch_cell", seed_suffix="_scratch")
        else:
            n_s = pm.Data("N_scaled", scratch["N"].to_numpy(float) * np.exp(-centres["c_N"]), dims="scratch_run")
            d_s = pm.Data("D_scaled", scratch["D"].to_numpy(float) * np.exp(-centres["c_D"]), dims="scratch_run")
            obs_s = pm.Data("log_loss_obs", np.log(scratch["loss"].to_numpy(float)), dims="scratch_run")
            _likelihood("log_loss", pt.log(law_loss(law, n_s, d_s, scaled)), vals, config.likelihood, obs_s,
                        "scratch_run")
        a = pm.Deterministic("a", pt.stack([vals[f"a[{i}]"] for i in range(P)]), dims="pretraining")
        alpha = pm.Deterministic("alpha", pt.stack([vals[f"alpha[{i}]"] for i in range(P)]), dims="pretraining")
        beta = pm.Deterministic("beta", vals["beta"])
        log_k = pm.Deterministic("log_k", laws.log_k_from_centre(a, alpha, beta, c_F, c_NF), dims="pretraining")
        pm.Deterministic("k", pt.exp(log_k), dims="pretraining")
        pm.Deterministic("sigma_finetune", vals["sigma_finetune"])
        if config.likelihood == "student_t":
            pm.Deterministic("nu_finetune", vals["nu_finetune"])
        # one D_E per configuration (its seeds share it); the posterior's D_E is per fine-tuned run
        cells = ft_cells.table
        p_idx = np.array([index[p] for p in cells["pretraining"].astype(str)], dtype=np.int64)
        log_D_F = np.log(cells["D_F"].to_numpy(float))
        log_N = np.log(cells["N"].to_numpy(float))
        D_T = pt.exp(laws.log_transfer(a[p_idx], alpha[p_idx], beta, log_D_F - c_F, log_N - c_NF))
        D_E_cell = cells["D_F"].to_numpy(float) + D_T
        pm.Deterministic("D_E", D_E_cell[ft_cells.index], dims="run")
        mu_f = pt.log(law_loss(law, cells["N"].to_numpy(float) * np.exp(-centres["c_N"]),
                               D_E_cell * np.exp(-centres["c_D"]), scaled))
        if ft_cells.replicated:
            replicate_likelihood("log_loss_finetune", mu_f, vals, config.likelihood, ft_cells, centres["c_N"],
                                 "finetune_cell", suffix="_finetune")
        else:
            obs_f = pm.Data("log_loss_finetune_obs", np.log(used["loss"].to_numpy(float)), dims="run")
            _likelihood("log_loss_finetune", mu_f, vals, config.likelihood, obs_f, "run", suffix="_finetune")
    model.centres = dict(centres, c_F=c_F, c_NF=c_NF)  # type: ignore[attr-defined]
    model.spec = spec  # type: ignore[attr-defined]
    return model
