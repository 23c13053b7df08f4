"""Summaries of a finished (or partial) sweep, and the bundling of its tables as a package data set with its
data card (JSON and Markdown).

- :func:`summarize_sweep`: counts, compute, early stopping, configuration, corpora, machine.
- :func:`sweep_tables`: the from-scratch and fine-tuned tables of a sweep with every run's seed, wall time,
  finishing time, device and machine.
- :func:`sweep_problems`: what went wrong, measured from ``runs.csv`` (missing runs of a partial sweep, runs
  that hit the step budget, fine-tuning that never improved on the pre-trained model, ossified runs, runs that
  overlapped in time and how much the speed of identical work varied: the wall times of a shared machine).
- :func:`bundle_sweep`: writes ``DEST/{name}_scratch.csv``, ``_finetune.csv``, ``.json`` and ``.md`` (the
  card, :func:`card_markdown`). ``bundle`` is the earlier, table-copying version.

>>> summary = summarize_sweep("runs/measured_transfer")                                     # doctest: +SKIP
>>> bundle_sweep("runs/seeds", "/tmp/bundle", notes=["the machine was shared with ..."])    # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling.errors import DataError

__all__ = ["summarize_sweep", "bundle", "sweep_tables", "sweep_problems", "bundle_sweep", "card_markdown",
           "reproduction"]


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


# ---- multi-seed sweeps: tables with provenance, measured problems, the card --------------------------------

#: columns of the bundled tables beyond the loss-law inputs (per run: its seed, time and machine)
EXTRA_COLUMNS = ["model", "d_model", "n_layers", "steps", "best_step", "stopped_early", "val_loss", "wall_s", "seed",
                 "finished_utc", "device", "machine", "run_id"]


def _runs(out: Path) -> pd.DataFrame:
    if not (out / "runs.csv").exists():
        raise DataError(f"{out}: no runs.csv (run 'bayes-scaling experiment run' first)")
    runs = pd.read_csv(out / "runs.csv")
    machine = json.loads((out / "machine.json").read_text()) if (out / "machine.json").exists() else {}
    runs["machine"] = f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores" if machine else ""
    return runs


def sweep_tables(out: str | PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(scratch, finetune)`` of the sweep in ``out``: ``N, D, loss, unit`` / ``pretraining, N, D_F, loss, unit,
    loss_step0`` and :data:`EXTRA_COLUMNS` (``machine``: the CPU and cores of ``OUT/machine.json``), sorted by
    configuration and seed; finished runs only (a partial sweep gives partial tables)."""
    runs = _runs(Path(out))
    extra = [c for c in EXTRA_COLUMNS if c in runs.columns]
    sc = runs[runs["kind"] == "scratch"][["N", "D", "loss", "unit", *extra]]
    sc = sc.assign(D=sc["D"].astype("int64")).sort_values(["N", "D", "seed"], kind="stable")
    ft = runs[runs["kind"] == "finetune"][["pretraining", "N", "D_F", "loss", "unit", "loss_step0", *extra]]
    ft = ft.assign(D_F=ft["D_F"].astype("int64")).sort_values(["pretraining", "N", "D_F", "seed"], kind="stable")
    return sc.reset_index(drop=True), ft.reset_index(drop=True)


def _ossified_summary(sc: pd.DataFrame, ft: pd.DataFrame) -> dict:
    from bayes_scaling.analysis.seeds import ossified_runs

    oss = ossified_runs(sc, ft)
    hit = oss[oss["ossified"]]
    return {"runs": int(len(hit)), "of": int(len(oss)),
            "by_N_D_F": {f"N={n:g}, D_F={d:g}": int(len(g)) for (n, d), g in hit.groupby(["N", "D_F"], sort=True)}}


