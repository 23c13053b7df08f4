"""``bayes-scaling fit-scratch``: a from-scratch loss law L(N, D) fitted to runs N, D, loss."""

from __future__ import annotations

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import check_out, emit_fit, format_big, sampler_kwargs

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("fit-scratch", help="fit a from-scratch loss law L(N, D) to runs N, D, loss",
                       description="Chinchilla: L = E + A/N**alpha_N + B/D**alpha_D; Kaplan: L = [(N_c/N)**"
                                   "(alpha_N/alpha_D) + D_c/D]**alpha_D. Likelihood on log loss.")
    p.add_argument("scratch", help="CSV of from-scratch runs: N, D, loss")
    p.add_argument("--law", choices=["chinchilla", "kaplan"], default="chinchilla", help="loss law (default chinchilla)")
    p.add_argument("--likelihood", choices=["normal", "student_t"], default="normal",
                   help="noise of log loss (default normal; student_t is robust to bad runs)")
    p.add_argument("--duplicates", choices=["error", "mean"], default="error",
                   help="repeated (N, D): error (default) or keep them as replicate runs")
    p.add_argument("--out", required=True, help="output netCDF file (SCRATCH.nc)")
    cmdoptions.ci(p)
    cmdoptions.sampler(p)
    p.set_defaults(func=cmd_fit_scratch)


def cmd_fit_scratch(args) -> int:
    from bayes_scaling.inference.fitfile import FIT_SUFFIXES
    from bayes_scaling.inference.scratch import _fit_scratch as fit_scratch

    check_out(args, args.scratch, suffixes=FIT_SUFFIXES)
    fit = fit_scratch(args.scratch, law=args.law, likelihood=args.likelihood, duplicates=args.duplicates,
                      **sampler_kwargs(args))
    path = fit.save(args.out)
    emit_fit(fit, args.ci, saved=str(path))
    print(f"{fit!r}")
    print(f"NUTS back end: {fit.backend}, seed {fit.seed}; {fit.diagnostics}")
    print(format_big(fit.summary(args.ci), args.ci))
    print(f"saved {path}")
    return 0
