"""Timeline-style extrapolation: the root finder (closed form, residual, monotonicity), draws with no
solution reported, Monte Carlo alignment and seeds, shapes, bad inputs, the CLI."""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest
from helpers import table1_fit

from bayes_scaling import laws
from bayes_scaling.analysis import timeline
from bayes_scaling.analysis.predictions import NEW, predict
from bayes_scaling.analysis.timeline import NoSolutionWarning, forecast, forecast_grid, solve_D_F, unsolved
from bayes_scaling.cli import main
from bayes_scaling.errors import BayesScalingError


@pytest.fixture(scope="module")
def t1():
    return table1_fit(chains=2, draws=5)


def test_doctests():
    assert doctest.testmod(timeline).failed == 0


def test_root_matches_closed_form_for_alpha_one_half():
    # alpha = 1/2: s**2 + c s = D_req with s = sqrt(D_F), c = k N**beta
    k, beta = 3e3, 0.4
    N, R = np.logspace(5, 12, 8)[:, None], np.logspace(4, 16, 7)[None, :]
    c = k * N ** beta
    expect = (2 * R / (c + np.sqrt(c ** 2 + 4 * R))) ** 2     # the root (-c + sqrt(c^2 + 4R)) / 2, stably
    D_F, ok = solve_D_F(R, N, k, 0.5, beta)
    assert ok.all()
    np.testing.assert_allclose(D_F, expect, rtol=1e-9)


def test_residual_and_monotonicity():
    rng = np.random.default_rng(0)
    n = 500
    k, alpha, beta = 10 ** rng.uniform(0, 6, n), rng.uniform(0.01, 0.99, n), rng.uniform(0.0, 0.8, n)
    N, R = 10 ** rng.uniform(4, 12, n), 10 ** rng.uniform(3, 15, n)
    D_F, ok = solve_D_F(R, N, k, alpha, beta)
    assert ok.all() and np.all((D_F > 0) & (D_F <= R))
    np.testing.assert_allclose(laws.effective_data(D_F, N, k, alpha, beta), R, rtol=1e-9)
    # monotone: more required data -> more fine-tuning data; a larger model or larger k -> less
    R_grid = np.logspace(3, 15, 40)
    d, _ = solve_D_F(R_grid, 1e8, 1.9e4, 0.18, 0.38)
    assert np.all(np.diff(d) > 0)
    d, _ = solve_D_F(1e12, np.logspace(4, 12, 40), 1.9e4, 0.18, 0.38)
    assert np.all(np.diff(d) < 0)
    d, _ = solve_D_F(1e12, 1e8, np.logspace(1, 7, 40), 0.18, 0.38)
    assert np.all(np.diff(d) < 0)


def test_no_solution_is_reported_not_dropped():
    D_F, ok = solve_D_F(1e9, 1e8, 1.9e4, np.array([0.18, 0.0, -0.1]), 0.38)
    assert ok.tolist() == [True, False, False] and np.isnan(D_F[1:]).all()
    fit = table1_fit(chains=2, draws=5)
    post = fit.tree["posterior"].to_dataset()
    alpha = post["alpha"].copy()
    alpha[1, 2, 0] = -0.05                 # chain 1, draw 2, text
    fit.tree["posterior"] = post.assign(alpha=alpha)
    with pytest.warns(NoSolutionWarning, match=r"1 of 20 draw\(s\).*\(1, 2, 'text'\)"):
        fc = forecast(fit, N=1e9, D_req=1e12)
    assert fc["D_F"].shape == (2, 5, 2) and fc.attrs["n_unsolved"] == 1
    assert np.isnan(fc["D_F"].values[1, 2, 0]) and np.isfinite(np.delete(fc["D_F"].values.ravel(), 14)).all()
    table = unsolved(fc)
    assert table[["chain", "draw", "pretraining"]].values.tolist() == [[1, 2, "text"]]
    assert "alpha <= 0" in table["reason"].iloc[0]


def test_forecast_inverts_predict_draw_by_draw(small_fit):
    # D_req = each draw's D_E at D_F = 3e5: the forecast must give back D_F = 3e5 in every draw
    pred = predict(small_fit, N=4e7, D_F=3e5, pretraining="text")
    D_E = pred["D_E"].values[:, :, 0, 0, 0].ravel()
    fc = forecast(small_fit, N=4e7, D_req=D_E, pretraining="text", compute_per_example=2.0, seed=0)
    assert "draws paired in order" in fc.attrs["alignment"]
    np.testing.assert_allclose(fc["D_F"].values.ravel(), 3e5, rtol=1e-9)
    np.testing.assert_allclose(fc["saving"].values.ravel(), D_E / 3e5, rtol=1e-9)
    np.testing.assert_allclose(fc["compute_saved"].values.ravel(), (D_E - 3e5) * 2.0, rtol=1e-9)
    np.testing.assert_allclose(fc["saving"].median(), 475.6, rtol=0.05)   # Table 1 truth of the data


def test_monte_carlo_alignment_and_seeds(t1):
    R = np.random.default_rng(0).lognormal(np.log(1e12), 1.0, 37)
    a = forecast(t1, N=1e10, D_req=R, seed=1)
    b = forecast(t1, N=1e10, D_req=R, seed=1)
    c = forecast(t1, N=1e10, D_req=R, seed=2)
    assert "D_req: 37 draws resampled without replacement to 10 (seeded)" in a.attrs["alignment"]
    np.testing.assert_array_equal(a["D_req"].values, b["D_req"].values)
    assert not np.array_equal(a["D_req"].values, c["D_req"].values)
    assert set(a["D_req"].values.ravel()) <= set(R)
    few = forecast(t1, N=[1e9, 1e10, 1e11], D_req=1e12, seed=1)          # 3 draws of N -> 10, with replacement
    assert set(few["N"].values.ravel()) <= {1e9, 1e10, 1e11}
    assert "with replacement" in few.attrs["alignment"]
    same = forecast(t1, N=np.arange(1, 11) * 1e9, D_req=1e12)
    np.testing.assert_array_equal(same["N"].values.ravel(), np.arange(1, 11) * 1e9)


