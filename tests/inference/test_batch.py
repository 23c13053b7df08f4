"""Batches on Dask (bayes_scaling.inference.batch): the engine, the sweep's results table, and the fault test.

The fault test starts a real ``dask scheduler`` and two ``dask worker`` processes on the loopback address,
runs the smoke sweep and a small SBC through them, kills a worker while it runs a task, and checks that the
results are complete and equal to a serial run with the same seeds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.cli import main
from bayes_scaling.errors import BayesScalingError, ConfigError, DataError
from bayes_scaling.inference.batch import (
    ENV_SCHEDULER,
    BatchError,
    TaskFailure,
    batch_client,
    map_tasks,
    wait_for_workers,
)

HAVE_JAX = importlib.util.find_spec("jax") is not None
HAVE_NUTPIE = importlib.util.find_spec("nutpie") is not None
FAST_SBC = dict(draws=200, tune=200, chains=2, n_rank=49)
#: columns that legitimately differ between two runs of the same sweep
TIMING = ["wall_s", "finished_utc"]


# ---- the engine (in this process: no cluster needed) ----------------------------------------------------------

def _square_or_fail(x):
    if x == 3:
        raise ValueError("three is not allowed")
    return x * x


def _plus(x, upstream=0):
    return x + upstream


def test_map_tasks_in_process_keeps_order_and_streams():
    seen, ticks = [], []
    out = map_tasks(_square_or_fail, [1, 2, 4], workers=1, on_result=lambda i, r: seen.append((i, r)),
                    progress=lambda done, total: ticks.append((done, total)))
    assert out == [1, 4, 16] and seen == [(0, 1), (1, 4), (2, 16)] and ticks[-1] == (3, 3)
    assert map_tasks(_square_or_fail, [], workers=1) == []


def test_a_failing_task_is_reported_with_its_input_and_the_others_finish():
    with pytest.raises(BatchError) as err:
        map_tasks(_square_or_fail, [1, 3, 5, 6], workers=1, labels=["a", "b", "c", "d"],
                  after=[None, None, 1, None])
    exc = err.value
    assert [r for r in exc.results if not isinstance(r, TaskFailure)] == [1, 36]
    assert [(f.index, f.label, f.task) for f in exc.failures] == [(1, "b", 3), (2, "c", 5)]
    assert "ValueError: three is not allowed" in exc.failures[0].error and "input: 3" in str(exc)
    assert "not run: task 1 (b) it needs failed" in exc.failures[1].error
    assert "2 of 4 tasks failed" in str(exc)
    back = map_tasks(_square_or_fail, [3, 2], workers=1, errors="return")
    assert isinstance(back[0], TaskFailure) and back[1] == 4


def test_dependencies_pass_the_upstream_result():
    assert map_tasks(_plus, [1, 10, 100], workers=1, after=[None, 0, 1]) == [1, 11, 111]
    with pytest.raises(ValueError, match="earlier task"):
        map_tasks(_square_or_fail, [1, 2], workers=1, after=[1, None])
    with pytest.raises(ValueError, match="labels"):
        map_tasks(_square_or_fail, [1, 2], workers=1, labels=["x"])


def test_where_a_batch_runs(monkeypatch):
    monkeypatch.delenv(ENV_SCHEDULER, raising=False)
    with batch_client(workers=1) as c:
        assert c is None  # in this process
    with pytest.raises(ValueError, match="workers"):
        with batch_client(workers=0):
            pass
    # the environment variable names a cluster, even with workers=1; one that is not there: one clear error
    with batch_client(workers=4, n_tasks=1) as c:
        assert c is None  # one task: no cluster to start
    import dask
    import distributed  # noqa: F401 - its configuration defaults first, or leaving dask.config.set drops them

    monkeypatch.setenv(ENV_SCHEDULER, "tcp://127.0.0.1:9")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(BayesScalingError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
            with batch_client(workers=1):
                pass


def test_each_worker_picks_its_jax_device(monkeypatch):
    """GPU workers: BAYES_SCALING_JAX_DEVICE when set, else worker k of a local cluster takes device k mod n."""
    if not HAVE_JAX:
        pytest.skip("needs JAX")
    import jax

    from bayes_scaling.experiments import sweep

    class Dev:
        def __init__(self, platform, id):
            self.platform, self.id = platform, id

    gpus, cpus = [Dev("gpu", 0), Dev("gpu", 1)], [Dev("cpu", 0)]
    monkeypatch.setattr(jax, "devices", lambda backend=None: cpus if backend == "cpu" else gpus)
    monkeypatch.delenv("BAYES_SCALING_JAX_DEVICE", raising=False)
    monkeypatch.setattr(sweep, "_worker_slot", lambda: None)
    assert sweep._jax_device() is gpus[0]  # not in a worker: JAX's default
    monkeypatch.setattr(sweep, "_worker_slot", lambda: 3)
    assert sweep._jax_device() is gpus[1]
    monkeypatch.setenv("BAYES_SCALING_JAX_DEVICE", "cpu:0")
    assert sweep._jax_device() is cpus[0]
    monkeypatch.setenv("BAYES_SCALING_JAX_DEVICE", "0")
    assert sweep._jax_device() is gpus[0]
    monkeypatch.setenv("BAYES_SCALING_JAX_DEVICE", "tpu:7")
    with pytest.raises(ConfigError, match=r"no such JAX device \(have gpu:0, gpu:1\)"):
        sweep._jax_device()


# ---- the sweep's results table ------------------------------------------------------------------------------

def _table(tmp_path, text: str):
    from bayes_scaling.experiments.sweep import RunsTable

    path = tmp_path / "runs.csv"
    path.write_bytes(text.encode())
    return RunsTable(path, log=lambda m: None), path


def test_runs_table_repairs_a_half_written_last_line(tmp_path):
    t, path = _table(tmp_path, "run_id,loss\na,1.5\nb,2.5\nc,3.")
    assert [r["run_id"] for r in t.rows] == ["a", "b"] and t.done == {"a", "b"}
    assert path.read_text() == "run_id,loss\na,1.5\nb,2.5\n"
    assert t.append({"run_id": "c", "loss": 3.25}) and not t.append({"run_id": "a", "loss": 9})  # once per id
    assert path.read_text() == "run_id,loss\na,1.5\nb,2.5\nc,3.25\n"
    t, path = _table(tmp_path, "run_id,lo")  # killed while writing the header
    assert t.rows == [] and path.read_text() == ""
    t.append({"run_id": "x", "loss": 1.0})
    assert path.read_text().splitlines()[0].startswith("run_id,kind,")  # the full header


def test_runs_table_refuses_damage_naming_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"runs.csv, line 3: 3 fields, expected 2"):
        _table(tmp_path, "run_id,loss\na,1.5\nb,2.5,7\nc,1\n")
    with pytest.raises(ConfigError, match=r"runs.csv, lines 2 and 4: run a twice"):
        _table(tmp_path, "run_id,loss\na,1.5\nb,2.5\na,1.5\n")
    with pytest.raises(ConfigError, match=r"runs.csv: line 1 is not a runs table header"):
        _table(tmp_path, "x,y\n1,2\n")


# ---- sweeps and SBC: serial references ----------------------------------------------------------------------

def _smoke_ready():
    if not HAVE_JAX:
        pytest.skip("the experiment harness needs JAX (optional extra 'experiments')")
    from bayes_scaling.experiments.corpora import corpus_files

    for name in ("python", "prose", "c"):
        try:
            corpus_files(name)
        except DataError as exc:
            pytest.skip(str(exc))


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    """The smoke sweep in this process, one run after another: the reference."""
    _smoke_ready()
    from bayes_scaling.experiments import load_config, run_sweep

    out = tmp_path_factory.mktemp("serial")
    assert run_sweep(load_config(), out, log=lambda m: None, workers=1)["trained"] == 18
    return out


def _runs(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "runs.csv").set_index("run_id").sort_index()


def _assert_same_runs(out: Path, ref: Path) -> None:
    a, b = _runs(out), _runs(ref)
    assert a.index.is_unique and len(a) == 18 and a["device"].str.fullmatch(r"(cpu|gpu|tpu):\d+").all()
    pd.testing.assert_frame_equal(a.drop(columns=TIMING), b.drop(columns=TIMING))  # bit-identical losses
    for name in ("scratch.csv", "finetune.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(out / name).drop(columns=["wall_s"]),
                                      pd.read_csv(ref / name).drop(columns=["wall_s"]))
    for ck in (ref / "checkpoints").glob("*.npz"):
        with np.load(ck) as x, np.load(out / "checkpoints" / ck.name) as y:
            assert all(np.array_equal(x[k], y[k]) for k in x.files)


def test_interrupted_sweep_resumes_without_lost_or_duplicated_rows(serial_sweep, tmp_path):
    """Ctrl-C after 7 runs, a half-written row left behind (a kill while writing): the next invocation
    repairs the table, trains exactly the missing runs and ends equal to the uninterrupted sweep."""
    from bayes_scaling.experiments import load_config, run_sweep

    out = tmp_path / "sweep"
    lines = []

    def stop_after_7(msg):
        lines.append(msg)
        if msg.startswith("[7/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(load_config(), out, log=stop_after_7, workers=1)
    assert len(pd.read_csv(out / "runs.csv")) == 7
    with (out / "runs.csv").open("a") as fh:
        fh.write("finetune/d8L1/text+code/D_F=200,finetune,text+co")
    msgs = []
    res = run_sweep(load_config(), out, log=msgs.append, workers=1)
    assert res == {"planned": 18, "trained": 11, "skipped": 7}
    assert any("removed a half-written last line" in m for m in msgs)
    _assert_same_runs(out, serial_sweep)


def test_one_sweep_at_a_time_per_directory(serial_sweep, tmp_path):
    from bayes_scaling.experiments import load_config, run_sweep

    out = tmp_path / "locked"
    out.mkdir()
    import fcntl

    with (out / ".sweep.lock").open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConfigError, match="another sweep is writing to"):
            run_sweep(load_config(), out, log=lambda m: None, workers=1)


def test_a_failing_run_is_reported_and_the_others_finish(serial_sweep, tmp_path, monkeypatch, capsys):
    """A run that raises: the command lists it with its input, writes every other run, exits 1; the next
    invocation trains only the failed one."""
    from bayes_scaling.experiments import sweep

    real = sweep._run_one

    def broken(cfg, spec, data, init=None):
        if spec.run_id == "scratch/d16L1/D=2000":
            raise FloatingPointError("loss is NaN")
        return real(cfg, spec, data, init)

    monkeypatch.setattr(sweep, "_run_one", broken)
    out = tmp_path / "fail"
    assert main(["experiment", "run", "--smoke", "--out", str(out), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "1 of 18 tasks failed" in err and "scratch/d16L1/D=2000" in err and "FloatingPointError" in err
    assert len(pd.read_csv(out / "runs.csv")) == 17
    monkeypatch.setattr(sweep, "_run_one", real)
    assert main(["experiment", "run", "--smoke", "--out", str(out), "--workers", "1"]) == 0
    assert "1 trained, 17 already done" in capsys.readouterr().out
    _assert_same_runs(out, serial_sweep)


# ---- the fault test: a real scheduler and two workers on the loopback address ---------------------------------

class LoopbackCluster:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 (random free ports), no nanny: a killed
    worker stays dead, as a lost machine would."""

    def __init__(self, tmp: Path):
        self.tmp, self.procs, self.workers = tmp, [], {}
        sched_file = tmp / "scheduler.json"
        self.procs.append(self._start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                                       "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                                       str(sched_file)], "scheduler"))
        t0 = time.monotonic()
        while not sched_file.exists() or not sched_file.read_text().strip():
            if time.monotonic() - t0 > 60 or self.procs[0].poll() is not None:
                raise RuntimeError("the Dask scheduler did not start: "
                                   + (tmp / "scheduler.log").read_text()[-2000:])
            time.sleep(0.1)
        time.sleep(0.2)
        self.address = json.loads(sched_file.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")

    def _start(self, cmd, name):
        log = (self.tmp / f"{name}.log").open("w")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def add_worker(self, name: str) -> None:
        self.workers[name] = self._start(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--name", name, "--nthreads", "1",
             "--no-nanny", "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0",
             "--local-directory", str(self.tmp / name)], name)

    def kill_busy_worker(self, client) -> str | None:
        """SIGKILL a worker that is running a task now; its name, or None if none is busy."""
        info = client.scheduler_info()["workers"]
        for addr, keys in client.processing().items():
            name = info.get(addr, {}).get("name")
            if keys and name in self.workers and self.workers[name].poll() is None:
                os.kill(self.workers[name].pid, signal.SIGKILL)
                self.workers[name].wait(10)
                return name
        return None

    def close(self) -> None:
        for p in [*self.workers.values(), *self.procs]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.workers.values(), *self.procs]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    cluster = LoopbackCluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.add_worker("w1")
        cluster.add_worker("w2")
        yield cluster
    finally:
        cluster.close()


