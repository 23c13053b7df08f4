"""The broken power law with one break (Caballero et al. 2022) as a built-in spec: the formula against the paper's
equation written out by hand, the least-squares start and the posterior recover a simulated curve's parameters,
and stacking takes it beside the M4 law (same input x, target L)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import covered

import bayes_scaling as bs
from bayes_scaling.analysis.stacking import _specs
from bayes_scaling.data.simulate import simulate_law
from bayes_scaling.laws.spec import builtin_names, builtin_spec
from bayes_scaling.models import spec_model as sm

TRUTH = {"a": 0.1, "b": 0.4, "c0": 0.2, "c1": 0.5, "d1": 1e5, "f1": 0.3}


def _curve(sigma: float = 0.01, seed: int = 3) -> pd.DataFrame:
    """30 points over four decades of x, the break in the middle, noise ``sigma`` on log L."""
    return simulate_law(builtin_spec("broken_power_law"), pd.DataFrame({"x": np.logspace(3, 7, 30)}), TRUTH,
                        sigma, seed=seed)


def test_broken_power_law_is_the_papers_equation():
    """``a + b' x**(-c0) (1 + (x/d1)**(1/f1))**(-c1 f1)`` (Caballero et al. eq. 1, n = 1) with ``b' = b d1**c0``,
    at random parameters over six decades of x."""
    spec = builtin_spec("broken_power_law")
    assert "broken_power_law" in builtin_names()
    assert spec.target == "L" and spec.inputs == ["x"]
    rng = np.random.default_rng(0)
    x = np.logspace(0, 6, 25)
    for _ in range(5):
        p = {"a": rng.uniform(0.01, 1), "b": rng.uniform(0.1, 3), "c0": rng.uniform(0.05, 1),
             "c1": rng.uniform(-0.5, 1), "d1": 10 ** rng.uniform(1, 5), "f1": rng.uniform(0.1, 1)}
        b_paper = p["b"] * p["d1"] ** p["c0"]
        by_hand = p["a"] + b_paper * x ** (-p["c0"]) * (1 + (x / p["d1"]) ** (1 / p["f1"])) ** (-p["c1"] * p["f1"])
        np.testing.assert_allclose(spec.formula.evaluate({**p, "x": x}), by_hand, rtol=1e-12)


def test_broken_power_law_least_squares_recovers_the_break():
    """The least-squares start (the data-scaled priors' medians) finds a simulated curve's floor, slopes and
    break: within 10% (the slopes within 0.05, the break within a factor 1.3)."""
    spec = builtin_spec("broken_power_law")
    est = sm.point_fit(spec, sm.prepare(spec, _curve()))
    assert est["a"] == pytest.approx(TRUTH["a"], rel=0.1)
    assert est["b"] == pytest.approx(TRUTH["b"], rel=0.1)
    assert abs(est["c0"] - TRUTH["c0"]) < 0.05 and abs(est["c1"] - TRUTH["c1"]) < 0.05
    assert 1 / 1.3 < est["d1"] / TRUTH["d1"] < 1.3


def test_broken_power_law_stacks_with_m4():
    """Stacking's candidate laws: the broken power law and the M4 laws predict the same target, L."""
    for m4 in ("m4", "m4_error_rate"):
        assert list(_specs([m4, "broken_power_law"])) == [m4, "broken_power_law"]


@pytest.mark.slow
def test_broken_power_law_recovery():
    """NUTS on the simulated curve (2 x 400 draws): every parameter's 99% interval covers the truth, R-hat
    <= 1.01, no divergences."""
    fit = bs.fit(_curve(), builtin_spec("broken_power_law"), seed=1, draws=400, tune=400, chains=2, warn=False)
    assert covered(fit, TRUTH, prob=0.99) == []
    assert fit.diagnostics.r_hat_max <= 1.01
    assert fit.diagnostics.divergences == 0
