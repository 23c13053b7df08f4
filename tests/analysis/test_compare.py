"""PSIS-LOO comparison of variants and of the sharing of a law-spec parameter, the beta question, Pareto-k naming,
and contrasts between groups (transfer fits and law-spec fits)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import SPEC, draws_inside, spec_separate_truth, spec_shared_truth
from helpers import SPEC_SEPARATE_TRUTH as SEPARATE_TRUTH
from helpers import SPEC_SHARED_TRUTH as SHARED_TRUTH
from helpers import TRANSFER_SETTINGS as SETTINGS
from helpers import transfer_separate_truth as separate_truth
from helpers import transfer_shared_truth as shared_truth

import bayes_scaling as bs
from bayes_scaling import laws
from bayes_scaling.analysis.compare import (
    beta_evidence,
    compare_fits,
    compare_variants,
    contrasts,
    fit_variants,
    loo,
    pareto_k_table,
    sharing_alternatives,
    sharing_evidence,
    sharing_variants,
    target_difference,
)
from bayes_scaling.data.simulate import TABLE1, simulate_transfer
from bayes_scaling.errors import BayesScalingError, ConfigError
from bayes_scaling.inference.fit import Fit
from bayes_scaling.laws.spec import builtin_spec


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


# ---- any law spec: PSIS-LOO, sharing of a parameter, contrasts between groups ------------------------------



def test_loo_prefers_shared_beta_when_it_is_shared():
    """beta truly shared: the shared variant ranks first, ahead of separate betas by more than the standard
    error of the difference (the separate variant pays for its extra parameter), and far ahead of beta fixed at a
    wrong value; the separate variant's beta[c1] - beta[c2] is compatible with 0."""
    _, cmp = spec_shared_truth()
    t = cmp.table.set_index("variant")
    assert t.loc["shared", "rank"] == 0, str(cmp)
    sep = t.loc["separate"]
    assert sep["elpd_diff"] < -sep["dse"] < 0, str(cmp)
    wrong = t.loc["fixed=0.4"]
    assert wrong["elpd_diff"] < -4 * wrong["dse"] and wrong["elpd_diff"] < -10, str(cmp)
    assert cmp.parameter == "beta" and cmp.by == "corpus" and "sharing of beta across corpus" in str(cmp)
    assert cmp.pareto.empty or set(cmp.pareto.columns) >= {"variant", "row", "corpus", "N", "D", "loss"}
    ev = sharing_evidence(cmp)
    assert (ev.shared, ev.varying, ev.by) == ("shared", "separate", "corpus")
    assert ev.elpd_diff < 0 and ev.p_varying_better < 0.5
    row = ev.differences.iloc[0]
    assert (row["A"], row["B"], row["quantity"]) == ("c1", "c2", "beta_A - beta_B")
    assert draws_inside(_beta_diff(cmp.fits["separate"]), 0.0, 0.94, ess=_ess(cmp.fits["separate"]))
    assert "elpd(separate) - elpd(shared)" in str(ev) and "beta[c1] - beta[c2]" in str(ev)
    # the variants' specs: only beta changed
    shared, fixed = cmp.fits["shared"].spec, cmp.fits["fixed=0.4"].spec
    assert shared.hash() == SPEC.hash() and fixed.parameters["beta"].fixed == 0.4 and "beta" not in \
        cmp.fits["fixed=0.4"].posterior


def _beta_diff(fit):
    post = fit.posterior["beta"]
    return (post.sel(corpus="c1") - post.sel(corpus="c2")).values.ravel()


def _ess(fit):
    return float(fit.summary().query("parameter == 'beta'")["ess_tail"].min())


