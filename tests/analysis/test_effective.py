"""Effective data from raw losses: monotone interpolation, law inversion, regimes, ossification, bad input, CLI."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_scaling.analysis.effective import (
    effective_data,
    monotone_curve,
    ossification_report,
    regime,
    restrict_to_low_data,
)
from bayes_scaling.cli import main
from bayes_scaling.data.datasets import (
    FINETUNE_LOSSES_CSV,
    SCRATCH_LOSSES_CSV,
    load_finetune_losses,
    losses_metadata,
)
from bayes_scaling.data.simulate import KAPLAN_WEBTEXT2, simulate_losses
from bayes_scaling.data.tables import TransferData
from bayes_scaling.errors import DataError, ExclusionWarning
from bayes_scaling.inference.scratch import ScratchFit
from bayes_scaling.models.losslaws import LossLawConfig, converged_data


def exact_fit(scratch: pd.DataFrame, params=KAPLAN_WEBTEXT2, law: str = "kaplan", draws: int = 4) -> ScratchFit:
    """A ScratchFit whose every draw is the truth: law inversion becomes a closed-form check."""
    post = xr.Dataset({k: (("chain", "draw"), np.full((1, draws), float(v)))  # sigma: a fit file has the noise
                       for k, v in {**params, "sigma": 0.0}.items()},
                      coords={"chain": [0], "draw": np.arange(draws)})
    tree = xr.DataTree.from_dict({"posterior": post})
    tree.attrs.update(bayes_scaling_kind="scratch", seed=0, unit="characters")
    return ScratchFit(tree, scratch, LossLawConfig(law=law))


@pytest.fixture(scope="module")
def noiseless():
    return simulate_losses(seed=2, sigma=0.0)


def test_monotone_curve_pools_violators_and_flags_out_of_range():
    c = monotone_curve(np.array([1e6, 1e7, 1e8, 1e9]), np.array([4.0, 3.5, 3.6, 3.0]), N=1e7)
    assert c.n_pooled == 2 and np.all(np.diff(c.log_loss) < 0) and np.all(np.diff(c.log_D) > 0)
    # knot of the pooled block: geometric mean of D, loss = geometric mean of the two losses
    assert np.exp(c.log_D[1]) == pytest.approx(np.sqrt(1e7 * 1e8))
    assert np.exp(c.log_loss[1]) == pytest.approx(np.sqrt(3.5 * 3.6))
    D_E, side = c.effective_data([4.0, 3.0, 2.0, 5.0, 3.2])
    assert D_E[0] == pytest.approx(1e6) and D_E[1] == pytest.approx(1e9)
    assert side.tolist() == ["", "", "below_curve", "above_curve", ""]
    assert D_E[2] == pytest.approx(1e9) and D_E[3] == pytest.approx(1e6)  # bounds, not extrapolations
    assert 10 ** 8 < D_E[4] < 1e9
    # monotone: a lower loss never needs less data
    grid = np.linspace(3.0, 4.0, 50)
    assert np.all(np.diff(c.effective_data(grid)[0]) <= 0)


def test_monotone_curve_bad_input():
    with pytest.raises(DataError, match=r"curve N=1e\+06: 1 distinct D value\(s\) \(rows 4, 5\)"):
        monotone_curve(np.array([1e6, 1e6]), np.array([3.0, 3.1]), N=1e6, rows=[4, 5])
    with pytest.raises(DataError, match="does not decrease with D anywhere"):
        monotone_curve(np.array([1e6, 1e7, 1e8]), np.array([3.0, 3.1, 3.2]), N=1e6)


def test_interpolation_recovers_true_effective_data(noiseless):
    scratch, finetune, _ = noiseless
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExclusionWarning)
        eff = effective_data(scratch, finetune, method="interpolate", scratch_fit=exact_fit(scratch))
    t = eff.table
    ok = (t["out_of_range"] == "") & (t["regime"] == "low")
    assert ok.sum() >= 25
    ratio = t.loc[ok, "D_E"] / finetune.loc[ok, "true_D_E"]
    assert np.all(np.abs(np.log(ratio)) < 0.1), ratio.describe()  # PCHIP in log-log on a 12-point curve
    np.testing.assert_allclose(t["D_T"], t["D_E"] - t["D_F"])


def test_law_inversion_is_exact_with_the_true_law(noiseless):
    scratch, finetune, _ = noiseless
    eff = effective_data(scratch, finetune, method="law", scratch_fit=exact_fit(scratch), warn=False)
    t = eff.table
    inrange = t["out_of_range"] == ""
    np.testing.assert_allclose(t.loc[inrange, "D_E"], finetune.loc[inrange, "true_D_E"], rtol=1e-6)
    assert eff.draws.dims == ("chain", "draw", "run")
    assert {"D_E_lb", "D_E_ub", "extrapolated", "flags"} <= set(t.columns)


def test_regimes_and_ossification(noiseless):
    scratch, finetune, meta = noiseless
    eff = effective_data(scratch, finetune, method="law", scratch_fit=exact_fit(scratch), warn=False)
    t = eff.table
    D_N = converged_data("kaplan", finetune["N"].to_numpy(), KAPLAN_WEBTEXT2)
    np.testing.assert_allclose(t["D_N"], D_N, rtol=1e-10)
    expect = np.where(finetune["D_F"] <= 0.1 * D_N, "low", np.where(finetune["D_F"] <= D_N, "medium", "high"))
    assert t["regime"].tolist() == expect.tolist()
    assert set(t["regime"]) == {"low", "medium", "high"}
    assert regime([1e5, 5e7, 2e8], 1e8).tolist() == ["low", "medium", "high"]
    oss = eff.ossified().set_index("N")
    assert oss.loc[1e6, "n_ossified"] == meta["n_ossified"] == 2
    assert oss["n_ossified"].sum() == 2
    # the foundation's table: ossified rows are excluded by TransferData; the low-data helper says why
    data = TransferData.from_frame(eff.table, warn=False)
    low = restrict_to_low_data(data)
    n_not_low = int((t["regime"] != "low").sum())
    assert low.n_used == int(((t["regime"] == "low") & (t["D_T"] > 0) & ~t["excluded"]).sum())
    assert "medium-data regime" in low.exclusion_report()  # the high-data runs here are the ossified ones
    assert low.n_excluded == n_not_low and not low.used["regime"].ne("low").any()
    report = ossification_report(t)
    assert list(report.columns[:3]) == ["N", "n_runs", "n_ossified"]


def test_out_of_range_is_flagged_never_extrapolated(noiseless):
    scratch, finetune, _ = noiseless
    ft = finetune.iloc[:3].copy()
    ft.loc[ft.index[0], "loss"] = 1.0  # far below every measured loss of N=1e6
    with pytest.warns(ExclusionWarning, match=r"rows 0"):
        eff = effective_data(scratch, ft, method="interpolate", scratch_fit=exact_fit(scratch))
    row = eff.table.iloc[0]
    assert row["out_of_range"] == "below_curve" and row["excluded"]
    assert row["D_E"] == pytest.approx(scratch.loc[scratch["N"] == 1e6, "D"].max())
    assert "lower bound" in row["flags"]
    eff = effective_data(scratch, ft, method="law", scratch_fit=exact_fit(scratch), warn=False)
    assert eff.table.iloc[0]["out_of_range"] == "unreachable" and eff.table.iloc[0]["excluded"]
    data = eff.to_transfer_data()
    assert "out of range" in data.exclusion_report()


def test_bad_input_names_N_and_rows(noiseless):
    scratch, finetune, _ = noiseless
    fit = exact_fit(scratch)
    ft = finetune.copy()
    ft.loc[[3, 5], "N"] = 3e7
    with pytest.raises(DataError, match=r"no from-scratch curve for model size\(s\) N=3e\+07 \(rows 3, 5\)"):
        effective_data(scratch, ft, scratch_fit=fit)
    # the law needs no curve of the same N: flagged as extrapolated only if outside the measured N range
    eff = effective_data(scratch, ft, method="law", scratch_fit=fit, warn=False)
    assert not eff.table.loc[3, "extrapolated"]
    ft = finetune.copy()
    ft.loc[7, "loss"] = -1
    with pytest.raises(DataError, match=r"column 'loss' must be > 0; rows 7"):
        effective_data(scratch, ft, scratch_fit=fit)
    sc = scratch.loc[~((scratch["N"] == 1e7) & (scratch["D"] > 1e5))]
    with pytest.raises(DataError, match=r"curve N=1e\+07: 1 distinct D"):
        effective_data(sc, finetune, scratch_fit=fit)
    with pytest.raises(DataError, match="same unit"):
        effective_data(scratch.assign(unit="tokens"), finetune, scratch_fit=fit)
    with pytest.raises(ValueError, match="method 'spline'"):
        effective_data(scratch, finetune, method="spline", scratch_fit=fit)


def test_replicate_runs_are_averaged_on_the_curve(noiseless):
    scratch, finetune, _ = noiseless
    rep = scratch.loc[scratch["N"] == 1e7].iloc[[4]].assign(loss=lambda d: d["loss"] * 1.02)
    sc = pd.concat([scratch, rep], ignore_index=True)
    with pytest.raises(DataError, match=r"N=1e\+07, D=.* at rows 16, 48"):
        effective_data(sc, finetune, scratch_fit=exact_fit(scratch))
    eff = effective_data(sc, finetune, scratch_fit=exact_fit(scratch), duplicates="mean", warn=False)
    curve = eff.curves[1e7]
    assert curve.n_points == 13 and len(curve.log_D) <= 12


def test_bundled_raw_losses_are_labelled_synthetic():
    meta = losses_metadata()
    assert "SYNTHETIC" in meta["description"] and meta["law_params"] == KAPLAN_WEBTEXT2
    ft = load_finetune_losses()
    assert ft["synthetic"].all() and set(ft["pretraining"]) == set(meta["truth"])
    again = simulate_losses(seed=meta["seed"])[1]
    np.testing.assert_allclose(ft["loss"], again["loss"], rtol=1e-9)


def test_cli_effective_data_writes_the_transfer_table(tmp_path, noiseless, capsys):
    fit = exact_fit(pd.read_csv(SCRATCH_LOSSES_CSV))
    fit.save(tmp_path / "s.nc")
    out = tmp_path / "transfer.csv"
    rc = main(["effective-data", str(SCRATCH_LOSSES_CSV), str(FINETUNE_LOSSES_CSV), "--scratch-fit",
               str(tmp_path / "s.nc"), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "ossified runs (D_T <= 0) per model size" in text
    data = TransferData.from_csv(out, warn=False)
    assert data.unit == "characters" and data.n_excluded >= 4
    assert "high-data regime" in data.exclusion_report()
    rc = main(["effective-data", str(SCRATCH_LOSSES_CSV), str(tmp_path / "missing.csv"), "--scratch-fit",
               str(tmp_path / "s.nc"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "file not found" in err and len(err.strip().splitlines()) == 1


def test_one_low_data_filter_for_tables_transfer_data_and_the_joint_model():
    """Medium/high-data runs are excluded for their regime's reason; runs already excluded keep theirs; the
    TransferData path (restrict_to_low_data) and the table path (transfer_table, the joint model) agree."""
    from bayes_scaling.analysis.effective import REGIME_REASONS, exclude_non_low, restrict_to_low_data

    table = pd.DataFrame({"pretraining": ["text"] * 4, "N": [1e6, 1e7, 1e8, 1e9], "D_F": [1e5, 1e6, 1e7, 1e8],
                          "D_T": [1e6, 2e6, 3e6, 4e6], "regime": ["low", "medium", "high", "medium"],
                          "excluded": [False, False, False, True],
                          "exclusion_reason": ["", "", "", "out of range"]})
    out = exclude_non_low(table)
    assert out["excluded"].tolist() == [False, True, True, True]
    assert out["exclusion_reason"].tolist() == ["", REGIME_REASONS["medium"], REGIME_REASONS["high"],
                                                "out of range"]
    assert table["excluded"].tolist() == [False, False, False, True]  # the input is not modified
    data = restrict_to_low_data(TransferData(table=table.copy(), unit="tokens", source="test"))
    pd.testing.assert_frame_equal(data.table[out.columns].reset_index(drop=True), out.reset_index(drop=True),
                                  check_dtype=False)
