"""Reading and writing fit files: one netCDF ``xarray.DataTree`` per fit, with a ``bayes_scaling_kind``."""

from __future__ import annotations

import contextlib
import hashlib
import os
from os import PathLike
from pathlib import Path

import xarray as xr

from bayes_scaling.errors import FitFileError

KINDS = {"transfer": "transfer fit", "scratch": "from-scratch loss-law fit", "joint": "joint fit"}


#: suffixes of fit files (checked before a fit starts, so that hours of sampling do not end in a bad name)
FIT_SUFFIXES = (".nc", ".nc4", ".netcdf", ".h5")


def checksum_encoding(tree: xr.DataTree) -> dict[str, dict[str, dict]]:
    """The ``encoding`` of :meth:`xarray.DataTree.to_netcdf` that stores every numeric array (the draws, the
    data) with an HDF5 Fletcher-32 checksum: a flipped byte is then an error when the file is read, not a
    silently different summary. (Scalars and empty arrays cannot be chunked, so they have none.)"""
    encoding: dict[str, dict[str, dict]] = {}
    for node in tree.subtree:
        group = {}
        for name, var in node.dataset.variables.items():
            if var.ndim >= 1 and var.size > 0 and var.dtype.kind in "biufc":   # numbers, booleans
                group[str(name)] = {"fletcher32": True}
        if group:
            encoding[node.path] = group
    return encoding


def write_tree(tree: xr.DataTree, path: str | PathLike, **groups: xr.Dataset) -> Path:
    """Write ``tree`` plus the data ``groups`` (e.g. the input table) to ``path`` (h5netcdf, numeric arrays with
    checksums: :func:`checksum_encoding`), atomically: a temporary file in the same folder, fsynced, then
    renamed, so an interrupted write never leaves a broken file where a good one was, and a failed write (disk
    full: EFBIG/ENOSPC) leaves no temporary file (:func:`write_netcdf`)."""
    path = Path(path)
    tree = tree.copy()
    for name, ds in groups.items():
        tree[name] = xr.DataTree(ds)
    return write_netcdf(tree, path, encoding=checksum_encoding(tree))


def write_netcdf(obj: xr.DataTree | xr.Dataset, path: str | PathLike, **kwargs) -> Path:
    """``obj.to_netcdf`` (h5netcdf) into memory, then the bytes to ``path`` atomically
    (:func:`bayes_scaling._atomic.atomic_write`). HDF5 never writes to the disk itself: on a full disk or past
    ``ulimit -f`` its failed writes used to end in a segmentation fault while closing the file; here the write
    fails as an ``OSError`` (ENOSPC, EFBIG) of Python's own, the temporary file is removed and the earlier
    file stays as it was. (SIGXFSZ is ignored by Python, so a file past the limit is EFBIG, not a kill.)
    The file ends with the SHA-256 of its bytes (:data:`DIGEST_MAGIC`), checked when it is read
    (:func:`verify_digest`)."""
    import io

    from bayes_scaling._atomic import atomic_write

    path = Path(path)
    buffer = io.BytesIO()
    from bayes_scaling.inference._nutpie_private import defer_dask_array_check, no_distributed_import

    defer_dask_array_check()
    with no_distributed_import():
        obj.to_netcdf(buffer, engine="h5netcdf", **kwargs)
    view = buffer.getbuffer()
    digest = hashlib.sha256()
    try:
        with atomic_write(path, "wb") as fh:
            for start in range(0, len(view), 1 << 24):
                chunk = view[start:start + (1 << 24)]
                digest.update(chunk)
                fh.write(chunk)
            fh.write(_trailer(digest.hexdigest()))
    finally:
        view.release()
    return path


# ---- the file's digest and a guarded read --------------------------------------------------------------

#: every netCDF file the package writes ends with this line and the SHA-256 (hex) of the bytes before it
#: (HDF5 and netCDF readers ignore bytes past the end of file recorded in the HDF5 superblock)
DIGEST_MAGIC = b"\nbayes_scaling sha256 "
DIGEST_SIZE = len(DIGEST_MAGIC) + 64 + 1
#: seconds a file without the digest (written by bayes_scaling < 0.2.0, or edited) may take to be read by
#: the guarded check (:func:`check_structure`), plus one second per 50 MB
STRUCTURE_TIMEOUT = 30.0


def _trailer(hexdigest: str) -> bytes:
    return DIGEST_MAGIC + hexdigest.encode("ascii") + b"\n"


