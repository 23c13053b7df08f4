"""``bayes-scaling fit``, ``summary`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from bayes_scaling.errors import BayesScalingError

__all__ = ["register", "format_summary"]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        try:  # 1e5 is fine when it is a whole number
            number = float(text)
            value = int(number) if number.is_integer() else None
        except (ValueError, OverflowError):
            value = None
        if value is None:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a probability in (0, 1), got {text!r}")
    return value


def add_sampler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1): same seed, same draws")
    p.add_argument("--draws", type=positive_int, default=1000, help="draws per chain (default 1000)")
    p.add_argument("--tune", type=positive_int, default=1000, help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=positive_int, default=4, help="chains (default 4)")
    p.add_argument("--backend", default="auto", choices=["auto", "pymc", "nutpie", "numpyro"],
                   help="NUTS back end (default auto: nutpie when installed, else pymc; the one that ran is "
                        "printed)")


def add_log_likelihood_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-log-likelihood", dest="log_likelihood", action="store_false",
                   help="leave the pointwise log-likelihood out of the fit file (chains x draws x runs values: "
                        "for very large tables; LOO recomputes it when needed)")


def check_out(args, *inputs, suffixes=None, attr: str = "out"):
    """Check ``--out`` before the long work starts (folder, suffix, not an input); see _atomic.check_output."""
    from bayes_scaling._atomic import check_output

    value = getattr(args, attr)
    return None if value is None else check_output(value, inputs=inputs, suffixes=suffixes,
                                                   what=f"--{attr.replace('_', '-')}")


def check_out_dir(path) -> Path:
    """An output folder: not a file, and writable (see cli/_plan.check_folder)."""
    from bayes_scaling.cli._plan import check_folder

    return check_folder(path)


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit the hierarchical transfer law to a table of fine-tuned runs",
                       description="Columns: pretraining, N, D_F and D_T (or D_E). Rows with D_T <= 0 are "
                                   "excluded with a report.")
    p.add_argument("data", help="CSV file of fine-tuned runs")
    p.add_argument("--out", required=True, help="output netCDF file (FIT.nc)")
    add_sampler_args(p)
    p.add_argument("--likelihood", choices=["normal", "student_t"], default=None,
                   help="noise model of log D_T (default: the model file's, normal)")
    p.add_argument("--model", default=None, help="a built-in law's name (chinchilla, kaplan, m4, transfer, ...) or a TOML file: a law "
                   "spec (any law; see models/laws/) or the transfer model's priors and likelihood "
                   "(models/transfer.toml)")
    p.add_argument("--unit", default=None, help="unit of data (tokens, characters, ...; default: column "
                   "'unit' or tokens)")
    p.add_argument("--ci", type=probability, default=0.94, help="credible interval probability (default 0.94)")
    add_log_likelihood_arg(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("summary", help="print the posterior summary of a saved fit")
    p.add_argument("fit", help="FIT.nc written by 'bayes-scaling fit'")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.add_argument("--ci", type=probability, default=0.94, help="credible interval probability (default 0.94)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("demo", help="fit the bundled (synthetic) data set; write summary, fit and plot; then "
                       "the whole path from the bundled raw losses")
    p.add_argument("--out", default="demo-output", help="output directory (default demo-output)")
    p.add_argument("--skip-losses", action="store_true", help="skip the raw-loss part (loss law -> D_E -> fit)")
    p.add_argument("--skip-published", action="store_true",
                   help="skip the real-data part (choosing a model to fine-tune, Lin et al. 2024)")
    add_sampler_args(p)
    p.set_defaults(func=cmd_demo)


def format_summary(df: pd.DataFrame, ci_prob: float) -> str:
    """A human table: mean, sd, the equal-tailed interval, ESS, R-hat."""
    pct = f"{100 * ci_prob:g}"
    lo, hi = f"eti{pct}_lb", f"eti{pct}_ub"
    rows = []
    for _, r in df.iterrows():
        big = r["parameter"] == "k"
        fmt = (lambda v: f"{v:.3g}") if big else (lambda v: f"{v:.4f}")
        rows.append({"parameter": r["parameter"], "pretraining": r["pretraining"], "mean": fmt(r["mean"]),
                     "sd": fmt(r["sd"]), f"{pct}% ETI": f"[{fmt(r[lo])}, {fmt(r[hi])}]",
                     "ess_bulk": f"{r['ess_bulk']:.0f}", "ess_tail": f"{r['ess_tail']:.0f}",
                     "r_hat": f"{r['r_hat']:.3f}"})
    return pd.DataFrame(rows).to_string(index=False)


def _print_fit(fit, ci_prob: float, out=None) -> None:
    from bayes_scaling.models.transfer import parameter_names

    out = out or sys.stdout
    names = [n for n in parameter_names(fit.config) if n != "log_k"]
    print(f"{fit!r}", file=out)
    print(f"data: {fit.data.source} ({fit.data.n_used} runs used; {fit.data.exclusion_report()}; "
          f"unit: {fit.data.unit})", file=out)
    print(f"NUTS back end: {fit.backend}, seed {fit.seed}; {fit.diagnostics}", file=out)
    if fit.parameterization:
        print("parameterization (chosen from the data): "
              + ", ".join(f"{k} {v}" for k, v in fit.parameterization.items()), file=out)
    print(format_summary(fit.summary(ci_prob, var_names=names), ci_prob), file=out)


def _load_config(args):
    from bayes_scaling.models.transfer import ModelConfig

    config = ModelConfig.from_toml(args.model) if getattr(args, "model", None) else ModelConfig()
    if getattr(args, "likelihood", None):
        config = ModelConfig(likelihood=args.likelihood, variant=config.variant,
                             parameterization=config.parameterization, priors=config.priors)
    return config


def cmd_fit(args) -> int:
    from bayes_scaling.data.tables import TransferData
    from bayes_scaling.inference.fit import is_law_spec
    from bayes_scaling.inference.fitfile import FIT_SUFFIXES
    from bayes_scaling.inference.sampling import fit_transfer, resolve_backend
    from bayes_scaling.laws.spec import builtin_names

    builtin = bool(args.model) and not Path(args.model).exists() and args.model in builtin_names()
    check_out(args, args.data, None if builtin else args.model, suffixes=FIT_SUFFIXES)
    if builtin or (args.model and is_law_spec(args.model)):
        return _fit_spec(args)
    config = _load_config(args)
    data = TransferData.from_csv(args.data, unit=args.unit)
    print(f"sampling {args.chains} chains x {args.draws} draws ({args.tune} tuning) with "
          f"{resolve_backend(args.backend)}; Ctrl-C stops without saving", flush=True)
    fit = fit_transfer(data, config=config, seed=args.seed, draws=args.draws, tune=args.tune,
                       chains=args.chains, backend=args.backend, log_likelihood=args.log_likelihood)
    path = fit.save(args.out)
    _print_fit(fit, args.ci)
    _emit_fit(fit, args.ci, saved=str(path))
    print(f"saved {path}")
    return 0


def _fit_spec(args) -> int:
    """``fit DATA.csv --model SPEC.toml``: any law spec."""
    from bayes_scaling.inference.fit import fit as fit_spec
    from bayes_scaling.inference.sampling import resolve_backend
    from bayes_scaling.laws.spec import builtin_spec

    spec = builtin_spec(args.model)     # a built-in name or a spec file
    if args.likelihood:
        spec.family = args.likelihood
    if args.unit:
        raise BayesScalingError("--unit applies to the transfer model's table; a law spec takes its columns as they are")
    print(f"{spec!r}\nsampling {args.chains} chains x {args.draws} draws ({args.tune} tuning) with "
          f"{resolve_backend(args.backend)}; Ctrl-C stops without saving", flush=True)
    fit = fit_spec(args.data, spec, seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains,
                   backend=args.backend, log_likelihood=args.log_likelihood)
    path = fit.save(args.out)
    _print_spec_fit(fit, args.ci)
    _emit_fit(fit, args.ci, saved=str(path))
    print(f"saved {path}")
    return 0


def _print_spec_fit(fit, ci_prob: float, out=None) -> None:
    out = out or sys.stdout
    print(f"{len(fit.data)} rows; NUTS back end: {fit.backend}, seed {fit.seed}; {fit.diagnostics}", file=out)
    if fit.parameterization:
        print("parameterization (chosen from the data): "
              + ", ".join(f"{k} {v}" for k, v in fit.parameterization.items()), file=out)
    df = fit.summary(ci_prob)
    pct = f"{100 * ci_prob:g}"
    fmt = lambda v: f"{v:.4g}"  # noqa: E731
    rows = [{"parameter": r["parameter"], "group": f"{r['by']}={r['group']}" if r["by"] else "",
             "mean": fmt(r["mean"]), "sd": fmt(r["sd"]),
             f"{pct}% ETI": f"[{fmt(r[f'eti{pct}_lb'])}, {fmt(r[f'eti{pct}_ub'])}]",
             "ess_bulk": f"{r['ess_bulk']:.0f}", "r_hat": f"{r['r_hat']:.3f}"} for _, r in df.iterrows()]
    print(pd.DataFrame(rows).to_string(index=False), file=out)


def _emit_fit(fit, ci_prob: float, **info) -> None:
    """``--json``: the posterior summary table and the fit's facts (cli/_output.py)."""
    from bayes_scaling.cli._output import active, emit

    if not active():
        return
    emit("summary", fit.summary(ci_prob), ci_prob=ci_prob, backend=getattr(fit, "backend", None),
         seed=getattr(fit, "seed", None), diagnostics=str(getattr(fit, "diagnostics", "")), **info)


