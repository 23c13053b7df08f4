"""Compute-efficient model sizes: closed forms (Chinchilla, Kaplan), optimality, the fine-tuned optimum, the
smallest model reaching a loss, compute saved; loss-law inputs, alignment seeds and bad inputs."""

from __future__ import annotations

import doctest
import types
import warnings

import numpy as np
import pytest
import xarray as xr
from helpers import table1_fit

from bayes_scaling import laws
from bayes_scaling.analysis import compute
from bayes_scaling.analysis.compute import (
    SCRATCH,
    EdgeWarning,
    compute_frontier,
    compute_saved,
    finetune_optimum,
    loss_law,
    scratch_optimum,
    smallest_model,
)
from bayes_scaling.errors import BayesScalingError, FitFileError

EPOCH = {"A": 482.0, "B": 2085.0, "E": 1.817, "alpha_N": 0.348, "alpha_D": 0.366}
KAPLAN = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
BUDGETS = np.logspace(18, 26, 5)


@pytest.fixture(scope="module")
def t1():
    return table1_fit(chains=1, draws=3)


def test_doctests():
    assert doctest.testmod(compute).failed == 0


def test_scratch_optimum_matches_chinchilla_closed_form():
    ds = scratch_optimum("chinchilla", BUDGETS, EPOCH)
    assert ds["N_opt"].dims == ("chain", "draw", "C") and ds["N_opt"].shape == (1, 1, 5)
    np.testing.assert_allclose(ds["N_opt"].values.ravel(), laws.chinchilla_optimal_N(BUDGETS, **{
        k: EPOCH[k] for k in ("A", "B", "alpha_N", "alpha_D")}), rtol=1e-5)
    np.testing.assert_allclose(ds["N_opt"] * ds["D_opt"] * 6, np.broadcast_to(BUDGETS, (1, 1, 5)), rtol=1e-12)
    assert int(ds["at_edge"].sum()) == 0


def test_scratch_optimum_vectorised_over_draws():
    rng = np.random.default_rng(0)
    draws = {"A": rng.uniform(300, 700, 40), "B": rng.uniform(1000, 5000, 40), "E": 1.8,
             "alpha_N": rng.uniform(0.3, 0.4, 40), "alpha_D": rng.uniform(0.3, 0.42, 40)}
    ds = scratch_optimum("chinchilla", [1e20, 1e24], draws)
    assert ds["N_opt"].shape == (1, 40, 2)
    expect = laws.chinchilla_optimal_N(np.array([1e20, 1e24])[None, :], draws["A"][:, None], draws["B"][:, None],
                                       draws["alpha_N"][:, None], draws["alpha_D"][:, None])
    np.testing.assert_allclose(ds["N_opt"].values[0], expect, rtol=1e-5)


def test_scratch_optimum_kaplan_closed_form_and_optimality():
    ds = scratch_optimum("kaplan", BUDGETS, KAPLAN)
    # minimise (N_c/N)**r + 6 N D_c / C, r = alpha_N / alpha_D:  N = (r N_c**r C / (6 D_c))**(1/(r+1))
    r = KAPLAN["alpha_N"] / KAPLAN["alpha_D"]
    expect = (r * KAPLAN["N_c"] ** r * BUDGETS / (6 * KAPLAN["D_c"])) ** (1 / (r + 1))
    np.testing.assert_allclose(ds["N_opt"].values.ravel(), expect, rtol=1e-5)
    N = ds["N_opt"].values.ravel()
    for f in (0.9, 1.1):
        worse = laws.kaplan_loss(N * f, BUDGETS / (6 * N * f), **KAPLAN)
        assert np.all(worse > ds["loss"].values.ravel())


def test_finetune_without_transfer_is_the_scratch_optimum():
    fit = table1_fit(chains=1, draws=2, k_text=1e-30)      # D_T ~ 0 for text
    ft = finetune_optimum("chinchilla", fit, BUDGETS, pretraining="text", params=EPOCH, D_F_min=1.0)
    sc = scratch_optimum("chinchilla", BUDGETS, EPOCH)
    np.testing.assert_allclose(ft["N_opt"].values[:, :, 0, :], np.broadcast_to(sc["N_opt"].values, (1, 2, 5)),
                               rtol=1e-5)


def test_finetune_table1_sits_at_the_smallest_D_F(t1):
    # beta > alpha: spending fine-tuning compute on parameters wins, down to D_F_min (flagged, warned)
    with pytest.warns(EdgeWarning, match="D_F_min"):
        ft = finetune_optimum("chinchilla", t1, [1e20, 1e22], params=EPOCH, seed=0)
    assert ft["N_opt"].dims == ("chain", "draw", "pretraining", "C") and ft["N_opt"].shape == (1, 3, 2, 2)
    np.testing.assert_allclose(ft["D_F_opt"].values, 1e5, rtol=1e-9)          # smallest D_F in the data
    assert bool(ft["at_edge"].all())
    np.testing.assert_allclose(ft["N_orders_outside"].values[0, 0, 0], np.log10([1e20 / 6e5 / 1e9,
                                                                                 1e22 / 6e5 / 1e9]))
    with pytest.warns(EdgeWarning):
        ft3 = finetune_optimum("chinchilla", t1, [1e20], params=EPOCH, D_F_min=1e3)
    np.testing.assert_allclose(ft3["D_F_opt"].values, 1e3, rtol=1e-9)
    # pre-training lowers the loss at equal compute
    sc = scratch_optimum("chinchilla", [1e20, 1e22], EPOCH)
    assert np.all(ft["loss"].values < sc["loss"].values.ravel())


