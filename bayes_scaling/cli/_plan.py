"""The output plan of a command, checked before any work, and folder outputs written all at once.

Every command's files are known from its arguments: the inputs (fit files, tables, model files, draws) and the
outputs (``--out`` FILE, or the files a folder command writes into ``--out`` DIR: :data:`FOLDER_OUTPUTS`).
:func:`check_plan` runs once for every command in :func:`bayes_scaling.cli.main`, before the command starts:

* an output folder must be a folder (or creatable) and writable, checked by creating and removing a temporary
  folder in it (so also for ``backtest``, ``calibrate``, ``demo``: before their fits);
* no output file may be one of the inputs (same resolved path or same inode), e.g. ``backtest
  DIR/backtest_points.csv --out DIR`` or ``report DIR/summary.csv --out DIR``.

Folder commands write into a temporary folder (:func:`staged_folder`: a hidden folder in ``--out``, or next
to it when ``--out`` does not exist yet) and move the files into
``--out`` only when all of them are written, with SIGINT/SIGTERM held back during the moves: an interrupt or an
error leaves the files already in ``--out`` byte for byte as they were.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bayes_scaling.errors import OutputError

__all__ = ["FOLDER_OUTPUTS", "OutputPlan", "check_plan", "plan_of", "staged_folder"]

#: the files each folder command writes into ``--out`` (report: some only with the comparison or contrasts, some
#: only for a law-spec or a transfer fit)
FOLDER_OUTPUTS: dict[str, tuple[str, ...]] = {
    "report": ("report.html", "summary.csv", "coverage.csv", "contrasts.csv", "comparison.csv", "pareto_k.csv",
               "loo.csv", "transfer.png", "transfer_fraction.png", "posteriors.png", "ppc.png", "prior_predictive.png",
               "law.png", "compare.png"),
    "backtest": ("backtest_summary.csv", "backtest_points.csv", "backtest.nc", "calibration.png"),
    "calibrate": ("ranks.csv", "checks.csv", "sbc_ecdf.png"),
    "demo": ("fit.nc", "summary.csv", "summary.txt", "transfer.png", "scratch_fit.nc", "transfer_from_losses.csv",
             "fit_from_losses.nc", "selection_lin_flan.csv", "selection_lin_flan.png"),
    "experiment run": ("runs.csv", "scratch.csv", "finetune.csv"),
}

#: argument names (``dest``) that name input files when they are strings
INPUT_ARGS = ("fit", "data", "scratch", "finetune", "at", "draws", "model", "config", "N_draws", "D_req_draws",
              "scratch_fit")


@dataclass
class OutputPlan:
    """What a command reads and writes: ``inputs`` (existing files), ``files`` (output files, each with the
    option that names it) and ``folder`` (the ``--out`` folder of a folder command, or None)."""

    command: str
    inputs: list[Path] = field(default_factory=list)
    files: list[tuple[str, Path]] = field(default_factory=list)
    folder: Path | None = None

    def check(self) -> None:
        """An :class:`OutputError` (one line naming the file and the problem) when the plan cannot be carried
        out without losing an input, or the output folder cannot be written."""
        if self.folder is not None:
            check_folder(self.folder)
        else:
            for option, out in self.files:
                if out.is_dir():
                    raise OutputError(f"{option} {out} is a folder; expected a file name")
        for option, out in self.files:
            for src in self.inputs:
                if same_file(out, src):
                    raise overwrite_error(option, out, src, self.folder)


def overwrite_error(option: str, out: Path, src: Path, folder: Path | None = None) -> OutputError:
    """The one line refusing to write ``out`` over the input ``src``."""
    if folder is None:
        return OutputError(f"{option} {out} is also an input of this command; refusing to overwrite it (choose "
                           "another --out)")
    return OutputError(f"{option} {folder}: the command writes {Path(out).name} there, and {out} is also an input "
                       "of this command; refusing to overwrite it (choose another --out)")


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """The same file: same inode (hard links, symbolic links), or the same resolved path."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except OSError:  # pragma: no cover - e.g. a loop of symbolic links
        return os.path.abspath(a) == os.path.abspath(b)


