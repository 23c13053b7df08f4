"""The options that several commands share, each defined once (in the manner of pip's ``cli/cmdoptions.py``).

A command's ``register()`` adds them with the builders below, so every command that takes ``--ci`` or ``--seed``
has the same type, check and default:

* ``--ci`` (:data:`CI`, 0.94): the probability of every interval a command prints, an equal-tailed interval:
  credible intervals of parameters (``fit``, ``summary``, ``fit-scratch``, ``fit-joint``, ``report``), the
  interval of D_E by law inversion (``effective-data``), predictive intervals (``predict``, ``forecast``,
  ``best``). 0.94 is :data:`bayes_scaling._interval.CI_PROB`, the default interval of every summary
  (:func:`~bayes_scaling.inference.sampling.summarize`, the one summary of every fit).
* ``--seed`` (:data:`SEED`, 1): same seed, same draws (same fit, same predictive draws, same ranks, same splits);
  0 to 2**32 - 1 (checked before the work, ``cli/_plan.py``).
* the sampler: ``--draws``, ``--tune``, ``--chains``, ``--backend`` (:func:`sampler`); a command that runs many
  fits (``backtest``, ``calibrate``, ``report``'s refits) passes its own smaller defaults here;
  ``--no-log-likelihood`` (:func:`log_likelihood`).
* where batches run: ``--scheduler``, ``--workers`` (:func:`cluster`).
* ``--quiet`` on every command, ``--json`` on those that print a table (:func:`add_common_options`).

The argparse types (:func:`positive_int`, :func:`positive_float`, :func:`probability`, :func:`tau`,
:func:`finite`) refuse bad values with one line (exit status 2). Nothing heavy is imported here.
"""

from __future__ import annotations

import argparse
import math

from bayes_scaling._interval import CI_PROB

__all__ = ["BACKENDS", "CHAINS", "CI", "DRAWS", "SEED", "SCHEDULER_HELP", "TUNE", "add_common_options", "ci",
           "cluster", "finite", "log_likelihood", "positive_float", "positive_int", "probability",
           "sampler", "seed", "tau"]

#: the default of every ``--ci``: the probability of the equal-tailed intervals printed (every summary's)
CI = CI_PROB
#: the default of every ``--seed``: same seed, same draws
SEED = 1
#: the sampler's defaults for one fit (``fit``, ``fit-scratch``, ``effective-data``, ``fit-joint``, ``demo``)
DRAWS, TUNE, CHAINS = 1000, 1000, 4
#: the NUTS back ends (``auto``: nutpie when installed, else pymc)
BACKENDS = ("auto", "pymc", "nutpie", "numpyro")

SCHEDULER_HELP = ("address of the scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (default: "
                  "$BAYES_SCALING_SCHEDULER when set, else a local cluster started and stopped here)")


# ---- types ---------------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``1e5`` is fine when it is a whole number)."""
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
            value = int(number) if number.is_integer() else None
        except (ValueError, OverflowError):
            value = None
        if value is None:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _number_type(name: str, expected, ok, doc: str):
    """An argparse type: a finite float for which ``ok(value)`` holds, else "expected <expected>, got ...";
    ``expected`` is a text or a function giving it (read when needed)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            what = expected() if callable(expected) else expected
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = doc
    return parse


def _max_tau() -> float:
    from bayes_scaling.laws.discrepancy import MAX_TAU

    return MAX_TAU


positive_float = _number_type("positive_float", "a finite number > 0", lambda v: v > 0,
                              "argparse type: a finite number > 0 (e.g. ``4e7``).")
probability = _number_type("probability", "a probability in (0, 1)", lambda v: 0 < v < 1,
                           "argparse type: a probability in (0, 1).")
tau = _number_type("tau", lambda: f"a finite number in [0, {_max_tau():g}] (per decade on the log target)",
                   lambda v: 0 <= v <= _max_tau(),
                   "argparse type of every ``--tau`` (the discrepancy per decade outside the data, on the log "
                   "target): a finite number in ``[0, MAX_TAU]``.")
finite = _number_type("finite", "a finite number", lambda v: True, "argparse type: a finite number.")


# ---- builders ------------------------------------------------------------------------------------------------


def ci(p: argparse.ArgumentParser, what: str = "credible interval probability") -> None:
    """``--ci P``, default :data:`CI`: the probability of the command's equal-tailed intervals."""
    p.add_argument("--ci", type=probability, default=CI, metavar="P",
                   help=f"{what} (default {CI:g}, as every command's --ci)")


