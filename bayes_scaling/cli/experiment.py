"""``bayes-scaling experiment run``: the measured-transfer sweep (needs the optional extra ``experiments``)."""

from __future__ import annotations

import sys

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import print_failures
from bayes_scaling.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("experiment", help="measured transfer: train tiny transformers (JAX) and record losses",
                       description="Sub-commands of the measured-transfer experiment (bayes_scaling.experiments).")
    esub = p.add_subparsers(dest="experiment_command", required=True, parser_class=type(p))
    r = esub.add_parser("run", help="run or resume a sweep: from-scratch, pre-training and fine-tuning runs",
                        description="Runs every run of the configuration not yet in OUT/runs.csv (so an interrupted or "
                                    "killed sweep resumes), writing each once as it finishes; writes OUT/scratch.csv "
                                    "(N, D, loss) and OUT/finetune.csv (pretraining, N, D_F, loss), unit characters, "
                                    "for 'bayes-scaling effective-data'. The runs train on a local Dask cluster (one "
                                    "worker process per core; each uses its JAX device, a GPU when there is one), or "
                                    "on an existing cluster with --scheduler.")
    r.add_argument("--config", default=None,
                   help="sweep configuration TOML (e.g. models/experiments/full.toml); required unless --smoke")
    r.add_argument("--out", required=True, help="output directory (runs.csv, scratch.csv, finetune.csv, ...)")
    r.add_argument("--smoke", action="store_true",
                   help="the built-in smoke sweep (2 tiny models, 18 runs of a few steps; under a minute on 2 cores); "
                        "cannot be combined with --config")
    cmdoptions.cluster(r, "runs")
    r.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    if args.smoke and args.config:
        raise ConfigError("--smoke runs the built-in smoke configuration; do not pass --config with it")
    if not args.smoke and not args.config:
        raise ConfigError("give --config FILE (e.g. models/experiments/full.toml) or --smoke")
    try:
        import jax  # noqa: F401
    except ImportError as exc:
        raise ConfigError("the experiment needs JAX: pip install 'bayes_scaling[experiments]'") from exc
    from bayes_scaling.experiments import load_config, run_sweep
    from bayes_scaling.inference.batch import BatchError

    cfg = load_config(None if args.smoke else args.config)
    try:
        res = run_sweep(cfg, args.out, log=lambda msg: print(msg, flush=True), scheduler=args.scheduler,
                        workers=args.workers)
    except BatchError as exc:
        print_failures(exc)
        print(f"the finished runs are in {args.out}/runs.csv; run the same command again to retry the failed ones",
              file=sys.stderr)
        return 1
    print(f"done: {res['trained']} trained, {res['skipped']} already done; tables in {args.out}/scratch.csv and "
          f"{args.out}/finetune.csv", file=sys.stdout)
    return 0
