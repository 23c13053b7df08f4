"""The sweep: from-scratch runs on Python, pre-training on each mix, fine-tuning on Python; resumable CSV.

Every from-scratch and fine-tuning run trains on the first ``D`` (``D_F``) characters of the Python training
split (so smaller data sets are prefixes of larger ones), evaluates the held-out Python **validation** split
every ``eval_every`` steps, keeps the best parameters and stops after ``patience`` evaluations without
improvement (or at ``max_steps``; ``[finetune]`` may set its own ``eval_every`` and ``patience``); its
reported ``loss`` is the held-out Python **test** loss (nats/character) of the kept parameters, so the
early-stopping choice does not bias it. Fine-tuning evaluates before its first
step too (a pre-trained model that fine-tuning only hurts keeps ``best_step = 0``). Pre-training runs a fixed
number of steps on its mix (``text``: prose; ``text+code``: half the windows prose, half C) and saves the
parameters under ``OUT/checkpoints``.

Each finished run is appended to ``OUT/runs.csv`` at once, by the process that runs the sweep, and once per run
id (:class:`RunsTable`); a second invocation with the same configuration skips the runs already there (so a
sweep that was interrupted or killed resumes with no lost, duplicated or half-written rows;
``OUT/config.json`` guards against resuming with another configuration). The runs go through
:func:`bayes_scaling.inference.batch.map_tasks`: in this process, on a local cluster of worker processes, or on
an existing Dask cluster; each trains on its worker's JAX device (a GPU when JAX has one), and workers return
rows and parameters, so they need no shared file system. The tables
``OUT/scratch.csv`` (``N, D, loss``) and ``OUT/finetune.csv`` (``pretraining, N, D_F, loss``), unit
characters, are rewritten after every run and load with :func:`bayes_scaling.models.losslaws.read_scratch` and
:func:`bayes_scaling.analysis.effective.read_finetune`.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import os
import platform
import sys
import time
import tomllib
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bayes_scaling._system import cpu_model
from bayes_scaling.errors import ConfigError
from bayes_scaling.experiments.corpora import VOCAB_SIZE, Corpus, load_corpus

__all__ = ["SMOKE_CONFIG", "MIXES", "EarlyStopping", "RunSpec", "RunsTable", "load_config", "plan_runs",
           "run_sweep", "export_tables", "RUN_COLUMNS"]

MIXES = {"text": {"prose": 1.0}, "text+code": {"prose": 0.5, "c": 0.5}}

#: The built-in smoke configuration (``models/experiments/smoke.toml`` holds the same values).
SMOKE_CONFIG: dict = {
    "name": "smoke",
    "seed": 0,
    "corpus": {"split_seed": 0, "heldout_val": 0.05, "heldout_test": 0.05, "eval_windows": 16},
    "model": {"context": 32, "head_dim": 8, "sizes": [[8, 1], [16, 1]]},
    "train": {"batch": 8, "lr": 1e-2, "warmup": 5, "eval_every": 5, "patience": 2, "max_steps": 60},
    "scratch": {"D": [200, 2000, 20000]},
    "pretrain": {"mixes": ["text", "text+code"], "steps": 30, "lr": 1e-2},
    "finetune": {"D_F": [200, 2000], "lr": 3e-3, "max_steps": 30},
}

RUN_COLUMNS = ["run_id", "kind", "pretraining", "model", "d_model", "n_layers", "N", "n_embedding", "D",
               "D_F", "unit", "seed", "lr", "max_steps", "eval_every", "patience", "steps", "best_step",
               "stopped_early", "chars_seen", "val_loss", "loss", "loss_step0", "python_val_loss",
               "mix_val_loss", "train_loss_last", "flops", "wall_s", "finished_utc", "config", "device"]

_SECTIONS = {"corpus": {"split_seed", "heldout_val", "heldout_test", "eval_windows"},
             "model": {"context", "head_dim", "sizes"},
             "train": {"batch", "lr", "warmup", "eval_every", "patience", "max_steps"},
             "scratch": {"D"}, "pretrain": {"mixes", "steps", "lr"}, "finetune": {"D_F", "lr", "max_steps"}}
#: optional keys: fine-tuning's own evaluation interval and patience (default: those of [train])
_OPTIONAL = {"finetune": {"eval_every", "patience"}}


def load_config(path: str | os.PathLike | None = None) -> dict:
    """The sweep configuration in TOML ``path`` (``None``: :data:`SMOKE_CONFIG`), validated."""
    if path is None:
        cfg = copy.deepcopy(SMOKE_CONFIG)
    else:
        try:
            cfg = tomllib.loads(Path(path).read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    where = str(path) if path is not None else "smoke config"
    for sec, keys in _SECTIONS.items():
        if sec not in cfg:
            raise ConfigError(f"{where}: missing section [{sec}] (expected keys {', '.join(sorted(keys))})")
        unknown = set(cfg[sec]) - keys - _OPTIONAL.get(sec, set())
        missing = keys - set(cfg[sec])
        if unknown or missing:
            raise ConfigError(f"{where}: [{sec}] " + "; ".join(
                ([f"unknown keys {', '.join(sorted(unknown))}"] if unknown else [])
                + ([f"missing keys {', '.join(sorted(missing))}"] if missing else []))
                + f" (expected {', '.join(sorted(keys))})")
    cfg.setdefault("name", Path(path).stem if path is not None else "smoke")
    cfg.setdefault("seed", 0)
    seeds = cfg.setdefault("seeds", [cfg["seed"]])
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in seeds)
            or len(set(seeds)) != len(seeds)):
        raise ConfigError(f"{where}: seeds = {seeds!r}: expected a list of distinct non-negative integers "
                          "(one sweep of every run per seed)")
    bad = [m for m in cfg["pretrain"]["mixes"] if m not in MIXES]
    if bad:
        raise ConfigError(f"{where}: [pretrain] mixes {bad}: expected among {', '.join(MIXES)}")
    ctx = cfg["model"]["context"]
    for sec, key in (("scratch", "D"), ("finetune", "D_F")):
        small = [d for d in cfg[sec][key] if d <= ctx + 1]
        if small:
            raise ConfigError(f"{where}: [{sec}] {key} {small}: each must exceed context + 1 = {ctx + 1}")
    for size in cfg["model"]["sizes"]:
        if (len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size)):
            raise ConfigError(f"{where}: [model] sizes entry {size!r}: expected [d_model, n_layers], positive integers")
        d = size[0]
        if d % max(1, d // cfg["model"]["head_dim"]):
            raise ConfigError(f"{where}: [model] size d_model={d} is not divisible into heads of "
                              f"{cfg['model']['head_dim']}")
    return cfg


class EarlyStopping:
    """Keep the best evaluation; ``stop`` once ``patience`` evaluations in a row fail to improve on it.

    >>> es = EarlyStopping(patience=2)
    >>> [es.update(s, v) for s, v in [(0, 3.0), (5, 2.0), (10, 2.5), (15, 2.1)]]
    [True, True, False, False]
    >>> es.stop, es.best_step, es.best
    (True, 5, 2.0)
    """

    def __init__(self, patience: int, min_delta: float = 0.0):
        if patience < 1:
            raise ValueError(f"patience={patience}: expected >= 1")
        self.patience, self.min_delta = patience, min_delta
        self.best, self.best_step, self.bad = math.inf, -1, 0

    def update(self, step: int, value: float) -> bool:
        """Record ``value`` at ``step``; ``True`` if it is the new best."""
        if value < self.best - self.min_delta:
            self.best, self.best_step, self.bad = float(value), int(step), 0
            return True
        self.bad += 1
        return False

    @property
    def stop(self) -> bool:
        return self.bad >= self.patience


@dataclass(frozen=True)
class RunSpec:
    """One run: ``kind`` scratch / pretrain / finetune, model size, data size, mix."""

    kind: str
    d_model: int
    n_layers: int
    D: int | None = None
    mix: str | None = None
    seed: int = 0

    @property
    def run_id(self) -> str:
        """``scratch/d32L2/D=1000``, with ``/seed=K`` appended for seeds other than 0 (so the run ids of a
        one-seed sweep are those of earlier versions)."""
        size = f"d{self.d_model}L{self.n_layers}"
        tail = f"/seed={self.seed}" if self.seed else ""
        if self.kind == "scratch":
            return f"scratch/{size}/D={self.D}{tail}"
        if self.kind == "pretrain":
            return f"pretrain/{size}/{self.mix}{tail}"
        return f"finetune/{size}/{self.mix}/D_F={self.D}{tail}"


def plan_runs(cfg: dict) -> list[RunSpec]:
    """All runs, smallest model first (per size and seed: from-scratch, pre-training, fine-tuning), so that a
    cut-off sweep leaves complete model sizes, each with every seed."""
    runs = []
    for d, L in sorted(cfg["model"]["sizes"], key=lambda s: s[1] * (12 * s[0] ** 2 + 13 * s[0])):
        for seed in cfg.get("seeds", [cfg.get("seed", 0)]):
            runs += [RunSpec("scratch", d, L, D=int(D), seed=seed) for D in cfg["scratch"]["D"]]
            for mix in cfg["pretrain"]["mixes"]:
                runs.append(RunSpec("pretrain", d, L, mix=mix, seed=seed))
                runs += [RunSpec("finetune", d, L, D=int(D), mix=mix, seed=seed) for D in cfg["finetune"]["D_F"]]
    return runs


# ---- data -----------------------------------------------------------------------------------------------


def _eval_windows(stream: np.ndarray, n: int, length: int) -> np.ndarray:
    """``n`` evenly spaced windows of ``length`` characters covering ``stream`` (deterministic)."""
    starts = np.linspace(0, stream.size - length, n).astype(np.int64)
    return stream[starts[:, None] + np.arange(length)].astype(np.int32)


def _sample(rng: np.random.Generator, sources: list[np.ndarray], weights: np.ndarray, batch: int,
            length: int) -> np.ndarray:
    which = rng.choice(len(sources), size=batch, p=weights) if len(sources) > 1 else np.zeros(batch, int)
    out = np.empty((batch, length), np.int32)
    for i, s in enumerate(which):
        src = sources[s]
        start = rng.integers(0, src.size - length + 1)
        out[i] = src[start:start + length]
    return out


@dataclass
class _Data:
    corpora: dict[str, Corpus]
    val: np.ndarray
    test: np.ndarray
    mix_val: dict[str, np.ndarray] = field(default_factory=dict)


def _load_data(cfg: dict) -> _Data:
    c = cfg["corpus"]
    held = {"val": c["heldout_val"], "test": c["heldout_test"]}
    names = {"python"} | {src for m in cfg["pretrain"]["mixes"] for src in MIXES[m]}
    corpora = {n: load_corpus(n, heldout=held, seed=c["split_seed"]) for n in sorted(names)}
    length, n = cfg["model"]["context"] + 1, c["eval_windows"]
    py = corpora["python"]
    need = max([*cfg["scratch"]["D"], *cfg["finetune"]["D_F"]])
    if need > py.n_chars["train"]:
        raise ConfigError(f"data size {need} exceeds the Python training split ({py.n_chars['train']} characters)")
    mix_val = {}
    for mix in cfg["pretrain"]["mixes"]:
        parts = [(_eval_windows(corpora[s].splits["val"], max(1, round(n * w)), length)) for s, w in MIXES[mix].items()]
        mix_val[mix] = np.concatenate(parts)
    return _Data(corpora, _eval_windows(py.splits["val"], n, length), _eval_windows(py.splits["test"], n, length),
                 mix_val)


# ---- training -------------------------------------------------------------------------------------------


def _seed(seed: int, text: str) -> int:
    """The random seed of one stream (initialisation of a size, data order of a run) under sweep seed ``seed``."""
    return (int(seed) * 1_000_003 + zlib.crc32(text.encode())) % (2 ** 31)


def _lr(step: int, base: float, warmup: int) -> float:
    return base * min(1.0, step / max(1, warmup))


def _ckpt_path(out: Path, spec: RunSpec) -> Path:
    tail = f"_seed{spec.seed}" if spec.seed else ""
    return out / "checkpoints" / f"d{spec.d_model}L{spec.n_layers}_{spec.mix.replace('+', '_')}{tail}.npz"


def _leaves(params) -> list[np.ndarray]:
    """The parameters as a list of numpy arrays (what a worker returns and a checkpoint holds)."""
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(params)]


def _from_leaves(leaves: list[np.ndarray], template):
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), [jnp.asarray(x) for x in leaves])


def _save_leaves(path: Path, leaves: list[np.ndarray]) -> None:
    """Write a checkpoint atomically (complete or absent, never half-written)."""
    from bayes_scaling._atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, *leaves)


def _load_leaves(path: Path) -> list[np.ndarray]:
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def _early_stopping(cfg: dict, kind: str) -> tuple[int, int]:
    """``(eval_every, patience)`` of runs of ``kind`` (fine-tuning may set its own in ``[finetune]``)."""
    t = cfg["train"]
    own = cfg["finetune"] if kind == "finetune" else {}
    return int(own.get("eval_every", t["eval_every"])), int(own.get("patience", t["patience"]))


def _train(cfg, spec: RunSpec, data: _Data, sources, weights, params, *, lr, max_steps, early: bool,
           eval_at_start: bool):
    """Train; returns (best params, info dict)."""
    from bayes_scaling.experiments.model import ModelSpec, adam_init, make_functions

    m, t = cfg["model"], cfg["train"]
    mspec = ModelSpec(spec.d_model, spec.n_layers, context=m["context"], vocab=VOCAB_SIZE, head_dim=m["head_dim"])
    step_fn, eval_fn = make_functions(mspec)
    # the seed-0 stream of a run keeps the id it had before seeds existed (the bundled data reproduce)
    rng = np.random.default_rng(_seed(spec.seed, RunSpec(spec.kind, spec.d_model, spec.n_layers, spec.D,
                                                         spec.mix).run_id))
    opt = adam_init(params)
    eval_every, patience = _early_stopping(cfg, spec.kind)
    stopper = EarlyStopping(patience)
    best_params, loss0 = params, math.nan
    if eval_at_start:
        loss0 = float(eval_fn(params, data.val))
        stopper.update(0, loss0)
    step, train_loss = 0, math.nan
    while step < max_steps:
        step += 1
        batch = _sample(rng, sources, weights, t["batch"], m["context"] + 1)
        params, opt, tl = step_fn(params, opt, batch, _lr(step, lr, t["warmup"]))
        if step % eval_every == 0 or step == max_steps:
            train_loss = float(tl)
            if early:
                if stopper.update(step, float(eval_fn(params, data.val))):
                    best_params = params
                if stopper.stop:
                    break
    if not early:
        best_params = params
    info = {"steps": step, "best_step": stopper.best_step if early else step,
            "stopped_early": bool(early and stopper.stop), "val_loss": stopper.best if early else math.nan,
            "loss_step0": loss0, "train_loss_last": train_loss,
            "chars_seen": step * t["batch"] * m["context"]}
    return best_params, info, mspec, eval_fn


def _worker_slot() -> int | None:
    """The number of this Dask worker when it has one (a local cluster names its workers 0, 1, ...), else None
    (not in a worker, or a worker named otherwise)."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return None
    return int(name) if isinstance(name, int) or (isinstance(name, str) and name.isdigit()) else None


