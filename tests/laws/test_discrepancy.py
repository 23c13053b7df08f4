"""The law's discrepancy outside the data, the default of every prediction (issue 12): the distance (one
definition), the spec's [discrepancy] table, tau = 0 giving the old intervals, the variance split, the coverage
of a misspecified law's truth, and the tables that carry it (compute-efficient sizes, forecasts, forecasting)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import MISFIT_TRUTH as TRUTH
from helpers import misfit_loss as true_loss
from helpers import misfit_runs as runs

from bayes_scaling.errors import ConfigError
from bayes_scaling.laws.discrepancy import (
    DEFAULT_TAU,
    Discrepancy,
    distance_outside,
    outside_table,
    robust_sd,
    signed_outside,
    variance_split,
    widen,
)
from bayes_scaling.laws.spec import LawSpec, builtin_spec

REPO = Path(__file__).resolve().parents[2]

@pytest.fixture(scope="module")
def misfit():
    """The plain Chinchilla law fitted to runs of a law with an extra term (misspecified outside the data)."""
    import bayes_scaling as bs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bs.fit(runs(seed=1), "chinchilla", seed=2, draws=200, tune=200, chains=2, progressbar=False,
                      log_likelihood=False)


# ---- the distance ---------------------------------------------------------------------------------------------
def test_distance_definition():
    assert signed_outside([1e3, 1e7, 1e1, np.nan], [1e2, 1e5]).tolist()[:3] == [0.0, 2.0, -1.0]
    # zeros among the fitted values (zero-shot D = 0): the range reaches 0, decades above it
    np.testing.assert_allclose(signed_outside([0, 50, 2048e2, 2048e3], [0, 200, 204800]), [0, 0, 0, 1.0])
    # a column that is not positive: multiples of the range's width
    np.testing.assert_allclose(signed_outside([-3.0, 5.0, 0.5], [0.0, 1.0]), [-3.0, 4.0, 0.0])
    data = pd.DataFrame({"N": [1e7, 1e9], "D": [1e9, 1e11], "C": [1.0, 2.0]})
    pts = pd.DataFrame({"N": [1e9, 1e10, 1e9], "D": [1e11, 1e9, 1e12], "C": [5.0, 5.0, 5.0]})
    t = outside_table(data, pts, ["D", "N"])
    # compute C = 6 N D from N and D (a given column C is not used): 6e20 lies inside, 6e19 too, 6e21 one out
    assert list(t.columns) == ["outside_D", "outside_N", "outside_C", "outside"]
    np.testing.assert_allclose(t["outside_C"], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(t["outside"], [0.0, 1.0, 1.0])
    # a run at a new budget inside the ranges of N and D is outside in C
    np.testing.assert_allclose(distance_outside(pd.DataFrame({"N": [1e7, 1e9], "D": [1e11, 1e9]}),
                                                pd.DataFrame({"N": [1e9], "D": [1e11]}), ["N", "D"]),
                               [np.log10(6e20 / 6e18)])
    # a law without N and D has no compute column
    assert list(outside_table(data, pts, ["N"]).columns) == ["outside_N", "outside"]


def test_one_implementation_of_the_distance(misfit):
    from bayes_scaling.analysis import backtest, best

    assert backtest.distance_outside is distance_outside
    pts = pd.DataFrame({"N": [1e8, 1e10, 3e9], "D": [1e10, 1e10, 1e12]})
    np.testing.assert_allclose(misfit.outside(pts)["outside"], distance_outside(misfit.data, pts, ["D", "N"]))
    np.testing.assert_allclose(best._outside(misfit.data, ["D", "N"], pts), misfit.outside(pts)["outside"])
    np.testing.assert_allclose(backtest._distance(misfit, pts), misfit.outside(pts)["outside"])


def test_the_distance_functions_agree():
    """One formula (outside_range) behind Fit.outside / outside_table, signed_outside, the transfer predictions'
    orders_outside and extrapolation table: the same numbers for the same data and points."""
    from types import SimpleNamespace

    from bayes_scaling.analysis import predictions
    from bayes_scaling.laws.discrepancy import outside_range

    used = pd.DataFrame({"N": [1e6, 3e7, 1e9], "D_F": [1e5, 1e6, 1e8]})
    pts = pd.DataFrame({"N": [1e5, 1e8, 1.75e11, 2e9], "D_F": [300.0, 1e7, 1e9, 1e5]})
    table = outside_table(used, pts, ["N", "D_F"])
    for c in ("N", "D_F"):
        lo, hi = used[c].min(), used[c].max()
        np.testing.assert_allclose(predictions.orders_outside(pts[c].to_numpy(), lo, hi), table[f"outside_{c}"])
        np.testing.assert_allclose(signed_outside(pts[c], used[c]), table[f"outside_{c}"])
        np.testing.assert_allclose(outside_range(np.log10(pts[c].to_numpy()), lo, hi, log10=True),
                                   table[f"outside_{c}"])
    fake = SimpleNamespace(data=SimpleNamespace(used=used))
    ext = predictions.extrapolation(fake, N=pts["N"].to_numpy(), D_F=pts["D_F"].to_numpy())
    np.testing.assert_allclose(ext["orders_outside"], np.r_[table["outside_N"], table["outside_D_F"]])
    np.testing.assert_allclose(table["outside"], np.abs(table[["outside_N", "outside_D_F"]]).max(axis=1))
    import xarray as xr

    da = xr.DataArray(pts["N"].to_numpy(), dims="N")
    np.testing.assert_allclose(predictions.orders_outside(da, 1e6, 1e9).values, table["outside_N"])


# ---- the spec's [discrepancy] ------------------------------------------------------------------------------------
def test_spec_discrepancy_table_default_and_errors():
    spec = builtin_spec("chinchilla")
    assert spec.discrepancy.tau == DEFAULT_TAU == 0.059 and "Porian" in spec.discrepancy.source
    assert "discrepancy" not in spec.to_dict()          # the default: fit files keep their hash
    doc = spec.to_dict()
    doc["discrepancy"] = {"tau": 0.0}
    off = LawSpec.from_dict(doc)
    assert off.discrepancy.tau == 0.0 and off.hash() != spec.hash()
    assert LawSpec.from_dict(off.to_dict()).discrepancy == off.discrepancy
    assert "[discrepancy]\ntau = 0.0" in off.to_toml()
    for bad, msg in (({"tau": -1}, ">= 0"), ({"tau": "x"}, ">= 0"), ({}, "needs tau"), ({"tau": 0.1, "k": 1}, "k"),
                     (0.1, "must be a table")):
        doc["discrepancy"] = bad
        with pytest.raises(ConfigError, match=msg):
            LawSpec.from_dict(doc)
    assert Discrepancy(0.02, "mine").to_dict() == {"tau": 0.02, "source": "mine"}


# ---- tau = 0 gives the old intervals; the default only widens outside ---------------------------------------------
def test_tau_zero_gives_the_old_intervals(misfit):
    post = misfit.posterior
    pts = pd.DataFrame({"N": [3e8, 1e10, 1e11], "D": [3e10, 1e12, 1e13]})
    # the old mean: the law evaluated at each posterior draw, nothing else
    p = {k: post[k].values.reshape(-1, 1) for k in TRUTH}
    law = p["E"] + p["A"] / pts["N"].to_numpy() ** p["alpha_N"] + p["B"] / pts["D"].to_numpy() ** p["alpha_D"]
    lo, med, hi = np.quantile(law, [0.05, 0.5, 0.95], axis=0)
    old = misfit.predict(pts, kind="mean", ci_prob=0.9, discrepancy=0)
    np.testing.assert_allclose(old[["lo", "median", "hi"]].to_numpy().T, [lo, med, hi], rtol=1e-12)
    assert (old["share_discrepancy"] == 0).all() and np.allclose(old["share_parameters"], 1.0)
    # a spec with tau = 0 gives the same; so does False
    doc = misfit.spec.to_dict()
    doc["discrepancy"] = {"tau": 0}
    from bayes_scaling.inference.fit import Fit

    off = Fit(misfit.tree, misfit.data, LawSpec.from_dict(doc))
    for kind in ("mean", "observation"):
        a = misfit.predict(pts, kind=kind, seed=4, discrepancy=0)["loss"].values
        np.testing.assert_array_equal(a, off.predict(pts, kind=kind, seed=4)["loss"].values)
        np.testing.assert_array_equal(a, misfit.predict(pts, kind=kind, seed=4, discrepancy=False)["loss"].values)
        # the default: the same noise, then the discrepancy; inside the data (d = 0) nothing changes
        default = misfit.predict(pts, kind=kind, seed=4)["loss"].values.reshape(-1, 3)
        np.testing.assert_array_equal(default[:, 0], a.reshape(-1, 3)[:, 0])
        assert robust_sd(np.log(default[:, 2])) > 3 * robust_sd(np.log(a.reshape(-1, 3)[:, 2]))
    with pytest.raises(ValueError, match="discrepancy"):
        misfit.predict(pts, discrepancy=-0.1)


# ---- the split ---------------------------------------------------------------------------------------------------
def test_variance_split_sums_and_grows_with_distance(misfit):
    pts = pd.DataFrame({"N": [1e9, 3e9, 1e10, 1e11, 1e12], "D": [1e11, 3e11, 1e12, 1e13, 1e14]})
    for kind in ("mean", "observation"):
        t = misfit.predict(pts, kind=kind, ci_prob=0.9, seed=5)
        shares = t[["share_parameters", "share_noise", "share_discrepancy"]]
        np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-12)
        assert t["share_discrepancy"].iloc[0] == 0.0 and t["outside"].iloc[0] == 0.0
        assert np.all(np.diff(t["outside"]) > 0) and np.all(np.diff(t["share_discrepancy"]) > 0)
        assert (t["share_noise"] == 0).all() if kind == "mean" else (t["share_noise"] > 0).all()
        np.testing.assert_allclose(t["sd_discrepancy"], DEFAULT_TAU * t["outside"])
        # the split describes the draws: the log-scale spread is the root of the summed variances
        draws = misfit.predict(pts, kind=kind, seed=5)["loss"].values.reshape(-1, len(pts))
        total = np.sqrt(t["sd_parameters"] ** 2 + t["sd_noise"] ** 2 + t["sd_discrepancy"] ** 2)
        np.testing.assert_allclose(robust_sd(np.log(draws)), total, rtol=0.15)
    # the function itself: known components
    rng = np.random.default_rng(0)
    s = variance_split(rng.normal(0, 0.02, (20000, 1)), 0.03, np.array([1.0]), rng.normal(0, 0.01, (20000, 1)))
    np.testing.assert_allclose(s.loc[0, ["share_parameters", "share_noise", "share_discrepancy"]].astype(float),
                               np.array([4, 1, 9]) / 14, atol=0.02)
    # widen: tau = 0 or d = 0 leave the draws; otherwise log-normal spread tau * d
    ones = np.ones((20000, 2))
    assert widen(ones, np.ones(2), 0.0, rng) is ones
    w = widen(ones, np.array([0.0, 2.0]), 0.05, rng)
    assert (w[:, 0] == 1).all() and abs(np.std(np.log(w[:, 1])) - 0.1) < 0.003


# ---- coverage of a misspecified law's truth ----------------------------------------------------------------------
def test_default_intervals_cover_the_truth_of_a_misspecified_law(misfit):
    """Known truth with a term the fitted law lacks: outside the data the parameter-only intervals of the law's
    mean miss the truth; the default intervals (with the discrepancy) cover it."""
    N = np.repeat(np.geomspace(2e9, 1e11, 5), 5)
    D = np.tile(np.geomspace(2e11, 1e13, 5), 5)
    pts = pd.DataFrame({"N": N, "D": D})
    truth = true_loss(N, D)
    plain = misfit.predict(pts, kind="mean", ci_prob=0.9, discrepancy=0)
    default = misfit.predict(pts, kind="mean", ci_prob=0.9, seed=6)
    cover = lambda t: np.mean((truth >= t["lo"]) & (truth <= t["hi"]))  # noqa: E731
    assert (default["outside"] > 0).all()
    assert cover(plain) < 0.5, cover(plain)
    assert cover(default) >= 0.9, cover(default)
    # and the well-specified law's truth is covered by the parameter-only intervals already
    assert np.median(np.abs(default["median"] / truth - 1)) < 0.05


# ---- tables that carry it ----------------------------------------------------------------------------------------
def test_compute_efficient_sizes_carry_the_discrepancy():
    import xarray as xr

    from bayes_scaling.analysis.compute import loss_law, scratch_optimum

    rng = np.random.default_rng(1)
    post = xr.Dataset({k: (("chain", "draw"), np.full((1, 400), v) * rng.uniform(0.99, 1.01, (1, 400)))
                       for k, v in TRUTH.items()}, coords={"chain": [0], "draw": np.arange(400)})
    r = runs()
    law = loss_law("chinchilla", {k: post[k].values.ravel() for k in TRUTH}, data=r)
    C = [6e18, 6e21, 6e24]          # inside the runs' compute, 1 and 4 decades beyond it
    ds = scratch_optimum(law, C, seed=1)
    assert ds.attrs["tau"] == DEFAULT_TAU
    d = ds["outside"].median(("chain", "draw")).values
    assert d[0] == 0 and 0.9 < d[1] < 1.6 and d[2] > 3.5
    share = ds["share_discrepancy"].values
    assert share[0] == 0 and 0 < share[1] < share[2] <= 1
    np.testing.assert_allclose(ds["share_parameters"] + ds["share_discrepancy"], 1.0)
    wide = lambda v: float(np.subtract(*np.quantile(np.log(v), [0.95, 0.05])))  # noqa: E731
    assert wide(ds["loss"].sel(C=6e24)) > 3 * wide(ds["loss_without_discrepancy"].sel(C=6e24))
    np.testing.assert_array_equal(ds["loss"].sel(C=6e18), ds["loss_without_discrepancy"].sel(C=6e18))
    off = scratch_optimum(law, C, discrepancy=0)
    np.testing.assert_array_equal(off["loss"], off["loss_without_discrepancy"])
    # given parameters alone: no runs, no distance, no discrepancy (said so)
    bare = scratch_optimum("chinchilla", C, TRUTH)
    assert np.isnan(bare["outside"]).all() and bare.attrs["tau"] == 0.0
    # forecasting tables read the split and the distance
    from bayes_scaling.output.forecasting import platform_cdf, quantiles

    q = quantiles(ds.sel(C=6e24), [0.5], var="loss")
    assert q.loc[0, "share_discrepancy"] == pytest.approx(share[2]) and q.loc[0, "outside"] > 3.5
    assert platform_cdf(ds.sel(C=6e24), 1.0, 3.0, var="loss").to_dict()["split"]["tau"] == DEFAULT_TAU


def test_prediction_draws_record_distance_and_split_for_forecasting(misfit):
    from bayes_scaling.output.forecasting import quantiles

    pts = pd.DataFrame({"N": [1e8, 1e11], "D": [1e10, 1e13]})
    ds = misfit.predict(pts, kind="observation", seed=3)
    table = misfit.predict(pts, kind="observation", ci_prob=0.9, seed=3)
    q = quantiles(ds["loss"].sel(point=1), [0.05, 0.95])
    assert q.loc[0, "outside_C"] == pytest.approx(table.loc[1, "outside_C"]) == pytest.approx(4.0)
    assert q.loc[0, "share_discrepancy"] == pytest.approx(table.loc[1, "share_discrepancy"])
    assert q.loc[0, "tau"] == DEFAULT_TAU


def test_transfer_law_discrepancy_is_opt_in_and_split():
    import bayes_scaling as bs
    from bayes_scaling.analysis.predictions import predict
    from bayes_scaling.analysis.timeline import forecast
    from bayes_scaling.inference.fit import as_spec_fit

    fit = bs.load(REPO / "tests" / "fixtures" / "v0.1_transfer.nc")
    # no tau is calibrated for the transfer law: its spec and its law-spec view default to none
    assert builtin_spec("transfer").discrepancy.tau == 0 == as_spec_fit(fit).spec.discrepancy.tau
    plain = predict(fit, N=[1e6, 1e10], D_F=[1e5, 1e9], seed=1)
    assert plain.attrs["tau"] == 0 and float(plain["share_discrepancy"].max()) == 0.0
    wide = predict(fit, N=[1e6, 1e10], D_F=[1e5, 1e9], seed=1, discrepancy=0.1)
    inside = dict(N=1e6, D_F=1e5)
    np.testing.assert_array_equal(wide["D_T"].sel(**inside), plain["D_T"].sel(**inside))
    sd = wide["share_discrepancy"].sel(pretraining="text")
    assert float(sd.sel(**inside)) == 0.0 and float(sd.sel(N=1e10, D_F=1e9)) > 0.5
    a = forecast(fit, N=1e10, D_req=1e12, seed=1)
    b = forecast(fit, N=1e10, D_req=1e12, seed=1, discrepancy=0.1)
    np.testing.assert_array_equal(a["D_F"], b["D_F_without_discrepancy"])
    assert (a["share_discrepancy"] == 0).all() and (b["share_discrepancy"] > 0.5).all()


def test_cli_predict_at_reports_distance_and_split(misfit, tmp_path, capsys):
    from bayes_scaling.cli import main

    path = misfit.save(tmp_path / "fit.nc")
    pd.DataFrame({"N": [1e8, 1e11], "D": [1e10, 1e13]}).to_csv(tmp_path / "p.csv", index=False)
    assert main(["predict", str(path), "--at", str(tmp_path / "p.csv"), "--csv"]) == 0
    from io import StringIO

    t = pd.read_csv(StringIO(capsys.readouterr().out))
    assert {"outside_C", "share_parameters", "share_discrepancy", "tau"} <= set(t.columns)
    assert t["tau"].tolist() == [DEFAULT_TAU] * 2 and t.loc[1, "share_discrepancy"] > 0.5
    assert main(["predict", str(path), "--at", str(tmp_path / "p.csv"), "--csv", "--no-discrepancy"]) == 0
    t0 = pd.read_csv(StringIO(capsys.readouterr().out))
    assert (t0["tau"] == 0).all() and (t0["share_discrepancy"] == 0).all()
    assert (t0["hi"] - t0["lo"]).iloc[1] < (t["hi"] - t["lo"]).iloc[1]