def _killer(cluster, client, after: int, killed: list):
    """A progress callback that, once ``after`` tasks have finished, SIGKILLs a worker that holds a task
    (waiting, at most 60 s, for one to hold one); the remaining results keep streaming afterwards."""
    def progress(done, total):
        if done == after and not killed:
            for _ in range(600):
                name = cluster.kill_busy_worker(client)
                if name:
                    killed.append(name)
                    return
                time.sleep(0.1)
    return progress


@pytest.mark.slow      # 40-70 s: the scheduler path stays in the default suite (test_commands_take_a_scheduler)
@pytest.mark.skipif(not HAVE_NUTPIE, reason="SBC runs on nutpie")
def test_a_worker_killed_mid_run_loses_nothing(loopback, serial_sweep, tmp_path):
    """Issue 13, item 3: smoke sweep and a small SBC through a scheduler and two worker processes; a worker is
    SIGKILLed while it runs a task; its task is rerun elsewhere and every result equals the serial run's."""
    from distributed import Client

    from bayes_scaling.analysis.calibration import run_sbc
    from bayes_scaling.experiments import load_config, run_sweep

    serial_sbc = run_sbc(6, seed=5, **FAST_SBC)
    with Client(loopback.address, timeout="60s") as client:
        wait_for_workers(client, 2)
        killed: list = []
        out = tmp_path / "sweep"
        logs: list[str] = []
        res = run_sweep(load_config(), out, log=logs.append, client=client,
                        progress=_killer(loopback, client, 4, killed))
        assert killed in (["w1"], ["w2"]), "no worker was killed while running a task"
        assert res == {"planned": 18, "trained": 18, "skipped": 0}
        assert "2 workers" in logs[1]
        _assert_same_runs(out, serial_sweep)

        # a replacement joins; the SBC loses another worker mid-run
        loopback.add_worker("w3")
        wait_for_workers(client, 2)
        killed_sbc: list = []
        sbc = run_sbc(6, seed=5, client=client, progress=_killer(loopback, client, 2, killed_sbc), **FAST_SBC)
        assert killed_sbc, "no worker was killed during the SBC"
        pd.testing.assert_frame_equal(sbc.ranks, serial_sbc.ranks)
        pd.testing.assert_frame_equal(sbc.in90, serial_sbc.in90)
        np.testing.assert_array_equal(sbc.divergences, serial_sbc.divergences)


