"""Fitting the joint model of from-scratch and fine-tuned losses (:mod:`bayes_scaling.models.joint`: the model and
its equations) by NUTS: :func:`fit_joint`, its result :class:`JointFit` and :func:`load_joint_fit`.

>>> import bayes_scaling as bs
>>> from bayes_scaling.data.datasets import load_scratch_losses, load_finetune_losses
>>> fit = bs.fit_joint(load_scratch_losses(), load_finetune_losses(), law="kaplan", seed=1)  # doctest: +SKIP
>>> fit.summary()                                                                           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import warnings
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling import __version__
from bayes_scaling._interval import CI_PROB
from bayes_scaling.data.finetune import LOW_FRACTION, exclude_non_low, read_finetune, regime
from bayes_scaling.data.tables import source_name
from bayes_scaling.errors import DataError, ExclusionWarning, FitFileError
from bayes_scaling.inference.base import FitBase
from bayes_scaling.inference.fitfile import read_tree, require_variables, without, write_tree
from bayes_scaling.inference.sampling import diagnose, sample_nuts, sampler_settings, summarize
from bayes_scaling.inference.scratch import ScratchFit, _dataset_to_frame, _frame_to_dataset
from bayes_scaling.models.joint import JointData, _map_law, build_joint_model
from bayes_scaling.models.losslaws import (
    _SAMPLED,
    LAW_PARAMETERS,
    LossLawConfig,
    converged_data,
    laplace_whitening,
    law_loss,
    read_scratch,
    seed_noise_scale,
)
from bayes_scaling.models.transfer import ModelConfig

__all__ = ["JointData", "JointFit", "fit_joint", "load_joint_fit"]


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

    def summary(self, ci_prob: float = CI_PROB, var_names: list[str] | None = None) -> pd.DataFrame:
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

    Deprecated (a ``FutureWarning`` names the replacement): the joint loss-space model is the built-in spec
    ``joint_kaplan`` of :func:`bayes_scaling.fit` (one table of both kinds of runs, columns ``pretrained`` and
    ``pretraining``; one noise scale for both kinds).

    >>> fit = fit_joint("scratch.csv", "finetune.csv", law="kaplan", seed=1)     # doctest: +SKIP
    >>> fit.summary()[["parameter", "pretraining", "median", "eti94_lb", "eti94_ub"]]   # doctest: +SKIP
    """
    other = (config.law if config else law) != "kaplan"
    warnings.warn("fit_joint is deprecated and will be removed: use bs.fit(runs, model=\"joint_kaplan\") on one "
                  "table of the from-scratch and the low-data fine-tuned runs (columns N, D, loss, pretrained = 0 "
                  "or 1, pretraining), the joint loss-space model as a law spec (one noise scale for both kinds of "
                  "runs)" + ("; for another loss law, a copy of specs/laws/joint_kaplan.toml with its formula"
                             if other else ""), FutureWarning, stacklevel=2)
    return _fit_joint(scratch, finetune, law=law, likelihood=likelihood, config=config,
                      transfer_config=transfer_config, low_only=low_only, low=low, seed=seed, draws=draws,
                      tune=tune, chains=chains, backend=backend, target_accept=target_accept, cores=cores,
                      progressbar=progressbar, warn=warn, duplicates=duplicates, stacklevel=3)


def _fit_joint(scratch: pd.DataFrame | str | PathLike, finetune: pd.DataFrame | str | PathLike, *,
               law: str = "chinchilla", likelihood: str = "normal", config: LossLawConfig | None = None,
               transfer_config: ModelConfig | None = None, low_only: bool = True, low: float = LOW_FRACTION,
               seed: int | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
               backend: str = "auto", target_accept: float = 0.9, cores: int | None = None,
               progressbar: bool | None = None, warn: bool = True, duplicates: str = "error",
               stacklevel: int = 2) -> JointFit:
    """:func:`fit_joint` without its FutureWarning (the package's own callers)."""
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
        warnings.warn(data.exclusion_report(), ExclusionWarning, stacklevel=stacklevel)
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
        fit.diagnostics.warn(stacklevel=stacklevel)
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
