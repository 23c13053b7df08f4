"""Posterior predictive checks, coverage, LOO-PIT (transfer fits and law-spec fits) and the prior predictive check."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SPEC_SIGMA as SIGMA
from helpers import quantile_mcse, spec_shared_truth
from helpers import transfer_shared_truth as shared_truth

from bayes_scaling.analysis.checks import (
    coverage,
    loo_pit,
    posterior_predictive,
    posterior_predictive_check,
    prior_predictive_check,
)
from bayes_scaling.errors import BayesScalingError
from bayes_scaling.models.transfer import ModelConfig


@pytest.fixture(scope="module")
def fit():
    return shared_truth()[2].fits["shared_beta"]


def test_ppc_table(fit):
    ppc = posterior_predictive_check(fit, ci_probs=(0.5, 0.9), seed=3)
    assert len(ppc) == fit.data.n_used
    assert (ppc["row"].to_numpy() == fit.data.used.index.to_numpy()).all()
    assert ((ppc["lb90"] <= ppc["lb50"]) & (ppc["lb50"] <= ppc["D_T_median"]) & (ppc["D_T_median"] <= ppc["ub50"])
            & (ppc["ub50"] <= ppc["ub90"])).all()
    # predictions track the observations: log errors about the noise sigma (0.15) in size
    err = np.log(ppc["D_T"] / ppc["D_T_median"])
    assert np.std(err) < 0.25 and abs(np.mean(err)) < 0.05
    assert ppc["inside90"].dtype == bool
    # the 90% interval of log D_T is about 2 * 1.645 * sigma wide (sigma = 0.15 plus parameter uncertainty)
    width = np.median(np.log(ppc["ub90"] / ppc["lb90"]))
    assert 2 * 1.645 * 0.12 < width < 2 * 1.645 * 0.22


def test_ppc_is_seeded(fit):
    a = posterior_predictive(fit, seed=7)["posterior_predictive"][fit.observed_name].values
    assert posterior_predictive(fit, seed=7) is posterior_predictive(fit, seed=7)   # cached
    from bayes_scaling.analysis import checks

    checks._PPC_CACHE.clear()
    b = posterior_predictive(fit, seed=7)["posterior_predictive"][fit.observed_name].values
    c = posterior_predictive(fit, seed=8)["posterior_predictive"][fit.observed_name].values
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_coverage_near_nominal_on_well_specified_data(fit):
    cov = coverage(fit, ci_probs=(0.5, 0.9), seed=3)
    assert list(cov["nominal"]) == [0.5, 0.9]
    for _, r in cov.iterrows():
        for col in ("in_sample", "loo"):
            assert 0 <= r[col] <= 1
            assert abs(r[col] - r["nominal"]) < 3 * r["binomial_se"] + 0.02, cov
        # the run was in the fit: in-sample intervals are not narrower than leave-one-out ones
        assert r["in_sample"] >= r["loo"] - 0.03


def test_loo_pit_uniform_when_well_specified(fit):
    pit = loo_pit(fit, seed=3)
    assert len(pit.values) == fit.data.n_used and np.all((pit.values >= 0) & (pit.values <= 1))
    assert pit.ks_pvalue > 0.05 and pit.ks_statistic < 0.15


def test_loo_pit_detects_a_misspecified_model():
    """The pooled variant (one k, alpha for two distributions whose k differ tenfold) is badly calibrated:
    its LOO-PIT values pile up at the ends or the middle, far from uniform."""
    pooled = shared_truth()[2].fits["pooled"]
    pit = loo_pit(pooled, seed=3)
    assert pit.ks_pvalue < 0.01, pit.ks_statistic


def test_prior_predictive_check():
    data = shared_truth()[0]
    pri = prior_predictive_check(data, draws=200, seed=4)
    par = pri.parameters.set_index(["parameter", "pretraining"])
    # default priors: beta ~ Normal(0.4, 0.4): 5%/95% quantiles near 0.4 -+ 1.645 * 0.4
    lo, hi = par.loc[("beta", ""), ["q05", "q95"]]
    assert lo == pytest.approx(0.4 - 1.645 * 0.4, abs=0.12) and hi == pytest.approx(0.4 + 1.645 * 0.4, abs=0.12)
    assert len(pri.runs) == data.n_used
    cov = pri.coverage.set_index("nominal")["observed"]
    assert 0 <= cov.loc[0.9] <= 1 and cov.loc[0.9] > 0.9     # weak priors cover the data
    assert 5 < pri.orders_90 < 30                           # but do not allow anything
    again = prior_predictive_check(data, draws=200, seed=4)
    np.testing.assert_array_equal(again.runs["prior_median"], pri.runs["prior_median"])


def test_prior_predictive_follows_the_config():
    data = shared_truth()[0]
    tight = prior_predictive_check(data, ModelConfig(priors={"beta": {"mu": 0.38, "sigma": 0.01}}),
                                   draws=200, seed=4)
    lo, hi = tight.parameters.set_index("parameter").loc["beta", ["q05", "q95"]]
    assert 0.35 < lo < hi < 0.41


def test_bad_arguments(fit):
    with pytest.raises(BayesScalingError, match="ci_probs"):
        coverage(fit, ci_probs=(0.5, 1.5))
    with pytest.raises(BayesScalingError, match="draws"):
        prior_predictive_check(fit, draws=3)


# ---- any law spec -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec_fit():
    """Chinchilla on two corpora, beta truly shared and fitted shared: a well-specified law-spec fit."""
    return spec_shared_truth()[1].fits["shared"]


def test_spec_ppc_table(spec_fit):
    ppc = posterior_predictive_check(spec_fit, ci_probs=(0.5, 0.9), seed=3)
    data = spec_fit.data
    assert len(ppc) == len(data) and (ppc["row"].to_numpy() == np.arange(len(data))).all()
    assert list(ppc.columns[:5]) == ["row", "corpus", "D", "N", "loss"]
    assert (ppc["loss"].to_numpy() == data["loss"].to_numpy()).all()
    assert ((ppc["lb90"] <= ppc["lb50"]) & (ppc["lb50"] <= ppc["loss_median"]) & (ppc["loss_median"] <= ppc["ub50"])
            & (ppc["ub50"] <= ppc["ub90"])).all()
    # a new run's 90% interval of log loss is about 2 * 1.645 * sigma wide (sigma = 0.01, plus the parameters')
    width = np.median(np.log(ppc["ub90"] / ppc["lb90"]))
    assert 2 * 1.645 * SIGMA * 0.8 < width < 2 * 1.645 * SIGMA * 1.5, width
    assert ppc.attrs["target"] == "loss" and ppc.attrs["log"] and ppc.attrs["groups"] == ["corpus"]


def test_spec_ppc_is_the_distribution_of_predict_observation(spec_fit):
    """One noise model: the replicated observations of the model's likelihood and Fit.predict(kind="observation")
    (without the discrepancy, which is 0 inside the data anyway) give the same intervals at the fitted rows, up to
    Monte Carlo error."""
    ppc = posterior_predictive_check(spec_fit, ci_probs=(0.9,), seed=3)
    pred = spec_fit.predict(spec_fit.data, kind="observation", ci_prob=0.9, seed=5, discrepancy=0)
    n_draws = spec_fit.posterior.sizes["chain"] * spec_fit.posterior.sizes["draw"]
    # two independent sets of noisy draws (autocorrelated: ESS taken as half the draws), each 5% quantile of log
    # loss with its MCSE; 3 MCSEs for each side: about 0.008, a quarter of the 90% interval's width (0.033)
    margin = 2 * 3 * quantile_mcse(SIGMA * 1.1, n_draws / 2, 0.05)
    for ours, theirs in (("lb90", "lo"), ("ub90", "hi"), ("loss_median", "median")):
        gap = np.abs(np.log(ppc[ours].to_numpy() / pred[theirs].to_numpy()))
        assert gap.max() < margin, (ours, gap.max(), margin)


def test_spec_coverage_near_nominal_on_well_specified_data(spec_fit):
    cov = coverage(spec_fit, ci_probs=(0.5, 0.9), seed=3)
    assert list(cov["nominal"]) == [0.5, 0.9] and (cov["n"] == 50).all()
    for _, r in cov.iterrows():
        for col in ("in_sample", "loo"):
            assert abs(r[col] - r["nominal"]) < 3 * r["binomial_se"] + 0.02, cov
        assert r["in_sample"] >= r["loo"] - 0.03


def test_spec_loo_pit_uniform_when_well_specified(spec_fit):
    pit = loo_pit(spec_fit, seed=3)
    assert len(pit.values) == 50 and np.all((pit.values >= 0) & (pit.values <= 1))
    assert list(pit.table.columns) == ["row", "corpus", "D", "N", "loss", "pit"]
    assert pit.ks_pvalue > 0.01 and pit.ks_statistic < 0.2, pit.ks_statistic
    assert loo_pit(spec_fit, seed=3).ks_statistic == pit.ks_statistic          # seeded


def test_spec_ppc_plot(spec_fit):
    from bayes_scaling.output import plots

    fig = plots.plot_ppc(spec_fit, seed=3)
    ax, ax2 = fig.axes
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "observed loss" and "LOO-PIT" in ax2.get_xlabel()
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"c1", "c2"}


def test_ppc_of_an_engine_transfer_fit_is_predict_observation(example_data):
    """A bs.fit of the transfer law (k sampled at the data's centre) is rebuilt with its centre for the check: its
    replicated runs and Fit.predict(kind="observation") give the same median of log D_T at every run, within
    Monte Carlo error (3 MCSEs each side, ESS taken as half the draws); its log-likelihood computed afterwards."""
    import bayes_scaling as bs

    table = example_data.used[["pretraining", "N", "D_F", "D_T"]].reset_index(drop=True)
    fit = bs.fit(table, "transfer", seed=2, draws=300, tune=300, chains=2, warn=False, log_likelihood=False)
    assert set(fit.centring) == {"k"}
    ppc = posterior_predictive_check(fit, ci_probs=(0.9,), seed=3)
    pred = fit.predict(table, kind="observation", ci_prob=0.9, seed=5, discrepancy=0)
    sigma = float(fit.posterior["sigma"].median())
    margin = 2 * 3 * quantile_mcse(sigma * 1.1, 600 / 2, 0.5)
    gap = np.abs(np.log(ppc["D_T_median"].to_numpy() / pred["median"].to_numpy()))
    assert gap.max() < margin, (gap.max(), margin)


def test_spec_prior_predictive_of_a_table_follows_the_spec_priors():
    """Any law: the prior quantiles are the spec's priors (alpha ~ Normal(0.3, 0.05): 5%/95% at 0.3 -+ 0.082,
    within the quantiles' Monte Carlo error at 400 draws), one row per group of a pooled parameter, and the runs'
    prior predictive interval is reproducible with the seed."""
    from bayes_scaling.laws.spec import LawSpec

    data = spec_shared_truth()[0]
    spec = LawSpec.from_dict({"law": {"formula": "E + A * N**(-alpha)", "target": "loss"},
                              "parameters": {"E": {"median": 1.7, "sigma": 0.3},
                                             "A": {"by": "corpus", "median": 400.0, "sigma": 1.0},
                                             "alpha": {"domain": "real", "mu": 0.3, "sigma": 0.05}}})
    table = data[["corpus", "N", "loss"]]
    pri = prior_predictive_check(table, model=spec, draws=400, seed=5)
    par = pri.parameters.set_index(["parameter", "corpus"])
    lo, hi = par.loc[("alpha", ""), ["q05", "q95"]]
    from scipy import stats

    # 4 Monte Carlo standard errors of the 5% quantile of Normal(., 0.05) from 400 independent draws (0.021)
    tol = 4 * np.sqrt(0.05 * 0.95 / 400) / (stats.norm.pdf(1.645) / 0.05)
    assert lo == pytest.approx(0.3 - 1.645 * 0.05, abs=tol) and hi == pytest.approx(0.3 + 1.645 * 0.05, abs=tol)
    assert set(par.loc["A"].index) == set(table["corpus"].astype(str))
    assert par.loc[("E", ""), "median"] == pytest.approx(1.7, rel=0.1)
    assert len(pri.runs) == len(table) and pri.target == "loss" and pri.scale == "log"
    assert 0 < pri.orders_90 < 10
    again = prior_predictive_check(table, model=spec, draws=400, seed=5)
    np.testing.assert_array_equal(again.runs["prior_median"], pri.runs["prior_median"])


def test_spec_prior_predictive_of_a_fit_and_bad_inputs(spec_fit):
    pri = prior_predictive_check(spec_fit, draws=100, seed=1)
    assert pri.target == spec_fit.spec.target and len(pri.runs) == len(spec_fit.table)
    assert {"sigma"} <= set(pri.parameters["parameter"])
    with pytest.raises(BayesScalingError, match="model: give the law"):
        prior_predictive_check(spec_fit.table, draws=100)
    with pytest.raises(BayesScalingError, match="transfer law only"):
        prior_predictive_check(spec_fit, ModelConfig(), draws=100)
    with pytest.raises(BayesScalingError, match="transfer data set"):
        prior_predictive_check(shared_truth()[0], model="chinchilla", draws=100)
