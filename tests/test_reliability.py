"""Nothing lost, round two (issue 26): the output plan, folder outputs written all at once, interrupts at any
moment, damaged fit files, a full disk, the exit-status table, messages, the Python API's input types and
predictions' limits. Each section names the class of the issue it covers; every test is fast (no fit of its own:
the module's fit file is the session's small fit)."""

from __future__ import annotations

import errno
import gc
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers import digest, one_error_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayes_scaling as bs
from bayes_scaling.cli import _exit, build_parser, main
from bayes_scaling.cli._plan import FOLDER_OUTPUTS, plan_of, staged_folder
from bayes_scaling.data.datasets import EXAMPLE_CSV
from bayes_scaling.data.tables import read_table
from bayes_scaling.errors import DataError, FitFileError, InputTypeError, OutputError
from bayes_scaling.inference.fitfile import read_tree

EXE = str(Path(sys.executable).with_name("bayes-scaling"))
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])



def digests(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(Path(folder).iterdir()) if p.is_file()}



@pytest.fixture(scope="module")
def fit_file(tmp_path_factory, small_fit):
    path = tmp_path_factory.mktemp("reliable") / "fit.nc"
    small_fit.save(path)
    return path


# ---- 1. one output plan, checked before any work ----------------------------------------------------------


def _folder_argv(command: str, data: Path, out: Path) -> list[str]:
    return {"report": ["report", str(data), "--out", str(out)],
            "backtest": ["backtest", str(data), "--holdout", "N > 1e8", "--out", str(out)],
            "calibrate": ["calibrate", "--model", str(data), "--out", str(out)],
            "demo": ["demo", "--out", str(out)],
            "experiment run": ["experiment", "run", "--config", str(data), "--out", str(out)]}[command]


@pytest.mark.parametrize("command, name", [(c, n) for c, names in FOLDER_OUTPUTS.items() for n in names
                                           if c != "demo"])   # demo reads no file of the user's
def test_plan_refuses_every_folder_output_that_is_an_input(tmp_path, command, name):
    """Every file a folder command writes is compared with every input, through another spelling of the path
    too, before any work."""
    src = tmp_path / name
    src.write_text("precious\n")
    for spelled in (src, tmp_path / "." / name, tmp_path / ".." / tmp_path.name / name):
        args = build_parser().parse_args(_folder_argv(command, spelled, tmp_path))
        with pytest.raises(OutputError, match=rf"writes {name} there.*also an input"):
            plan_of(args).check()


@pytest.mark.parametrize("argv, name", [
    (["backtest", "{d}/backtest_points.csv", "--holdout", "N > 1e8", "--out", "{d}"], "backtest_points.csv"),
    (["report", "{d}/summary.csv", "--out", "{d}"], "summary.csv"),        # summary.csv: a fit file
    (["report", "{d}/summary.csv", "--out", "{d}/./"], "summary.csv"),
    (["export", "{d}/summary.csv", "--out", "{d}/../{dn}/summary.csv"], "summary.csv"),
])
def test_commands_never_overwrite_their_input(tmp_path, fit_file, capsys, argv, name):
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(fit_file if name == "summary.csv" else EXAMPLE_CSV, d / name)
    before = digests(d)
    t0 = time.perf_counter()
    assert main([a.format(d=d, dn=d.name) for a in argv]) == _exit.USAGE
    assert "also an input" in one_error_line(capsys.readouterr().err)
    assert digests(d) == before and time.perf_counter() - t0 < 30   # refused before any fit


@pytest.mark.parametrize("command", ["report", "backtest", "calibrate", "demo"])
def test_unwritable_out_folder_refused_before_the_fits(tmp_path, fit_file, capsys, monkeypatch, command):
    import bayes_scaling.cli._plan as plan

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(plan.tempfile, "mkdtemp", denied)
    data = fit_file if command == "report" else EXAMPLE_CSV
    argv = _folder_argv(command, data, tmp_path / "out")
    if command == "calibrate":
        argv = ["calibrate", "--out", str(tmp_path / "out")]
    t0 = time.perf_counter()
    assert main(argv) == _exit.USAGE
    assert "cannot write in" in one_error_line(capsys.readouterr().err)
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only folder")
def test_read_only_out_folder_refused(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["demo", "--out", str(ro / "demo")]) == _exit.USAGE
        assert "cannot write in" in one_error_line(capsys.readouterr().err)
    finally:
        ro.chmod(0o755)


# ---- 2. folder outputs: all files or none -----------------------------------------------------------------


def _old_folder(folder: Path, names) -> dict[str, str]:
    folder.mkdir(exist_ok=True)
    for n in names:
        (folder / n).write_bytes(f"old {n}\n".encode())
    (folder / "mine.txt").write_text("not the command's\n")
    return digests(folder)


@SETTINGS
@given(names=st.lists(st.sampled_from(FOLDER_OUTPUTS["report"]), min_size=1, max_size=6, unique=True),
       fail_after=st.integers(0, 6), exc=st.sampled_from([KeyboardInterrupt, RuntimeError]))