def _jax_device():
    """The JAX device this process trains on: ``BAYES_SCALING_JAX_DEVICE`` (an index into ``jax.devices()`` or
    ``platform:id``, e.g. ``gpu:1``) when set; else JAX's default devices (the GPUs/TPUs when JAX has them, else
    the CPU): the first, or, with several, the one of this worker's number (worker ``k`` of a local cluster
    takes device ``k mod n``). On a machine with several GPUs and workers started by hand, give each worker its
    own ``CUDA_VISIBLE_DEVICES`` (or ``BAYES_SCALING_JAX_DEVICE``)."""
    import jax

    devices = jax.devices()
    want = os.environ.get("BAYES_SCALING_JAX_DEVICE", "").strip().lower()
    if not want:
        slot = _worker_slot() if len(devices) > 1 else None
        return devices[slot % len(devices)] if slot is not None else devices[0]
    if want.isdigit() and int(want) < len(devices):
        return devices[int(want)]
    extra = [d for d in jax.devices("cpu") if d not in devices]
    for d in devices + extra:
        if want == _device_name(d):
            return d
    raise ConfigError(f"BAYES_SCALING_JAX_DEVICE={want!r}: no such JAX device (have "
                      f"{', '.join(f'{d.platform}:{d.id}' for d in devices)})")


