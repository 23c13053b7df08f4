"""The measured-transfer harness (bayes_scaling.experiments): smoke sweep, resume, early stopping, tables."""

from __future__ import annotations

import importlib.util
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.analysis.effective import read_finetune
from bayes_scaling.cli import main
from bayes_scaling.data import datasets
from bayes_scaling.errors import ConfigError, DataError
from bayes_scaling.experiments import (
    SMOKE_CONFIG,
    EarlyStopping,
    load_config,
    load_corpus,
    plan_runs,
    run_sweep,
)
from bayes_scaling.experiments.corpora import corpus_files, encode
from bayes_scaling.models.losslaws import read_scratch

HAVE_JAX = importlib.util.find_spec("jax") is not None
requires_jax = pytest.mark.skipif(not HAVE_JAX, reason="the experiment harness needs JAX "
                                  "(optional extra 'experiments': pip install 'bayes_scaling[experiments]')")
ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "models" / "experiments"


def n_non_embedding(d: int, L: int) -> int:
    """Pre-LN block: LN (2d) + qkv (3d^2 + 3d) + proj (d^2 + d) + LN (2d) + MLP (8d^2 + 5d); final LN (2d)."""
    return L * (12 * d * d + 13 * d) + 2 * d


def _need_corpus(name: str) -> None:
    """Skip (with the harness's own message) where this Python lacks a corpus (e.g. no C headers installed)."""
    try:
        corpus_files(name)
    except DataError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if not HAVE_JAX:
        pytest.skip("the experiment harness needs JAX (optional extra 'experiments')")
    for name in ("python", "prose", "c"):
        _need_corpus(name)
    out = tmp_path_factory.mktemp("smoke")
    assert main(["experiment", "run", "--smoke", "--out", str(out)]) == 0
    return out


def test_smoke_runs_csv(smoke):
    runs = pd.read_csv(smoke / "runs.csv")
    cfg = SMOKE_CONFIG
    assert len(runs) == len(plan_runs(cfg)) == 18
    assert runs["run_id"].is_unique
    assert set(runs["kind"]) == {"scratch", "pretrain", "finetune"}
    # losses in nats per character: finite, below the uniform-guess loss log(128) + a margin
    assert np.isfinite(runs["loss"]).all() and (runs["loss"] > 0).all() and (runs["loss"] < math.log(128) + 1).all()
    assert (runs["wall_s"] > 0).all() and (runs["best_step"] <= runs["steps"]).all()
    for name in ("corpora.json", "machine.json", "config.json", "scratch.csv", "finetune.csv"):
        assert (smoke / name).exists(), name
    assert len(list((smoke / "checkpoints").glob("*.npz"))) == 4  # 2 sizes x 2 mixes


def test_smoke_early_stopping_rule(smoke):
    """A run stops exactly `patience` evaluations after its best one, or runs to max_steps."""
    runs = pd.read_csv(smoke / "runs.csv")
    early = runs[runs["kind"] != "pretrain"]
    stopped = early[early["stopped_early"]]
    assert len(stopped) >= 3  # the smoke sizes overfit their tiny data sets
    gap = stopped["steps"] - stopped["best_step"]
    assert (gap == stopped["patience"] * stopped["eval_every"]).all()
    rest = early[~early["stopped_early"]]
    assert (rest["steps"] == rest["max_steps"]).all()
    # the reported loss is the test loss of the kept (best-validation) parameters; fine-tuning starts from an
    # evaluated step 0, so best_step == 0 is allowed there and the loss is then that of the pre-trained model
    ft = runs[runs["kind"] == "finetune"]
    assert np.isfinite(ft["loss_step0"]).all()
    assert (ft.loc[ft["best_step"] == 0, "val_loss"] == ft.loc[ft["best_step"] == 0, "loss_step0"]).all()


def test_smoke_resume_trains_nothing(smoke, capsys):
    before = (smoke / "runs.csv").read_bytes()
    assert main(["experiment", "run", "--smoke", "--out", str(smoke)]) == 0
    assert "0 trained, 18 already done" in capsys.readouterr().out
    assert (smoke / "runs.csv").read_bytes() == before


