"""The joint loss-space model of from-scratch and fine-tuned losses as a built-in spec of the one engine
(:func:`bayes_scaling.fit` with ``joint_kaplan`` or ``joint_chinchilla``): the fit object :class:`JointFit` (a
:class:`~bayes_scaling.inference.fit.Fit` with the joint accessors), the deprecated wrapper :func:`fit_joint` and
:func:`load_joint_fit`.

Model (natural logs; ``L`` the Kaplan or Chinchilla law; one table of both kinds of runs, ``pretrained`` 0 or 1)::

    log loss[i] ~ Normal(log L(N_i, D_i + pretrained_i * D_T,i), sigma[pretrained_i])     (or Student-t)
    D_T,i = k[p_i] * D_i**alpha[p_i] * N_i**beta                                         (laws.transfer)

with one noise scale per kind of run (``[likelihood] sigma_by = "pretrained"``: ``sigma_scratch`` and
``sigma_finetune`` in the fit) and, for runs of one configuration trained with several seeds, the seed-noise
likelihood per kind (``replicates``, ``seed_slope = "N"``). The fine-tuned losses inform ``k, alpha, beta`` *and*
the loss law together (instead of first estimating ``D_E``, then treating ``log D_T`` as data: the two-stage
pipeline). Measured against that pipeline: :mod:`bayes_scaling.analysis.joint`, docs/validation.md.

By default only low-data runs enter (``D_F <= 0.1 D(N)``, with ``D(N)`` from the posterior mode of the
from-scratch law): the others are kept in ``fit.data.finetune`` with ``excluded`` and a reason.

>>> import bayes_scaling as bs
>>> from bayes_scaling.data.datasets import load_scratch_losses, load_finetune_losses
>>> fit = bs.fit_joint(load_scratch_losses(), load_finetune_losses(), law="kaplan", seed=1)  # doctest: +SKIP
>>> fit.summary()                                                                           # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling._interval import CI_PROB
from bayes_scaling.data.finetune import LOW_FRACTION, exclude_non_low, read_finetune, regime
from bayes_scaling.data.tables import source_name
from bayes_scaling.errors import ConfigError, DataError, ExclusionWarning, FitFileError, format_rows
from bayes_scaling.inference.fit import Fit
from bayes_scaling.inference.fit import _frame_to_dataset as _spec_frame_to_dataset
from bayes_scaling.inference.fitfile import read_tree, require_variables, without, write_tree
from bayes_scaling.inference.sampling import diagnose, summarize
from bayes_scaling.inference.scratch import ScratchFit, _dataset_to_frame, _frame_to_dataset
from bayes_scaling.laws import formulas as laws
from bayes_scaling.laws.spec import LawSpec, builtin_spec
from bayes_scaling.models.losslaws import (
    _SAMPLED,
    LAW_PARAMETERS,
    SEED_NOISE_PRIORS,
    LossLawConfig,
    _centres,
    build_loss_model,
    converged_data,
    laplace_whitening,
    law_loss,
    law_parameters,
    loss_spec,
    read_scratch,
    replicate_cells,
    seed_noise_scale,
)
from bayes_scaling.models.transfer import ModelConfig

__all__ = ["JointData", "JointFit", "fit_joint", "joint_spec", "joint_table", "load_joint_fit"]


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


#: the ``pretraining`` label of the from-scratch rows in the engine's table (their k and alpha do not enter the law)
SCRATCH_LABEL = "(from scratch)"
#: the kinds of run: level of ``pretrained`` -> the suffix of their noise variables in a joint fit
KINDS = {"0": "_scratch", "1": "_finetune"}
#: the dimension of the joint spec's noise scales (``sigma_by = "pretrained"``, an input: spec_model.noise_dim)
KIND_DIM = "pretrained_level"


class JointFit(Fit):
    """A joint fit: a :class:`~bayes_scaling.inference.fit.Fit` of the joint spec (``summary``, ``predict`` at
    points of its table's columns, ``save``) with the joint accessors. ``.posterior`` holds ``k, log_k, alpha``
    (dim pretraining), ``beta``, the loss-law parameters, ``sigma_scratch``, ``sigma_finetune`` (noise of log
    loss per kind; the engine's ``sigma`` by ``pretrained``), ``D_E`` (dim run) and ``sigma_D_E`` (the implied
    noise of log D_E, :func:`_add_implied_sigma`); ``.pretraining``, ``.data`` (:class:`JointData`, with ``.unit``
    and ``.used``) make it usable by :func:`bayes_scaling.analysis.predictions.predict` on the grid ``N x D_F``
    like a :class:`~bayes_scaling.inference.sampling.TransferFit`. Fit files of versions 0.1 and 0.2 (the former
    joint model, ``bayes_scaling_kind = "joint"``) load as one too (``legacy``)."""

    #: analysis.predictions.predict(fit, N=, D_F=) predicts D_T on the grid, as for a transfer fit
    transfer_grid = True

    def __init__(self, tree: xr.DataTree, data: JointData, loss_config: LossLawConfig, config: ModelConfig,
                 spec: LawSpec | None = None, table: pd.DataFrame | None = None):
        if spec is None:    # a file of 0.1/0.2: the spec of its law (its draws are the former model's)
            spec = dataclasses.replace(builtin_spec(f"joint_{loss_config.law}"), family=loss_config.likelihood)
        super().__init__(tree, joint_table(data) if table is None else table, spec)
        self._table = self.data
        self.data = data                # the joint data (both tables, exclusions); the fitted rows: .table
        self.loss_config = loss_config  # the loss law, likelihood and loss-law priors
        self.config = config            # the transfer priors of the former model (files of 0.1/0.2)

    @property
    def table(self) -> pd.DataFrame:
        """The fitted rows (columns ``N, D, loss, pretrained, pretraining``), as :class:`Fit`'s methods read them."""
        return self._table

    @property
    def legacy(self) -> bool:
        """Whether the draws come from the former joint model (a fit file of version 0.1 or 0.2)."""
        return self.tree.attrs.get("bayes_scaling_kind") == "joint"

    @property
    def law(self) -> str:
        return self.loss_config.law

    @property
    def pretraining(self) -> list[str]:
        return [str(p) for p in self.posterior["pretraining"].values if str(p) != SCRATCH_LABEL]

    def parameter_names(self) -> list[str]:
        names = ["k", "log_k", "alpha", "beta"] + list(LAW_PARAMETERS[self.law]) + ["sigma_scratch",
                                                                                     "sigma_finetune"]
        if self.loss_config.likelihood == "student_t":
            names += ["nu_scratch", "nu_finetune"]
        return names + [f"{v}_{k}" for k in ("scratch", "finetune") for v in ("sigma_seed", "seed_slope")
                        if f"{v}_{k}" in self.tree["posterior"].data_vars]

    @property
    def diagnostics(self):
        if not self.legacy:
            return super().diagnostics
        names = [n for n in self.parameter_names() if n != "k"] + [n for n in _SAMPLED[self.law]
                                                                   if n not in LAW_PARAMETERS[self.law]]
        return diagnose(self.tree, names)

    def summary(self, ci_prob: float = CI_PROB, var_names: list[str] | None = None) -> pd.DataFrame:
        """Posterior summary of k, log_k, alpha, beta, the loss law and the noise scales (the from-scratch rows'
        ``k``, ``alpha``, which do not enter the law, left out)."""
        table = summarize(self.tree, var_names or self.parameter_names(), ci_prob)
        return table.loc[table["group"] != SCRATCH_LABEL].reset_index(drop=True)

    def predict(self, new_data, kind: str = "mean", **kwargs):
        """:meth:`Fit.predict` at points of the joint table's columns (``N, D, pretrained, pretraining``); a fit
        of the former model (files of 0.1/0.2) predicts ``D_T`` on a grid only
        (:func:`bayes_scaling.analysis.predictions.predict` with ``N=``, ``D_F=``)."""
        if self.legacy:
            raise FitFileError("a joint fit of version 0.1/0.2 predicts D_T on a grid only: use "
                               "bs.predict(fit, N=..., D_F=...)")
        return super().predict(new_data, kind, **kwargs)

    def scratch_fit(self) -> ScratchFit:
        """The loss-law part as a :class:`ScratchFit` (``.loss``, ``.inverse``, ``.converged_data``; its
        ``sigma`` the from-scratch runs')."""
        if self.legacy:
            return ScratchFit(self.tree, self.data.scratch, self.loss_config)
        post = self.posterior
        keep = {n: post[n] for n in LAW_PARAMETERS[self.law]}
        for name in ("sigma", "nu", "sigma_seed", "seed_slope"):
            if f"{name}_scratch" in post:
                keep[name] = post[f"{name}_scratch"]
        tree = xr.DataTree(children={"posterior": xr.DataTree(xr.Dataset(keep))})
        tree.attrs.update({k: v for k, v in self.tree.attrs.items() if k in ("seed", "backend", "unit",
                                                                              "seed_centre")})
        tree.attrs["centres"] = json.dumps({"c_N": float(self.tree.attrs.get("seed_centre", 0.0))})
        return ScratchFit(tree, self.data.scratch, self.loss_config)

    def __repr__(self) -> str:
        p = self.posterior
        return (f"JointFit(law={self.law!r}, {len(self.data.scratch)} from-scratch + {self.data.n_used} fine-tuned "
                f"runs, pretraining={self.pretraining}, {p.sizes['chain']} chains x {p.sizes['draw']} draws)")

    def save(self, path: str | PathLike) -> Path:
        """One netCDF file: draws, sample stats, the fitted table (group ``spec_data``), both input tables (groups
        ``scratch_data``, ``finetune_data``) and the configuration; :func:`bayes_scaling.load` reads it back."""
        groups = {"scratch_data": _frame_to_dataset(self.data.scratch, "scratch_run"),
                  "finetune_data": _frame_to_dataset(self.data.finetune, "finetune_run")}
        if not self.legacy:
            groups["spec_data"] = _spec_frame_to_dataset(self.table)
        return write_tree(self.tree, path, **groups)


def _config_hash(config: LossLawConfig, tcfg: ModelConfig) -> str:
    """A short hash of both configurations (the loss law's and the transfer model's), stored in fit files."""
    doc = {"loss_law": config.to_dict(), "transfer": tcfg.to_dict()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def load_joint_fit(path: str | PathLike, tree: xr.DataTree | None = None) -> JointFit:
    """Read a joint fit: a file of :meth:`JointFit.save`, or of versions 0.1 and 0.2 (the former joint model)."""
    tree = read_tree(path) if tree is None else tree
    if tree.attrs.get("bayes_scaling_kind") == "spec" and "finetune_data" in tree.children:
        return _load_engine_joint_fit(path, tree)
    tree = read_tree(path, "joint", groups=("posterior", "scratch_data", "finetune_data"),
                     attrs=("config", "transfer_config", "seed"))
    config, tcfg = _configs(tree, path)
    stored = tree.attrs.get("config_hash")  # absent in files written before it was recorded
    if stored is not None and stored != _config_hash(config, tcfg):
        raise FitFileError(f"{path}: configuration hash mismatch (file edited or corrupted)")
    fit = JointFit(without(tree, "scratch_data", "finetune_data"), _joint_data(tree, path), config, tcfg)
    require_variables(tree, path, fit.parameter_names())
    return fit


def _configs(tree: xr.DataTree, path) -> tuple[LossLawConfig, ModelConfig]:
    try:
        config = LossLawConfig.from_dict(json.loads(tree.attrs["config"]))
        tcfg = ModelConfig.from_dict(json.loads(tree.attrs["transfer_config"]), where=f"{path}: transfer_config")
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise FitFileError(f"{path}: missing or invalid configuration ({exc})") from None
    return config, tcfg


def _joint_data(tree: xr.DataTree, path) -> JointData:
    ft = _dataset_to_frame(tree["finetune_data"].to_dataset())
    missing = [c for c in ("pretraining", "N", "D_F", "loss", "excluded", "exclusion_reason") if c not in ft.columns]
    if missing:
        raise FitFileError(f"{path}: the finetune_data group lacks the column(s) {', '.join(missing)}")
    ft["excluded"] = ft["excluded"].astype(bool)
    ft["exclusion_reason"] = ft["exclusion_reason"].astype(str).replace({"nan": ""})
    return JointData(_dataset_to_frame(tree["scratch_data"].to_dataset()), ft, str(tree.attrs.get("unit")),
                     str(tree.attrs.get("source", "")))


def _load_engine_joint_fit(path, tree: xr.DataTree) -> JointFit:
    """A joint fit of the engine: the law-spec file (spec, its hash, the fitted table) plus both input tables."""
    from bayes_scaling.inference.fit import _dataset_to_frame as spec_frame
    from bayes_scaling.inference.fit import _stored_spec

    spec = _stored_spec(path, tree, "joint fit", ("scratch_data",), ("config", "transfer_config"))
    config, tcfg = _configs(tree, path)
    if tree.attrs.get("config_hash") != _config_hash(config, tcfg):
        raise FitFileError(f"{path}: configuration hash mismatch (file edited or corrupted)")
    fit = JointFit(without(tree, "scratch_data", "finetune_data", "spec_data"), _joint_data(tree, path), config,
                   tcfg, spec, spec_frame(tree["spec_data"].to_dataset()))
    require_variables(tree, path, fit.parameter_names())
    return fit


def joint_spec(config: LossLawConfig, transfer_config: ModelConfig | None = None, *,
               replicates: bool = False) -> LawSpec:
    """The built-in joint spec of ``config``'s law (``joint_kaplan`` or ``joint_chinchilla``) with its likelihood,
    the loss-law priors a spec can hold (as :func:`~bayes_scaling.inference.scratch.loss_law_spec`: ``alpha_N``,
    ``alpha_D``, ``sigma``, ``nu``) and with ``replicates`` the seed-noise likelihood per kind of run
    (``seed_slope = "N"``, ``seed_sigma`` from :data:`~bayes_scaling.models.losslaws.SEED_NOISE_PRIORS`).
    Transfer priors changed from :data:`~bayes_scaling.models.transfer.DEFAULT_PRIORS` have no spec form (the
    former model placed them at the data's centre): a :class:`ConfigError` names them."""
    from bayes_scaling.inference.scratch import loss_law_spec
    from bayes_scaling.models.transfer import DEFAULT_PRIORS

    changed = sorted(k for k, v in (transfer_config.priors if transfer_config else {}).items()
                     if v != DEFAULT_PRIORS.get(k))
    if changed:
        raise ConfigError(f"transfer prior(s) {', '.join(changed)} of the former joint model have no law-spec form; "
                          f"give priors of k, alpha, beta in a copy of specs/laws/joint_{config.law}.toml "
                          "([parameters.NAME] median, sigma) and fit it with bs.fit")
    loss = loss_law_spec(config)                 # the loss-law priors as the from-scratch spec holds them
    spec = builtin_spec(f"joint_{config.law}")
    params = dict(spec.parameters)
    for name in ("alpha_N", "alpha_D"):
        if loss.parameters[name].prior != builtin_spec(config.law).parameters[name].prior:
            params[name] = dataclasses.replace(params[name], prior=dict(loss.parameters[name].prior))
    kw: dict = {"family": config.likelihood, "parameters": list(params.values()),
                "nu_alpha": loss.nu_alpha, "nu_beta": loss.nu_beta}
    if loss.sigma is not None:
        kw["sigma"] = loss.sigma
    if replicates:
        kw.update(replicates=True, seed_slope="N", seed_sigma=SEED_NOISE_PRIORS["sigma_seed"]["sigma"])
    return dataclasses.replace(spec, **kw)


def joint_table(data: JointData) -> pd.DataFrame:
    """The one table the joint spec fits: the from-scratch runs (``pretrained`` 0, ``pretraining``
    :data:`SCRATCH_LABEL`) and the used fine-tuned runs (``pretrained`` 1, ``D`` = ``D_F``)."""
    sc, used = data.scratch, data.used
    return pd.concat([
        pd.DataFrame({"N": sc["N"].to_numpy(float), "D": sc["D"].to_numpy(float), "loss": sc["loss"].to_numpy(float),
                      "pretrained": 0, "pretraining": SCRATCH_LABEL}),
        pd.DataFrame({"N": used["N"].to_numpy(float), "D": used["D_F"].to_numpy(float),
                      "loss": used["loss"].to_numpy(float), "pretrained": 1,
                      "pretraining": used["pretraining"].astype(str).to_numpy()})], ignore_index=True)


def _replacement(law: str) -> str:
    return f'bs.fit(runs, "joint_{law}", ...)'


def fit_joint(scratch: pd.DataFrame | str | PathLike, finetune: pd.DataFrame | str | PathLike, *,
              law: str = "chinchilla", likelihood: str = "normal", config: LossLawConfig | None = None,
              transfer_config: ModelConfig | None = None, low_only: bool = True, low: float = LOW_FRACTION,
              seed: int | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
              backend: str = "auto", target_accept: float | None = None, cores: int | None = None,
              progressbar: bool | None = None, warn: bool = True, duplicates: str = "error") -> JointFit:
    """Deprecated: ``bs.fit(runs, "joint_kaplan", ...)`` (or ``"joint_chinchilla"``; the ``FutureWarning`` names
    the call). Fits from-scratch losses (``N, D, loss``) and fine-tuned losses (``pretraining, N, D_F, loss``)
    jointly through the engine of :func:`bayes_scaling.fit` (the spec of :func:`joint_spec` on the table of
    :func:`joint_table`) and returns the same draws as a :class:`JointFit`. ``low_only`` keeps the low-data runs
    (others excluded, reported). ``config``: the loss law (:class:`LossLawConfig`, overrides ``law``/``likelihood``);
    ``transfer_config``: accepted with the default priors only (:func:`joint_spec`); the sampler's settings as
    :func:`bayes_scaling.fit`'s.

    >>> fit = fit_joint("scratch.csv", "finetune.csv", law="kaplan", seed=1)     # doctest: +SKIP
    >>> fit.summary()[["parameter", "pretraining", "median", "eti94_lb", "eti94_ub"]]   # doctest: +SKIP
    """
    law_name = config.law if config else law
    warnings.warn(f"fit_joint is deprecated and will be removed: use {_replacement(law_name)} on one table of the "
                  "from-scratch and the low-data fine-tuned runs (columns N, D, loss, pretrained = 0 or 1, "
                  "pretraining), the same fit", FutureWarning, stacklevel=2)
    return _fit_joint(scratch, finetune, law=law, likelihood=likelihood, config=config,
                      transfer_config=transfer_config, low_only=low_only, low=low, seed=seed, draws=draws,
                      tune=tune, chains=chains, backend=backend, target_accept=target_accept, cores=cores,
                      progressbar=progressbar, warn=warn, duplicates=duplicates, stacklevel=3)


def prepare_joint(scratch: pd.DataFrame | str | PathLike, finetune: pd.DataFrame | str | PathLike,
                  config: LossLawConfig, *, low_only: bool = True, low: float = LOW_FRACTION,
                  duplicates: str = "error") -> JointData:
    """Read both tables (clear errors naming columns and rows), check their unit, mark each fine-tuned run's
    regime (``D_F <= low D(N)``, ``D(N)`` at the posterior mode of the from-scratch law) and, with ``low_only``,
    exclude the others with a reason; a DataError when no fine-tuned run is left."""
    sc = read_scratch(scratch, duplicates=duplicates)
    ft = read_finetune(finetune)
    if sc["unit"].iloc[0] != ft["unit"].iloc[0]:
        raise DataError(f"the from-scratch runs count data in {sc['unit'].iloc[0]} but the fine-tuned runs in "
                        f"{ft['unit'].iloc[0]}; D and D_F must be in the same unit")
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
    return data


def _fit_joint(scratch: pd.DataFrame | str | PathLike, finetune: pd.DataFrame | str | PathLike, *,
               law: str = "chinchilla", likelihood: str = "normal", config: LossLawConfig | None = None,
               transfer_config: ModelConfig | None = None, low_only: bool = True, low: float = LOW_FRACTION,
               seed: int | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
               backend: str = "auto", target_accept: float | None = None, cores: int | None = None,
               progressbar: bool | None = None, warn: bool = True, duplicates: str = "error",
               stacklevel: int = 2) -> JointFit:
    """:func:`fit_joint` without its FutureWarning (the package's own callers)."""
    from bayes_scaling.inference.fit import fit as fit_spec

    config = config or LossLawConfig(law=law, likelihood=likelihood)
    tcfg = transfer_config or ModelConfig()
    data = prepare_joint(scratch, finetune, config, low_only=low_only, low=low, duplicates=duplicates)
    if warn and data.n_excluded:
        warnings.warn(data.exclusion_report(), ExclusionWarning, stacklevel=stacklevel)
    used = data.used.reset_index(drop=True)
    replicated = (replicate_cells(data.scratch, ("N", "D"), what="from-scratch runs").replicated
                  or replicate_cells(used, ("pretraining", "N", "D_F"), what="fine-tuned runs").replicated)
    spec = joint_spec(config, tcfg, replicates=replicated)
    result = fit_spec(joint_table(data), spec, seed=seed, draws=draws, tune=tune, chains=chains, backend=backend,
                      target_accept=target_accept, cores=cores, progressbar=progressbar, warn=False,
                      log_likelihood=False)
    tree = joint_posterior(result.tree, config.law, used)
    tree.attrs.update(config=json.dumps(config.to_dict()), transfer_config=json.dumps(tcfg.to_dict()),
                      config_hash=_config_hash(config, tcfg), law=config.law, unit=data.unit, source=data.source,
                      pretraining=json.dumps(list(data.pretraining)))
    fit = JointFit(tree, data, config, tcfg, result.spec, result.table)
    if warn:
        fit.diagnostics.warn(stacklevel=stacklevel)
    return fit


def joint_posterior(tree: xr.DataTree, law: str, used: pd.DataFrame) -> xr.DataTree:
    """The engine's draws of the joint spec with the joint fit's names added: ``log_k``; per kind of run
    (``pretrained`` 0: ``_scratch``, 1: ``_finetune``) ``sigma_*``, ``nu_*``, ``sigma_seed_*``, ``seed_slope_*``;
    ``D_E`` per used fine-tuned run (dim ``run``), ``D_E = D_F + k[p] D_F**alpha[p] N**beta``; and ``sigma_D_E``
    (:func:`_add_implied_sigma`)."""
    post = tree["posterior"].to_dataset()
    extra = {"log_k": np.log(post["k"])}
    for name in ("sigma", "nu", "sigma_seed", "seed_slope"):
        if name in post and KIND_DIM in post[name].dims:
            for level, suffix in KINDS.items():
                if level in post[name][KIND_DIM].values:
                    extra[name + suffix] = post[name].sel({KIND_DIM: level}, drop=True)
    p = xr.DataArray(used["pretraining"].astype(str).to_numpy(), dims="run")
    D_F = xr.DataArray(used["D_F"].to_numpy(float), dims="run")
    N = xr.DataArray(used["N"].to_numpy(float), dims="run")
    D_T = np.exp(laws.log_transfer(extra["log_k"].sel(pretraining=p, drop=True),
                                   post["alpha"].sel(pretraining=p, drop=True), post["beta"], np.log(D_F), np.log(N)))
    extra["D_E"] = (D_F + D_T).transpose("chain", "draw", "run")
    tree = tree.copy()
    tree["posterior"] = xr.DataTree(post.assign(extra))
    return _add_implied_sigma(tree, law, used)


def _add_implied_sigma(tree: xr.DataTree, law: str, used: pd.DataFrame) -> xr.DataTree:
    """Add ``sigma_D_E``: the scatter of log D_E implied by the fine-tuned loss noise at the typical run,
    ``sigma_finetune / median_j |d log L / d log D| (N_j, D_E,j)`` per draw (the slope by a central difference
    of the law). It plays the role of the transfer model's noise of log D_T, so ``predict(fit, noise=True)``
    gives the scatter a two-stage analysis would see. With seed noise, ``sigma_finetune`` is
    ``sqrt(sigma_finetune**2 + sigma_seed_finetune(N)**2)`` (a new run is one seed)."""
    post = tree["posterior"].to_dataset()
    params = {k: post[k] for k in LAW_PARAMETERS[law]}
    N = xr.DataArray(used["N"].to_numpy(float), dims="run")
    h = 1e-3
    up = np.log(law_loss(law, N, post["D_E"] * np.exp(h), params))
    down = np.log(law_loss(law, N, post["D_E"] * np.exp(-h), params))
    slope = np.abs(up - down) / (2 * h)
    noise = post["sigma_finetune"]
    if "sigma_seed_finetune" in post:  # a new run is one seed: the law's misfit and the seed noise at its N
        s_seed = seed_noise_scale(post, np.log(N), float(tree.attrs.get("seed_centre", 0.0)), "_finetune")
        noise = np.sqrt(noise ** 2 + s_seed ** 2).median("run")
    sigma = (noise / slope.median("run")).transpose("chain", "draw")
    sigma.attrs["description"] = ("implied noise of log D_E: sigma_finetune / median |d log L / d log D| over the "
                                  "fine-tuned runs")
    tree = tree.copy()
    tree["posterior"] = xr.DataTree(post.assign(sigma_D_E=sigma))
    return tree


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