def _jax_env() -> None:
    """Before JAX starts its back end in this process (values the user set are kept):

    - several processes may share a GPU (the sweep's client and its local workers): JAX takes GPU memory as it
      needs it instead of 75% of it at start (``XLA_PYTHON_CLIENT_PREALLOCATE=false``);
    - GPU kernels run deterministically (``--xla_gpu_deterministic_ops=true``): without it, reductions on a
      GPU differ from run to run in the last digits, so a rerun (after a lost worker, say) would not
      reproduce the run it replaces. No effect on a CPU.
    """
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()


def _use_jax_cache() -> None:
    """Keep JAX's compiled train/evaluate steps on disk (``~/.cache/bayes_scaling/jax``, or
    ``$XDG_CACHE_HOME/bayes_scaling/jax``), so each worker process and each later sweep of the same
    architectures loads them instead of compiling again. A cache folder the user set for JAX is kept."""
    import jax

    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    try:
        (base / "bayes_scaling" / "jax").mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # not writable: compile as before
    jax.config.update("jax_compilation_cache_dir", str(base / "bayes_scaling" / "jax"))
    # the small kernels too (initialisation, eager ops): each compiles in well under a second, dozens per size
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _device_name(device) -> str:
    return f"{device.platform}:{device.id}"


def _run_one(cfg, spec: RunSpec, data: _Data, init_leaves: list[np.ndarray] | None = None) -> tuple[dict, list | None]:
    """Train one run on this process's JAX device: ``(row, parameters)``; the parameters (numpy leaves) only
    for pre-training runs. A fine-tuning run starts from ``init_leaves``, its pre-trained parameters. Writes
    nothing: the client writes rows and checkpoints."""
    _jax_env()
    import jax

    _use_jax_cache()
    device = _jax_device()
    with jax.default_device(device):
        row, params = _run_on_device(cfg, spec, data, init_leaves)
    row["device"] = _device_name(device)
    return row, params


