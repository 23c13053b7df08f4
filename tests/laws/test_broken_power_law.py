"""The broken power law with one break (Caballero et al. 2022) as a built-in spec: the formula against the paper's
equation written out by hand, the least-squares start and the posterior recover a simulated curve's parameters
with a break and without one (the break's prior centred in the data's range), and stacking takes it beside the
M4 law (same input x, target L)."""

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

TRUTH = {"a": 0.1, "b": 0.4 * 1e5**0.2, "c0": 0.2, "c1": 0.5, "d1": 1e5, "f1": 0.3}
#: a curve without a break: c1 = 0 (d1 and f1 do not change the law)
NO_BREAK = {"a": 0.1, "b": 0.4 * 1e5**0.3, "c0": 0.3, "c1": 0.0, "d1": 1e5, "f1": 0.3}
#: the settings of a fit the stack runs again when the first has not converged (stacking.SAFER)
SAFE = dict(draws=600, tune=1000, chains=2, target_accept=0.99)


def _curve(sigma: float = 0.01, seed: int = 3, truth: dict | None = None) -> pd.DataFrame:
    """30 points over four decades of x (the break, if any, in the middle), noise ``sigma`` on log L."""
    return simulate_law(builtin_spec("broken_power_law"), pd.DataFrame({"x": np.logspace(3, 7, 30)}),
                        truth or TRUTH, sigma, seed=seed)


def test_broken_power_law_is_the_papers_equation():
    """``a + b x**(-c0) (1 + (x/d1)**(1/f1))**(-c1 f1)`` (Caballero et al. eq. 1, n = 1), at random parameters
    over six decades of x, sharp breaks included (the spec's softplus form does not overflow)."""
    spec = builtin_spec("broken_power_law")
    assert "broken_power_law" in builtin_names()
    assert spec.target == "L" and spec.inputs == ["x"]
    rng = np.random.default_rng(0)
    x = np.logspace(0, 6, 25)
    for _ in range(5):
        p = {"a": rng.uniform(0.01, 1), "b": rng.uniform(0.1, 3), "c0": rng.uniform(0.05, 1),
             "c1": rng.uniform(-0.5, 1), "d1": 10 ** rng.uniform(1, 5), "f1": rng.uniform(0.1, 1)}
        by_hand = p["a"] + p["b"] * x ** (-p["c0"]) * (1 + (x / p["d1"]) ** (1 / p["f1"])) ** (-p["c1"] * p["f1"])
        np.testing.assert_allclose(spec.formula.evaluate({**p, "x": x}), by_hand, rtol=1e-10)
    sharp = {"a": 0.1, "b": 1.0, "c0": 0.3, "c1": 0.5, "d1": 10.0, "f1": 0.005}       # (x/d1)**200: overflows
    assert np.all(np.isfinite(spec.formula.evaluate({**sharp, "x": x})))


def test_broken_power_law_break_prior_is_centred_in_the_data():
    """The break's prior median is the geometric mean of the data's x (``median_of = "x"``), wherever the data
    lie; the other parameters' priors are unchanged by it."""
    spec = builtin_spec("broken_power_law")
    for lo, hi in ((3, 7), (-2, 1)):
        data = sm.prepare(spec, pd.DataFrame({"x": np.logspace(lo, hi, 20), "L": np.linspace(2, 1, 20)}))
        loc, scale = sm.default_priors(spec, data)["d1"]
        assert loc == pytest.approx(np.log(10.0) * (lo + hi) / 2) and scale == 0.7


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
@pytest.mark.parametrize("truth", [TRUTH, NO_BREAK], ids=["break", "no break"])
def test_broken_power_law_recovery(truth):
    """NUTS on a simulated curve with a break and on one without (c1 = 0), with the stack's safer settings
    (2 x 600 draws after 1000, target_accept 0.99): R-hat <= 1.01, no divergences, and the 99% intervals of
    the floor, the scale and the slopes cover the truth (with a break, of d1 and f1 too; without one they are
    not identified, and c1's interval covers 0, the absence of a break)."""
    fit = bs.fit(_curve(seed=4, truth=truth), builtin_spec("broken_power_law"), seed=1, warn=False, **SAFE)
    assert fit.diagnostics.r_hat_max <= 1.01
    assert fit.diagnostics.divergences == 0
    names = list(truth) if truth["c1"] else ["a", "b", "c0", "c1"]
    assert covered(fit, {k: truth[k] for k in names}, prob=0.99) == []
