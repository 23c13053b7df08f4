"""Safe output files: every file the package writes goes through here.

A file is written under a temporary name in the same folder (``.NAME.XXXX.tmp.SUFFIX``: hidden, and with the
target's suffix so that writers which read the format from it, such as matplotlib, still work), flushed to
disk (``fsync``) and renamed over the target (``os.replace``, atomic on POSIX). A crash, a kill or Ctrl-C
while writing leaves the earlier file as it was, and the temporary file is removed (only SIGKILL or a power
cut can leave one behind, never in place of the target).

:func:`check_output` checks an output path before the long work starts: the folder, the suffix, and that it
is not one of the command's inputs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import IO

from bayes_scaling.errors import OutputError

__all__ = ["atomic_path", "atomic_write", "write_bytes", "write_text", "check_output", "signals_held", "written",
           "record_written", "TMP_MARK"]

#: every temporary file's name contains this (``.NAME.XXXX.tmp.SUFFIX``)
TMP_MARK = ".tmp"

#: the outputs put in place by this process, in order (:func:`written`)
_WRITTEN: list[Path] = []


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back within the block and raised again when it ends, in the main thread: a rename
    and the record of it happen both or neither before a signal's handler runs. (A signal mask would not do: the
    kernel hands a process's signal to any of its threads that does not block it, a sampler's or BLAS's.)"""
    import signal

    pending: list[int] = []

    def hold(signum, frame):
        pending.append(signum)

    held = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(sig)
            if current is not None and current is not signal.SIG_IGN:   # None: a handler not set by Python
                held[sig] = signal.signal(sig, hold)
    except ValueError:  # not the main thread: no handler of this process runs here
        pass
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)
        if pending:
            signal.raise_signal(pending[0])   # to its own handler, now that the block is done


def _staging(path: Path) -> bool:
    """Whether ``path`` lies in a temporary folder (``.NAME.XXXX.tmp``) that is moved into place later."""
    return any(part.startswith(".") and TMP_MARK in part for part in path.parent.parts)


def record_written(path: str | PathLike) -> None:
    """Note that ``path`` (a file or a folder) has been put in place (not a file inside a staging folder)."""
    path = Path(os.path.abspath(path))
    if not _staging(path):
        _WRITTEN.append(path)


def written(since: int = 0) -> list[Path]:
    """The outputs this process has put in place, in order, from the ``since``-th on (``len(written())`` marks a
    point: a command that is interrupted names what it had already written)."""
    return list(_WRITTEN[since:])


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777  # keep an existing file's permissions
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - e.g. a file system without fsync on folders
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write to; when the block ends without an exception the file
    is fsynced and renamed to ``path``; otherwise (any exception, Ctrl-C included) it is removed and ``path`` is
    left as it was. The parent folder is created if missing.

    >>> with atomic_path("out/fit.nc") as tmp:          # doctest: +SKIP
    ...     dataset.to_netcdf(tmp)
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder of {path}: {exc.strerror or exc}") from None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{TMP_MARK}{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.is_file():
            raise OutputError(f"{path}: the writer left no file")
        os.chmod(tmp, _mode_for(path))
        _fsync(tmp)
        with signals_held():   # in place and recorded, or neither, when a signal's handler runs
            os.replace(tmp, path)
            record_written(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync(path.parent, directory=True)


@contextlib.contextmanager
def atomic_write(path: str | PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """``open(path, mode)``, atomically (see :func:`atomic_path`): the file appears complete or not at all."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_write writes whole files (mode 'w' or 'wb'), got {mode!r}")
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as fh:
        yield fh


def write_bytes(path: str | PathLike, data: bytes) -> Path:
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | PathLike, text: str) -> Path:
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(path: str | PathLike, *, inputs: Iterable[str | PathLike | None] = (),
                 suffixes: Iterable[str] | None = None, what: str = "output file") -> Path:
    """Check an output path before the work starts; an :class:`OutputError` naming the path when it is a
    folder, its folder cannot be created or written to, its suffix is not one of ``suffixes`` (when given),
    or it is one of the command's ``inputs`` (which it would overwrite)."""
    path = Path(path)
    if str(path) in ("", "."):
        raise OutputError(f"{what}: no file name given")
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; expected a file name")
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if path.suffix.lower() not in suffixes:
            raise OutputError(f"{what} {path}: expected a file name ending in {' or '.join(suffixes)}")
    for src in inputs:
        if src is not None and _same(path, Path(src)):
            raise OutputError(f"{what} {path} is also an input of this command; refusing to overwrite it "
                              "(choose another --out)")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: cannot write in {parent} (permission denied)")
    return path