def _run_on_device(cfg, spec: RunSpec, data: _Data, init_leaves) -> tuple[dict, list | None]:
    from bayes_scaling.experiments.model import ModelSpec, init_params

    m, t = cfg["model"], cfg["train"]
    t0 = time.perf_counter()
    py_train = data.corpora["python"].splits["train"]
    init_seed = _seed(spec.seed, f"init/d{spec.d_model}L{spec.n_layers}")
    mspec = ModelSpec(spec.d_model, spec.n_layers, context=m["context"], vocab=VOCAB_SIZE, head_dim=m["head_dim"])
    row = {"run_id": spec.run_id, "kind": spec.kind, "pretraining": spec.mix or "none", "model": mspec.name,
           "d_model": spec.d_model, "n_layers": spec.n_layers, "unit": "characters", "seed": spec.seed,
           "config": cfg["name"]}
    row["eval_every"], row["patience"] = _early_stopping(cfg, spec.kind)
    out_params = None
    if spec.kind == "scratch":
        params = init_params(mspec, init_seed)
        best, info, mspec, eval_fn = _train(cfg, spec, data, [py_train[:spec.D]], np.ones(1), params,
                                            lr=t["lr"], max_steps=t["max_steps"], early=True, eval_at_start=False)
        row.update(D=spec.D, lr=t["lr"], max_steps=t["max_steps"])
    elif spec.kind == "pretrain":
        p = cfg["pretrain"]
        mix = MIXES[spec.mix]
        sources = [data.corpora[s].splits["train"] for s in mix]
        params = init_params(mspec, init_seed)
        best, info, mspec, eval_fn = _train(cfg, spec, data, sources, np.array(list(mix.values())), params,
                                            lr=p["lr"], max_steps=p["steps"], early=False, eval_at_start=False)
        out_params = _leaves(best)
        row.update(D=info["chars_seen"], lr=p["lr"], max_steps=p["steps"],
                   mix_val_loss=float(eval_fn(best, data.mix_val[spec.mix])),
                   python_val_loss=float(eval_fn(best, data.val)))
    else:
        f = cfg["finetune"]
        if init_leaves is None:
            raise ValueError(f"{spec.run_id}: no pre-trained parameters given")
        params = _from_leaves(init_leaves, init_params(mspec, 0))
        best, info, mspec, eval_fn = _train(cfg, spec, data, [py_train[:spec.D]], np.ones(1), params,
                                            lr=f["lr"], max_steps=f["max_steps"], early=True, eval_at_start=True)
        row.update(D_F=spec.D, lr=f["lr"], max_steps=f["max_steps"])
    test = float(eval_fn(best, data.test))
    row.update({k: v for k, v in info.items() if k in RUN_COLUMNS})
    row.update(N=mspec.n_non_embedding, n_embedding=mspec.n_embedding, loss=test,
               flops=6.0 * (mspec.n_non_embedding + mspec.n_embedding) * info["chars_seen"],
               wall_s=round(time.perf_counter() - t0, 3), finished_utc=datetime.now(UTC).isoformat(timespec="seconds"))
    return row, out_params


