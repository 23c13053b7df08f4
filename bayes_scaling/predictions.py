"""Posterior predictions of the transfer law (draws, never single numbers)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import laws
from .errors import BayesScalingError

__all__ = ["predict"]


def _grid(values, name: str) -> xr.DataArray:
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1 or len(arr) == 0:
        raise BayesScalingError(f"{name} must be a number or a 1-d list of numbers")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        bad = [f"{v:g}" for v in arr[~(np.isfinite(arr) & (arr > 0))][:3]]
        raise BayesScalingError(f"{name} must be finite and > 0; got {', '.join(bad)}")
    return xr.DataArray(arr, dims=name, coords={name: arr})


def predict(fit, *, N, D_F, pretraining=None, noise: bool = False, seed: int | None = None) -> xr.Dataset:
    """Posterior of ``D_T``, ``D_E``, the multiplier ``D_E / D_F`` and the fraction ``D_T / D_E`` on a grid.

    Dimensions: ``chain``, ``draw``, ``pretraining``, ``N``, ``D_F``. With ``noise=True`` the observation noise
    of log D_T is added (posterior predictive, seeded); otherwise the mean function
    ``D_T = k * D_F**alpha * N**beta`` is evaluated draw by draw.

    >>> pred = predict(fit, N=[1e7, 1e8], D_F=np.logspace(5, 8, 10))     # doctest: +SKIP
    >>> pred["multiplier"].quantile([0.03, 0.5, 0.97], dim=("chain", "draw"))   # doctest: +SKIP
    """
    post = fit.posterior
    names = fit.pretraining if pretraining is None else list(np.atleast_1d(pretraining))
    unknown = [p for p in names if p not in fit.pretraining]
    if unknown:
        raise BayesScalingError(f"unknown pre-training distribution(s) {', '.join(map(repr, unknown))}; "
                                f"the fit has {', '.join(fit.pretraining)}")
    N_ = _grid(N, "N")
    D_F_ = _grid(D_F, "D_F")
    sel = post.sel(pretraining=names)
    log_D_T = laws.log_transfer(sel["log_k"], sel["alpha"], sel["beta"], np.log(D_F_), np.log(N_))
    if noise:
        rng = np.random.default_rng(seed)
        log_D_T = log_D_T + sel["sigma"] * xr.DataArray(rng.standard_normal(log_D_T.shape), dims=log_D_T.dims)
    D_T = np.exp(log_D_T).transpose("chain", "draw", "pretraining", "N", "D_F")
    out = xr.Dataset({"D_T": D_T, "D_E": D_F_ + D_T})
    out["multiplier"] = out["D_E"] / D_F_
    out["fraction"] = D_T / out["D_E"]
    out.attrs.update(noise=int(noise), unit=fit.data.unit)
    return out
