"""``bayes-scaling calibrate``: simulation-based calibration of the transfer model or of any law spec."""

from __future__ import annotations

import argparse
from pathlib import Path

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import print_failures
from bayes_scaling.cli.cmdoptions import positive_int
from bayes_scaling.errors import BayesScalingError

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="simulation-based calibration (SBC) of the transfer model or of any law spec",
        description="Draw parameters from the prior, simulate data on a fixed design, fit each by NUTS and check "
                    "that the ranks of the true values among the posterior draws are uniform and that 50%%/90%% "
                    "intervals cover the truth as often as they should (Talts et al. 2018). The transfer model "
                    "(default): 2 pre-training distributions x 4 model sizes x 4 fine-tuning sizes. A law spec "
                    "(--model chinchilla, --model SPEC.toml): the inputs of --data RUNS.csv (its target sets "
                    "the priors that scale with the data, frozen for every simulation), else a default grid "
                    "of the inputs; fitted by the spec engine. Writes "
                    "ranks.csv, checks.csv and sbc_ecdf.png to --out; exit status 1 when a check fails. The fits run "
                    "on a local Dask cluster (one worker process per core, each compiling the model once), or on "
                    "an existing cluster with --scheduler; the same seed gives the same ranks either way.")
    p.add_argument("--sims", type=positive_int, default=100, help="number of simulations (default 100)")
    p.add_argument("--out", default="sbc-output", help="output directory (default sbc-output)")
    cmdoptions.seed(p, "of the simulations and their fits")
    cmdoptions.sampler(p, draws=400, tune=400, chains=2, what="per fit", with_seed=False, with_backend=False)
    p.add_argument("--ranks-of", type=positive_int, default=99, dest="n_rank",
                   help="thinned draws each rank is taken among (default 99: ranks 0..99)")
    cmdoptions.cluster(p, "simulations")
    p.add_argument("--processes", type=positive_int, dest="workers", help=argparse.SUPPRESS)  # the old name
    p.add_argument("--model", default=None, metavar="SPEC",
                   help="the model to calibrate: a law spec (a built-in name such as chinchilla or kaplan, or a "
                        "SPEC.toml with a [law] table), or a transfer-model TOML file (priors, likelihood); "
                        "default: the transfer model")
    p.add_argument("--data", default=None, metavar="RUNS.csv",
                   help="with a law spec: the design (its input and group columns; its target, when present, "
                        "sets the data-scaled default priors); default: a grid of the inputs")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="family-wise level of the checks, split over the parameters (default 0.01)")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from bayes_scaling.analysis.calibration import run_sbc
    from bayes_scaling.models.transfer import ModelConfig

    if args.sims < 2:
        raise ValueError(f"--sims must be at least 2, got {args.sims}")
    if not 0 < args.alpha < 1:
        raise ValueError(f"--alpha must be in (0, 1), got {args.alpha}")
    if args.n_rank > args.draws * args.chains:
        raise ValueError(f"--ranks-of ({args.n_rank}) cannot exceed --draws x --chains "
                         f"({args.draws * args.chains})")
    from bayes_scaling._atomic import atomic_path
    from bayes_scaling.cli._plan import input_files, staged_folder

    spec = _law_spec(args.model)
    if spec is None and args.data is not None:
        raise BayesScalingError("--data gives the design of a law spec (--model chinchilla, --model SPEC.toml); "
                                "the transfer model's design is fixed")
    config = None if spec is not None else ModelConfig.from_toml(args.model) if args.model else ModelConfig()
    from bayes_scaling.inference.batch import BatchError

    try:
        if spec is not None:
            from bayes_scaling.analysis.calibration import run_spec_sbc
            from bayes_scaling.data.tables import read_table

            data = read_table(args.data, args.data) if args.data is not None else None
            res = run_spec_sbc(spec, args.sims, data=data, draws=args.draws, tune=args.tune, chains=args.chains,
                               n_rank=args.n_rank, seed=args.seed, processes=args.workers,
                               scheduler=args.scheduler)
        else:
            res = run_sbc(args.sims, config=config, draws=args.draws, tune=args.tune, chains=args.chains,
                          n_rank=args.n_rank, seed=args.seed, processes=args.workers, scheduler=args.scheduler)
    except BatchError as exc:
        print_failures(exc)
        return 1
    out = Path(args.out)
    checks = res.checks(args.alpha)
    with staged_folder(out, input_files(args)) as stage:   # all three files or none (cli/_plan.py)
        with atomic_path(stage / "ranks.csv") as tmp:
            res.ranks.to_csv(tmp, index_label="simulation")
        with atomic_path(stage / "checks.csv") as tmp:
            checks.to_csv(tmp)
        fig = res.plot_ecdf(args.alpha)
        with atomic_path(stage / "sbc_ecdf.png") as tmp:
            fig.savefig(tmp, dpi=110)
    table = pd.DataFrame({
        "uniformity p": checks["uniformity_p"].map(lambda v: f"{v:.3f}"),
        "ECDF dev / band": [f"{d:.3f} / {b:.3f}" for d, b in zip(checks["ecdf_max_dev"], checks["ecdf_band"],
                                                                  strict=True)],
        "cover 50%": checks["coverage50"].map(lambda v: f"{v:.2f}"),
        "cover 90%": checks["coverage90"].map(lambda v: f"{v:.2f}"),
        "result": checks["passed"].map({True: "pass", False: "FAIL"}),
    })
    n_div = int((res.divergences > 0).sum())
    from bayes_scaling.cli._output import emit

    emit("checks", checks.reset_index(), n_sims=res.n_sims, seed=args.seed, alpha=args.alpha,
         backend=res.settings["backend"], divergent_fits=n_div, passed=bool(checks["passed"].all()),
         out=str(out))
    if spec is not None:
        design = f"design: {args.data} ({res.settings['design_rows']} rows)" if args.data else \
            f"design: a default grid ({res.settings['design_rows']} rows)"
        rejected = res.settings["rejected"]
        print(f"SBC of the law {spec.name!r} ({spec.target} = {spec.formula.text}; {spec.family} noise on the "
              f"{spec.scale} scale), priors frozen on the design's data; {design}"
              + (f"; {rejected} prior draw(s) simulating non-finite data replaced" if rejected else ""))
        what = "the spec engine"
    else:
        what = f"the transfer model ({config.likelihood}, {config.variant}, {config.parameterization})"
    print(f"SBC of {what}: "
          f"{res.n_sims} simulations, ranks among {res.n_draws} draws, seed {args.seed}, {res.seconds:.1f} s; "
          f"NUTS back end: {res.settings['backend']} ({args.chains} x {args.draws} draws per fit)")
    print(f"checks at family-wise level {args.alpha} (each at {args.alpha / len(checks):.2g}): chi-square "
          "rank uniformity, ECDF within the simultaneous band, binomial coverage of 50%/90% intervals")
    print(table.to_string())
    if n_div:
        print(f"note: {n_div} of {res.n_sims} simulated fits had divergent transitions "
              f"({int(res.divergences.sum())} in all)")
    ok = bool(checks["passed"].all())
    print(f"{'PASS' if ok else 'FAIL'}: {int(checks['passed'].sum())}/{len(checks)} parameters calibrated")
    print(f"wrote {out / 'ranks.csv'}, {out / 'checks.csv'}, {out / 'sbc_ecdf.png'}")
    return 0 if ok else 1


def _law_spec(model: str | None):
    """The law spec ``--model`` names (a built-in name, or a TOML file with a [law] table), or None (the transfer
    model: no --model, or a transfer-model TOML file)."""
    if model is None:
        return None
    from pathlib import Path as _Path

    from bayes_scaling.inference.fit import is_law_spec
    from bayes_scaling.laws.spec import builtin_names, builtin_spec

    if model in builtin_names() or (_Path(model).suffix == ".toml" and _Path(model).is_file() and is_law_spec(model)):
        return builtin_spec(model)
    if not _Path(model).is_file():
        raise BayesScalingError(f"--model {model}: no such file, and not a built-in law (known: "
                                f"{', '.join(builtin_names())})")
    return None
