"""The exit statuses of every ``bayes-scaling`` command (the one table; docs/cli.md, "Exit status").

=====  =============================================================================================
0      done
1      the command ran but a check it makes failed: ``calibrate`` (a parameter not calibrated), a batch
       with failed tasks (``calibrate``, ``experiment run``: the others finished)
2      bad input or usage: an option, a table, a model file, a fit file, an output path refused before
       the work (one line on stderr naming the file or option)
3      an output could not be written: disk full, file too large, quota, I/O error (nothing was
       replaced; the temporary file is removed)
130    interrupted by SIGINT (Ctrl-C): nothing of the interrupted work saved, earlier files unchanged (unless
       the line says "stopped after writing FILE": the signal came once that output was in place)
143    interrupted by SIGTERM: the same
=====  =============================================================================================
"""

from __future__ import annotations

import errno

__all__ = ["OK", "CHECK_FAILED", "USAGE", "WRITE_FAILED", "INTERRUPTED_SIGINT", "INTERRUPTED_SIGTERM",
           "WRITE_ERRNOS", "is_write_failure"]

OK = 0
CHECK_FAILED = 1
USAGE = 2
WRITE_FAILED = 3
INTERRUPTED_SIGINT = 130
INTERRUPTED_SIGTERM = 143

#: errno values of a write that failed for want of room or a working disk (exit status 3)
WRITE_ERRNOS = frozenset(e for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None), errno.EIO)
                         if e is not None)


def is_write_failure(exc: BaseException) -> bool:
    """An ``OSError`` (or one in its chain of causes) with an errno of :data:`WRITE_ERRNOS`."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