# ---- worker side: cached data, one task ------------------------------------------------------------------

_DATA_CACHE: dict[str, _Data] = {}


def _cached_data(cfg: dict) -> _Data:
    """The corpora and evaluation windows of ``cfg``, loaded once per process (each Dask worker keeps them,
    as it keeps the jitted functions of each architecture: ``model.make_functions`` is cached)."""
    key = json.dumps({k: cfg[k] for k in ("corpus", "pretrain", "scratch", "finetune")}
                     | {"context": cfg["model"]["context"]}, sort_keys=True)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = _load_data(cfg)
    return _DATA_CACHE[key]


def _corpus_hashes(data: _Data) -> dict[str, str]:
    return {n: c.sha256 for n, c in data.corpora.items()}


def _sweep_task(task: dict, upstream: dict | None = None) -> dict:
    """One run, on a worker: ``{"row", "params"}``. Refuses to train when the worker's corpora differ from the
    client's (another Python version there), since the runs would not be comparable."""
    data = _cached_data(task["cfg"])
    mine = _corpus_hashes(data)
    if mine != task["corpora"]:
        diff = sorted(n for n in mine if mine[n] != task["corpora"].get(n))
        raise ConfigError(f"this worker's corpora {diff} differ from the client's (sha256); workers need the "
                          "same Python version as the client")
    init = upstream["params"] if upstream is not None else task.get("init")
    row, params = _run_one(task["cfg"], task["spec"], data, init)
    return {"row": row, "params": params}