def test_shapes_distance_and_grid(t1):
    fc = forecast(t1, N=1.75e11, D_req=1e12, pretraining=["text+code", NEW], seed=0)
    for v in ("D_F", "saving", "D_T_used", "solved", "D_F_orders_outside"):
        assert fc[v].dims == ("chain", "draw", "pretraining")
    assert list(fc["pretraining"].values) == ["text+code", NEW]
    np.testing.assert_allclose(fc["N_orders_outside"].values, np.log10(175))
    assert np.all(fc["D_F_orders_outside"].values > 3.9)        # D_F ~ 1e12 vs data max 1e8
    g = forecast_grid(t1, N=[1e9, 1e11], D_req=[1e9, 1e12, 1e15], compute_per_example=1e3, seed=0)
    assert g["saving"].dims == ("chain", "draw", "pretraining", "N", "D_req")
    assert g["saving"].shape == (2, 5, 2, 2, 3)
    np.testing.assert_allclose(g["N_orders_outside"].values, [0.0, 2.0])
    one = forecast(t1, N=1e11, D_req=1e12, compute_per_example=1e3, seed=0)
    np.testing.assert_allclose(g["D_F"].sel(N=1e11, D_req=1e12).values, one["D_F"].values)
    assert np.all(g["saving"].values >= 1)


def test_roots_below_the_smallest_float_stay_exact_in_log10(t1):
    # text+code, absurd model size, tiny requirement: D_F ~ 10**-320 underflows, log10_D_F does not
    fc = forecast(t1, N=1e80, D_req=1e5, pretraining="text+code")
    log10_D_F = fc["log10_D_F"].values
    assert np.all(np.isfinite(log10_D_F)) and np.all(log10_D_F < -300)
    log_D_T = laws.log_transfer(np.log(2.1e5), 0.096, 0.38, log10_D_F * np.log(10), np.log(1e80))
    np.testing.assert_allclose(log_D_T, np.log(1e5), rtol=1e-12)      # D_T alone supplies D_req
    np.testing.assert_allclose(fc["D_F_orders_outside"].values, log10_D_F - 5.0)
    np.testing.assert_allclose(fc["log10_saving"].values, 5.0 - log10_D_F)


@pytest.mark.parametrize("kw, match", [
    ({"N": 0.0, "D_req": 1e12}, "N must be finite and > 0"),
    ({"N": 1e9, "D_req": [1e12, -5.0]}, "D_req must be finite and > 0; draw\\(s\\) 1"),
    ({"N": 1e9, "D_req": float("nan")}, "D_req must be finite"),
    ({"N": 1e9, "D_req": 1e12, "compute_per_example": 0}, "compute_per_example must be finite and > 0"),
    ({"N": 1e9, "D_req": 1e12, "pretraining": "code"}, "unknown pre-training distribution"),
    ({"N": 1e9, "D_req": []}, "D_req is empty"),
])
def test_bad_inputs(t1, kw, match):
    with pytest.raises(BayesScalingError, match=match):
        forecast(t1, **kw)


def test_cli_forecast(small_fit, tmp_path, capsys):
    path = small_fit.save(tmp_path / "fit.nc")
    out_csv = tmp_path / "draws.csv"
    assert main(["forecast", str(path), "--N", "1e9", "1.75e11", "--D-req", "1e12", "--compute-per-example",
                 "1e12", "--out", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "saving median [94%]" in out and "compute_saved" in out and "+2.24" in out
    import pandas as pd

    df = pd.read_csv(out_csv)
    assert list(df.columns) == ["chain", "draw", "pretraining", "N", "D_req", "quantity", "value"]
    draws = tmp_path / "dreq.csv"
    pd.DataFrame({"D_req": np.random.default_rng(0).lognormal(np.log(1e12), 1, 50)}).to_csv(draws, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoSolutionWarning)
        assert main(["forecast", str(path), "--N", "1e10", "--D-req-draws", str(draws), "--pretraining", "new"]) == 0
    assert "resampled" in capsys.readouterr().out
    assert main(["forecast", str(path), "--N", "1e10", "--D-req", "1e12", "--D-req-draws", str(draws)]) == 2
    assert "exactly one of --D-req and --D-req-draws" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"D_req": [1e12, -1.0]}).to_csv(bad, index=False)
    assert main(["forecast", str(path), "--N", "1e10", "--D-req-draws", str(bad)]) == 2
    assert "column 'D_req' must be > 0; rows 1" in capsys.readouterr().err


def test_roots_at_the_end_of_the_analytic_bracket_are_found():
    """D_T dominates (D_F ~ 1e-80): the root is the bracket's upper end up to rounding, where a bracketing
    solver sees no sign change unless the bracket is widened (bracket_root): solved, and exact."""
    R, N, k, alpha, beta = 2186.9358993610044, 34974217.63109358, 602403.4339834928, 0.06209012216172191, 0.33780157614351614
    log_D_F, ok = solve_D_F(R, N, k, alpha, beta, log=True)
    assert bool(ok)
    expect = (np.log(R) - np.log(k) - beta * np.log(N)) / alpha   # D_F + D_T = D_T to double precision
    assert float(log_D_F) == pytest.approx(expect, rel=1e-12) and float(log_D_F) < -150
