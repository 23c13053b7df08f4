"""Model configuration (priors, TOML files) and the PyMC graph of each variant."""

import numpy as np
import pytest
from helpers import REPO

from bayes_scaling import ModelConfig
from bayes_scaling.errors import ConfigError
from bayes_scaling.models.transfer import DEFAULT_PRIORS, build_transfer_model


def test_models_transfer_toml_holds_the_defaults():
    cfg = ModelConfig.from_toml(REPO / "models" / "transfer.toml")
    assert cfg.to_dict() == ModelConfig().to_dict()
    assert cfg.priors == DEFAULT_PRIORS


def test_transfer_priors_are_read_from_the_law_spec(tmp_path):
    """The transfer law's priors are written once (specs/laws/transfer.toml); the transfer model reads them, and
    an edit of the law spec reaches it."""
    from bayes_scaling.laws.spec import LawSpec, builtin_spec
    from bayes_scaling.models.transfer import priors_from_spec

    assert DEFAULT_PRIORS == {
        "log_k": {"mu": 10.0, "sigma": 4.0}, "alpha": {"mu": 0.25, "sigma": 0.25},
        "beta": {"mu": 0.4, "sigma": 0.4}, "log_k_spread": {"sigma": 1.5}, "alpha_spread": {"sigma": 0.1},
        "beta_spread": {"sigma": 0.1}, "sigma": {"sigma": 1.0}, "nu": {"alpha": 2.0, "beta": 0.1}}
    doc = builtin_spec("transfer").to_dict()
    doc["parameters"]["beta"].update(mu=0.38, sigma=0.05)
    doc["likelihood"]["sigma"] = 0.5
    edited = priors_from_spec(LawSpec.from_dict(doc))
    assert edited["beta"] == {"mu": 0.38, "sigma": 0.05} and edited["sigma"] == {"sigma": 0.5}
    doc["parameters"]["alpha"] = {"by": "pretraining"}             # positive, default prior: no Normal(mu, sigma)
    with pytest.raises(ConfigError, match="parameter 'alpha' needs domain 'real' and mu and sigma"):
        priors_from_spec(LawSpec.from_dict(doc))


def test_toml_round_trip_and_override(tmp_path):
    cfg = ModelConfig(likelihood="student_t", variant="separate_beta", priors={"beta": {"sigma": 0.1}})
    path = tmp_path / "m.toml"
    path.write_text(cfg.to_toml())
    back = ModelConfig.from_toml(path)
    assert back.to_dict() == cfg.to_dict() and back.hash() == cfg.hash()
    assert back.priors["beta"] == {"mu": 0.4, "sigma": 0.1}
    assert ModelConfig().hash() != cfg.hash()


