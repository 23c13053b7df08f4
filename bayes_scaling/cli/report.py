"""``bayes-scaling report FIT.nc --out DIR``: figures (PNG), tables (CSV) and a self-contained HTML page."""

from __future__ import annotations

from bayes_scaling.cli import cmdoptions

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="write figures, tables and an HTML report of a saved fit",
        description="Figures as PNG, tables as CSV and report.html (figures embedded) with the posterior summary, "
                    "the sampler and its diagnostics, posterior predictive checks, LOO-PIT and PSIS-LOO, "
                    "contrasts between groups and a PSIS-LOO comparison of alternatives refitted from the data "
                    "stored in the fit (--no-compare skips it): for a law-spec fit, the law with one parameter's "
                    "sharing changed at a time; for a transfer fit, its model variants (with its excluded runs "
                    "and a prior predictive check).")
    p.add_argument("fit", help="FIT.nc written by 'bayes-scaling fit' (any law spec or the transfer model)")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--no-compare", dest="compare", action="store_false",
                   help="skip the comparison (no refits; faster)")
    p.add_argument("--sharing", action="append", metavar="PARAMETER", default=None,
                   help="law-spec fits: compare the sharing of this parameter (repeat for several; default: "
                        "every parameter that varies by a group, and every shared one when the spec has one group "
                        "column)")
    cmdoptions.seed(p, "of the refits and predictive checks")
    cmdoptions.sampler(p, draws=500, tune=500, chains=2, backend=None, what="of the refits", with_seed=False)
    cmdoptions.ci(p)
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    from pathlib import Path

    from bayes_scaling.cli._plan import input_files, staged_folder
    from bayes_scaling.output.report import write_report

    # every file into a temporary folder first (the refits come after the first tables): an interrupt or an
    # error leaves --out as it was (cli/_plan.py)
    with staged_folder(args.out, input_files(args)) as stage:
        written = write_report(args.fit, stage, compare=args.compare, seed=args.seed, draws=args.draws,
                               tune=args.tune, chains=args.chains, backend=args.backend, ci_prob=args.ci,
                               sharing=args.sharing)
        files = sorted(p.name for p in stage.iterdir() if p.suffix in (".png", ".csv", ".html"))
    out = Path(args.out)
    print(f"wrote {out / written.name} and {', '.join(f for f in files if f != written.name)} in {out}")
    return 0
