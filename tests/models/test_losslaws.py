"""From-scratch loss laws: validation, closed forms, recovery on simulated data, the real Chinchilla data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import EPOCH_95, epoch_chinchilla, inside

from bayes_scaling.data.simulate import EPOCH_CHINCHILLA, KAPLAN_WEBTEXT2, simulate_losses
from bayes_scaling.errors import ConfigError, DataError, FitFileError
from bayes_scaling.inference.scratch import fit_scratch, load_scratch_fit
from bayes_scaling.models.losslaws import (
    LossLawConfig,
    _centres,
    converged_data,
    law_loss,
    law_parameters,
    read_scratch,
)

#: these tests exercise the deprecated wrappers fit_scratch / fit_joint (their FutureWarning is tested in test_spec)
pytestmark = pytest.mark.filterwarnings("ignore:fit_(scratch|joint) is deprecated:FutureWarning")

REPO = Path(__file__).resolve().parents[2]
#: Epoch AI's 95% bootstrap intervals (Besiroglu et al. 2024; ../shared/reference/transfer-scaling.md)


def small(**kw):
    return dict(dict(draws=300, tune=300, chains=2, progressbar=False, warn=False), **kw)


# ---- validation ------------------------------------------------------------------------------------------


def test_read_scratch_rejects_bad_losses():
    df = pd.DataFrame({"N": [1e6] * 4, "D": [1e6, 1e7, 1e8, 1e9], "loss": [3.0, 0.0, -1.0, 2.0]})
    with pytest.raises(DataError, match=r"column 'loss' must be > 0; rows 1, 2"):
        read_scratch(df)
    df["loss"] = [3.0, np.nan, 2.5, np.inf]
    with pytest.raises(DataError, match=r"'loss' has missing or infinite values at rows 1, 3"):
        read_scratch(df)
    with pytest.raises(DataError, match=r"missing column\(s\) 'loss'"):
        read_scratch(df.drop(columns="loss"))


def test_read_scratch_duplicates_named_or_kept_as_replicates():
    df = pd.DataFrame({"N": [1e6, 1e6, 1e7, 1e6], "D": [1e8, 1e9, 1e8, 1e8], "loss": [3.0, 2.8, 2.9, 3.1]})
    with pytest.raises(DataError, match=r"N=1e\+06, D=1e\+08 at rows 0, 3 \(losses 3, 3.1\)"):
        read_scratch(df)
    kept = read_scratch(df, duplicates="mean")
    assert len(kept) == 4  # replicates are all kept (nothing dropped)
    with pytest.raises(ValueError, match="duplicates="):
        read_scratch(df, duplicates="drop")


def test_config_and_too_few_rows():
    with pytest.raises(ConfigError, match="law 'gpt'"):
        LossLawConfig(law="gpt")
    with pytest.raises(ConfigError, match="unknown prior 'zeta'"):
        LossLawConfig(priors={"zeta": {"mu": 1}})
    with pytest.raises(DataError, match="3 row"):
        fit_scratch(pd.DataFrame({"N": [1e6, 1e7, 1e8], "D": [1e8] * 3, "loss": [3, 2.9, 2.8]}))


# ---- closed forms ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("law,params", [("kaplan", KAPLAN_WEBTEXT2), ("chinchilla", EPOCH_CHINCHILLA)])
def test_converged_data_is_within_one_percent(law, params):
    N = np.logspace(6, 10, 5)
    D_N = converged_data(law, N, params)
    L_inf = law_loss(law, N, np.inf, params)
    np.testing.assert_allclose(law_loss(law, N, D_N, params), 1.01 * L_inf, rtol=1e-10)
    if law == "kaplan":  # closed form: D(N) = D_c (N/N_c)^(aN/aD) / (1.01^(1/aD) - 1)
        p = params
        expect = p["D_c"] * (N / p["N_c"]) ** (p["alpha_N"] / p["alpha_D"]) / (1.01 ** (1 / p["alpha_D"]) - 1)
    else:  # D(N) = (B / (0.01 L_inf))^(1/aD)
        expect = (params["B"] / (0.01 * L_inf)) ** (1 / params["alpha_D"])
    np.testing.assert_allclose(D_N, expect, rtol=1e-10)


@pytest.mark.parametrize("law", ["kaplan", "chinchilla"])
def test_centred_parametrisation_is_the_same_law(law):
    """The model evaluates laws.py on N e^{-c_N}, D e^{-c_D} with scaled parameters: same loss."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"N": 10 ** rng.uniform(6, 9, 20), "D": 10 ** rng.uniform(7, 11, 20), "loss": 3.0})
    c = _centres(df)
    if law == "chinchilla":
        sampled = {"log_E": 0.5, "a_c": -1.0, "b_c": -0.8, "alpha_N": 0.34, "alpha_D": 0.37}
    else:
        sampled = {"log_L_c": 1.1, "w": 0.3, "alpha_D": 0.1, "r": 0.8}
    natural, scaled = law_parameters(law, sampled, c, np)
    direct = law_loss(law, df["N"].to_numpy(), df["D"].to_numpy(), natural)
    centred = law_loss(law, df["N"].to_numpy() * np.exp(-c["c_N"]), df["D"].to_numpy() * np.exp(-c["c_D"]), scaled)
    np.testing.assert_allclose(direct, centred, rtol=1e-10)
    if law == "kaplan":  # log_L_c is the log loss at the centre
        at_centre = law_loss(law, np.exp(c["c_N"]), np.exp(c["c_D"]), natural)
        assert np.log(at_centre) == pytest.approx(1.1, rel=1e-10)


