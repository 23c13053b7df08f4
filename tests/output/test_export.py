"""Tidy draws (long, wide), quantile tables in log10, CSV / Parquet / netCDF writers, the export command."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers import table1_fit

from bayes_scaling.analysis.predictions import NEW, predict
from bayes_scaling.analysis.timeline import forecast
from bayes_scaling.cli import main
from bayes_scaling.errors import BayesScalingError
from bayes_scaling.output import exports as X


@pytest.fixture(scope="module")
def fit():
    return table1_fit(chains=2, draws=50, a_sigma=0.5, alpha_sigma=0.03)


@pytest.fixture(scope="module")
def pred(fit):
    return predict(fit, N=[1e7, 1e9], D_F=[1e5, 1e6, 1e7], pretraining=["text", NEW], noise=True, seed=1)


def test_long_and_wide_round_trip(pred):
    long = X.to_long(pred)
    assert long.columns.tolist() == ["chain", "draw", "pretraining", "N", "D_F", "quantity", "value"]
    assert len(long) == 4 * 2 * 50 * 2 * 2 * 3
    assert long["chain"].dtype.kind == "i" and set(long["quantity"]) == {"D_T", "D_E", "multiplier", "fraction"}
    back = long[long["quantity"] == "multiplier"].set_index(["chain", "draw", "pretraining", "N", "D_F"])["value"]
    np.testing.assert_array_equal(back.to_xarray().transpose(*pred["multiplier"].dims)
                                  .sel(pretraining=pred["pretraining"].values).values, pred["multiplier"].values)
    wide = X.to_wide(pred)
    assert len(wide) == 2 * 50 * 2 * 2 * 3
    assert wide.columns[:5].tolist() == ["chain", "draw", "pretraining", "N", "D_F"]
    assert {"D_T", "multiplier", "N_orders_outside", "D_F_orders_outside"} <= set(wide.columns)


def test_long_handles_quantities_without_pretraining(fit):
    fc = forecast(fit, N=1e10, D_req=1e12, seed=0)
    long = X.to_long(fc)
    n_rows = long[long["quantity"] == "N"]
    assert len(n_rows) == 100 and (n_rows["pretraining"] == "").all() and (n_rows["value"] == 1e10).all()
    solved = long[long["quantity"] == "solved"]["value"]
    assert set(solved) <= {0.0, 1.0}


def test_quantile_table(pred):
    table = X.quantile_table(pred)
    assert table.columns.tolist() == ["quantity", "scale", "pretraining", "N", "D_F", "N_orders_outside",
                                      "D_F_orders_outside", "q5", "q50", "q95", "n", "n_nan"]
    scales = table.groupby("quantity")["scale"].first()
    assert scales["multiplier"] == "log10" and scales["fraction"] == "linear"
    row = table[(table["quantity"] == "multiplier") & (table["pretraining"] == "text") & (table["N"] == 1e9)
                & (table["D_F"] == 1e5)].iloc[0]
    v = np.log10(pred["multiplier"].sel(pretraining="text", N=1e9, D_F=1e5).values.ravel())
    np.testing.assert_allclose([row["q5"], row["q50"], row["q95"]], np.quantile(v, [0.05, 0.5, 0.95]))
    assert row["n"] == 100 and row["n_nan"] == 0
    lin = X.quantile_table(pred, q=(0.25, 0.75), log10=False)
    assert set(lin["scale"]) == {"linear"} and {"q25", "q75"} <= set(lin.columns)
    with pytest.raises(BayesScalingError, match="quantiles must lie in"):
        X.quantile_table(pred, q=(5, 95))


def test_quantile_table_counts_missing_draws():
    ds = xr.Dataset({"D_F": (("chain", "draw"), np.array([[1.0, 10.0, np.nan, 1e4]]))},
                    coords={"chain": [0], "draw": np.arange(4)})
    row = X.quantile_table(ds).iloc[0]
    assert row["n"] == 3 and row["n_nan"] == 1 and row["scale"] == "log10"
    assert row["q50"] == pytest.approx(1.0)


def test_writers_round_trip(pred, tmp_path):
    long = X.to_long(pred)
    for name in ("draws.csv", "draws.parquet"):
        path = X.export(pred, tmp_path / name)
        back = pd.read_csv(path) if name.endswith("csv") else pd.read_parquet(path)
        assert len(back) == len(long)
        np.testing.assert_allclose(back["value"].to_numpy(), long["value"].to_numpy(), rtol=1e-12)
    wide = pd.read_csv(X.export(pred, tmp_path / "wide.csv", layout="wide"))
    assert len(wide) == len(X.to_wide(pred))
    nc = X.export(pred, tmp_path / "draws.nc")
    back = xr.open_dataset(nc, engine="h5netcdf").load()
    np.testing.assert_array_equal(back["D_T"].values, pred["D_T"].values)
    assert list(back["pretraining"].values) == ["text", NEW]


def test_writer_errors(pred, tmp_path, monkeypatch):
    with pytest.raises(BayesScalingError, match="cannot tell the format"):
        X.export(pred, tmp_path / "draws.xlsx")
    with pytest.raises(BayesScalingError, match="unknown format 'json'"):
        X.export(pred, tmp_path / "draws.csv", format="json")
    with pytest.raises(BayesScalingError, match="layout must be"):
        X.export(pred, tmp_path / "draws.csv", layout="tall")
    with pytest.raises(BayesScalingError, match="no chain and draw"):
        X.to_long(xr.Dataset({"x": ("N", [1.0])}))
    monkeypatch.setitem(sys.modules, "pyarrow", None)      # as if pyarrow were not installed
    with pytest.raises(BayesScalingError, match=r"Parquet needs pyarrow.*bayes_scaling\[parquet\]"):
        X.export(pred, tmp_path / "draws.parquet")


def test_fit_draws_and_cli_export(small_fit, tmp_path, capsys):
    draws = X.fit_draws(small_fit)
    assert set(draws.data_vars) == {"k", "log_k", "alpha", "beta", "sigma"}
    path = small_fit.save(tmp_path / "fit.nc")
    for fmt, name in (("csv", "d.csv"), ("parquet", "d.parquet"), ("netcdf", "d.nc")):
        assert main(["export", str(path), "--format", fmt, "--out", str(tmp_path / name)]) == 0
    long = pd.read_csv(tmp_path / "d.csv")
    assert long.columns.tolist() == ["chain", "draw", "pretraining", "quantity", "value"]
    n = small_fit.posterior.sizes["chain"] * small_fit.posterior.sizes["draw"]
    assert len(long) == n * 2 * 4 + n              # sigma is shared: one row per draw, pretraining ""
    assert len(pd.read_parquet(tmp_path / "d.parquet")) == len(long)
    assert main(["export", str(path), "--out", str(tmp_path / "w.csv"), "--layout", "wide",
                 "--pretraining", "text", "new"]) == 0
    wide = pd.read_csv(tmp_path / "w.csv")
    assert set(wide["pretraining"]) == {"text", NEW} and len(wide) == 2 * n
    capsys.readouterr()
    # a file that is not a transfer fit -> one clear line, exit 2
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("a", [1.0])}).to_netcdf(other, engine="h5netcdf")
    assert main(["export", str(other), "--out", str(tmp_path / "x.csv")]) == 2
    assert "not a bayes_scaling transfer fit" in capsys.readouterr().err


def test_output_namespace_keeps_the_export_function():
    """The module is ``exports``: importing it never shadows the function ``bs.output.export``."""
    import bayes_scaling as bs

    assert callable(bs.output.quantile_table)
    import bayes_scaling.output.exports  # noqa: F401

    assert callable(bs.output.export)
