"""Several laws, one prediction: stacking weights, leave-future-out splits, bad inputs, recovery of the true law
on simulated runs, the held-out log score of the stack, reproducibility, the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import K

from bayes_scaling.analysis.stacking import lfo_splits, pseudo_bma_weights, stack, stacking_weights
from bayes_scaling.errors import ConfigError, DataError

# ---- the optimiser --------------------------------------------------------------------------------------------


def _objective(lpd: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum_i log sum_k w_k exp(lpd_ik) for each row of ``w`` (weights x laws)."""
    m = lpd.max(axis=1, keepdims=True)
    return np.log(np.exp(lpd - m) @ np.atleast_2d(w).T).sum(axis=0) + m.sum()


def _simplex_grid(step: float) -> np.ndarray:
    n = round(1 / step)
    pts = [(i, j, n - i - j) for i, j in product(range(n + 1), repeat=2) if i + j <= n]
    return np.array(pts, dtype=float) / n


@pytest.mark.parametrize("case", ["interior", "boundary", "many points"])
def test_stacking_weights_match_brute_force(case):
    """Three laws: the optimiser's weights against the best point of a grid on the simplex (step 0.002; 0.004 for 200 points)."""
    rng = np.random.default_rng({"interior": 1, "boundary": 2, "many points": 3}[case])
    n = 200 if case == "many points" else 12
    # each law fits some points well and others badly: an interior optimum
    lpd = rng.normal(0, 1.5, (n, 3))
    if case == "boundary":
        lpd[:, 2] = lpd[:, 0] - 1.0 - rng.uniform(0, 0.5, n)     # dominated by law 0 everywhere: weight 0
    w = stacking_weights(lpd)
    grid = _simplex_grid(0.004 if case == "many points" else 0.002)
    vals = _objective(lpd, grid)
    best = grid[np.argmax(vals)]
    assert w.shape == (3,) and np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    assert _objective(lpd, w)[0] >= vals.max() - 1e-9          # at least as good as every grid point
    assert np.max(np.abs(w - best)) < 0.01
    if case == "boundary":
        assert w[2] < 1e-3


