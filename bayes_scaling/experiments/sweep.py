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

Each finished run is appended to ``OUT/runs.csv`` at once; a second invocation with the same configuration skips
the runs already there (``OUT/config.json`` guards against resuming with another configuration). The tables
``OUT/scratch.csv`` (``N, D, loss``) and ``OUT/finetune.csv`` (``pretraining, N, D_F, loss``), unit
characters, are rewritten after every run and load with :func:`bayes_scaling.models.losslaws.read_scratch` and
:func:`bayes_scaling.analysis.effective.read_finetune`.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import platform
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

__all__ = ["SMOKE_CONFIG", "MIXES", "EarlyStopping", "RunSpec", "load_config", "plan_runs", "run_sweep",
           "export_tables", "RUN_COLUMNS"]

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
               "mix_val_loss", "train_loss_last", "flops", "wall_s", "finished_utc", "config"]

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

    @property
    def run_id(self) -> str:
        size = f"d{self.d_model}L{self.n_layers}"
        if self.kind == "scratch":
            return f"scratch/{size}/D={self.D}"
        if self.kind == "pretrain":
            return f"pretrain/{size}/{self.mix}"
        return f"finetune/{size}/{self.mix}/D_F={self.D}"


def plan_runs(cfg: dict) -> list[RunSpec]:
    """All runs, smallest model first (per size: from-scratch, pre-training, fine-tuning), so that a cut-off
    sweep leaves complete model sizes."""
    runs = []
    for d, L in sorted(cfg["model"]["sizes"], key=lambda s: s[1] * (12 * s[0] ** 2 + 13 * s[0])):
        runs += [RunSpec("scratch", d, L, D=int(D)) for D in cfg["scratch"]["D"]]
        for mix in cfg["pretrain"]["mixes"]:
            runs.append(RunSpec("pretrain", d, L, mix=mix))
            runs += [RunSpec("finetune", d, L, D=int(D), mix=mix) for D in cfg["finetune"]["D_F"]]
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


def _seed(cfg: dict, text: str) -> int:
    return (int(cfg["seed"]) * 1_000_003 + zlib.crc32(text.encode())) % (2 ** 31)


def _lr(step: int, base: float, warmup: int) -> float:
    return base * min(1.0, step / max(1, warmup))


def _ckpt_path(out: Path, spec: RunSpec) -> Path:
    return out / "checkpoints" / f"d{spec.d_model}L{spec.n_layers}_{spec.mix.replace('+', '_')}.npz"


def _save(path: Path, params) -> None:
    import jax

    path.parent.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_leaves(params)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, *[np.asarray(x) for x in leaves])
    os.replace(tmp, path)


def _load(path: Path, template):
    import jax
    import jax.numpy as jnp

    with np.load(path) as z:
        leaves = [jnp.asarray(z[f"arr_{i}"]) for i in range(len(z.files))]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)


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
    rng = np.random.default_rng(_seed(cfg, spec.run_id))
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


def _run_one(cfg, spec: RunSpec, data: _Data, out: Path) -> dict:
    from bayes_scaling.experiments.model import init_params

    m, t = cfg["model"], cfg["train"]
    t0 = time.perf_counter()
    py_train = data.corpora["python"].splits["train"]
    init_seed = _seed(cfg, f"init/d{spec.d_model}L{spec.n_layers}")
    from bayes_scaling.experiments.model import ModelSpec

    mspec = ModelSpec(spec.d_model, spec.n_layers, context=m["context"], vocab=VOCAB_SIZE, head_dim=m["head_dim"])
    row = {"run_id": spec.run_id, "kind": spec.kind, "pretraining": spec.mix or "none", "model": mspec.name,
           "d_model": spec.d_model, "n_layers": spec.n_layers, "unit": "characters", "seed": cfg["seed"],
           "config": cfg["name"]}
    row["eval_every"], row["patience"] = _early_stopping(cfg, spec.kind)
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
        _save(_ckpt_path(out, spec), best)
        row.update(D=info["chars_seen"], lr=p["lr"], max_steps=p["steps"],
                   mix_val_loss=float(eval_fn(best, data.mix_val[spec.mix])),
                   python_val_loss=float(eval_fn(best, data.val)))
    else:
        f = cfg["finetune"]
        ck = _ckpt_path(out, spec)
        template = init_params(mspec, 0)
        if not ck.exists():  # e.g. runs.csv kept but checkpoints lost: re-create it (not appended again)
            print(f"  re-creating missing checkpoint {ck}", flush=True)
            _run_one(cfg, RunSpec("pretrain", spec.d_model, spec.n_layers, mix=spec.mix), data, out)
        params = _load(ck, template)
        best, info, mspec, eval_fn = _train(cfg, spec, data, [py_train[:spec.D]], np.ones(1), params,
                                            lr=f["lr"], max_steps=f["max_steps"], early=True, eval_at_start=True)
        row.update(D_F=spec.D, lr=f["lr"], max_steps=f["max_steps"])
    test = float(eval_fn(best, data.test))
    row.update({k: v for k, v in info.items() if k in RUN_COLUMNS})
    row.update(N=mspec.n_non_embedding, n_embedding=mspec.n_embedding, loss=test,
               flops=6.0 * (mspec.n_non_embedding + mspec.n_embedding) * info["chars_seen"],
               wall_s=round(time.perf_counter() - t0, 3), finished_utc=datetime.now(UTC).isoformat(timespec="seconds"))
    return row