def test_staged_folder_all_or_nothing(tmp_path_factory, names, fail_after, exc):
    root = tmp_path_factory.mktemp("stage")
    out = root / "out"
    before = _old_folder(out, names)
    failed = fail_after < len(names)
    try:
        with staged_folder(out) as stage:
            assert stage.parent == out and stage.name.startswith(".out.")   # out exists: staged inside
            for i, n in enumerate(names):
                if i == fail_after:
                    raise exc()
                (stage / n).write_text(f"new {n}\n")
    except (KeyboardInterrupt, RuntimeError):
        assert failed
    after = digests(out)
    if failed:
        assert after == before            # byte for byte
    else:
        assert after["mine.txt"] == before["mine.txt"]
        assert all((out / n).read_text() == f"new {n}\n" for n in names)
    assert sorted(p.name for p in root.iterdir()) == ["out"]   # no temporary folder left


def test_staged_folder_new_out_folder(tmp_path):
    out = tmp_path / "new" / "out"
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(out) as stage:
            (stage / "a.csv").write_text("a\n")
            raise KeyboardInterrupt
    assert not out.exists() and list((tmp_path / "new").iterdir()) == []
    with staged_folder(out) as stage:
        (stage / "a.csv").write_text("a\n")
    assert sorted(p.name for p in out.iterdir()) == ["a.csv"] and list((tmp_path / "new").iterdir()) == [out]


def test_staged_folder_refuses_to_replace_an_input_at_the_end(tmp_path):
    out = tmp_path / "out"
    before = _old_folder(out, ["summary.csv"])
    with pytest.raises(OutputError, match="also an input"):
        with staged_folder(out, inputs=[out / "summary.csv"]) as stage:
            (stage / "summary.csv").write_text("new\n")
    assert digests(out) == before


