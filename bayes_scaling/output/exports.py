"""Tidy draws for forecasting models: long and wide tables, CSV / Parquet / netCDF writers, quantile tables.

Any result of this package with ``chain`` and ``draw`` dimensions (``predict``, ``exchange_rate``,
``forecast``, ``compute_frontier``, ...) exports the same way:

>>> long = to_long(predict(fit, N=1e8, D_F=[1e5, 1e6]))          # doctest: +SKIP
>>> long.columns.tolist()                                        # doctest: +SKIP
['chain', 'draw', 'pretraining', 'N', 'D_F', 'quantity', 'value']
>>> quantile_table(forecast(fit, N=1e11, D_req=1e12))          # doctest: +SKIP

Long: one row per (draw, grid point, quantity). Wide: one row per (draw, grid point), one column per quantity.
Non-dimension coordinates (e.g. ``N_orders_outside`` of a prediction grid) are kept as columns of the wide
table and of the quantile table, where they belong to a grid point.
"""

from __future__ import annotations

import importlib
import warnings
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling._atomic import atomic_path
from bayes_scaling._numeric import nanquantile
from bayes_scaling.analysis.predictions import parameters
from bayes_scaling.errors import BayesScalingError

__all__ = ["to_long", "to_wide", "quantile_table", "fit_draws", "write_table", "write_netcdf", "export",
           "FORMATS"]

FORMATS = ("csv", "parquet", "netcdf")
SAMPLE_DIMS = ("chain", "draw")
_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".nc": "netcdf", ".netcdf": "netcdf"}


def _dataset(obj) -> xr.Dataset:
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name or "value")
    if isinstance(obj, xr.Dataset):
        ds = obj
    else:
        raise BayesScalingError(f"expected an xarray Dataset or DataArray of draws, got {type(obj).__name__}")
    missing = [d for d in SAMPLE_DIMS if d not in ds.dims]
    if missing:
        raise BayesScalingError(f"the result has no {' and '.join(missing)} dimension(s); expected posterior "
                                f"draws (dims {', '.join(map(str, ds.dims)) or 'none'})")
    return ds


def _dims(ds: xr.Dataset) -> list[str]:
    """Dimensions in the order the variables use them (not alphabetical)."""
    out: list[str] = []
    for da in ds.data_vars.values():
        out += [str(d) for d in da.dims if d not in out]
    return out + [str(d) for d in ds.dims if d not in out]


def _id_columns(df: pd.DataFrame, dims: list[str]) -> list[str]:
    return ["chain", "draw", "pretraining"] + [d for d in dims if d not in ("chain", "draw", "pretraining")]


def to_long(obj) -> pd.DataFrame:
    """Long table: columns ``chain``, ``draw``, ``pretraining`` ("" where a quantity has none), one column per
    further grid dimension, ``quantity``, ``value`` (booleans as 0/1)."""
    ds = _dataset(obj)
    dims = _dims(ds)
    frames = []
    for name, da in ds.data_vars.items():
        da = da.drop_vars([c for c in da.coords if c not in da.dims])
        if not set(SAMPLE_DIMS) <= set(da.dims):  # a fixed quantity: the same for every draw
            da = da.broadcast_like(ds[list(SAMPLE_DIMS)]).transpose(*SAMPLE_DIMS, ...)
        df = da.astype(float).to_dataframe(name="value").reset_index()
        df.insert(len(df.columns) - 1, "quantity", str(name))
        frames.append(df)
    long = pd.concat(frames, ignore_index=True)
    if "pretraining" not in long.columns:
        long["pretraining"] = ""
    long["pretraining"] = long["pretraining"].astype(object).where(long["pretraining"].notna(), "").astype(str)
    ids = _id_columns(long, dims)
    return long[ids + ["quantity", "value"]]


def to_wide(obj) -> pd.DataFrame:
    """Wide table: one row per (chain, draw, pretraining, grid point), one column per quantity (broadcast over
    the dimensions a quantity lacks), plus the non-dimension coordinates."""
    ds = _dataset(obj)
    wide = ds.to_dataframe().reset_index()
    if "pretraining" not in wide.columns:
        wide["pretraining"] = ""
    ids = _id_columns(wide, _dims(ds))
    return wide[ids + [c for c in wide.columns if c not in ids]]