def test_resume_after_interruption(smoke, tmp_path):
    """Drop the last rows (an interrupted sweep): only those runs are trained again, with the same losses."""
    runs = pd.read_csv(smoke / "runs.csv")
    part = tmp_path / "part"
    part.mkdir()
    for name in ("config.json",):
        (part / name).write_bytes((smoke / name).read_bytes())
    (part / "checkpoints").mkdir()
    for f in (smoke / "checkpoints").glob("*.npz"):
        (part / "checkpoints" / f.name).write_bytes(f.read_bytes())
    runs.iloc[:-2].to_csv(part / "runs.csv", index=False)
    res = run_sweep(load_config(), part, log=lambda m: None)
    assert res == {"planned": 18, "trained": 2, "skipped": 16}
    again = pd.read_csv(part / "runs.csv")
    # the two retrained runs may finish in either order (two local workers): compare by run id
    assert again["run_id"].tolist()[:-2] == runs["run_id"].tolist()[:-2]
    assert sorted(again["run_id"]) == sorted(runs["run_id"])
    tail = runs["run_id"].tail(2).tolist()
    np.testing.assert_allclose(again.set_index("run_id").loc[tail, "loss"],
                               runs.set_index("run_id").loc[tail, "loss"], rtol=1e-5)  # seeded


def test_smoke_tables_load(smoke):
    sc = read_scratch(smoke / "scratch.csv")
    ft = read_finetune(smoke / "finetune.csv")
    assert set(sc["unit"]) == {"characters"} and set(ft["unit"]) == {"characters"}
    assert sorted(ft["pretraining"].unique()) == ["text", "text+code"]
    assert set(ft["N"]) == set(sc["N"]) == {n_non_embedding(8, 1), n_non_embedding(16, 1)}
    assert sorted(sc["D"].unique().tolist()) == SMOKE_CONFIG["scratch"]["D"]


def test_cli_errors(tmp_path, capsys):
    assert main(["experiment", "run", "--smoke", "--config", str(CONFIGS / "full.toml"), "--out", str(tmp_path)]) == 2
    assert main(["experiment", "run", "--out", str(tmp_path)]) == 2
    assert "--config" in capsys.readouterr().err


def test_different_config_refuses_to_resume(smoke):
    cfg = load_config()
    cfg["train"]["lr"] = 0.5
    with pytest.raises(ConfigError, match="different configuration"):
        run_sweep(cfg, smoke, log=lambda m: None)


def test_config_validation(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((CONFIGS / "smoke.toml").read_text().replace("patience = 2", "patience = 2\npatiance = 3"))
    with pytest.raises(ConfigError, match=r"\[train\] unknown keys patiance"):
        load_config(bad)
    bad.write_text((CONFIGS / "smoke.toml").read_text().replace("D = [200, 2000, 20000]", "D = [20, 2000]"))
    with pytest.raises(ConfigError, match=r"\[scratch\] D \[20\]: each must exceed context"):
        load_config(bad)


def test_smoke_toml_is_the_builtin():
    assert tomllib.loads((CONFIGS / "smoke.toml").read_text()) == SMOKE_CONFIG


def test_full_config_design():
    """The full sweep meets the issue's design: >= 5 sizes over >= 2 orders of N, >= 5 D_F over >= 2.5 orders."""
    cfg = load_config(CONFIGS / "full.toml")
    Ns = sorted(n_non_embedding(d, L) for d, L in cfg["model"]["sizes"])
    assert len(Ns) >= 5 and math.log10(Ns[-1] / Ns[0]) >= 2
    D_F = cfg["finetune"]["D_F"]
    assert len(D_F) >= 5 and math.log10(max(D_F) / min(D_F)) >= 2.5
    assert set(cfg["pretrain"]["mixes"]) == {"text", "text+code"}
    assert len(plan_runs(cfg)) == 108


@requires_jax
@pytest.mark.parametrize(("d", "L"), [(8, 1), (16, 1), (32, 2), (96, 2)])
def test_non_embedding_count_is_exact(d, L):
    from bayes_scaling.experiments.model import ModelSpec, count_non_embedding, init_params

    spec = ModelSpec(d, L)
    assert count_non_embedding(init_params(spec, 0)) == spec.n_non_embedding == n_non_embedding(d, L)


def test_early_stopping():
    es = EarlyStopping(patience=3)
    seq = [5.0, 4.0, 3.0, 3.5, 2.9, 3.0, 3.1, 3.2, 1.0]
    stops = []
    for i, v in enumerate(seq):
        es.update(i, v)
        stops.append(es.stop)
        if es.stop:
            break
    assert len(stops) == 8 and stops[-1] and es.best_step == 4 and es.best == 2.9  # the sweep breaks here
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)


def test_corpus_split_by_file():
    _need_corpus("c")
    a = load_corpus("c", seed=0)
    b = load_corpus("c", seed=0)
    assert a.sha256 == b.sha256 and a.files == b.files
    sets = [set(v) for v in a.files.values()]
    assert sum(len(s) for s in sets) == len(set().union(*sets)) == a.card()["n_files"]  # disjoint by file
    assert a.files != load_corpus("c", seed=1).files
    assert all(v.max() < 128 for v in a.splits.values())


