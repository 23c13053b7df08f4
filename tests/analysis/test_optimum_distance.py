"""The runs' distance from the law's compute optimum (the covariate of a noise growing off the optimum)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.analysis.compute import optimum_distance
from bayes_scaling.errors import ConfigError, DataError
from bayes_scaling.laws.formulas import chinchilla_optimal_N

P = {"E": 1.8, "A": 482.0, "B": 2085.0, "alpha_N": 0.348, "alpha_D": 0.366}


def test_optimum_distance_is_the_decades_from_the_closed_form_optimum():
    """Runs at 10^k times the Chinchilla law's closed-form N_opt (Hoffmann et al. eq. 4) on three budgets lie
    |k| decades off it (to the grid's step, 0.005 decades)."""
    C = np.repeat([1e19, 1e21, 1e23], 5)
    k = np.tile([-1.5, -0.5, 0.0, 0.7, 2.0], 3)
    n = 10.0**k * chinchilla_optimal_N(C, P["A"], P["B"], P["alpha_N"], P["alpha_D"])
    x = optimum_distance("chinchilla", P, pd.DataFrame({"N": n, "D": C / (6 * n)}))
    np.testing.assert_allclose(x, np.abs(k), atol=0.005)


def test_optimum_distance_checks_its_input():
    with pytest.raises(DataError, match="'N' and 'D' .* rows 1"):
        optimum_distance("chinchilla", P, pd.DataFrame({"N": [1e8, -1.0], "D": [1e9, 1e9]}))
    with pytest.raises(ConfigError, match="no input"):
        optimum_distance("rectified_finetuning", {}, pd.DataFrame({"D": [1.0]}))
