"""``bayes-scaling fit``: the hierarchical transfer law, or any law spec, fitted to a table of runs."""

from __future__ import annotations

from pathlib import Path

from bayes_scaling.cli import cmdoptions
from bayes_scaling.cli._common import check_out, emit_fit, print_fit, print_spec_fit
from bayes_scaling.errors import BayesScalingError

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit the hierarchical transfer law to a table of fine-tuned runs",
                       description="Columns: pretraining, N, D_F and D_T (or D_E). Rows with D_T <= 0 are "
                                   "excluded with a report.")
    p.add_argument("data", help="CSV file of fine-tuned runs")
    p.add_argument("--out", required=True, help="output netCDF file (FIT.nc)")
    cmdoptions.sampler(p)
    p.add_argument("--likelihood", choices=["normal", "student_t"], default=None,
                   help="noise model of log D_T (default: the model file's, normal)")
    p.add_argument("--model", default=None, help="a built-in law's name (chinchilla, kaplan, m4, transfer, ...) or a "
                   "TOML file: a law spec (any law; see models/laws/) or the transfer model's priors and likelihood "
                   "(models/transfer.toml)")
    p.add_argument("--unit", default=None, help="unit of data (tokens, characters, ...; default: column "
                   "'unit' or tokens)")
    cmdoptions.ci(p)
    cmdoptions.log_likelihood(p)
    p.set_defaults(func=cmd_fit)


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
    from bayes_scaling.inference.sampling import _fit_transfer, resolve_backend
    from bayes_scaling.laws.spec import builtin_names

    builtin = bool(args.model) and not Path(args.model).exists() and args.model in builtin_names()
    check_out(args, args.data, None if builtin else args.model, suffixes=FIT_SUFFIXES)
    if builtin or (args.model and is_law_spec(args.model)):
        return _fit_spec(args)
    config = _load_config(args)
    data = TransferData.from_csv(args.data, unit=args.unit)
    print(f"sampling {args.chains} chains x {args.draws} draws ({args.tune} tuning) with "
          f"{resolve_backend(args.backend)}; Ctrl-C stops without saving", flush=True)
    fit = _fit_transfer(data, config=config, seed=args.seed, draws=args.draws, tune=args.tune,
                       chains=args.chains, backend=args.backend, log_likelihood=args.log_likelihood)
    print_fit(fit, args.ci)     # before writing: an interruption while it prints leaves the earlier --out as it was
    path = fit.save(args.out)
    emit_fit(fit, args.ci, saved=str(path))
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
    print_spec_fit(fit, args.ci)
    emit_fit(fit, args.ci, saved=str(path))
    print(f"saved {path}")
    return 0
