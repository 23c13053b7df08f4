"""The ``bayes-scaling`` executable's entry point (``bayes_scaling_launch``): its exit and its BLAS threads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bayes_scaling.cli import _exit

# the executable's entry point with a library object torn down with the modules and an exit handler registered
# by the command: which of them run at the end of the process
_EXIT = """
import atexit, sys
import bayes_scaling.cli as cli
from bayes_scaling_launch import main
command = cli.main

class Library:
    def __del__(self):
        print("torn down", file=sys.stderr, flush=True)

def run(argv=None):
    atexit.register(lambda: print("exit handler", file=sys.stderr, flush=True))
    print("partial line without a newline", end="")   # flushed by the exit, not by the command
    return command(argv)

cli.main = run
cli.library = Library()
sys.exit(main())
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BAYES_SCALING_DEBUG", "OPENBLAS_NUM_THREADS")}
    return {**env, **extra}


@pytest.mark.parametrize("debug", [False, True])
def test_the_executable_skips_the_teardown_but_not_the_exit_handlers(tmp_path, debug):
    """After the command: the exit handlers run and the streams are flushed, the status stands; the modules'
    teardown (seconds after a fit) is skipped, unless BAYES_SCALING_DEBUG asks for the interpreter's full exit."""
    env = _env(BAYES_SCALING_DEBUG="1") if debug else _env()
    proc = subprocess.run([sys.executable, "-c", _EXIT, "summary", str(tmp_path / "missing.nc")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == _exit.USAGE, proc.stderr
    assert proc.stdout == "partial line without a newline"
    assert "missing.nc" in proc.stderr and "exit handler" in proc.stderr
    assert ("torn down" in proc.stderr) == debug, proc.stderr
    assert "Traceback" not in proc.stderr


_BLAS = """
import sys
from bayes_scaling_launch import main   # first, as the executable does
import bayes_scaling.cli as cli

def run(argv=None):
    import threadpoolctl
    print(sorted({p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}))
    return 0

cli.main = run
sys.exit(main())
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "[1]"), ("2", "[2]")])
def test_the_executable_runs_blas_on_one_thread_unless_told(given, expected):
    """OPENBLAS_NUM_THREADS is set to 1 before NumPy loads (small matrices while the chains run in threads);
    a value the user set is kept."""
    pytest.importorskip("threadpoolctl")
    env = _env() if given is None else _env(OPENBLAS_NUM_THREADS=given)
    proc = subprocess.run([sys.executable, "-c", _BLAS], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == expected