def test_stacking_weights_edge_cases():
    assert stacking_weights(np.zeros((4, 1))).tolist() == [1.0]
    # identical laws: any weights are optimal; the optimiser stays at equal weights
    assert np.allclose(stacking_weights(np.zeros((5, 3))), 1 / 3)
    # a law with zero density at a point where the other has some: still finite weights
    w = stacking_weights(np.array([[-np.inf, -1.0], [-0.5, -2.0], [-0.3, -2.5]]))
    assert 0 < w[1] < 1
    with pytest.raises(ValueError, match="zero density under every law"):
        stacking_weights(np.array([[-np.inf, -np.inf], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="NaN"):
        stacking_weights(np.array([[np.nan, 0.0]]))


def test_pseudo_bma_weights():
    lpd = np.log(np.array([[0.5, 0.25], [0.4, 0.4]]))
    # without the bootstrap: exp(elpd) normalised
    e = lpd.sum(axis=0)
    assert np.allclose(pseudo_bma_weights(lpd, bootstrap=False), np.exp(e) / np.exp(e).sum())
    a = pseudo_bma_weights(lpd, seed=3)
    assert np.array_equal(a, pseudo_bma_weights(lpd, seed=3)) and not np.array_equal(a, pseudo_bma_weights(lpd, seed=4))
    assert abs(a.sum() - 1) < 1e-12
    # the bootstrap pulls the weights toward equal when the evidence is uncertain (Yao et al. 2018, sec. 3.3)
    assert 0.5 < a[0] < pseudo_bma_weights(lpd, bootstrap=False)[0]
    assert np.allclose(pseudo_bma_weights(np.zeros((6, 4)), seed=0), 0.25)


# ---- leave-future-out splits ---------------------------------------------------------------------------------
def test_lfo_splits_budgets_and_explicit_cuts():
    budgets = np.repeat([1e17, 2e17, 4e17, 8e17, 1.6e18, 3.2e18, 6.4e18, 1.28e19], 10)
    t = pd.DataFrame({"C": budgets, "loss": 1.0})
    sp = lfo_splits(t, "C", 3, scored=0.3)            # blocks of >= 8 runs: the three largest budgets
    assert [c for c, _, _ in sp] == [3.2e18, 6.4e18, 1.28e19]
    for c, train, test in sp:
        assert np.all(budgets[train] < c) and len(train) == np.sum(budgets < c)
        assert set(budgets[test]) == {c}
    with pytest.raises(DataError, match="need 9 distinct values"):
        lfo_splits(t, "C", 8)
    # explicit cuts: train below each, score up to the next
    sp = lfo_splits(t, "C", [4e17, 3.2e18])
    assert [len(tr) for _, tr, _ in sp] == [20, 50] and [len(te) for _, _, te in sp] == [30, 30]
    with pytest.raises(DataError, match="scores no run"):
        lfo_splits(t, "C", [1e20])
    with pytest.raises(DataError, match="leaves no run to fit"):
        lfo_splits(t, "C", [1e16, 1e18])
    with pytest.raises(ConfigError, match="no column 'N'"):
        lfo_splits(t, "N", 3)
    with pytest.raises(DataError, match="one value"):
        lfo_splits(t.assign(C=1.0), "C", 2)
    # continuous values: blocks of about equal size
    x = np.random.default_rng(0).uniform(0, 1, 100)
    sp = lfo_splits(pd.DataFrame({"C": x}), "C", 3, scored=0.3)
    assert [len(te) for _, _, te in sp] == [10, 10, 10]


# ---- bad inputs ---------------------------------------------------------------------------------------------
def _grid(n=30):
    rng = np.random.default_rng(0)
    N = np.geomspace(1e7, 1e9, n)
    D = 20 * N
    return pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": (1.7 + 400 / N**0.34 + 410 / D**0.28)
                         * np.exp(rng.normal(0, 0.01, n))})


@pytest.mark.parametrize("models, kw, error, match", [
    (["chinchilla"], {}, ConfigError, "at least two laws"),
    ("chinchilla", {}, ConfigError, "a list of at least two laws"),
    (["chinchilla", "no_such_law"], {}, ConfigError, "no built-in law 'no_such_law'"),
    (["chinchilla", "chinchilla"], {}, ConfigError, "more than once"),
    (["chinchilla", "m4"], {}, ConfigError, r"different targets \(chinchilla -> loss, m4 -> L\)"),
    (["chinchilla", "data_constrained"], {}, DataError, "law 'data_constrained' needs column.*U_D"),
    (["chinchilla", "kaplan"], {"order_by": "budget"}, ConfigError, "no column 'budget'"),
    (["chinchilla", "kaplan"], {"cuts": [1e30]}, DataError, "scores no run"),
    (["chinchilla", "kaplan"], {"cuts": 3, "scored": 0.95}, DataError, r"leaves \d run\(s\) to fit law 'chinchilla'"),
    (["chinchilla", "kaplan"], {"method": "bma"}, ConfigError, "method must be one of"),
])
def test_stack_bad_inputs(models, kw, error, match):
    with pytest.raises(error, match=match):
        stack(_grid(), models, **kw)


def test_stack_bad_target():
    with pytest.raises(DataError, match=r"'loss' must be a finite number > 0.*rows 3"):
        stack(_grid().assign(loss=lambda d: np.where(d.index == 3, -1.0, d["loss"])), ["chinchilla", "kaplan"])


# ---- simulated runs: the true law wins, the stack scores at least as well as each law -------------------------
FLOOR = {"law": {"name": "floor", "formula": "E + A / N**alpha", "target": "loss"},
         "likelihood": {"family": "normal", "scale": "log"}, "parameters": {"E": {}, "A": {}, "alpha": {}}}
