"""``bayes-scaling predict``, ``forecast`` and ``export``: posterior intervals and draws from a saved fit."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from bayes_scaling.cli.transfer import probability
from bayes_scaling.errors import BayesScalingError

__all__ = ["register", "positive_float", "interval_table"]


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (e.g. ``4e7``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("fit", help="FIT.nc written by 'bayes-scaling fit'")
    p.add_argument("--pretraining", nargs="+", default=None, metavar="P",
                   help="pre-training distribution(s) (default: all in the fit); 'new' for a new distribution "
                        "drawn from the hierarchy ('new (population)' when the fit has one named 'new')")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--ci", type=probability, default=0.9, help="interval probability (default 0.9: 5-95%%)")
    p.add_argument("--csv", action="store_true", help="print the interval table as CSV")


def register(sub) -> None:
    p = sub.add_parser("predict", help="posterior intervals of D_T, D_E, multiplier and fraction on a grid",
                       description="Posterior median and equal-tailed interval of D_T = k D_F^alpha N^beta, "
                                   "D_E = D_F + D_T, D_E/D_F and D_T/D_E for every (pretraining, N, D_F), with "
                                   "how many orders of magnitude each N and D_F lies outside the fitted data.")
    _common(p)
    p.add_argument("--at", default=None, metavar="POINTS.csv",
                   help="points to predict (any fit): a CSV with the law's input and group columns; writes its "
                        "columns, then median, lo, hi of the target and how far outside the data each point lies")
    p.add_argument("--N", nargs="+", type=positive_float, default=None, help="model size(s) (transfer fits)")
    p.add_argument("--D-F", dest="D_F", nargs="+", type=positive_float, default=None,
                   help="fine-tuning data size(s) (transfer fits)")
    p.add_argument("--noise", action="store_true", help="include observation noise (posterior predictive)")
    p.add_argument("--tau", type=_tau, default=None, metavar="TAU",
                   help="the law's discrepancy per decade outside the data, on the log target (with --at, default: "
                        "the spec's [discrepancy] tau, 0.059 unless it says otherwise; a transfer fit's grid: "
                        "default 0, no value is calibrated for the transfer law; 0: none)")
    p.add_argument("--no-discrepancy", action="store_true",
                   help="with --at: leave the discrepancy out (the same as --tau 0)")
    p.add_argument("--out", default=None, help="with --at: the CSV of intervals (PRED.csv); otherwise also "
                   "write the draws (long table) to .csv/.parquet/.nc")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("forecast", help="target-task data needed with pre-training: D_F + k D_F^alpha N^beta = "
                                        "D_req",
                       description="Posterior of D_F, the saving D_req / D_F and (with --compute-per-example) "
                                   "the compute saved, for every (N, D_req) scenario or for draws of N and "
                                   "D_req from another model (--N-draws / --D-req-draws; aligned draw by draw, "
                                   "resampled with the seed when the numbers of draws differ).")
    _common(p)
    p.add_argument("--N", nargs="+", type=positive_float, default=None, help="model size(s) (scenarios)")
    p.add_argument("--D-req", dest="D_req", nargs="+", type=positive_float, default=None,
                   help="data the target task needs from scratch (scenarios)")
    p.add_argument("--N-draws", default=None, metavar="CSV", help="CSV of draws of N (column N or the only one)")
    p.add_argument("--D-req-draws", default=None, metavar="CSV",
                   help="CSV of draws of D_req (column D_req or the only one)")
    p.add_argument("--compute-per-example", type=positive_float, default=None,
                   help="compute (FLOPs) per unit of target-task data, for the compute saved")
    p.add_argument("--tau", type=_tau, default=0.0, metavar="TAU",
                   help="the transfer law's discrepancy per decade outside the data, on log D_T (default 0: no value "
                        "is calibrated for the transfer law)")
    p.add_argument("--out", default=None, help="write the draws (long table) to .csv/.parquet/.nc")
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser("export", help="write posterior draws of k, alpha, beta, sigma for forecasting models")
    p.add_argument("fit", help="FIT.nc written by 'bayes-scaling fit'")
    p.add_argument("--format", choices=["csv", "parquet", "netcdf"], default=None,
                   help="file format (default: from the suffix of --out)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--layout", choices=["long", "wide"], default="long",
                   help="table layout for csv/parquet (default long: chain, draw, pretraining, quantity, value)")
    p.add_argument("--pretraining", nargs="+", default=None, metavar="P",
                   help="distribution(s) (default all); 'new' adds a new one drawn from the hierarchy")
    p.add_argument("--seed", type=int, default=1, help="random seed for 'new' (default 1)")
    p.set_defaults(func=cmd_export)


# ---- helpers ---------------------------------------------------------------------------------------------


def _names(args, fit=None):
    """The ``--pretraining`` names: ``new`` is a new distribution drawn from the population (:data:`NEW`),
    unless the fit has a distribution named ``new``: then it is that one, and the population is
    ``"new (population)"`` (a label that data cannot use: :meth:`TransferData.from_frame`)."""
    from bayes_scaling.analysis.predictions import NEW

    if args.pretraining is None:
        return None
    real_new = fit is not None and "new" in tuple(getattr(fit, "pretraining", ()))
    names = [NEW if p == NEW or (p == "new" and not real_new) else p for p in args.pretraining]
    repeated = sorted({p for p in names if names.count(p) > 1})
    if repeated:
        from bayes_scaling.errors import BayesScalingError

        raise BayesScalingError(f"--pretraining names {', '.join(map(repr, repeated))} more than once; give "
                                "each distribution once")
    return names


def _check_out(args) -> None:
    """``--out`` checked before the work: folder, a suffix of its format, not the fit file itself."""
    from bayes_scaling.cli.transfer import check_out
    from bayes_scaling.output.exports import FORMATS, _format, suffixes_of

    if args.out is None:
        return
    fmt = getattr(args, "format", None)
    if fmt is None:
        from pathlib import Path

        fmt = _format(Path(args.out), None)
    check_out(args, args.fit, *(getattr(args, a, None) for a in ("N_draws", "D_req_draws")),
              suffixes=suffixes_of(fmt) if fmt in FORMATS else None)


def _fmt(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.3g}"


def interval_table(ds, quantities: list[str], ci: float, keys: list[str]) -> pd.DataFrame:
    """One row per grid point: for each quantity its median and equal-tailed ``ci`` interval (columns
    ``<q>``, ``<q>_lo``, ``<q>_hi``), plus ``n_nan`` where some draws have no value."""
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    out = None
    for q in quantities:
        da = ds[q]
        with np.errstate(all="ignore"):
            qs = da.quantile([lo, 0.5, hi], dim=("chain", "draw"), skipna=True)
        df = qs.to_dataframe(name=q).reset_index().pivot_table(index=[k for k in keys if k in qs.dims],
                                                               columns="quantile", values=q, dropna=False)
        df.columns = [f"{q}_lo", q, f"{q}_hi"]
        out = df if out is None else out.join(df)
    out = out.reset_index()
    if "pretraining" in out:  # the dataset's order, not alphabetical
        order = {p: i for i, p in enumerate(ds["pretraining"].values)}
        out = out.sort_values(by=[k for k in keys if k in out], key=lambda c: c.map(order) if c.name ==
                              "pretraining" else c, kind="stable").reset_index(drop=True)
    return out


def _print_table(table: pd.DataFrame, quantities: list[str], ci: float, as_csv: bool, extra: list[str]) -> None:
    if as_csv:
        table.to_csv(sys.stdout, index=False)
        return
    pct = f"{100 * ci:g}%"
    view = pd.DataFrame({c: table[c].map(lambda v: _fmt(v) if isinstance(v, float) else v)
                         for c in table.columns if c not in extra and not any(
                             c in (f"{q}", f"{q}_lo", f"{q}_hi") for q in quantities)})
    for q in quantities:
        view[f"{q} median [{pct}]"] = [f"{_fmt(m)} [{_fmt(a)}, {_fmt(b)}]"
                                       for m, a, b in zip(table[q], table[f"{q}_lo"], table[f"{q}_hi"], strict=True)]
    for c in extra:
        view[c] = table[c].map(lambda v: f"{v:+.2f}" if isinstance(v, float) and np.isfinite(v) else str(v))
    print(view.to_string(index=False))


def _shares(ds, keys: list[str]) -> pd.DataFrame:
    """The ``share_parameters`` / ``share_discrepancy`` coordinates of ``ds`` as a table over ``keys``."""
    cols = [c for c in ("share_parameters", "share_discrepancy") if c in ds.coords]
    if not cols:
        return pd.DataFrame(columns=keys)
    dims = list(ds[cols[0]].dims)
    index = pd.MultiIndex.from_product([ds[d].values for d in dims], names=dims) if dims else pd.RangeIndex(1)
    out = pd.DataFrame({c: ds[c].transpose(*dims).values.ravel() for c in cols}, index=index)
    out = out.reset_index() if dims else out
    return out[[k for k in keys if k in out.columns] + cols]


def _read_draws(path: str, column: str):
    from bayes_scaling.data.tables import check_numeric, read_table
    from bayes_scaling.errors import DataError

    df = read_table(path, what=path)
    if column not in df.columns:
        if len(df.columns) != 1:
            raise DataError(f"{path}: expected a column {column!r} (or a single column); found "
                            f"{', '.join(map(str, df.columns))}")
        column = df.columns[0]
    return check_numeric(df, column, path)


# ---- commands --------------------------------------------------------------------------------------------


def cmd_predict_at(args) -> int:
    """``predict FIT.nc --at POINTS.csv [--out PRED.csv] [--ci 0.9] [--noise]``: any fit."""
    from bayes_scaling.data.tables import read_table
    from bayes_scaling.inference.fit import as_spec_fit, load

    if args.N or args.D_F or args.pretraining:
        raise BayesScalingError("--at takes the points from its CSV; leave out --N, --D-F and --pretraining")
    if args.out:
        _check_csv_out(args, args.fit, args.at)
    fit = as_spec_fit(load(args.fit))
    points = read_table(args.at, args.at)
    tau = 0.0 if args.no_discrepancy else args.tau
    table = fit.predict(points, kind="observation" if args.noise else "mean", ci_prob=args.ci, seed=args.seed,
                        discrepancy=tau)
    tau = float(table["tau"].iloc[0])
    what = "a new observation (with noise)" if args.noise else "the law's value (mean function)"
    what += f", with the law's discrepancy outside the data (tau {tau:g} per decade)" if tau > 0 else \
        ", without a discrepancy"
    from bayes_scaling.cli._output import emit

    emit("intervals", table, target=fit.spec.target, kind="observation" if args.noise else "mean",
         ci_prob=args.ci, data_range=fit.data_range(), tau=tau)
    ranges = ", ".join(f"{c} in [{lo:.3g}, {hi:.3g}]" for c, (lo, hi) in fit.data_range().items())
    if args.out:
        from bayes_scaling._atomic import atomic_path

        with atomic_path(args.out) as tmp:
            table.to_csv(tmp, index=False)
        print(f"wrote {args.out}: {len(table)} points; median, lo, hi of {fit.spec.target} ({what}), "
              f"{100 * args.ci:g}% interval", file=sys.stderr)
    elif args.csv:
        table.to_csv(sys.stdout, index=False)
    else:
        print(f"{fit.spec.target}: {what}; {100 * args.ci:g}% equal-tailed interval; data: {ranges}; outside_* = "
              "orders of magnitude outside that range (+ above, - below; C = 6 N D); share_* = parts of the "
              "log-scale predictive variance from the parameters, the noise and the discrepancy")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def _tau(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    from bayes_scaling.laws.discrepancy import MAX_TAU

    if not (np.isfinite(value) and 0 <= value <= MAX_TAU):
        raise argparse.ArgumentTypeError(f"expected a finite number in [0, {MAX_TAU:g}] (per decade on the log "
                                         f"target), got {text!r}")
    return value


def _check_csv_out(args, *inputs) -> None:
    from bayes_scaling._atomic import check_output

    check_output(args.out, inputs=inputs, suffixes=(".csv",), what="--out")


def cmd_predict(args) -> int:
    from bayes_scaling.analysis.predictions import predict
    from bayes_scaling.inference.sampling import load_fit
    from bayes_scaling.output.exports import export

    if args.at is not None:
        return cmd_predict_at(args)
    if not args.N or not args.D_F:
        raise BayesScalingError("predict needs --at POINTS.csv, or --N and --D-F (a transfer fit's grid)")

    _names(args)
    _check_out(args)
    fit = load_fit(args.fit)
    if args.no_discrepancy and args.tau:
        raise BayesScalingError("give --tau or --no-discrepancy, not both")
    ds = predict(fit, N=args.N, D_F=args.D_F, pretraining=_names(args, fit), noise=args.noise, seed=args.seed,
                 discrepancy=0.0 if args.no_discrepancy or args.tau is None else args.tau)
    quantities = ["D_T", "D_E", "multiplier", "fraction"]
    table = interval_table(ds, quantities, args.ci, ["pretraining", "N", "D_F"])
    table = table.merge(_shares(ds, ["pretraining", "N", "D_F"]), on=["pretraining", "N", "D_F"], how="left")
    table["N_outside"] = table["N"].map(dict(zip(ds["N"].values, ds["N_orders_outside"].values, strict=True)))
    table["D_F_outside"] = table["D_F"].map(dict(zip(ds["D_F"].values, ds["D_F_orders_outside"].values, strict=True)))
    from bayes_scaling.cli._output import emit

    emit("intervals", table, ci_prob=args.ci, noise=bool(args.noise), unit=fit.data.unit,
         data_N_range=ds.attrs["data_N_range"], data_D_F_range=ds.attrs["data_D_F_range"])
    if not args.csv:
        lo, hi = ds.attrs["data_N_range"], ds.attrs["data_D_F_range"]
        print(f"{'posterior predictive (with noise)' if args.noise else 'mean function'}; unit {fit.data.unit}; "
              f"data: N in [{lo[0]:.3g}, {lo[1]:.3g}], D_F in [{hi[0]:.3g}, {hi[1]:.3g}]; *_outside = orders of "
              "magnitude outside that range (+ above, - below)")
    _print_table(table, quantities, args.ci, args.csv, ["N_outside", "D_F_outside", "share_parameters",
                                                        "share_discrepancy"])
    if args.out:
        print(f"wrote {export(ds, args.out)}", file=sys.stderr)
    return 0


def cmd_forecast(args) -> int:
    from bayes_scaling.analysis.timeline import forecast, forecast_grid
    from bayes_scaling.errors import BayesScalingError
    from bayes_scaling.inference.sampling import load_fit
    from bayes_scaling.output.exports import export

    for given, draws, flag in ((args.N, args.N_draws, "--N"), (args.D_req, args.D_req_draws, "--D-req")):
        if (given is None) == (draws is None):
            raise BayesScalingError(f"give exactly one of {flag} and {flag}-draws")
    _names(args)
    _check_out(args)
    fit = load_fit(args.fit)
    kw = dict(pretraining=_names(args, fit), compute_per_example=args.compute_per_example, seed=args.seed,
              discrepancy=args.tau)
    N = args.N if args.N is not None else _read_draws(args.N_draws, "N")
    R = args.D_req if args.D_req is not None else _read_draws(args.D_req_draws, "D_req")
    if args.N_draws or args.D_req_draws:
        ds = forecast(fit, N=np.asarray(N), D_req=np.asarray(R), **kw)
        keys = ["pretraining"]
    else:
        ds = forecast_grid(fit, N=N, D_req=R, **kw)
        keys = ["pretraining", "N", "D_req"]
    quantities = ["D_F", "saving"] + (["compute_saved"] if "compute_saved" in ds else [])
    table = interval_table(ds, quantities + ["D_F_orders_outside"], args.ci, keys)
    unsolved = (~ds["solved"].astype(bool)).sum(("chain", "draw")).to_dataframe(name="unsolved").reset_index()
    table = table.merge(unsolved[[c for c in unsolved.columns if c in keys] + ["unsolved"]], on=keys)
    if "N" in keys:
        table["N_outside"] = table["N"].map(dict(zip(ds["N"].values, np.atleast_1d(ds["N_orders_outside"].values), strict=True)))
    table["D_F_outside"] = table["D_F_orders_outside"]
    table = table.drop(columns=["D_F_orders_outside", "D_F_orders_outside_lo", "D_F_orders_outside_hi"])
    shares = _shares(ds, [k for k in keys if k in ds["share_discrepancy"].dims])
    table = table.merge(shares, on=list(shares.columns[:-2]), how="left") if len(shares.columns) > 2 else \
        table.assign(**{c: float(shares[c].iloc[0]) for c in shares.columns})
    from bayes_scaling.cli._output import emit

    emit("intervals", table, ci_prob=args.ci, unit=fit.data.unit, alignment=ds.attrs.get("alignment"),
         data_N_range=ds.attrs.get("data_N_range"), data_D_F_range=ds.attrs.get("data_D_F_range"))
    if not args.csv:
        print(f"D_F solving D_F + k D_F^alpha N^beta = D_req; saving = D_req / D_F; unit {fit.data.unit}; "
              f"{ds.attrs.get('alignment', 'fixed scenarios')}; *_outside = orders of magnitude beyond the fitted "
              "data (median over draws for D_F); unsolved = draws without a unique solution (NaN, not dropped)")
    extra = (["N_outside"] if "N" in keys else []) + ["D_F_outside", "share_parameters", "share_discrepancy",
                                                       "unsolved"]
    _print_table(table, quantities, args.ci, args.csv, extra)
    if args.out:
        print(f"wrote {export(ds, args.out)}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from bayes_scaling.inference.sampling import load_fit
    from bayes_scaling.output.exports import export, fit_draws

    _names(args)
    _check_out(args)
    fit = load_fit(args.fit)
    path = export(fit_draws(fit, pretraining=_names(args, fit), seed=args.seed), args.out, format=args.format,
                  layout=args.layout)
    print(f"wrote {path}")
    return 0
