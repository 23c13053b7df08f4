"""What machine this is, for benchmark tables and data cards."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows, else ''."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


#: sample statistics nutpie/PyMC keep per draw (step size, tree depth, energy, ...), as float64 values
STATS_PER_DRAW = 16
#: peak memory while converting and saving the draws, as a multiple of the draws themselves
MEMORY_PEAK_FACTOR = 3


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def draws_memory(draws: int, chains: int, values_per_draw: int) -> int:
    """Bytes of the draws in memory: chains x draws x (values + sample statistics) float64 values."""
    return int(chains) * int(draws) * (max(int(values_per_draw), 0) + STATS_PER_DRAW) * 8


#: arrays of points x draws float64 values a prediction at points holds at once (law values, noise,
#: discrepancy, logs, the variance split, quantiles): measured 9.2 (``predict --at``, 20,000 to 100,000 points
#: x 200 draws, peak resident memory), 10.9 with ``--noise``
PREDICTION_ARRAYS = 12
#: the same for a transfer fit's grid (:func:`bayes_scaling.analysis.predictions.predict` and its interval
#: table): measured 5.9 (``predict --N ... --D-F ...``, 3,200 to 45,000 points x 200 draws), with or without noise
GRID_ARRAYS = 8


def check_prediction_memory(points: int, draws: int, arrays: int = PREDICTION_ARRAYS,
                            hint: str = "predict fewer points at a time") -> int:
    """Refuse (a ValueError with the estimate and ``hint``, how to cut it) a prediction of ``points`` points from
    ``draws`` posterior draws that would not fit in memory: points x draws x 8 bytes x ``arrays``, against the
    memory available now. Returns the estimate in bytes."""
    need = int(points) * int(draws) * 8 * int(arrays)
    have = available_memory()
    if have is not None and need > have:
        raise ValueError(f"predicting {points} points from {draws} draws would hold about {_gb(need)} in memory "
                         f"({arrays} arrays of points x draws numbers), more than the {_gb(have)} available; "
                         f"{hint}")
    return need


def check_draws_memory(draws: int, chains: int, values_per_draw: int, *, log_likelihood: bool = False) -> int:
    """Refuse (a ValueError with the estimate) draws that would not fit in memory: the estimate of
    :func:`draws_memory`, times ``MEMORY_PEAK_FACTOR`` while converting and saving, against the memory available
    now. Returns the estimate in bytes."""
    need = draws_memory(draws, chains, values_per_draw)
    have = available_memory()
    if have is not None and need * MEMORY_PEAK_FACTOR > have:
        hint = ", or leave out the pointwise log-likelihood (--no-log-likelihood, log_likelihood=False)" \
            if log_likelihood else ""
        raise ValueError(f"{chains} chains x {draws} draws (tuning included) x {values_per_draw + STATS_PER_DRAW} "
                         "values per draw "
                         f"would hold about {_gb(need)} of draws in memory ({MEMORY_PEAK_FACTOR}x that while "
                         f"converting and saving), more than the {_gb(have)} available; lower --draws, --tune or "
                         f"--chains{hint}")
    return need


def configure_pytensor() -> None:
    """PyTensor settings the package relies on, applied before PyTensor is imported (through
    ``PYTENSOR_FLAGS``) or, after, through ``pytensor.config``; a setting the user made is kept:

    - ``numba__fastmath=False``: with LLVM's fast-math flags (re-association, contraction) the machine code
      Numba compiles fresh and the machine code it loads from its cache round differently in the last bit, so a
      fit with a given seed gave other chains the first time a model was compiled than on later runs. Without
      them, the same seed gives the same draws whether or not the compiled model was cached (tested), at
      about the same speed.
    - ``generated_src_dir=~/.pytensor/generated_src``: the Python source PyTensor generates for Numba goes to
      one content-addressed folder (which PyTensor prunes) instead of a new file in the system temp folder per
      function and process (about 16 files a fit, never removed).
    """
    import os
    import sys

    if "pytensor" in sys.modules:
        config = getattr(sys.modules["pytensor"], "config", None)
        if config is None:
            return
        flags = os.environ.get("PYTENSOR_FLAGS", "")
        changes = {}
        if "numba__fastmath" not in flags:
            changes["numba__fastmath"] = False
        if getattr(config, "generated_src_dir", None) == "":
            changes["generated_src_dir"] = str(Path(config.compiledir) / "generated_src")
        for key, value in changes.items():
            try:
                setattr(config, key, value)
            except Exception:  # noqa: BLE001 - a PyTensor that refuses the change: leave it
                pass
        return
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    extra = []
    if "numba__fastmath" not in flags:
        extra.append("numba__fastmath=False")
    if "generated_src_dir" not in flags:
        folder = Path("~/.pytensor/generated_src").expanduser()
        if "," not in str(folder):
            extra.append(f"generated_src_dir={folder}")
    if extra:
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, *extra) if f)


def one_blas_thread() -> contextlib.AbstractContextManager:
    """A context in which BLAS runs on one thread (``threadpoolctl``), for the mode searches of the whitening.
    Their matrices are small (``K x K``, ``K`` at most a few hundred): OpenBLAS's threads only wake, spin and compete
    for the cores, 30-80x slower on a loaded 2-core machine (docs/benchmarks.md). A no-op where
    ``OPENBLAS_NUM_THREADS`` is already 1 (the ``bayes-scaling`` executable sets it before NumPy loads) or
    ``threadpoolctl`` is missing."""
    if os.environ.get("OPENBLAS_NUM_THREADS") == "1":
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; a stripped environment still runs, threaded
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
