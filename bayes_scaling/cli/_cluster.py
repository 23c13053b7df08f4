"""Command-line options shared by the batch commands (``calibrate``, ``experiment run``): where they run."""

from __future__ import annotations

import sys

__all__ = ["add_cluster_arguments", "print_failures", "SCHEDULER_HELP"]

SCHEDULER_HELP = ("address of the scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (default: "
                  "$BAYES_SCALING_SCHEDULER when set, else a local cluster started and stopped here)")


def add_cluster_arguments(p, what: str) -> None:
    """``--scheduler`` and ``--workers``: where a batch command runs (bayes_scaling.inference.batch)."""
    from bayes_scaling.cli.transfer import positive_int

    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help=SCHEDULER_HELP)
    p.add_argument("--workers", type=positive_int, default=None,
                   help=f"worker processes of the local cluster (default: one per CPU core, at most one per "
                        f"{what[:-1]}); 1: run in this process, no cluster")


def print_failures(exc) -> None:
    """The failed tasks of a :class:`~bayes_scaling.inference.batch.BatchError`, one line each, on stderr."""
    print(f"error: {len(exc.failures)} of {len(exc.results)} tasks failed (the others finished):", file=sys.stderr)
    for f in exc.failures:
        print(f"  {f}", file=sys.stderr)
