"""Choosing a model to fine-tune (issue 11): Lin et al. (2024)'s metrics on hand-computed cases, their baselines
reproduced exactly from their data, recovery of a known best model on simulated curves, and the Bayesian
selection beside their Table 1 (real data; skipped when ../shared/data is absent)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import SHARED_DATA, lin_law_spec

import bayes_scaling as bs
from bayes_scaling.analysis.selection import (
    BASELINES,
    LIN_FULL_D,
    LIN_RATIOS,
    baseline_selection,
    lin_parameters,
    pearson_correlation,
    power_phase,
    power_phase_spec,
    read_lin_table1,
    relative_accuracy,
    select_model,
    selection_spec,
)
from bayes_scaling.data.simulate import simulate_law
from bayes_scaling.errors import ConvergenceWarning, DataError

TABLE1 = SHARED_DATA / "lin2024_finetuning" / "published_selection_table1.tex"
needs_table1 = pytest.mark.skipif(not TABLE1.is_file(), reason=f"Lin et al.'s Table 1 not found at {TABLE1}")


# ---- the metrics, by hand ------------------------------------------------------------------------------------


def test_pearson_correlation_by_hand():
    # p = (1, 2, 3), a = (1, 2, 4): deviations (-1, 0, 1) and (-4/3, -1/3, 5/3); sum of products 3,
    # sums of squares 2 and 14/3: r = 3 / sqrt(28/3) = 0.98198
    assert pearson_correlation([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]) == pytest.approx(3 / np.sqrt(28 / 3), rel=1e-12)
    assert pearson_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # invariant to shifting and scaling either side
    assert pearson_correlation([10, 20, 30, 45], [1.5, 1.4, 1.45, 1.2]) == pytest.approx(
        pearson_correlation([1, 2, 3, 4.5], [15, 14, 14.5, 12]), rel=1e-12)
    with pytest.raises(DataError, match="all values are equal"):
        pearson_correlation([1, 1, 1], [1, 2, 3])
    with pytest.raises(DataError, match="non-finite values at 1"):
        pearson_correlation([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(DataError, match="one length"):
        pearson_correlation([1, 2], [1, 2, 3])


def test_relative_accuracy_by_hand():
    actual = {"a": 1.5, "b": 1.6, "c": 2.0}
    assert relative_accuracy(actual, "a") == 1.0          # the best model
    assert relative_accuracy(actual, "c") == 0.0          # the worst
    assert relative_accuracy(actual, "b") == pytest.approx((2.0 - 1.6) / (2.0 - 1.5))   # 0.8
    # higher is better: (selected - worst) / (best - worst)
    assert relative_accuracy(actual, "b", lower_is_better=False) == pytest.approx((1.6 - 1.5) / (2.0 - 1.5))
    with pytest.raises(DataError, match="'z' has no actual value"):
        relative_accuracy(actual, "z")
    with pytest.raises(DataError, match="same value"):
        relative_accuracy({"a": 1.0, "b": 1.0}, "a")


def _tiny_runs():
    # three models; at the full size 800: a 1.0, b 1.2, c 1.5. At D = 0 c is best, at 200 b, by size a.
    rows = {"a": (3.0, 2.0, 1.4, 1.0), "b": (2.8, 1.5, 1.3, 1.2), "c": (2.5, 1.8, 1.7, 1.5)}
    sizes = {"a": 3e9, "b": 1e8, "c": 4e8}
    return pd.DataFrame([(m, sizes[m], D, loss) for m, v in rows.items()
                         for D, loss in zip((0, 200, 400, 800), v, strict=True)], columns=["model", "size", "D", "loss"])


def test_baselines_on_a_hand_made_table():
    runs = _tiny_runs()
    zs = baseline_selection(runs, "zero_shot", max_D=400, target_D=800)
    assert zs["selected"] == "c" and zs["relative_accuracy"] == 0.0
    assert zs["pearson"] == pytest.approx(pearson_correlation([3.0, 2.8, 2.5], [1.0, 1.2, 1.5]))
    sub = baseline_selection(runs, "subtuning", max_D=200, target_D=800)
    assert sub["selected"] == "b" and sub["relative_accuracy"] == pytest.approx(0.3 / 0.5)
    size = baseline_selection(runs, "model_size", max_D=200, target_D=800)
    assert size["selected"] == "a" and size["relative_accuracy"] == 1.0
    assert size["feature"]["a"] == pytest.approx(np.log(3e9))
    with pytest.raises(DataError, match="no run at D = 300"):
        baseline_selection(runs, "subtuning", max_D=300, target_D=800)
    bad = runs.copy()
    bad.loc[4, "loss"] = -1.0
    with pytest.raises(DataError, match=r"column 'loss': expected > 0, got -1 at rows 4"):
        baseline_selection(bad, "zero_shot", max_D=200, target_D=800)
    with pytest.raises(DataError, match="missing column"):
        baseline_selection(runs.drop(columns="loss"), "zero_shot", max_D=200)


def test_select_model_checks_its_input_before_fitting():
    runs = _tiny_runs()
    with pytest.raises(ValueError, match="exactly one of max_D and ratio"):
        select_model(runs, target_D=800)
    with pytest.raises(DataError, match=r"too few runs with 0 < D <= 200 \(expected at least 3 per model\): a \(1\)"):
        select_model(runs, max_D=200, target_D=800)
    dup = pd.concat([runs, runs.iloc[[1]]], ignore_index=True)
    with pytest.raises(DataError, match="several runs of one model at one D, rows 1, 12"):
        select_model(dup, max_D=400, target_D=800)


# ---- the parameterization fitted, and the convergence check ---------------------------------------------------


def test_selection_spec_is_lins_law_reparameterized():
    """f L1 + ((1 - f) L1 + s) / (1 + s (D / D_ref)**beta / ((1 - f) L1)) is B / (D_l + D**beta) + E with
    E = f L1, D_l = D_ref**beta (1 - f) L1 / s, B = ((1 - f) L1 + s) D_l; and back (lin_parameters)."""
    import xarray as xr

    lin = lin_law_spec()
    D = np.array([0.0, 200.0, 6400.0, 204800.0, 1638400.0])
    B, D_l, beta, E, D_ref = 150.0, 50.0, 0.4, 1.3, 6400.0
    L1 = B / (D_l + D_ref**beta) + E
    A = B / D_l                                   # L(0) - E
    s = (L1 - E) * D_ref**beta / D_l
    spec = selection_spec(D_ref)
    assert spec.inputs == ["D"] and spec.groups == ["model"]
    assert {n: p.sharing for n, p in spec.parameters.items()} == dict.fromkeys(("L1", "s", "beta", "f"), "pooled")
    fam = selection_spec(D_ref, within="family")       # the same law, pooled within and across families
    assert fam.formula.text == spec.formula.text and fam.groups == ["model", "family"]
    assert {p.within for p in fam.parameters.values()} == {"family"}
    got = spec.formula.evaluate({"L1": L1, "s": s, "beta": beta, "f": E / L1, "D": D})
    want = lin.formula.evaluate({"B": B, "D_l": D_l, "beta": beta, "E": E, "D": D})
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] == pytest.approx(E + A) and got[2] == pytest.approx(L1)

    class _Fit:                                    # one draw, one model
        posterior = xr.Dataset({k: (("chain", "draw", "model"), [[[v]]]) for k, v in
                                {"L1": L1, "s": s, "beta": beta, "f": E / L1}.items()}, coords={"model": ["m"]})

    _Fit.spec = spec
    back = lin_parameters(_Fit()).set_index("parameter")["median"]
    assert back.to_dict() == pytest.approx({"B": B, "D_l": D_l, "beta": beta, "E": E}, rel=1e-10)


def test_power_phase_spec_is_the_rectified_law_past_its_bend():
    """L1 / (D / D_ref)**beta: L1 at D_ref, the slope of log L against log D is -beta; and the rectified law with
    D**beta >> D_l and no floor is this power law (B / D**beta: L1 = B / D_ref**beta)."""
    spec = power_phase_spec(6400)
    D = np.array([1600.0, 6400.0, 204800.0])
    got = spec.formula.evaluate({"L1": 2.5, "beta": 0.12, "D": D})
    np.testing.assert_allclose(got, 2.5 * (D / 6400) ** -0.12, rtol=1e-12)
    B, beta = 40.0, 0.3
    rect = lin_law_spec().formula.evaluate({"B": B, "D_l": 1e-9, "beta": beta, "E": 0.0, "D": D})
    np.testing.assert_allclose(spec.formula.evaluate({"L1": B / 6400**beta, "beta": beta, "D": D}), rect, rtol=1e-9)
    assert {n: p.sharing for n, p in spec.parameters.items()} == {"L1": "pooled", "beta": "separate"}
    assert spec.parameters["beta"].domain == "real"
    pooled = power_phase_spec(6400, slope="pooled", within="family")
    assert {p.sharing for p in pooled.parameters.values()} == {"pooled"} and pooled.groups == ["model", "family"]
    with pytest.raises(ValueError, match="slope must be"):
        power_phase_spec(6400, slope="shared")
    with pytest.raises(ValueError, match="zero_shot=True"):
        select_model(_tiny_runs(), max_D=400, target_D=800, zero_shot=True)
    with pytest.raises(ValueError, match="not a selection_spec fit"):
        lin_parameters(type("F", (), {"posterior": {"L1": None, "beta": None}, "spec": spec})())


def _demo_runs():
    from bayes_scaling.cli.demo import DEMO_LIN_MODELS

    runs = bs.datasets.load_lin("flan")
    return runs[runs["model"].isin(DEMO_LIN_MODELS)].reset_index(drop=True)


def test_select_model_says_loudly_when_its_fit_has_not_converged():
    """Lin et al.'s own parameterization on their runs, 50 draws: the chains disagree. The warning comes whatever
    warn= says, the selection is marked, and require_converged=True refuses."""
    runs = _demo_runs()
    kw = dict(ratio=8, model=lin_law_spec(), window="all", seed=1, draws=50, tune=50, chains=2, warn=False)
    with pytest.warns(ConvergenceWarning, match="NOT converged.*P\\(best\\) and the selection are unreliable"):
        sel = select_model(runs, **kw)
    assert not sel.converged and sel.metrics["converged"] is False and sel.metrics["r_hat_max"] > 1.01
    assert "NOT CONVERGED" in repr(sel)
    with pytest.raises(RuntimeError, match="NOT converged"):
        select_model(runs, require_converged=True, **kw)


def test_power_phase_is_ats_window():
    """AtS's walk (Lin et al.'s src/model_select.py): from the 3 largest runs down, a run joins while it lies
    within 5 residual sds of the line through the runs above it; the smallest never joins; <= 3 runs: all."""
    D = 200.0 * 2 ** np.arange(6)
    # the 4 largest on a line up to +-0.3%, the 2 smallest far above it
    runs = pd.DataFrame({"model": "a", "D": D, "loss": [9.0, 5.0, 4.02, 3.58, 3.25, 2.91]})
    assert power_phase(runs, max_D=6400).tolist() == [False, False, True, True, True, True]
    assert power_phase(runs, max_D=3200).tolist() == [False, False, True, True, True, False]
    straight = pd.DataFrame({"model": "b", "D": D, "loss": 4.0 * (D / 200) ** -0.1 * (1 + 1e-3 * (-1) ** np.arange(6))})
    assert power_phase(straight, max_D=6400).tolist() == [False, True, True, True, True, True]
    assert power_phase(straight, max_D=800).tolist() == [True, True, True, False, False, False]
    both = pd.concat([runs, straight], ignore_index=True).sample(frac=1, random_state=0)   # row order kept
    got = pd.Series(power_phase(both, max_D=6400), index=both.index).sort_index().tolist()
    assert got == [False, False, True, True, True, True] + [False, True, True, True, True, True]
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        power_phase(runs, max_D=6400, k=1)


@needs_table1
def test_ats_reproduces_their_table1():
    """baseline_selection(..., "ats"), their AtS recomputed from the bundled data: the 42 published AtS values
    (3 targets x 7 budgets x 2 metrics) within 0.15 points (the table rounds to 0.1; their predictions are
    single precision: FLAN 1/16 comes out 73.19 against their 73.1; the other 41 within 0.054)."""
    pub = read_lin_table1(TABLE1).query("method == 'ats'")
    data = bs.datasets.load_lin()
    for _, row in pub.iterrows():
        got = baseline_selection(data[data["target"] == row["target"]], "ats", max_D=LIN_FULL_D / row["ratio"])
        assert got[row["metric"]] == pytest.approx(row["value"], abs=1.5e-3), tuple(row)


def test_default_selection_converges_on_the_demo_runs():
    """The demo's real-data step (six FLAN models at 1/8, its sampler): R-hat <= 1.01, bulk ESS >= 400, no
    divergence, and no ConvergenceWarning (measured: R-hat 1.002, bulk ESS 1519, 0 of 6000). Held out, beside
    AtS on the same runs: Pearson r at least AtS's - 0.02 (measured 0.797 against 0.795) and the same relative
    accuracy or better (both select phi-1_5, 4th of 6 at full data, 0.03 nats from the best: 0.83); every actual
    loss inside its 90% interval; the actual best, OPT-1.3B, second with P(best) > 0.2 (measured 0.33)."""
    from bayes_scaling.cli.demo import DEMO_LIN_SAMPLER

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sel = select_model(_demo_runs(), ratio=8, seed=1, warn=False, **DEMO_LIN_SAMPLER)
    d = sel.diagnostics
    assert d.r_hat_max <= 1.01 and d.ess_bulk_min >= 400 and d.divergences == 0, str(d)
    assert sel.converged and sel.fit.spec.name == "rectified_finetuning_power_phase"
    assert sel.table["n_runs"].between(3, 10).all()
    ats = baseline_selection(_demo_runs(), "ats", max_D=LIN_FULL_D / 8)
    assert sel.metrics["pearson"] >= ats["pearson"] - 0.02
    assert sel.metrics["relative_accuracy"] >= ats["relative_accuracy"] and sel.metrics["coverage"] == 1.0
    assert sel.metrics["p_best_discrepancy_of_actual_best"] > 0.2


# ---- Lin et al.'s baselines, reproduced exactly from their data and their Table 1 ------------------------------


@needs_table1
def test_lin_baselines_reproduce_their_table1_to_its_rounding():
    """Their ZeroShot, SubTuning and ModelSize columns (3 targets x 7 ratios x 2 metrics = 126 values) come out
    of our metric functions within 0.06 percentage points: the table rounds to 0.1 points, so this checks both
    metric definitions and the bundled data against theirs (AtS: test_ats_reproduces_their_table1)."""
    pub = read_lin_table1(TABLE1)
    assert len(pub) == 3 * 4 * 7 * 2 and set(pub["ratio"]) == set(LIN_RATIOS) and set(pub["method"]) == set(BASELINES)
    data = bs.datasets.load_lin()
    for (target, ratio), rows in pub[pub["method"] != "ats"].groupby(["target", "ratio"]):
        runs = data[data["target"] == target]
        for method in ("zero_shot", "subtuning", "model_size"):
            got = baseline_selection(runs, method, max_D=LIN_FULL_D / ratio)
            for metric in ("pearson", "relative_accuracy"):
                want = rows[(rows["method"] == method) & (rows["metric"] == metric)]["value"].item()
                assert got[metric] == pytest.approx(want, abs=6e-4), (target, ratio, method, metric)


# ---- recovery of a known best model (simulated) ---------------------------------------------------------------


#: Four models; m1 starts worse but has the lowest floor E: at max_D = 204,800 it is third (subtuning picks m0),
#: at 1,638,400 it is best by 0.11 nats.
TRUTH = {"B": {"m0": 60.0, "m1": 30.0, "m2": 100.0, "m3": 80.0}, "D_l": {"m0": 30.0, "m1": 5.0, "m2": 50.0, "m3": 20.0},
         "beta": {"m0": 0.5, "m1": 0.3, "m2": 0.45, "m3": 0.4}, "E": {"m0": 1.3, "m1": 0.85, "m2": 1.4, "m3": 1.35}}


@pytest.mark.slow
def test_select_model_recovers_a_known_best_that_small_runs_hide():
    spec = lin_law_spec()
    design = pd.DataFrame([(m, d) for m in TRUTH["E"] for d in 200 * 2.0 ** np.arange(14)], columns=["model", "D"])
    data = simulate_law(spec, design, TRUTH, 0.005, seed=3)
    true_full = simulate_law(spec, design[design["D"] == LIN_FULL_D], TRUTH, 0.0).set_index("model")["loss"]
    assert true_full.idxmin() == "m1" and true_full.drop("m1").min() - true_full["m1"] > 0.1
    assert baseline_selection(data, "subtuning", max_D=204800, target_D=LIN_FULL_D)[
        "selected"] == "m0"
    sel = select_model(data, ratio=8, seed=1, draws=400, tune=500, chains=2, warn=False, window="all")
    assert sel.selected == "m1" and sel.table.loc[0, "p_best"] > 0.9
    assert sel.metrics["relative_accuracy"] == 1.0 and sel.metrics["actual_best"] == "m1"
    assert sel.metrics["pearson"] > 0.9
    # the 90% predictive intervals contain each model's true loss at 1.6M (8x beyond its runs: outside = 0.9)
    t = sel.table.set_index("model")
    assert ((t["lo"] <= true_full[t.index] * 1.01) & (true_full[t.index] * 0.99 <= t["hi"])).all()
    assert t["outside"].to_numpy() == pytest.approx(np.log10(8))
    assert (t["n_runs"] == 11).all()


# ---- the Bayesian selection beside their Table 1 (real data) ----------------------------------------------------


@needs_table1
@pytest.mark.slow
def test_bayesian_selection_at_least_matches_ats_on_their_table1():
    """All 30 models, FLAN, WMT19 and Gigaword, every budget of Table 1 (21 cells; benchmarks/lin_selection.py,
    docs/validation.md), the default selection at bs.fit's settings (1000 x 4 after 1000, seed 1): every fit
    converged (R-hat <= 1.01, no divergence), and beside the published AtS values Pearson r >= AtS - 0.02 in every
    cell (measured: at worst 0.003 below, on average 0.000; the posterior median line differs from their
    least-squares line by the pooling of the levels and Monte Carlo error); relative accuracy >= AtS - 0.1 in
    every cell and >= AtS - 0.02 on average (measured: equal in 19 cells, +0.005 and -0.042 in the others; the
    selected model has P(best) 0.2-0.4 among near-ties, so another seed may pick a neighbour)."""
    pub = read_lin_table1(TABLE1).query("method == 'ats'").set_index(["target", "ratio", "metric"])["value"]
    data = bs.datasets.load_lin()
    got, want = [], []
    for target in ("flan", "wmt19", "gigaword"):
        runs = data[data["target"] == target]
        for ratio in LIN_RATIOS:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)
                sel = select_model(runs, ratio=ratio, seed=1, warn=False)
            d = sel.diagnostics
            assert len(sel.table) == 30 and d.r_hat_max <= 1.01 and d.divergences == 0, (target, ratio, str(d))
            assert sel.metrics["pearson"] >= pub[target, ratio, "pearson"] - 0.02, (target, ratio, sel.metrics)
            assert sel.metrics["relative_accuracy"] >= pub[target, ratio, "relative_accuracy"] - 0.1, (target, ratio)
            got.append(sel.metrics["relative_accuracy"])
            want.append(pub[target, ratio, "relative_accuracy"])
    assert np.mean(got) >= np.mean(want) - 0.02, (got, want)