def quantile_table(obj, q=(0.05, 0.5, 0.95), *, log10: str | bool | list[str] = "auto") -> pd.DataFrame:
    """Posterior quantiles per quantity and grid point (over chain and draw).

    ``log10``: ``"auto"`` reports a quantity in log10 when all its values are > 0 and span at least two orders
    of magnitude (max / min >= 100); ``True``/``False`` for all; or a list of quantity names. Columns:
    ``quantity``, ``scale`` ("log10" or "linear"), the grid dimensions, ``q5``, ``q50``, ``q95`` (names from
    ``q``), ``n`` (draws used) and ``n_nan`` (draws without a value, e.g. unsolved; never dropped silently).
    """
    ds = _dataset(obj)
    q = np.atleast_1d(np.asarray(q, dtype=float))
    if np.any((q < 0) | (q > 1)):
        raise BayesScalingError(f"quantiles must lie in [0, 1], got {q.tolist()}")
    qnames = [f"q{100 * x:g}".replace(".", "_") for x in q]
    rows = []
    for name, da in ds.data_vars.items():
        if da.dtype == bool or not np.issubdtype(da.dtype, np.number):
            continue
        vals = da.values[np.isfinite(da.values)]
        if log10 == "auto":
            use_log = bool(len(vals)) and bool(np.all(vals > 0)) and vals.max() / vals.min() >= 100
        elif isinstance(log10, bool):
            use_log = log10
        else:
            use_log = name in log10
        x = da
        if use_log:
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.log10(da.where(da > 0))
        other = [d for d in da.dims if d not in SAMPLE_DIMS]
        stacked = x.transpose(*SAMPLE_DIMS, *other).values.reshape(da.sizes["chain"] * da.sizes["draw"], -1)
        n_ok = np.isfinite(stacked).sum(axis=0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: reported by n_nan
            qs = nanquantile(np.where(np.isfinite(stacked), stacked, np.nan), q, axis=0)
        index = pd.MultiIndex.from_product([da[d].values for d in other], names=other) if other else [()]
        for j, key in enumerate(index):
            row = {"quantity": str(name), "scale": "log10" if use_log else "linear"}
            row.update(dict(zip(other, key if isinstance(key, tuple) else (key,), strict=True)))
            row.update({qn: float(qs[i, j]) for i, qn in enumerate(qnames)})
            row.update(n=int(n_ok[j]), n_nan=int(stacked.shape[0] - n_ok[j]))
            rows.append(row)
    table = pd.DataFrame(rows)
    if "pretraining" in table:
        table["pretraining"] = table["pretraining"].astype(object).where(table["pretraining"].notna(), "")
    coords = [c for c in ds.coords if c not in ds.dims and len(ds[c].dims) == 1 and ds[c].dims[0] in table]
    for c in coords:
        d = ds[c].dims[0]
        table = table.merge(pd.DataFrame({d: ds[d].values, c: ds[c].values}), on=d, how="left")
    dims = [d for d in _dims(ds) if d in table.columns]
    return table[["quantity", "scale", *dims, *coords, *qnames, "n", "n_nan"]]


def fit_draws(fit, *, pretraining=None, seed: int | None = None) -> xr.Dataset:
    """Posterior draws of the transfer law's parameters (``k``, ``log_k``, ``alpha``, ``beta``, ``sigma``)
    per pre-training distribution, ready for :func:`to_long` / :func:`export` (``predictions.NEW`` adds a new
    distribution drawn from the hierarchy)."""
    ds = parameters(fit, pretraining, seed=seed)
    ds.attrs.update(unit=fit.data.unit, law="D_T = k * D_F**alpha * N**beta", source=str(fit.data.source))
    return ds[[v for v in ("k", "log_k", "alpha", "beta", "sigma", "nu") if v in ds]]


def suffixes_of(format: str) -> tuple[str, ...]:
    """File name suffixes of ``format`` (csv, parquet, netcdf)."""
    return tuple(k for k, v in _SUFFIX.items() if v == format)


def _format(path: Path, format: str | None) -> str:
    if format is None:
        format = _SUFFIX.get(path.suffix.lower())
        if format is None:
            raise BayesScalingError(f"cannot tell the format from {path.name!r}; give format= one of "
                                    f"{', '.join(FORMATS)} (or a .csv/.parquet/.nc file name)")
    if format not in FORMATS:
        raise BayesScalingError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    return format


def _require_pyarrow() -> None:
    try:
        importlib.import_module("pyarrow")
    except ImportError:
        raise BayesScalingError("writing Parquet needs pyarrow, which is not installed: "
                                "pip install 'bayes_scaling[parquet]' (or use --format csv / netcdf)") from None


def write_table(df: pd.DataFrame, path: str | PathLike, format: str | None = None) -> Path:
    """Write a table as CSV or Parquet (format from the suffix unless given)."""
    path = Path(path)
    fmt = _format(path, format)
    if fmt == "netcdf":
        raise BayesScalingError("a table is written as csv or parquet; use write_netcdf for netCDF")
    if fmt == "parquet":
        _require_pyarrow()
    with atomic_path(path) as tmp:  # complete or not at all; an earlier file stays intact until then
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return path


def write_netcdf(obj, path: str | PathLike) -> Path:
    """Write draws (Dataset / DataArray) to netCDF (h5netcdf); booleans are stored as 0/1 integers."""
    ds = _dataset(obj).copy()
    for name, da in ds.data_vars.items():
        if da.dtype == bool:
            ds[name] = da.astype("int8")
    for c in ds.coords:
        if ds[c].dtype == object:
            ds[c] = ds[c].astype(str)
    ds.attrs = {k: (str(v) if not isinstance(v, (int, float, str, list)) else v) for k, v in ds.attrs.items()}
    from bayes_scaling.inference.fitfile import write_netcdf

    return write_netcdf(ds, path)   # in memory, then atomically: a full disk is an OSError, no SIGSEGV


def export(obj, path: str | PathLike, *, format: str | None = None, layout: str = "long") -> Path:
    """Write draws to ``path``: netCDF keeps the array layout; CSV and Parquet get the ``long`` or ``wide``
    table. The format comes from the suffix unless given."""
    path = Path(path)
    fmt = _format(path, format)
    if fmt == "netcdf":
        return write_netcdf(obj, path)
    if layout not in ("long", "wide"):
        raise BayesScalingError(f"layout must be 'long' or 'wide', got {layout!r}")
    if fmt == "parquet":
        _require_pyarrow()
    return write_table(to_long(obj) if layout == "long" else to_wide(obj), path, fmt)
