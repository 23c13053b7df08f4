"""``bayes-scaling forecast``: target-task data needed with pre-training (D_F + k D_F^alpha N^beta = D_req); or,
with ``--solve``, the input at which any fitted law reaches a target value (``forecast FIT --solve D --target 2.1
--at N=1e9``)."""

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
                                   "resampled with the seed when the numbers of draws differ). With --solve "
                                   "(any fit): per posterior draw, the value of one input at which the law "
                                   "reaches --target, the other inputs at --at, e.g. --solve D --target 2.1 --at "
                                   "N=1e9 (the law must be monotone in the input over the search interval; draws "
                                   "without a solution are counted, not dropped).")
    posterior_args(p)
    p.add_argument("--solve", default=None, metavar="INPUT",
                   help="any fit: the input column to solve the law for (e.g. D)")
    p.add_argument("--target", nargs="+", type=cmdoptions.finite, default=None, metavar="Y",
                   help="with --solve: the value(s) of the law's output to reach (e.g. a loss of 2.1)")
    p.add_argument("--at", nargs="*", default=[], metavar="NAME=VALUE", dest="at_values",
                   help="with --solve: the other inputs, e.g. N=1e9")
    p.add_argument("--group", nargs="+", default=None, metavar="[COLUMN=]LABEL",
                   help="with --solve: one group of a law with group columns (default: every group of the fit)")
    p.add_argument("--bounds", nargs=2, type=cmdoptions.finite, default=None, metavar=("LOW", "HIGH"),
                   help="with --solve: the search interval of the input (default: the data's range widened by "
                        "6 decades each side)")
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

    solve_options = [o for o, v in (("--target", args.target), ("--at", args.at_values), ("--group", args.group),
                                    ("--bounds", args.bounds)) if v]
    if args.solve is not None:
        return cmd_solve(args)
    if solve_options:
        raise BayesScalingError(f"{', '.join(solve_options)} go with --solve INPUT")
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


def _name_values(items: list[str], option: str) -> dict[str, str]:
    from bayes_scaling.errors import BayesScalingError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise BayesScalingError(f"{option} expects NAME=VALUE, got {item!r}")
        if name.strip() in out:
            raise BayesScalingError(f"{option} names {name.strip()!r} more than once")
        out[name.strip()] = value.strip()
    return out


def cmd_solve(args) -> int:
    """``forecast FIT.nc --solve INPUT --target Y [Y ...] --at NAME=VALUE ...``: any fit."""
    import math
    import warnings

    from bayes_scaling.analysis.timeline import solve_law
    from bayes_scaling.errors import BayesScalingError
    from bayes_scaling.inference.fit import as_spec_fit, load
    from bayes_scaling.output.exports import export

    transfer_only = [o for o, v in (("--N", args.N), ("--D-req", args.D_req), ("--N-draws", args.N_draws),
                                    ("--D-req-draws", args.D_req_draws),
                                    ("--compute-per-example", args.compute_per_example),
                                    ("--pretraining", args.pretraining)) if v is not None]
    if transfer_only:
        raise BayesScalingError(f"--solve takes the other inputs from --at; leave out {', '.join(transfer_only)}")
    if args.tau:
        raise BayesScalingError("--tau applies to the transfer forecast; --solve gives the parameters' uncertainty")
    if not args.target:
        raise BayesScalingError("--solve needs --target Y (the value of the law's output to reach)")
    at = {}
    for name, text in _name_values(args.at_values, "--at").items():
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise BayesScalingError(f"--at {name}={text}: expected a finite number")
        at[name] = value
    group = None
    if args.group:
        pairs = [g for g in args.group if "=" in g]
        if pairs and len(pairs) != len(args.group):
            raise BayesScalingError("--group takes one LABEL, or COLUMN=LABEL for each group column")
        group = _name_values(args.group, "--group") if pairs else args.group[0]
        if not pairs and len(args.group) > 1:
            raise BayesScalingError("--group takes one LABEL, or COLUMN=LABEL for each group column")
    check_draws_out(args)
    fit = as_spec_fit(load(args.fit))
    ds = solve_law(fit, args.solve, args.target, at, group=group,
                   bounds=tuple(args.bounds) if args.bounds else None, seed=args.seed)
    x = args.solve
    keys = [k for k in ("group", "target") if k in ds.dims]
    with warnings.catch_warnings():    # a scenario no draw solves: NaN, counted in the unsolved column
        warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)
        table = interval_table(ds, [x, f"{x}_orders_outside"], args.ci, keys)
    counts = (ds["status"] != 0).sum(("chain", "draw")).to_dataframe(name="unsolved").reset_index()
    table = table.merge(counts[keys + ["unsolved"]], on=keys)
    table = table.rename(columns={f"{x}_orders_outside": f"{x}_outside"}).drop(
        columns=[f"{x}_orders_outside_lo", f"{x}_orders_outside_hi"])
    from bayes_scaling.cli._output import emit

    emit("intervals", table, ci_prob=args.ci, solve=x, equation=ds.attrs["equation"], bounds=ds.attrs["bounds"],
         n_unsolved=ds.attrs["n_unsolved"])
    if not args.csv:
        lo, hi = ds.attrs["bounds"]
        reasons = "; ".join(f"{ds.attrs[f'n_status_{c}']} {why}" for c, why in _reasons().items()
                            if ds.attrs[f"n_status_{c}"])
        print(f"{x} solving {ds.attrs['equation']}; per posterior draw, searched in [{lo:.4g}, {hi:.4g}] "
              f"({ds.attrs['scale']} scale); {x}_outside = distance outside the fitted data (median over draws; "
              f"orders of magnitude for a positive input); unsolved = draws without a solution (NaN, not dropped)"
              + (f": {reasons}" if reasons else ""))
    print_table(table, [x], args.ci, args.csv, [f"{x}_outside", "unsolved"])
    if args.out:
        print(f"wrote {export(ds, args.out)}", file=sys.stderr)
    return 0


def _reasons() -> dict[int, str]:
    from bayes_scaling.analysis.timeline import SOLVE_STATUS

    return {c: why for c, why in SOLVE_STATUS.items() if c}