POWER = {"law": {"name": "power", "formula": "A / N**alpha", "target": "loss"},
         "likelihood": {"family": "normal", "scale": "log"}, "parameters": {"A": {}, "alpha": {}}}
FIT = dict(draws=300, tune=300, chains=2, rhat_limit=1.05)   # R-hat of 2 x 300 draws: noisy at 1.01


def _floor_runs(N, seed):
    """Runs of the law with a floor, ``1.8 + 60 / N**0.3`` (log-normal noise, sd 0.01)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"N": N, "loss": (1.8 + 60 / N**0.3) * np.exp(rng.normal(0, 0.01, len(N)))})


@pytest.fixture(scope="module")
def simulated():
    train = _floor_runs(np.geomspace(1e6, 1e9, 30), 1)
    held_out = _floor_runs(np.geomspace(2e9, 1e11, 12), 2)
    st = stack(train, [FLOOR, POWER], order_by="N", cuts=3, scored=0.3, seed=5, **FIT)
    return train, held_out, st


def test_stack_weighs_the_true_law(simulated):
    """Runs from the law with a floor: the power law without one extrapolates too low; its weight < 0.2."""
    _, _, st = simulated
    assert list(st.weights.index) == ["floor", "power"] and abs(st.weights.sum() - 1) < 1e-12
    assert st.weights["floor"] > 0.8, st.table
    t = st.table.set_index("law")
    assert t.loc["floor", "lpd_mean"] > t.loc["power", "lpd_mean"]
    assert t.loc["floor", "n_scored"] == 9 and len(st.points) == 9
    assert (st.diagnostics["rhat_max"] < 1.05).all(), st.diagnostics          # every fit converged
    assert len(st.diagnostics) == 2 * (3 + 1)


def test_stack_beats_the_wrong_law_on_runs_beyond_the_data(simulated):
    """Runs beyond the data (2e9 to 1e11) of the law with a floor: the stack's median error and CRPS are below
    the power law's (the true law is in the stack, so its weight < 1 costs the stack a little against it)."""
    _, held_out, st = simulated
    means = st.score(held_out).groupby("method")[["rel_error", "crps", "lpd"]].mean()
    assert means.loc["stack", "crps"] < means.loc["power", "crps"]
    assert means.loc["stack", "rel_error"] < means.loc["power", "rel_error"]
    assert means.loc["stack", "lpd"] > means.loc["power", "lpd"]


STEEP = {"law": {"name": "steep", "formula": "E + A / N**alpha", "target": "loss"},
         "likelihood": {"family": "normal", "scale": "log"},
         "parameters": {"E": {}, "A": {}, "alpha": {"fixed": 0.6}}}


def test_stacked_log_score_on_held_out_runs():
    """Neither law is true (the truth's exponent is 0.3: one law has no floor, the other its exponent fixed at
    0.6), the runs come in a random order of ``date`` (unrelated to N), and the later runs are held out, so
    that the scored and the held-out runs come from one distribution: the stack's mean held-out log score is
    >= each law's, within K Monte Carlo standard errors of the mean difference over the held-out runs; its CRPS
    is below each law's."""
    rng = np.random.default_rng(3)
    N = np.exp(rng.uniform(np.log(1e6), np.log(1e9), 60))
    runs = pd.DataFrame({"N": N, "date": rng.permutation(60),
                         "loss": (1.8 + 60 / N**0.3) * np.exp(rng.normal(0, 0.005, 60))})
    train, held_out = runs[runs["date"] < 40], runs[runs["date"] >= 40]
    st = stack(train, [STEEP, POWER], order_by="date", cuts=3, scored=0.3, seed=5, **FIT)
    assert 0.05 < st.weights["steep"] < 0.95          # both laws carry weight
    sc = st.score(held_out)
    lpd = sc.pivot(index="row", columns="method", values="lpd")
    crps = sc.pivot(index="row", columns="method", values="crps")
    for law in st.laws:
        diff = lpd["stack"] - lpd[law]
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        assert diff.mean() >= -K * se, (law, diff.mean(), se)
        assert crps["stack"].mean() < crps[law].mean(), law


