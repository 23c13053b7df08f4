"""Analyses of any law-spec fit: simulation-based calibration of a spec, compute-optimal sizes of any loss law
of N and D, and solving any law for one input (timelines). Known truth: the closed forms of the Chinchilla
law (Hoffmann et al. 2022) at the true parameters."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers import draws_inside

from bayes_scaling.analysis.calibration import default_design, frozen_spec, run_spec_sbc, spec_sbc_parameters
from bayes_scaling.analysis.compute import EdgeWarning, loss_law, scratch_optimum, spec_loss_laws
from bayes_scaling.analysis.timeline import NoSolutionWarning, solve_law, unsolved
from bayes_scaling.data.simulate import simulate_law
from bayes_scaling.errors import BayesScalingError, ConfigError
from bayes_scaling.inference.fit import Fit
from bayes_scaling.inference.sampling import available_backends
from bayes_scaling.laws import formulas as laws
from bayes_scaling.laws.spec import LawSpec, builtin_spec

needs_nutpie = pytest.mark.skipif("nutpie" not in available_backends(), reason="SBC runs on nutpie")

#: Epoch AI's refit of Chinchilla (Besiroglu et al. 2024)
TRUTH = {"E": 1.817, "A": 482.0, "B": 2085.0, "alpha_N": 0.348, "alpha_D": 0.366}
BUDGETS = np.array([1e20, 1e22, 1e24])


def closed_form_N_opt(C, p=TRUTH):
    """Hoffmann et al.: N_opt = G (C/6)^(b/(a+b)), G = (a A / (b B))^(1/(a+b)), a = alpha_N, b = alpha_D."""
    a, b = p["alpha_N"], p["alpha_D"]
    G = (a * p["A"] / (b * p["B"])) ** (1 / (a + b))
    return G * (np.asarray(C) / 6) ** (b / (a + b))


def closed_form_D(loss, N, p=TRUTH):
    """The Chinchilla law's inverse in D: D = (B / (L - E - A / N^a))^(1/b)."""
    return (p["B"] / (loss - p["E"] - p["A"] / N ** p["alpha_N"])) ** (1 / p["alpha_D"])


def runs(seed=1, sigma=0.02):
    spec = builtin_spec("chinchilla")
    return simulate_law(spec, default_design(spec), TRUTH, sigma, seed=seed)


def given_fit(spec: LawSpec, draws: dict[str, np.ndarray], data: pd.DataFrame, labels: dict | None = None) -> Fit:
    """A Fit whose posterior is the given draws (arrays (S,) or (S, groups)): the analyses on known values."""
    S = len(next(iter(draws.values())))
    labels = labels or {}
    post = {}
    for name, v in draws.items():
        v = np.asarray(v, dtype=float)
        dims = ("chain", "draw") + ((spec.parameters[name].by,) if v.ndim == 2 else ())
        post[name] = (dims, v.reshape((1, S) + v.shape[1:]))
    coords = {"chain": [0], "draw": np.arange(S), **{g: v for g, v in labels.items()}}
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(post, coords=coords)})
    tree.attrs.update(bayes_scaling_kind="spec", spec=json.dumps(spec.to_dict()), spec_hash=spec.hash(),
                      backend="given", seed=0, labels=json.dumps(labels), parameterization="{}")
    return Fit(tree, data, spec)


# ---- simulation-based calibration of a spec -----------------------------------------------------------------


def test_default_design_and_frozen_priors():
    spec = builtin_spec("chinchilla")
    d = default_design(spec)
    assert len(d) == 25 and d["N"].min() == 1e7 and d["D"].max() == pytest.approx(1e12)
    frozen = frozen_spec(spec, runs())
    # every default prior made explicit at the value a fit of these runs uses
    from bayes_scaling.models import spec_model as sm

    data = sm.prepare(spec, runs())
    want = sm.default_priors(spec, data)
    got = sm.default_priors(frozen, sm.prepare(frozen, runs()))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-12)
    assert frozen.sigma == pytest.approx(sm.noise_prior(spec, data))
    assert spec_sbc_parameters(frozen) == ["E", "A", "B", "alpha_N", "alpha_D", "sigma", "nu"]
    # the data-scaled priors cannot be frozen without the target
    with pytest.raises(ConfigError, match="E, A, B, sigma"):
        frozen_spec(spec)
    by_corpus = builtin_spec("chinchilla_by_corpus")
    assert sorted(default_design(by_corpus)["corpus"].unique()) == ["g1", "g2"]
    assert "log_E_mu" in spec_sbc_parameters(by_corpus) and "log_E_sigma" in spec_sbc_parameters(by_corpus)
    with pytest.raises(ConfigError, match="no default design for input"):
        default_design(LawSpec.from_dict({"law": {"formula": "a * x**b", "target": "y"},
                                          "parameters": {"a": {}, "b": {}}}))


