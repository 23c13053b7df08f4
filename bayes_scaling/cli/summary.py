"""``bayes-scaling summary``: the posterior summary of a saved fit."""

from __future__ import annotations

import sys

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import emit_fit, print_fit, print_spec_fit

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("summary", help="print the posterior summary of a saved fit")
    p.add_argument("fit", help="FIT.nc written by 'bayes-scaling fit'")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    cmdoptions.ci(p)
    p.set_defaults(func=cmd_summary)


def cmd_summary(args) -> int:
    from bayes_scaling.inference.fit import Fit, load
    from bayes_scaling.inference.sampling import TransferFit

    fit = load(args.fit)
    emit_fit(fit, args.ci)
    if args.csv:
        fit.summary(args.ci).to_csv(sys.stdout, index=False)
    elif isinstance(fit, TransferFit):
        print_fit(fit, args.ci)
    elif isinstance(fit, Fit):
        print(repr(fit))
        print_spec_fit(fit, args.ci)
    else:   # from-scratch and joint fits: their own summary table
        print(repr(fit), fit.summary(args.ci).to_string(index=False), sep="\n")
    return 0
