"""Batches of independent tasks on a Dask cluster (``dask.distributed``): every batch of the package runs here.

:func:`map_tasks` runs ``fn(task)`` for each task (fits of many data sets, SBC simulations, training runs of a
sweep, and later backtests) and returns the results in task order. Where the tasks run:

1. ``client=``: a ``distributed.Client`` (or a scheduler address) given by the caller, used and left open;
2. ``scheduler=`` (``--scheduler ADDRESS`` on the command line), else the environment variable
   ``BAYES_SCALING_SCHEDULER``: an existing cluster (Slurm through dask-jobqueue, Kubernetes, or
   ``dask scheduler`` + ``dask worker`` by hand); the client is closed afterwards, the cluster keeps running;
3. else a local cluster of ``workers`` worker processes (default: one per CPU core, at most one per task),
   one thread each, on the loopback address; started here and closed afterwards. Where that makes one
   worker (``workers=1``, one core, one task), the tasks run in this process, one after another, without Dask.

Guarantees:

- **Streaming**: results come back as they finish; ``on_result(i, result)`` is called in this process for
  each, in completion order (the training sweep writes its results table there), and a progress bar shows
  on a terminal or in Jupyter (``progress=``).
- **Reproducible**: a task carries its own seed, so results do not depend on the number of workers or on
  which worker ran a task.
- **Faults**: a worker that dies mid-task is replaced by the scheduler's retry: its task is rerun on
  another worker (up to ``distributed.scheduler.allowed-failures`` times, then reported as failed).
  A task that raises is reported with its input (:class:`TaskFailure`) while the others finish; then
  :class:`BatchError` is raised (``errors="raise"``) or the failures are returned in place
  (``errors="return"``).
- **One task at a time per process** (``exclusive=True``): the compiled models of
  :mod:`bayes_scaling.inference.sampling` are shared in a process, so tasks of one worker process never
  overlap, even on a worker started with several threads. Each worker process keeps its compiled models
  between tasks (one compilation per model and shape, not per task).
- **Dependencies**: ``after[i] = j`` runs task ``i`` after task ``j`` (``j < i``) and calls
  ``fn(task_i, result_j)``; the result moves between workers without passing through the client
  (the sweep fine-tunes a pre-trained model this way).

>>> from bayes_scaling.inference.batch import map_tasks
>>> map_tasks(abs, [-1, 2, -3], workers=1, progress=False)
[1, 2, 3]
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bayes_scaling.errors import BayesScalingError

__all__ = ["ENV_SCHEDULER", "TaskFailure", "BatchError", "map_tasks", "batch_client", "describe_client"]

#: environment variable naming the scheduler address of an existing cluster
ENV_SCHEDULER = "BAYES_SCALING_SCHEDULER"

#: tasks of one worker process never overlap (see the module docstring)
_PROCESS_LOCK = threading.Lock()


@dataclass
class TaskFailure:
    """A task that failed: its position, label and input, and the error (with the worker's traceback)."""

    index: int
    label: str
    task: Any
    error: str
    traceback: str = ""

    def __str__(self) -> str:
        shown = repr(self.task)
        if len(shown) > 300:
            shown = shown[:297] + "..."
        return f"task {self.index} ({self.label}) failed: {self.error}; input: {shown}"


class BatchError(BayesScalingError):
    """Some tasks of a batch failed; the others finished. ``failures``: the :class:`TaskFailure` list;
    ``results``: every result in task order (a :class:`TaskFailure` in place of each failed task)."""

    def __init__(self, failures: list[TaskFailure], results: list, total: int):
        self.failures, self.results = failures, results
        head = "; ".join(str(f) for f in failures[:3])
        more = f"; ... ({len(failures)} failures in all)" if len(failures) > 3 else ""
        super().__init__(f"{len(failures)} of {total} tasks failed (the others finished): {head}{more}")


def _scheduler_address(scheduler: str | None) -> str | None:
    return scheduler or os.environ.get(ENV_SCHEDULER) or None


def describe_client(client) -> str:
    """One line: the scheduler's address and its workers (count, threads)."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    return f"Dask scheduler {info.get('address', '?')}: {len(workers)} workers, {threads} threads"


@contextlib.contextmanager
def batch_client(client=None, *, scheduler: str | None = None, workers: int | None = None,
                 n_tasks: int | None = None) -> Iterator[Any]:
    """The Dask client a batch runs on (see the module docstring for the order), or ``None`` for in-process
    serial execution (no cluster given, and ``workers=1``, one core, or one task). A local cluster started here is closed on exit;
    a given client is left open.

    >>> with batch_client(workers=1) as c:
    ...     print(c)
    None
    """
    if client is not None and not isinstance(client, str):
        yield client
        return
    address = client if isinstance(client, str) else _scheduler_address(scheduler)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    n = workers or os.cpu_count() or 1
    if n_tasks is not None:
        n = max(1, min(n, n_tasks))
    if address is None and n == 1:  # one worker would only add start-up time
        yield None
        return
    from distributed import Client

    if address is not None:
        try:
            c = Client(address)  # waits up to distributed.comm.timeouts.connect (Dask's default: 30 s)
        except OSError as exc:
            raise BayesScalingError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        try:
            yield c
        finally:
            c.close()
        return
    from distributed import LocalCluster

    # the workers ignore SIGINT (a Ctrl-C in the terminal reaches every process of the group: this process
    # stops the command and closes the cluster, which ends them, without ~30 lines of traceback from each)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.CRITICAL,
                           preload=["bayes_scaling.inference._worker_preload"])
    try:
        with Client(cluster) as c:
            yield c
    finally:
        cluster.close()


def _call(fn: Callable, exclusive: bool, *args):
    """Run on a worker: ``fn(*args)``, alone in its process when ``exclusive``."""
    if not exclusive:
        return fn(*args)
    with _PROCESS_LOCK:
        return fn(*args)


def _in_jupyter() -> bool:
    ip = sys.modules.get("IPython")
    try:
        shell = ip.get_ipython() if ip is not None else None  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _Progress:
    """``progress``: None (a bar on a terminal or in Jupyter), True, False, or a callable(done, total)."""

    def __init__(self, progress, total: int, desc: str):
        self.callback, self.bar = None, None
        if callable(progress) and not isinstance(progress, bool):
            self.callback = progress
            return
        from bayes_scaling._progress import default_progress, is_quiet  # --quiet: no bar

        show = progress if progress is not None else (default_progress() or (_in_jupyter() and not is_quiet()))
        if show and total > 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency
                return
            import warnings

            with warnings.catch_warnings():  # tqdm.auto in Jupyter without ipywidgets: a text bar
                warnings.simplefilter("ignore")
                self.bar = tqdm(total=total, desc=desc, unit="task", file=sys.stderr, leave=True)

    def update(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
        if self.callback is not None:
            self.callback(done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _label(labels: Sequence[str] | None, i: int) -> str:
    return str(labels[i]) if labels is not None else f"#{i}"


def map_tasks(fn: Callable, tasks: Sequence, *, client=None, scheduler: str | None = None,
              workers: int | None = None, progress=None, desc: str = "tasks",
              labels: Sequence[str] | None = None, after: Sequence[int | None] | None = None,
              on_result: Callable[[int, Any], None] | None = None, errors: str = "raise",
              exclusive: bool = True) -> list:
    """``[fn(t) for t in tasks]`` on a Dask cluster (or in this process); see the module docstring.

    ``fn`` must be importable on the workers (a module-level function). ``labels``: one name per task for
    progress and error messages (e.g. a run id). ``after``: per task, ``None`` or the index of an earlier
    task whose result becomes ``fn``'s second argument. ``on_result(i, result)``: called here as each task
    finishes (not for failed ones). ``errors``: ``"raise"`` (:class:`BatchError` once every task has
    finished or failed) or ``"return"`` (a :class:`TaskFailure` in place of each failed result).
    """
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    tasks = list(tasks)
    n = len(tasks)
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} tasks")
    if after is not None:
        if len(after) != n:
            raise ValueError(f"after has {len(after)} entries for {n} tasks")
        bad = [i for i, j in enumerate(after) if j is not None and not 0 <= j < i]
        if bad:
            raise ValueError(f"after[i] must name an earlier task; tasks {bad} do not")
    results: list = [None] * n
    failures: list[TaskFailure] = []
    if n == 0:
        return results
    bar = _Progress(progress, n, desc)
    try:
        with batch_client(client, scheduler=scheduler, workers=workers, n_tasks=n) as c:
            if c is None:
                _run_serial(fn, tasks, results, failures, labels, after, on_result, bar)
            else:
                _run_dask(c, fn, tasks, results, failures, labels, after, on_result, bar, exclusive)
    finally:
        bar.close()
    failures.sort(key=lambda f: f.index)
    if failures and errors == "raise":
        raise BatchError(failures, results, n)
    return results


def _failure(i, labels, task, exc: BaseException, tb: str = "") -> TaskFailure:
    return TaskFailure(i, _label(labels, i), task, f"{type(exc).__name__}: {exc}", tb)


def _run_serial(fn, tasks, results, failures, labels, after, on_result, bar) -> None:
    failed: set[int] = set()
    for i, task in enumerate(tasks):
        dep = after[i] if after is not None else None
        if dep is not None and dep in failed:
            failed.add(i)
            failures.append(TaskFailure(i, _label(labels, i), task,
                                        f"not run: task {dep} ({_label(labels, dep)}) it needs failed"))
            results[i] = failures[-1]
        else:
            try:
                res = fn(task) if dep is None else fn(task, results[dep])
            except Exception as exc:  # noqa: BLE001 - reported with its input; the others go on
                failed.add(i)
                failures.append(_failure(i, labels, task, exc, traceback.format_exc()))
                results[i] = failures[-1]
            else:
                results[i] = res
                if on_result is not None:
                    on_result(i, res)
        bar.update(i + 1, len(tasks))


def _run_dask(client, fn, tasks, results, failures, labels, after, on_result, bar, exclusive) -> None:
    from distributed import as_completed

    batch = uuid.uuid4().hex[:10]
    futures = []
    for i, task in enumerate(tasks):
        dep = after[i] if after is not None else None
        args = (task,) if dep is None else (task, futures[dep])
        # earlier tasks first (the sweep's plan order: complete model sizes first); pure=False: always run
        futures.append(client.submit(_call, fn, exclusive, *args, key=f"bayes-scaling-{batch}-{i}",
                                     pure=False, priority=-i))
    index = {f.key: i for i, f in enumerate(futures)}
    failed: set[int] = set()
    released: set[int] = set()
    done = 0
    try:
        # as each finishes: fetch its result here (not with as_completed(with_results=True), whose status can
        # change under it: a finished task whose worker dies at that moment is recomputed, and .result() waits
        # for it); a task that raised, or that killed worker after worker, raises here and is reported
        for fut in as_completed(futures):
            i = index[fut.key]
            done += 1
            try:
                res = fut.result()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - CancelledError too: reported, the others go on
                tb = ""
                with contextlib.suppress(Exception):
                    tb = "".join(traceback.format_tb(fut.traceback()))
                failed.add(i)
                failures.append(_failure(i, labels, tasks[i], exc, tb))
                results[i] = failures[-1]
            else:
                results[i] = res
                if on_result is not None:
                    on_result(i, res)
            fut.release()
            released.add(i)
            bar.update(done, len(tasks))
    except BaseException:
        # interrupted (Ctrl-C) or the client lost: stop the tasks still queued on a shared cluster (only those
        # not yet released here: cancelling a released future trips an assertion in Dask's scheduler, which
        # its event loop prints as a traceback)
        with contextlib.suppress(Exception):
            client.cancel([f for j, f in enumerate(futures) if j not in released])
        raise
    # a task whose upstream task failed never ran: say so (it fails with the upstream's error)
    for k, f in enumerate(failures):
        dep = after[f.index] if after is not None else None
        if dep is not None and dep in failed:
            failures[k] = TaskFailure(f.index, f.label, f.task,
                                      f"not run: task {dep} ({_label(labels, dep)}) it needs failed")
            results[f.index] = failures[k]


def wait_for_workers(client, n: int, timeout: float = 60.0) -> None:
    """Block until the cluster of ``client`` has ``n`` workers (for tests and scripts)."""
    t0 = time.monotonic()
    while len(client.scheduler_info().get("workers", {})) < n:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"fewer than {n} Dask workers after {timeout:.0f} s")
        time.sleep(0.1)
