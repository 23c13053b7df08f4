"""``bayes-scaling best FIT.nc --at POINT.csv``: which group (pre-trained model, pre-training distribution,
corpus) is best at a stated point, as posterior probabilities, with the distance outside the data."""

from __future__ import annotations

from bayes_scaling.cli import cmdoptions

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("best", help="posterior probability that each group is best at a point",
                       description="For every point of POINT.csv (the law's input columns), the posterior "
                                   "probability that each group of the fit's group column gives the lowest "
                                   "target (--higher-is-better: the highest), its median and interval, and how "
                                   "many orders of magnitude the point lies outside the data (all runs, and the "
                                   "group's own runs).")
    p.add_argument("fit", help="FIT.nc written by 'bayes-scaling fit' (a law spec with a group column, or a "
                   "transfer fit)")
    p.add_argument("--at", required=True, metavar="POINT.csv", help="point(s): a CSV of the law's input columns")
    p.add_argument("--group", default=None, help="group column to compare (default: the law's only one)")
    p.add_argument("--higher-is-better", action="store_true",
                   help="the best group has the highest target (e.g. effective data D_T); default: lowest")
    p.add_argument("--noise", action="store_true",
                   help="compare new runs (observation noise included) instead of the law's values")
    cmdoptions.ci(p, "interval probability")
    p.add_argument("--tau", type=cmdoptions.tau, default=None, metavar="TAU",
                   help="the law's discrepancy per decade outside the data, in the intervals and p_best_discrepancy "
                        "(default: the law spec's, 0.059 unless it says otherwise; 0: none)")
    cmdoptions.seed(p)
    p.add_argument("--out", default=None, help="write the table as CSV")
    p.set_defaults(func=cmd_best)


def cmd_best(args) -> int:
    from bayes_scaling.analysis.best import best_group
    from bayes_scaling.data.tables import read_table
    from bayes_scaling.inference.fit import load

    if args.out is not None:
        from bayes_scaling._atomic import check_output

        check_output(args.out, inputs=(args.fit, args.at), suffixes=(".csv",), what="--out")
    fit = load(args.fit)
    points = read_table(args.at, args.at)
    table = best_group(fit, points, group=args.group, lower_is_better=not args.higher_is_better,
                       kind="observation" if args.noise else "mean", ci_prob=args.ci, seed=args.seed,
                       discrepancy=args.tau)
    a = table.attrs
    from bayes_scaling.cli._output import emit

    emit("best", table, **{k: v for k, v in a.items() if isinstance(v, str | bool | int | float)})
    print(f"best {a['group']} = {'lowest' if a['lower_is_better'] else 'highest'} {a['target']} "
          f"({'a new run' if args.noise else 'the law'}); p_best = posterior probability under the law "
          "(p_best_discrepancy: each group with its own discrepancy outside the data); "
          f"{100 * args.ci:g}% interval; outside = orders of magnitude outside the data (all runs / the group's)")
    if args.out is not None:
        from bayes_scaling._atomic import atomic_path

        with atomic_path(args.out) as tmp:
            table.to_csv(tmp, index=False)
        print(f"wrote {args.out}: {len(table)} rows")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0