#: a Chinchilla spec with informative priors (a calibration study of a well-identified law), normal noise
CHINCHILLA_TIGHT = {
    "law": {"name": "chinchilla_tight", "formula": "E + A / N**alpha_N + B / D**alpha_D", "target": "loss"},
    "likelihood": {"family": "normal", "scale": "log", "sigma": 0.03},
    "parameters": {"E": {"median": 1.8, "sigma": 0.2}, "A": {"median": 480.0, "sigma": 0.5},
                   "B": {"median": 2000.0, "sigma": 0.5}, "alpha_N": {"median": 0.35, "sigma": 0.15},
                   "alpha_D": {"median": 0.35, "sigma": 0.15}},
}
SBC_FAST = dict(draws=200, tune=300, chains=2, n_rank=49)


@pytest.fixture(scope="module")
def chinchilla_sbc():
    return run_spec_sbc(CHINCHILLA_TIGHT, 20, seed=3, **SBC_FAST)


@needs_nutpie
def test_spec_sbc_of_chinchilla_passes(chinchilla_sbc):
    res = chinchilla_sbc
    checks = res.checks()
    assert checks["passed"].all(), checks
    assert list(res.ranks.columns) == ["E", "A", "B", "alpha_N", "alpha_D", "sigma"]
    assert len(res.ranks) == 20 and res.ranks.to_numpy().min() >= 0 and res.ranks.to_numpy().max() <= 49
    assert res.settings["rejected"] == 0 and res.settings["design_rows"] == 25
    assert len(res.divergences) == 20


@needs_nutpie
def test_spec_sbc_detects_a_prior_other_than_the_fitted_one():
    """Simulating with noise from a HalfNormal(0.3) while the fitted prior is HalfNormal(0.03): the fitted
    posteriors of sigma sit below the truth (the prior pulls them down), the ranks pile up at the top, and the
    same checks fail (measured at seed 3: ECDF deviation 0.60 against a band of 0.39, mean rank 40 of 49)."""
    wrong = json.loads(json.dumps(CHINCHILLA_TIGHT))
    wrong["likelihood"]["sigma"] = 0.3
    res = run_spec_sbc(CHINCHILLA_TIGHT, 20, sim_model=wrong, seed=3, **SBC_FAST)
    checks = res.checks()
    assert not res.passed
    assert not checks.loc["sigma", "passed"], checks
    assert checks.loc["sigma", "ecdf_max_dev"] > checks.loc["sigma", "ecdf_band"]
    assert res.ranks["sigma"].mean() > 0.75 * 49


@needs_nutpie
@pytest.mark.slow     # ~45 s on 2 shared cores
def test_spec_sbc_of_the_builtin_chinchilla_on_runs():
    """The built-in Chinchilla spec (Student-t noise, data-scaled default priors frozen on simulated runs):
    40 simulations pass every check; measured at seed 7: one fit of 40 with a divergent transition."""
    res = run_spec_sbc("chinchilla", 40, data=runs(), draws=200, tune=300, n_rank=49, seed=7)
    checks = res.checks()
    assert checks["passed"].all(), checks
    assert (res.divergences > 0).sum() <= 4, res.divergences


