"""Posterior predictions of the transfer law and derived quantities (draws, never single numbers).

Every function returns draws (``chain``, ``draw`` and the grid's dimensions) and says how far outside the fitted
range it is: :func:`orders_outside` gives the orders of magnitude beyond the largest (``> 0``) or below the
smallest (``< 0``) ``N`` and ``D_F`` of the runs used in the fit, ``0`` inside.

A pre-training distribution *not in the data* is predicted from the hierarchy under the label
:data:`NEW` (``"new (population)"``): per posterior draw, ``log k[new] ~ Normal(log_k_mu, log_k_sigma)``,
``alpha[new] ~ Normal(alpha_mu, alpha_sigma)`` (and ``beta[new] ~ Normal(beta_mu, beta_sigma)`` in the
``separate_beta`` variant). In fit files of versions 0.1 and 0.2 the population is placed at the data's centre:
``a[new] ~ Normal(a_mu, a_sigma)``, ``log k[new] = a[new] - alpha[new] * c_F - beta * c_N``; so it is in the
engine's fits, which sample ``k`` at the centre (``log_k_at_centre_mu``, ``log_k_at_centre_sigma`` in place of
``a_mu``, ``a_sigma``).

>>> pred = predict(fit, N=[1e7, 1e8], D_F=np.logspace(5, 8, 10), pretraining=["text", NEW], seed=1)  # doctest: +SKIP
>>> pred["multiplier"].quantile([0.05, 0.5, 0.95], dim=("chain", "draw"))                           # doctest: +SKIP
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.data.tables import NEW  # label of a new distribution drawn from the population
from bayes_scaling.errors import BayesScalingError
from bayes_scaling.laws import formulas as laws

__all__ = ["NEW", "predict", "parameters", "has_hierarchy", "data_range", "orders_outside", "extrapolation",
           "exchange_rate", "crossover", "crossover_probability", "positive_grid"]

SAMPLE_DIMS = ("chain", "draw")


# ---- inputs ----------------------------------------------------------------------------------------------


def positive_grid(values, name: str) -> xr.DataArray:
    """A 1-d grid of finite positive numbers as a DataArray along dimension ``name`` (clear error otherwise)."""
    try:
        items = np.atleast_1d(np.asarray(values, dtype=object))
    except (TypeError, ValueError):
        raise BayesScalingError(f"{name} must be a number or a 1-d list of numbers, got {_shown(values)}") from None
    odd = [i for i, v in enumerate(items.ravel()) if isinstance(v, bool | np.bool_ | complex | np.complexfloating)
           or not isinstance(v, numbers.Real)]
    if odd:
        v = items.ravel()[odd[0]]
        raise BayesScalingError(f"{name} must be a number or a 1-d list of real numbers (not booleans, complex "
                                f"numbers, dates or text); got {_shown(v)} at position(s) "
                                f"{', '.join(map(str, odd[:8]))}")
    arr = items.astype(float)
    if arr.ndim != 1 or len(arr) == 0:
        raise BayesScalingError(f"{name} must be a number or a non-empty 1-d list of numbers")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        shown = ", ".join(f"{v:g}" for v in arr[bad][:3])
        raise BayesScalingError(f"{name} must be finite and > 0; got {shown} (at position(s) "
                                f"{', '.join(map(str, np.flatnonzero(bad)[:8]))})")
    return xr.DataArray(arr, dims=name, coords={name: arr})


def _shown(values) -> str:
    text = " ".join(repr(values).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _names(fit, pretraining) -> list[str]:
    if pretraining is None:
        return list(fit.pretraining)
    names = [str(p) for p in ([pretraining] if isinstance(pretraining, str) else pretraining)]
    if not names:
        raise BayesScalingError("pretraining: give at least one pre-training distribution")
    unknown = [p for p in names if p not in fit.pretraining and p != NEW]
    if unknown:
        raise BayesScalingError(f"unknown pre-training distribution(s) {', '.join(map(repr, unknown))}; "
                                f"the fit has {', '.join(map(repr, fit.pretraining))} (and {NEW!r} for a new "
                                "distribution drawn from the hierarchy)")
    return names


# ---- parameters ------------------------------------------------------------------------------------------


def has_hierarchy(fit) -> bool:
    """True when the fit has a population distribution of (log k, alpha) to draw a new distribution from."""
    post = fit.posterior
    return ("log_k_sigma" in post or "log_k_at_centre_sigma" in post or "a_sigma" in post) and "alpha_sigma" in post


def _population(fit, seed) -> xr.Dataset:
    """log_k, alpha, beta of a new pre-training distribution, one draw per posterior draw (seeded)."""
    if not has_hierarchy(fit):
        raise BayesScalingError(
            f"cannot predict {NEW!r}: this fit has no hierarchy over pre-training distributions "
            f"(variant {fit.config.variant!r} with {len(fit.pretraining)} distribution(s)); refit with several "
            "pre-training distributions and the shared_beta or separate_beta variant")
    post = fit.posterior
    rng = np.random.default_rng(seed)
    shape = (post.sizes["chain"], post.sizes["draw"])

    def draw(mu, sd):
        return post[mu] + post[sd] * xr.DataArray(rng.standard_normal(shape), dims=SAMPLE_DIMS)

    # the population at the data's centre: files of versions 0.1, 0.2 (a), the engine's centred k (log_k_at_centre)
    centred = "a_sigma" in post or "log_k_at_centre_sigma" in post
    a = draw("a_mu", "a_sigma") if "a_sigma" in post else draw("log_k_at_centre_mu", "log_k_at_centre_sigma") \
        if centred else draw("log_k_mu", "log_k_sigma")
    alpha = draw("alpha_mu", "alpha_sigma")
    beta = draw("beta_mu", "beta_sigma") if "beta_sigma" in post else post["beta"]
    if "pretraining" in beta.dims:  # separate_beta with one distribution: beta = beta_mu for all
        beta = post["beta_mu"]
    log_k = laws.log_k_from_centre(a, alpha, beta, *fit.centre) if centred else a
    return xr.Dataset({"log_k": log_k, "alpha": alpha, "beta": beta}).drop_vars(
        [c for c in ("pretraining",) if c in a.coords])


def _check_transfer_fit(fit) -> None:
    """A transfer fit (``bs.fit_transfer``, ``bs.load`` of one), or an :class:`InputTypeError` saying so."""
    if not (hasattr(fit, "posterior") and hasattr(getattr(fit, "data", None), "pretraining")):
        from bayes_scaling.errors import InputTypeError

        raise InputTypeError(f"fit: expected a transfer fit (bs.fit_transfer, or bs.load of its file), got "
                             f"{type(fit).__name__}")


def parameters(fit, pretraining=None, *, seed: int | None = None) -> xr.Dataset:
    """Posterior draws of ``log_k``, ``k``, ``alpha``, ``beta`` and ``sigma`` (and ``nu``) per pre-training
    distribution, dims (``chain``, ``draw``, ``pretraining``); ``beta`` is broadcast over distributions.
    :data:`NEW` adds a new distribution drawn from the hierarchy (seeded by ``seed``)."""
    _check_transfer_fit(fit)
    names = _names(fit, pretraining)
    post = fit.posterior
    known = [p for p in names if p != NEW]
    parts = []
    if known:
        sel = post.sel(pretraining=known)
        beta = sel["beta"]
        if "pretraining" not in beta.dims:
            beta = beta.expand_dims(pretraining=known)
        parts.append(xr.Dataset({"log_k": sel["log_k"], "alpha": sel["alpha"], "beta": beta}))
    if NEW in names:
        parts.append(_population(fit, seed).expand_dims(pretraining=[NEW]))
    ds = xr.concat(parts, dim="pretraining", coords="minimal", compat="override", join="outer").sel(
        pretraining=names)
    ds = ds.transpose("chain", "draw", "pretraining")
    ds["k"] = np.exp(ds["log_k"])
    ds["sigma"] = post["sigma_D_E"] if "sigma_D_E" in post else post["sigma"]   # a joint fit: the implied noise
    if "nu" in post and "sigma_D_E" not in post:
        ds["nu"] = post["nu"]
    ds.attrs["population"] = NEW if NEW in names else ""
    return ds


# ---- distance outside the data ---------------------------------------------------------------------------


def data_range(fit) -> dict[str, tuple[float, float]]:
    """Smallest and largest ``N`` and ``D_F`` among the runs used in the fit."""
    used = fit.data.used
    return {"N": (float(used["N"].min()), float(used["N"].max())),
            "D_F": (float(used["D_F"].min()), float(used["D_F"].max()))}


def orders_outside(values, low: float, high: float, *, log10: bool = False):
    """Orders of magnitude outside ``[low, high]``: ``log10(x / high)`` above it (> 0), ``log10(x / low)``
    below it (< 0), 0 inside; :func:`bayes_scaling.laws.discrepancy.outside_range`, the one formula of the
    distance outside the data (numbers, numpy arrays and DataArrays; ``log10=True``: ``values`` are already
    log10 x, e.g. where x underflows).

    >>> float(orders_outside(1e12, 1e5, 1e9)), float(orders_outside(1e6, 1e5, 1e9)), float(orders_outside(1e3, 1e5, 1e9))
    (3.0, 0.0, -2.0)
    """
    from bayes_scaling.laws.discrepancy import outside_range

    return outside_range(values, low, high, log10=log10)


def extrapolation(fit, *, N=None, D_F=None) -> pd.DataFrame:
    """How far outside the fitted data each value is: a table with columns ``quantity``, ``value``,
    ``data_min``, ``data_max`` and ``orders_outside`` (see :func:`orders_outside`).

    >>> extrapolation(fit, N=[1e8, 1.75e11], D_F=300)      # doctest: +SKIP
    """
    rng = data_range(fit)
    rows = []
    for name, vals in (("N", N), ("D_F", D_F)):
        if vals is None:
            continue
        for v in positive_grid(vals, name).values:
            lo, hi = rng[name]
            rows.append({"quantity": name, "value": float(v), "data_min": lo, "data_max": hi,
                         "orders_outside": float(orders_outside(v, lo, hi))})
    return pd.DataFrame(rows, columns=["quantity", "value", "data_min", "data_max", "orders_outside"])


# ---- predictions -----------------------------------------------------------------------------------------


def predict(fit, new_data: pd.DataFrame | dict | None = None, kind: str = "mean", *, N=None, D_F=None,
            pretraining=None, noise: bool | None = None, seed: int | None = None, discrepancy: float | None = None,
            ci_prob: float | None = None) -> xr.Dataset | pd.DataFrame:
    """Posterior predictions of any fit, one entry point: a law-spec fit (:class:`~bayes_scaling.inference.fit.Fit`)
    at the points ``new_data`` is :meth:`Fit.predict <bayes_scaling.inference.fit.Fit.predict>` (``kind``,
    ``ci_prob``, ``seed``, ``discrepancy``: the spec's by default); a transfer fit on the grid ``N`` x ``D_F``
    is described below. ``kind`` is ``"mean"`` (the law's value) or ``"observation"`` (a new run: with the
    fitted noise) for both; ``noise=True`` is the transfer grid's older name of ``kind="observation"``.

    Transfer fits: the posterior of ``D_T``, ``D_E``, the multiplier ``D_E / D_F`` and the fraction ``D_T / D_E``
    on a grid.

    ``D_T = k * D_F**alpha * N**beta`` evaluated draw by draw (the mean function), or with ``noise=True`` times
    ``exp(eps)``, ``eps`` the fitted observation noise of log D_T (Normal or Student-t; the posterior predictive).
    ``pretraining``: names in the fit and/or :data:`NEW` (default: the fit's). ``seed`` seeds the noise and the
    population draws. Dimensions: ``chain``, ``draw``, ``pretraining``, ``N``, ``D_F``; coordinates
    ``N_orders_outside`` and ``D_F_orders_outside`` say how far each grid value lies outside the data.

    ``discrepancy``: ``tau``, the transfer law's error per decade outside the data on ``log D_T``
    (:mod:`bayes_scaling.laws.discrepancy`: ``D_T`` times ``exp(tau d z)``, ``d`` the larger of the two distances).
    Default 0: unlike the loss laws' (0.059 per decade, from real IsoFLOP backtests) no value has been calibrated
    for the transfer law: no real data set extrapolates it (the measured transfer runs are tiny, Hernandez et
    al.'s synthetic). The coordinates ``share_parameters``, ``share_noise``, ``share_discrepancy`` (per
    ``pretraining``, ``N``, ``D_F``) split the log-scale variance of ``D_T`` either way.

    A grid whose draws (distributions x N x D_F points x posterior draws) would not fit in the memory available
    is refused before any is computed, with the estimate (:func:`bayes_scaling._system.check_prediction_memory`).

    >>> pred = predict(fit, N=[1e7, 1e8], D_F=np.logspace(5, 8, 10))     # doctest: +SKIP
    >>> pred["multiplier"].quantile([0.03, 0.5, 0.97], dim=("chain", "draw"))   # doctest: +SKIP
    """
    from bayes_scaling._system import GRID_ARRAYS, check_prediction_memory
    from bayes_scaling.inference.fit import Fit
    from bayes_scaling.inference.sampling import TransferFit

    if kind not in ("mean", "observation"):
        raise ValueError(f"kind must be 'mean' or 'observation', got {kind!r}")
    grid = isinstance(fit, TransferFit) or getattr(fit, "transfer_grid", False)   # a transfer or joint fit
    if isinstance(fit, Fit) and (new_data is not None or not grid):   # at points
        if new_data is None or N is not None or D_F is not None or pretraining is not None or noise is not None:
            raise ValueError("a law-spec fit predicts at points: pass new_data (a table of its input and group "
                             "columns) and kind, not N=, D_F=, pretraining= or noise=")
        return fit.predict(new_data, kind, ci_prob=ci_prob, seed=seed, discrepancy=discrepancy)
    if new_data is not None or ci_prob is not None:
        raise ValueError("a transfer fit predicts on the grid N x D_F: pass N= and D_F= (draws, no ci_prob)")
    if N is None or D_F is None:
        raise ValueError("predict: a transfer fit needs N= and D_F= (the grid)")
    if noise is None:
        noise = kind == "observation"
    elif bool(noise) != (kind == "observation") and kind == "observation":
        raise ValueError("noise=False contradicts kind='observation'; pass one of them")
    discrepancy = 0.0 if discrepancy is None else discrepancy
    N_ = positive_grid(N, "N")
    D_F_ = positive_grid(D_F, "D_F")
    par = parameters(fit, pretraining, seed=seed)
    check_prediction_memory(par.sizes["pretraining"] * len(N_) * len(D_F_), par.sizes["chain"] * par.sizes["draw"],
                            GRID_ARRAYS, hint="give fewer N, D_F or pre-training values at a time (--N, --D-F, "
                            "--pretraining)")
    log_D_T = laws.log_transfer(par["log_k"], par["alpha"], par["beta"], np.log(D_F_), np.log(N_))
    log_D_T = log_D_T.transpose("chain", "draw", "pretraining", "N", "D_F")
    D_T = np.exp(log_D_T)
    mean = D_T.values
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])  # not the population's stream
    if noise:  # a new observation: the fitted noise of log D_T (laws.observation_noise)
        per_draw = (...,) + (None,) * (D_T.ndim - 2)
        nu = par["nu"].values[per_draw] if "nu" in par else None
        D_T = D_T.copy(data=laws.observation_noise(D_T.values, par["sigma"].values[per_draw], rng, nu=nu))
    rng_ = data_range(fit)
    out_N, out_F = orders_outside(N_.values, *rng_["N"]), orders_outside(D_F_.values, *rng_["D_F"])
    D_T = _with_discrepancy(D_T, mean, np.maximum(np.abs(out_N)[:, None], np.abs(out_F)[None, :]), discrepancy,
                            noise, rng)
    D_T = D_T.transpose("chain", "draw", "pretraining", "N", "D_F")
    out = xr.Dataset({"D_T": D_T, "D_E": (D_F_ + D_T).transpose(*D_T.dims)})   # D_E = D_F + D_T
    out["multiplier"] = out["D_E"] / D_F_
    out["fraction"] = D_T / out["D_E"]
    out = out.assign_coords(N_orders_outside=("N", out_N), D_F_orders_outside=("D_F", out_F),
                            **{k: D_T[k] for k in D_T.coords if str(k).startswith("share_")})
    out.attrs.update(noise=int(noise), tau=float(D_T.attrs["tau"]), unit=fit.data.unit, seed="" if seed is None else int(seed),
                     population_label=NEW, law="D_T = k * D_F**alpha * N**beta",
                     data_N_range=list(rng_["N"]), data_D_F_range=list(rng_["D_F"]))
    return out


def _with_discrepancy(D_T: xr.DataArray, mean: np.ndarray, dist: np.ndarray, tau, noise: bool,
                      rng: np.random.Generator) -> xr.DataArray:
    """``D_T`` (chain, draw, pretraining, N, D_F) with the discrepancy at the grid's distance ``dist`` (N, D_F),
    and the variance split as ``share_*`` coordinates (pretraining, N, D_F)."""
    from bayes_scaling.laws.discrepancy import check_tau, variance_split, widen

    tau = check_tau(tau, "discrepancy")
    C, Dr, P, nN, nF = D_T.shape
    d = np.broadcast_to(dist[None, :, :], (P, nN, nF)).reshape(-1)
    flat_ = D_T.values.reshape(C * Dr, -1)
    with np.errstate(all="ignore"):
        log_mean = np.log(mean.reshape(C * Dr, -1))
        split = variance_split(log_mean, tau, d, np.log(flat_) - log_mean if noise else None)
    out = D_T.copy(data=widen(flat_, d, tau, rng).reshape(D_T.shape))
    out.attrs["tau"] = tau
    return out.assign_coords({k: (("pretraining", "N", "D_F"), split[k].to_numpy().reshape(P, nN, nF))
                              for k in ("share_parameters", "share_noise", "share_discrepancy")})


# ---- derived quantities ----------------------------------------------------------------------------------


def exchange_rate(fit, C: float = 100.0, *, pretraining=None, seed: int | None = None) -> xr.DataArray:
    """Posterior of the model-size factor worth ``C`` times more fine-tuning data, ``C**(alpha / beta)``, per
    pre-training distribution (dims ``chain``, ``draw``, ``pretraining``). Text -> Python, Table 1: 100x data
    ~ 8.9x parameters.

    >>> exchange_rate(fit, 100).median(("chain", "draw"))     # doctest: +SKIP
    """
    if not (np.isfinite(C) and C > 0):
        raise BayesScalingError(f"C (the factor on D_F) must be finite and > 0, got {C!r}")
    par = parameters(fit, pretraining, seed=seed)
    out = laws.exchange_rate(par["alpha"], par["beta"], float(C)).rename("exchange_rate")
    out.attrs.update(C=float(C), meaning=f"factor on N worth a factor {C:g} on D_F: C**(alpha/beta)")
    return out


def crossover(fit, first: str, second: str, *, seed: int | None = None) -> xr.DataArray:
    """Posterior of the fine-tuning data size where the transfer curves of two pre-training distributions
    cross (shared beta): ``D_F* = (k_2 / k_1) ** (1 / (alpha_1 - alpha_2))`` (dims ``chain``, ``draw``).

    Below ``D_F*`` the distribution with the smaller alpha (larger k) transfers more; above it the one with the
    larger alpha. Coordinate-free attrs give the data range; use :func:`crossover_probability` for
    ``P(lo <= D_F* <= hi)`` and :func:`orders_outside` for the distance outside the data. Table 1: 2.6e12.
    """
    if first == second:
        raise BayesScalingError(f"crossover needs two different pre-training distributions, got {first!r} twice")
    par = parameters(fit, [first, second], seed=seed)
    beta = par["beta"]
    if not np.allclose(beta.sel(pretraining=first), beta.sel(pretraining=second)):
        raise BayesScalingError("crossover needs a shared beta (variant shared_beta or pooled); with "
                                "separate betas the crossing point depends on N")
    p1, p2 = par.sel(pretraining=first), par.sel(pretraining=second)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        out = laws.crossover(p1["k"], p1["alpha"], p2["k"], p2["alpha"])
    out = out.drop_vars("pretraining", errors="ignore").rename("D_F_star")
    lo, hi = data_range(fit)["D_F"]
    out.attrs.update(first=first, second=second, unit=fit.data.unit, data_D_F_range=[lo, hi],
                     formula="D_F* = (k_2/k_1)**(1/(alpha_1 - alpha_2))")
    return out


def crossover_probability(D_F_star: xr.DataArray, low: float, high: float) -> float:
    """Posterior probability that the curves cross within ``[low, high]`` (fraction of draws)."""
    if not (0 < low < high):
        raise BayesScalingError(f"the range must satisfy 0 < low < high, got [{low!r}, {high!r}]")
    v = np.asarray(D_F_star).ravel()
    return float(np.mean((v >= low) & (v <= high)))