def test_stack_predict_mixes_by_weight_and_is_reproducible(simulated):
    train, held_out, st = simulated
    ds = st.predict(held_out[["N"]], kind="observation", seed=3)
    share = pd.Series(ds["law"].values).value_counts(normalize=True)
    S = ds.sizes["draw"]
    for law, w in st.weights.items():
        assert abs(share.get(law, 0.0) - w) <= 1 / S + 1e-12
    again = st.predict(held_out[["N"]], kind="observation", seed=3)
    assert np.array_equal(ds["loss"].values, again["loss"].values)
    assert not np.array_equal(ds["loss"].values, st.predict(held_out[["N"]], seed=4)["loss"].values)
    table = st.predict(held_out[["N"]], ci_prob=0.9)
    assert {"median", "lo", "hi", "median_floor", "median_power"} <= set(table.columns)
    assert np.all(table["lo"] < table["median"]) and np.all(table["median"] < table["hi"])
    mean = st.predict(held_out[["N"]], kind="mean", ci_prob=0.9)
    assert np.all(mean["hi"] - mean["lo"] <= table["hi"] - table["lo"] + 1e-12) or \
        np.median(mean["hi"] - mean["lo"]) < np.median(table["hi"] - table["lo"])
    with pytest.raises(ValueError, match="kind must be"):
        st.predict(held_out, kind="posterior")


def test_stack_same_seed_same_result(simulated):
    """The whole stack again with the same seed: the same weights, scores and predictions."""
    train, held_out, st = simulated
    again = stack(train, [FLOOR, POWER], order_by="N", cuts=3, scored=0.3, seed=5, **FIT)
    assert np.array_equal(st.weights.to_numpy(), again.weights.to_numpy())
    assert np.array_equal(st.lpd, again.lpd)
    a = st.predict(held_out[["N"]], ci_prob=0.9)
    b = again.predict(held_out[["N"]], ci_prob=0.9)
    pd.testing.assert_frame_equal(a, b)


# ---- convergence: a law whose fits do not converge gets no weight ---------------------------------------------
def _failing(monkeypatch, failing: set[str]):
    """Make the fits of the laws in ``failing`` report R-hat 1.3 and 2 divergences (the others: converged), and
    record each fit's settings."""
    from bayes_scaling.analysis import stacking as stk

    calls = []
    real_fit = stk._fit

    def fit(table, spec, name, where, settings, seed, **extra):
        calls.append((name, dict(settings), extra))
        f = real_fit(table, spec, name, where, settings, seed, **extra)
        f._stack_test_law = name
        return f

    def diagnostics(f):
        bad = f._stack_test_law in failing
        return {"rhat_max": 1.3 if bad else 1.0, "ess_bulk_min": 50.0, "divergences": 2.0 if bad else 0.0}

    monkeypatch.setattr(stk, "_fit", fit)
    monkeypatch.setattr(stk, "_diagnostics", diagnostics)
    return calls


SMALL = dict(order_by="N", cuts=2, scored=0.3, seed=5, draws=60, tune=60, chains=2)