@pytest.mark.usefixtures("default_signals")
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_report_leaves_the_old_files(tmp_path, fit_file, capsys, monkeypatch, sig, status):
    """Before: report wrote summary.csv and transfer.png, then was interrupted: mixed old and new files, and a
    message saying the files written before were unchanged."""
    from bayes_scaling.output import plots

    out = tmp_path / "report"
    before = _old_folder(out, ["summary.csv", "transfer.png", "report.html"])

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), sig)
        time.sleep(5)

    monkeypatch.setattr(plots, "plot_ppc", interrupted)   # after summary.csv, transfer.png, posteriors.png
    assert main(["report", str(fit_file), "--out", str(out), "--no-compare"]) == status
    line = one_error_line(capsys.readouterr().err)
    assert f"interrupted by {signal.Signals(sig).name}" in line and "unchanged" in line
    assert digests(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


# ---- 3. damaged fit files -----------------------------------------------------------------------------------


def test_fit_files_carry_checksums(fit_file):
    with h5py.File(fit_file, "r") as f:
        arrays = []
        f.visititems(lambda name, obj: arrays.append(obj) if isinstance(obj, h5py.Dataset) else None)
        numeric = [d for d in arrays if d.dtype.kind in "fiu" and d.ndim >= 1 and d.size > 0
                   and "message" not in d.name]   # text in xarray (None when no divergence), NaN on disk
        assert numeric and all(d.fletcher32 for d in numeric), [d.name for d in numeric if not d.fletcher32]


@pytest.mark.parametrize("n_bytes", [1, 8, 64])
def test_flipped_bytes_in_the_draws_are_detected(tmp_path, fit_file, capsys, n_bytes):
    """Before: 64 flipped bytes in the draws changed the summary silently."""
    bad = tmp_path / "bad.nc"
    shutil.copy(fit_file, bad)
    with h5py.File(fit_file, "r") as f:
        offset = f["posterior/beta"].id.get_chunk_info(0).byte_offset
    raw = bytearray(bad.read_bytes())
    for i in range(n_bytes):
        raw[offset + 16 + i] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(FitFileError, match="checksum does not match"):
        bs.load(bad)
    assert main(["summary", str(bad)]) == _exit.USAGE
    assert "the file is damaged" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("value, message", [(np.inf, "infinite draw(s)"), (-np.inf, "infinite draw(s)"),
                                            (np.nan, "NaN draw(s)")])
def test_non_finite_draws_refused_on_load(tmp_path, fit_file, value, message):
    tree = read_tree(fit_file)
    post = tree["posterior"].to_dataset()
    post["beta"].values[0, :3] = value
    tree["posterior"] = xr.DataTree(post)
    tree.to_netcdf(tmp_path / "edited.nc", engine="h5netcdf")
    with pytest.raises(FitFileError, match=r"'beta' has 3 " + message.replace("(", r"\(").replace(")", r"\)")) \
            as info:
        bs.load(tmp_path / "edited.nc")
    assert str(tmp_path / "edited.nc") in str(info.value)


def test_damaged_file_leaves_nothing_for_the_exit(tmp_path, fit_file, monkeypatch):
    """Before: the one-line error, then h5netcdf's "Exception ignored in File.close" traceback at exit: a file
    the reader could not open (damaged metadata) is half initialised, and its ``__del__`` (``close``) fails
    when the error that holds it is collected. Here the reader fails the same way, deterministically."""
    class HalfOpened:   # like h5netcdf.File when File.__init__ failed part way
        def __del__(self):
            raise AttributeError("'File' object has no attribute '_writable'")

    def failing_reader(path, **kwargs):
        handle = HalfOpened()   # noqa: F841 - held by the traceback's frame, as h5netcdf's is
        raise OSError("Unable to synchronously open object (incorrect metadata checksum)")

    monkeypatch.setattr(xr, "open_datatree", failing_reader)
    raised = []
    monkeypatch.setattr(sys, "unraisablehook", raised.append)
    with pytest.raises(FitFileError, match="checksum does not match"):
        read_tree(fit_file)
    gc.collect()
    assert raised == [], [str(u.exc_value) for u in raised]


# ---- 5. a full disk -----------------------------------------------------------------------------------------


@pytest.fixture
def file_size_limit():
    """``ulimit -f``: files of this process may not grow beyond the limit (Python ignores SIGXFSZ: EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def set_limit(n_bytes: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))

    yield set_limit
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="POSIX file size limits")
def test_fit_on_a_full_disk(tmp_path, small_fit, capsys, monkeypatch, file_size_limit):
    """Before: SIGSEGV (4 of 4), an h5py traceback and a temporary file left next to --out."""
    import bayes_scaling.inference.sampling as sampling

    out = tmp_path / "fit.nc"
    out.write_bytes(b"an earlier fit\n")
    monkeypatch.setattr(sampling, "fit_transfer", lambda *a, **k: small_fit)
    file_size_limit(100 * 1024)
    status = main(["fit", str(EXAMPLE_CSV), "--out", str(out)])
    assert status == _exit.WRITE_FAILED
    assert "File too large" in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"an earlier fit\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.nc"]


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="POSIX file size limits")
@pytest.mark.parametrize("command", ["fit", "export"])
def test_full_disk_in_a_process_of_its_own(tmp_path, fit_file, command):
    """Fault injection, as a user meets it: the command in a process of its own whose files may not grow past
    100 kB (``ulimit -f``, RLIMIT_FSIZE set in the child). Before: SIGSEGV while HDF5 closed the file. Now:
    status 3 and one line, the earlier ``--out`` byte for byte, no temporary file beside it."""
    out = tmp_path / ("fit.nc" if command == "fit" else "draws.csv")
    out.write_bytes(b"an earlier output\n")
    argv = {"fit": [EXE, "fit", str(EXAMPLE_CSV), "--out", str(out), "--draws", "200", "--tune", "100",
                    "--chains", "2", "-q"],
            "export": [EXE, "export", str(fit_file), "--out", str(out)]}[command]
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    limit = 100 * 1024 if hard == resource.RLIM_INFINITY else min(100 * 1024, hard)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

    done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=small_files, timeout=600)
    assert done.returncode == _exit.WRITE_FAILED, done.stderr
    line = one_error_line(done.stderr)
    assert "cannot write the output" in line and "File too large" in line
    assert out.read_bytes() == b"an earlier output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@pytest.mark.parametrize("code, status", [(errno.ENOSPC, 3), (errno.EFBIG, 3), (errno.EIO, 3),
                                          (errno.ENOENT, 2), (errno.EACCES, 2)])
def test_write_failures_have_their_own_status(monkeypatch, capsys, fit_file, tmp_path, code, status):
    import bayes_scaling.output.exports as exports

    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(exports, "export", failing)
    assert main(["export", str(fit_file), "--out", str(tmp_path / "d.csv")]) == status
    assert os.strerror(code) in one_error_line(capsys.readouterr().err)


# ---- 4. interrupts at any moment ---------------------------------------------------------------------------


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("delay", [0.2, 0.45, 0.9, 1.5])
def test_ctrl_c_while_starting(fit_file, delay):
    """Before: a KeyboardInterrupt traceback in the first ~0.6 s; later, while the libraries loaded, the
    package's unraisable hook swallowed it and `summary` exited 0."""
    proc = subprocess.Popen([EXE, "summary", str(fit_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_sigint_default)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted by SIGINT" in one_error_line(err)


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler of its own for ``sig`` (Linux: ``SigCgt`` in /proc/PID/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except (OSError, ValueError):
        pass
    return False


def _signal_fit_at(tmp_path: Path, sig: int, delay: float) -> tuple[subprocess.CompletedProcess, Path, str]:
    """``bayes-scaling fit`` over an earlier fit file, ``sig`` sent ``delay`` s after the executable has installed
    its handlers (SIGTERM: after the start, whatever is running then). Returns the run, the output, its digest."""
    out = tmp_path / "fit.nc"
    out.write_bytes(b"an earlier fit file\n" * 1000)
    before = digest(out)
    proc = subprocess.Popen([EXE, "fit", str(EXAMPLE_CSV), "--out", str(out), "--draws", "100", "--tune", "100",
                             "--chains", "2", "--seed", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_sigint_default)
    started = time.monotonic()
    if sig == signal.SIGINT:   # Python's own start-up comes first (see below); then the package's code runs
        while not _catches(proc.pid, signal.SIGTERM) and proc.poll() is None and time.monotonic() - started < 60:
            time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(sig)
    out_text, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out_text, err), out, before


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="Linux /proc shows a process's handlers")
@pytest.mark.parametrize("seed", range(4))
def test_signals_at_random_moments_keep_the_earlier_output(tmp_path, seed):
    """SIGINT or SIGTERM at a random moment of ``bayes-scaling fit`` (half of them in the first second, while
    the libraries load; the others up to the end of the fit and its writing): status 130 or 143 and one line,
    no traceback, the earlier ``--out`` byte for byte and no temporary file; or, when the fit had finished
    first, status 0 and a fit file that loads. SIGTERM may come from the process's first instant (before
    Python's own start-up, the signal's default ends it: status -15, which a shell reports as 143). SIGINT is
    sent once the executable's first lines have run: in the few milliseconds before, Python's start-up (its
    ``site`` module) turns it into its own "Fatal Python error" traceback, before any code of the package."""
    import random

    rng = random.Random(seed)
    sig = (signal.SIGINT, signal.SIGTERM)[seed % 2]
    delay = rng.uniform(0, 1.0) if seed < 2 else rng.uniform(0, 15.0)
    done, out, before = _signal_fit_at(tmp_path, sig, delay)
    err = done.stderr
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "fit.nc")
    assert leftovers == [], leftovers
    if done.returncode == 0:   # the fit was done first
        assert bs.load(out).posterior.sizes["draw"] == 100
        return
    status = 128 + int(sig)
    assert done.returncode in (status, -int(sig)), (done.returncode, err)
    if done.returncode == status:
        line = one_error_line(err)
        assert f"interrupted by {signal.Signals(sig).name}" in line
        if digest(out) != before:   # the signal came once the fit was in place: said so, and the file is whole
            assert f"stopped after writing {out}" in line, line
            assert bs.load(out).posterior.sizes["draw"] == 100
            return
        assert "stopped without saving" in line or "nothing was written" in line, line
    else:
        assert err.strip() == "", err
    assert digest(out) == before


_SIGNAL_ON_RENAME = """
import os, signal, sys
from bayes_scaling_launch import main

SIG, TARGET = int(sys.argv.pop(1)), sys.argv.pop(1)
rename = os.replace

def replace(src, dst):   # the signal comes the instant the output is in place
    rename(src, dst)
    if os.path.basename(str(dst)) == TARGET:
        os.kill(os.getpid(), SIG)

os.replace = replace
sys.exit(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_the_instant_the_output_is_in_place_is_reported_as_such(fit_file, tmp_path, sig):
    """Before: a signal right after the rename that put the output in place ended the command with "stopped
    without saving partial results (files written before are unchanged)", though the file had been replaced
    (a slow test signalling at random moments caught it). Now the rename and its record happen both before the
    signal's handler runs, and the line names the file, which is whole."""
    out = tmp_path / "summary.csv"
    out.write_text("an earlier file\n")
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_ON_RENAME, str(int(sig)), out.name, "export",
                           str(fit_file), "--out", str(out)], capture_output=True, text=True, timeout=300,
                          preexec_fn=_sigint_default)
    line = one_error_line(proc.stderr)
    assert proc.returncode == 128 + int(sig), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"interrupted by {signal.Signals(sig).name}" in line and f"stopped after writing {out}" in line, line
    assert "beta" in out.read_text()   # the new file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]   # no temporary file