def _included(include: Path, name: str, sweep_ids: set) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The runs of an earlier bundled data set (tables and JSON card in ``include``) that the sweep lacks, with
    the provenance columns it may not have (``machine`` from its card; ``finished_utc``, ``device``: empty)."""
    meta = json.loads((include / f"{name}.json").read_text())
    m = meta.get("machine", {})
    out = []
    for kind in ("scratch", "finetune"):
        t = pd.read_csv(include / f"{name}_{kind}.csv")
        t = t[~t["run_id"].isin(sweep_ids)].copy()
        for col, value in (("finished_utc", ""), ("device", ""),
                           ("machine", f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores" if m else "")):
            if col not in t.columns:
                t[col] = value
        out.append(t)
    return out[0], out[1], meta


def sweep_problems(out: str | PathLike) -> dict:
    """What went wrong in the sweep in ``out``, measured (a dict of counts and short lists):

    - ``missing``: planned runs not finished (a partial sweep), per kind;
    - ``budget``: runs that hit ``max_steps`` without early stopping (compute-limited), per kind;
    - ``finetune_best_at_step_0``: fine-tuning never beat the pre-trained model on validation;
    - ``ossified``: fine-tuned runs worse than from scratch at the same N on D_F alone (``D_T <= 0`` on the
      seed-averaged from-scratch curve, :func:`bayes_scaling.analysis.seeds.ossified_runs`), by N and D_F;
    - ``overlap``: runs whose time intervals (``finished_utc - wall_s`` to ``finished_utc``) overlapped another
      run's, and the most at once;
    - ``speed``: seconds per training step of the same kind and size, the ratio of its 90th to 10th percentile
      (1 on a quiet machine, where identical work takes identical time; more when the runs shared the cores).
    """
    out = Path(out)
    runs = _runs(out)
    cfg = json.loads((out / "config.json").read_text())
    res: dict = {}
    try:
        from bayes_scaling.experiments.sweep import plan_runs

        planned = plan_runs(cfg)
        done = set(runs["run_id"])
        miss = [r for r in planned if r.run_id not in done]
        res["missing"] = {k: sum(1 for r in miss if r.kind == k) for k in ("scratch", "pretrain", "finetune")}
        from bayes_scaling.experiments.model import ModelSpec

        res["missing_sizes"] = sorted({ModelSpec(r.d_model, r.n_layers).n_non_embedding for r in miss})
    except Exception as exc:  # pragma: no cover - the harness's dependencies (JAX) missing
        res["missing"] = f"not checked ({type(exc).__name__})"
    res["budget"] = {k: int((~g["stopped_early"].astype(bool)).sum()) for k, g in runs.groupby("kind")
                     if k != "pretrain"}
    ft = runs[runs["kind"] == "finetune"]
    res["finetune_best_at_step_0"] = int((ft["best_step"] == 0).sum())
    sc, ftt = sweep_tables(out)
    if len(sc) and len(ftt):
        res["ossified"] = _ossified_summary(sc, ftt)
    fin = pd.to_datetime(runs["finished_utc"], utc=True)
    start = fin - pd.to_timedelta(runs["wall_s"], unit="s")
    order = np.argsort(start.to_numpy())
    s_, f_ = start.to_numpy()[order], fin.to_numpy()[order]
    at_once = [int(((s_ <= s_[i]) & (f_ > s_[i])).sum()) for i in range(len(s_))]
    overlapped = sum(1 for i in range(len(s_)) if ((s_ < f_[i]) & (f_ > s_[i])).sum() > 1)
    res["overlap"] = {"runs_overlapping_another": int(overlapped), "most_at_once": max(at_once, default=0)}
    per_step = runs.assign(s_per_step=runs["wall_s"] / runs["steps"].clip(lower=1))
    speed = {}
    for (kind, n), g in per_step.groupby(["kind", "N"], sort=True):
        if len(g) >= 3:
            lo, hi = np.quantile(g["s_per_step"], [0.1, 0.9])
            speed[f"{kind} N={n:g}"] = round(float(hi / lo), 2)
    res["speed_p90_over_p10"] = speed
    res["wall_s_by_seed"] = {int(k): round(float(v), 1) for k, v in runs.groupby("seed")["wall_s"].sum().items()}
    return res


def reproduction(scratch: pd.DataFrame, finetune: pd.DataFrame, reference: str | PathLike,
                 name: str = "measured_transfer") -> dict:
    """Compare the runs with the same ``run_id`` in ``reference`` (a folder with ``{name}_scratch.csv`` and
    ``{name}_finetune.csv``, e.g. the earlier bundled data set): how many are shared, how many have identical
    losses, the largest absolute difference."""
    ref = pd.concat([pd.read_csv(Path(reference) / f"{name}_{k}.csv") for k in ("scratch", "finetune")])
    new = pd.concat([scratch, finetune])
    both = new.merge(ref[["run_id", "loss"]], on="run_id", suffixes=("", "_ref"))
    diff = (both["loss"] - both["loss_ref"]).abs()
    return {"reference": str(reference), "shared_runs": int(len(both)), "identical": int((diff == 0).sum()),
            "max_abs_diff": float(diff.max()) if len(both) else None}


def bundle_sweep(out: str | PathLike, dest: str | PathLike, name: str = "measured_transfer", *,
                 notes: list[str] | None = None, findings: list[str] | None = None,
                 reference: str | PathLike | None = None, include: str | PathLike | None = None) -> dict:
    """Bundle the sweep in ``out`` (finished or partial) as ``DEST/{name}_scratch.csv``, ``_finetune.csv``
    (:func:`sweep_tables`), ``{name}.json`` (:func:`summarize_sweep`, :func:`sweep_problems`, the measured seed
    noise per size and the ``notes``) and ``{name}.md`` (:func:`card_markdown`: the card, regenerated; ``notes``:
    what went wrong that the files cannot show, e.g. other work on the machine; ``findings``: lines of results;
    ``reference``: a folder with an earlier bundled data set whose runs should reproduce, :func:`reproduction`;
    ``include``: a folder with an earlier bundled data set whose runs join the sweep's, e.g. seed 0 =
    ``full.toml``'s v1 runs with a sweep of seeds 1 and 2: the tables hold both, the counts and compute add up,
    and the JSON keeps the earlier card's summary under ``included``).
    Every file is written atomically. Returns the JSON document.

    >>> doc = bundle_sweep("/work/runs_seeds", "/tmp/bundle", notes=["shared machine"])   # doctest: +SKIP
    """
    import tempfile

    out, dest = Path(out), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as snap:   # one snapshot: a running sweep appends to runs.csv meanwhile
        for f in ("runs.csv", "config.json", "corpora.json", "machine.json"):
            if (out / f).exists():
                (Path(snap) / f).write_bytes((out / f).read_bytes())
        if include is not None:  # read before DEST (maybe the same folder) is overwritten
            for f in (f"{name}_scratch.csv", f"{name}_finetune.csv", f"{name}.json"):
                (Path(snap) / "include").mkdir(exist_ok=True)
                (Path(snap) / "include" / f).write_bytes((Path(include) / f).read_bytes())
        return _bundle(Path(snap), dest, name, notes, findings, reference,
                       None if include is None else (Path(snap) / "include", str(include)))


def _bundle(out: Path, dest: Path, name: str, notes, findings, reference, include) -> dict:
    from bayes_scaling._atomic import atomic_path, write_text
    from bayes_scaling.analysis.seeds import seed_noise

    sc, ft = sweep_tables(out)
    rep = reproduction(sc, ft, reference, name) if reference is not None else None  # before DEST is overwritten
    summary = summarize_sweep(out)
    summary["problems"] = sweep_problems(out)
    if include is not None:
        inc_sc, inc_ft, inc = _included(include[0], name, set(sc["run_id"]) | set(ft["run_id"]))
        sc = pd.concat([inc_sc, sc], ignore_index=True).sort_values(["N", "D", "seed"], kind="stable")
        ft = pd.concat([inc_ft, ft], ignore_index=True).sort_values(["pretraining", "N", "D_F", "seed"],
                                                                    kind="stable")
        sc, ft = sc.reset_index(drop=True), ft.reset_index(drop=True)
        summary["included"] = {"source": include[1], **{k: inc.get(k) for k in (
            "config", "runs_finished", "runs_planned", "by_kind", "total_wall_s", "total_flops", "total_chars_seen",
            "first_finished_utc", "last_finished_utc", "machine")}}
        for k in ("runs_finished", "runs_planned", "total_wall_s", "total_flops", "total_chars_seen"):
            summary[k] = summary[k] + (inc.get(k) or 0)
        summary["complete"] = bool(summary["complete"] and inc.get("runs_finished") == inc.get("runs_planned"))
        summary["pretraining_runs"] = list(inc.get("pretraining_runs", [])) + summary["pretraining_runs"]
        if len(sc) and len(ft):
            summary["problems"]["ossified"] = _ossified_summary(sc, ft)
    if not len(sc) or not len(ft):
        raise DataError(f"{out}: no finished from-scratch or fine-tuned runs to bundle")
    summary["notes"] = list(notes or [])
    summary["findings"] = list(findings or [])
    if rep is not None:
        summary["reproduction"] = rep
    summary["seeds_finished"] = {int(k): int(v) for k, v in
                                 pd.concat([sc["seed"], ft["seed"]]).value_counts().sort_index().items()}
    noise = seed_noise(sc, ft)
    summary["seed_noise"] = json.loads(noise.to_json(orient="records"))
    for table, suffix in ((sc, "scratch"), (ft, "finetune")):
        with atomic_path(dest / f"{name}_{suffix}.csv") as tmp:
            table.to_csv(tmp, index=False)
    write_text(dest / f"{name}.json", json.dumps(summary, indent=1, default=float) + "\n")
    write_text(dest / f"{name}.md", card_markdown(summary, sc, ft, name))
    return summary


def _fmt_n(v) -> str:
    return f"{v:,.0f}" if isinstance(v, (int, float)) else str(v)


def _design_lines(cfg: dict, corpora: dict) -> list[str]:
    """The card's "What was trained" and "On what" sections, from the configuration and the corpora records."""
    from bayes_scaling.experiments.model import ModelSpec

    tr, ft, pre = cfg["train"], cfg["finetune"], cfg["pretrain"]
    sizes = "; ".join(f"{d}x{n} -> {ModelSpec(d, n).n_non_embedding:,}" for d, n in cfg["model"]["sizes"])
    L = ["## What was trained", "", "| | |", "|---|---|",
         f"| model | pre-LN decoder, heads of {cfg['model']['head_dim']}, context {cfg['model']['context']}, "
         "vocabulary 128 (ASCII) |",
         f"| sizes (d_model x layers -> N) | {sizes} |",
         f"| from scratch | Python, D = {', '.join(f'{d:.3g}' for d in cfg['scratch']['D'])} characters; lr "
         f"{tr['lr']:g}; at most {tr['max_steps']} steps; batch {tr['batch']}, warm-up {tr['warmup']} |",
         f"| pre-training | fixed {pre['steps']} steps, lr {pre['lr']:g}, on {' or '.join(pre['mixes'])} |",
         f"| fine-tuning | Python, D_F = {', '.join(f'{d:.3g}' for d in ft['D_F'])} characters; lr {ft['lr']:g}; "
         f"at most {ft['max_steps']} steps |",
         f"| early stopping | validation every {tr['eval_every']} steps, patience {tr['patience']} (fine-tuning: every "
         f"{ft.get('eval_every', tr['eval_every'])}, patience {ft.get('patience', tr['patience'])}); keep the best |",
         f"| seeds | {', '.join(map(str, cfg.get('seeds', [cfg.get('seed', 0)])))} |", ""]
    if corpora:
        L += ["## On what", "", "| corpus | source | characters | files | licence | sha256 |", "|---|---|---|---|---|---|"]
        for name, c in corpora.items():
            L.append(f"| {name} | {c.get('provenance', '')} | {c.get('n_chars', 0):,} | {c.get('n_files', '')} | "
                     f"{c.get('licence', '')} | `{c.get('sha256_of_sorted_concatenation', '')}` |")
        L.append("")
    return L


def card_markdown(summary: dict, scratch: pd.DataFrame, finetune: pd.DataFrame,
                  name: str = "measured_transfer") -> str:
    """The data card (Markdown) of a bundled sweep, from :func:`bundle_sweep`'s summary and tables."""
    cfg = summary["config"]
    m = summary.get("machine", {})
    seeds = sorted(pd.concat([scratch["seed"], finetune["seed"]]).unique().tolist())
    partial = not summary.get("complete", False)
    Ns = sorted(pd.concat([scratch["N"], finetune["N"]]).unique().tolist())
    L = ["# Data card: measured transfer (real training runs)", ""]
    L += [f"**What it is.** The raw losses of {summary['runs_finished']} real training runs "
          f"({'a PARTIAL sweep: ' if partial else ''}{summary['runs_finished']} of {summary['runs_planned']} planned) of "
          "tiny character-level transformers, made on a CPU machine by the package's own harness "
          f"(`bayes-scaling experiment run`, configuration `{cfg.get('name')}`), a small-scale replication of "
          "Hernandez et al. (2021), \"Scaling Laws for Transfer\". Nothing here is simulated.", ""]
    L += [f"- `{name}_scratch.csv`: {len(scratch)} from-scratch runs, `N, D, loss, unit` (+ "
          f"`{', '.join(c for c in scratch.columns if c not in ('N', 'D', 'loss', 'unit'))}`).",
          f"- `{name}_finetune.csv`: {len(finetune)} fine-tuned runs, `pretraining, N, D_F, loss, unit, loss_step0` "
          f"(+ the same extras).",
          f"- `{name}.json`: this card as data (configuration, corpora, machine, compute, problems, seed noise).",
          f"- Seeds: {', '.join(map(str, seeds))} (every configuration once per seed: initialisation and data "
          "order); the runs of one configuration with different `seed` values are replicates, and the package's "
          "models read them so (`bs.analysis.seeds`).",
          f"- Model sizes N: {', '.join(_fmt_n(n) for n in Ns)} non-embedding parameters.", ""]
    inc = summary.get("included")
    if inc:
        L += [f"The runs of configuration `{inc['config'].get('name')}` ({inc['runs_finished']} runs, seeds "
              f"{', '.join(map(str, inc['config'].get('seeds', [inc['config'].get('seed', 0)])))}, finished "
              f"{inc.get('first_finished_utc') or '?'} to {inc.get('last_finished_utc') or '?'}; the earlier bundled data "
              f"set, `{inc['source']}`) are included as they were; their `finished_utc` and `device` are empty "
              "where that data set did not record them.", ""]
    L += ["Units: `N` = non-embedding parameters; `D`, `D_F` = characters of Python; `loss` = held-out test "
          "cross-entropy in nats per character of the parameters kept by early stopping on held-out validation "
          "files. `wall_s` = the run's wall time, `finished_utc` = when it finished, `device` = the JAX device, "
          "`machine` = CPU and cores.", ""]
    L += _design_lines(cfg, summary.get("corpora", {}))
    L += ["## Runs per seed", "", "| seed | from scratch | fine-tuned |", "|---|---|---|"]
    for sd in seeds:
        L.append(f"| {sd} | {int((scratch['seed'] == sd).sum())} | {int((finetune['seed'] == sd).sum())} |")
    L += ["", "## How long, on what", ""]
    by = summary.get("by_kind", {})
    L += [f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('platform', '')}, Python {m.get('python', '?')}, "
          f"JAX {m.get('jax', '?')} ({', '.join(m.get('jax_devices', []))}). This sweep's runs finished between "
          f"{summary.get('first_finished_utc')} and {summary.get('last_finished_utc')}. Wall time of the runs: "
          f"{summary['total_wall_s'] / 60:.1f} min in all ({'this sweep: ' if inc else ''}"
          + ", ".join(f"{k} {v['wall_s'] / 60:.1f} min / {v['runs']} runs" for k, v in by.items())
          + f"); {summary['total_chars_seen']:.3g} characters processed, about {summary['total_flops']:.2g} FLOPs "
          "(6 x parameters x characters).", ""]
    if inc:
        im = inc.get("machine") or {}
        L += [f"Of these, the included runs (`{inc['config'].get('name')}`): {(inc.get('total_wall_s') or 0) / 60:.1f} min "
              f"of wall time on {im.get('cpu', '?')}, {im.get('cores', '?')} cores, finished "
              f"{inc.get('first_finished_utc')} to {inc.get('last_finished_utc')}; the rest by this sweep, as above.",
              ""]
    pr = summary.get("problems", {})
    L += ["## Seed noise (measured)", "",
          "Pooled within-configuration standard deviation of log loss (about the relative spread of the loss) per "
          "size, 90% chi-square interval:", "",
          "| kind | N | configurations with >1 seed | df | sd of log loss | 90% interval | sd (nats) |",
          "|---|---|---|---|---|---|---|"]
    for r in summary.get("seed_noise", []):
        if r["df"]:
            L.append(f"| {r['kind']} | {_fmt_n(r['N'])} | {r['replicated']} | {r['df']} | {r['sd_log_loss']:.4f} | "
                     f"[{r['lb']:.4f}, {r['ub']:.4f}] | {r['sd_nats']:.4f} |")
    L += ["", "## What went wrong / limits", ""]
    if partial:
        L.append(f"- **Partial sweep**: {summary['runs_finished']} of {summary['runs_planned']} runs finished; "
                 "missing: " + (", ".join(f"{k} {v}" for k, v in pr["missing"].items())
                                if isinstance(pr.get("missing"), dict) else str(pr.get("missing")))
                 + f" (sizes with missing runs: {', '.join(_fmt_n(n) for n in pr.get('missing_sizes', [])) or 'none'}).")
    ov = pr.get("overlap", {})
    sp = pr.get("speed_p90_over_p10", {})
    if ov:
        L.append(f"- **Wall times are not benchmark times**: {ov.get('runs_overlapping_another')} runs overlapped "
                 f"another (at most {ov.get('most_at_once')} at once, by finishing time minus wall time); the same kind of run of "
                 "the same size took from 1x to " + (f"{max(sp.values()):.1f}x" if sp else "?")
                 + " the time per step (90th over 10th percentile; compilation included), the cores being shared.")
    bud = pr.get("budget", {})
    if bud:
        L.append(f"- **Compute-limited high end**: this sweep's runs that hit the {cfg['train']['max_steps']}-step "
                 "budget without early stopping: " + ", ".join(f"{k} {v}" for k, v in bud.items()) + ".")
    if pr.get("finetune_best_at_step_0"):
        L.append(f"- This sweep's fine-tuned runs best before any fine-tuning: {pr['finetune_best_at_step_0']} "
                 "(`best_step = 0`: fine-tuning never improved the validation loss).")
    oss = pr.get("ossified")
    if oss:
        L.append(f"- **Ossification**: {oss['runs']} of {oss['of']} fine-tuned runs ended worse than a from-scratch "
                 "model of the same size trained on D_F alone (D_T <= 0 on the seed-averaged curve): "
                 + (", ".join(f"{k} ({v})" for k, v in oss["by_N_D_F"].items()) or "none") + ".")
    rep = summary.get("reproduction")
    if rep and rep["shared_runs"]:
        L.append(f"- Reproduction: of the {rep['shared_runs']} runs also in the earlier data set ({rep['reference']}), "
                 f"{rep['identical']} have identical losses (largest difference {rep['max_abs_diff']:.3g} nats).")
    L += [f"- {n}" for n in summary.get("notes", [])]
    if summary.get("findings"):
        L += ["", "## What the analysis finds", ""] + [f"- {x}" for x in summary["findings"]]
    return "\n".join(L) + "\n"