class RunsTable:
    """``OUT/runs.csv``, the sweep's results table: one row per finished run, each written once.

    Rows are appended by this (the client) process only, each as one ``write`` of a whole line, flushed to disk
    (``fsync``) before the next run is recorded, and never twice for one run id. On opening, a half-written last
    line (a sweep killed while writing) is removed, and that run is trained again; any other damage (a row
    with the wrong number of fields, a run id twice) is refused with an error naming the file and the line.
    """

    def __init__(self, path: Path, log=print):
        self.path = path
        self.rows: list[dict] = []
        self.fieldnames = list(RUN_COLUMNS)
        if path.exists():
            self._open_existing(log)
        self.done = {r["run_id"] for r in self.rows}

    def _open_existing(self, log) -> None:
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            keep = raw.rfind(b"\n") + 1
            with self.path.open("r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
            log(f"warning: {self.path}: removed a half-written last line (an interrupted write); that run is "
                "trained again")
            raw = raw[:keep]
        if not raw:
            return
        text = raw.decode("utf-8")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        if "run_id" not in header:
            raise ConfigError(f"{self.path}: line 1 is not a runs table header (no run_id column); move the file "
                              "away or use another --out directory")
        self.fieldnames = header
        seen: dict[str, int] = {}
        for values in reader:
            line = reader.line_num
            if len(values) != len(header):
                raise ConfigError(f"{self.path}, line {line}: {len(values)} fields, expected {len(header)}; the "
                                  "table is damaged: delete that line (its run is then trained again)")
            row = dict(zip(header, values, strict=True))
            if row["run_id"] in seen:
                raise ConfigError(f"{self.path}, lines {seen[row['run_id']]} and {line}: run {row['run_id']} "
                                  "twice; delete one of the lines")
            seen[row["run_id"]] = line
            self.rows.append(row)

    def append(self, row: dict) -> bool:
        """Record a finished run; ``False`` (nothing written) if its run id is already there."""
        if row["run_id"] in self.done:
            return False
        buf = io.StringIO(newline="")
        w = csv.DictWriter(buf, fieldnames=self.fieldnames, extrasaction="ignore", lineterminator="\n")
        new = not self.path.exists() or self.path.stat().st_size == 0
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in self.fieldnames})
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        self.done.add(row["run_id"])
        self.rows.append(row)
        return True