_SLOW_EXIT = """
import atexit, sys, time
import bayes_scaling.cli as cli
from bayes_scaling_launch import main
command = cli.main

class Library:   # torn down with the modules, after the interpreter has reset the signal handlers
    def __del__(self):
        if PHASE == "teardown":
            print("tearing down", file=sys.stderr, flush=True)
            time.sleep(3)

def run(argv=None):
    status = command(argv)
    if PHASE == "atexit":   # a library's exit handler that takes its time
        atexit.register(lambda: (print("exiting", file=sys.stderr, flush=True), time.sleep(60)))
    return status

PHASE = sys.argv.pop(1)
cli.main = run
cli.library = Library()
sys.exit(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("phase", ["atexit", "teardown"])
def test_a_signal_once_the_command_is_done_keeps_its_status(fit_file, phase, sig):
    """Before: a signal while the interpreter exited (thread joins, the libraries' exit handlers, tearing the
    modules down: seconds after a fit) ended the process with status 130/143 (the output already written) or
    killed it. Now the command's status stands: at once during the exit handlers, after the teardown in it."""
    env = dict(os.environ, BAYES_SCALING_DEBUG="1")   # the interpreter's full exit (teardown included)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_EXIT, phase, "summary", str(fit_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default,
                            env=env)
    mark = proc.stderr.readline().strip()
    assert mark == ("exiting" if phase == "atexit" else "tearing down"), mark + proc.stderr.read()
    start = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == _exit.OK, err
    assert "Traceback" not in err and "interrupted" not in err, err
    assert "beta" in out   # the summary was printed in full
    assert time.monotonic() - start < 30


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="Linux /proc shows a process's handlers")
@pytest.mark.parametrize("seed", range(4, 30))
def test_signals_at_many_more_random_moments(tmp_path, seed):
    test_signals_at_random_moments_keep_the_earlier_output(tmp_path, seed)


