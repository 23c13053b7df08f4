"""Backtests (issue 12): the holdout parser, the scores, the baselines, the command, simulated and real data."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.analysis.backtest import (
    BacktestResult,
    backtest,
    calibrate_tau,
    crps_draws,
    distance_outside,
    huber_fit,
    interval_scores,
    log_density_draws,
    lsq_fit,
    make_splits,
    parse_holdout,
    pooled_tau,
)
from bayes_scaling.errors import ConfigError, DataError
from bayes_scaling.laws.spec import builtin_spec

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
TRUTH = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha_N": 0.34, "alpha_D": 0.28}


def grid_runs(seed=0, sigma=0.01, extra=0.0, n_sizes=8, n_data=6):
    """Chinchilla-law runs on an (N, D) grid; ``extra`` adds a term ``extra * log10(D / 1e9)`` (a law the
    plain Chinchilla law cannot represent: misspecification that grows outside the data)."""
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 3e9, n_sizes), n_data)
    D = np.tile(np.geomspace(1e9, 3e11, n_data), n_sizes)
    law = TRUTH["E"] + TRUTH["A"] / N ** TRUTH["alpha_N"] + TRUTH["B"] / D ** TRUTH["alpha_D"]
    law = law - extra * np.log10(D / 1e9)
    return pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": law * np.exp(rng.normal(0, sigma, N.size))})


# ---- the holdout parser ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("C > 1e20", [False, False, True, True]),
    ("N >= 3", [False, False, True, True]),
    ("(N > 1) & (C < 4e20)", [False, True, True, False]),
    ("(N < 2) | (C >= 5e20)", [True, False, False, True]),
    ("N < 2 or C >= 5e20", [True, False, False, True]),
    ("1 < N <= 3", [False, True, True, False]),
    ("~(N > 1)", [True, False, False, False]),
    ("not N > 1 or N == 4", [True, False, False, True]),
    ("corpus == 'web'", [True, False, True, False]),
    ("corpus != \"web\" and N > -1", [False, True, False, True]),
])
def test_holdout_conditions(text, expected):
    t = pd.DataFrame({"N": [1, 2, 3, 4], "C": [1e19, 1e20, 3e20, 6e20], "corpus": ["web", "code", "web", "x"]})
    assert parse_holdout(text).mask(t).tolist() == expected


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('true')", "not a condition"),
    ("N.real > 1", "Attribute"),
    ("N > 1 + 2", "BinOp"),
    ("N < 2 | C >= 5e20", "parentheses"),
    ("N > 1 if True else 2", "not a condition"),
    ("N", "not a condition"),
    ("1 < 2", "must involve a column"),
    ("N in [1, 2]", "List is not a column"),
    ("N is 1", "Is is not allowed"),
    ("corpus > 'web'", "== or !="),
    ("N >", "not valid"),
    ("", "non-empty"),
    ("rolling:", "rolling:COLUMN"),
])
def test_holdout_refuses(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_holdout(text)


def test_holdout_unknown_column_named():
    t = pd.DataFrame({"N": [1.0, 2.0], "loss": [2.0, 1.0]})
    with pytest.raises(ConfigError, match=r"unknown column\(s\) C; the data's columns are N, loss"):
        parse_holdout("C > 1").mask(t)
    with pytest.raises(ConfigError, match="unknown column Q"):
        make_splits(t, "rolling:Q")


def test_splits_condition_rolling_and_empty():
    t = pd.DataFrame({"N": [1, 1, 2, 3, 3, 4.0]})
    (s,) = make_splits(t, "N > 2")
    assert s.train.tolist() == [0, 1, 2] and s.test.tolist() == [3, 4, 5]
    roll = make_splits(t, "rolling:N", rolling_steps=2)
    assert [x.test.tolist() for x in roll] == [[3, 4], [5]]
    assert [x.train.tolist() for x in roll] == [[0, 1, 2], [0, 1, 2, 3, 4]]
    assert len(make_splits(t, "rolling:N", rolling_steps=10)) == 3   # never leaves the training set empty
    with pytest.raises(DataError, match="empty test set"):
        make_splits(t, "N > 10")
    with pytest.raises(DataError, match="empty training set"):
        make_splits(t, "N > 0")


# ---- scores ---------------------------------------------------------------------------------------------------
def test_crps_known_values():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40000, 3))
    y = np.array([0.0, 1.0, -2.0])
    from scipy.stats import norm

    exact = y * (2 * norm.cdf(y) - 1) + 2 * norm.pdf(y) - 1 / np.sqrt(np.pi)    # Gneiting & Raftery (2007)
    np.testing.assert_allclose(crps_draws(x, y), exact, atol=0.01)
    # a point mass: the absolute error
    np.testing.assert_allclose(crps_draws(np.full((10, 2), 3.0), np.array([1.0, 3.5])), [2.0, 0.5])
    # the energy form equals the mean over all pairs
    small = rng.standard_normal((7, 1))
    pairs = np.mean(np.abs(small[:, None, 0] - small[None, :, 0]))
    assert np.isclose(crps_draws(small, np.array([0.2]))[0], np.mean(np.abs(small - 0.2)) - 0.5 * pairs)


def test_coverage_width_and_density_on_known_distribution():
    rng = np.random.default_rng(2)
    draws = rng.normal(0.0, 1.0, (4000, 1)) * np.ones((1, 3000)) + 10.0
    y = rng.normal(10.0, 1.0, 3000)
    sc = interval_scores(draws, y, (0.5, 0.9))
    assert abs(sc["cover50"].mean() - 0.5) < 0.03 and abs(sc["cover90"].mean() - 0.9) < 0.02
    assert np.allclose(sc["width90"], 2 * 1.645 / 10, rtol=0.05)
    from scipy.stats import norm

    lpd = log_density_draws(rng.normal(10.0, 1.0, (20000, 5)), y[:5])
    h = 1.06 * 20000 ** -0.2                # the kernel's bandwidth (Scott): the estimate is N(10, 1 + h^2)
    np.testing.assert_allclose(lpd, norm.logpdf(y[:5], 10.0, np.sqrt(1 + h**2)), atol=0.05)


def test_calibrate_tau_and_distance():
    rng = np.random.default_rng(3)
    d = rng.uniform(0.1, 1.0, 3000)
    r = rng.normal(0, np.hypot(0.02, 0.1 * d))
    assert abs(calibrate_tau(r, np.full(3000, 0.02), d) - 0.1) < 0.01
    assert calibrate_tau(rng.normal(0, 0.02, 3000), np.full(3000, 0.02), d) < 0.01
    assert calibrate_tau(r, np.full(3000, 0.02), np.zeros(3000)) == 0.0
    train = pd.DataFrame({"N": [1e7, 1e9], "D": [1e9, 1e11], "C": [6e16, 6e20]})
    test = pd.DataFrame({"N": [1e9, 1e10], "D": [1e11, 1e9], "C": [6e21, 6e19]})
    # N and D: compute C = 6 N D counts too (here inside: 6e20 and 6e19)
    np.testing.assert_allclose(distance_outside(train, test, ["N", "D"]), [0.0, 1.0])
    # a column given as such (a law of N alone, split along the data's C)
    np.testing.assert_allclose(distance_outside(train, test, ["N"]), [0.0, 1.0])
    np.testing.assert_allclose(distance_outside(train, test, ["N"], ["C"]), [1.0, 1.0])


def test_point_fit_baselines_recover_truth():
    runs = grid_runs(sigma=0.0)
    spec = builtin_spec("chinchilla")
    for fn in (lsq_fit, huber_fit):
        est = fn(spec, runs)
        pred = est["E"] + est["A"] / runs["N"] ** est["alpha_N"] + est["B"] / runs["D"] ** est["alpha_D"]
        assert np.max(np.abs(pred / runs["loss"] - 1)) < 2e-3, fn.__name__


def _old_random_starts(spec, runs, seed, n=32):
    """The starts of the former Huber fit: ``n`` points drawn with ``seed`` from its grid (exponents 0.05..2,
    other positive parameters e^0..e^25, shifted down by the log of the target's median when below 1)."""
    from itertools import product

    from bayes_scaling.models import spec_model as sm

    exps = spec.exponents()
    shift = min(0.0, np.log(float(np.median(runs[spec.target]))))
    axes = [np.log([0.05, 0.5, 1.0, 1.5, 2.0]) if p.name in exps else np.arange(0.0, 26.0, 5.0) + shift
            for p in spec.parameters.values() if p.fixed is None]
    assert all(p.domain == "positive" for p in spec.parameters.values()) and sm is not None
    grid = np.array(list(product(*axes)))
    return grid[np.random.default_rng(seed).choice(len(grid), n, replace=False)]


def test_huber_grid_deterministic_recovers_truth_never_worse_than_random_starts():
    from bayes_scaling.analysis.backtest import huber_grid, huber_objective

    spec = builtin_spec("chinchilla")
    runs = grid_runs(seed=12, sigma=0.01, n_sizes=6, n_data=5)
    names, grid = huber_grid(spec, runs)
    assert names == ["E", "A", "B", "alpha_N", "alpha_D"] and len(grid) <= 50000
    assert np.array_equal(grid, huber_grid(spec, runs)[1])
    # Epoch's grid is in it: e in {-1, ..., 1.5} (+ log of the median loss), a, b in {0, 5, ..., 25}, 0.05..2
    for pt in ([-1.0 + np.log(np.median(runs["loss"])), 25.0, 0.0, np.log(0.5), np.log(2.0)],):
        assert np.any(np.all(np.isclose(grid, pt), axis=1))
    a, b = huber_fit(spec, runs, seed=0), huber_fit(spec, runs, seed=123)
    assert a == b                                            # deterministic: no random starts
    assert abs(a["alpha_N"] - TRUTH["alpha_N"]) < 0.05 and abs(a["alpha_D"] - TRUTH["alpha_D"]) < 0.1
    assert abs(a["E"] - TRUTH["E"]) < 0.1
    new = huber_objective(spec, runs, a)
    for seed in range(1):                                    # the former fit: best of 32 random starts (the
        # slow test below: six seeds on real data)
        old = huber_objective(spec, runs, huber_fit(spec, runs, starts=_old_random_starts(spec, runs, seed)))
        assert new <= old * (1 + 1e-8) + 1e-15, (seed, new, old)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "muennighoff2023_datablations").exists(),
                    reason="shared real data (../shared/data/muennighoff2023_datablations) is absent")