_MAIN_DOC = """Bundle a (finished or partial) sweep as the package's measured data set and regenerate its card.

    python -m bayes_scaling.experiments.card SWEEP_DIR DEST [--name measured_transfer] [--note TEXT ...]
                                             [--include EARLIER_DIR] [--reference EARLIER_DIR]

writes DEST/NAME_scratch.csv, NAME_finetune.csv, NAME.json and NAME.md (see bundle_sweep). Try it on a
temporary DEST first; DEST = bayes_scaling/data/datasets replaces the bundled data set.
"""


def _main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=_MAIN_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep")
    p.add_argument("dest")
    p.add_argument("--name", default="measured_transfer")
    p.add_argument("--note", action="append", default=[], help="a line for 'What went wrong' (repeatable)")
    p.add_argument("--finding", action="append", default=[], help="a line for 'What the analysis finds'")
    p.add_argument("--reference", default=None, help="folder of an earlier bundled data set the runs reproduce")
    p.add_argument("--include", default=None, help="folder of an earlier bundled data set whose runs (other "
                   "seeds) join the sweep's, e.g. bayes_scaling/data/datasets for seed 0 = full.toml")
    args = p.parse_args(argv)
    doc = bundle_sweep(args.sweep, args.dest, args.name, notes=args.note, findings=args.finding,
                       reference=args.reference, include=args.include)
    print(f"{doc['runs_finished']} of {doc['runs_planned']} runs bundled into {args.dest} "
          f"({'complete' if doc['complete'] else 'PARTIAL'}); card {Path(args.dest) / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