def _read_runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def export_tables(out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``OUT/scratch.csv`` (``N, D, loss, unit`` + extras) and ``OUT/finetune.csv``
    (``pretraining, N, D_F, loss, unit`` + extras) from ``OUT/runs.csv``."""
    import pandas as pd

    out = Path(out)
    runs = pd.read_csv(out / "runs.csv")
    extra = ["model", "d_model", "n_layers", "steps", "best_step", "stopped_early", "val_loss", "wall_s", "seed",
             "run_id"]
    sc = runs[runs["kind"] == "scratch"][["N", "D", "loss", "unit", *extra]]
    sc = sc.assign(D=sc["D"].astype("int64")).sort_values(["N", "D"])
    ft = runs[runs["kind"] == "finetune"][["pretraining", "N", "D_F", "loss", "unit", "loss_step0", *extra]]
    ft = ft.assign(D_F=ft["D_F"].astype("int64")).sort_values(["pretraining", "N", "D_F"])
    paths = out / "scratch.csv", out / "finetune.csv"
    sc.to_csv(paths[0], index=False)
    ft.to_csv(paths[1], index=False)
    return paths


def _machine() -> dict:
    cpu = cpu_model()
    import jax

    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__, "numpy": np.__version__}


def run_sweep(cfg: dict, out: str | os.PathLike, *, log=print) -> dict:
    """Run (or resume) the sweep of ``cfg`` into ``out``; returns counts of runs trained and skipped.

    Raises :class:`~bayes_scaling.errors.ConfigError` if ``out`` holds a sweep of a different configuration.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "config.json"
    if cfg_file.exists():
        old = json.loads(cfg_file.read_text())
        if old != json.loads(json.dumps(cfg)):
            raise ConfigError(f"{out} holds a sweep of a different configuration ({cfg_file}); "
                              "use another --out directory")
    else:
        cfg_file.write_text(json.dumps(cfg, indent=1))
    runs_csv = out / "runs.csv"
    done = {r["run_id"] for r in _read_runs(runs_csv)}
    plan = plan_runs(cfg)
    todo = [s for s in plan if s.run_id not in done]
    log(f"{len(plan)} runs planned, {len(plan) - len(todo)} already in {runs_csv}, {len(todo)} to train")
    trained = 0
    if todo:
        data = _load_data(cfg)
        corpus_card = {n: c.card() for n, c in data.corpora.items()}
        (out / "corpora.json").write_text(json.dumps(corpus_card, indent=1))
        (out / "machine.json").write_text(json.dumps(_machine(), indent=1))
        for spec in todo:
            row = _run_one(cfg, spec, data, out)
            new = not runs_csv.exists()
            with runs_csv.open("a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=RUN_COLUMNS)
                if new:
                    w.writeheader()
                w.writerow({k: row.get(k, "") for k in RUN_COLUMNS})
            trained += 1
            export_tables(out)
            log(f"[{trained}/{len(todo)}] {spec.run_id}: N={row['N']} steps={row['steps']} "
                f"best={row['best_step']} loss={row['loss']:.4f} ({row['wall_s']:.1f} s)")
    elif runs_csv.exists():
        export_tables(out)
    return {"planned": len(plan), "trained": trained, "skipped": len(plan) - len(todo)}