def test_encode_is_ascii():
    codes, replaced = encode("a\u00e9b")
    assert bytes(codes) == b"a?b" and replaced == 1


# ---- the bundled measured data set (no JAX needed) ---------------------------------------------------------


def test_bundled_measured_tables_load():
    sc = read_scratch(datasets.load_measured_scratch())
    ft = read_finetune(datasets.load_measured_finetune())
    meta = datasets.measured_metadata()
    cfg = load_config(CONFIGS / f"{meta['config']['name']}.toml")  # full.toml (v1) or seeds.toml (issue 14)
    expected = json.loads(json.dumps(cfg))
    if "seeds" not in meta["config"]:  # v1 was made before configurations had seeds (its one seed: 0)
        assert expected.pop("seeds") == [0]
    assert meta["config"] == expected  # the configuration that made the data
    assert set(sc["unit"]) == set(ft["unit"]) == {"characters"}
    sizes = {n_non_embedding(d, L) for d, L in cfg["model"]["sizes"]}
    assert set(sc["N"]) <= sizes and set(ft["N"]) <= set(sc["N"])
    assert set(ft["pretraining"]) == {"text", "text+code"}
    assert set(sc["D"]) <= set(cfg["scratch"]["D"]) and set(ft["D_F"]) <= set(cfg["finetune"]["D_F"])
    assert meta["runs_finished"] == len(sc) + len(ft) + len(meta["pretraining_runs"])
    for name in ("python", "prose", "c"):
        card = meta["corpora"][name]
        assert len(card["sha256_of_sorted_concatenation"]) == 64 and card["n_chars"] > 0 and "PSF" in card["licence"]
    assert meta["machine"]["cores"] >= 1 and meta["total_wall_s"] > 0
    # every early-stopped run stopped 100 steps after its best one (4 x 25 steps; fine-tuning 20 x 5)
    for t in (sc, ft):
        st = t[t["stopped_early"]]
        assert ((st["steps"] - st["best_step"]) == 4 * 25).all()


def test_finetune_may_set_its_own_early_stopping(tmp_path):
    from bayes_scaling.experiments.sweep import _early_stopping

    cfg_file = tmp_path / "ft.toml"
    cfg_file.write_text((CONFIGS / "smoke.toml").read_text() + "eval_every = 1\npatience = 7\n")
    cfg = load_config(cfg_file)
    assert _early_stopping(cfg, "finetune") == (1, 7)
    assert _early_stopping(cfg, "scratch") == (5, 2) == _early_stopping(load_config(), "finetune")
    cfg_file.write_text((CONFIGS / "smoke.toml").read_text() + "warmup = 3\n")
    with pytest.raises(ConfigError, match=r"\[finetune\] unknown keys warmup"):
        load_config(cfg_file)


def test_seeds_config_and_plan(tmp_path):
    """``seeds``: every run once per seed; seed 0 keeps the one-seed run ids; bad lists are refused."""
    cfg = load_config(CONFIGS / "seeds.toml")
    one = load_config(CONFIGS / "full.toml")
    assert one["seeds"] == [0] and cfg["seeds"] == [1, 2]
    assert cfg["model"] == one["model"] and all(cfg[k] == one[k] for k in ("train", "scratch", "pretrain", "finetune"))
    plan, plan1 = plan_runs(cfg), plan_runs(one)
    assert len({r.run_id for r in plan}) == len(plan) == 2 * len(plan1) == 216
    for k in (1, 2):  # seed 0 = the v1 sweep's ids; seed k appends /seed=k
        assert {r.run_id for r in plan if r.seed == k} == {r.run_id + f"/seed={k}" for r in plan1}
    for bad in ("[]", "[0, 0]", "[-1]", '["a"]', "1"):
        f = tmp_path / "bad.toml"
        f.write_text(f"seeds = {bad}\n" + (CONFIGS / "smoke.toml").read_text())
        with pytest.raises(ConfigError, match="seeds"):
            load_config(f)


