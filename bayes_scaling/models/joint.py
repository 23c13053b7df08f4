"""Joint model of from-scratch and fine-tuned losses: the uncertainty of ``D_E`` flows into ``k, alpha, beta``.

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
sampled in a Laplace-whitened basis (as in :func:`~bayes_scaling.models.losslaws.fit_scratch`).

Measured against the two-stage pipeline (:func:`compare_with_two_stage`, ``python -m bayes_scaling.models.joint``;
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

>>> from bayes_scaling.data.datasets import load_scratch_losses, load_finetune_losses
>>> fit = fit_joint(load_scratch_losses(), load_finetune_losses(), law="kaplan", seed=1)   # doctest: +SKIP
>>> fit.summary()                                                                         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling import __version__
from bayes_scaling.analysis.effective import LOW_FRACTION, exclude_non_low, read_finetune, regime
from bayes_scaling.data.tables import source_name
from bayes_scaling.errors import DataError, ExclusionWarning, FitFileError, format_rows
from bayes_scaling.inference.base import FitBase
from bayes_scaling.inference.fitfile import read_tree, require_variables, without, write_tree
from bayes_scaling.inference.sampling import diagnose, sample_nuts, sampler_settings, summarize
from bayes_scaling.laws import formulas as laws
from bayes_scaling.models.losslaws import (
    _SAMPLED,
    LAW_PARAMETERS,
    LossLawConfig,
    ScratchFit,
    _centres,
    _dataset_to_frame,
    _deterministics,
    _frame_to_dataset,
    _likelihood,
    build_loss_model,
    converged_data,
    laplace_whitening,
    law_loss,
    law_parameters,
    loss_spec,
    read_scratch,
    replicate_cells,
    replicate_likelihood,
    seed_noise_scale,
    seed_noise_spec,
    whitened_vector,
)
from bayes_scaling.models.transfer import ModelConfig

__all__ = ["JointData", "JointFit", "fit_joint", "load_joint_fit", "compare_with_two_stage", "comparison_table"]


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


class JointFit(FitBase):
    """A joint fit: ``.posterior`` holds ``k, log_k, alpha`` (dim pretraining), ``beta``, the loss-law
    parameters, ``sigma_scratch``, ``sigma_finetune`` (noise of log loss), ``D_E`` (dim run) and ``sigma``
    (the implied noise of log D_E, see :func:`_add_implied_sigma`); ``.pretraining``, ``.data``
    (:class:`JointData`, with ``.unit`` and ``.used``) make it usable by
    :func:`bayes_scaling.analysis.predictions.predict` like a :class:`~bayes_scaling.inference.sampling.TransferFit`."""

    def __init__(self, tree: xr.DataTree, data: JointData, loss_config: LossLawConfig, config: ModelConfig):
        self.tree = tree
        self.data = data
        self.loss_config = loss_config  # the loss law, likelihood and loss-law priors
        self.config = config            # the transfer priors (as TransferFit.config; one level, no pooling)

    @property
    def law(self) -> str:
        return self.loss_config.law

    @property
    def pretraining(self) -> list[str]:
        return [str(p) for p in self.posterior["pretraining"].values]

    def parameter_names(self) -> list[str]:
        names = ["k", "log_k", "alpha", "beta"] + list(LAW_PARAMETERS[self.law]) + ["sigma_scratch",
                                                                                     "sigma_finetune"]
        if self.loss_config.likelihood == "student_t":
            names += ["nu_scratch", "nu_finetune"]
        return names + [f"{v}_{k}" for k in ("scratch", "finetune") for v in ("sigma_seed", "seed_slope")
                        if f"{v}_{k}" in self.tree["posterior"].data_vars]

    @property
    def diagnostics(self):
        names = [n for n in self.parameter_names() if n != "k"] + [n for n in _SAMPLED[self.law]
                                                                   if n not in LAW_PARAMETERS[self.law]]
        return diagnose(self.tree, names)

    def summary(self, ci_prob: float = 0.94, var_names: list[str] | None = None) -> pd.DataFrame:
        """Posterior summary of k, log_k, alpha, beta, the loss law and the noise scales."""
        return summarize(self.tree, var_names or self.parameter_names(), ci_prob)

    def scratch_fit(self) -> ScratchFit:
        """The loss-law part as a :class:`ScratchFit` (``.loss``, ``.inverse``, ``.converged_data``)."""
        return ScratchFit(self.tree, self.data.scratch, self.loss_config)

    def __repr__(self) -> str:
        p = self.posterior
        return (f"JointFit(law={self.law!r}, {len(self.data.scratch)} from-scratch + {self.data.n_used} fine-tuned "
                f"runs, pretraining={self.pretraining}, {p.sizes['chain']} chains x {p.sizes['draw']} draws)")

    def save(self, path: str | PathLike) -> Path:
        """One netCDF file: draws, sample stats, both data tables (groups ``scratch_data``, ``finetune_data``)
        and the configuration."""
        return write_tree(self.tree, path, scratch_data=_frame_to_dataset(self.data.scratch, "scratch_run"),
                          finetune_data=_frame_to_dataset(self.data.finetune, "finetune_run"))


def _config_hash(config: LossLawConfig, tcfg: ModelConfig) -> str:
    """A short hash of both configurations (the loss law's and the transfer model's), stored in fit files."""
    doc = {"loss_law": config.to_dict(), "transfer": tcfg.to_dict()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def load_joint_fit(path: str | PathLike) -> JointFit:
    """Read a fit written by :meth:`JointFit.save`."""
    tree = read_tree(path, "joint", groups=("posterior", "scratch_data", "finetune_data"),
                     attrs=("config", "transfer_config", "seed"))
    try:
        config = LossLawConfig.from_dict(json.loads(tree.attrs["config"]))
        tcfg = ModelConfig.from_dict(json.loads(tree.attrs["transfer_config"]), where=f"{path}: transfer_config")
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise FitFileError(f"{path}: missing or invalid configuration ({exc})") from None
    stored = tree.attrs.get("config_hash")  # absent in files written before it was recorded
    if stored is not None and stored != _config_hash(config, tcfg):
        raise FitFileError(f"{path}: configuration hash mismatch (file edited or corrupted)")
    ft = _dataset_to_frame(tree["finetune_data"].to_dataset())
    missing = [c for c in ("pretraining", "N", "D_F", "loss", "excluded", "exclusion_reason") if c not in ft.columns]
    if missing:
        raise FitFileError(f"{path}: the finetune_data group lacks the column(s) {', '.join(missing)}")
    ft["excluded"] = ft["excluded"].astype(bool)
    ft["exclusion_reason"] = ft["exclusion_reason"].astype(str).replace({"nan": ""})
    data = JointData(_dataset_to_frame(tree["scratch_data"].to_dataset()), ft, str(tree.attrs.get("unit")),
                     str(tree.attrs.get("source", "")))
    fit = JointFit(without(tree, "scratch_data", "finetune_data"), data, config, tcfg)
    require_variables(tree, path, fit.parameter_names())
    return fit


def fit_joint(scratch: pd.DataFrame | str | PathLike, finetune: pd.DataFrame | str | PathLike, *,
              law: str = "chinchilla", likelihood: str = "normal", config: LossLawConfig | None = None,
              transfer_config: ModelConfig | None = None, low_only: bool = True, low: float = LOW_FRACTION,
              seed: int | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
              backend: str = "auto", target_accept: float = 0.9, cores: int | None = None,
              progressbar: bool | None = None, warn: bool = True, duplicates: str = "error") -> JointFit:
    """Fit the joint model of from-scratch losses (``N, D, loss``) and fine-tuned losses
    (``pretraining, N, D_F, loss``) by NUTS. ``low_only`` keeps the low-data runs (others excluded, reported).
    ``config``: the loss law (:class:`LossLawConfig`, overrides ``law``/``likelihood``); ``transfer_config``: a
    :class:`~bayes_scaling.models.transfer.ModelConfig` whose priors of ``log_k``, ``alpha``, ``beta`` are used (its
    likelihood/variant are not: the fine-tuned losses use the loss likelihood, and there is no pooling).

    >>> fit = fit_joint("scratch.csv", "finetune.csv", law="kaplan", seed=1)     # doctest: +SKIP
    >>> fit.summary()[["parameter", "pretraining", "median", "eti94_lb", "eti94_ub"]]   # doctest: +SKIP
    """
    config = config or LossLawConfig(law=law, likelihood=likelihood)
    tcfg = transfer_config or ModelConfig()
    sc = read_scratch(scratch, duplicates=duplicates)
    ft = read_finetune(finetune)
    if sc["unit"].iloc[0] != ft["unit"].iloc[0]:
        raise DataError(f"the from-scratch runs count data in {sc['unit'].iloc[0]} but the fine-tuned runs in "
                        f"{ft['unit'].iloc[0]}; D and D_F must be in the same unit")
    seed, progressbar = sampler_settings(draws, tune, chains, seed, progressbar)
    point = _map_law(sc, config)
    D_N = np.asarray(converged_data(config.law, ft["N"].to_numpy(float), point), float)
    ft["D_N"] = D_N
    ft["regime"] = regime(ft["D_F"].to_numpy(), D_N, low)
    ft["excluded"] = False
    ft["exclusion_reason"] = ""
    if low_only:
        ft = exclude_non_low(ft)
    data = JointData(sc, ft, str(sc["unit"].iloc[0]), source=source_name(finetune, "DataFrame"))
    if data.n_used == 0:
        raise DataError(f"fine-tuned runs: none is in the low-data regime (D_F <= {low:g} D(N)); "
                        f"{data.exclusion_report()}; pass low_only=False to fit them anyway")
    if warn and data.n_excluded:
        warnings.warn(data.exclusion_report(), ExclusionWarning, stacklevel=2)
    used = data.used.reset_index(drop=True)
    pretraining = data.pretraining

    def build(m, L):
        return build_joint_model(sc, used, pretraining, config, tcfg, m, L)

    probe = build(None, None)
    m, L = laplace_whitening(build, probe.spec)
    model = build(m, L)
    tree = sample_nuts(model, draws=draws, tune=tune, chains=chains, seed=seed, backend=backend,
                       target_accept=target_accept, progressbar=progressbar, cores=cores, log_likelihood=False)
    tree.attrs.update(bayes_scaling_kind="joint", bayes_scaling_version=__version__,
                      config=json.dumps(config.to_dict()), transfer_config=json.dumps(tcfg.to_dict()),
                      config_hash=_config_hash(config, tcfg), law=config.law, seed=int(seed), tune=int(tune),
                      target_accept=float(target_accept), unit=data.unit, source=data.source,
                      centres=json.dumps(model.centres), pretraining=json.dumps(list(pretraining)))
    tree = _add_implied_sigma(tree, config.law, used)
    fit = JointFit(tree, data, config, tcfg)
    if warn:
        fit.diagnostics.warn(stacklevel=2)
    return fit


def _add_implied_sigma(tree: xr.DataTree, law: str, used: pd.DataFrame) -> xr.DataTree:
    """Add ``sigma``: the scatter of log D_E implied by the fine-tuned loss noise at the typical run,
    ``sigma_finetune / median_j |d log L / d log D| (N_j, D_E,j)`` per draw (the slope by a central difference
    of the law). It plays the role of the transfer model's noise of log D_T, so ``predict(fit, noise=True)``
    gives the scatter a two-stage analysis would see."""
    post = tree["posterior"].to_dataset()
    params = {k: post[k] for k in LAW_PARAMETERS[law]}
    N = xr.DataArray(used["N"].to_numpy(float), dims="run")
    h = 1e-3
    up = np.log(law_loss(law, N, post["D_E"] * np.exp(h), params))
    down = np.log(law_loss(law, N, post["D_E"] * np.exp(-h), params))
    slope = np.abs(up - down) / (2 * h)
    noise = post["sigma_finetune"]
    if "sigma_seed_finetune" in post:  # a new run is one seed: the law's misfit and the seed noise at its N
        c_N = json.loads(tree.attrs["centres"])["c_N"]
        s_seed = seed_noise_scale(post, np.log(N), c_N, "_finetune")
        noise = np.sqrt(noise ** 2 + s_seed ** 2).median("run")
    sigma = (noise / slope.median("run")).transpose("chain", "draw")
    sigma.attrs["description"] = ("implied noise of log D_E: sigma_finetune / median |d log L / d log D| over the "
                                  "fine-tuned runs")
    tree = tree.copy()
    tree["posterior"] = xr.DataTree(post.assign(sigma=sigma))
    return tree


# ---- joint vs two-stage on simulated data ---------------------------------------------------------------


def compare_with_two_stage(seeds, *, method: str = "interpolate", law: str = "kaplan", ci_prob: float = 0.9,
                           draws: int = 500, tune: int = 500, chains: int = 2, sim_kwargs: dict | None = None
                           ) -> pd.DataFrame:
    """Interval coverage of the truth and width, joint model vs the two-stage pipeline, on simulated losses.

    For each seed: :func:`~bayes_scaling.data.simulate.simulate_losses` (truth: Table 1 and the loss law); two-stage
    = :func:`fit_scratch` -> :func:`effective_data` (``method``) -> low-data :func:`fit_transfer`; joint =
    :func:`fit_joint`. One row per seed, approach and parameter (``log_k`` and ``alpha`` per pre-training,
    ``beta``): truth, median, equal-tailed ``ci_prob`` interval, ``covered``, ``width``.
    See :func:`comparison_table` for the aggregate.
    """
    from bayes_scaling.analysis.effective import effective_data
    from bayes_scaling.data.simulate import simulate_losses
    from bayes_scaling.inference.sampling import fit_transfer
    from bayes_scaling.models.losslaws import fit_scratch

    rows = []
    kw = {"draws": draws, "tune": tune, "chains": chains, "progressbar": False}
    for seed in seeds:
        sc, ft, meta = simulate_losses(seed, law=law, **(sim_kwargs or {}))
        truth = meta["truth"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sf = fit_scratch(sc, law=law, seed=seed, **kw)
            eff = effective_data(sc, ft, method=method, scratch_fit=sf, warn=False)
            tf = fit_transfer(eff.to_transfer_data(low_only=True), seed=seed, draws=draws, tune=tune,
                              chains=chains, progressbar=False, warn=False)
            jf = fit_joint(sc, ft, law=law, seed=seed, warn=False, **kw)
        for approach, fit in (("two-stage", tf), ("joint", jf)):
            post = fit.posterior
            for par in ("log_k", "alpha", "beta"):
                for p in (fit.pretraining if par != "beta" else [""]):
                    da = post[par].sel(pretraining=p) if "pretraining" in post[par].dims else post[par]
                    x = da.values.ravel()
                    true = {"log_k": np.log(truth[p]["k"]) if p else None, "alpha": truth[p]["alpha"] if p else None,
                            "beta": next(iter(truth.values()))["beta"]}[par]
                    lo, med, hi = np.quantile(x, [(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2])
                    rows.append({"seed": seed, "approach": approach, "parameter": par, "pretraining": p,
                                 "truth": float(true), "median": med, "lb": lo, "ub": hi,
                                 "covered": bool(lo <= true <= hi), "width": hi - lo,
                                 "n_runs": fit.data.n_used})
    return pd.DataFrame(rows)


def comparison_table(results: pd.DataFrame) -> pd.DataFrame:
    """Coverage rate and mean interval width per approach and parameter (from :func:`compare_with_two_stage`)."""
    g = results.groupby(["parameter", "pretraining", "approach"], sort=True)
    return g.agg(coverage=("covered", "mean"), mean_width=("width", "mean"),
                 mean_abs_error=("median", lambda s: float(np.mean(np.abs(s - results.loc[s.index, "truth"])))),
                 n=("covered", "size")).reset_index()



# ---- the joint-vs-two-stage study: python -m bayes_scaling.models.joint --seeds 0-9 --method interpolate ----
_STUDY_DOC = """Joint model vs two-stage pipeline on simulated raw losses: interval coverage of the truth and width.

    python -m bayes_scaling.models.joint --seeds 0-9 --method interpolate --out cmp.csv

