"""From-scratch loss laws as built-in specs of the one engine (:func:`bayes_scaling.fit`): :func:`loss_law_spec`,
the fit object :class:`ScratchFit` (a :class:`~bayes_scaling.inference.fit.Fit` with the loss law's accessors),
the deprecated wrapper :func:`fit_scratch` and :func:`load_scratch_fit`.

The laws are the built-in specs ``kaplan`` and ``chinchilla`` (``specs/laws/*.toml``; formulas in
:mod:`bayes_scaling.laws`)::

    log L_obs ~ Normal(log L(N, D), sigma)   or StudentT(nu, ...)

with, for runs of one ``(N, D)`` trained with several seeds, the seed-noise likelihood of
:mod:`bayes_scaling.models.spec_model` (``[likelihood] replicates = true``, ``seed_slope = "N"``:
``log sigma_seed(N) = log sigma_seed + seed_slope (log N - c_N)``).

>>> import bayes_scaling as bs
>>> from bayes_scaling.data.datasets import load_scratch_losses
>>> fit = bs.fit(load_scratch_losses(), model="kaplan", seed=1)          # a ScratchFit  # doctest: +SKIP
>>> fit.inverse(3.5, 1e8)          # draws of the data a 1e8-parameter model needs to reach loss 3.5  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling._interval import CI_PROB
from bayes_scaling.errors import ConfigError, DataError, FitFileError
from bayes_scaling.inference.fit import Fit
from bayes_scaling.inference.fitfile import read_tree, require_variables, without, write_tree
from bayes_scaling.inference.sampling import diagnose, summarize
from bayes_scaling.laws.spec import LawSpec, builtin_spec
from bayes_scaling.models.losslaws import (
    _SAMPLED,
    DEFAULT_LOSS_PRIORS,
    LAW_PARAMETERS,
    SEED_NOISE_PRIORS,
    LossLawConfig,
    converged_data,
    law_inverse,
    law_loss,
    read_scratch,
    replicate_cells,
    seed_noise_scale,
)

__all__ = ["ScratchFit", "as_scratch_fit", "fit_scratch", "load_scratch_fit", "loss_law_of", "loss_law_spec"]

#: the loss-law priors a spec can carry: the exponents' LogNormal(mu, sigma) (a parameter's median exp(mu) and
#: sigma), the noise's HalfNormal scale and the Student-t degrees of freedom's Gamma(alpha, beta)
_SPEC_PRIORS = ("alpha_N", "alpha_D", "sigma", "nu")


def loss_law_spec(config: LossLawConfig | str = "chinchilla", *, likelihood: str | None = None,
                  replicates: bool = False) -> LawSpec:
    """The built-in spec of a from-scratch loss law (``kaplan`` or ``chinchilla``) with the likelihood of
    ``config`` (or ``likelihood``), its priors where a spec can hold them, and with ``replicates`` the seed-noise
    likelihood (``[likelihood] replicates = true``, ``seed_slope = "N"``, ``seed_sigma`` from
    :data:`~bayes_scaling.models.losslaws.SEED_NOISE_PRIORS`).

    Priors: the exponents ``alpha_N``, ``alpha_D`` (``LogNormal(mu, sigma)``: ``median = exp(mu)``), ``sigma``
    (HalfNormal scale) and ``nu`` (``Gamma(alpha, beta)``) map onto the spec; the priors of the centred
    parameters (``log_E``, ``a_c``, ``b_c``, ``log_L_c``, ``w``, ``r``) have no spec form: changed from their
    defaults, a :class:`ConfigError` names them. Priors left at their defaults keep the spec's own.

    >>> loss_law_spec("kaplan", likelihood="student_t").family
    'student_t'
    """
    if isinstance(config, str):
        config = LossLawConfig(law=config, likelihood=likelihood or "normal")
    elif likelihood is not None:
        config = LossLawConfig(law=config.law, likelihood=likelihood, priors=config.priors)
    changed = sorted(k for k, v in config.priors.items() if v != DEFAULT_LOSS_PRIORS.get(k))
    unmapped = [k for k in changed if k not in _SPEC_PRIORS]
    if unmapped:
        raise ConfigError(f"loss-law prior(s) {', '.join(unmapped)} (on the centred parameters of the former "
                          "loss-law model) have no law-spec form; give priors of the law's own parameters in a "
                          f"spec instead (a copy of specs/laws/{config.law}.toml with [parameters.NAME] median, "
                          "sigma) and fit it with bs.fit")
    spec = builtin_spec(config.law)
    params = dict(spec.parameters)
    for name in ("alpha_N", "alpha_D"):
        if name in changed:
            p = config.priors[name]
            params[name] = dataclasses.replace(params[name], prior={"median": float(np.exp(p["mu"])),
                                                                     "sigma": float(p["sigma"])})
    kw: dict = {"family": config.likelihood, "parameters": list(params.values())}
    if "sigma" in changed:
        kw["sigma"] = float(config.priors["sigma"]["sigma"])
    if "nu" in changed:
        kw.update(nu_alpha=float(config.priors["nu"]["alpha"]), nu_beta=float(config.priors["nu"]["beta"]))
    if replicates:
        kw.update(replicates=True, seed_slope="N", seed_sigma=SEED_NOISE_PRIORS["sigma_seed"]["sigma"])
    return dataclasses.replace(spec, **kw)


# ---- the fit --------------------------------------------------------------------------------------------


class ScratchFit(Fit):
    """A fitted from-scratch loss law: a :class:`~bayes_scaling.inference.fit.Fit` (``summary``, ``predict``,
    ``outside``, ``save``) with ``.law``, ``.config`` (:class:`LossLawConfig`), ``.unit`` and the posterior
    draws of ``.loss(N, D)``, ``.inverse(loss, N)``, ``.converged_data(N)`` and ``.seed_noise(N)``.
    Fit files of versions 0.1 and 0.2 (``bayes_scaling_kind = "scratch"``) load as one too.
    """

    def __init__(self, tree: xr.DataTree, data: pd.DataFrame, config: LossLawConfig, spec: LawSpec | None = None):
        if spec is None:    # a file of 0.1/0.2 or the loss-law part of a joint fit: the spec of its law
            post = tree["posterior"]
            replicated = "sigma_seed" in post.data_vars or "sigma_seed_scratch" in post.data_vars
            spec = dataclasses.replace(builtin_spec(config.law), family=config.likelihood)
            if replicated:
                spec = dataclasses.replace(spec, replicates=True,
                                           seed_slope="N" if "seed_slope" in post.data_vars else None)
        super().__init__(tree, data, spec)
        self.config = config

    @property
    def legacy(self) -> bool:
        """Whether the draws come from the former loss-law model (a fit file of version 0.1 or 0.2)."""
        return self.tree.attrs.get("bayes_scaling_kind") == "scratch"

    @property
    def law(self) -> str:
        return self.config.law

    @property
    def unit(self) -> str:
        return str(self.tree.attrs.get("unit", "tokens"))

    @property
    def parameters(self) -> list[str]:
        """Natural parameter names of the law (``E, A, B, alpha_N, alpha_D`` or ``N_c, D_c, alpha_N, alpha_D``)."""
        return list(LAW_PARAMETERS[self.law])

    def params(self) -> dict[str, xr.DataArray]:
        post = self.posterior
        return {k: post[k] for k in self.parameters}

    @property
    def diagnostics(self):
        if not self.legacy:
            return super().diagnostics
        return diagnose(self.tree, _diagnostic_vars(self.law, self.config) + self._seed_vars())

    def _seed_vars(self) -> list[str]:
        return [v for v in ("sigma_seed", "seed_slope") if v in self.posterior]

    def parameter_names(self) -> list[str]:
        if not self.legacy:
            return super().parameter_names()
        names = self.parameters + ["sigma"] + (["nu"] if self.config.likelihood == "student_t" else [])
        return names + self._seed_vars()

    def summary(self, ci_prob: float = CI_PROB, var_names: list[str] | None = None) -> pd.DataFrame:
        """Posterior summary (:func:`~bayes_scaling.inference.sampling.summarize`) of the natural parameters and
        the noise (with replicates: ``sigma_seed``, ``seed_slope`` too)."""
        return summarize(self.tree, var_names or self.parameter_names(), ci_prob)

    def _seed_centre(self) -> float:
        if "seed_centre" in self.tree.attrs:
            return float(self.tree.attrs["seed_centre"])
        return float(json.loads(self.tree.attrs["centres"])["c_N"])

    def seed_noise(self, N) -> xr.DataArray | None:
        """Posterior draws of the seed-to-seed noise of log loss at size ``N``,
        ``sigma_seed(N) = sigma_seed exp(seed_slope (log N - c_N))`` (dims chain, draw[, point]); None for a fit
        without replicates (its ``sigma`` holds every noise)."""
        post = self.posterior
        if "sigma_seed" not in post:
            return None
        vals = {"sigma_seed": post["sigma_seed"],
                "seed_slope": post["seed_slope"] if "seed_slope" in post else xr.zeros_like(post["sigma_seed"])}
        log_N = np.log(np.asarray(N, float))
        if log_N.ndim:
            log_N = xr.DataArray(log_N.ravel(), dims="point")
        return seed_noise_scale(vals, log_N, self._seed_centre()).rename("sigma_seed")

    def loss(self, N, D) -> xr.DataArray:
        """Posterior draws of ``L(N, D)`` (``N``, ``D`` broadcast to 1-d; dims chain, draw[, point])."""
        return self._evaluate(lambda a, b, p: law_loss(self.law, a, b, p), N, D)

    def inverse(self, loss, N) -> xr.DataArray:
        """Posterior draws of the data ``D`` a model of size ``N`` needs to reach ``loss`` (``inf`` where the
        loss is at or below the law's infinite-data loss in that draw); dims chain, draw[, point]."""
        return self._evaluate(lambda a, b, p: law_inverse(self.law, a, b, p), loss, N)

    def converged_data(self, N, within: float = 0.01) -> xr.DataArray:
        """Posterior draws of ``D(N)``, the data needed to get within ``within`` of the infinite-data loss."""
        return self._evaluate(lambda a, b, p: converged_data(self.law, a, p, within), N, N)

    def _evaluate(self, fn, a, b) -> xr.DataArray:
        a_, b_ = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
        scalar = a_.ndim == 0
        a_, b_ = a_.reshape(1, 1, -1), b_.reshape(1, 1, -1)
        p = {k: v.transpose("chain", "draw").values[..., None] for k, v in self.params().items()}
        out = np.asarray(fn(a_, b_, p), float)
        post = self.posterior
        da = xr.DataArray(out, dims=("chain", "draw", "point"),
                          coords={"chain": post["chain"].values, "draw": post["draw"].values})
        return da.isel(point=0) if scalar else da

    def __repr__(self) -> str:
        p = self.posterior
        return (f"ScratchFit(law={self.law!r}, {len(self.data)} runs, likelihood={self.config.likelihood!r}, "
                f"{p.sizes['chain']} chains x {p.sizes['draw']} draws)")

    def save(self, path: str | PathLike) -> Path:
        """One netCDF file: a law-spec fit file (:meth:`Fit.save`) that :func:`bayes_scaling.load` reads back as a
        :class:`ScratchFit`; a fit of the former model (a file of 0.1/0.2) keeps its format (group
        ``scratch_data``)."""
        if not self.legacy:
            return super().save(path)
        tree = self.tree.copy()
        tree.attrs.update(bayes_scaling_kind="scratch", config=json.dumps(self.config.to_dict()), law=self.law)
        return write_tree(tree, path, scratch_data=_frame_to_dataset(self.data, "scratch_run"))



def loss_law_of(spec: LawSpec) -> str | None:
    """``"kaplan"`` or ``"chinchilla"`` where ``spec`` is that built-in loss law (its formula of ``N`` and ``D``,
    target ``loss`` on the log scale, every parameter shared and free), else None."""
    if spec.target != "loss" or spec.scale != "log" or spec.groups:
        return None
    if any(p.fixed is not None for p in spec.parameters.values()):
        return None
    for law in LAW_PARAMETERS:
        builtin = builtin_spec(law)
        if spec.formula.text == builtin.formula.text and set(spec.parameters) == set(builtin.parameters):
            return law
    return None


def as_scratch_fit(fit: Fit) -> Fit:
    """A law-spec fit of a from-scratch loss law (:func:`loss_law_of`) as a :class:`ScratchFit` (the same draws,
    with ``.loss``, ``.inverse``, ``.converged_data``, ``.seed_noise``); any other fit as it is.
    :func:`bayes_scaling.fit` and :func:`bayes_scaling.load` return their loss-law fits so."""
    if isinstance(fit, ScratchFit) or type(fit) is not Fit:
        return fit
    law = loss_law_of(fit.spec)
    if law is None:
        return fit
    attrs = fit.tree.attrs
    try:
        config = LossLawConfig.from_dict(json.loads(attrs["config"])) if "config" in attrs else \
            LossLawConfig(law=law, likelihood=fit.spec.family)
    except (ValueError, TypeError, AttributeError, ConfigError) as exc:
        raise FitFileError(f"a from-scratch loss-law fit with an invalid configuration ({exc})") from None
    if "config" not in attrs:
        unit = str(fit.data["unit"].iloc[0]) if "unit" in fit.data.columns and len(fit.data) else "tokens"
        attrs.update(fit_class="scratch", config=json.dumps(config.to_dict()), law=law, unit=unit,
                     centres=json.dumps({"c_N": float(np.mean(np.log(fit.data["N"].to_numpy(float))))}))
    return ScratchFit(fit.tree, fit.data, config, fit.spec)


def load_scratch_fit(path: str | PathLike) -> ScratchFit:
    """Read a from-scratch loss-law fit: a file of :meth:`ScratchFit.save`, or of versions 0.1 and 0.2."""
    tree = read_tree(path)
    if tree.attrs.get("bayes_scaling_kind") == "spec":
        from bayes_scaling.inference.fit import load

        fit = as_scratch_fit(load(path))
        if not isinstance(fit, ScratchFit):
            raise FitFileError(f"{path}: a law-spec fit, not a from-scratch loss-law fit; read it with bs.load")
        return fit
    tree = read_tree(path, "scratch", groups=("posterior", "scratch_data"), attrs=("config", "seed"))
    try:
        config = LossLawConfig.from_dict(json.loads(tree.attrs["config"]))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise FitFileError(f"{path}: missing or invalid configuration ({exc})") from None
    require_variables(tree, path, list(LAW_PARAMETERS[config.law]) + ["sigma"]
                      + (["nu"] if config.likelihood == "student_t" else []))
    data = _dataset_to_frame(tree["scratch_data"].to_dataset())
    missing = [c for c in ("N", "D", "loss") if c not in data.columns]
    if missing:
        raise FitFileError(f"{path}: the scratch_data group lacks the column(s) {', '.join(missing)}")
    return ScratchFit(without(tree, "scratch_data"), data, config)


def _replacement(config: LossLawConfig, replicated: bool) -> str:
    """The ``bs.fit`` call that replaces a ``fit_scratch`` call."""
    builtin = builtin_spec(config.law)
    if not replicated and config.likelihood == builtin.family and config.priors == DEFAULT_LOSS_PRIORS:
        return f"bs.fit(runs, model={config.law!r})"
    args = [repr(config.law)] if config.priors == DEFAULT_LOSS_PRIORS else ["config"]
    if config.likelihood != "normal" or args == [repr(config.law)]:
        args.append(f"likelihood={config.likelihood!r}")
    if replicated:
        args.append("replicates=True")
    return f"bs.fit(runs, model=bs.loss_law_spec({', '.join(args)}))"


def fit_scratch(data: pd.DataFrame | str | PathLike, *, law: str = "chinchilla", likelihood: str = "normal",
                config: LossLawConfig | None = None, seed: int | None = None, draws: int = 1000,
                tune: int = 1000, chains: int = 4, backend: str = "auto", target_accept: float | None = None,
                cores: int | None = None, progressbar: bool | None = None, warn: bool = True,
                duplicates: str = "error") -> ScratchFit:
    """Deprecated: ``bs.fit(runs, model=bs.loss_law_spec(law, likelihood=...))`` (the ``FutureWarning`` names the
    call). Fits a from-scratch loss law to runs ``N, D, loss`` through the engine of :func:`bayes_scaling.fit`
    (the built-in spec of :func:`loss_law_spec`) and returns the same draws as a :class:`ScratchFit`.

    ``config`` (a :class:`LossLawConfig`) overrides ``law`` and ``likelihood``; ``duplicates``: as
    :func:`~bayes_scaling.models.losslaws.read_scratch`; the sampler's settings as :func:`bayes_scaling.fit`'s.

    >>> fit = fit_scratch("scratch.csv", law="chinchilla", likelihood="student_t", seed=1)   # doctest: +SKIP
    """
    config = config or LossLawConfig(law=law, likelihood=likelihood)
    df = read_scratch(data, duplicates=duplicates)
    replicated = replicate_cells(df, ("N", "D"), what="from-scratch runs").replicated
    warnings.warn(f"fit_scratch is deprecated and will be removed: use {_replacement(config, replicated)}, the "
                  "same fit (a ScratchFit)", FutureWarning, stacklevel=2)
    return _fit_scratch(df, config=config, seed=seed, draws=draws, tune=tune, chains=chains, backend=backend,
                        target_accept=target_accept, cores=cores, progressbar=progressbar, warn=warn,
                        duplicates=duplicates, stacklevel=3)


def _fit_scratch(data: pd.DataFrame | str | PathLike, *, law: str = "chinchilla", likelihood: str = "normal",
                 config: LossLawConfig | None = None, seed: int | None = None, draws: int = 1000,
                 tune: int = 1000, chains: int = 4, backend: str = "auto", target_accept: float | None = None,
                 cores: int | None = None, progressbar: bool | None = None, warn: bool = True,
                 duplicates: str = "error", stacklevel: int = 2) -> ScratchFit:
    """:func:`fit_scratch` without its FutureWarning (the package's own callers)."""
    from bayes_scaling.inference.fit import fit as fit_spec

    config = config or LossLawConfig(law=law, likelihood=likelihood)
    df = read_scratch(data, duplicates=duplicates)
    n_params = len(LAW_PARAMETERS[config.law])
    if len(df) < n_params + 1:
        raise DataError(f"from-scratch runs: {len(df)} row(s) cannot determine the {config.law} law "
                        f"({n_params} parameters and the noise); give more runs")
    replicated = replicate_cells(df, ("N", "D"), what="from-scratch runs").replicated
    spec = loss_law_spec(config, replicates=replicated)
    result = fit_spec(df, spec, seed=seed, draws=draws, tune=tune, chains=chains, backend=backend,
                      target_accept=target_accept, cores=cores, progressbar=progressbar, warn=False)
    result.tree.attrs["config"] = json.dumps(config.to_dict())    # the priors as given
    fit = ScratchFit(result.tree, result.data, config, result.spec)
    if warn:
        fit.diagnostics.warn(stacklevel=stacklevel)
    return fit


# ---- helpers --------------------------------------------------------------------------------------------


def _diagnostic_vars(law: str, config: LossLawConfig) -> list[str]:
    out = list(_SAMPLED[law]) + ["sigma"]
    if config.likelihood == "student_t":
        out.append("nu")
    return out + [p for p in LAW_PARAMETERS[law] if p not in out]


def _frame_to_dataset(df: pd.DataFrame, dim: str) -> xr.Dataset:
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object or str(df[c].dtype).startswith("string"):
            df[c] = df[c].astype(str)
    return xr.Dataset.from_dataframe(df.reset_index(drop=True).rename_axis(dim))


def _dataset_to_frame(ds: xr.Dataset) -> pd.DataFrame:
    df = ds.to_dataframe().reset_index(drop=True)
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].astype(str)
    return df