def verify_digest(path: str | PathLike) -> bool:
    """True when ``path`` ends with the package's digest line and the SHA-256 of the bytes before it matches;
    False when it has no digest line (an older or an edited file); a :class:`FitFileError` ("a checksum does
    not match: the file is damaged") when the digest differs: one byte changed anywhere in the file."""
    path = Path(path)
    size = path.stat().st_size
    if size < DIGEST_SIZE:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(size - DIGEST_SIZE)
        tail = fh.read(DIGEST_SIZE)
        if not tail.startswith(DIGEST_MAGIC) or not tail.endswith(b"\n"):
            return False
        fh.seek(0)
        left = size - DIGEST_SIZE
        while left > 0:
            chunk = fh.read(min(left, 1 << 24))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    if _trailer(digest.hexdigest()) != tail:
        raise FitFileError(f"cannot read {path} as a netCDF fit file: a checksum does not match: the file is "
                           "damaged (the SHA-256 of its bytes differs from the one written with it)")
    return True


#: run in a separate process by :func:`check_structure`: every object, attribute (dimension lists included)
#: and array of the file read with h5py, as h5netcdf will
_WALK = """
import sys
import h5py
def read(name, obj):
    for key in obj.attrs:
        obj.attrs[key]
    if isinstance(obj, h5py.Dataset):
        obj[()]
        for dim in obj.dims:
            dim.label, len(dim), [s.shape for s in dim.values()]
with h5py.File(sys.argv[1], "r") as f:
    read("/", f)
    f.visititems(read)
"""


def check_structure(path: str | PathLike, timeout: float | None = None) -> None:
    """Read every object of the HDF5 file ``path`` in a separate process with a time limit: a file whose
    metadata is damaged can send the HDF5 library into an endless loop (a zeroed heap of dimension lists) or a
    crash (holding Python's lock: no thread or signal gets to run), which no exception handler in this process could stop. A :class:`FitFileError` naming the file when
    that read fails, crashes or takes longer than ``timeout`` (default :data:`STRUCTURE_TIMEOUT` plus one second
    per 50 MB). Files with the package's digest need no such check (:func:`verify_digest`)."""
    import subprocess
    import sys

    path = Path(path)
    if not sys.executable:   # pragma: no cover - an embedded interpreter: no process to run the check in
        return
    if timeout is None:
        timeout = STRUCTURE_TIMEOUT + path.stat().st_size / 50e6
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONSTARTUP")}
    try:
        done = subprocess.run([sys.executable, "-c", _WALK, str(path)], capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FitFileError(f"cannot read {path} as a netCDF fit file: reading its structure did not end within "
                           f"{timeout:.0f} s: the file is damaged (its HDF5 metadata loops)") from None
    except OSError:   # pragma: no cover - no process could be started: read it here, unguarded
        return
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.strip().splitlines() if line.strip()]
        last = lines[-1] if lines else f"the reader ended with status {done.returncode}"
        if done.returncode < 0:
            last = f"the HDF5 reader crashed (signal {-done.returncode})"
        raise FitFileError(f"cannot read {path} as a netCDF fit file: {_reader_message(last)}")


def _reader_message(text: str) -> str:
    msg = text.strip().strip("'\"")
    if ": " in msg and msg.split(": ", 1)[0].isidentifier() and msg.split(": ", 1)[0].endswith("Error"):
        msg = msg.split(": ", 1)[1].strip().strip("'\"")   # "OSError: ..." from the checking process
    if "filter returned failure" in msg or "checksum" in msg:
        msg = f"a checksum does not match: the file is damaged ({msg})"
    return msg


def check_readable(path: str | PathLike) -> None:
    """Before a netCDF file is opened: its digest must match (:func:`verify_digest`); a file without one is read
    once in a separate process with a time limit (:func:`check_structure`). Either way a damaged file is one
    :class:`FitFileError`, never a hang or a crash."""
    if not verify_digest(path):
        check_structure(path)


@contextlib.contextmanager
def _quiet_finalizers():
    """Collect what a failed reader left (h5netcdf's ``File.__del__`` of a file it could not open raises
    AttributeError) without printing it: the reader's error is reported once, as one line, and nothing follows
    at exit. A ``KeyboardInterrupt`` in a finalizer still goes to the previous hook."""
    import gc
    import sys

    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
        gc.collect()
    finally:
        sys.unraisablehook = previous