def _read_runs(path: Path) -> list[dict]:
    return RunsTable(path, log=lambda m: None).rows if path.exists() else []


def export_tables(out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``OUT/scratch.csv`` (``N, D, loss, unit`` + extras) and ``OUT/finetune.csv``
    (``pretraining, N, D_F, loss, unit`` + extras) from ``OUT/runs.csv``, each atomically."""
    import pandas as pd

    from bayes_scaling._atomic import atomic_write

    out = Path(out)
    runs = pd.read_csv(out / "runs.csv")
    extra = ["model", "d_model", "n_layers", "steps", "best_step", "stopped_early", "val_loss", "wall_s", "seed",
             "run_id"]
    sc = runs[runs["kind"] == "scratch"][["N", "D", "loss", "unit", *extra]]
    sc = sc.assign(D=sc["D"].astype("int64")).sort_values(["N", "D"])
    ft = runs[runs["kind"] == "finetune"][["pretraining", "N", "D_F", "loss", "unit", "loss_step0", *extra]]
    ft = ft.assign(D_F=ft["D_F"].astype("int64")).sort_values(["pretraining", "N", "D_F"])
    paths = out / "scratch.csv", out / "finetune.csv"
    for table, path in zip((sc, ft), paths, strict=True):
        with atomic_write(path, newline="") as fh:
            table.to_csv(fh, index=False)
    return paths


def _machine() -> dict:
    cpu = cpu_model()
    _jax_env()
    import jax

    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__, "numpy": np.__version__,
            "jax_devices": [_device_name(d) for d in jax.devices()]}


@contextlib.contextmanager
def _lock(out: Path):
    """One sweep at a time writes to ``out`` (an advisory lock on ``OUT/.sweep.lock``; released when the
    process ends, however it ends)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    fh = (out / ".sweep.lock").open("a")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"another sweep is writing to {out} ({out / '.sweep.lock'} is locked); wait for it "
                              "or use another --out directory") from None
        yield
    finally:
        fh.close()


def _plan_tasks(cfg: dict, out: Path, done: set[str], corpora: dict[str, str]):
    """The runs still to train as tasks for :func:`~bayes_scaling.inference.batch.map_tasks`: (tasks, labels,
    after). A fine-tuning run follows its pre-training run when that is trained in this invocation; else it
    starts from the saved checkpoint (re-created without a new row when missing)."""
    tasks, labels, after = [], [], []
    pre_index: dict[str, int] = {}

    def add(spec: RunSpec, record: bool = True, dep: int | None = None, init=None) -> int:
        tasks.append({"cfg": cfg, "spec": spec, "corpora": corpora, "record": record, "init": init})
        labels.append(spec.run_id if record else f"{spec.run_id} (re-creating its missing checkpoint)")
        after.append(dep)
        return len(tasks) - 1

    for spec in plan_runs(cfg):
        if spec.kind == "pretrain" and spec.run_id not in done:
            pre_index[spec.run_id] = add(spec)
        elif spec.kind == "finetune" and spec.run_id not in done:
            pre = RunSpec("pretrain", spec.d_model, spec.n_layers, mix=spec.mix, seed=spec.seed)
            if pre.run_id not in pre_index:
                ck = _ckpt_path(out, pre)
                if ck.exists():
                    add(spec, init=_load_leaves(ck))
                    continue
                pre_index[pre.run_id] = add(pre, record=False)
            add(spec, dep=pre_index[pre.run_id])
        elif spec.kind == "scratch" and spec.run_id not in done:
            add(spec)
    return tasks, labels, after