@needs_nutpie
@pytest.mark.slow     # ~80 s on 2 shared cores
def test_spec_sbc_of_a_pooled_spec():
    """chinchilla_by_corpus on two corpora (E, A, B partially pooled): the group-level structure is drawn from
    its priors too, every group's parameter and each population's location and spread is ranked; 30
    simulations pass (measured at seed 1: 6 fits of 30 with one divergent transition each)."""
    spec = builtin_spec("chinchilla_by_corpus")
    truth = {"E": {"g1": 1.8, "g2": 2.0}, "A": {"g1": 400.0, "g2": 600.0}, "B": {"g1": 2000.0, "g2": 1500.0},
             "alpha": 0.34, "beta": 0.3}
    data = simulate_law(spec, default_design(spec), truth, 0.02, seed=1)
    res = run_spec_sbc(spec, 30, data=data, draws=200, tune=300, n_rank=49, seed=1)
    assert list(res.ranks.columns)[:4] == ["E[g1]", "E[g2]", "log_E_mu", "log_E_sigma"]
    assert {"alpha", "beta", "sigma", "nu", "B[g2]", "log_B_sigma"} <= set(res.ranks.columns)
    checks = res.checks()
    assert checks["passed"].all(), checks
    assert (res.divergences > 0).sum() <= 12, res.divergences


def test_spec_sbc_bad_arguments():
    with pytest.raises(ValueError, match="n_rank"):
        run_spec_sbc(CHINCHILLA_TIGHT, 5, draws=10, chains=1, n_rank=99)
    with pytest.raises(ValueError, match="n_sims"):
        run_spec_sbc(CHINCHILLA_TIGHT, 1)


@needs_nutpie
def test_calibrate_command_with_a_spec(tmp_path, capsys):
    from bayes_scaling.cli import main

    data = tmp_path / "runs.csv"
    runs().to_csv(data, index=False)
    out = tmp_path / "sbc"
    code = main(["calibrate", "--model", "chinchilla", "--data", str(data), "--sims", "4", "--draws", "100",
                 "--tune", "100", "--ranks-of", "19", "--out", str(out), "--seed", "3", "--workers", "1"])
    text = capsys.readouterr().out
    assert "SBC of the law 'chinchilla'" in text and "alpha_N" in text
    ranks = pd.read_csv(out / "ranks.csv", index_col="simulation")
    assert list(ranks.columns) == ["E", "A", "B", "alpha_N", "alpha_D", "sigma", "nu"] and len(ranks) == 4
    passed = pd.read_csv(out / "checks.csv")["passed"].astype(bool)
    assert code == (0 if passed.all() else 1)


def test_calibrate_command_refuses_bad_input(tmp_path, capsys):
    from bayes_scaling.cli import main

    out = str(tmp_path / "sbc")
    assert main(["calibrate", "--model", "no_such_law", "--out", out]) == 2
    assert "not a built-in law" in capsys.readouterr().err
    assert main(["calibrate", "--data", "x.csv", "--out", out]) == 2          # the transfer design is fixed
    assert "--data gives the design of a law spec" in capsys.readouterr().err
    assert main(["calibrate", "--model", "chinchilla", "--sims", "4", "--out", out]) == 2   # no target: no priors
    err = capsys.readouterr().err
    assert "scales with the data" in err and len(err.strip().splitlines()) == 1


# ---- compute-optimal sizes of any loss law of N and D ------------------------------------------------------


def test_spec_loss_law_reproduces_the_named_law():
    """The Chinchilla spec's formula, minimised numerically, gives the named law's optimum and Hoffmann et al.'s
    closed form."""
    spec_law = loss_law(builtin_spec("chinchilla"), TRUTH)
    a = scratch_optimum(spec_law, BUDGETS)
    b = scratch_optimum("chinchilla", BUDGETS, TRUTH)
    np.testing.assert_allclose(a["N_opt"].values, b["N_opt"].values, rtol=1e-9)
    np.testing.assert_allclose(a["loss"].values, b["loss"].values, rtol=1e-12)
    np.testing.assert_allclose(a["N_opt"].values.ravel(), closed_form_N_opt(BUDGETS), rtol=1e-5)
    np.testing.assert_allclose(closed_form_N_opt(BUDGETS), laws.chinchilla_optimal_N(
        BUDGETS, TRUTH["A"], TRUTH["B"], TRUTH["alpha_N"], TRUTH["alpha_D"]), rtol=1e-12)
    # the numerical inverse in D matches the closed form
    p = spec_law.flat_params()
    D = spec_law.data_needed(np.array([2.3, 2.5]), np.array([1e9, 1e9]), {k: v[0] for k, v in p.items()})
    np.testing.assert_allclose(D, closed_form_D(np.array([2.3, 2.5]), 1e9), rtol=1e-8)
    # below E + A / N^alpha_N (2.17 at N = 1e9): unreachable, as the named law's closed form says
    assert spec_law.data_needed(2.1, 1e9, {k: v[0] for k, v in p.items()}) == np.inf
    assert loss_law("chinchilla", TRUTH).data_needed(2.1, 1e9, TRUTH) == np.inf


