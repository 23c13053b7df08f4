"""``bayes-scaling forecast``: target-task data needed with pre-training (D_F + k D_F^alpha N^beta = D_req)."""

from __future__ import annotations

import sys

import numpy as np

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import (
    check_draws_out,
    interval_table,
    posterior_args,
    pretraining_names,
    print_table,
    read_draws_column,
    shares_table,
)

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("forecast", help="target-task data needed with pre-training: D_F + k D_F^alpha N^beta = "
                                        "D_req",
                       description="Posterior of D_F, the saving D_req / D_F and (with --compute-per-example) "
                                   "the compute saved, for every (N, D_req) scenario or for draws of N and "
                                   "D_req from another model (--N-draws / --D-req-draws; aligned draw by draw, "
                                   "resampled with the seed when the numbers of draws differ).")
    posterior_args(p)
    p.add_argument("--N", nargs="+", type=cmdoptions.positive_float, default=None, help="model size(s) (scenarios)")
    p.add_argument("--D-req", dest="D_req", nargs="+", type=cmdoptions.positive_float, default=None,
                   help="data the target task needs from scratch (scenarios)")
    p.add_argument("--N-draws", default=None, metavar="CSV", help="CSV of draws of N (column N or the only one)")
    p.add_argument("--D-req-draws", default=None, metavar="CSV",
                   help="CSV of draws of D_req (column D_req or the only one)")
    p.add_argument("--compute-per-example", type=cmdoptions.positive_float, default=None,
                   help="compute (FLOPs) per unit of target-task data, for the compute saved")
    p.add_argument("--tau", type=cmdoptions.tau, default=0.0, metavar="TAU",
                   help="the transfer law's discrepancy per decade outside the data, on log D_T (default 0: no value "
                        "is calibrated for the transfer law)")
    p.add_argument("--out", default=None, help="write the draws (long table) to .csv/.parquet/.nc")
    p.set_defaults(func=cmd_forecast)


def cmd_forecast(args) -> int:
    from bayes_scaling.analysis.timeline import forecast, forecast_grid
    from bayes_scaling.errors import BayesScalingError
    from bayes_scaling.inference.sampling import load_fit
    from bayes_scaling.output.exports import export

    for given, draws, flag in ((args.N, args.N_draws, "--N"), (args.D_req, args.D_req_draws, "--D-req")):
        if (given is None) == (draws is None):
            raise BayesScalingError(f"give exactly one of {flag} and {flag}-draws")
    pretraining_names(args)
    check_draws_out(args)
    fit = load_fit(args.fit)
    kw = dict(pretraining=pretraining_names(args, fit), compute_per_example=args.compute_per_example, seed=args.seed,
              discrepancy=args.tau)
    N = args.N if args.N is not None else read_draws_column(args.N_draws, "N")
    R = args.D_req if args.D_req is not None else read_draws_column(args.D_req_draws, "D_req")
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
    shares = shares_table(ds, [k for k in keys if k in ds["share_discrepancy"].dims])
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
    print_table(table, quantities, args.ci, args.csv, extra)
    if args.out:
        print(f"wrote {export(ds, args.out)}", file=sys.stderr)
    return 0