@pytest.mark.usefixtures("default_signals")
def test_an_interrupt_a_library_swallows_still_ends_the_command(monkeypatch, capsys, fit_file):
    """A Ctrl-C raised inside a finalizer goes to the unraisable hook; re-delivered, it may be caught by a
    library; the command still ends with status 130, never 0."""
    import bayes_scaling.cli.summary as summary_command

    class Finalizer:
        def __del__(self):
            raise KeyboardInterrupt

    def summary(args):
        try:
            Finalizer()          # collected at once: KeyboardInterrupt in __del__ -> the unraisable hook
            time.sleep(0.2)      # ... re-delivered here, and swallowed by "a library"
        except KeyboardInterrupt:
            pass
        return 0

    monkeypatch.setattr(summary_command, "cmd_summary", summary)
    assert main(["summary", str(fit_file)]) == 130
    assert "interrupted by SIGINT" in one_error_line(capsys.readouterr().err)


def test_local_cluster_workers_ignore_ctrl_c(monkeypatch):
    import distributed

    from bayes_scaling.inference import _worker_preload, batch

    seen = {}

    class Cluster:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            raise RuntimeError("no cluster in this test")

    monkeypatch.setattr(distributed, "LocalCluster", Cluster)
    with pytest.raises(RuntimeError, match="no cluster"):
        with batch.batch_client(workers=2, n_tasks=4):
            pass
    assert seen["preload"] == ["bayes_scaling.inference._worker_preload"]
    saved = signal.getsignal(signal.SIGINT)
    try:
        _worker_preload.dask_setup(None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, saved)


@pytest.mark.slow
def test_ctrl_c_with_a_local_cluster_is_quiet():
    code = ("import time\nfrom bayes_scaling.inference.batch import batch_client\n"
            "with batch_client(workers=2) as c:\n    print(len(c.scheduler_info()['workers']), flush=True)\n"
            "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=_sigint_default)
    assert proc.stdout.readline().strip() == "2"
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGINT)   # what a terminal's Ctrl-C does: the whole group
    _, err = proc.communicate(timeout=60)
    assert err.count("KeyboardInterrupt") <= 1, err   # the parent's own only, none from the workers


# ---- 6. one exit-status table ------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["calibrate", "--draws", "1e9", "--out", "{tmp}/sbc"], "GB of draws in memory"),
    (["calibrate", "--tune", "1e9", "--out", "{tmp}/sbc"], "beyond the limit"),
    (["backtest", str(EXAMPLE_CSV), "--holdout", "N > 1e8", "--out", "{tmp}/bt", "--draws", str(10**13)],
     "GB of draws in memory"),
    (["predict", "{fit}", "--N", "1e8", "--D-F", "1e6", "--seed", "-1"], "--seed must be an integer from 0"),
    (["report", "{fit}", "--out", "{tmp}/r", "--seed", str(2**32)], "--seed must be an integer from 0"),
    (["export", "{fit}", "--out", "{tmp}/d.csv", "--seed", "-3"], "--seed must be an integer from 0"),
])
def test_bad_settings_status_2_one_line(tmp_path, fit_file, capsys, argv, message):
    t0 = time.perf_counter()
    assert main([a.format(tmp=tmp_path, fit=fit_file) for a in argv]) == _exit.USAGE
    assert message in one_error_line(capsys.readouterr().err)
    assert time.perf_counter() - t0 < 30 and list(tmp_path.iterdir()) == []


def test_exit_status_table_documented():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    for status in (_exit.OK, _exit.CHECK_FAILED, _exit.USAGE, _exit.WRITE_FAILED, _exit.INTERRUPTED_SIGINT,
                   _exit.INTERRUPTED_SIGTERM):
        assert f"| {status} " in doc and f"{status} " in _exit.__doc__


# ---- 7. messages ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["summary", "{d}"], "is a folder; expected a fit file"),
    (["fit", "{d}", "--out", "{tmp}/f.nc"], "is a folder; expected a CSV file"),
    (["fit", str(EXAMPLE_CSV), "--model", "{d}", "--out", "{tmp}/f.nc"], "is a folder; expected a TOML file"),
    (["quantiles", "{d}"], "is a folder; expected a file of draws"),
    (["export", "{fit}", "--out", "{d}"], "is a folder; expected a file name"),
    (["predict", "{fit}", "--at", "{d}"], "is a folder; expected a CSV file"),
    (["quantiles", "{tmp}/empty.csv"], "no draws to summarise"),
])
def test_messages_say_what_is_wrong(tmp_path, fit_file, capsys, argv, message):
    (tmp_path / "d").mkdir()
    (tmp_path / "empty.csv").write_text("chain,draw\n0,0\n0,1\n")
    assert main([a.format(d=tmp_path / "d", tmp=tmp_path, fit=fit_file) for a in argv]) == _exit.USAGE
    line = one_error_line(capsys.readouterr().err)
    assert message in line and "not found" not in line and "format=" not in line


