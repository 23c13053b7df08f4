"""``bayes-scaling backtest``: fit a law on part of the runs, score its predictions of the held-out runs."""

from __future__ import annotations

from pathlib import Path

from bayes_scaling.cli import cmdoptions

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "backtest", help="hold out runs (a condition or a rolling split), fit the rest, score the predictions",
        description="Fit the law on the runs not held out, predict the held-out runs and score them: relative "
                    "error of the median, coverage and width of the 50/80/90/95%% predictive intervals, log "
                    "predictive density and CRPS; point-fit baselines (least squares on the log target, Epoch "
                    "AI's Huber fit) in the same run. Writes backtest_summary.csv, backtest_points.csv, "
                    "backtest.nc and calibration.png into --out.")
    p.add_argument("data", help="DATA.csv: one row per run (the law's inputs, target, group columns)")
    p.add_argument("--model", default="chinchilla", help="law spec: a .toml file or a built-in name "
                   "(default chinchilla)")
    p.add_argument("--holdout", required=True,
                   help="held-out runs: a condition such as 'C > 9e19', 'N >= 1e9', '(N > 1e9) & (D > 1e11)', or "
                        "'rolling:COLUMN' (each of the largest values of COLUMN left out in turn)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--rolling-steps", type=cmdoptions.positive_int, default=3, help="rolling splits: how many of the "
                   "largest values to leave out in turn (default 3)")
    p.add_argument("--discrepancy", choices=["nested", "none"], default="nested",
                   help="also score predictions widened by a discrepancy calibrated by nested backtests inside "
                        "the training runs (default nested)")
    p.add_argument("--tau", type=cmdoptions.tau, default=None, metavar="TAU",
                   help="also score the predictions widened by a discrepancy of TAU per order of magnitude outside "
                        "the data (e.g. a tau pooled over other data sets' backtests; method "
                        "'bayes+discrepancy(tau)')")
    cmdoptions.sampler(p, draws=500, tune=500, chains=2, what="of each fit")
    cmdoptions.cluster(p, "splits", workers=1)
    p.set_defaults(func=cmd_backtest)


def cmd_backtest(args) -> int:
    import pandas as pd

    from bayes_scaling.analysis.backtest import backtest, make_splits, parse_holdout
    from bayes_scaling.data.tables import read_table
    from bayes_scaling.inference.fit import _as_spec

    out = Path(args.out)   # checked before this command started (cli/_plan.py)
    spec = _as_spec(args.model)
    table = read_table(args.data, "data")
    h = parse_holdout(args.holdout)
    make_splits(table, h, rolling_steps=args.rolling_steps)          # bad input: one line before any fit
    res = backtest(table, spec, h.text, seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains,
                   backend=args.backend, discrepancy=args.discrepancy, rolling_steps=args.rolling_steps,
                   workers=args.workers, client=args.scheduler, progress=None)
    if args.tau is not None:
        res = res.rescore(args.tau, "bayes+discrepancy(tau)", seed=args.seed)
    from bayes_scaling._atomic import atomic_path
    from bayes_scaling.cli._plan import input_files, staged_folder

    with staged_folder(out, input_files(args)) as stage:   # all four files or none (cli/_plan.py)
        res.to_csv(stage)
        res.to_netcdf(stage / "backtest.nc")
        fig = res.plot_calibration()
        with atomic_path(stage / "calibration.png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    from bayes_scaling.cli._output import emit

    emit("backtest", res.table, backend=res.info.get("backend"), out=str(out))
    cols = ["split", "method", "n_test", "median_rel_error", "coverage50", "coverage90", "coverage95",
            "width90", "lpd", "crps", "rhat_max", "ess_bulk_min", "divergences"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(res.table[[c for c in cols if c in res.table.columns]].to_string(index=False, float_format="%.4g"))
    print(f"backend: {res.info['backend']}; wrote {out}/backtest_summary.csv, backtest_points.csv, backtest.nc, "
          "calibration.png")
    return 0
