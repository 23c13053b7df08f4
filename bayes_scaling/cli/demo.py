"""``bayes-scaling demo``: the bundled data sets, fitted end to end (summaries, fit files, figures)."""

from __future__ import annotations

from pathlib import Path

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import print_fit

__all__ = ["DEMO_LIN_MODELS", "DEMO_LIN_SAMPLER", "register"]


def register(sub) -> None:
    p = sub.add_parser("demo", help="fit the bundled (synthetic) data set; write summary, fit and plot; then "
                       "the whole path from the bundled raw losses")
    p.add_argument("--out", default="demo-output", help="output directory (default demo-output)")
    p.add_argument("--skip-losses", action="store_true", help="skip the raw-loss part (loss law -> D_E -> fit)")
    p.add_argument("--skip-published", action="store_true",
                   help="skip the real-data part (choosing a model to fine-tune, Lin et al. 2024)")
    cmdoptions.sampler(p)
    p.set_defaults(func=cmd_demo)


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
    from bayes_scaling.inference.sampling import _fit_transfer
    from bayes_scaling.output.plots import plot_transfer

    meta = example_metadata()
    print(f"bundled data: {EXAMPLE_CSV.name}. {meta['description']}")
    from bayes_scaling.data.tables import TransferData

    data = TransferData.from_csv(EXAMPLE_CSV)
    fit = _fit_transfer(data, seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains,
                       backend=args.backend)
    fit.save(out / "fit.nc")
    print_fit(fit, cmdoptions.CI)
    with atomic_path(out / "summary.csv") as tmp:
        fit.summary(cmdoptions.CI).to_csv(tmp, index=False)
    with atomic_write(out / "summary.txt") as fh:
        print("SYNTHETIC data (bayes_scaling.data.simulate); truth: "
              + ", ".join(f"{p}: k={t['k']:.3g}, alpha={t['alpha']}, beta={t['beta']}"
                          for p, t in meta["truth"].items()), file=fh)
        print_fit(fit, cmdoptions.CI, out=fh)
    fig = plot_transfer(fit, ci_prob=cmdoptions.CI)
    fig.suptitle(f"SYNTHETIC bundled data: D_T against D_F with {100 * cmdoptions.CI:g}% posterior bands", fontsize=10)
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
#: R-hat <= 1.01 and bulk ESS >= 400 with no divergence (tests/analysis/test_selection.py).
DEMO_LIN_SAMPLER = {"draws": 1500, "tune": 600, "chains": 4}


def _demo_published(args, out: Path, final: Path) -> None:
    """REAL bundled data (Lin et al. 2024, FLAN): choose a model to fine-tune from runs on at most 1/8 of the
    full set; P(best) and the predicted full-data loss per model, beside the actual losses."""
    from bayes_scaling._atomic import atomic_path
    from bayes_scaling.analysis.selection import select_model
    from bayes_scaling.data.datasets import load_lin
    from bayes_scaling.output.selection_plots import plot_selection

    runs = load_lin("flan")
    runs = runs[runs["model"].isin(DEMO_LIN_MODELS)]
    print("\nREAL data (bundled, Lin et al. 2024, Apache-2.0): FLAN, 6 of 30 models; each model's power-phase runs "
          "with at most 204,800 examples (1/8) fitted, the loss predicted at 1,638,400")
    sel = select_model(runs, ratio=8, seed=args.seed, backend=args.backend, warn=False, **DEMO_LIN_SAMPLER)
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
    from bayes_scaling.inference.sampling import _fit_transfer
    from bayes_scaling.inference.scratch import _fit_scratch as fit_scratch
    from bayes_scaling.models.losslaws import read_scratch

    meta = losses_metadata()
    print(f"\nfrom raw losses: {SCRATCH_LOSSES_CSV.name} + {FINETUNE_LOSSES_CSV.name}. {meta['description']}")
    sampler = dict(seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains, backend=args.backend)
    scratch = fit_scratch(read_scratch(SCRATCH_LOSSES_CSV), law=meta["law"], **sampler)
    scratch.save(out / "scratch_fit.nc")
    eff = effective_data(SCRATCH_LOSSES_CSV, FINETUNE_LOSSES_CSV, method="interpolate", scratch_fit=scratch)
    eff.to_csv(out / "transfer_from_losses.csv")
    data = eff.to_transfer_data(low_only=True, warn=True)
    fit = _fit_transfer(data, **sampler)
    fit.save(out / "fit_from_losses.nc")
    print_fit(fit, cmdoptions.CI)
    print(f"wrote {final / 'scratch_fit.nc'}, {final / 'transfer_from_losses.csv'}, {final / 'fit_from_losses.nc'}")
