"""Posterior predictions, the new-distribution (population) prediction, exchange rate, crossover, distance
outside the data; closed forms with a Table 1 'posterior', and a real small fit of the bundled data."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from helpers import CENTRE, table1_fit

from bayes_scaling import laws
from bayes_scaling.analysis import predictions
from bayes_scaling.analysis.predictions import NEW, crossover, crossover_probability, exchange_rate, predict
from bayes_scaling.cli import main
from bayes_scaling.errors import BayesScalingError

SAMPLE = ("chain", "draw")


@pytest.fixture(scope="module")
def t1():
    return table1_fit()


def test_doctests():
    assert doctest.testmod(predictions).failed == 0


# ---- closed forms (Table 1 in every draw) ----------------------------------------------------------------


def test_table1_multiplier_exchange_rate_crossover(t1):
    pred = predict(t1, N=4e7, D_F=3e5, pretraining="text")
    np.testing.assert_allclose(pred["multiplier"].values, 475.6, atol=0.05)
    np.testing.assert_allclose(pred["D_E"].values, pred["D_T"].values + 3e5)
    np.testing.assert_allclose(pred["fraction"].values, pred["D_T"].values / pred["D_E"].values)
    er = exchange_rate(t1, 100)
    np.testing.assert_allclose(er.sel(pretraining="text").values, 8.9, atol=0.05)
    cross = crossover(t1, "text", "text+code")
    np.testing.assert_allclose(cross.values, 2.6e12, rtol=0.03)
    assert cross.dims == SAMPLE
    assert crossover_probability(cross, 1e12, 1e13) == 1.0
    assert crossover_probability(cross, 1e5, 1e8) == 0.0      # not within the measured range
    assert predictions.orders_outside(float(cross.median()), 1e5, 1e8) == pytest.approx(4.42, abs=0.01)


def test_shapes_coords_and_distance_outside(t1):
    pred = predict(t1, N=[1e6, 4e7, 1e11], D_F=[1e3, 3e5], pretraining=["text+code", "text"])
    for v in ("D_T", "D_E", "multiplier", "fraction"):
        assert pred[v].dims == ("chain", "draw", "pretraining", "N", "D_F")
        assert pred[v].shape == (2, 5, 2, 3, 2)
    assert list(pred["pretraining"].values) == ["text+code", "text"]
    np.testing.assert_allclose(pred["N_orders_outside"].values, [0.0, 0.0, 2.0])        # data: N <= 1e9
    np.testing.assert_allclose(pred["D_F_orders_outside"].values, [-2.0, 0.0])          # data: D_F >= 1e5
    table = predictions.extrapolation(t1, N=[1.75e11], D_F=300)
    assert table["orders_outside"].round(3).tolist() == [2.243, -2.523]


def test_noise_is_seeded_and_has_the_fitted_scale():
    fit = table1_fit(chains=2, draws=2000, sigma=0.5)
    a = predict(fit, N=1e8, D_F=1e6, noise=True, seed=3)
    b = predict(fit, N=1e8, D_F=1e6, noise=True, seed=3)
    c = predict(fit, N=1e8, D_F=1e6, noise=True, seed=4)
    np.testing.assert_array_equal(a["D_T"].values, b["D_T"].values)
    assert not np.allclose(a["D_T"].values, c["D_T"].values)
    log_dt = np.log(a["D_T"].sel(pretraining="text").values.ravel())
    assert np.std(log_dt) == pytest.approx(0.5, rel=0.05)
    mean = np.log(laws.transfer(1e6, 1e8, 1.9e4, 0.18, 0.38))
    assert np.mean(log_dt) == pytest.approx(mean, abs=0.03)
    # without noise the mean function does not depend on the seed
    np.testing.assert_array_equal(predict(fit, N=1e8, D_F=1e6, seed=1)["D_T"].values,
                                  predict(fit, N=1e8, D_F=1e6, seed=2)["D_T"].values)


def test_new_distribution_from_the_hierarchy():
    # tiny spreads: the new distribution is the population mean = the text values
    fit = table1_fit()
    pred = predict(fit, N=4e7, D_F=3e5, pretraining=[NEW], seed=0)
    np.testing.assert_allclose(pred["multiplier"].values, 475.6, atol=0.1)
    # real spreads: alpha[new] ~ Normal(alpha_mu, alpha_sigma), log k = a - alpha c_F - beta c_N
    fit = table1_fit(chains=2, draws=3000, a_sigma=0.4, alpha_sigma=0.05)
    par = predictions.parameters(fit, ["text", NEW], seed=5).sel(pretraining=NEW)
    alpha = par["alpha"].values.ravel()
    assert np.mean(alpha) == pytest.approx(0.18, abs=0.005)
    assert np.std(alpha) == pytest.approx(0.05, rel=0.05)
    a = par["log_k"].values + par["alpha"].values * CENTRE[0] + 0.38 * CENTRE[1]
    assert np.std(a) == pytest.approx(0.4, rel=0.05)
    np.testing.assert_array_equal(predictions.parameters(fit, NEW, seed=5)["alpha"].values.ravel(), alpha)
    assert not np.array_equal(predictions.parameters(fit, NEW, seed=6)["alpha"].values.ravel(), alpha)


def test_new_distribution_refused_without_hierarchy():
    fit = table1_fit(hierarchy=False)
    with pytest.raises(BayesScalingError, match="no hierarchy"):
        predict(fit, N=1e8, D_F=1e6, pretraining=NEW)
    assert predict(fit, N=1e8, D_F=1e6, pretraining="text")["D_T"].shape == (2, 5, 1, 1, 1)


@pytest.mark.parametrize("kw, match", [
    ({"N": 0, "D_F": 1e5}, "N must be finite and > 0"),
    ({"N": [1e7, -1.0], "D_F": 1e5}, "N must be finite and > 0; got -1"),
    ({"N": 1e7, "D_F": float("nan")}, "D_F must be finite and > 0"),
    ({"N": 1e7, "D_F": []}, "D_F must be a number or a non-empty"),
    ({"N": 1e7, "D_F": 1e5, "pretraining": "code"}, "unknown pre-training distribution.*'code'.*text"),
])
def test_bad_inputs(t1, kw, match):
    with pytest.raises(BayesScalingError, match=match):
        predict(t1, **kw)


def test_bad_derived_inputs(t1):
    with pytest.raises(BayesScalingError, match="C"):
        exchange_rate(t1, -10)
    with pytest.raises(BayesScalingError, match="two different"):
        crossover(t1, "text", "text")
    with pytest.raises(BayesScalingError, match="0 < low < high"):
        crossover_probability(crossover(t1, "text", "text+code"), 1e8, 1e5)


def test_crossover_needs_shared_beta(t1):
    fit = table1_fit(beta=0.30)   # text's beta differs from text+code's (0.38): put beta per distribution
    post = fit.tree["posterior"].to_dataset()
    beta = post["alpha"].copy(data=np.stack([np.full((2, 5), 0.30), np.full((2, 5), 0.38)], -1))
    fit.tree["posterior"] = fit.tree["posterior"].to_dataset().assign(beta=beta)
    with pytest.raises(BayesScalingError, match="shared beta"):
        crossover(fit, "text", "text+code")


# ---- a real (small) fit of the bundled synthetic data (truth = Table 1) ---------------------------------


def test_real_fit_recovers_table1_quantities(small_fit):
    pred = predict(small_fit, N=4e7, D_F=3e5, pretraining="text")
    lo, hi = np.quantile(pred["multiplier"].values, [0.05, 0.95])
    assert lo < 475.6 < hi and hi / lo < 1.5
    er = exchange_rate(small_fit, 100).sel(pretraining="text").values
    assert np.quantile(er, 0.05) < 8.9 < np.quantile(er, 0.95)
    cross = crossover(small_fit, "text", "text+code")
    assert cross.shape == (small_fit.posterior.sizes["chain"], small_fit.posterior.sizes["draw"])
    lo, hi = np.quantile(cross.values, [0.05, 0.95])
    assert lo < 2.6e12 < hi
    assert crossover_probability(cross, 1e5, 1e8) < 0.05       # the curves do not cross in the data
    new = predict(small_fit, N=4e7, D_F=3e5, pretraining=NEW, seed=1)["multiplier"].values
    # the population prediction is wider than a fitted distribution's
    assert np.subtract(*np.quantile(np.log(new), [0.95, 0.05])) > 3 * np.subtract(
        *np.quantile(np.log(pred["multiplier"].values), [0.95, 0.05]))


def test_cli_predict(small_fit, tmp_path, capsys):
    path = small_fit.save(tmp_path / "fit.nc")
    assert main(["predict", str(path), "--N", "4e7", "1e11", "--D-F", "3e5", "--pretraining", "text", "new",
                 "--out", str(tmp_path / "draws.csv")]) == 0
    out = capsys.readouterr().out
    assert "multiplier median [94%]" in out and "new (population)" in out and "+2.00" in out
    assert (tmp_path / "draws.csv").is_file()
    assert main(["predict", str(path), "--N", "4e7", "--D-F", "3e5", "--csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("pretraining,N,D_F,D_T_lo,D_T,D_T_hi")
    assert main(["predict", str(path), "--N", "4e7", "--D-F", "3e5", "--pretraining", "code"]) == 2
    assert "unknown pre-training distribution" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(path), "--N", "0", "--D-F", "3e5"])
    assert exc.value.code == 2
    assert "expected a finite number > 0" in capsys.readouterr().err


def test_separate_beta_new_distribution_and_student_t_noise():
    fit = table1_fit(chains=2, draws=3000)
    post = fit.tree["posterior"].to_dataset()
    shape = (2, 3000)
    beta = post["alpha"].copy(data=np.stack([np.full(shape, 0.38), np.full(shape, 0.30)], -1))
    post = post.assign(beta=beta, beta_mu=(("chain", "draw"), np.full(shape, 0.34)),
                       beta_sigma=(("chain", "draw"), np.full(shape, 0.02)), nu=(("chain", "draw"), np.full(shape, 3.0)))
    fit.tree["posterior"] = post
    par = predictions.parameters(fit, ["text+code", NEW], seed=0)
    np.testing.assert_allclose(par["beta"].sel(pretraining="text+code").values, 0.30)
    new_beta = par["beta"].sel(pretraining=NEW).values.ravel()
    assert np.mean(new_beta) == pytest.approx(0.34, abs=0.002) and np.std(new_beta) == pytest.approx(0.02, rel=0.05)
    # Student-t noise (nu = 3): heavier tails than the Normal with the same sigma
    pred = predict(fit, N=1e8, D_F=1e6, pretraining="text", noise=True, seed=1)
    eps = (np.log(pred["D_T"].values.ravel()) - np.log(laws.transfer(1e6, 1e8, 1.9e4, 0.18, 0.38))) / 0.15
    assert np.mean(np.abs(eps) > 3) > 0.03            # Normal: 0.0027; t(3): 0.058
    assert np.median(np.abs(eps)) == pytest.approx(0.765, abs=0.06)   # median |t_3|


def test_one_predict_for_every_fit(t1):
    """bs.predict: a law-spec Fit's predictions are Fit.predict's (the same kinds); a transfer fit's
    kind="observation" is its noise=True; a wrong kind or argument set is a clear error."""
    import warnings

    import bayes_scaling as bs

    a = predict(t1, N=1e8, D_F=1e6, kind="observation", seed=3)
    b = predict(t1, N=1e8, D_F=1e6, noise=True, seed=3)
    np.testing.assert_array_equal(a["D_T"].values, b["D_T"].values)
    assert a.attrs["noise"] == 1 and predict(t1, N=1e8, D_F=1e6).attrs["noise"] == 0
    with pytest.raises(ValueError, match="kind must be 'mean' or 'observation'"):
        predict(t1, N=1e8, D_F=1e6, kind="noise")
    with pytest.raises(ValueError, match="grid N x D_F"):
        predict(t1, N=1e8, D_F=1e6, ci_prob=0.9)
    pts = pd.DataFrame({"pretraining": ["text", "text+code"], "N": [1e8, 1e9], "D_F": [1e6, 1e7]})
    pd.testing.assert_frame_equal(predict(t1, pts, ci_prob=0.9, seed=2), t1.predict(pts, ci_prob=0.9, seed=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec_fit = bs.fit(pd.DataFrame({"x": np.logspace(0, 2, 12), "y": 2.0 * np.logspace(0, 2, 12) ** 0.5
                                        * np.exp(np.random.default_rng(0).normal(0, 0.02, 12))}),
                          {"law": {"formula": "a * x**b", "target": "y"}, "parameters": {"a": {}, "b": {}}},
                          seed=1, draws=100, tune=100, chains=1, progressbar=False)
    points = pd.DataFrame({"x": [5.0, 1e3]})
    for kind in ("mean", "observation"):
        pd.testing.assert_frame_equal(bs.predict(spec_fit, points, kind, ci_prob=0.9, seed=2),
                                      spec_fit.predict(points, kind, ci_prob=0.9, seed=2))
    with pytest.raises(ValueError, match="predicts at points"):
        bs.predict(spec_fit, N=1e8, D_F=1e6)


def test_new_distribution_of_an_engine_fit_is_drawn_at_the_centre(small_fit):
    """The engine samples k at the data's centre, so a new distribution is drawn there too (log k_c ~
    Normal(log_k_at_centre_mu, log_k_at_centre_sigma), log k = log k_c - alpha c_F - beta c_N): the two routes,
    predictions.parameters for NEW and the engine's draws of an unseen group (Fit.predict), give the same mean of
    log k, and log k falls with alpha as the centring implies (drawn independently at D_F = N = 1 the
    correlation would be about 0)."""
    from helpers import means_agree

    from bayes_scaling.models import spec_model as sm

    assert "log_k_at_centre_sigma" in small_fit.posterior and predictions.has_hierarchy(small_fit)
    par = predictions.parameters(small_fit, NEW, seed=3).sel(pretraining=NEW)
    new = sm.prepare(small_fit.spec, pd.DataFrame({"pretraining": ["unseen"], "N": [1e8], "D_F": [1e6]}),
                     labels=small_fit.labels, target=False)
    draws = small_fit._param_draws(new, np.random.default_rng(4))
    a, b = np.log(draws["k"][:, 0]), par["log_k"].values.ravel()
    assert means_agree(a, b, len(a), len(b)), (a.mean(), b.mean())
    assert np.corrcoef(a, draws["alpha"][:, 0])[0, 1] < -0.4
    assert np.corrcoef(b, par["alpha"].values.ravel())[0, 1] < -0.4
