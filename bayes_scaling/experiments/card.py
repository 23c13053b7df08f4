"""Summaries of a finished sweep, and the bundling of its tables as a package data set (with a JSON card).

>>> summary = summarize_sweep("runs/measured_transfer")                       # doctest: +SKIP
>>> bundle("runs/measured_transfer", "bayes_scaling/datasets")               # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from os import PathLike
from pathlib import Path

import pandas as pd

from bayes_scaling.errors import DataError

__all__ = ["summarize_sweep", "bundle"]


def summarize_sweep(out: str | PathLike) -> dict:
    """Counts, compute (wall seconds, characters seen, ~6 N_total C FLOPs) and early-stopping statistics of the
    sweep in ``out`` (its ``runs.csv``), with its configuration, corpora and machine records."""
    out = Path(out)
    if not (out / "runs.csv").exists():
        raise DataError(f"{out}: no runs.csv (run 'bayes-scaling experiment run' first)")
    runs = pd.read_csv(out / "runs.csv")
    cfg = json.loads((out / "config.json").read_text())
    by_kind = {}
    for kind, g in runs.groupby("kind"):
        by_kind[kind] = {"runs": len(g), "wall_s": round(float(g["wall_s"].sum()), 1),
                         "chars_seen": int(g["chars_seen"].sum()), "flops": float(g["flops"].sum()),
                         "stopped_early": int(g["stopped_early"].astype(bool).sum())}
    ft = runs[runs["kind"] == "finetune"]
    pre = runs[runs["kind"] == "pretrain"]
    planned = 0
    try:
        from bayes_scaling.experiments.sweep import plan_runs

        planned = len(plan_runs(cfg))
    except Exception:  # pragma: no cover - summary without the harness's dependencies
        planned = -1
    return {
        "config": cfg,
        "runs_planned": planned, "runs_finished": len(runs), "complete": len(runs) == planned,
        "by_kind": by_kind,
        "total_wall_s": round(float(runs["wall_s"].sum()), 1),
        "total_chars_seen": int(runs["chars_seen"].sum()), "total_flops": float(runs["flops"].sum()),
        "first_finished_utc": str(runs["finished_utc"].min()), "last_finished_utc": str(runs["finished_utc"].max()),
        "finetune_best_at_step_0": int((ft["best_step"] == 0).sum()),
        "pretraining_runs": pre[["run_id", "N", "pretraining", "steps", "chars_seen", "mix_val_loss",
                                 "python_val_loss", "wall_s"]].to_dict(orient="records"),
        "corpora": json.loads((out / "corpora.json").read_text()) if (out / "corpora.json").exists() else {},
        "machine": json.loads((out / "machine.json").read_text()) if (out / "machine.json").exists() else {},
    }


def bundle(out: str | PathLike, dest: str | PathLike, name: str = "measured_transfer", **notes) -> dict:
    """Copy ``OUT/scratch.csv`` and ``OUT/finetune.csv`` to ``DEST/{name}_scratch.csv`` and
    ``DEST/{name}_finetune.csv`` and write ``DEST/{name}.json`` (:func:`summarize_sweep` plus ``notes``)."""
    out, dest = Path(out), Path(dest)
    summary = summarize_sweep(out) | notes
    shutil.copyfile(out / "scratch.csv", dest / f"{name}_scratch.csv")
    shutil.copyfile(out / "finetune.csv", dest / f"{name}_finetune.csv")
    (dest / f"{name}.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    return summary