@pytest.mark.skipif(not HAVE_NUTPIE, reason="SBC runs on nutpie")
def test_commands_take_a_scheduler(loopback, serial_sweep, tmp_path, capsys):
    """``--scheduler ADDRESS`` on ``experiment run`` and ``calibrate`` (and the environment variable)."""
    from distributed import Client

    from bayes_scaling.analysis.calibration import run_sbc

    with Client(loopback.address, timeout="60s") as client:
        wait_for_workers(client, 1)
    out = tmp_path / "cli"
    assert main(["experiment", "run", "--smoke", "--out", str(out), "--scheduler", loopback.address]) == 0
    assert f"running on Dask scheduler {loopback.address}" in capsys.readouterr().out
    _assert_same_runs(out, serial_sweep)
    os.environ[ENV_SCHEDULER] = loopback.address
    try:
        code = main(["calibrate", "--sims", "4", "--seed", "3", "--draws", "200", "--tune", "200",
                     "--ranks-of", "49", "--out", str(tmp_path / "sbc")])
    finally:
        del os.environ[ENV_SCHEDULER]
    passed = pd.read_csv(tmp_path / "sbc" / "checks.csv")["passed"].astype(bool)
    assert code == (0 if passed.all() else 1)  # the exit status is the verdict of the checks written
    ranks = pd.read_csv(tmp_path / "sbc" / "ranks.csv", index_col="simulation")
    ref = run_sbc(4, seed=3, **FAST_SBC).ranks
    np.testing.assert_array_equal(ranks.to_numpy(), ref.to_numpy())


def test_a_failing_task_on_the_cluster_is_reported_with_its_input(loopback):
    """On workers too: the failing task's error and input, the task that needed it marked as not run, the
    others' results in order."""
    import math

    from distributed import Client

    with Client(loopback.address, timeout="60s") as client:
        wait_for_workers(client, 1)
        with pytest.raises(BatchError) as err:
            map_tasks(math.log, [-1.0, 8.0, 100.0], client=client, after=[None, 0, None],
                      labels=["bad", "needs bad", "fine"], progress=False)
    exc = err.value
    assert [(f.index, f.label, f.task) for f in exc.failures] == [(0, "bad", -1.0), (1, "needs bad", 8.0)]
    assert exc.failures[0].error == "ValueError: math domain error"
    assert exc.failures[1].error == "not run: task 0 (bad) it needs failed"
    assert exc.results[2] == pytest.approx(math.log(100.0))
