"""Dask worker preload of the local clusters (:func:`bayes_scaling.inference.batch.batch_client`): the worker
process ignores SIGINT. A Ctrl-C in the terminal goes to every process of the foreground group; the command's
own process stops and closes the cluster, which ends the workers, so they have nothing to do with it but would
print a ``KeyboardInterrupt`` traceback each."""

from __future__ import annotations

import signal
import threading


def dask_setup(worker=None) -> None:
    """Ignore SIGINT in this worker process (Dask calls this when the worker starts)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
