"""Whether progress bars show: on a terminal (stderr) unless quietened (``bayes-scaling ... --quiet``, or
:func:`quiet` in a script); never when stderr is not a terminal (pipes, CI logs, files). Jupyter keeps its
bars for batches (``inference/batch.py``). An explicit ``progressbar=True``/``progress=True`` still shows."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet", "is_quiet", "default_progress"]

_QUIET = [False]


def is_quiet() -> bool:
    """True inside :func:`quiet` (the command line's ``--quiet``)."""
    return _QUIET[-1]


def default_progress() -> bool:
    """The default of ``progressbar=None``: stderr is a terminal and not quiet."""
    if is_quiet():
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # closed or replaced stderr
        return False


@contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """No progress bars by default inside the block (``enabled=False``: no change)."""
    _QUIET.append(bool(enabled) or _QUIET[-1])
    try:
        yield
    finally:
        _QUIET.pop()
