"""Forecasting interop (bayes_scaling/output/forecasting.py, ``bayes-scaling quantiles``): quantiles, platform
CDFs and squigglepy distributions from draws, each with the distance outside the data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayes_scaling as bs
from bayes_scaling.cli import main
from bayes_scaling.errors import BayesScalingError

fc_mod = bs.output.forecasting


def _draws(values, **coords):
    v = np.asarray(values, dtype=float).reshape(2, -1)
    return xr.DataArray(v, dims=("chain", "draw"), coords=coords)


# ---- arrays: quantiles and CDFs --------------------------------------------------------------------------


def test_quantiles_of_an_array_and_a_dataarray_agree():
    v = np.random.default_rng(0).lognormal(0, 1, 2000)
    a = bs.output.quantiles(v, [0.05, 0.5, 0.95])
    b = bs.output.quantiles(_draws(v), [0.05, 0.5, 0.95])
    np.testing.assert_allclose(a["value"], np.quantile(v, [0.05, 0.5, 0.95]))
    np.testing.assert_allclose(a["value"], b["value"])
    assert a.attrs["outside"] == {} and (a["outside"] == 0).all()
    q = bs.output.quantile_function(v)
    assert q(0.5) == pytest.approx(np.median(v)) and q.cdf(q(0.3)) == pytest.approx(0.3, abs=1e-3)


def test_nan_draws_are_counted_not_used():
    v = np.r_[np.arange(100.0), [np.nan] * 5]
    t = bs.output.quantiles(v, [0.5])
    assert t.attrs["n_nan"] == 5 and t.attrs["n_draws"] == 105 and t["value"][0] == pytest.approx(49.5)


def test_platform_cdf_form_linear():
    v = np.random.default_rng(1).normal(5, 2, 4000)
    c = bs.output.platform_cdf(v, 0, 10)
    assert len(c.x) == len(c.cdf) == 201 and c.x[0] == 0 and c.x[-1] == 10
    np.testing.assert_allclose(np.diff(c.x), 0.05)
    assert np.all(np.diff(c.cdf) >= 5e-5)                   # strictly increasing by the platforms' step
    assert c.cdf[0] == pytest.approx(np.mean(v < 0), abs=1e-3)
    assert 1 - c.cdf[-1] == pytest.approx(np.mean(v > 10), abs=1e-3)
    mid = np.searchsorted(c.x, 5.0)
    assert c.cdf[mid] == pytest.approx(0.5, abs=0.03)
    d = c.to_dict()
    assert len(d["cdf"]) == 201 and d["scale"] == "linear" and json.dumps(d)


def test_platform_cdf_log_scale_and_tails():
    v = 10 ** np.random.default_rng(2).normal(3, 0.5, 4000)
    c = bs.output.platform_cdf(v, 10, 1e6, scale="log")
    np.testing.assert_allclose(np.diff(np.log10(c.x)), 5 / 200)
    assert c.cdf[0] >= 0.001 and c.cdf[-1] <= 0.999             # open bounds keep 0.001 outside
    assert c.cdf[np.searchsorted(c.x, 1e3)] == pytest.approx(0.5, abs=0.03)
    closed = bs.output.platform_cdf(v, 10, 1e6, scale="log", open_lower=False, open_upper=False)
    assert closed.cdf[0] == 0 and closed.cdf[-1] == pytest.approx(1.0)
    narrow = bs.output.platform_cdf(v, 1e3, 1e6, scale="log", open_lower=False)
    assert narrow.beyond_closed == pytest.approx(0.5, abs=0.03)   # draws below a closed bound: counted


@pytest.mark.parametrize("kwargs, message", [
    (dict(lower=1e6, upper=1e7), "misses the draws"),
    (dict(lower=5, upper=1), "lower < upper"),
    (dict(lower=-1, upper=1, scale="log"), "lower > 0"),
    (dict(lower=0, upper=1, scale="sqrt"), "scale"),
])
def test_platform_cdf_refuses(kwargs, message):
    with pytest.raises(BayesScalingError, match=message):
        bs.output.platform_cdf(np.arange(1.0, 100.0), **kwargs)


def test_draws_with_several_points_or_no_var_are_refused():
    da = xr.DataArray(np.ones((2, 5, 3)), dims=("chain", "draw", "N"))
    with pytest.raises(BayesScalingError, match=r"select one.*N="):
        bs.output.quantiles(da)
    with pytest.raises(BayesScalingError, match="var="):
        bs.output.quantiles(xr.Dataset({"a": da}))


def test_outside_given_explicitly():
    row = pd.DataFrame({"median": [1.0], "outside_N": [1.5], "outside_D": [-0.5], "outside": [1.5]})
    t = bs.output.quantiles(np.arange(10.0), outside=row)
    assert t.attrs["outside"] == {"N": 1.5, "D": -0.5} and (t["outside"] == 1.5).all()
    assert bs.output.quantiles(np.arange(10.0), outside=2.0).attrs["outside"] == {"point": 2.0}


def test_sampler_is_seeded_and_carries_outside():
    da = _draws(np.arange(10.0), N_orders_outside=1.25)
    a, b = bs.output.sampler(da, seed=3), bs.output.sampler(da, seed=3)
    np.testing.assert_array_equal(a(50), b(50))
    assert a.outside == {"N": 1.25} and set(a(100)) <= set(range(10)) and isinstance(a(), float)


# ---- real predictions and forecasts ----------------------------------------------------------------------


def test_predict_and_forecast_record_the_distance(small_fit):
    pred = bs.analysis.predict(small_fit, N=[4e7, 1e11], D_F=3e5, pretraining="text", seed=1)
    far = pred["multiplier"].sel(pretraining="text", N=1e11, D_F=3e5)
    t = bs.output.quantiles(far)
    assert t.attrs["outside"] == pytest.approx({"N": 2.0, "D_F": 0.0})
    assert np.allclose(t["outside"], 2.0) and "outside_N" in t
    near = bs.output.platform_cdf(pred["multiplier"].sel(pretraining="text", N=4e7, D_F=3e5), 100, 1e4,
                                  scale="log")
    assert near.outside == {"N": 0.0, "D_F": 0.0}
    assert near.cdf[np.searchsorted(near.x, 475.6)] == pytest.approx(0.5, abs=0.3)   # truth 475.6

    fc = bs.analysis.forecast(small_fit, N=1e10, D_req=1e12, seed=1)
    q = bs.output.quantiles(fc.sel(pretraining="text"), var="D_F")
    far = q.attrs["outside"]
    assert set(far) == {"N", "D_F", "D_F_5%", "D_F_95%"} and far["N"] == pytest.approx(1.0)   # N fixed
    assert 3 < far["D_F_5%"] <= far["D_F"] <= far["D_F_95%"]        # D_F ~ 1e12 against data up to 1e8
    assert (q["outside"] == far["D_F_95%"]).all()


def test_summarise_outside():
    assert bs.output.summarise_outside("N", [2.0, 2.0]) == {"N": 2.0}
    d = bs.output.summarise_outside("D_F", np.r_[np.linspace(-5, 5, 101), np.nan])
    assert d["D_F"] == pytest.approx(0) and d["D_F_5%"] == pytest.approx(-4.5) and d["D_F_95%"] == pytest.approx(4.5)


def test_to_squigglepy(small_fit):
    sq = pytest.importorskip("squigglepy", reason="squigglepy is optional (pip install 'bayes_scaling[forecast]')")
    fc = bs.analysis.forecast(small_fit, N=1e10, D_req=1e9, seed=1)
    text = fc.sel(pretraining="text")
    dist = bs.output.to_squigglepy(text, var="saving")
    assert dist.bayes_scaling_outside["N"] == pytest.approx(1.0)
    s = np.asarray(sq.sample(dist * 2, n=2000))
    assert np.median(s) == pytest.approx(2 * float(text["saving"].median()), rel=0.05)
    ln = bs.output.to_squigglepy(text, var="saving", kind="lognorm")
    assert np.median(sq.sample(ln, n=4000)) == pytest.approx(float(text["saving"].median()), rel=0.1)
    with pytest.raises(BayesScalingError, match="kind"):
        bs.output.to_squigglepy(text, var="saving", kind="beta")


def test_without_squigglepy_the_error_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "squigglepy", None)
    with pytest.raises(BayesScalingError, match=r"bayes_scaling\[forecast\]"):
        bs.output.to_squigglepy(np.arange(3.0))


# ---- the command -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pred_file(small_fit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("quantiles")
    fit_path = small_fit.save(folder / "fit.nc")
    assert main(["predict", str(fit_path), "--pretraining", "text", "--N", "4e7", "1e11", "--D-F", "3e5",
                 "--out", str(folder / "pred.nc"), "--quiet"]) == 0
    return folder / "pred.nc"


def test_cli_quantiles_json_and_files(pred_file, tmp_path, capsys):
    capsys.readouterr()
    args = ["quantiles", str(pred_file), "--var", "multiplier", "--sel", "pretraining=text", "N=1e11", "D_F=3e5"]
    assert main([*args, "--cdf", "1", "1e6", "--log", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["info"]["outside"] == {"N": 2.0, "D_F": 0.0}
    assert len(doc["info"]["cdf"]["cdf"]) == 201 and doc["tables"]["quantiles"][4]["quantile"] == 0.5
    assert "orders of magnitude outside the data: N +2.00" in err
    assert main([*args, "--cdf", "1", "1e6", "--log", "--out", str(tmp_path / "cdf.csv")]) == 0
    table = pd.read_csv(tmp_path / "cdf.csv")
    assert len(table) == 201 and list(table.columns[:3]) == ["x", "cdf", "outside"]
    assert main([*args, "--out", str(tmp_path / "q.json")]) == 0
    assert json.loads((tmp_path / "q.json").read_text())["outside"]["N"] == 2.0


def test_cli_quantiles_errors(pred_file, capsys):
    capsys.readouterr()
    assert main(["quantiles", str(pred_file), "--var", "multiplier"]) == 2
    assert "select one" in capsys.readouterr().err
    assert main(["quantiles", str(pred_file), "--var", "multiplier", "--sel", "N=3"]) == 2
    assert "not among N" in capsys.readouterr().err
    assert main(["quantiles", str(pred_file), "--log"]) == 2
