"""``bayes-scaling stack``: several laws, one prediction (Bayesian stacking on leave-future-out scores)."""

from __future__ import annotations

import sys

from bayes_scaling.cli import cmdoptions

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "stack", help="weigh several laws by their leave-future-out log scores and mix their predictions",
        description="Fit each law on the runs below a cut of --order-by and score the next runs (log predictive "
                    "density of log(target)), at several cuts; weigh the laws by Bayesian stacking (or "
                    "pseudo-BMA+); fit each law on all runs; print the weights and, with --at, the stacked "
                    "predictions (each law's predictive draws mixed by weight).")
    p.add_argument("data", help="RUNS.csv: one row per run (every law's inputs, the target, --order-by)")
    p.add_argument("--model", dest="model", action="append", required=True, metavar="LAW",
                   help="a law: a built-in name (chinchilla, kaplan, data_constrained, m4, ...) or a .toml spec; "
                        "give it two or more times")
    p.add_argument("--order-by", default="C", metavar="COLUMN",
                   help="the column the runs are ordered by, the direction of extrapolation (default C)")
    p.add_argument("--cuts", type=cmdoptions.positive_int, default=3,
                   help="leave-future-out cuts: the largest runs (about --scored of them) scored in this many "
                        "blocks, each by fits on the runs below it (default 3)")
    p.add_argument("--scored", type=cmdoptions.probability, default=0.3, metavar="FRACTION",
                   help="fraction of the runs (the largest in --order-by) scored (default 0.3)")
    p.add_argument("--method", choices=["stacking", "pseudo-bma+", "pseudo-bma"], default="stacking",
                   help="weights: stacking (maximise the mixture's log score; default), pseudo-BMA+ (exp(elpd), "
                        "Bayesian bootstrap) or pseudo-BMA")
    p.add_argument("--at", default=None, metavar="POINTS.csv",
                   help="points to predict: a CSV with every law's input columns")
    p.add_argument("--kind", choices=["observation", "mean"], default="observation",
                   help="with --at: a new run (with the noise; default) or the law's value")
    p.add_argument("--out", default=None, metavar="PRED.csv", help="with --at: write the prediction table here")
    p.add_argument("--rhat-limit", type=float, default=1.01, metavar="R",
                   help="a fit converged if its R-hat <= R and it has no divergences (default 1.01); a fit that has "
                        "not is run again with safer settings, and a law that still has not is left out of the "
                        "weights (the table's excluded column)")
    p.add_argument("--keep-unconverged", action="store_true",
                   help="weigh a law even if one of its fits has not converged (still reported)")
    cmdoptions.ci(p, "predictive interval probability")
    cmdoptions.sampler(p, draws=500, tune=500, chains=2, what="of each fit")
    p.set_defaults(func=cmd_stack)


def cmd_stack(args) -> int:
    import pandas as pd

    from bayes_scaling.analysis.stacking import _check_runs, _specs, lfo_splits, stack
    from bayes_scaling.cli._output import emit
    from bayes_scaling.data.tables import read_table
    from bayes_scaling.errors import BayesScalingError

    if args.out is not None and args.at is None:
        raise BayesScalingError("--out writes the predictions: give --at POINTS.csv too")
    if args.out is not None:
        from bayes_scaling._atomic import check_output

        check_output(args.out, inputs=[args.data, args.at], suffixes=(".csv",), what="--out")
    specs = _specs(args.model)                        # bad input: one line before any fit
    table = read_table(args.data, args.data)
    _check_runs(table, specs)
    lfo_splits(table, args.order_by, args.cuts, scored=args.scored)
    points = read_table(args.at, args.at) if args.at is not None else None
    st = stack(table, list(specs.values()), order_by=args.order_by, cuts=args.cuts, scored=args.scored,
               method=args.method, seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains,
               backend=args.backend, rhat_limit=args.rhat_limit, exclude_unconverged=not args.keep_unconverged)
    t = st.table
    emit("weights", t, method=args.method, order_by=args.order_by, cuts=st.info["cuts"], backend=st.info["backend"])
    print(f"{args.method} weights from {len(st.points)} runs scored leave-future-out along {args.order_by} "
          f"(cuts at {', '.join(f'{c:.4g}' for c in st.info['cuts'])}); lpd_mean: mean log predictive density "
          f"of log({st.info['target']}) (the stack's row: in-sample for its weights); backend {st.info['backend']}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(t.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if points is None:
        return 0
    pred = st.predict(points, kind=args.kind, ci_prob=args.ci, seed=args.seed)
    emit("predictions", pred, kind=args.kind, ci_prob=args.ci, weights=st.weights.to_dict())
    what = "a new run (with the noise)" if args.kind == "observation" else "the law's value"
    if args.out:
        from bayes_scaling._atomic import atomic_path

        with atomic_path(args.out) as tmp:
            pred.to_csv(tmp, index=False)
        print(f"wrote {args.out}: {len(pred)} points; median, lo, hi of {st.info['target']} ({what}), "
              f"{100 * args.ci:g}% interval", file=sys.stderr)
    else:
        print(f"stacked predictions of {st.info['target']}: {what}; {100 * args.ci:g}% equal-tailed interval; "
              "median_<law>: each law's own median")
        print(pred.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0
