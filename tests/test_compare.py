"""PSIS-LOO comparison of variants, the beta question, Pareto-k naming, and contrasts between distributions."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _transfer_fits import SETTINGS, separate_truth, shared_truth

import bayes_scaling as bs
from bayes_scaling import laws
from bayes_scaling.analysis.compare import (
    beta_evidence,
    compare_fits,
    compare_variants,
    contrasts,
    fit_variants,
    pareto_k_table,
)
from bayes_scaling.data.simulate import TABLE1, simulate_transfer
from bayes_scaling.errors import BayesScalingError


def test_table_is_tidy_and_ranked():
    _, _, cmp = shared_truth()
    t = cmp.table
    assert list(t["variant"]) == sorted(t["variant"], key=lambda v: t.set_index("variant").loc[v, "rank"])
    assert set(t["variant"]) == {"shared_beta", "separate_beta", "pooled"}
    best = t.iloc[0]
    assert best["elpd_diff"] == 0 and best["dse"] == 0
    assert np.all(t["elpd_diff"] <= 0) and np.all(t["se"] > 0)
    assert t["backend"].isin(["pymc", "nutpie"]).all() and t["backend"].nunique() == 1
    # elpd_diff is elpd minus the best elpd
    np.testing.assert_allclose(t["elpd_diff"], t["elpd"] - best["elpd"], atol=1e-8)


def test_pooled_is_far_worse_when_distributions_differ():
    """Table 1's k differ tenfold: one k, alpha for both distributions must lose by many standard errors."""
    _, _, cmp = shared_truth()
    pooled = cmp.table.set_index("variant").loc["pooled"]
    assert pooled["elpd_diff"] < -5 * pooled["dse"]


def test_loo_does_not_prefer_separate_beta_when_beta_is_shared():
    _, _, cmp = shared_truth()
    ev = beta_evidence(cmp)
    assert ev.elpd_diff < 2 * ev.dse + 1.0, str(ev)           # no strong preference for separate betas
    row = ev.differences.iloc[0]
    assert row["eti_lb"] < 0 < row["eti_ub"], str(ev)          # beta[A] - beta[B] compatible with 0
    assert abs(row["mean"]) < 0.03
    assert "elpd(separate_beta) - elpd(shared_beta)" in str(ev)


def test_loo_prefers_separate_beta_when_beta_differs():
    _, meta, cmp = separate_truth()
    t = cmp.table.set_index("variant")
    assert t.loc["separate_beta", "rank"] == 0
    shared = t.loc["shared_beta"]
    assert shared["elpd_diff"] < -4 and shared["elpd_diff"] < -2 * shared["dse"]
    ev = beta_evidence(cmp)
    assert ev.elpd_diff > 2 * ev.dse and ev.p_separate_better > 0.97
    row = ev.differences.set_index(["A", "B"]).loc[("text", "text+code")]
    true_diff = meta["truth"]["text"]["beta"] - meta["truth"]["text+code"]["beta"]   # -0.12
    assert row["eti_lb"] < true_diff < row["eti_ub"]
    assert row["eti_ub"] < 0 and row["p_gt_0"] < 0.01


def test_contrasts_recover_table1():
    """k[text+code] > k[text] and alpha[text+code] < alpha[text] in Table 1: the posterior says so surely, and the
    ratio and crossover intervals contain the truth."""
    _, meta, cmp = shared_truth()
    con = contrasts(cmp.fits["shared_beta"], pairs=[("text+code", "text")]).set_index("quantity")
    assert con.loc["P(k_A > k_B)", "mean"] > 0.99
    assert con.loc["P(alpha_A < alpha_B)", "mean"] > 0.99
    t = meta["truth"]
    ratio = t["text+code"]["k"] / t["text"]["k"]
    assert con.loc["k_A / k_B", "eti_lb"] < ratio < con.loc["k_A / k_B", "eti_ub"]
    d_alpha = t["text+code"]["alpha"] - t["text"]["alpha"]
    assert con.loc["alpha_A - alpha_B", "eti_lb"] < d_alpha < con.loc["alpha_A - alpha_B", "eti_ub"]
    star = laws.crossover(t["text"]["k"], t["text"]["alpha"], t["text+code"]["k"], t["text+code"]["alpha"])
    assert con.loc["log10 D_F*", "eti_lb"] < np.log10(star) < con.loc["log10 D_F*", "eti_ub"]
    assert con.loc["D_F* (crossover)", "unit"] == "characters"
    # far outside the data (1e5 .. 1e8): no crossover inside
    inside = [q for q in con.index if q.startswith("P(") and "inside the data" in q]
    assert con.loc[inside[0], "mean"] < 0.01