# ---- recovery on simulated data ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def kaplan_sim():
    scratch, _, meta = simulate_losses(seed=11)
    return scratch, meta


@pytest.fixture(scope="module")
def kaplan_fit(kaplan_sim):
    return fit_scratch(kaplan_sim[0], law="kaplan", seed=3, **small())


def test_kaplan_recovers_truth(kaplan_fit, kaplan_sim):
    s = kaplan_fit.summary(0.95).set_index("parameter")
    for name, true in kaplan_sim[1]["law_params"].items():
        assert inside(s.loc[name], true, 0.95), (name, true, s.loc[name])
    assert s.loc["sigma", "eti95_lb"] <= 0.005 <= s.loc["sigma", "eti95_ub"]
    assert kaplan_fit.diagnostics.divergences == 0
    assert set(kaplan_fit.parameters) <= set(kaplan_fit.posterior.data_vars)
    assert kaplan_fit.posterior["N_c"].dims == ("chain", "draw")


def test_loss_and_inverse_are_consistent(kaplan_fit):
    N, D = np.array([1e6, 1e8]), np.array([1e7, 1e9])
    L = kaplan_fit.loss(N, D)
    assert L.dims == ("chain", "draw", "point")
    # the loss of draw (0, 0), inverted by every draw: draw (0, 0) gives D back, the spread is the uncertainty
    D_back = kaplan_fit.inverse(L.values[0, 0], N)
    np.testing.assert_allclose(D_back.values[0, 0], D, rtol=1e-8)
    assert float(D_back.std()) > 0
    assert kaplan_fit.inverse(3.5, 1e8).dims == ("chain", "draw")
    # a loss below L(N, inf) is unreachable in every draw
    assert np.isinf(kaplan_fit.inverse(1.0, 1e8).values).all()
    assert (kaplan_fit.converged_data([1e6, 1e9]).median(("chain", "draw")).values > 1e8).all()


def test_save_load_round_trip(kaplan_fit, tmp_path):
    path = kaplan_fit.save(tmp_path / "scratch.nc")
    back = load_scratch_fit(path)
    assert back.law == "kaplan" and back.config.to_dict() == kaplan_fit.config.to_dict()
    np.testing.assert_array_equal(back.posterior["D_c"].values, kaplan_fit.posterior["D_c"].values)
    pd.testing.assert_frame_equal(back.data[["N", "D", "loss"]], kaplan_fit.data[["N", "D", "loss"]])
    with pytest.raises(FitFileError, match="not found"):
        load_scratch_fit(tmp_path / "missing.nc")


def test_chinchilla_recovery_and_seed_reproducibility():
    scratch, _, meta = simulate_losses(seed=4, law="chinchilla", sigma=0.003,
                                       N=np.logspace(7, 10, 5), D=np.logspace(8, 12, 9))
    a = fit_scratch(scratch, law="chinchilla", seed=5, **small())
    b = fit_scratch(scratch, law="chinchilla", seed=5, **small())
    np.testing.assert_array_equal(a.posterior["E"].values, b.posterior["E"].values)
    s = a.summary(0.95).set_index("parameter")
    for name, true in meta["law_params"].items():
        assert inside(s.loc[name], true, 0.95), (name, true)