def cmd_summary(args) -> int:
    from bayes_scaling.inference.fit import Fit, load
    from bayes_scaling.inference.sampling import TransferFit

    fit = load(args.fit)
    _emit_fit(fit, args.ci)
    if args.csv:
        fit.summary(args.ci).to_csv(sys.stdout, index=False)
    elif isinstance(fit, Fit):
        print(repr(fit))
        _print_spec_fit(fit, args.ci)
    elif isinstance(fit, TransferFit):
        _print_fit(fit, args.ci)
    else:   # from-scratch and joint fits: their own summary table
        print(repr(fit), fit.summary(args.ci).to_string(index=False), sep="\n")
    return 0


def cmd_demo(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from bayes_scaling.cli._plan import staged_folder

    final = Path(args.out)
    # every file into a temporary folder next to --out, moved there at the end (cli/_plan.py)
    with staged_folder(final) as out:
        _demo(args, out, final)
    return 0


def _demo(args, out: Path, final: Path) -> None:
    """The demo's steps, writing into ``out`` (the staging folder of ``final``)."""
    from bayes_scaling._atomic import atomic_path, atomic_write
    from bayes_scaling.data.datasets import EXAMPLE_CSV, example_metadata
    from bayes_scaling.inference.sampling import fit_transfer
    from bayes_scaling.output.plots import plot_transfer

    meta = example_metadata()
    print(f"bundled data: {EXAMPLE_CSV.name}. {meta['description']}")
    from bayes_scaling.data.tables import TransferData

    data = TransferData.from_csv(EXAMPLE_CSV)
    fit = fit_transfer(data, seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains,
                       backend=args.backend)
    fit.save(out / "fit.nc")
    _print_fit(fit, 0.94)
    with atomic_path(out / "summary.csv") as tmp:
        fit.summary(0.94).to_csv(tmp, index=False)
    with atomic_write(out / "summary.txt") as fh:
        print("SYNTHETIC data (bayes_scaling.data.simulate); truth: "
              + ", ".join(f"{p}: k={t['k']:.3g}, alpha={t['alpha']}, beta={t['beta']}"
                          for p, t in meta["truth"].items()), file=fh)
        _print_fit(fit, 0.94, out=fh)
    fig = plot_transfer(fit)
    fig.suptitle("SYNTHETIC bundled data: D_T against D_F with 94% posterior bands", fontsize=10)
    fig.tight_layout()
    with atomic_path(out / "transfer.png") as tmp:
        fig.savefig(tmp, dpi=120)
    print(f"wrote {final / 'fit.nc'}, {final / 'summary.csv'}, {final / 'summary.txt'}, {final / 'transfer.png'}")
    if not args.skip_losses:
        _demo_from_losses(args, out, final)
    if not args.skip_published:
        _demo_published(args, out, final)


#: The demo's candidates: six of Lin et al.'s 30 models (the best at full data, OPT-1.3B, among them).
DEMO_LIN_MODELS = ["facebook/opt-1.3b", "t5-base", "MBZUAI/LaMini-GPT-1.5B", "gpt2-xl", "microsoft/phi-1_5",
                   "cerebras/Cerebras-GPT-1.3B"]
#: The real-data step's sampler, whatever --draws/--tune/--chains (those size the synthetic steps): enough for
#: R-hat <= 1.01 and bulk ESS >= 400 (seed 1: R-hat 1.003, ESS 919, no divergence; ~10 s of CPU in all).
DEMO_LIN_SAMPLER = {"draws": 1500, "tune": 600, "chains": 4}


def _demo_published(args, out: Path, final: Path) -> None:
    """REAL bundled data (Lin et al. 2024, FLAN): choose a model to fine-tune from runs on at most 1/8 of the
    full set; P(best) and the predicted full-data loss per model, beside the actual losses."""
    from bayes_scaling._atomic import atomic_path
    from bayes_scaling.analysis.selection import select_model, selection_spec
    from bayes_scaling.data.datasets import load_lin
    from bayes_scaling.output.selection_plots import plot_selection

    runs = load_lin("flan")
    runs = runs[runs["model"].isin(DEMO_LIN_MODELS)]
    print("\nREAL data (bundled, Lin et al. 2024, Apache-2.0): FLAN, 6 of 30 models; fitted on runs with at most "
          "204,800 examples (1/8), predicted at 1,638,400")
    # D_ref 6,400: the centre of 200 ... 204,800; f non-centred converges on these six models (not on all 30)
    spec = selection_spec(6400, f_parameterization="non_centred")
    sel = select_model(runs, ratio=8, model=spec, seed=args.seed, backend=args.backend, warn=False,
                       **DEMO_LIN_SAMPLER)
    print(sel.table.to_string(index=False))
    print(sel.diagnostics)
    print(f"selected {sel.selected}; actual best {sel.metrics['actual_best']}; Pearson r "
          f"{sel.metrics['pearson']:.3f}, relative accuracy {sel.metrics['relative_accuracy']:.3f}")
    with atomic_path(out / "selection_lin_flan.csv") as tmp:
        sel.table.to_csv(tmp, index=False)
    fig = plot_selection(sel)
    fig.suptitle("REAL data (Lin et al. 2024, FLAN): which model to fine-tune, from runs on 1/8 of the data",
                 fontsize=10)
    fig.tight_layout()
    with atomic_path(out / "selection_lin_flan.png") as tmp:
        fig.savefig(tmp, dpi=120)
    print(f"wrote {final / 'selection_lin_flan.csv'}, {final / 'selection_lin_flan.png'}")


def _demo_from_losses(args, out: Path, final: Path) -> None:
    """The whole path from raw losses: from-scratch law -> effective data (interpolation) -> low-data fit."""
    from bayes_scaling.analysis.effective import effective_data
    from bayes_scaling.data.datasets import FINETUNE_LOSSES_CSV, SCRATCH_LOSSES_CSV, losses_metadata
    from bayes_scaling.inference.sampling import fit_transfer
    from bayes_scaling.models.losslaws import fit_scratch, read_scratch

    meta = losses_metadata()
    print(f"\nfrom raw losses: {SCRATCH_LOSSES_CSV.name} + {FINETUNE_LOSSES_CSV.name}. {meta['description']}")
    sampler = dict(seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains, backend=args.backend)
    scratch = fit_scratch(read_scratch(SCRATCH_LOSSES_CSV), law=meta["law"], **sampler)
    scratch.save(out / "scratch_fit.nc")
    eff = effective_data(SCRATCH_LOSSES_CSV, FINETUNE_LOSSES_CSV, method="interpolate", scratch_fit=scratch)
    eff.to_csv(out / "transfer_from_losses.csv")
    data = eff.to_transfer_data(low_only=True, warn=True)
    fit = fit_transfer(data, **sampler)
    fit.save(out / "fit_from_losses.nc")
    _print_fit(fit, 0.94)
    print(f"wrote {final / 'scratch_fit.nc'}, {final / 'transfer_from_losses.csv'}, {final / 'fit_from_losses.nc'}")