def test_contrasts_are_antisymmetric_and_validated():
    _, _, cmp = shared_truth()
    fit = cmp.fits["shared_beta"]
    ab = contrasts(fit, pairs=[("text", "text+code")]).set_index("quantity")
    ba = contrasts(fit, pairs=[("text+code", "text")]).set_index("quantity")
    np.testing.assert_allclose(ab.loc["log k_A - log k_B", "mean"], -ba.loc["log k_A - log k_B", "mean"])
    np.testing.assert_allclose(ab.loc["log10 D_F*", "median"], ba.loc["log10 D_F*", "median"])
    assert ab.loc["P(k_A > k_B)", "mean"] + ba.loc["P(k_A > k_B)", "mean"] == pytest.approx(1.0)
    with pytest.raises(BayesScalingError, match="two different distributions"):
        contrasts(fit, pairs=[("text", "python")])
    # separate betas: beta contrast instead of a crossover (which would depend on N)
    sep = contrasts(cmp.fits["separate_beta"]).set_index("quantity")
    assert "beta_A - beta_B" in sep.index and "P(beta_A > beta_B)" in sep.index
    assert "D_F* (crossover)" not in sep.index


def test_pareto_k_rows_name_the_data_table():
    """Rows are those of the data table (excluded rows skipped), with their pretraining, N, D_F."""
    data, _, cmp = shared_truth()
    fit = cmp.fits["shared_beta"]
    every = pareto_k_table(fit, threshold=-np.inf)
    assert len(every) == data.n_used
    assert not set(every["row"]) & set(data.excluded.index)
    merged = every.merge(data.table.reset_index(names="row"), on="row", suffixes=("", "_table"))
    for c in ("pretraining", "N", "D_F", "D_T"):
        assert (merged[c] == merged[f"{c}_table"]).all(), c
    assert len(pareto_k_table(fit)) == cmp.table.set_index("variant").loc["shared_beta", "n_pareto_k_bad"]


def test_outlier_is_named_with_high_pareto_k():
    """A run 20 noise-sds off the law is influential: its Pareto k exceeds 0.7 and it is named."""
    df, _ = simulate_transfer(seed=3, truth=TABLE1, N=np.logspace(5, 9, 5), D_F=np.logspace(5, 8, 5), n_ossified=0)
    df.loc[7, "D_T"] *= np.exp(3.0)
    df["D_E"] = df["D_F"] + df["D_T"]
    data = bs.TransferData.from_frame(df, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_variants(data, variants=("shared_beta",), seed=2, **SETTINGS)["shared_beta"]
    bad = pareto_k_table(fit)
    assert 7 in set(bad["row"]), bad
    r = bad.set_index("row").loc[7]
    assert r["pretraining"] == df.loc[7, "pretraining"] and r["N"] == df.loc[7, "N"] and r["pareto_k"] > 0.7


def test_errors():
    data, _, cmp = shared_truth()
    with pytest.raises(BayesScalingError, match="variants"):
        fit_variants(data, variants=("shared", "pooled"))
    with pytest.raises(BayesScalingError, match="at least two"):
        compare_fits({"shared_beta": cmp.fits["shared_beta"]})
    one = bs.TransferData.from_frame(data.used[data.used["pretraining"] == "text"], warn=False)
    with pytest.raises(BayesScalingError, match="one"):
        compare_variants(one)
    with pytest.raises(BayesScalingError, match="separate_beta"):
        beta_evidence(compare_fits({k: cmp.fits[k] for k in ("shared_beta", "pooled")}))
    assert isinstance(cmp.table, pd.DataFrame) and "variant" in str(cmp)