def check_folder(folder: str | os.PathLike, what: str = "--out") -> Path:
    """An output folder: not a file, and writable (a temporary folder is created in it, or in its nearest
    existing parent, and removed again), before the work starts."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file; expected a folder")
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {folder}: {parent} is not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".bayes-scaling-probe.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise OutputError(f"{what} {folder}: cannot write in {parent} ({exc.strerror or exc})") from None
    os.rmdir(probe)
    return folder


def input_files(args) -> list[Path]:
    """The existing files among the command's arguments :data:`INPUT_ARGS` (a folder given as an input is
    refused later by the reader, with its own message)."""
    found = []
    for name in INPUT_ARGS:
        value = getattr(args, name, None)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and v and Path(v).is_file():
                found.append(Path(v))
    return found


def command_name(args) -> str:
    sub = getattr(args, "experiment_command", None)
    return f"{args.command} {sub}" if sub else str(args.command)


def plan_of(args) -> OutputPlan:
    """The :class:`OutputPlan` of parsed command-line arguments."""
    name = command_name(args)
    plan = OutputPlan(name, inputs=input_files(args))
    out = getattr(args, "out", None)
    if out is None:
        return plan
    if name in FOLDER_OUTPUTS:
        plan.folder = Path(out)
        plan.files = [("--out", plan.folder / f) for f in FOLDER_OUTPUTS[name]]
    else:
        plan.files = [("--out", Path(out))]
    return plan


def check_arguments(args) -> None:
    """The options every command shares, checked before the work, with the package's own wording: ``--seed``
    (0 .. 2**32 - 1, not NumPy's message from deep inside a refit), and ``--draws``/``--tune``/``--chains``
    (positive, ``--tune`` within its limit, the draws of one fit within the memory available:
    :func:`bayes_scaling.inference.sampling.sampler_settings`; e.g. ``calibrate --draws 1e9``)."""
    seed = getattr(args, "seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1):
        raise ValueError(f"--seed must be an integer from 0 to {2**32 - 1} (2**32 - 1), got {seed!r}")
    numbers = [getattr(args, n, None) for n in ("draws", "tune", "chains")]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in numbers):
        from bayes_scaling.inference.sampling import sampler_settings

        sampler_settings(*numbers, 0, False)


def check_plan(args) -> OutputPlan:
    """:func:`check_arguments`, then :meth:`OutputPlan.check` of the command's plan; returns the plan."""
    check_arguments(args)
    plan = plan_of(args)
    plan.check()
    return plan


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary folder (in ``out`` when it exists, else next to it) to write a folder command's files
    into; when the block ends
    without an exception each file is moved into ``out`` (``os.replace``, signals held back meanwhile), so
    ``out`` gets all the new files or none; otherwise (an error, Ctrl-C, SIGTERM) the temporary folder is
    removed and ``out`` is left as it was. A file that would replace one of ``inputs`` is refused (an
    :class:`OutputError`, nothing moved)."""
    out = Path(os.path.abspath(out))
    check_folder(out)
    # inside --out when it exists (its parent may not be writable: `--out .`), else next to it
    where = out if out.is_dir() else out.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=where))
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot write in {where} ({exc.strerror or exc})") from None
    try:
        yield stage
        names = sorted(p.name for p in stage.iterdir())
        for name in names:
            for src in inputs:
                if src is not None and (out / name).exists() and same_file(out / name, src):
                    raise overwrite_error("--out", out / name, src, out)
        from bayes_scaling._atomic import _fsync, record_written, signals_held

        with signals_held():
            if not out.exists() and where == out.parent:   # a new folder: one rename
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(stage, 0o777 & ~umask)   # mkdtemp's 0o700 -> an ordinary folder's permissions
                os.replace(stage, out)
                names = []
            out.mkdir(parents=True, exist_ok=True)
            for name in names:
                src = stage / name
                if src.is_dir() and (out / name).is_dir():
                    shutil.rmtree(out / name)
                os.replace(src, out / name)
            record_written(out)
            _fsync(out, directory=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