def test_stack_leaves_out_a_law_that_did_not_converge(monkeypatch):
    """A law whose fits do not converge: each fit is run again with safer settings (twice the draws, tuning of
    at least 1000, target_accept 0.99), then the law gets weight 0, a ConvergenceWarning names it and the
    table's ``excluded`` column says why; ``exclude_unconverged=False`` weighs it (still warned); if no law
    converged, all are weighed, with the warning."""
    from bayes_scaling.errors import ConvergenceWarning

    train = _floor_runs(np.geomspace(1e6, 1e9, 20), 1)
    calls = _failing(monkeypatch, {"power"})
    with pytest.warns(ConvergenceWarning, match=r"law 'power': not converged after a refit.*R-hat 1.300.*left out"):
        st = stack(train, [FLOOR, POWER], **SMALL)
    assert st.weights["power"] == 0.0 and st.weights["floor"] == 1.0
    t = st.table.set_index("law")
    assert "not converged" in t.loc["power", "excluded"] and t.loc["floor", "excluded"] == ""
    assert not t.loc["power", "converged"] and t.loc["floor", "converged"]
    assert t.loc["power", "stacking"] == 0.0 and t.loc["power", "pseudo_bma_plus"] == 0.0
    d = st.diagnostics
    assert d.loc[d["law"] == "power", "refit"].all() and not d.loc[d["law"] == "floor", "refit"].any()
    safer = [(s, e) for n, s, e in calls if n == "power" and e]
    assert len(safer) == 3 and all(s["draws"] == 120 and s["tune"] >= 1000 and e == {"target_accept": 0.99}
                                   for s, e in safer)
    assert st.predict(train[["N"]].head(3), ci_prob=0.9)["median"].notna().all()

    with pytest.warns(ConvergenceWarning, match="weighed anyway"):
        kept = stack(train, [FLOOR, POWER], exclude_unconverged=False, **SMALL)
    assert kept.excluded == {} and (kept.table["excluded"] == "").all()
    assert np.allclose(kept.weights.to_numpy(), stacking_weights(kept.lpd))

    _failing(monkeypatch, {"power", "floor"})
    with pytest.warns(ConvergenceWarning, match="no law converged"):
        both = stack(train, [FLOOR, POWER], **SMALL)
    assert abs(both.weights.sum() - 1) < 1e-12 and both.excluded == {}


def test_stack_rhat_limit_must_be_at_least_one():
    with pytest.raises(ConfigError, match="rhat_limit must be a number >= 1"):
        stack(_grid(), ["chinchilla", "kaplan"], rhat_limit=0.9)