@pytest.mark.parametrize("kwargs, pattern", [
    ({"likelihood": "cauchy"}, "likelihood 'cauchy'"),
    ({"variant": "nope"}, "variant 'nope'"),
    ({"priors": {"gamma": {"mu": 1.0}}}, "unknown prior 'gamma'"),
    ({"priors": {"beta": {"scale": 1.0}}}, "unknown parameter"),
    ({"priors": {"beta": {"sigma": -1.0}}}, "sigma must be > 0"),
    ({"priors": {"beta": {"mu": "a"}}}, "must be a finite number"),
])
def test_bad_config(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        ModelConfig(**kwargs)


def test_bad_toml(tmp_path):
    (tmp_path / "bad.toml").write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ModelConfig.from_toml(tmp_path / "bad.toml")
    (tmp_path / "typo.toml").write_text("[model]\nlikelihod = 'normal'\n")
    with pytest.raises(ConfigError, match="unknown key"):
        ModelConfig.from_toml(tmp_path / "typo.toml")
    with pytest.raises(ConfigError, match="not found"):
        ModelConfig.from_toml(tmp_path / "missing.toml")


def test_centre_prior_is_the_projection_of_log_k_alpha_beta():
    cfg = ModelConfig()
    m, s = cfg.centre_prior(14.0, 17.0)
    assert m == pytest.approx(10.0 + 0.25 * 14 + 0.4 * 17)
    assert s == pytest.approx(np.sqrt(4**2 + (0.25 * 14) ** 2 + (0.4 * 17) ** 2))


def _arrays(P):
    rng = np.random.default_rng(0)
    n = 12
    return {"log_D_F": rng.uniform(11, 18, n), "log_N": rng.uniform(11, 21, n),
            "log_D_T": rng.uniform(14, 20, n), "p_idx": np.arange(n) % P}


@pytest.mark.parametrize("variant, P, free, beta_dims", [
    ("shared_beta", 2, {"a_mu", "alpha_mu", "beta", "a_sigma", "alpha_sigma", "a", "alpha", "sigma"}, ()),
    ("separate_beta", 3, {"a_mu", "alpha_mu", "beta_mu", "a_sigma", "alpha_sigma", "a", "alpha", "beta_sigma",
                          "beta", "sigma"}, ("pretraining",)),
    ("pooled", 2, {"a_mu", "alpha_mu", "beta", "sigma"}, ()),
    ("shared_beta", 1, {"a_mu", "alpha_mu", "beta", "sigma"}, ()),
])
def test_variants(variant, P, free, beta_dims):
    names = [f"p{i}" for i in range(P)]
    model = build_transfer_model(_arrays(P), names, ModelConfig(variant=variant, parameterization="centred"))
    assert {v.name for v in model.free_RVs} == free
    assert model.named_vars_to_dims.get("beta", ()) == beta_dims
    for v in ("k", "log_k", "alpha"):
        assert model.named_vars_to_dims[v] == ("pretraining",)
    # log k is consistent with the centred intercept: log k = a - alpha c_F - beta c_N
    point = model.initial_point()
    fn = model.compile_fn([model["log_k"], model["a"], model["alpha"], model["beta"]], inputs=model.value_vars,
                          on_unused_input="ignore")
    log_k, a, alpha, beta = fn(point)
    c_F, c_N = model.centre
    np.testing.assert_allclose(log_k, a - alpha * c_F - beta * c_N)


def test_non_centred_and_student_t():
    model = build_transfer_model(_arrays(2), ["a", "b"], ModelConfig(likelihood="student_t",
                                                                     parameterization="non_centred"))
    names = {v.name for v in model.free_RVs}
    assert {"z_a", "z_alpha", "nu"} <= names and "a" not in names


def test_auto_parameterization_follows_how_well_the_data_pin_each_distribution():
    from bayes_scaling.models.transfer import resolve_parameterization

    rng = np.random.default_rng(0)

    def arrays(n_per, noise):
        P = 2
        log_D_F = rng.uniform(11, 18, n_per * P)
        log_N = rng.uniform(11, 21, n_per * P)
        p = np.repeat(np.arange(P), n_per)
        log_D_T = 10 + np.array([0.18, 0.1])[p] * log_D_F + 0.38 * log_N + rng.normal(0, noise, n_per * P)
        return {"log_D_F": log_D_F, "log_N": log_N, "log_D_T": log_D_T, "p_idx": p}

    auto = ModelConfig()
    assert auto.parameterization == "auto"
    # the data pin every group: centred; otherwise whitened (normal likelihood) or non-centred (Student-t)
    assert resolve_parameterization(arrays(200, 0.01), 2, auto) == {"a": "centred", "alpha": "centred"}
    assert resolve_parameterization(arrays(20, 0.5), 2, auto) == {"a": "whitened", "alpha": "whitened"}
    assert resolve_parameterization(arrays(3, 0.01), 2, auto) == {"a": "whitened", "alpha": "whitened"}
    auto = ModelConfig(likelihood="student_t")
    assert resolve_parameterization(arrays(200, 0.01), 2, auto) == {"a": "centred", "alpha": "centred"}
    assert resolve_parameterization(arrays(20, 0.5), 2, auto) == {"a": "non_centred", "alpha": "non_centred"}
    assert resolve_parameterization(arrays(3, 0.01), 2, auto) == {"a": "non_centred", "alpha": "non_centred"}
    forced = ModelConfig(parameterization="centred")
    assert resolve_parameterization(arrays(3, 0.5), 2, forced) == {"a": "centred", "alpha": "centred"}
    sep = ModelConfig(variant="separate_beta", likelihood="student_t")
    assert set(resolve_parameterization(arrays(200, 0.01), 2, sep)) == {"a", "alpha", "beta"}
    model = build_transfer_model(arrays(20, 0.5), ["p0", "p1"], auto)
    assert model.parameterization == {"a": "non_centred", "alpha": "non_centred"}
    assert {"z_a", "z_alpha"} <= {v.name for v in model.free_RVs}


@pytest.mark.parametrize("variant", ["shared_beta", "separate_beta"])
def test_whitened_form_is_an_exact_change_of_variables(variant):
    """At fixed spreads and sigma the whitened density is the standard normal of u times a constant (the
    locations' conditional posterior is whitened exactly), and it is the centred model's density moved by a
    constant Jacobian: a wrong conditional mean or precision breaks both."""
    P = 3
    arrays = _arrays(P)
    names = [f"p{i}" for i in range(P)]
    white = build_transfer_model(arrays, names, ModelConfig(variant=variant, parameterization="whitened"))
    cent = build_transfer_model(arrays, names, ModelConfig(variant=variant, parameterization="centred"))
    assert "u_whitened" in {v.name for v in white.free_RVs} and "a" not in {v.name for v in white.free_RVs}
    K = white.initial_point()["u_whitened"].size
    locs = ["a_mu", "alpha_mu", "beta_mu" if variant == "separate_beta" else "beta", "a", "alpha"] + \
        (["beta"] if variant == "separate_beta" else [])
    wl = white.compile_logp()
    # the locations as functions of the value variables (compile_fn would draw the RV u instead)
    wf = white.compile_fn(white.replace_rvs_by_values([white[v] for v in locs]), inputs=white.value_vars,
                          on_unused_input="ignore")
    cl = cent.compile_logp()
    rng = np.random.default_rng(3)
    point = white.initial_point()
    spreads = {k: v + rng.normal(0, 0.3) for k, v in point.items() if k != "u_whitened"}
    w_minus_n, c_minus_n = [], []
    for _ in range(4):
        u = rng.normal(size=K)
        pt = {**spreads, "u_whitened": u}
        vals = dict(zip(locs, wf(pt), strict=True))
        cpt = {k: np.asarray(v) for k, v in spreads.items()} | {k: np.asarray(vals[k], float) for k in locs}
        normal = -0.5 * np.sum(u ** 2)
        w_minus_n.append(wl(pt) - normal)
        c_minus_n.append(cl(cpt) - normal)
    np.testing.assert_allclose(w_minus_n, w_minus_n[0], atol=1e-8)
    np.testing.assert_allclose(c_minus_n, c_minus_n[0], atol=1e-8)


def test_whitened_needs_the_normal_likelihood():
    from bayes_scaling.errors import ConfigError

    with pytest.raises(ConfigError, match="whitened.*normal likelihood"):
        ModelConfig(likelihood="student_t", parameterization="whitened")
