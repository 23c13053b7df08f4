"""Monte Carlo plumbing shared by compute.py and timeline.py: flatten posterior draws, align draws of different
sources draw by draw, and put results back on ``chain``/``draw`` dimensions.

Alignment rule (documented once, used everywhere): inputs are aligned to a target number of draws ``n``
(the transfer fit's chains x draws, or the loss law's when no transfer fit is involved):

- one value: repeated for every draw;
- exactly ``n`` values: paired in order, draw ``i`` with draw ``i`` (chains flattened chain-major);
- any other length: resampled with a seeded generator: without replacement when there are more than ``n``,
  with replacement when there are fewer. The attribute ``alignment`` of each result records what was done.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayes_scaling.errors import BayesScalingError

SAMPLE_DIMS = ("chain", "draw")


def n_samples(ds: xr.Dataset | xr.DataArray) -> int:
    return int(ds.sizes["chain"] * ds.sizes["draw"])


def flat(da: xr.DataArray) -> np.ndarray:
    """Values with ``chain`` and ``draw`` flattened into the first axis (chain-major)."""
    other = [d for d in da.dims if d not in SAMPLE_DIMS]
    v = da.transpose(*SAMPLE_DIMS, *other).values
    return v.reshape((v.shape[0] * v.shape[1],) + v.shape[2:])


def as_draws(values, name: str, *, positive: bool = True) -> np.ndarray:
    """A 1-d float array of draws (a number gives one draw), checked finite (and > 0)."""
    if isinstance(values, xr.DataArray):
        values = flat(values) if set(SAMPLE_DIMS) <= set(values.dims) else values.values
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float)).ravel()
    except (TypeError, ValueError):
        raise BayesScalingError(f"{name} must be a number or an array of draws, got {values!r}") from None
    if len(arr) == 0:
        raise BayesScalingError(f"{name} is empty; expected a number or an array of draws")
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else False)
    if np.any(bad):
        idx = np.flatnonzero(bad)
        raise BayesScalingError(f"{name} must be finite{' and > 0' if positive else ''}; draw(s) "
                                f"{', '.join(map(str, idx[:8]))}{' ...' if len(idx) > 8 else ''} have "
                                f"{', '.join(f'{v:g}' for v in arr[idx[:3]])}")
    return arr


def align(values: np.ndarray, n: int, rng: np.random.Generator, name: str) -> tuple[np.ndarray, str]:
    """``values`` (1-d, length m) aligned to ``n`` draws by the module's rule; returns (array, description)."""
    m = len(values)
    if m == 1:
        return np.repeat(values, n, axis=0), f"{name}: one value, repeated"
    if m == n:
        return values, f"{name}: {m} draws paired in order"
    idx = rng.choice(m, size=n, replace=m < n)
    how = "with" if m < n else "without"
    return values[idx], f"{name}: {m} draws resampled {how} replacement to {n} (seeded)"


def unflat(arr: np.ndarray, like: xr.Dataset | xr.DataArray, dims: tuple[str, ...] = (),
           coords: dict | None = None, name: str | None = None) -> xr.DataArray:
    """Inverse of :func:`flat`: ``arr`` of shape (chains*draws, ...) on ``like``'s chain/draw coordinates."""
    c, d = like.sizes["chain"], like.sizes["draw"]
    arr = np.asarray(arr).reshape((c, d) + np.shape(arr)[1:])
    all_coords = {"chain": like["chain"].values, "draw": like["draw"].values}
    all_coords.update(coords or {})
    return xr.DataArray(arr, dims=SAMPLE_DIMS + tuple(dims), coords=all_coords, name=name)
