"""``bayes-scaling effective-data``: effective data D_E (and D_T, regime, flags) of fine-tuned runs, from raw losses."""

from __future__ import annotations

import sys

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import check_out, sampler_kwargs

__all__ = ["register"]


def register(sub) -> None:
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
    cmdoptions.ci(p, "interval of D_E for --method law")
    p.add_argument("--all-regimes", action="store_true",
                   help="do not mark medium/high-data runs as excluded (default: marked, so 'bayes-scaling fit' "
                        "uses the low-data runs, D_F <= 0.1 D(N), and reports the others)")
    p.add_argument("--out", required=True, help="output CSV (TRANSFER.csv)")
    cmdoptions.sampler(p)
    p.set_defaults(func=cmd_effective)


def cmd_effective(args) -> int:
    import pandas as pd

    from bayes_scaling.analysis.effective import effective_data
    from bayes_scaling.inference.scratch import load_scratch_fit

    check_out(args, args.scratch, args.finetune, args.scratch_fit, suffixes=(".csv",))
    fit = load_scratch_fit(args.scratch_fit) if args.scratch_fit else None
    if fit is None:
        print(f"fitting the {args.law} law to {args.scratch} for the regimes (seed {args.seed}) ...", file=sys.stderr)
    eff = effective_data(args.scratch, args.finetune, method=args.method, scratch_fit=fit, law=args.law,
                         ci_prob=args.ci, duplicates=args.duplicates, seed=args.seed,
                         fit_kwargs={k: v for k, v in sampler_kwargs(args).items() if k != "seed"})
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