def test_frontier_rows_and_shapes(t1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeWarning)
        fr = compute_frontier("chinchilla", t1, BUDGETS, params=EPOCH, seed=0)
    assert list(fr["pretraining"].values) == [SCRATCH, "text", "text+code"]
    assert fr["loss"].shape == (1, 3, 3, 5)
    sc = scratch_optimum("chinchilla", BUDGETS, EPOCH)
    np.testing.assert_allclose(fr["N_opt"].sel(pretraining=SCRATCH).values[0, 0], sc["N_opt"].values.ravel())
    assert np.all(np.diff(fr["loss"].values, axis=-1) < 0)            # the frontier falls with compute


def test_smallest_model_closed_form_and_residual(t1):
    target, D_F = np.array([2.6, 3.0]), np.array([1e6, 1e8])
    with pytest.warns(EdgeWarning, match="never reach"):      # from scratch with 1e6 characters cannot reach 2.6
        ds = smallest_model("chinchilla", t1, target, D_F, params=EPOCH, seed=0)
    assert ds["N_min"].dims == ("chain", "draw", "pretraining", "target_loss", "D_F")
    # from scratch: A / N**a = L - E - B / D**b
    gap = target[:, None] - EPOCH["E"] - EPOCH["B"] / D_F[None, :] ** EPOCH["alpha_D"]
    with np.errstate(invalid="ignore"):
        expect = np.where(gap > 0, (EPOCH["A"] / gap) ** (1 / EPOCH["alpha_N"]), np.nan)
    got = ds["N_min"].sel(pretraining=SCRATCH).values[0, 0]
    np.testing.assert_allclose(got, expect, rtol=1e-9)
    assert (ds["status"].sel(pretraining=SCRATCH).values[0, 0] == np.where(gap > 0, 0, 2)).all()
    # with pre-training: the loss at N_min equals the target
    N = ds["N_min"].sel(pretraining="text").values[0, 0]
    D_E = laws.effective_data(D_F[None, :], N, 1.9e4, 0.18, 0.38)
    np.testing.assert_allclose(laws.chinchilla_loss(N, D_E, **EPOCH), np.broadcast_to(target[:, None], (2, 2)),
                               rtol=1e-9)
    assert np.all(N[np.isfinite(got)] < got[np.isfinite(got)])      # pre-training: smaller models suffice
    with pytest.warns(EdgeWarning):
        below_E = smallest_model("chinchilla", t1, 1.5, 1e6, params=EPOCH, include_scratch=False)
    assert np.isnan(below_E["N_min"].values).all() and (below_E["status"].values == 2).all()


def test_compute_saved(t1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeWarning)
        cs = compute_saved("chinchilla", t1, [1e20, 1e22], params=EPOCH, seed=0)
    assert cs["ratio"].shape == (1, 3, 2, 2)
    assert np.all(cs["ratio"].values > 1)
    # the from-scratch model reaches the fine-tuned loss with C_scratch
    N, C = cs["N_scratch"].values, cs["C_scratch"].values
    np.testing.assert_allclose(laws.chinchilla_loss(N, C / (6 * N), **EPOCH), cs["loss"].values, rtol=1e-6)
    np.testing.assert_allclose(cs["saved"].values, C - np.array([1e20, 1e22]))
    # it is the cheapest way: the scratch optimum at C_scratch has the fine-tuned loss
    sc = scratch_optimum("chinchilla", C[0, 0, 0], EPOCH)
    np.testing.assert_allclose(sc["loss"].values.ravel(), cs["loss"].values[0, 0, 0], rtol=1e-6)
    # no transfer, no saving
    fit = table1_fit(chains=1, draws=2, k_text=1e-30)
    cs0 = compute_saved("chinchilla", fit, [1e20, 1e22], pretraining="text", params=EPOCH, D_F_min=1.0)
    np.testing.assert_allclose(cs0["ratio"].values, 1.0, rtol=1e-4)