def test_huber_on_real_data_never_worse_than_random_starts():
    """Muennighoff et al.'s contour grid (the benchmark's split: fit on C <= 1e20): the former best-of-32-random
    fit's held-out error ranged from 5.0% to 9.9% over seeds 0..5; the grid fit reaches the lowest objective."""
    import sys

    from bayes_scaling.analysis.backtest import huber_objective

    sys.path.insert(0, str(REPO / "benchmarks"))
    import backtest_real

    d = backtest_real.muennighoff()
    train = d[d["C"] <= 1e20]
    spec = builtin_spec("chinchilla")
    new = huber_objective(spec, train, huber_fit(spec, train))
    for seed in range(6):
        old = huber_objective(spec, train, huber_fit(spec, train, starts=_old_random_starts(spec, train, seed)))
        assert new <= old * (1 + 1e-8), (seed, new, old)


# ---- backtests on simulated data ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_backtest():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return backtest(grid_runs(seed=4), "chinchilla", "C > 1e20", seed=1, draws=250, tune=250, chains=2)


def test_backtest_well_specified(sim_backtest, tmp_path):
    res = sim_backtest
    assert isinstance(res, BacktestResult)
    tab = res.table.set_index("method")
    assert set(tab.index) == {"bayes", "bayes(no discrepancy)", "bayes+discrepancy", "lsq", "huber"}
    assert tab.loc["bayes", "n_test"] == 13
    # "bayes": the default predictions (the spec's discrepancy, tau 0.059 per decade outside the data)
    assert tab.loc["bayes", "tau"] == pytest.approx(0.059) == res.info["tau_default"]
    assert tab.loc["bayes", "width90"] > tab.loc["bayes(no discrepancy)", "width90"]
    # truth known, law right, noise 1%: held-out intervals cover, and the median is as good as the baselines
    assert tab.loc["bayes(no discrepancy)", "coverage95"] >= 0.75 and tab.loc["bayes", "coverage90"] >= 0.9
    assert tab.loc["bayes", "median_rel_error"] < 0.02
    assert tab.loc["bayes", "median_rel_error"] <= 2 * tab.loc["lsq", "median_rel_error"] + 0.005
    assert np.isnan(tab.loc["lsq", "coverage90"]) and np.isfinite(tab.loc["bayes", "crps"])
    assert 0 <= res.info["splits"][0]["tau"] < 0.1
    summary, points = res.to_csv(tmp_path / "bt")
    assert pd.read_csv(summary).shape[0] == 5 and len(pd.read_csv(points)) == 5 * 13
    import xarray as xr

    nc = res.to_netcdf(tmp_path / "bt" / "bt.nc")
    tree = xr.open_datatree(nc)
    assert "points" in tree.children and "summary" in tree.children
    fig = res.plot_calibration()
    assert len(fig.axes[0].lines) >= 3
    # a tau pooled over nested backtests, and rescoring with a wider discrepancy: wider intervals, same median
    tau = pooled_tau([res, res])
    assert tau == pytest.approx(res.info["splits"][0]["tau"])
    # the nested fits' convergence, the worst over them, beside the split's fit's
    nd = res.info["splits"][0]["nested_diagnostics"]
    assert len(nd) == 2
    assert tab.loc["bayes", "nested_rhat_max"] == max(d["rhat_max"] for d in nd)
    assert tab.loc["bayes", "nested_divergences"] == sum(d["divergences"] for d in nd)
    assert np.isnan(tab.loc["huber", "nested_rhat_max"])
    wide = res.rescore(0.5, "wide").table.set_index("method")
    assert wide.loc["wide", "width90"] >= wide.loc["bayes", "width90"] >= wide.loc["bayes(no discrepancy)", "width90"]
    assert wide.loc["wide", "coverage90"] >= wide.loc["bayes(no discrepancy)", "coverage90"]


