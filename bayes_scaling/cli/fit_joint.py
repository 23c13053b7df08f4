"""``bayes-scaling fit-joint``: from-scratch and fine-tuned losses fitted jointly (k, alpha, beta and the law)."""

from __future__ import annotations

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import check_out, emit_fit, format_big, sampler_kwargs

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("fit-joint", help="fit from-scratch and fine-tuned losses jointly (k, alpha, beta and the law)")
    p.add_argument("scratch", help="CSV of from-scratch runs: N, D, loss")
    p.add_argument("finetune", help="CSV of fine-tuned runs: pretraining, N, D_F, loss")
    p.add_argument("--law", choices=["chinchilla", "kaplan"], default="chinchilla", help="loss law (default chinchilla)")
    p.add_argument("--likelihood", choices=["normal", "student_t"], default="normal", help="noise of log loss")
    p.add_argument("--all-regimes", action="store_true",
                   help="also fit medium/high-data runs (default: low-data runs only, D_F <= 0.1 D(N))")
    p.add_argument("--out", required=True, help="output netCDF file (JOINT.nc)")
    cmdoptions.ci(p)
    cmdoptions.sampler(p)
    p.set_defaults(func=cmd_fit_joint)


def cmd_fit_joint(args) -> int:
    from bayes_scaling.inference.fitfile import FIT_SUFFIXES
    from bayes_scaling.inference.joint import _fit_joint as fit_joint

    check_out(args, args.scratch, args.finetune, suffixes=FIT_SUFFIXES)
    fit = fit_joint(args.scratch, args.finetune, law=args.law, likelihood=args.likelihood,
                    low_only=not args.all_regimes, **sampler_kwargs(args))
    path = fit.save(args.out)
    emit_fit(fit, args.ci, saved=str(path))
    print(f"{fit!r}")
    print(f"fine-tuned runs: {fit.data.n_used} used; {fit.data.exclusion_report()}; unit: {fit.data.unit}")
    print(f"NUTS back end: {fit.backend}, seed {fit.seed}; {fit.diagnostics}")
    print(format_big(fit.summary(args.ci), args.ci))
    print(f"saved {path}")
    return 0