Each seed: bayes_scaling.data.simulate.simulate_losses (Kaplan law, Table 1 transfer truth, 0.5% loss noise);
two-stage = fit_scratch -> effective_data(method) -> low-data fit_transfer; joint = fit_joint. Prints the
per-parameter coverage of the 90% equal-tailed intervals, their mean width and the mean absolute error of the
posterior median.
"""


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def _main() -> None:
    import argparse
    import time

    p = argparse.ArgumentParser(description=_STUDY_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=_seeds, default=_seeds("0-9"))
    p.add_argument("--method", choices=["interpolate", "law"], default="interpolate")
    p.add_argument("--ci", type=float, default=0.9)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--out", default=None, help="CSV of the per-seed rows")
    args = p.parse_args()
    t0 = time.perf_counter()
    res = compare_with_two_stage(args.seeds, method=args.method, ci_prob=args.ci, draws=args.draws,
                                 tune=args.draws, chains=args.chains)
    if args.out:
        from bayes_scaling._atomic import atomic_path

        with atomic_path(args.out) as tmp:
            res.to_csv(tmp, index=False)
    with pd.option_context("display.width", 200, "display.precision", 4):
        print(comparison_table(res).to_string(index=False))
    print(f"{len(args.seeds)} seeds, method {args.method}, {100 * args.ci:g}% intervals, "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    _main()