def test_loss_law_sources_and_alignment_seeds(t1, tmp_path):
    rng = np.random.default_rng(1)
    post = xr.Dataset({k: (("chain", "draw"), np.full((1, 7), v) * rng.uniform(0.95, 1.05, (1, 7)))
                       for k, v in EPOCH.items()}, coords={"chain": [0], "draw": np.arange(7)})
    scratch_fit = types.SimpleNamespace(law="chinchilla", posterior=post)
    law = loss_law(scratch_fit)
    assert law.n_draws == 7
    fit = table1_fit(chains=2, draws=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeWarning)
        a = finetune_optimum(scratch_fit, fit, [1e21], seed=3)
        b = finetune_optimum(scratch_fit, fit, [1e21], seed=3)
        c = finetune_optimum(scratch_fit, fit, [1e21], seed=4)
    assert "7 draws resampled with replacement to 20" in a.attrs["alignment"]
    np.testing.assert_array_equal(a["loss"].values, b["loss"].values)
    assert not np.array_equal(a["loss"].values, c["loss"].values)
    # a netCDF file with the law attribute and a posterior group
    path = tmp_path / "scratch.nc"
    tree = xr.DataTree.from_dict({"posterior": post})
    tree.attrs["law"] = "chinchilla"
    tree.to_netcdf(path, engine="h5netcdf")
    assert loss_law(path).n_draws == 7


def test_loss_law_bad_inputs(t1, tmp_path):
    with pytest.raises(BayesScalingError, match="missing alpha_D"):
        loss_law("chinchilla", {k: v for k, v in EPOCH.items() if k != "alpha_D"})
    with pytest.raises(BayesScalingError, match="unknown loss law 'hoffmann'"):
        loss_law("hoffmann", EPOCH)
    with pytest.raises(BayesScalingError, match="different numbers of draws"):
        loss_law("chinchilla", dict(EPOCH, A=[480, 490], B=[2000, 2100, 2200]))
    with pytest.raises(BayesScalingError, match="alpha_N must be finite and > 0"):
        loss_law("chinchilla", dict(EPOCH, alpha_N=-0.3))
    with pytest.raises(FitFileError, match="no from-scratch loss law"):
        loss_law(t1)                                         # a transfer fit is not a loss-law fit
    path = t1.save(tmp_path / "transfer.nc")
    with pytest.raises(FitFileError, match="has no from-scratch loss law"):
        loss_law(path)
    with pytest.raises(FitFileError, match="not found"):
        loss_law(tmp_path / "missing.nc")
    post = xr.Dataset({"E": (("chain", "draw"), np.ones((1, 3)))})
    with pytest.raises(FitFileError, match="lacks A, B, alpha_N, alpha_D"):
        loss_law(types.SimpleNamespace(law="chinchilla", posterior=post))
    with pytest.raises(BayesScalingError, match="C must be finite and > 0"):
        scratch_optimum("chinchilla", [1e20, 0.0], EPOCH)
    with pytest.raises(BayesScalingError, match="below 6 \\* N \\* D_F_min"):
        finetune_optimum("chinchilla", t1, [1e3], params=EPOCH)
    with pytest.raises(BayesScalingError, match="target_loss must be finite and > 0"):
        smallest_model("chinchilla", t1, -2.0, 1e6, params=EPOCH)
    with pytest.raises(BayesScalingError, match="unknown pre-training"):
        compute_saved("chinchilla", t1, [1e20], params=EPOCH, pretraining="code")


def test_real_fit_frontier(small_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeWarning)
        fr = compute_frontier("chinchilla", small_fit, [1e19, 1e21], params=EPOCH, seed=1)
    post = small_fit.posterior
    assert fr["loss"].shape == (post.sizes["chain"], post.sizes["draw"], 3, 2)
    med = fr["loss"].median(("chain", "draw"))
    assert float(med.sel(pretraining="text", C=1e19)) < float(med.sel(pretraining=SCRATCH, C=1e19))


def test_a_saved_scratch_fit_file(tmp_path):
    import json

    import pandas as pd

    from bayes_scaling.inference.scratch import ScratchFit
    from bayes_scaling.models.losslaws import LossLawConfig

    post = xr.Dataset({k: (("chain", "draw"), np.full((2, 3), v)) for k, v in {**EPOCH, "sigma": 0.01}.items()},
                      coords={"chain": [0, 1], "draw": np.arange(3)})
    tree = xr.DataTree.from_dict({"posterior": post})
    config = LossLawConfig(law="chinchilla")
    tree.attrs.update(bayes_scaling_kind="scratch", config=json.dumps(config.to_dict()), law="chinchilla",
                      seed=0, unit="tokens")
    table = pd.DataFrame({"N": [1e8, 1e9], "D": [1e9, 1e10], "loss": [3.0, 2.5], "unit": ["tokens"] * 2})
    path = ScratchFit(tree, table, config).save(tmp_path / "scratch.nc")
    law = loss_law(path)
    assert law.law == "chinchilla" and law.n_draws == 6 and law.unit == "tokens"
    with pytest.warns(compute.UnitWarning, match="tokens but the transfer fit in characters"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EdgeWarning)
            finetune_optimum(path, table1_fit(chains=1, draws=2), [1e21])
    ds = scratch_optimum(path, [1e21])
    np.testing.assert_allclose(ds["N_opt"].values, laws.chinchilla_optimal_N(1e21, 482.0, 2085.0, 0.348, 0.366),
                               rtol=1e-5)
