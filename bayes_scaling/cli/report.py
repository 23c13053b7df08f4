"""``bayes-scaling report FIT.nc --out DIR``: figures (PNG), tables (CSV) and a self-contained HTML page."""

from __future__ import annotations

from bayes_scaling.cli.transfer import positive_int, probability

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="write figures, tables and an HTML report of a saved fit",
        description="Figures as PNG, tables as CSV and report.html (figures embedded) with the posterior summary, "
                    "the sampler and its diagnostics, the excluded runs, posterior and prior predictive checks, "
                    "contrasts between pre-training distributions and a PSIS-LOO comparison of the model "
                    "variants (refitted from the data stored in the fit; --no-compare skips it).")
    p.add_argument("fit", help="FIT.nc written by 'bayes-scaling fit'")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--no-compare", dest="compare", action="store_false",
                   help="skip the variant comparison (no refits; faster)")
    p.add_argument("--seed", type=int, default=1, help="seed of the refits and predictive checks (default 1)")
    p.add_argument("--draws", type=positive_int, default=500, help="draws per chain of the refits (default 500)")
    p.add_argument("--tune", type=positive_int, default=500, help="tuning steps of the refits (default 500)")
    p.add_argument("--chains", type=positive_int, default=2, help="chains of the refits (default 2)")
    p.add_argument("--backend", default=None, choices=["auto", "pymc", "nutpie", "numpyro"],
                   help="NUTS back end of the refits (default: the fit's)")
    p.add_argument("--ci", type=probability, default=0.94, help="credible interval probability (default 0.94)")
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
                               tune=args.tune, chains=args.chains, backend=args.backend, ci_prob=args.ci)
        files = sorted(p.name for p in stage.iterdir() if p.suffix in (".png", ".csv", ".html"))
    out = Path(args.out)
    print(f"wrote {out / written.name} and {', '.join(f for f in files if f != written.name)} in {out}")
    return 0
