"""A monomial law's coefficient sampled at the data's geometric centre (models/spec_model.py: Centring)."""

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.laws.spec import LawSpec, builtin_spec
from bayes_scaling.models import spec_model as sm
from bayes_scaling.models.transfer import ModelConfig, build_transfer_model


@pytest.fixture(scope="module")
def example_plan(example_data):
    return sm.plan(builtin_spec("transfer"), example_data.used[["pretraining", "N", "D_F", "D_T"]])


def test_transfer_plan_centres_k_with_the_earlier_models_prior(example_plan, example_data):
    """k is sampled at the means of log D_F and log N over the fitted runs, with the earlier transfer model's
    prior there (ModelConfig.centre_prior: the projection of log k, alpha and beta's priors)."""
    c = example_plan.centred["k"]
    arrays = example_data.arrays()
    c_F, c_N = float(np.mean(arrays["log_D_F"])), float(np.mean(arrays["log_N"]))
    assert c.powers == (("D_F", "alpha", 1), ("N", "beta", 1))
    np.testing.assert_allclose([c.centre["D_F"], c.centre["N"]], [c_F, c_N], rtol=1e-12)
    np.testing.assert_allclose(c.prior, ModelConfig().centre_prior(c_F, c_N), rtol=1e-12)
    assert sm.Centring.from_dict(c.to_dict()) == c
    # the law at x = 1 from the law at the centre: log k = log k_c - alpha c_F - beta c_N
    assert c.log_coefficient(20.0, {"alpha": 0.2, "beta": 0.4}) == pytest.approx(20.0 - 0.2 * c_F - 0.4 * c_N)


def test_centred_transfer_spec_is_the_earlier_transfer_model(example_plan, example_data):
    """The same joint density as the earlier transfer model (models/transfer.py, both centred forms): its log
    density at a point equals the engine's at the same values (a_mu = log_k_at_centre_mu, a = log_k_at_centre),
    to rounding; so the two posteriors differ by Monte Carlo error only."""
    plan = example_plan.with_parameterization({"k": "centred", "alpha": "centred"})
    engine = plan.build()
    old = build_transfer_model(example_data.arrays(), example_data.pretraining, ModelConfig(),
                               parameterization={"a": "centred", "alpha": "centred"})
    rng = np.random.default_rng(0)
    lp_new, lp_old = engine.compile_logp(), old.compile_logp()
    for _ in range(5):
        a_mu, alpha_mu, beta = rng.normal(20.0, 1.0), rng.normal(0.2, 0.05), rng.normal(0.4, 0.05)
        a, alpha = a_mu + rng.normal(0, 0.5, 2), alpha_mu + rng.normal(0, 0.05, 2)
        log_a_sd, log_alpha_sd, log_sigma = np.log(rng.uniform(0.2, 2, 3))
        new_point = {"log_k_at_centre_mu": a_mu, "log_k_at_centre_sigma_log__": log_a_sd, "log_k_at_centre": a,
                     "alpha_mu": alpha_mu, "alpha_sigma_log__": log_alpha_sd, "alpha": alpha, "beta": beta,
                     "sigma_log__": log_sigma}
        old_point = {"a_mu": a_mu, "a_sigma_log__": log_a_sd, "a": a, "alpha_mu": alpha_mu,
                     "alpha_sigma_log__": log_alpha_sd, "alpha": alpha, "beta": beta, "sigma_log__": log_sigma}
        assert float(lp_new(new_point)) == pytest.approx(float(lp_old(old_point)), rel=1e-10, abs=1e-8)


def test_monomials_and_what_is_not_one():
    def mono(formula, params):
        return LawSpec.from_dict({"law": {"formula": formula, "target": "y"},
                                  "parameters": {p: {} for p in params}}).monomial()

    assert mono("2 * A * N**(-a) / D**b", ["A", "a", "b"]) == ("A", (("N", "a", -1), ("D", "b", -1)))
    assert mono("E + A / N**alpha", ["E", "A", "alpha"]) is None       # a sum
    assert mono("A * N**a * N**b", ["A", "a", "b"]) is None            # an input twice
    assert mono("A * N**a * A", ["A", "a"]) is None                    # a coefficient twice
    assert mono("A * N**(2 * a)", ["A", "a"]) is None                  # an exponent that is no parameter
    assert builtin_spec("transfer").monomial() == ("k", (("D_F", "alpha", 1), ("N", "beta", 1)))
    assert all(builtin_spec(n).monomial() is None for n in ("chinchilla", "kaplan", "synthetic_to_real"))


def test_centring_needs_positive_inputs_and_matching_groups():
    """No centring where log x is undefined on some row, or an exponent varies by another column than the
    coefficient (log c at x = 1 would vary by both); the number factors' log enters the law's value."""
    table = pd.DataFrame({"g": ["a", "b"] * 6, "h": ["u"] * 6 + ["v"] * 6, "x": np.logspace(1, 3, 12),
                          "y": np.logspace(0, 1, 12)})

    def centred(parameters, formula="3 * c * x**e", data=table):
        spec = LawSpec.from_dict({"law": {"formula": formula, "target": "y"}, "parameters": parameters})
        prepared = sm.prepare(spec, data)
        return sm.centring(spec, prepared, sm.default_priors(spec, prepared))

    c = centred({"c": {"by": "g"}, "e": {"by": "g"}})["c"]
    assert c.centre["x"] == pytest.approx(np.mean(np.log(table["x"])))
    assert centred({"c": {"by": "g"}, "e": {"by": "h"}}) == {}
    assert centred({"c": {}, "e": {"by": "g"}}) == {}
    assert centred({"c": {}, "e": {}}, data=table.assign(x=np.linspace(-1, 1, 12))) == {}
    assert centred({"c": {}, "e": {}}, formula="-3 * c * x**e") == {}
