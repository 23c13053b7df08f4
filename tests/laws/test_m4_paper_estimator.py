"""The Bayesian M4 fit against the paper's own M4 estimator on its vision learning curves (Alabdulmohsin,
Neyshabur & Zhai 2022; ``../shared/data/revisiting2022_vision``, skipped when absent).

The paper's per-task M4 numbers (its Table 1 / appendix) were not available in a citable form, so the reference
is their estimator as published (``google-research/google-research``, ``revisiting_neural_scaling_laws/methods/
m4.py``, the notebook's settings for image classification: ``err_inf=None, err_0=1.0, update_err_0=True,
up_bound=1.0``, ``max_iterations=10_000``), run on the same rows, scored by their notebook's ``get_error``: the
RMSE of the log error rate over the ``Training == 0`` rows (docs/validation.md, "M4 on the vision learning
curves"). Its values are recorded below; the Bayesian fit is run here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import SHARED_DATA

import bayes_scaling as bs
from bayes_scaling.laws.spec import builtin_spec
from bayes_scaling.models.m4 import solve

VISION = SHARED_DATA / "revisiting2022_vision" / "revisiting_vision.csv"
LAW = ("L_inf", "L_0", "alpha", "beta", "c")

#: RMSE of log error rate on the held-out rows of the paper's M4 estimator (their code, run on these rows), on the
#: BiT/101/3 curve of each of the 12 tasks
PAPER_ESTIMATOR_RMSE = {
    "bird_10": 0.0295, "bird_25": 0.0638, "bird_5": 0.0338, "c_10": 0.0477, "c_25": 0.0340, "c_5": 0.0330,
    "cal_10": 0.1004, "cal_25": 0.1145, "cal_5": 0.1646, "inet_10": 0.0306, "inet_25": 0.0331, "inet_5": 0.0209,
}


def _rows(d: pd.DataFrame, task: str, model: str, training: int) -> pd.DataFrame:
    c = d[(d["Task"] == task) & (d["Model"] == model) & (d["Training"] == training)]
    return pd.DataFrame({"x": c["Seen Examples"].to_numpy(float), "L": c["Loss"].to_numpy(float)})


@pytest.mark.slow
@pytest.mark.skipif(not VISION.is_file(), reason=f"shared vision learning curves not found at {VISION}")
def test_m4_extrapolates_no_worse_than_the_papers_estimator():
    """On the BiT/101/3 curve of each task (12 curves, 10-62 fitted points), the posterior median of
    ``m4_error_rate`` (``bs.fit``'s defaults, seed 1) extrapolates to the held-out rows with a mean RMSE of log
    error no higher than the paper's estimator's, and no curve's RMSE is more than 1.5 times theirs + 0.005.
    (On these curves the paper's estimator does worse than on the rest: over all 72 curves the two tie on
    average, 0.0419 vs 0.0415; docs/validation.md.)"""
    d = pd.read_csv(VISION)
    spec = builtin_spec("m4_error_rate")
    ours = {}
    for task, ref in PAPER_ESTIMATOR_RMSE.items():
        fit_rows, test = _rows(d, task, "BiT/101/3", 1), _rows(d, task, "BiT/101/3", 0)
        fit = bs.fit(fit_rows, spec, seed=1, warn=False, log_likelihood=False)
        post = fit.posterior
        theta = {k: post[k].values.reshape(-1)[:, None] for k in LAW}
        pred = np.median(np.log(solve(spec, {"x": test["x"].to_numpy()[None, :], **theta})), axis=0)
        ours[task] = float(np.sqrt(np.mean((pred - np.log(test["L"].to_numpy())) ** 2)))
        assert ours[task] <= 1.5 * ref + 0.005, (task, ours[task], ref)
    assert np.mean(list(ours.values())) <= np.mean(list(PAPER_ESTIMATOR_RMSE.values())), ours