# ---- the real data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("likelihood", ["student_t", pytest.param("normal", marks=pytest.mark.slow)])
def test_chinchilla_real_data_inside_epoch_intervals(likelihood):
    """Default settings (4 x 1000): medians inside Epoch's 95% intervals; no divergences, R-hat <= 1.01,
    bulk ESS >= 1000. Both likelihoods get inside (Student-t close to Epoch's point estimates; Normal pulled
    towards the upper ends of E, B, alpha_D by the remaining outliers)."""
    runs, dropped = epoch_chinchilla()
    assert len(runs) == 240 and len(dropped) == 5 and dropped["loss"].min() > runs["loss"].max()
    fit = fit_scratch(runs, law="chinchilla", likelihood=likelihood, seed=1, progressbar=False)
    diag = fit.diagnostics
    assert diag.divergences == 0 and diag.r_hat_max <= 1.01 and diag.ess_bulk_min >= 1000, str(diag)
    s = fit.summary(0.95).set_index("parameter")
    for name, (lo, hi) in EPOCH_95.items():
        assert lo <= s.loc[name, "median"] <= hi, (name, s.loc[name, "median"], (lo, hi))


def test_law_inversion_intervals_cover_true_effective_data(kaplan_fit):
    """D_E by law inversion: with the measurement noise (default) the 90% intervals cover the true D_E of
    ~90% of the low-data runs; inverting the measured loss alone (law uncertainty only) covers far fewer."""
    from bayes_scaling.analysis.effective import effective_data

    scratch, finetune, _ = simulate_losses(seed=11)
    cover = {}
    for noise in (True, False):
        t = effective_data(scratch, finetune, method="law", scratch_fit=kaplan_fit, noise=noise, ci_prob=0.9,
                           warn=False).table
        ok = (t["regime"] == "low") & (t["out_of_range"] == "")
        inside = (t["D_E_lb"] <= finetune["true_D_E"]) & (finetune["true_D_E"] <= t["D_E_ub"])
        cover[noise] = float(inside[ok].mean())
    assert 0.75 <= cover[True] <= 1.0 and cover[False] < 0.5, cover


def test_cli_fit_scratch(tmp_path, capsys):
    from bayes_scaling.cli import main
    from bayes_scaling.data.datasets import SCRATCH_LOSSES_CSV

    out = tmp_path / "s.nc"
    rc = main(["fit-scratch", str(SCRATCH_LOSSES_CSV), "--law", "kaplan", "--out", str(out), "--draws", "100",
               "--tune", "100", "--chains", "1"])
    text = capsys.readouterr().out
    assert rc == 0 and "N_c" in text and "94% ETI" in text and load_scratch_fit(out).law == "kaplan"
    ran = load_scratch_fit(out).backend  # the back end that ran, not the requested "auto"
    assert ran in ("nutpie", "pymc") and f"NUTS back end: {ran}, seed 1;" in text
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"N": [1e6, 1e6], "D": [1e8, 1e9], "loss": [3.0, -2.0]}).to_csv(bad, index=False)
    rc = main(["fit-scratch", str(bad), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "column 'loss' must be > 0; rows 1" in err and len(err.strip().splitlines()) == 1


def test_laplace_whitening_is_exact_on_a_gaussian_posterior():
    """Linear regression with Normal priors: the posterior is Gaussian, so the Laplace approximation is exact:
    ``m`` is the posterior mean and ``L L^T`` its covariance (the Hessian comes from PyMC's gradient graph)."""
    import pymc as pm

    from bayes_scaling.models.losslaws import laplace_whitening, whitened_vector

    x = np.array([-1.5, -0.4, 0.3, 1.1, 2.0, 2.7])
    y = np.array([0.2, 0.9, 1.6, 2.1, 3.2, 3.6])
    s, prior_sd = 0.3, 2.0
    spec = [("a", "normal", 0.5, prior_sd), ("b", "normal", -0.5, prior_sd)]

    def build(m, L):
        model = pm.Model()
        vals = whitened_vector(model, spec, m, L)
        with model:
            pm.Normal("y", vals["a"] + vals["b"] * x, s, observed=y)
        return model

    m, L = laplace_whitening(build, spec)
    X = np.column_stack([np.ones_like(x), x])
    precision = X.T @ X / s ** 2 + np.eye(2) / prior_sd ** 2
    cov = np.linalg.inv(precision)
    mean = cov @ (X.T @ y / s ** 2 + np.array([0.5, -0.5]) / prior_sd ** 2)
    np.testing.assert_allclose(m, mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(L @ L.T, cov, rtol=1e-8)