def seed(p: argparse.ArgumentParser, what: str = "") -> None:
    """``--seed S``, default :data:`SEED`: same seed, same draws."""
    p.add_argument("--seed", type=int, default=SEED, metavar="S",
                   help=f"random seed{' ' + what if what else ''} (default {SEED}): same seed, same draws")


def sampler(p: argparse.ArgumentParser, *, draws: int = DRAWS, tune: int = TUNE, chains: int = CHAINS,
            backend: str | None = "auto", what: str = "", with_seed: bool = True, with_backend: bool = True) -> None:
    """``--seed`` (unless ``with_seed`` is false), ``--draws``, ``--tune``, ``--chains``, ``--backend`` (unless
    ``with_backend`` is false); ``what`` names the fits (e.g. ``"of each fit"``), ``backend=None``: the fit's own
    back end."""
    w = f" {what}" if what else ""
    if with_seed:
        seed(p)
    p.add_argument("--draws", type=positive_int, default=draws, help=f"draws per chain{w} (default {draws})")
    p.add_argument("--tune", type=positive_int, default=tune, help=f"tuning steps per chain{w} (default {tune})")
    p.add_argument("--chains", type=positive_int, default=chains, help=f"chains{w} (default {chains})")
    if not with_backend:
        return
    default = ("auto: nutpie when installed, else pymc; the one that ran is printed" if backend == "auto"
               else "the fit's" if backend is None else backend)
    p.add_argument("--backend", default=backend, choices=list(BACKENDS), help=f"NUTS back end{w} (default {default})")


def log_likelihood(p: argparse.ArgumentParser) -> None:
    """``--no-log-likelihood`` (``args.log_likelihood``, default True)."""
    p.add_argument("--no-log-likelihood", dest="log_likelihood", action="store_false",
                   help="leave the pointwise log-likelihood out of the fit file (chains x draws x runs values: "
                        "for very large tables; LOO recomputes it when needed)")


def cluster(p: argparse.ArgumentParser, what: str, workers: int | None = None) -> None:
    """``--scheduler`` and ``--workers``: where a batch command's ``what`` (plural: "runs", "simulations",
    "splits") run (bayes_scaling.inference.batch); ``workers``: the default (None: one per CPU core)."""
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help=SCHEDULER_HELP)
    default = (f"one per CPU core, at most one per {what[:-1]}; 1: run in this process, no cluster" if workers is None
               else f"{workers}" + (": in this process, no cluster" if workers == 1 else "; 1: in this process"))
    p.add_argument("--workers", type=positive_int, default=workers, metavar="W",
                   help=f"worker processes of the local cluster (default {default})")


def add_common_options(parser: argparse.ArgumentParser, name: str) -> None:
    """``--quiet`` on every leaf command and ``--json`` on those of
    :data:`~bayes_scaling.cli._output.JSON_COMMANDS` (recursively through sub-commands)."""
    from bayes_scaling.cli._output import JSON_COMMANDS

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        for a in subs:
            for child_name, child in a.choices.items():
                add_common_options(child, f"{name} {child_name}")
        return
    opts = parser._option_string_actions
    if "--quiet" not in opts:
        parser.add_argument(*(["--quiet"] if "-q" in opts else ["--quiet", "-q"]), action="store_true",
                            help="no progress bars (they show only on a terminal anyway)")
    if name.split()[0] in JSON_COMMANDS and "--json" not in opts:
        parser.add_argument("--json", action="store_true", help="machine-readable output: one JSON document on "
                            "stdout (tables as lists of records); the human lines go to stderr")
