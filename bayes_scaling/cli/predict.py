"""``bayes-scaling predict``: posterior intervals of a saved fit, at points (any fit) or on a transfer fit's grid."""

from __future__ import annotations

import sys

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import (
    check_draws_out,
    interval_table,
    posterior_args,
    pretraining_names,
    print_table,
    shares_table,
)
from bayes_scaling.errors import BayesScalingError

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("predict", help="posterior intervals of D_T, D_E, multiplier and fraction on a grid",
                       description="Posterior median and equal-tailed interval of D_T = k D_F^alpha N^beta, "
                                   "D_E = D_F + D_T, D_E/D_F and D_T/D_E for every (pretraining, N, D_F), with "
                                   "how many orders of magnitude each N and D_F lies outside the fitted data.")
    posterior_args(p)
    p.add_argument("--at", default=None, metavar="POINTS.csv",
                   help="points to predict (any fit): a CSV with the law's input and group columns; writes its "
                        "columns, then median, lo, hi of the target and how far outside the data each point lies")
    p.add_argument("--N", nargs="+", type=cmdoptions.positive_float, default=None, help="model size(s) (transfer fits)")
    p.add_argument("--D-F", dest="D_F", nargs="+", type=cmdoptions.positive_float, default=None,
                   help="fine-tuning data size(s) (transfer fits)")
    p.add_argument("--noise", action="store_true", help="include observation noise (posterior predictive)")
    p.add_argument("--tau", type=cmdoptions.tau, default=None, metavar="TAU",
                   help="the law's discrepancy per decade outside the data, on the log target (with --at, default: "
                        "the spec's [discrepancy] tau, 0.059 unless it says otherwise; a transfer fit's grid: "
                        "default 0, no value is calibrated for the transfer law; 0: none)")
    p.add_argument("--no-discrepancy", action="store_true",
                   help="with --at: leave the discrepancy out (the same as --tau 0)")
    p.add_argument("--out", default=None, help="with --at: the CSV of intervals (PRED.csv); otherwise also "
                   "write the draws (long table) to .csv/.parquet/.nc")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from bayes_scaling.analysis.predictions import predict
    from bayes_scaling.inference.sampling import load_fit
    from bayes_scaling.output.exports import export

    if args.at is not None:
        return cmd_predict_at(args)
    if not args.N or not args.D_F:
        raise BayesScalingError("predict needs --at POINTS.csv, or --N and --D-F (a transfer fit's grid)")

    pretraining_names(args)
    check_draws_out(args)
    fit = load_fit(args.fit)
    if args.no_discrepancy and args.tau:
        raise BayesScalingError("give --tau or --no-discrepancy, not both")
    ds = predict(fit, N=args.N, D_F=args.D_F, pretraining=pretraining_names(args, fit), noise=args.noise, seed=args.seed,
                 discrepancy=0.0 if args.no_discrepancy or args.tau is None else args.tau)
    quantities = ["D_T", "D_E", "multiplier", "fraction"]
    table = interval_table(ds, quantities, args.ci, ["pretraining", "N", "D_F"])
    table = table.merge(shares_table(ds, ["pretraining", "N", "D_F"]), on=["pretraining", "N", "D_F"], how="left")
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
    print_table(table, quantities, args.ci, args.csv, ["N_outside", "D_F_outside", "share_parameters",
                                                        "share_discrepancy"])
    if args.out:
        print(f"wrote {export(ds, args.out)}", file=sys.stderr)
    return 0


def cmd_predict_at(args) -> int:
    """``predict FIT.nc --at POINTS.csv [--out PRED.csv] [--ci 0.94] [--noise]``: any fit."""
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


def _check_csv_out(args, *inputs) -> None:
    from bayes_scaling._atomic import check_output

    check_output(args.out, inputs=inputs, suffixes=(".csv",), what="--out")
