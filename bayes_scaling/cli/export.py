"""``bayes-scaling export``: posterior draws of k, alpha, beta, sigma for forecasting models."""

from __future__ import annotations

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import check_draws_out, pretraining_names

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("export", help="write posterior draws of k, alpha, beta, sigma for forecasting models")
    p.add_argument("fit", help="FIT.nc written by 'bayes-scaling fit'")
    p.add_argument("--format", choices=["csv", "parquet", "netcdf"], default=None,
                   help="file format (default: from the suffix of --out)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--layout", choices=["long", "wide"], default="long",
                   help="table layout for csv/parquet (default long: chain, draw, pretraining, quantity, value)")
    p.add_argument("--pretraining", nargs="+", default=None, metavar="P",
                   help="distribution(s) (default all); 'new' adds a new one drawn from the hierarchy")
    cmdoptions.seed(p, "of the new distribution ('new')")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from bayes_scaling.inference.sampling import load_fit
    from bayes_scaling.output.exports import export, fit_draws

    pretraining_names(args)
    check_draws_out(args)
    fit = load_fit(args.fit)
    path = export(fit_draws(fit, pretraining=pretraining_names(args, fit), seed=args.seed), args.out, format=args.format,
                  layout=args.layout)
    print(f"wrote {path}")
    return 0