def test_loo_prefers_separate_beta_when_it_differs():
    """beta truly separate (0.25 vs 0.31): separate ranks first and the shared variant loses by many standard
    errors; the posterior difference of the betas covers the truth."""
    _, cmp = spec_separate_truth()
    t = cmp.table.set_index("variant")
    assert t.loc["separate", "rank"] == 0, str(cmp)
    shared = t.loc["shared"]
    assert shared["elpd_diff"] < -4 * shared["dse"] and shared["elpd_diff"] < -10, str(cmp)
    ev = sharing_evidence(cmp, "beta")
    assert ev.elpd_diff > 4 * ev.dse and ev.p_varying_better > 0.99
    truth = SEPARATE_TRUTH["beta"]["c1"] - SEPARATE_TRUTH["beta"]["c2"]
    fit = cmp.fits["separate"]
    assert draws_inside(_beta_diff(fit), truth, 0.94, ess=_ess(fit)), ev.differences
    assert ev.differences.iloc[0]["p_gt_0"] < 0.01


def test_sharing_variants_change_one_parameter_only():
    spec = builtin_spec("chinchilla_by_corpus")
    v = sharing_variants(spec, "beta", ["shared", "pooled", "separate", 0.3, "fixed=0.25"])
    assert list(v) == ["shared", "pooled", "separate", "fixed=0.3", "fixed=0.25"]
    assert [v[k].parameters["beta"].sharing for k in v] == ["shared", "pooled", "separate", "fixed", "fixed"]
    assert v["pooled"].parameters["beta"].by == "corpus" and v["fixed=0.25"].parameters["beta"].fixed == 0.25
    for s in v.values():
        others = {n: p.to_dict() for n, p in s.parameters.items() if n != "beta"}
        assert others == {n: p.to_dict() for n, p in spec.parameters.items() if n != "beta"}
        assert (s.formula.text, s.target, s.family, s.scale) == (spec.formula.text, spec.target, spec.family,
                                                                  spec.scale)
    # E varies by corpus already: pooled/separate keep its column; the prior of a parameter is kept
    e = sharing_variants(spec, "E", ["separate", "shared"])
    assert e["separate"].parameters["E"].by == "corpus" and e["shared"].parameters["E"].by is None
    assert sharing_variants("kaplan", "alpha_N", ["shared", 0.1])["shared"].parameters["alpha_N"].prior == \
        {"median": 0.08}
    assert list(sharing_alternatives(spec)) == ["E shared", "A shared", "B shared", "alpha pooled by corpus",
                                                "beta pooled by corpus"]
    assert list(sharing_alternatives(spec, ["beta"])) == ["beta pooled by corpus"]
    assert sharing_alternatives("chinchilla") == {}          # no group column: nothing to vary by