# ---- 8. the Python API's input types ------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE_CSV)


@pytest.mark.parametrize("make", [lambda df: df["N"], lambda df: df.to_numpy(), lambda df: df.to_numpy().tolist(),
                                  lambda df: 3, lambda df: None, lambda df: tuple(df.columns), lambda df: b"x.csv"])
@pytest.mark.parametrize("call", ["from_frame", "from_csv", "fit_transfer", "fit", "read_table"])
def test_api_refuses_what_is_not_a_table(make, call):
    """Before: a pathlib TypeError (Series, ndarray) or AttributeError from the internals."""
    fn = {"from_frame": bs.TransferData.from_frame, "from_csv": bs.TransferData.from_csv,
          "fit_transfer": lambda x: bs.fit_transfer(x, draws=10, tune=10, chains=1),
          "fit": lambda x: bs.fit(x, "transfer", draws=10, tune=10, chains=1), "read_table": read_table}[call]
    with pytest.raises(TypeError, match="expected a pandas DataFrame, a dict of columns or the path of a CSV "
                                        "file, got") as info:
        fn(make(_frame()))
    assert isinstance(info.value, InputTypeError) and "\n" not in str(info.value)


def test_api_takes_a_dict_of_columns():
    df = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = bs.TransferData.from_frame({c: df[c].tolist() for c in df.columns})
        b = bs.TransferData.from_frame(df)
    assert a.n_used == b.n_used and a.pretraining == b.pretraining


ODD = st.sampled_from([True, False, np.bool_(True), 1 + 2j, np.complex128(3), pd.Timestamp("2024-01-01"),
                       np.datetime64("2024-01-01"), pd.Timedelta("1D")])


@SETTINGS
@given(rows=st.lists(st.integers(0, 101), min_size=1, max_size=5, unique=True), value=ODD,
       column=st.sampled_from(["N", "D_F", "D_T"]))
def test_odd_values_in_numeric_columns_are_refused(rows, value, column):
    """Before: booleans, complex numbers and Timestamps in N were fitted silently (as 1/0, the real part,
    nanoseconds)."""
    df = _frame().astype({column: object})
    for r in rows:
        df.at[r, column] = value
    with pytest.raises(DataError, match=rf"column '{column}' has values that are not real numbers at rows") as info:
        bs.TransferData.from_frame(df, warn=False)
    shown = str(info.value).split("at rows ")[1]
    assert shown.startswith(", ".join(str(r) for r in sorted(rows)) + " (")


