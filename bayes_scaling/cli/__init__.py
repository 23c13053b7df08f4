"""The ``bayes-scaling`` command line.

Each sub-command lives in the module named after it (``fit`` in ``cli/fit.py``, ``fit-scratch`` in
``cli/fit_scratch.py``, ...), which registers it (``register(subparsers)``) with the options shared by several
commands from :mod:`bayes_scaling.cli.cmdoptions` (one ``--ci``, one ``--seed``, the sampler's options; helpers in
``cli/_common.py``); heavy imports happen inside the command functions. Errors become one line on stderr, never a
traceback, with the exit status of the one table in :mod:`bayes_scaling.cli._exit`. Before a command starts,
its output plan is checked (:mod:`bayes_scaling.cli._plan`: no output replaces an input, the output folder is
writable). Warnings (exclusions, convergence) are printed as ``warning: ...`` lines.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import warnings

from bayes_scaling.cli import _exit
from bayes_scaling.errors import BayesScalingError

__all__ = ["main"]

EXIT_USAGE = _exit.USAGE


def _modules():
    """The command modules, one per sub-command (``cli/<command>.py``), in the order of ``--help``."""
    from bayes_scaling.cli import (
        backtest,
        best,
        calibrate,
        demo,
        effective_data,
        experiment,
        export,
        fit,
        fit_joint,
        fit_scratch,
        forecast,
        predict,
        quantiles,
        report,
        stack,
        summary,
    )

    return [fit, summary, demo, fit_scratch, effective_data, fit_joint, predict, forecast, export, quantiles, report,
            calibrate, experiment, backtest, best, stack]


#: what argparse takes for a negative number (so that ``--N -1e8`` reaches the option's check and is refused
#: as a negative number instead of being read as an unknown option): integers, decimals, exponents, inf, nan
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str):  # one line, exit 2 (argparse prints usage too; keep it short)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from bayes_scaling import __version__

    parser = _Parser(prog="bayes-scaling", description="Bayesian scaling laws for transfer "
                     "(D_T = k * D_F**alpha * N**beta), fitted by NUTS.")
    parser.add_argument("--version", action="version", version=f"bayes-scaling {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for mod in _modules():
        mod.register(sub)
    from bayes_scaling.cli.cmdoptions import add_common_options

    for name, child in sub.choices.items():   # --quiet everywhere, --json where a table is printed
        add_common_options(child, name)
    return parser


def _warning_line(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (:mod:`bayes_scaling.cli._exit`)."""
    previous_int = _on_sigint()          # first: a Ctrl-C from here on ends in one line, status 130
    previous_term = _on_sigterm()
    previous_hook, swallowed = _redeliver_swallowed_interrupts()
    prefix = "bayes-scaling"
    mark = 0
    try:
        from bayes_scaling._atomic import written

        mark = len(written())   # what is put in place from here on is this command's output
        parser = build_parser()
        _complete(parser)
        args = parser.parse_args(argv)
        warnings.showwarning = _warning_line
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        prefix = f"bayes-scaling {args.command}"
        from bayes_scaling.cli._output import session
        from bayes_scaling.cli._plan import check_plan

        check_plan(args)   # before any work: no output replaces an input; the --out folder is writable
        with session(args):   # --quiet, --json (cli/_output.py)
            status = int(args.func(args) or 0)
        if swallowed:   # a Ctrl-C that a library's finalizer caught: never an exit status 0
            from bayes_scaling._interrupts import Interrupted

            raise Interrupted(swallowed[0])
        return status
    except BrokenPipeError:  # e.g. `bayes-scaling summary fit.nc --csv | head`
        sys.stderr.close()
        return _exit.OK
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM (see _on_sigterm), or Interrupted from a sampler
        from bayes_scaling._interrupts import Interrupted

        if not isinstance(exc, Interrupted):
            exc = Interrupted(swallowed[0] if swallowed else signal.SIGINT)
        from bayes_scaling._atomic import written

        print(f"{prefix}: {exc}; {_what_was_saved(written(mark))}", file=sys.stderr)
        return exc.exit_status
    except (BayesScalingError, ValueError, OSError, ArithmeticError, MemoryError) as exc:
        if _exit.is_write_failure(exc):
            print(f"{prefix}: error: cannot write the output: {_one_line(exc)} (nothing was replaced)",
                  file=sys.stderr)
            return _exit.WRITE_FAILED
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return _exit.USAGE
    except BaseException as exc:  # noqa: BLE001 - the promise: one line, never a traceback
        if isinstance(exc, SystemExit) or os.environ.get("BAYES_SCALING_DEBUG"):
            raise
        # e.g. a Rust panic in the sampler (pyo3's PanicException is a BaseException)
        print(f"{prefix}: error: unexpected {type(exc).__name__}: {_one_line(exc)} (run with "
              "BAYES_SCALING_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return _exit.USAGE
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
        sys.unraisablehook = previous_hook
        swallowed.append(0)   # a re-delivery still on its way is dropped (the status already says it)


def _what_was_saved(done: list) -> str:
    """The end of an interrupted command's line: nothing saved, or the outputs it had put in place, complete,
    before the signal came (each one whole: :mod:`bayes_scaling._atomic`)."""
    if not done:
        return "stopped without saving partial results (files written before are unchanged)"
    names = ", ".join(dict.fromkeys(str(p) for p in done))
    return (f"stopped after writing {names} (complete: the signal came after it was in place); nothing else "
            "was saved")


def _complete(parser) -> None:
    """Shell completion when argcomplete is installed (optional; README, Shell completion): a no-op unless
    the shell's completion hook runs the command (environment variable ``_ARGCOMPLETE``)."""
    if not os.environ.get("_ARGCOMPLETE"):
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _redeliver_swallowed_interrupts():
    """A signal handler runs wherever the main thread is; when that is inside a callback whose exceptions Python
    cannot propagate (JAX's garbage-collection callback, a ``__del__``, a module loading), the Ctrl-C or SIGTERM
    would be printed as "Exception ignored" and lost. This hook records the signal and delivers it again
    (``_thread.interrupt_main``), so it ends the command at the next point where it can; should that point never
    come (a library catches it), :func:`main` still ends with the interrupt's status, never 0. Returns the
    previous hook and the list of recorded signal numbers."""
    import _thread
    import threading

    previous = sys.unraisablehook
    swallowed: list[int] = []

    def _redeliver(signum: int) -> None:
        if swallowed and swallowed[-1] > 0:   # not once main() has ended (it marks the list with 0)
            _thread.interrupt_main(signum)

    def hook(unraisable):
        exc = unraisable.exc_value
        if isinstance(exc, KeyboardInterrupt):
            signum = int(getattr(exc, "signum", signal.SIGINT))
            swallowed.append(signum)
            # from another thread: called here, in the main thread, the interrupt would be raised inside this
            # hook at once, and printed as "Exception ignored in sys.unraisablehook" and lost (as it was)
            try:
                threading.Thread(target=_redeliver, args=(signum,), daemon=True).start()
            except KeyboardInterrupt:  # pragma: no cover - another signal meanwhile: recorded above
                pass
            return
        previous(unraisable)

    sys.unraisablehook = hook
    return previous, swallowed


def _on_sigint():
    """SIGINT raises ``KeyboardInterrupt`` (Python's default handler) for the command, unless it is ignored on
    purpose (a background job); replaces the start-up handler of :mod:`bayes_scaling_launch`. Returns the
    previous handler (None when unchanged)."""
    try:
        current = signal.getsignal(signal.SIGINT)
        if current is signal.SIG_IGN or current is signal.default_int_handler:
            return None
        return signal.signal(signal.SIGINT, signal.default_int_handler)
    except (ValueError, OSError, AttributeError):  # not the main thread
        return None


def _on_sigterm():
    """SIGTERM raises :class:`~bayes_scaling._interrupts.Interrupted` for the whole command, so that it ends
    like Ctrl-C: temporary files removed, one line, exit status 143. Returns the previous handler."""
    from bayes_scaling._interrupts import Interrupted

    def handler(signum, frame):
        raise Interrupted(signum)

    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM here
        return None


if __name__ == "__main__":
    sys.exit(main())