# ---- the command line -----------------------------------------------------------------------------------------
def test_cli_stack(tmp_path, capsys):
    from bayes_scaling.cli import main

    train = _floor_runs(np.geomspace(1e6, 1e9, 30), 1)
    train.to_csv(tmp_path / "runs.csv", index=False)
    pd.DataFrame({"N": [3e9, 3e10]}).to_csv(tmp_path / "at.csv", index=False)
    for name, spec in (("floor", FLOOR), ("power", POWER)):
        from bayes_scaling.laws.spec import LawSpec

        (tmp_path / f"{name}.toml").write_text(LawSpec.from_dict(spec).to_toml())
    args = ["stack", str(tmp_path / "runs.csv"), "--model", str(tmp_path / "floor.toml"), "--model",
            str(tmp_path / "power.toml"), "--order-by", "N", "--at", str(tmp_path / "at.csv"), "--draws", "150",
            "--tune", "150", "--rhat-limit", "1.05", "--ci", "0.9", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    weights = {r["law"]: r["weight"] for r in doc["tables"]["weights"]}
    assert set(weights) == {"floor", "power", "stack"} and weights["floor"] > 0.8
    pred = doc["tables"]["predictions"]
    assert len(pred) == 2 and all(r["lo"] < r["median"] < r["hi"] for r in pred)
    assert main([*args[:-1], "--out", str(tmp_path / "pred.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 2
    out = capsys.readouterr().out
    assert "stacking weights" in out and "floor" in out


def test_cli_stack_reports_a_law_left_out(tmp_path, capsys, monkeypatch):
    """On the command line: the law whose fits do not converge is left out (its reason in the weights table,
    the warning on stderr); --keep-unconverged weighs it."""
    from bayes_scaling.cli import main

    _failing(monkeypatch, {"power"})
    _floor_runs(np.geomspace(1e6, 1e9, 20), 1).to_csv(tmp_path / "runs.csv", index=False)
    for name, spec in (("floor", FLOOR), ("power", POWER)):
        from bayes_scaling.laws.spec import LawSpec

        (tmp_path / f"{name}.toml").write_text(LawSpec.from_dict(spec).to_toml())
    args = ["stack", str(tmp_path / "runs.csv"), "--model", str(tmp_path / "floor.toml"), "--model",
            str(tmp_path / "power.toml"), "--order-by", "N", "--cuts", "2", "--draws", "60", "--tune", "60", "--json"]
    assert main(args) == 0
    cap = capsys.readouterr()
    rows = {r["law"]: r for r in json.loads(cap.out)["tables"]["weights"]}
    assert rows["power"]["weight"] == 0 and "not converged" in rows["power"]["excluded"]
    assert "law 'power'" in cap.err
    assert main([*args, "--keep-unconverged"]) == 0
    rows = {r["law"]: r for r in json.loads(capsys.readouterr().out)["tables"]["weights"]}
    assert rows["power"]["excluded"] == "" and not rows["power"]["converged"]


@pytest.mark.parametrize("extra, message", [
    (["--model", "chinchilla"], "at least two laws"),
    (["--model", "chinchilla", "--model", "nope"], "no built-in law 'nope'"),
    (["--model", "chinchilla", "--model", "m4"], "different targets"),
    (["--model", "chinchilla", "--model", "kaplan", "--order-by", "budget"], "no column 'budget'"),
    (["--model", "chinchilla", "--model", "kaplan", "--scored", "0.95"], "to fit law 'chinchilla'"),
    (["--model", "chinchilla", "--model", "kaplan", "--out", "x.csv"], "give --at"),
])
def test_cli_stack_errors_are_one_line(tmp_path, capsys, extra, message):
    from bayes_scaling.cli import main

    _grid().to_csv(tmp_path / "runs.csv", index=False)
    assert main(["stack", str(tmp_path / "runs.csv"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_stack_subprocess_error(tmp_path):
    exe = shutil.which("bayes-scaling") or str(Path(sys.executable).with_name("bayes-scaling"))
    _grid().to_csv(tmp_path / "runs.csv", index=False)
    res = subprocess.run([exe, "stack", str(tmp_path / "runs.csv"), "--model", "kaplan"], capture_output=True,
                         text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "at least two laws" in res.stderr


# ---- real data (slow; ../shared/data) ---------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "porian2024_isoflops").is_dir()
                    or not (SHARED_DATA / "chinchilla_epoch_svg_extracted.csv").is_file(),
                    reason="needs ../shared/data (Porian et al.'s IsoFLOP runs, Epoch AI's Chinchilla runs)")
def test_stack_on_real_data_decide_half():
    """The decide half of benchmarks/stack_real.py (8 of Porian et al.'s configurations and Epoch AI's Chinchilla
    runs, largest budgets held out; docs/validation.md): over its 102 held-out runs the configuration chosen
    there (pseudo-BMA+ weights, every law weighed, after the refits) has a median relative error at most the
    better of least squares and Huber's, a mean log score and CRPS better than least squares', 90% intervals
    covering at least 85%; the default (laws with a fit above R-hat 1.01 left out) a better log score than
    least squares'."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import stack_real

    pts = pd.concat([stack_real.run_split(sp, 500)[0] for sp in stack_real.splits(None, "decide", None)])
    s = stack_real.summarise(pts).set_index("method")
    chosen = "stack(pseudo-bma+, all laws)"
    assert s.loc[chosen, "n_test"] == 102
    assert s.loc[chosen, "median_rel_error"] <= min(s.loc["lsq", "median_rel_error"],
                                                    s.loc["huber", "median_rel_error"])
    assert s.loc[chosen, "lpd"] > s.loc["lsq", "lpd"] and s.loc[chosen, "crps"] < s.loc["lsq", "crps"]
    assert s.loc[chosen, "coverage90"] >= 0.85
    assert s.loc["stack", "lpd"] > s.loc["lsq", "lpd"]