def run_sweep(cfg: dict, out: str | os.PathLike, *, log=print, client=None, scheduler: str | None = None,
              workers: int | None = 1, progress=False) -> dict:
    """Run (or resume) the sweep of ``cfg`` into ``out``; returns counts of runs trained and skipped.

    The runs go through :func:`bayes_scaling.inference.batch.map_tasks`: ``client=`` / ``scheduler=`` (or
    ``BAYES_SCALING_SCHEDULER``) for an existing Dask cluster, else ``workers`` local worker processes
    (``None``: one per core; ``1``, the default here: in this process). Every run has its own seed, so the
    results do not depend on where or in which order the runs ran. Each finished run is written once to
    ``OUT/runs.csv`` (:class:`RunsTable`), by this process, as it comes back; pre-training checkpoints are
    written here too, so workers need no shared file system. A run that fails is reported with its run id
    while the others finish; then :class:`~bayes_scaling.inference.batch.BatchError` is raised (the table
    holds every finished run, and the next invocation retries the failed ones).

    Raises :class:`~bayes_scaling.errors.ConfigError` if ``out`` holds a sweep of a different configuration
    or another sweep is writing to it.
    """
    from bayes_scaling._atomic import write_text
    from bayes_scaling.inference.batch import (
        BatchError,
        TaskFailure,
        batch_client,
        describe_client,
        map_tasks,
    )

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):
        cfg_file = out / "config.json"
        if cfg_file.exists():
            old = json.loads(cfg_file.read_text())
            old.setdefault("seeds", [old.get("seed", 0)])  # written before seeds existed
            if old != json.loads(json.dumps(cfg)):
                raise ConfigError(f"{out} holds a sweep of a different configuration ({cfg_file}); "
                                  "use another --out directory")
        else:
            write_text(cfg_file, json.dumps(cfg, indent=1))
        table = RunsTable(out / "runs.csv", log=log)
        plan = plan_runs(cfg)
        n_todo = sum(s.run_id not in table.done for s in plan)
        log(f"{len(plan)} runs planned, {len(plan) - n_todo} already in {table.path}, {n_todo} to train")
        trained = 0
        failures: list[TaskFailure] = []
        if n_todo:
            data = _cached_data(cfg)
            write_text(out / "corpora.json", json.dumps({n: c.card() for n, c in data.corpora.items()}, indent=1))
            write_text(out / "machine.json", json.dumps(_machine(), indent=1))
            tasks, labels, after = _plan_tasks(cfg, out, table.done, _corpus_hashes(data))

            def finished(i: int, res: dict) -> None:
                nonlocal trained
                spec, row = tasks[i]["spec"], res["row"]
                if res["params"] is not None:
                    _save_leaves(_ckpt_path(out, spec), res["params"])
                if not tasks[i]["record"]:
                    return
                if table.append(row):
                    trained += 1
                    export_tables(out)
                    dev = "" if row["device"].startswith("cpu") else f" on {row['device']}"
                    log(f"[{trained}/{n_todo}] {spec.run_id}: N={row['N']} steps={row['steps']} "
                        f"best={row['best_step']} loss={row['loss']:.4f} ({row['wall_s']:.1f} s{dev})")

            with batch_client(client, scheduler=scheduler, workers=workers, n_tasks=len(tasks)) as c:
                log("running in this process" if c is None else f"running on {describe_client(c)}")
                results = map_tasks(_sweep_task, tasks, client=c, workers=1, labels=labels, after=after,
                                    on_result=finished, errors="return", progress=progress, desc="runs")
            failures = [r for r in results if isinstance(r, TaskFailure)]
            for f in failures:
                log(f"failed: {f.label}: {f.error}")
        elif table.path.exists():
            export_tables(out)
        if failures:
            raise BatchError(failures, results, len(tasks))
    return {"planned": len(plan), "trained": trained, "skipped": len(plan) - n_todo}
