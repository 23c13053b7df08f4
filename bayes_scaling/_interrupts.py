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


@contextlib.contextmanager
def stop_on_signals(what: str) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM raise :class:`Interrupted`; if one arrived, the block always ends
    with :class:`Interrupted` (even when a library caught it and returned a partial result). Outside the main
    thread (where Python cannot install handlers) only Ctrl-C's ``KeyboardInterrupt`` is turned into it."""
    received: list[int] = []

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
        yield
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