def _entry_points(fit) -> dict:
    """Every API entry point that takes a table: the table it takes, its numeric columns, and the call."""
    from bayes_scaling.analysis.effective import read_finetune
    from bayes_scaling.inference.fit import as_spec_fit
    from bayes_scaling.models.losslaws import read_scratch

    scratch, finetune = bs.datasets.load_scratch_losses(), bs.datasets.load_finetune_losses()
    quick = dict(draws=10, tune=10, chains=1, seed=1)
    return {
        "fit": (bs.datasets.load_corpora(), ["N", "D", "loss"], lambda t: bs.fit(t, "chinchilla_by_corpus", **quick)),
        "fit_transfer": (_frame(), ["N", "D_F", "D_T"], lambda t: bs.fit_transfer(t, **quick)),
        "TransferData": (_frame(), ["N", "D_F", "D_T"], lambda t: bs.TransferData.from_frame(t, warn=False)),
        "fit_scratch": (scratch, ["N", "D", "loss"], lambda t: bs.fit_scratch(t, **quick)),
        "fit_joint scratch": (scratch, ["N", "D", "loss"], lambda t: bs.fit_joint(t, finetune, **quick)),
        "fit_joint finetune": (finetune, ["N", "D_F", "loss"], lambda t: bs.fit_joint(scratch, t, **quick)),
        "effective_data scratch": (scratch, ["N", "D", "loss"], lambda t: bs.effective_data(t, finetune)),
        "effective_data finetune": (finetune, ["N", "D_F", "loss"], lambda t: bs.effective_data(scratch, t)),
        "read_scratch": (scratch, ["N", "D", "loss"], read_scratch),
        "read_finetune": (finetune, ["N", "D_F", "loss"], read_finetune),
        "Fit.predict": (_frame()[["pretraining", "N", "D_F"]], ["N", "D_F"], lambda t: as_spec_fit(fit).predict(t)),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_every_entry_point_checks_its_tables_alike(small_fit, data):
    """One checker behind every entry point (``bs.fit``, ``fit_transfer``, ``fit_scratch``, ``fit_joint``,
    ``effective_data``, ``Fit.predict``, the readers): a boolean, complex number, date, text, NaN or infinity in
    a numeric column, in a DataFrame or a dict of arrays, is a one-line DataError naming the column and the
    rows, before any sampling."""
    entries = _entry_points(small_fit)
    name = data.draw(st.sampled_from(sorted(entries)), label="entry point")
    table, columns, call = entries[name]
    column = data.draw(st.sampled_from(columns), label="column")
    value = data.draw(st.one_of(ODD, st.sampled_from([np.nan, np.inf, -np.inf, "many"])), label="value")
    rows = data.draw(st.lists(st.integers(0, len(table) - 1), min_size=1, max_size=4, unique=True), label="rows")
    as_dict = data.draw(st.booleans(), label="as a dict of arrays")
    table = table.astype({column: object})
    for r in rows:
        table.at[r, column] = value
    given_table = {c: table[c].to_numpy() for c in table.columns} if as_dict else table
    with pytest.raises(DataError, match=rf"column '{column}' has (values that are not real numbers|non-numeric "
                                        rf"values|missing or infinite values) at rows") as info:
        call(given_table)
    message = str(info.value)
    assert "\n" not in message and "array(" not in message and "{" not in message, message
    assert message.split("at rows ")[1].startswith(", ".join(str(r) for r in sorted(rows)))


@pytest.mark.parametrize("dtype_value", [True, 1 + 1j, pd.Timestamp("2024-01-01")])
def test_a_whole_column_of_odd_values_is_refused(dtype_value):
    df = _frame()
    df["N"] = dtype_value
    with pytest.raises(DataError, match="'N' has values that are not real numbers at rows 0, 1, 2"):
        bs.TransferData.from_frame(df, warn=False)


@SETTINGS
@given(names=st.lists(st.sampled_from(["NA", "None", "null", "nan", "N/A", "NULL", "n/a", "<NA>", "NaN", "web"]),
                      min_size=2, max_size=4, unique=True))
def test_group_names_that_look_missing_are_names(tmp_path_factory, names):
    """A spec's group column (here ``corpus``): only an empty cell is missing; ``NA``, ``None`` are names. In
    the numeric columns the markers are still missing values."""
    path = tmp_path_factory.mktemp("na") / "runs.csv"
    rows = [f"{n},{1e6 * (i + 1)},1e8,3.0" for i, n in enumerate(names)]
    path.write_text("corpus,N,D,loss\n" + "\n".join(rows) + "\n,1e6,1e8,3.1\nweb,NA,1e9,2.4\n")
    df = read_table(path)
    assert df["corpus"].iloc[: len(names)].tolist() == names
    assert df["corpus"].isna().tolist() == [False] * len(names) + [True, False]
    assert df["N"].dtype == float and np.isnan(df["N"].iloc[-1])


# ---- 9. predictions' limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("row, message", [
    ("text,-5,1e6", "column 'N' has values <= 0 at rows 1 (-5)"),
    ("text,0,1e6", "column 'N' has values <= 0 at rows 1 (0)"),
    ("text,1e8,-1", "column 'D_F' has values <= 0 at rows 1"),
    ("text,True,1e6", "column 'N' has non-numeric values at rows 0"),
])
def test_predict_at_refuses_points_outside_the_domain(tmp_path, fit_file, capsys, row, message):
    points = tmp_path / "points.csv"
    first = "text,True,1e6" if "True" in row else "text,1e8,1e6"
    points.write_text(f"pretraining,N,D_F\n{first}\n" + ("text,1e8,1e6\n" if "True" in row else f"{row}\n"))
    assert main(["predict", str(fit_file), "--at", str(points)]) == _exit.USAGE
    assert message in one_error_line(capsys.readouterr().err)


def test_predict_at_refuses_what_would_not_fit_in_memory(tmp_path, fit_file, capsys, monkeypatch):
    import bayes_scaling._system as system

    points = tmp_path / "points.csv"
    pd.DataFrame({"pretraining": ["text"] * 1000, "N": 1e8, "D_F": 1e6}).to_csv(points, index=False)
    monkeypatch.setattr(system, "available_memory", lambda: 10**6)   # 1 MB left
    assert main(["predict", str(fit_file), "--at", str(points)]) == _exit.USAGE
    line = one_error_line(capsys.readouterr().err)
    assert "predicting 1000 points from 600 draws would hold about" in line and "fewer points" in line
    monkeypatch.setattr(system, "available_memory", lambda: 10**12)
    assert main(["predict", str(fit_file), "--at", str(points), "--csv"]) == _exit.OK


