"""``bayes-scaling quantiles``: quantiles and a forecasting platform's 201-point CDF from saved draws.

The draws are a file written by ``predict ... --out`` / ``forecast ... --out`` (``.nc``, or a ``.csv`` /
``.parquet`` long table with ``quantity`` and ``value`` columns, or a wide table with one column per
quantity) or any CSV with a column of draws. ``--sel`` picks one point (``pretraining=text N=4e7``);
the distance outside the data is read from the ``*_orders_outside`` coordinates/columns the draws carry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling.cli import cmdoptions
from bayes_scaling.errors import BayesScalingError, DataError

__all__ = ["register", "read_draws"]

_SUFFIX = "_orders_outside"


def register(sub) -> None:
    p = sub.add_parser(
        "quantiles", help="quantiles and a forecasting platform's 201-point CDF from saved draws",
        description="Quantiles of one quantity at one point of saved draws (predict/forecast --out), and with "
                    "--cdf LOWER UPPER the CDF at 201 evenly spaced points of the question's range (--log: "
                    "evenly spaced in log), first value = probability below the range, 1 - last value = "
                    "probability above it (open bounds keep at least 0.001 outside; the CDF rises by at least "
                    "5e-5 per step), as continuous questions on forecasting platforms take it. Each result "
                    "states how many orders of magnitude outside the fitted data the point lies.")
    p.add_argument("draws", help="draws: .nc / .csv / .parquet from 'predict ... --out' or 'forecast ... --out', "
                   "or a CSV with a column of draws")
    p.add_argument("--var", default=None, help="the quantity (e.g. multiplier, D_F, saving; default: the only one)")
    p.add_argument("--sel", nargs="+", default=[], metavar="KEY=VALUE",
                   help="select one point, e.g. pretraining=text N=4e7 D_F=3e5")
    p.add_argument("--probs", nargs="+", type=cmdoptions.probability, default=None, metavar="P",
                   help="quantile probabilities (default 0.01 0.05 0.1 0.25 0.5 0.75 0.9 0.95 0.99)")
    p.add_argument("--cdf", nargs=2, type=cmdoptions.finite, default=None, metavar=("LOWER", "UPPER"),
                   help="also the 201-point CDF over the question's range [LOWER, UPPER]")
    p.add_argument("--log", action="store_true", help="with --cdf: a log-scale question")
    p.add_argument("--closed-lower", action="store_true", help="with --cdf: the lower bound is closed")
    p.add_argument("--closed-upper", action="store_true", help="with --cdf: the upper bound is closed")
    p.add_argument("--outside", type=cmdoptions.finite, default=None,
                   help="orders of magnitude outside the data, when the draws do not record it")
    p.add_argument("--out", default=None, help="write .json (quantiles, and the CDF with --cdf) or .csv (the "
                   "CDF's x, cdf with --cdf; otherwise the quantiles)")
    p.set_defaults(func=cmd_quantiles)


# ---- reading ---------------------------------------------------------------------------------------------


def _parse_sel(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BayesScalingError(f"--sel takes KEY=VALUE, got {item!r}")
        if key in out:
            raise BayesScalingError(f"--sel names {key!r} twice")
        out[key] = value
    return out


def _sel_dataset(ds, sel: dict[str, str], path: str):
    for key, text in sel.items():
        if key not in ds.dims:
            raise DataError(f"{path}: --sel {key}: no such dimension; the draws have "
                            f"{', '.join(d for d in ds.dims if d not in ('chain', 'draw')) or 'none'}")
        coord = ds[key].values
        if np.issubdtype(coord.dtype, np.number):
            try:
                value = float(text)
            except ValueError:
                raise DataError(f"{path}: --sel {key}={text!r}: expected a number") from None
            hit = np.flatnonzero(np.isclose(coord.astype(float), value, rtol=1e-6, atol=0))
        else:
            hit = np.flatnonzero(coord.astype(str) == text)
        if not len(hit):
            shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in coord[:8])
            raise DataError(f"{path}: --sel {key}={text}: not among {key} = {shown}")
        ds = ds.isel({key: int(hit[0])})
    return ds


def _sel_table(df: pd.DataFrame, sel: dict[str, str], path: str) -> pd.DataFrame:
    for key, text in sel.items():
        if key not in df.columns:
            raise DataError(f"{path}: --sel {key}: no such column ({', '.join(map(str, df.columns))})")
        col = df[key]
        if pd.api.types.is_numeric_dtype(col):
            try:
                value = float(text)
            except ValueError:
                raise DataError(f"{path}: --sel {key}={text!r}: expected a number") from None
            mask = np.isclose(col.to_numpy(dtype=float), value, rtol=1e-6, atol=0)
        else:
            mask = col.astype(str).to_numpy() == text
        if not mask.any():
            raise DataError(f"{path}: --sel {key}={text}: no rows")
        df = df[mask]
    return df


def _which_var(path, names, what: str) -> str:
    """The message when ``--var`` is needed (several candidates) or cannot help (none)."""
    if not names:
        return f"{path}: no draws to summarise (no {what}); expected a file from 'predict ... --out' or " \
               "'forecast ... --out'"
    return f"{path}: give --var, one of {', '.join(map(str, names))}"


def read_draws(path: str, var: str | None, sel: dict[str, str]):
    """``(draws, var, outside)`` ready for :mod:`bayes_scaling.output.forecasting`."""
    from bayes_scaling.output.forecasting import summarise_outside

    p = Path(path)
    if p.is_dir():
        raise DataError(f"draws: {p} is a folder; expected a file of draws")
    if not p.is_file():
        raise DataError(f"draws: file not found: {p}")
    if p.suffix.lower() in (".nc", ".h5", ".netcdf"):
        import xarray as xr

        from bayes_scaling.errors import FitFileError
        from bayes_scaling.inference.fitfile import _quiet_finalizers, check_readable

        msg = None
        with _quiet_finalizers():   # a damaged file: one line, and no h5netcdf traceback at exit
            try:
                check_readable(p)   # never a hang in the HDF5 library
                with xr.open_dataset(p, engine="h5netcdf") as opened:
                    ds = opened.load()
            except FitFileError as exc:
                msg = str(exc).split(" as a netCDF fit file: ", 1)[-1]
            except (OSError, ValueError) as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if msg is not None:
            raise DataError(f"{p}: not a netCDF file of draws ({msg})")
        ds = _sel_dataset(ds, sel, path)
        names = [v for v in ds.data_vars if not str(v).endswith(_SUFFIX)
                 and {"chain", "draw"} <= set(ds[v].dims)]
        if var is None:
            if len(names) != 1:
                raise DataError(_which_var(p, names, "variables with chain and draw dimensions"))
            var = names[0]
        return ds, var, None
    if p.suffix.lower() == ".parquet":
        df = pd.read_parquet(p)
    else:
        from bayes_scaling.data.tables import read_table

        df = read_table(p, what=str(p))
    df = _sel_table(df, sel, path)
    recorded: dict[str, float] = {}
    if {"quantity", "value"} <= set(df.columns):   # the long layout of exports
        quantities = list(pd.unique(df["quantity"].astype(str)))
        if var is None:
            if len(quantities) != 1:
                raise DataError(_which_var(p, quantities, "quantities"))
            var = quantities[0]
        if var not in quantities:
            raise DataError(f"{p}: --var {var}: not among the quantities {', '.join(quantities)}")
        q = df["quantity"].astype(str)
        for name in quantities:   # per-draw distances (forecast): median, 5% and 95%
            if name.endswith(_SUFFIX):
                values = pd.to_numeric(df.loc[q == name, "value"], errors="coerce")
                recorded.update(summarise_outside(name[: -len(_SUFFIX)], values))
        df = df[q == var]
        col = "value"
    else:
        numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
                   and c not in ("chain", "draw") and not str(c).endswith(_SUFFIX)]
        if var is None:
            if len(numeric) != 1:
                raise DataError(_which_var(p, numeric, "numeric columns besides chain and draw"))
            var = numeric[0]
        if var not in df.columns:
            raise DataError(f"{p}: --var {var}: no such column ({', '.join(map(str, df.columns))})")
        col = var
    if "chain" in df.columns and "draw" in df.columns and df.duplicated(["chain", "draw"]).any():
        raise DataError(f"{p}: several values per (chain, draw): select one point with --sel (columns "
                        f"{', '.join(str(c) for c in df.columns if c not in ('chain', 'draw', col))})")
    outside = dict(recorded)
    for c in df.columns:
        if str(c).endswith(_SUFFIX):
            outside.update(summarise_outside(str(c)[: -len(_SUFFIX)], pd.to_numeric(df[c], errors="coerce")))
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float), var, outside or None


# ---- the command -----------------------------------------------------------------------------------------


def cmd_quantiles(args) -> int:
    from bayes_scaling.cli._output import emit
    from bayes_scaling.output.forecasting import DEFAULT_PROBS, platform_cdf, quantiles

    if args.out is not None:
        from bayes_scaling._atomic import check_output

        check_output(args.out, inputs=(args.draws,), suffixes=(".csv", ".json"), what="--out")
    if (args.log or args.closed_lower or args.closed_upper) and args.cdf is None:
        raise BayesScalingError("--log, --closed-lower and --closed-upper apply to --cdf LOWER UPPER")
    draws, var, outside = read_draws(args.draws, args.var, _parse_sel(args.sel))
    if args.outside is not None:
        outside = {**(outside or {}), "point": args.outside}
    kw = {"var": var} if not isinstance(draws, np.ndarray) else {}
    table = quantiles(draws, args.probs or DEFAULT_PROBS, outside=outside, **kw)
    out = table.attrs["outside"]
    cdf = None
    if args.cdf is not None:
        cdf = platform_cdf(draws, *args.cdf, scale="log" if args.log else "linear",
                           open_lower=not args.closed_lower, open_upper=not args.closed_upper,
                           outside=outside, **kw)
    where = ", ".join(args.sel) or "all draws"
    emit("quantiles", table, var=var, where=where, outside=out, n_draws=table.attrs["n_draws"],
         n_nan=table.attrs["n_nan"])
    if cdf is not None:
        emit("cdf", None, cdf=cdf.to_dict())
    far = ", ".join(f"{k} {v:+.2f}" for k, v in out.items()) or "not recorded (give --outside)"
    print(f"{var} at {where}: {table.attrs['n_draws']} draws ({table.attrs['n_nan']} non-finite left out); "
          f"orders of magnitude outside the data: {far}")
    print(table[["quantile", "value"]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if cdf is not None:
        print(f"CDF over [{cdf.lower:g}, {cdf.upper:g}] ({cdf.scale}, 201 points): P(below) = {cdf.cdf[0]:.4f}, "
              f"P(above) = {1 - cdf.cdf[-1]:.4f}" + (f"; {100 * cdf.beyond_closed:.1f}% of the draws lie beyond "
                                                       "a closed bound (left out)" if cdf.beyond_closed else ""))
    if args.out is not None:
        from bayes_scaling._atomic import atomic_path
        from bayes_scaling.cli._output import to_jsonable

        with atomic_path(args.out) as tmp:
            if Path(args.out).suffix.lower() == ".json":
                doc = {"var": var, "where": where, "outside": out, "quantiles": table,
                       **({"cdf": cdf.to_dict()} if cdf is not None else {})}
                Path(tmp).write_text(json.dumps(to_jsonable(doc), allow_nan=False, indent=1) + "\n")
            else:
                (cdf.to_frame() if cdf is not None else table).to_csv(tmp, index=False)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
