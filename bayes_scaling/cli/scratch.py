"""``bayes-scaling fit-scratch``, ``effective-data`` and ``fit-joint``: from raw losses to transfer."""

from __future__ import annotations

import sys

from bayes_scaling.cli.transfer import add_sampler_args, check_out, format_summary, probability

BIG = {"k", "A", "B", "N_c", "D_c"}


def _format(df, ci_prob: float) -> str:
    """:func:`format_summary`, with 3 significant digits for the large parameters (k, A, B, N_c, D_c)."""
    names = [str(p) for p in df["parameter"]]
    out = format_summary(df.assign(parameter=["k" if p in BIG else p for p in names]), ci_prob)
    lines = out.splitlines()
    head, rows = lines[0], lines[1:]
    col = head.index("parameter") + len("parameter")
    width = max(col, *(len(n) for n in names))
    fixed = [" " * (width - col) + head] + [n.rjust(width) + row[col:] for n, row in zip(names, rows, strict=True)]
    return "\n".join(fixed)


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
    p.add_argument("--ci", type=probability, default=0.95, help="credible interval probability (default 0.95)")
    add_sampler_args(p)
    p.set_defaults(func=cmd_fit_scratch)

    p = sub.add_parser("effective-data", help="effective data D_E (and D_T, regime, flags) of fine-tuned runs",
                       description="Writes the input table of 'bayes-scaling fit' (pretraining, N, D_F, D_E, D_T, "
                                   "regime, flags, excluded, exclusion_reason). The regimes need a loss law: "
                                   "--scratch-fit, or one is fitted here (--law, sampler options).")
    p.add_argument("scratch", help="CSV of from-scratch runs: N, D, loss")
    p.add_argument("finetune", help="CSV of fine-tuned runs: pretraining, N, D_F, loss")
    p.add_argument("--method", choices=["interpolate", "law"], default="interpolate",
                   help="interpolate the measured curve of the same N (default, the paper's) or invert the law")
    p.add_argument("--scratch-fit", default=None, help="SCRATCH.nc from 'bayes-scaling fit-scratch'")
    p.add_argument("--law", choices=["chinchilla", "kaplan"], default="chinchilla",
                   help="law fitted when --scratch-fit is not given (default chinchilla)")
    p.add_argument("--duplicates", choices=["error", "mean"], default="error",
                   help="repeated (N, D) in the from-scratch runs: error (default) or average them")
    p.add_argument("--ci", type=probability, default=0.94, help="interval of D_E for --method law (default 0.94)")
    p.add_argument("--all-regimes", action="store_true",
                   help="do not mark medium/high-data runs as excluded (default: marked, so 'bayes-scaling fit' "
                        "uses the low-data runs, D_F <= 0.1 D(N), and reports the others)")
    p.add_argument("--out", required=True, help="output CSV (TRANSFER.csv)")
    add_sampler_args(p)
    p.set_defaults(func=cmd_effective)

    p = sub.add_parser("fit-joint", help="fit from-scratch and fine-tuned losses jointly (k, alpha, beta and the law)")
    p.add_argument("scratch", help="CSV of from-scratch runs: N, D, loss")
    p.add_argument("finetune", help="CSV of fine-tuned runs: pretraining, N, D_F, loss")
    p.add_argument("--law", choices=["chinchilla", "kaplan"], default="chinchilla", help="loss law (default chinchilla)")
    p.add_argument("--likelihood", choices=["normal", "student_t"], default="normal", help="noise of log loss")
    p.add_argument("--all-regimes", action="store_true",
                   help="also fit medium/high-data runs (default: low-data runs only, D_F <= 0.1 D(N))")
    p.add_argument("--out", required=True, help="output netCDF file (JOINT.nc)")
    p.add_argument("--ci", type=probability, default=0.94, help="credible interval probability (default 0.94)")
    add_sampler_args(p)
    p.set_defaults(func=cmd_fit_joint)


def _sampler(args) -> dict:
    return {"seed": args.seed, "draws": args.draws, "tune": args.tune, "chains": args.chains,
            "backend": args.backend}


def cmd_fit_scratch(args) -> int:
    from bayes_scaling.inference.fitfile import FIT_SUFFIXES
    from bayes_scaling.models.losslaws import fit_scratch

    check_out(args, args.scratch, suffixes=FIT_SUFFIXES)
    fit = fit_scratch(args.scratch, law=args.law, likelihood=args.likelihood, duplicates=args.duplicates,
                      **_sampler(args))
    path = fit.save(args.out)
    from bayes_scaling.cli.transfer import _emit_fit

    _emit_fit(fit, args.ci, saved=str(path))
    print(f"{fit!r}")
    print(f"NUTS back end: {fit.backend}, seed {fit.seed}; {fit.diagnostics}")
    print(_format(fit.summary(args.ci), args.ci))
    print(f"saved {path}")
    return 0


def cmd_effective(args) -> int:
    import pandas as pd

    from bayes_scaling.analysis.effective import effective_data
    from bayes_scaling.models.losslaws import load_scratch_fit

    check_out(args, args.scratch, args.finetune, args.scratch_fit, suffixes=(".csv",))
    fit = load_scratch_fit(args.scratch_fit) if args.scratch_fit else None
    if fit is None:
        print(f"fitting the {args.law} law to {args.scratch} for the regimes (seed {args.seed}) ...", file=sys.stderr)
    eff = effective_data(args.scratch, args.finetune, method=args.method, scratch_fit=fit, law=args.law,
                         ci_prob=args.ci, duplicates=args.duplicates, seed=args.seed,
                         fit_kwargs={k: v for k, v in _sampler(args).items() if k != "seed"})
    eff.to_csv(args.out, low_only=not args.all_regimes)
    t = eff.table
    print(f"{eff!r}")
    print("regimes (D(N) = data to get within 1% of the infinite-data loss; low: D_F <= 0.1 D(N)): "
          + ", ".join(f"{k} {v}" for k, v in t["regime"].value_counts().items()))
    oss = eff.ossified()
    from bayes_scaling.cli._output import emit

    emit("runs", t.reset_index(), out=str(args.out))
    emit("ossified", oss, regimes=t["regime"].value_counts().to_dict())
    with pd.option_context("display.width", 200):
        print("ossified runs (D_T <= 0) per model size:")
        print(oss.to_string(index=False))
    n_oor = int((t["out_of_range"] != "").sum())
    if n_oor:
        print(f"{n_oor} run(s) out of range (excluded; see columns out_of_range, flags)")
    print(f"wrote {args.out}: the input of 'bayes-scaling fit'"
          + ("" if args.all_regimes else " (medium/high-data runs marked excluded, with the reason)"))
    return 0


def cmd_fit_joint(args) -> int:
    from bayes_scaling.inference.fitfile import FIT_SUFFIXES
    from bayes_scaling.models.joint import fit_joint

    check_out(args, args.scratch, args.finetune, suffixes=FIT_SUFFIXES)
    fit = fit_joint(args.scratch, args.finetune, law=args.law, likelihood=args.likelihood,
                    low_only=not args.all_regimes, **_sampler(args))
    path = fit.save(args.out)
    from bayes_scaling.cli.transfer import _emit_fit

    _emit_fit(fit, args.ci, saved=str(path))
    print(f"{fit!r}")
    print(f"fine-tuned runs: {fit.data.n_used} used; {fit.data.exclusion_report()}; unit: {fit.data.unit}")
    print(f"NUTS back end: {fit.backend}, seed {fit.seed}; {fit.diagnostics}")
    print(_format(fit.summary(args.ci), args.ci))
    print(f"saved {path}")
    return 0