def test_spec_loss_law_per_group_and_with_other_inputs():
    """chinchilla_by_corpus: one optimum per corpus (each the closed form of that corpus' parameters);
    data_constrained with unique data far beyond the budget: the Chinchilla optimum."""
    spec = builtin_spec("chinchilla_by_corpus")
    S = 3
    draws = {"E": np.tile([1.8, 2.0], (S, 1)), "A": np.tile([400.0, 600.0], (S, 1)),
             "B": np.tile([2000.0, 1500.0], (S, 1)), "alpha": np.full(S, 0.34), "beta": np.full(S, 0.3)}
    data = pd.DataFrame({"N": [1e7, 1e9], "D": [1e9, 1e11], "loss": [3.0, 2.2], "corpus": ["c4", "pile"]})
    fit = given_fit(spec, draws, data, {"corpus": ["c4", "pile"]})
    ds = scratch_optimum(fit, BUDGETS)
    assert ds["N_opt"].dims == ("chain", "draw", "corpus", "C")
    for j, c in enumerate(["c4", "pile"]):
        p = {"A": draws["A"][0, j], "B": draws["B"][0, j], "alpha_N": 0.34, "alpha_D": 0.3}
        np.testing.assert_allclose(ds["N_opt"].sel(corpus=c).values[0, 0], closed_form_N_opt(BUDGETS, p), rtol=1e-5)
    assert "outside" in ds and ds.attrs["tau"] == pytest.approx(spec.discrepancy.tau)
    one = scratch_optimum(fit, BUDGETS, group="pile")
    np.testing.assert_allclose(one["N_opt"].values, ds["N_opt"].sel(corpus="pile").values)
    with pytest.raises(BayesScalingError, match="choose the group"):
        loss_law(fit)
    assert list(spec_loss_laws(fit)) == ["c4", "pile"]

    dc = builtin_spec("data_constrained")
    p = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.353, "RD_star": 15.4, "RN_star": 5.3}
    law = loss_law(dc, p, at={"U_D": 1e9})      # 1e9 unique tokens, repeated: a budget of 1e21 is data-bound
    ds = scratch_optimum(law, [1e21])
    # a brute-force minimum of the same formula on a fine grid of N (D = C / 6N)
    N = np.logspace(6, 12, 200_001)
    grid = dc.formula.evaluate({**p, "U_D": 1e9, "N": N, "D": 1e21 / (6 * N)})
    assert float(ds["loss"].values.ravel()[0]) == pytest.approx(grid.min(), rel=1e-9)
    assert float(ds["N_opt"].values.ravel()[0]) == pytest.approx(N[np.argmin(grid)], rel=1e-3)
    assert not bool(ds["at_edge"].values.any())
    chin = scratch_optimum("chinchilla", [1e21], {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha_N": 0.353,
                                                  "alpha_D": 0.353})
    # not the Chinchilla optimum: with 1e9 unique tokens, parameters beyond U_N are worth less too (1.77e9 vs 2.92e9)
    assert float(ds["N_opt"].values.ravel()[0]) < 0.8 * float(chin["N_opt"].values.ravel()[0])
    with pytest.raises(BayesScalingError, match="missing U_D"):
        loss_law(dc, p)
    with pytest.raises(BayesScalingError, match="not of N and D"):
        loss_law(builtin_spec("m4"), {})


def test_spec_loss_law_with_pre_training_matches_the_named_law(t1_small):
    """Fine-tuned optima, the smallest model and the compute saved (which inverts the law in D numerically
    for a spec) agree with the named Chinchilla law's closed forms."""
    from bayes_scaling.analysis.compute import compute_frontier, compute_saved, smallest_model

    spec_law = loss_law(builtin_spec("chinchilla"), TRUTH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeWarning)
        a = compute_frontier(spec_law, t1_small, [1e18, 1e20], seed=0)
        b = compute_frontier("chinchilla", t1_small, [1e18, 1e20], params=TRUTH, seed=0)
        np.testing.assert_allclose(a["N_opt"].values, b["N_opt"].values, rtol=1e-8)
        a = compute_saved(spec_law, t1_small, [1e18], seed=0)
        b = compute_saved("chinchilla", t1_small, [1e18], params=TRUTH, seed=0)
    np.testing.assert_allclose(a["C_scratch"].values, b["C_scratch"].values, rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeWarning)     # some draws never reach 2.6 with this little data
        a = smallest_model(spec_law, t1_small, 2.6, 1e8, seed=0)
        b = smallest_model("chinchilla", t1_small, 2.6, 1e8, params=TRUTH, seed=0)
    np.testing.assert_allclose(a["N_min"].values, b["N_min"].values, rtol=1e-8)
    assert np.isfinite(a["N_min"].values).any()