@requires_jax
def test_seeds_train_differently_and_seed0_reproduces(tmp_path):
    """Seed 0 gives the bit-identical losses of a one-seed sweep; seed 1 another initialisation and data order."""
    _need_corpus("python")
    _need_corpus("prose")
    cfg = load_config()
    cfg.update(seeds=[0, 1])
    cfg["model"]["sizes"] = [[8, 1]]
    cfg["scratch"]["D"] = [2000]
    cfg["pretrain"]["mixes"] = ["text"]
    cfg["finetune"]["D_F"] = [2000]
    run_sweep(cfg, tmp_path / "two", log=lambda m: None)
    two = pd.read_csv(tmp_path / "two" / "runs.csv").set_index("run_id")
    assert two.loc["scratch/d8L1/D=2000/seed=1", "seed"] == 1
    assert two.loc["scratch/d8L1/D=2000", "loss"] != two.loc["scratch/d8L1/D=2000/seed=1", "loss"]
    assert (tmp_path / "two" / "checkpoints" / "d8L1_text_seed1.npz").exists()
    one = dict(cfg, seeds=[0])
    run_sweep(one, tmp_path / "one", log=lambda m: None)
    first = pd.read_csv(tmp_path / "one" / "runs.csv").set_index("run_id")
    for rid in first.index:  # one process, same thread count: the same float32 arithmetic
        assert first.loc[rid, "loss"] == two.loc[rid, "loss"], rid


def test_bundle_sweep_of_a_partial_multi_seed_sweep(smoke, tmp_path):
    """A partial sweep of seed 1 (made from the smoke runs, the last 5 runs missing) bundled with an earlier
    one-seed data set (the smoke sweep's seed-0 tables and card, ``include=``): tables with seed, time and machine
    per run, a JSON card whose counts add up with the measured problems and seed noise, a Markdown card that
    says it is partial; the seed-0 runs reproduce (``reproduction``)."""
    from bayes_scaling.experiments.card import bundle_sweep, reproduction, summarize_sweep

    sweep, ref = tmp_path / "sweep", tmp_path / "ref"   # ref: the earlier one-seed bundle (seed 0)
    sweep.mkdir()
    ref.mkdir()
    for name in ("corpora.json", "machine.json"):
        (sweep / name).write_bytes((smoke / name).read_bytes())
    cfg = json.loads((smoke / "config.json").read_text())
    cfg["seeds"] = [1]
    (sweep / "config.json").write_text(json.dumps(cfg))
    runs = pd.read_csv(smoke / "runs.csv")
    rng = np.random.default_rng(0)
    other = runs.assign(seed=1, run_id=runs["run_id"] + "/seed=1", loss=runs["loss"] * np.exp(rng.normal(0, 0.01, len(runs))))
    other.iloc[:-5].to_csv(sweep / "runs.csv", index=False)
    (ref / "m_scratch.csv").write_bytes((smoke / "scratch.csv").read_bytes())
    (ref / "m_finetune.csv").write_bytes((smoke / "finetune.csv").read_bytes())
    (ref / "m.json").write_text(json.dumps(summarize_sweep(smoke), default=float))
    dest = tmp_path / "bundle"
    doc = bundle_sweep(sweep, dest, name="m", notes=["the machine was shared with other work"], include=ref)
    sc, ft = pd.read_csv(dest / "m_scratch.csv"), pd.read_csv(dest / "m_finetune.csv")
    for t in (sc, ft):
        assert {"seed", "wall_s", "finished_utc", "device", "machine", "run_id"} <= set(t.columns)
        assert set(t["seed"]) == {0, 1} and t["machine"].str.contains("cores").all()
    assert len(sc) + len(ft) + len(doc["pretraining_runs"]) == doc["runs_finished"] == 18 + 13
    assert doc["runs_planned"] == 36 and not doc["complete"] and sum(doc["problems"]["missing"].values()) == 5
    assert doc["included"]["runs_finished"] == 18 and doc["seeds_finished"] == {0: len(sc[sc.seed == 0]) + len(
        ft[ft.seed == 0]), 1: len(sc[sc.seed == 1]) + len(ft[ft.seed == 1])}
    assert read_scratch(dest / "m_scratch.csv") is not None      # seeds are replicates, not duplicates
    noise = pd.DataFrame(doc["seed_noise"])
    assert (noise.loc[noise["kind"] == "scratch", "df"] > 0).all()
    card = (dest / "m.md").read_text()
    assert "PARTIAL" in card and "## Seed noise (measured)" in card and "the machine was shared" in card
    assert "## What was trained" in card and "## On what" in card and "are included as they were" in card
    assert json.loads((dest / "m.json").read_text())["notes"] == ["the machine was shared with other work"]
    sc0, ft0 = pd.read_csv(smoke / "scratch.csv"), pd.read_csv(smoke / "finetune.csv")
    rep = reproduction(sc0, ft0, ref, "m")
    assert rep["shared_runs"] == rep["identical"] == len(sc0) + len(ft0) and rep["max_abs_diff"] == 0
