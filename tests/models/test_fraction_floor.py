"""A parameter sampled as a fraction of the smallest observed target (``fraction_of = "min_target"``): the
Chinchilla floor ``E = f min(loss)``, ``logit f ~ Normal(logit(mean), sigma)``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling.data.simulate import simulate_law
from bayes_scaling.errors import ConfigError, DataError
from bayes_scaling.laws.spec import LawSpec, builtin_spec
from bayes_scaling.models import spec_model as sm
from tests.helpers import covered


def floor_spec(**E) -> LawSpec:
    doc = builtin_spec("chinchilla").to_dict()
    doc["parameters"]["E"] = {"fraction_of": "min_target", **E}
    return LawSpec.from_dict(doc)


TRUTH = {"E": 1.9, "A": 400.0, "B": 1500.0, "alpha_N": 0.34, "alpha_D": 0.28}


def isoflop_runs(seed: int = 0, sigma: float = 0.01) -> pd.DataFrame:
    """A small IsoFLOP grid: four budgets 1e17..1e19 FLOPs, seven model sizes around each budget's optimum."""
    rows = []
    for C in np.geomspace(1e17, 1e19, 4):
        n_opt = 0.1 * np.sqrt(C / 6.0)
        for N in n_opt * np.geomspace(0.2, 5.0, 7):
            rows.append({"N": N, "D": C / (6.0 * N)})
    design = pd.DataFrame(rows)
    return simulate_law(builtin_spec("chinchilla"), design, TRUTH, sigma, seed=seed)


def test_spec_round_trip_and_hash_unchanged_without_it():
    s = floor_spec(mean=0.6, sigma=1.0)
    assert s.parameters["E"].fraction_of == "min_target"
    assert s.parameters["E"].prior == {"mean": 0.6, "sigma": 1.0}
    again = LawSpec.from_dict(s.to_dict())
    assert again.hash() == s.hash() and again.parameters["E"].fraction_of == "min_target"
    assert "fraction_of" not in builtin_spec("chinchilla_by_corpus").to_dict()["parameters"]["E"]
    assert s.hash() != floor_spec(mean=0.7, sigma=1.0).hash()
    bench = LawSpec.from_toml(Path(__file__).parents[2] / "benchmarks" / "chinchilla_floor.toml")
    assert (bench.parameters["E"].fraction_of, bench.parameters["E"].prior) == ("min_target", {"mean": 0.7, "sigma": 0.5})


@pytest.mark.parametrize("E, pattern", [
    ({"fraction_of": "max_target"}, r"parameter 'E': fraction_of 'max_target' is not one of min_target"),
    ({"fraction_of": "min_target", "by": "corpus"}, r"fraction_of applies to a free, shared parameter"),
    ({"fraction_of": "min_target", "domain": "real"}, r"fraction_of applies to .* domain 'positive'"),
    ({"fraction_of": "min_target", "median": 1.7}, r"prior key\(s\) median do not apply to fraction_of .* use mean, "
                                                   r"sigma"),
    ({"fraction_of": "min_target", "mean": 1.2}, r"mean must be in \(0, 1\)"),
    ({"fraction_of": True}, r"fraction_of must be a string or a positive number"),
    ({"fraction_of": -2.0}, r"parameter 'E': fraction_of must be > 0"),
])
def test_bad_fraction_specs_name_the_parameter_and_what_was_expected(E, pattern):
    doc = builtin_spec("chinchilla").to_dict()
    doc["parameters"]["E"] = E
    with pytest.raises(ConfigError, match=pattern):
        LawSpec.from_dict(doc)


def test_the_floor_is_the_fraction_of_the_smallest_loss_and_a_refit_rescales_it():
    """The model samples ``logit_E_fraction``; ``E`` = fraction x min(loss) of the fitted rows, also after the
    compiled model is given other rows (the scale is ``pm.Data``)."""
    import pymc as pm

    runs = isoflop_runs()
    p = sm.plan(floor_spec(mean=0.6, sigma=1.0), runs)
    assert p.priors["E"] == pytest.approx((np.log(0.6 / 0.4), 1.0))
    model = p.build()
    assert "logit_E_fraction" in [v.name for v in model.free_RVs]
    assert "log_E" not in model.named_vars
    f = model.compile_fn(model["E"], inputs=[model["logit_E_fraction"]], on_unused_input="ignore")
    assert float(f({"logit_E_fraction": 0.0})) == pytest.approx(0.5 * runs["loss"].min())
    part = runs[runs["loss"] > runs["loss"].quantile(0.5)]
    values = sm.plan(floor_spec(), part).values()
    assert values["fraction__E__of"] == pytest.approx(part["loss"].min())
    with model:
        pm.set_data({"fraction__E__of": values["fraction__E__of"]})
    assert float(f({"logit_E_fraction": 0.0})) == pytest.approx(0.5 * part["loss"].min())


