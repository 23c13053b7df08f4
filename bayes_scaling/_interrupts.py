"""Ctrl-C (SIGINT) and SIGTERM during long work: stop it, save nothing of it, say what was interrupted.

Samplers catch ``KeyboardInterrupt`` and return the chains drawn so far (nutpie does, PyMC too): a caller that
did not notice would save a partial posterior as if it were a fit. Inside :func:`stop_on_signals` SIGINT and
SIGTERM raise :class:`Interrupted` (a ``KeyboardInterrupt``, so the samplers still stop their threads), and
the signal is remembered: when the block ends, normally or not, :class:`Interrupted` is raised again, so the
partial result never leaves it. The command line turns it into one line on stderr and exit status 128 + the
signal number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["Interrupted", "stop_on_signals", "SIGNALS"]

SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM stopped ``what``; nothing of that work was saved."""

    def __init__(self, signum: int = signal.SIGINT, what: str = ""):
        super().__init__(signum, what)
        self.signum = int(signum)
        self.what = what

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return f"interrupted by {self.signal_name}" + (f" while {self.what}" if self.what else "")


class _Stop(Exception):  # noqa: N818 - not an error: unwinds a sampler that swallows KeyboardInterrupt
    pass


class Signals:
    """What :func:`stop_on_signals` yields: ``received`` (signal numbers so far) and :meth:`check`, for a
    sampler's per-draw callback."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def check(self, *args, **kwargs) -> None:
        """Raise (an ordinary exception, which samplers do not swallow) once a signal has arrived. PyMC's
        sequential sampler catches ``KeyboardInterrupt`` per chain and goes on with the next chain; its
        ``callback`` calls this after every draw, so the whole fit stops at once."""
        if self.received:
            raise _Stop


@contextlib.contextmanager
def stop_on_signals(what: str) -> Iterator[Signals]:
    """Within the block, SIGINT/SIGTERM raise :class:`Interrupted`; if one arrived, the block always ends
    with :class:`Interrupted` (even when a library caught it and returned a partial result). Outside the main
    thread (where Python cannot install handlers) only Ctrl-C's ``KeyboardInterrupt`` is turned into it.
    Yields a :class:`Signals` (``.check`` for per-draw callbacks)."""
    state = Signals()
    received = state.received

    def handler(signum, frame):
        received.append(signum)
        raise Interrupted(signum, what)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:  # ignored on purpose (e.g. `nohup`, a background job)
                continue
            try:
                previous[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):  # pragma: no cover - e.g. an embedded interpreter
                pass
    try:
        yield state
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted) and not received:  # from an inner block: keep its description
            raise
        raise Interrupted(received[0] if received else signal.SIGINT, what) from None
    except Exception:
        # raised inside compiled code, the interrupt can come out as another error (Numba: "SystemError: ...
        # returned a result with an exception set"); after a signal, any error is the interrupt
        if received:
            raise Interrupted(received[0], what) from None
        raise
    finally:
        for sig, old in previous.items():
            if old is not None:
                signal.signal(sig, old)
    if received:
        raise Interrupted(received[0], what)
