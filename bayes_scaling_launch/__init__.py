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


#: True while the modules load (nothing is written then); the command's own handlers take over from there
_starting = True


def _exit_now(signum, frame):  # nothing is written while the modules load: stop at once, one line
    try:
        name = signal.Signals(signum).name
    except ValueError:  # pragma: no cover
        name = f"signal {signum}"
    what = " while starting; nothing was written" if _starting else ""
    try:
        os.write(2, f"bayes-scaling: interrupted by {name}{what}\n".encode())
    finally:
        os._exit(128 + signum)


def _quiet_unraisable(unraisable):  # a Ctrl-C raised inside a finalizer while the modules load
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _exit_now(signal.SIGINT, None)
    sys.__unraisablehook__(unraisable)


def _finished(status: int) -> None:
    """The command is done, its files written or not and its status decided; the interpreter's own exit (thread
    joins, ``atexit`` handlers, then tearing down the libraries: seconds) follows. A SIGINT or SIGTERM from
    here on ends the process at once with the command's status: never a status of 130/143 after the output
    was written (the interpreter's exit resets a Python handler to the default action, which killed the process
    with the signal), nor a traceback of a library's exit handler."""
    def done(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe, a write the signal interrupted
                pass
        os._exit(status)

    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, done)


def _ignore_signals() -> None:
    """The last ``atexit`` step (registered first): the interpreter then resets Python's handlers to the
    default action while it tears the libraries down; ignored signals stay ignored."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


#: BLAS libraries' thread counts set to 1 (unless set) before NumPy loads: the fits call BLAS on small matrices
#: (the mode search, the Laplace factor) while nutpie's chains run in threads; more BLAS threads only compete
#: for the same cores (docs/benchmarks.md, "Start-up of a fresh bayes-scaling fit")
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
if "numpy" not in sys.modules:   # on import: the executable imports this module before anything else (not so
    for _name in BLAS_THREAD_VARIABLES:   # `python -m bayes_scaling`, whose package loads NumPy first)
        os.environ.setdefault(_name, "1")


def _exit_without_teardown(status: int) -> None:
    """End the process once the command is done: the non-daemon threads are joined and the ``atexit`` handlers
    run (as at a normal exit: a Dask cluster stops, logging flushes, child processes are joined), the standard
    streams are flushed, then ``os._exit``. What is skipped is the interpreter's teardown of the modules and
    their objects (freeing the compiled models, LLVM, the libraries' finalizers): ~1 s on an idle machine after
    a fit, 3 s on a loaded one, and nothing that writes. ``BAYES_SCALING_DEBUG`` keeps the full exit."""
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)   # what the interpreter runs first at exit: joins threads
    if shutdown is not None:
        shutdown()
    else:  # pragma: no cover - every CPython 3.12+ has it
        for t in threading.enumerate():
            if t is not threading.main_thread() and not t.daemon:
                t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe
            pass
    os._exit(status)


def main() -> int:
    """Install the start-up handlers, then run :func:`bayes_scaling.cli.main`."""
    import atexit

    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # ignored on purpose (nohup, a background job): keep
            signal.signal(sig, _exit_now)
    sys.unraisablehook = _quiet_unraisable
    if hasattr(signal, "SIGXFSZ"):  # a file past `ulimit -f`: the write fails (EFBIG, exit status 3), no kill
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    atexit.register(_ignore_signals)   # before any library registers its own: it runs after them
    try:
        from bayes_scaling.cli import main as cli_main
    except KeyboardInterrupt:  # pragma: no cover - a handler of another library raised it
        _exit_now(signal.SIGINT, None)
    global _starting
    _starting = False   # from here the command's handlers are installed (its first step) and put back
    status = cli_main()
    _finished(status)
    if not os.environ.get("BAYES_SCALING_DEBUG"):
        _exit_without_teardown(status)
    return status