@pytest.fixture(scope="module")
def chinchilla_fit():
    import bayes_scaling as bs

    return bs.fit(runs(seed=5, sigma=0.02), "chinchilla", seed=2, draws=1000, tune=1000, chains=2, warn=False)


def _inside(da: xr.DataArray, value: float) -> bool:
    """``value`` inside the 99% interval of the log of the draws ``da`` (chain, draw), with the Monte Carlo
    margin of their tail ESS (the Chinchilla posterior mixes slowly along the A-alpha ridge)."""
    from bayes_scaling.inference.mcmc_stats import ess_tail

    x = np.log(da.transpose("chain", "draw").values)
    return draws_inside(x, np.log(value), 0.99, ess=ess_tail(x, 0.005))


def test_fitted_chinchilla_N_opt_covers_the_closed_form(chinchilla_fit):
    """Simulated Chinchilla runs (25 runs, 2% noise), the built-in Chinchilla spec: the posterior 99% interval
    of N_opt(C) covers Hoffmann et al.'s closed form at the true parameters (with Monte Carlo margin). Measured:
    the truth lies at the posterior's 0.982, 0.968 and 0.955 quantiles for C = 1e20, 1e22, 1e24 on this data set
    (over six other data seeds, anywhere from the 0.11 to the 0.93 quantile: no systematic bias)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeWarning)
        ds = scratch_optimum(chinchilla_fit, BUDGETS, seed=1)
    assert ds.attrs["law"] == "chinchilla" and ds["N_opt"].dims == ("chain", "draw", "C")
    truth = closed_form_N_opt(BUDGETS)
    for i, C in enumerate(BUDGETS):
        da = ds["N_opt"].sel(C=C)
        assert _inside(da, truth[i]), (C, np.quantile(da.values, [0.025, 0.975]), truth[i])
    # D_opt = C / (6 N_opt) per draw, and the loss at the optimum is the law's value there
    np.testing.assert_allclose(ds["D_opt"].values, BUDGETS / (6 * ds["N_opt"].values), rtol=1e-12)
    assert (ds["outside"].values >= 0).all() and ds["C_orders_outside"].sel(C=1e24).min() > 0


# ---- solving any law for one input ---------------------------------------------------------------------------


def test_solve_law_matches_the_closed_form_inverse():
    spec = builtin_spec("chinchilla")
    S = 4
    rng = np.random.default_rng(0)
    draws = {k: v * np.exp(rng.normal(0, 0.02, S)) for k, v in TRUTH.items()}
    fit = given_fit(spec, draws, runs())
    ds = solve_law(fit, "D", [2.1, 2.3], at={"N": 1e10})      # "what D reaches a loss of 2.1 at N = 1e10"
    assert ds["D"].dims == ("chain", "draw", "target") and ds.attrs["n_unsolved"] == 0
    for t in (2.1, 2.3):
        np.testing.assert_allclose(ds["D"].sel(target=t).values.ravel(), closed_form_D(t, 1e10, draws), rtol=1e-8)
    # solving for N: N = (A / (L - E - B / D^b))^(1/a)
    n = solve_law(fit, "N", 2.2, at={"D": 1e11})["N"].values.ravel()
    want = (draws["A"] / (2.2 - draws["E"] - draws["B"] / 1e11 ** draws["alpha_D"])) ** (1 / draws["alpha_N"])
    np.testing.assert_allclose(n, want, rtol=1e-8)
    # a loss below E is never reached: counted, warned, listed
    with pytest.warns(NoSolutionWarning, match=r"4 of 8 \(posterior draws x groups x targets\)"):
        low = solve_law(fit, "D", [1.5, 2.1], at={"N": 1e10})
    assert int(low["solved"].sel(target=1.5).sum()) == 0 and low.attrs["n_status_1"] == 4
    table = unsolved(low)
    assert len(table) == 4 and table["reason"].str.contains("does not reach").all()


def test_solve_law_checks_monotonicity_and_arguments():
    spec = LawSpec.from_dict({"law": {"formula": "E + A * (log(N) - c)**2", "target": "loss"},
                              "parameters": {"E": {}, "A": {}, "c": {"domain": "real"}}})
    data = pd.DataFrame({"N": [1e6, 1e8], "loss": [2.0, 2.1]})
    fit = given_fit(spec, {"E": np.full(2, 2.0), "A": np.full(2, 0.01), "c": np.array([15.0, 60.0])}, data)
    with pytest.warns(NoSolutionWarning):
        ds = solve_law(fit, "N", 20.0)
    # draw 0: a parabola with its minimum inside the interval (two solutions): not monotone; draw 1: monotone
    assert ds["status"].values.ravel().tolist() == [2, 0]
    with pytest.raises(BayesScalingError, match="cannot solve for 'x'"):
        solve_law(fit, "x", 2.5)
    chin = given_fit(builtin_spec("chinchilla"), {k: np.full(2, v) for k, v in TRUTH.items()}, runs())
    with pytest.raises(BayesScalingError, match="missing N"):
        solve_law(chin, "D", 2.1)
    with pytest.raises(BayesScalingError, match="bounds"):
        solve_law(chin, "D", 2.1, at={"N": 1e9}, bounds=(0.0, 1e12))


def test_solve_law_on_a_fitted_chinchilla_covers_the_inverse(chinchilla_fit):
    ds = solve_law(chinchilla_fit, "D", 2.3, at={"N": 1e9})
    assert ds.attrs["n_unsolved"] == 0
    D = ds["D"].sel(target=2.3)
    assert _inside(D, closed_form_D(2.3, 1e9)), (np.quantile(D.values, [0.005, 0.995]), closed_form_D(2.3, 1e9))


def test_solve_law_on_a_transfer_fit_inverts_the_transfer_law(t1_small):
    """A transfer fit seen as its law D_T = k D_F^alpha N^beta: solving for D_F gives (D_T / (k N^beta))^(1/alpha)."""
    used = t1_small.data.used
    N, D_T = float(used["N"].median()), float(used["D_T"].median())
    ds = solve_law(t1_small, "D_F", D_T, at={"N": N})
    post = t1_small.posterior
    assert ds.attrs["n_unsolved"] == 0
    for p in ds["group"].values:
        k, a, b = (post[v].sel(pretraining=p).values.ravel() if "pretraining" in post[v].dims
                   else post[v].values.ravel() for v in ("k", "alpha", "beta"))
        np.testing.assert_allclose(ds["D_F"].sel(group=p).values.ravel(), (D_T / (k * N ** b)) ** (1 / a),
                                   rtol=1e-8)


@pytest.fixture(scope="module")
def t1_small():
    from helpers import table1_fit

    return table1_fit(chains=1, draws=3)


def test_forecast_command_solves_any_law(tmp_path, capsys):
    from bayes_scaling.cli import main

    spec = builtin_spec("chinchilla")
    fit = given_fit(spec, {k: np.full(3, v) for k, v in TRUTH.items()} | {"sigma": np.full(3, 0.02),
                                                                           "nu": np.full(3, 10.0)}, runs())
    path = tmp_path / "fit.nc"
    fit.save(path)
    code = main(["forecast", str(path), "--solve", "D", "--target", "2.1", "2.3", "--at", "N=1e10", "--csv"])
    assert code == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    np.testing.assert_allclose(table["D"], closed_form_D(np.array([2.1, 2.3]), 1e10), rtol=1e-6)
    assert (table["unsolved"] == 0).all()
    for argv, message in ((["--solve", "x", "--target", "2"], "cannot solve for 'x'"),
                          (["--solve", "D", "--target", "2"], "missing N"),
                          (["--solve", "D", "--target", "2", "--at", "N"], "NAME=VALUE"),
                          (["--target", "2"], "go with --solve"),
                          (["--solve", "D", "--target", "2", "--at", "N=1e9", "--N", "1e9"], "leave out --N")):
        assert main(["forecast", str(path), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