def read_tree(path: str | PathLike, kind: str | None = None, groups: tuple[str, ...] = (),
              attrs: tuple[str, ...] = ()) -> xr.DataTree:
    """Load a fit file into memory; a :class:`FitFileError` naming the file when it is missing, unreadable,
    of another kind than ``kind`` (if given), lacks one of ``groups`` or of the attributes ``attrs``, or its
    ``posterior`` (when in ``groups``) has no ``chain``/``draw`` draws. The file is checked before the netCDF
    reader opens it (:func:`check_readable`): a damaged file is that error, never a hang."""
    if not isinstance(path, str | PathLike):
        from bayes_scaling.errors import InputTypeError

        raise InputTypeError(f"fit file: expected a path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise FitFileError(f"{path} is a folder; expected a fit file")
    if not path.is_file():
        raise FitFileError(f"fit file not found: {path}")
    check_readable(path)   # a damaged file: an error, never a hang in the HDF5 library
    msg = None
    with _quiet_finalizers():
        try:
            with xr.open_datatree(path, engine="h5netcdf") as tree:
                tree = tree.load()
        except Exception as exc:  # noqa: BLE001 - any reader failure is reported the same way
            msg = _reader_message(str(exc).strip().splitlines()[0]) if str(exc).strip() else type(exc).__name__
        # the failed reader's half-opened file goes with the exception (above), here, not at exit
    if msg is not None:
        raise FitFileError(f"cannot read {path} as a netCDF fit file: {msg}") from None
    found = tree.attrs.get("bayes_scaling_kind")
    missing = [g for g in groups if g not in tree.children]
    if kind is not None and found == kind and missing:
        raise FitFileError(f"{path}: a {KINDS[kind]} file (kind {kind!r}) needs the group(s) {', '.join(missing)}, "
                           "which it lacks (file incomplete or edited)")
    if kind is not None and (found != kind or missing):
        raise FitFileError(f"{path} is not a bayes_scaling {KINDS[kind]} (kind {found!r}, expected {kind!r}"
                           + (f"; missing group(s) {', '.join(missing)}" if missing else "") + ")")
    lacking = [a for a in attrs if a not in tree.attrs]
    if lacking:
        raise FitFileError(f"{path}: a {KINDS.get(kind, 'fit')} file needs the attribute(s) {', '.join(lacking)}, "
                           "which it lacks (file edited or written by something else)")
    if "seed" in attrs:
        try:
            int(tree.attrs["seed"])
        except (TypeError, ValueError):
            raise FitFileError(f"{path}: attribute 'seed' is {tree.attrs['seed']!r}, not an integer") from None
    if "posterior" in groups:
        post = tree["posterior"].to_dataset()
        if any(post.sizes.get(d, 0) < 1 for d in ("chain", "draw")):
            raise FitFileError(f"{path}: the posterior has no draws (dims {dict(post.sizes)}; expected chain "
                               "and draw)")
    return tree


def json_attr(tree: xr.DataTree, path: str | PathLike, name: str):
    """The JSON-encoded attribute ``name`` of a fit file, or a :class:`FitFileError` naming the file."""
    import json

    try:
        return json.loads(tree.attrs[name])
    except KeyError:
        raise FitFileError(f"{path}: missing attribute {name!r}") from None
    except (TypeError, ValueError) as exc:
        raise FitFileError(f"{path}: attribute {name!r} is not valid JSON ({exc})") from None


def require_variables(tree: xr.DataTree, path: str | PathLike, names, group: str = "posterior",
                      what: str = "parameter") -> None:
    """A :class:`FitFileError` naming the file when ``group`` lacks one of ``names`` or one of them has a NaN
    draw (a partial or damaged posterior is never summarised as if it were complete)."""
    import numpy as np

    ds = tree[group].to_dataset()
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise FitFileError(f"{path}: the {group} lacks the {what}(s) {', '.join(missing)} (expected "
                           f"{', '.join(names)}); the file is incomplete or was edited")
    for n in names:
        values = ds[n].values
        if not np.issubdtype(values.dtype, np.number):
            raise FitFileError(f"{path}: {what} {n!r} holds {values.dtype} values, not numbers: a damaged or "
                               "edited file; refit")
        if np.issubdtype(values.dtype, np.floating) and np.isnan(values).any():
            bad = int(np.isnan(values).sum())
            raise FitFileError(f"{path}: {what} {n!r} has {bad} NaN draw(s) of {values.size}: a partial or "
                               "damaged posterior, not a fit; refit")
        if np.issubdtype(values.dtype, np.floating) and np.isinf(values).any():
            bad = int(np.isinf(values).sum())
            raise FitFileError(f"{path}: {what} {n!r} has {bad} infinite draw(s) of {values.size}: a damaged "
                               "or edited posterior, not a fit; refit")


def without(tree: xr.DataTree, *groups: str) -> xr.DataTree:
    """A copy of ``tree`` without the data ``groups`` (kept apart from the draws once loaded)."""
    tree = tree.copy()
    for g in groups:
        del tree[g]
    return tree