def test_a_non_positive_target_is_a_clear_error():
    doc = floor_spec().to_dict()
    doc["likelihood"]["scale"] = "identity"
    runs = isoflop_runs().assign(loss=lambda t: t["loss"] - t["loss"].min() - 0.5)
    with pytest.raises(DataError, match=r"parameter\(s\) E are fractions of the smallest 'loss', which is -?\d"):
        sm.plan(LawSpec.from_dict(doc), runs)


def test_a_frozen_spec_holds_the_fraction_of_the_data_it_was_frozen_on():
    """Calibration freezes ``E = f min(loss)`` as ``E = f c`` with ``c`` the given data's lowest loss (a number):
    fitting the frozen spec to other rows keeps ``c`` and the fraction's prior; without the target it cannot be
    frozen and the error names E."""
    from bayes_scaling.analysis.calibration import frozen_spec

    runs = isoflop_runs()
    frozen = frozen_spec(floor_spec(mean=0.6, sigma=1.0), runs)
    E = frozen.parameters["E"]
    assert E.fraction_of == pytest.approx(runs["loss"].min()) and E.prior == pytest.approx({"mean": 0.6, "sigma": 1.0})
    assert LawSpec.from_dict(frozen.to_dict()).hash() == frozen.hash()
    part = runs[runs["loss"] > runs["loss"].quantile(0.5)]
    p = sm.plan(frozen, part)
    assert p.values()["fraction__E__of"] == pytest.approx(runs["loss"].min())       # not the part's own minimum
    assert p.priors["E"] == pytest.approx((np.log(0.6 / 0.4), 1.0))
    assert sm.natural_value(E, 0.0, p.data) == pytest.approx(0.5 * runs["loss"].min())
    with pytest.raises(ConfigError, match=r"default prior of E, A, B, sigma .* scales with the data's 'loss'"):
        frozen_spec(floor_spec())


#: Epoch AI's refit of Chinchilla (Besiroglu et al. 2024)
EPOCH = {"E": 1.817, "A": 482.0, "B": 2085.0, "alpha_N": 0.348, "alpha_D": 0.366}


def test_the_builtin_chinchilla_spec_recovers_its_floor():
    """The built-in spec samples ``E = f min(loss)``, ``logit f ~ Normal(logit 0.7, 0.5)``. On simulated IsoFLOP
    runs at Epoch AI's values (budgets 1e18-1e21 FLOPs, 4 x 7 runs, 1% noise; the true floor is 0.79 of the
    lowest loss) the 98% interval of E covers the truth and is a third of the prior's width or less; the other
    parameters' intervals cover theirs."""
    rows = [{"N": N, "D": C / (6.0 * N)} for C in np.geomspace(1e18, 1e21, 4)
            for N in 0.1 * np.sqrt(C / 6.0) * np.geomspace(0.2, 5.0, 7)]
    runs = simulate_law(builtin_spec("chinchilla"), pd.DataFrame(rows), EPOCH, 0.01, seed=5)
    lowest = runs["loss"].min()
    assert EPOCH["E"] / lowest == pytest.approx(0.79, abs=0.02)
    spec = builtin_spec("chinchilla")
    assert (spec.parameters["E"].fraction_of, spec.parameters["E"].prior) == ("min_target", {"mean": 0.7, "sigma": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(runs, "chinchilla", draws=400, tune=400, chains=2, seed=3, progressbar=False)
    assert covered(fit, EPOCH) == []
    e = fit.posterior["E"].values.ravel()
    prior = lowest / (1.0 + np.exp(-np.random.default_rng(0).normal(np.log(0.7 / 0.3), 0.5, 20000)))
    width = lambda x: np.subtract(*np.quantile(x, [0.99, 0.01]))     # noqa: E731
    assert width(e) < width(prior) / 3, (width(e), width(prior))
    assert np.all(e < lowest) and fit.diagnostics.divergences == 0


@pytest.mark.slow
def test_the_floor_as_a_fraction_recovers_a_known_chinchilla_law_and_converges():
    """Simulated IsoFLOP runs (4 budgets x 7 sizes, 1% noise; the true floor is 0.42 of the lowest loss, just
    below the central 95% of the prior, mean 0.7 and sd 0.5: 0.47-0.86): every parameter's 98% interval covers
    the truth, with R-hat <= 1.01 and no divergence."""
    runs = isoflop_runs(seed=3)
    assert TRUTH["E"] / runs["loss"].min() == pytest.approx(0.42, abs=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(runs, floor_spec(mean=0.7, sigma=0.5), draws=1000, tune=1000, chains=4, seed=2)
    assert covered(fit, TRUTH) == []
    d = fit.diagnostics
    assert d.r_hat_max <= 1.01 and d.divergences == 0, d