@pytest.mark.parametrize("args, kwargs, message", [
    (("gamma", ["shared"]), {}, "not in the spec"),
    (("beta", ["fixed"]), {}, "fixed=0.28"),
    (("beta", ["somewhat"]), {}, "not one of shared, pooled, separate"),
    (("beta", ["shared", "shared"]), {}, "twice"),
    (("beta", "shared"), {}, "expected a list"),
    (("beta", [-0.2]), {}, "outside its domain"),
])
def test_sharing_variants_errors(args, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        sharing_variants("chinchilla_by_corpus", *args, **kwargs)


def test_sharing_variants_need_a_column_when_there_is_none_or_several():
    with pytest.raises(ConfigError, match="no group column"):
        sharing_variants("chinchilla", "alpha_N", ["separate"])
    crossed = bs.LawSpec.from_dict({"law": {"formula": "E + A / N**alpha", "target": "loss"},
                                    "parameters": {"E": {"by": "eval"}, "A": {"by": "corpus"}, "alpha": {}}})
    with pytest.raises(ConfigError, match="eval, corpus; name the column"):
        sharing_variants(crossed, "alpha", ["pooled"])
    assert sharing_variants(crossed, "alpha", ["pooled"], by="eval")["pooled"].parameters["alpha"].by == "eval"
    with pytest.raises(ConfigError, match="fixed"):
        sharing_alternatives(bs.LawSpec.from_dict({"law": {"formula": "E + A / N**alpha", "target": "loss"},
                                                   "parameters": {"E": {"by": "g"}, "A": {}, "alpha":
                                                                  {"fixed": 0.3}}}), ["alpha"])


def test_loo_of_a_spec_fit_computed_after_the_fact():
    """A fit drawn without the pointwise log-likelihood gets it from the rebuilt model: the same PSIS-LOO."""
    _, cmp = spec_shared_truth()
    fit = cmp.fits["shared"]
    bare = Fit(fit.tree.copy(), fit.data, fit.spec)
    del bare.tree["log_likelihood"]
    assert "log_likelihood" not in bare.tree.children
    a, b = loo(fit), loo(bare)
    assert b.elpd == pytest.approx(a.elpd, rel=1e-9) and b.se == pytest.approx(a.se, rel=1e-9)
    np.testing.assert_allclose(np.asarray(b.pareto_k), np.asarray(a.pareto_k), rtol=1e-9)


def test_pareto_k_rows_name_the_spec_data():
    data, cmp = spec_shared_truth()
    every = pareto_k_table(cmp.fits["shared"], threshold=-np.inf)
    assert len(every) == len(data) and list(every.columns) == ["row", "corpus", "D", "N", "loss", "pareto_k"]
    by_row = every.set_index("row").sort_index()
    for c in ("corpus", "N", "D", "loss"):
        assert (by_row[c].to_numpy() == data[c].to_numpy()).all(), c
    assert (every["pareto_k"].diff().dropna() <= 0).all()        # worst first


def test_compare_fits_refuses_other_observations():
    _, a = spec_shared_truth()
    _, b = spec_separate_truth()
    with pytest.raises(BayesScalingError, match="different observations"):
        compare_fits({"x": a.fits["shared"], "y": b.fits["shared"]})
    with pytest.raises(BayesScalingError, match="different data"):
        compare_fits({"x": a.fits["shared"], "transfer": shared_truth()[2].fits["shared_beta"]})
    with pytest.raises(BayesScalingError, match="'pooled'"):
        sharing_evidence(a, varying="pooled")


def test_contrasts_between_groups_of_a_spec_fit():
    """E[c1] - E[c2] and the loss difference at a point cover the truth; A-B and B-A mirror each other."""
    _, cmp = spec_shared_truth()
    fit = cmp.fits["shared"]
    con = contrasts(fit, ci_prob=0.98).set_index("quantity")
    assert set(con.index) == {"E_A - E_B", "E_A / E_B", "P(E_A > E_B)"}
    e = SHARED_TRUTH["E"]
    assert con.loc["E_A - E_B", "eti_lb"] < e["c1"] - e["c2"] < con.loc["E_A - E_B", "eti_ub"]
    assert con.loc["P(E_A > E_B)", "mean"] < 0.05       # c1's E is lower (1.8 vs 2.0)
    at = pd.DataFrame({"N": [1e8, 1e9], "D": [1e10, 1e11]})
    diff = target_difference(fit, at, [("c1", "c2")], ci_prob=0.98)
    true = bs.data.simulate_law(SPEC, at.assign(corpus="c1"), SHARED_TRUTH, 0.0)["loss"].to_numpy() - \
        bs.data.simulate_law(SPEC, at.assign(corpus="c2"), SHARED_TRUTH, 0.0)["loss"].to_numpy()
    assert ((diff["eti_lb"] < true) & (true < diff["eti_ub"])).all(), (diff, true)
    assert (diff["p_A_lower"] > 0.95).all() and list(diff.columns[:4]) == ["A", "B", "N", "D"]
    back = target_difference(fit, at, [("c2", "c1")])
    np.testing.assert_allclose(back["median"], -target_difference(fit, at, [("c1", "c2")])["median"])
    full = contrasts(fit, at=at)
    assert full["quantity"].str.startswith("loss_A - loss_B at N=1e+08").any()
    with pytest.raises(BayesScalingError, match="two different groups of 'corpus'"):
        contrasts(fit, pairs=[("c1", "c3")])
    with pytest.raises(BayesScalingError, match="leave out the column 'corpus'"):
        target_difference(fit, at.assign(corpus="c1"))
    with pytest.raises(BayesScalingError, match="by='eval' is not a group column"):
        contrasts(fit, by="eval")


def test_doctests():
    import doctest

    from bayes_scaling.analysis import compare

    assert doctest.testmod(compare).failed == 0