def test_predict_grid_refuses_what_would_not_fit_in_memory(fit_file, capsys, monkeypatch):
    """Before: ``predict --N (1000 values) --D-F (1000 values)`` computed for minutes, then ran out of memory.
    Now the grid's size (distributions x N x D_F x draws x 8 bytes x the arrays held at once) is checked first:
    one line with the estimate and the options that cut it."""
    import bayes_scaling._system as system

    grid = [f"{v:.4g}" for v in np.logspace(6, 12, 100)]
    monkeypatch.setattr(system, "available_memory", lambda: 10**8)   # 100 MB left
    assert main(["predict", str(fit_file), "--N", *grid, "--D-F", *grid]) == _exit.USAGE
    line = one_error_line(capsys.readouterr().err)
    need = 2 * 100 * 100 * 600 * 8 * system.GRID_ARRAYS
    assert f"predicting 20000 points from 600 draws would hold about {need / 1e9:.3g} GB" in line
    assert "0.1 GB available" in line and "--N, --D-F, --pretraining" in line
    with pytest.raises(ValueError, match="fewer N, D_F"):
        bs.predict(bs.load(fit_file), N=np.logspace(6, 12, 100), D_F=np.logspace(6, 12, 100))
    monkeypatch.setattr(system, "available_memory", lambda: 10**12)
    assert main(["predict", str(fit_file), "--N", *grid[:3], "--D-F", *grid[:3], "--csv"]) == _exit.OK


@pytest.mark.parametrize("values, shown", [([True, 2e6], "True"), (pd.Series([1e6, False]), "False"),
                                           ([1e6 + 1j], "(1000000+1j)"), ([pd.Timestamp("2024-01-01")], "Timestamp"),
                                           (["1e6"], "'1e6'"), ([None], "None")])
def test_predict_grid_refuses_values_that_are_not_real_numbers(small_fit, values, shown):
    """Before: ``bs.predict(fit, N=[True], ...)`` predicted at N = 1."""
    with pytest.raises(bs.errors.BayesScalingError, match="not booleans, complex numbers, dates or text") as info:
        bs.predict(small_fit, N=values, D_F=[1e6])
    assert shown in str(info.value) and "\n" not in str(info.value)


@SETTINGS
@given(rows=st.integers(1, 40), columns=st.integers(1, 30),
       holes=st.sampled_from([0.0, 0.05, 0.5, 1.0]), infinite=st.booleans(), rounded=st.booleans(),
       q=st.one_of(st.floats(0, 1), st.lists(st.floats(0, 1), min_size=1, max_size=5)), axis=st.sampled_from([0, 1]),
       seed=st.integers(0, 2**32 - 1))
def test_quantiles_of_many_points_are_numpys(rows, columns, holes, infinite, rounded, q, axis, seed):
    """The vectorized quantiles (predictions of many points: 60 s -> about 1 s for 100,000 points) give
    ``np.nanquantile``'s numbers bit for bit: NaN holes, infinities, ties, columns of NaN only, any q."""
    from bayes_scaling._numeric import nanquantile

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, columns)) * 10.0 ** rng.integers(-3, 4)
    x = np.round(x) if rounded else x
    x[rng.random(x.shape) < holes] = np.nan
    if infinite:
        x[rng.random(x.shape) < 0.1] = np.inf
        x[rng.random(x.shape) < 0.05] = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # NumPy's "All-NaN slice"
        expected = np.nanquantile(x, q, axis=axis)
    got = nanquantile(x, q, axis=axis)
    assert got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True)


@pytest.mark.parametrize("name", ["NA", "None", "null"])
def test_spec_fit_keeps_a_group_named_like_missing(tmp_path, name):
    """Before: a corpus named ``NA`` in a spec fit's table was read as missing (an error, or a lost group)."""
    from bayes_scaling.laws.spec import LawSpec
    from bayes_scaling.models import spec_model as sm

    spec = LawSpec.from_toml(Path(__file__).resolve().parents[1] / "models" / "laws" / "chinchilla_by_corpus.toml")
    path = tmp_path / "runs.csv"
    rows = [f"{c},{n:g},{d:g},{3 + 1e3 / n ** 0.3 + 1e3 / d ** 0.3:.4f}" for c in (name, "web")
            for n in (1e7, 1e8, 1e9) for d in (1e9, 1e10)]
    path.write_text(f"corpus,{','.join(spec.inputs)},{spec.target}\n" + "\n".join(rows) + "\n")
    data = sm.prepare(spec, read_table(path, "data"))
    assert name in str(data.labels)


@pytest.mark.parametrize("call, message", [
    (lambda fit: bs.fit(_frame(), 3), "model: expected a LawSpec, a built-in name"),
    (lambda fit: bs.fit_transfer(_frame(), model=3), "model: expected a ModelConfig or the path"),
    (lambda fit: bs.load(3), "fit file: expected a path"),
    (lambda fit: bs.load(None), "fit file: expected a path"),
    (lambda fit: bs.predict(None, N=[1e8], D_F=[1e6]), "fit: expected a transfer fit"),
    (lambda fit: bs.inference.fit.as_spec_fit(fit).predict(_frame()["N"]), "new data: expected a pandas DataFrame"),
    (lambda fit: bs.inference.fit.as_spec_fit(fit).predict(np.ones((2, 3))), "got numpy.ndarray"),
])
def test_api_misuse_is_a_type_error_naming_what_is_accepted(small_fit, call, message):
    """Before: pathlib's TypeError, or AttributeError from the internals."""
    with pytest.raises(InputTypeError, match=message) as info:
        call(small_fit)
    assert isinstance(info.value, TypeError)
