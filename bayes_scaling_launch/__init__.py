"""The ``bayes-scaling`` executable's entry point: signal handling before any heavy import.

``import bayes_scaling`` loads NumPy and pandas (~0.6 s) before :func:`bayes_scaling.cli.main` can install its
handlers; a Ctrl-C or SIGTERM in that time used to end in a ``KeyboardInterrupt`` traceback. This module (a
package of its own, so that importing it does not import ``bayes_scaling``) makes SIGINT and SIGTERM end the
process at once with one line and the status of the exit-status table (130, 143) while nothing has been written
yet; :func:`bayes_scaling.cli.main` then installs the handlers of the command itself.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["main"]


def _exit_now(signum, frame):  # nothing is written while the modules load: stop at once, one line
    try:
        name = signal.Signals(signum).name
    except ValueError:  # pragma: no cover
        name = f"signal {signum}"
    try:
        os.write(2, f"bayes-scaling: interrupted by {name} while starting; nothing was written\n".encode())
    finally:
        os._exit(128 + signum)


def _quiet_unraisable(unraisable):  # a Ctrl-C raised inside a finalizer while the modules load
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _exit_now(signal.SIGINT, None)
    sys.__unraisablehook__(unraisable)


def main() -> int:
    """Install the start-up handlers, then run :func:`bayes_scaling.cli.main`."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # ignored on purpose (nohup, a background job): keep
            signal.signal(sig, _exit_now)
    sys.unraisablehook = _quiet_unraisable
    if hasattr(signal, "SIGXFSZ"):  # a file past `ulimit -f`: the write fails (EFBIG, exit status 3), no kill
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        from bayes_scaling.cli import main as cli_main
    except KeyboardInterrupt:  # pragma: no cover - a handler of another library raised it
        _exit_now(signal.SIGINT, None)
    return cli_main()
