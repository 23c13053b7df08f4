"""Fitting a from-scratch loss law by NUTS: :func:`fit_scratch`, its result :class:`ScratchFit` and
:func:`load_scratch_fit`.

The laws, their parametrisation (centred predictors, Laplace whitening) and the seed-noise likelihood are the
model's (:mod:`bayes_scaling.models.losslaws`, whose docstring has the equations)::

    log L_obs ~ Normal(log L(N, D), sigma)   or StudentT(nu, ...)

>>> from bayes_scaling.data.datasets import load_scratch_losses
>>> fit = fit_scratch(load_scratch_losses(), law="kaplan", seed=1)          # doctest: +SKIP
>>> fit.summary()                                                          # doctest: +SKIP
>>> fit.inverse(3.5, 1e8)          # draws of the data a 1e8-parameter model needs to reach loss 3.5  # doctest: +SKIP
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling import __version__
from bayes_scaling.errors import DataError, FitFileError
from bayes_scaling.inference.base import FitBase
from bayes_scaling.inference.fitfile import read_tree, require_variables, without, write_tree
from bayes_scaling.inference.sampling import diagnose, sample_nuts, sampler_settings, summarize
from bayes_scaling.models.losslaws import (
    _SAMPLED,
    LAW_PARAMETERS,
    LossLawConfig,
    _centres,
    build_loss_model,
    converged_data,
    laplace_whitening,
    law_inverse,
    law_loss,
    loss_spec,
    read_scratch,
    replicate_cells,
    seed_noise_scale,
)

__all__ = ["ScratchFit", "fit_scratch", "load_scratch_fit"]


# ---- the fit --------------------------------------------------------------------------------------------


class ScratchFit(FitBase):
    """A fitted from-scratch loss law: ``.law``, ``.posterior`` (natural parameters with dims chain, draw),
    ``.data`` (the validated table), ``.config``; ``.loss(N, D)``, ``.inverse(loss, N)`` and
    ``.converged_data(N)`` give posterior draws.
    """

    def __init__(self, tree: xr.DataTree, data: pd.DataFrame, config: LossLawConfig):
        self.tree = tree
        self.data = data
        self.config = config

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
        return diagnose(self.tree, _diagnostic_vars(self.law, self.config) + self._seed_vars())

    def _seed_vars(self) -> list[str]:
        return [v for v in ("sigma_seed", "seed_slope") if v in self.posterior]

    def summary(self, ci_prob: float = 0.95, var_names: list[str] | None = None) -> pd.DataFrame:
        """Posterior summary (mean, sd, median, equal-tailed ``ci_prob`` interval, ESS, R-hat) of the natural
        parameters and the noise (with replicates: ``sigma_seed``, ``seed_slope`` too)."""
        names = var_names or self.parameters + ["sigma"] + (["nu"] if self.config.likelihood == "student_t" else [])
        if var_names is None:
            names = names + self._seed_vars()
        return summarize(self.tree, names, ci_prob)

    def seed_noise(self, N) -> xr.DataArray | None:
        """Posterior draws of the seed-to-seed noise of log loss at size ``N``, ``sigma_seed(N)`` (dims chain,
        draw[, point]); None for a fit without replicates (its ``sigma`` holds every noise)."""
        if "sigma_seed" not in self.posterior:
            return None
        c_N = float(json.loads(self.tree.attrs["centres"])["c_N"])
        vals = {"sigma_seed": self.posterior["sigma_seed"], "seed_slope": self.posterior["seed_slope"]}
        log_N = np.log(np.asarray(N, float))
        if log_N.ndim:
            log_N = xr.DataArray(log_N.ravel(), dims="point")
        return seed_noise_scale(vals, log_N, c_N).rename("sigma_seed")

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
        """One netCDF file (DataTree): draws, sample stats, the data table (group ``scratch_data``), config."""
        tree = self.tree.copy()
        tree.attrs.update(bayes_scaling_kind="scratch", config=json.dumps(self.config.to_dict()), law=self.law)
        return write_tree(tree, path, scratch_data=_frame_to_dataset(self.data, "scratch_run"))


def load_scratch_fit(path: str | PathLike) -> ScratchFit:
    """Read a fit written by :meth:`ScratchFit.save`."""
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


def fit_scratch(data: pd.DataFrame | str | PathLike, *, law: str = "chinchilla", likelihood: str = "normal",
                config: LossLawConfig | None = None, seed: int | None = None, draws: int = 1000,
                tune: int = 1000, chains: int = 4, backend: str = "auto", target_accept: float = 0.9,
                cores: int | None = None, progressbar: bool | None = None, warn: bool = True,
                duplicates: str = "error") -> ScratchFit:
    """Fit a from-scratch loss law to runs ``N, D, loss`` by NUTS (see the module docstring for the model).

    ``config`` (a :class:`LossLawConfig`) overrides ``law`` and ``likelihood``. ``seed`` makes the draws
    reproducible. After sampling, R-hat > 1.01, ESS < 400 or divergences raise a :class:`ConvergenceWarning`.

    >>> fit = fit_scratch("scratch.csv", law="chinchilla", likelihood="student_t", seed=1)   # doctest: +SKIP
    >>> fit.summary()[["parameter", "median", "eti95_lb", "eti95_ub"]]                      # doctest: +SKIP
    """
    config = config or LossLawConfig(law=law, likelihood=likelihood)
    df = read_scratch(data, duplicates=duplicates)
    if len(df) < len(_SAMPLED[config.law]) + 1:
        raise DataError(f"from-scratch runs: {len(df)} row(s) cannot determine the {config.law} law "
                        f"({len(_SAMPLED[config.law])} parameters and the noise); give more runs")
    seed, progressbar = sampler_settings(draws, tune, chains, seed, progressbar)
    centres = _centres(df)
    replicated = replicate_cells(df, ("N", "D"), what="from-scratch runs").replicated
    m, L = laplace_whitening(lambda m0, L0: build_loss_model(df, config, centres, m0, L0)[0],
                             loss_spec(config, centres, replicates=replicated))
    model, _ = build_loss_model(df, config, centres, m, L)
    tree = sample_nuts(model, draws=draws, tune=tune, chains=chains, seed=seed, backend=backend,
                       target_accept=target_accept, progressbar=progressbar, cores=cores, log_likelihood=False)
    tree.attrs.update(bayes_scaling_kind="scratch", bayes_scaling_version=__version__,
                      config=json.dumps(config.to_dict()), law=config.law, seed=int(seed),
                      tune=int(tune), target_accept=float(target_accept), unit=str(df["unit"].iloc[0]),
                      centres=json.dumps(model.centres))
    fit = ScratchFit(tree, df, config)
    if warn:
        fit.diagnostics.warn(stacklevel=2)
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