@pytest.mark.slow
def test_backtest_misspecified_discrepancy_restores_coverage():
    """Runs from a law with an extra term (loss falls by 0.02 per decade of D beyond the Chinchilla law),
    fitted by the plain Chinchilla law and extrapolated in compute: the plain posterior is over-confident;
    the default predictions (the spec's discrepancy) and the nested discrepancy widen the intervals of the runs
    outside the data and cover them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(grid_runs(seed=5, sigma=0.005, extra=0.02, n_sizes=10, n_data=8), "chinchilla",
                       "C > 3e19", seed=2, draws=300, tune=300, chains=2)
    tab = res.table.set_index("method")
    # the default predictions cover the held-out runs at least as often as the posterior predictive alone (here
    # the fitted law absorbs much of the extra term over this range: test_discrepancy.py extrapolates further)
    assert tab.loc["bayes", "coverage90"] >= max(0.9, tab.loc["bayes(no discrepancy)", "coverage90"])
    assert tab.loc["bayes", "coverage95"] >= tab.loc["bayes(no discrepancy)", "coverage95"]
    assert tab.loc["bayes", "width90"] > tab.loc["bayes(no discrepancy)", "width90"]
    assert tab.loc["bayes+discrepancy", "coverage90"] >= tab.loc["bayes(no discrepancy)", "coverage90"]
    assert tab.loc["bayes+discrepancy", "width90"] > tab.loc["bayes(no discrepancy)", "width90"]
    assert res.info["splits"][0]["tau"] > 0


def test_backtest_reports_convergence_and_uses_the_predictions_distance():
    """Each split's fit reports R-hat, bulk ESS and divergences in the tables (bayes methods; NaN for the point
    fits), and the distance outside the data is the one ``Fit.predict`` uses (the law's inputs and C = 6 N D),
    not the holdout's column: here the holdout is along a column the law does not know (a run's rank)."""
    runs = grid_runs(seed=8, n_sizes=5, n_data=4).sort_values("C").reset_index(drop=True)
    runs["rank"] = 10.0 ** np.arange(1, len(runs) + 1)      # a column far from C: decades of its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(runs, "chinchilla", "rank > 1e16", seed=2, draws=100, tune=100, chains=2, discrepancy="none")
    tab = res.table.set_index("method")
    for c in ("rhat_max", "ess_bulk_min", "divergences"):
        assert np.isfinite(tab.loc["bayes", c]) and np.isnan(tab.loc["huber", c]), c
        assert np.isfinite(res.points.loc[res.points["method"] == "bayes", c]).all()
    assert tab.loc["bayes", "rhat_max"] >= 1.0 - 1e-9 and tab.loc["bayes", "ess_bulk_min"] > 0
    assert tab.loc["bayes", "divergences"] >= 0 and tab.loc["bayes", "divergences"] == int(tab.loc["bayes", "divergences"])
    sp = res.info["splits"][0]["diagnostics"]
    assert sp["rhat_max"] == tab.loc["bayes", "rhat_max"]
    train, test = runs[runs["rank"] <= 1e16], runs[runs["rank"] > 1e16]
    expected = distance_outside(train, test, ["N", "D"])
    bayes = res.points[res.points["method"] == "bayes"]
    np.testing.assert_allclose(bayes["outside"], expected)
    assert not np.allclose(expected, distance_outside(train, test, ["N", "D"], ["rank"]))
    # rescoring keeps the split's diagnostics
    wide = res.rescore(0.1, "wide").table.set_index("method")
    assert wide.loc["wide", "rhat_max"] == tab.loc["bayes", "rhat_max"]


def test_backtest_warns_once_per_split_that_did_not_converge():
    """A split whose fit or nested fits miss R-hat <= 1.01, bulk ESS >= 400 or no divergence warns, naming the
    split, the fit and what failed; a converged split is silent."""
    from bayes_scaling.analysis.backtest import _warn_convergence, nested_summary
    from bayes_scaling.errors import ConvergenceWarning

    good = {"rhat_max": 1.002, "ess_bulk_min": 900.0, "divergences": 0.0}
    bad = {"rhat_max": 1.04, "ess_bulk_min": 80.0, "divergences": 3.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_convergence("C > 1e20", good, [good, good])
    with pytest.warns(ConvergenceWarning, match=r"split C > 1e20: nested fit 2: R-hat 1.040 > 1.01, bulk ESS 80 < "
                                                r"400, 3 divergences") as rec:
        _warn_convergence("C > 1e20", good, [good, bad])
    assert len(rec) == 1 and "its fit" not in str(rec[0].message)
    with pytest.warns(ConvergenceWarning, match="its fit: 3 divergences"):
        _warn_convergence("s", {**good, "divergences": 3.0}, [])
    assert nested_summary([good, bad]) == {"nested_rhat_max": 1.04, "nested_ess_bulk_min": 80.0,
                                           "nested_divergences": 3.0}
    assert all(np.isnan(v) for v in nested_summary([]).values())
    # the fits' whitening is a setting of the backtest and of learn_discrepancy, checked before any fit
    from bayes_scaling.analysis.backtest import learn_discrepancy

    runs = grid_runs(seed=8, n_sizes=3, n_data=3)
    for call in (lambda: backtest(runs, "chinchilla", "C > 1e20", whiten="diagonal"),
                 lambda: learn_discrepancy(runs, "chinchilla", whiten="diagonal")):
        with pytest.raises(ConfigError, match="whiten must be one of auto, laplace, none, got 'diagonal'"):
            call()


# ---- the command ----------------------------------------------------------------------------------------------
def test_cli_bad_input_one_line(tmp_path, capsys):
    from bayes_scaling.cli import main

    csv = tmp_path / "runs.csv"
    grid_runs().to_csv(csv, index=False)
    out = tmp_path / "out"
    cases = [("Q > 1", "unknown column(s) Q"), ("C > 1e40", "empty test set"), ("C > 0", "empty training set"),
             ("os.system('x')", "Call is not a condition"), ("rolling:Z", "unknown column Z")]
    with pytest.raises(SystemExit) as stop:     # every --tau is one option (cli.cmdoptions.tau), checked by argparse
        main(["backtest", str(csv), "--holdout", "C > 1e20", "--out", str(out), "--tau", "-1"])
    assert stop.value.code == 2 and "--tau: expected a finite number in [0, 10]" in capsys.readouterr().err
    for holdout, message in cases:
        rc = main(["backtest", str(csv), "--model", "chinchilla", "--holdout", holdout, "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, (holdout, err)
    assert not out.exists()


def test_cli_backtest_writes_outputs(tmp_path, capsys):
    from bayes_scaling.cli import main

    csv = tmp_path / "runs.csv"
    grid_runs(seed=6).to_csv(csv, index=False)
    spec = REPO / "models" / "laws" / "chinchilla.toml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["backtest", str(csv), "--model", str(spec), "--holdout", "C > 1e20", "--out", str(tmp_path / "o"),
                   "--draws", "150", "--tune", "150", "--discrepancy", "none", "--tau", "0.05"])
    assert rc == 0, capsys.readouterr().err
    assert "coverage90" in capsys.readouterr().out
    for name in ("backtest_summary.csv", "backtest_points.csv", "backtest.nc", "calibration.png"):
        assert (tmp_path / "o" / name).stat().st_size > 0
    summary = pd.read_csv(tmp_path / "o" / "backtest_summary.csv").set_index("method")
    assert summary.loc["bayes+discrepancy(tau)", "width90"] > summary.loc["bayes(no discrepancy)", "width90"]
    assert summary.loc["bayes+discrepancy(tau)", "tau"] == pytest.approx(0.05)


# ---- real data ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not (SHARED_DATA / "porian2024_isoflops" / "isoflop_points.csv").exists(),
                    reason="shared real data (../shared/data/porian2024_isoflops) is absent")
def test_real_porian_backtest_runs_and_scores():
    d = pd.read_csv(SHARED_DATA / "porian2024_isoflops" / "isoflop_points.csv")
    d = d[(d["dataset"] == "rw") & (d["hparams"] == "tuned") & (d["warmup"] == "short")
          & (d["param_count"] == "standard") & (d["loss_type"] == "val")]
    d = d.rename(columns={"D_tokens": "D", "flops": "C"})
    d = d[d["D"] >= d["N"]][["N", "D", "C", "loss"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(d, "chinchilla", "C > 6.4e18", seed=1, draws=200, tune=200, chains=2, discrepancy="none")
    tab = res.table.set_index("method")
    assert tab.loc["bayes", "n_test"] == int((d["C"] > 6.4e18).sum()) > 0
    # the law extrapolates one to two budgets with errors of a few percent, as the point fits do (measured:
    # 5.6% for the posterior median, seed 1); the intervals' coverage is a fraction
    for method in ("bayes", "lsq", "huber"):
        assert tab.loc[method, "median_rel_error"] < 0.12, method
    assert 0.0 <= tab.loc["bayes", "coverage90"] <= 1.0 and tab.loc["bayes", "width90"] > 0


def test_predict_with_discrepancy_widens_outside_only():
    import bayes_scaling as bs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(grid_runs(seed=7), "chinchilla", seed=3, draws=150, tune=150, chains=2, progressbar=False,
                     log_likelihood=False)
    pts = pd.DataFrame({"N": [1e8, 3e10], "D": [1e10, 3e12]})     # inside; one and one order outside
    plain = fit.predict(pts, kind="observation", ci_prob=0.9, seed=1, discrepancy=0)
    wide = fit.predict(pts, kind="observation", ci_prob=0.9, seed=1, discrepancy=0.05)
    assert wide["outside"].tolist() == pytest.approx([0.0, 2.0])      # one decade in N and D: two in C = 6 N D
    assert np.allclose(wide.loc[0, ["lo", "hi"]], plain.loc[0, ["lo", "hi"]])
    assert (wide.loc[1, "hi"] - wide.loc[1, "lo"]) > 1.5 * (plain.loc[1, "hi"] - plain.loc[1, "lo"])
    with pytest.raises(ValueError, match="discrepancy"):
        fit.predict(pts, discrepancy=-1.0)
