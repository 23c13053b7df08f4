"""Small seeded law-spec fits shared by test_compare, test_checks and test_report (computed once per session).

The law: Chinchilla's ``loss = E + A / N**alpha + B / D**beta`` on two corpora (5 x 5 runs each), ``E`` partially
pooled by corpus, ``A``, ``B``, ``alpha`` shared, and ``beta`` either truly shared (0.28) or truly separate (0.25 vs
0.31); normal noise of sd 0.01 on log(loss). Each data set is fitted with ``beta`` shared and separate (the same
two model structures, so each compiles once), 2 chains x 300 draws.
"""

from __future__ import annotations

import itertools
import warnings
from functools import cache

import numpy as np
import pandas as pd

from bayes_scaling.analysis.compare import compare_sharing
from bayes_scaling.data.simulate import simulate_law
from bayes_scaling.laws.spec import LawSpec

SETTINGS = {"draws": 300, "tune": 300, "chains": 2}
SIGMA = 0.01
SPEC = LawSpec.from_dict({"law": {"name": "chinchilla_two_corpora", "formula": "E + A / N**alpha + B / D**beta",
                                  "target": "loss"},
                          "parameters": {"E": {"by": "corpus"}, "A": {}, "B": {}, "alpha": {}, "beta": {}}})
BASE = {"E": {"c1": 1.8, "c2": 2.0}, "A": 400.0, "B": 1500.0, "alpha": 0.34}
SHARED_TRUTH = {**BASE, "beta": 0.28}
SEPARATE_TRUTH = {**BASE, "beta": {"c1": 0.25, "c2": 0.31}}


def design() -> pd.DataFrame:
    return pd.DataFrame([{"corpus": c, "N": n, "D": d} for c, n, d in itertools.product(
        ["c1", "c2"], np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5))])


def _data(truth: dict, seed: int) -> pd.DataFrame:
    spec = SPEC
    if isinstance(truth["beta"], dict):
        doc = SPEC.to_dict()
        doc["parameters"]["beta"] = {"by": "corpus", "pooling": "none"}
        spec = LawSpec.from_dict(doc)
    return simulate_law(spec, design(), truth, SIGMA, seed=seed)


@cache
def shared_truth():
    """beta truly shared: data and the comparison of beta shared, separate and fixed at a wrong value (0.40)."""
    data = _data(SHARED_TRUTH, seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare_sharing(data, SPEC, "beta", ["shared", "separate", "fixed=0.4"], by="corpus", seed=3,
                              **SETTINGS)
    return data, cmp


@cache
def separate_truth():
    """beta truly separate: data and the comparison of beta shared and separate."""
    data = _data(SEPARATE_TRUTH, seed=22)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare_sharing(data, SPEC, "beta", ["shared", "separate"], by="corpus", seed=4, **SETTINGS)
    return data, cmp
