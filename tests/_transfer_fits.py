"""Small seeded fits shared by test_compare, test_checks, test_plots and test_report (computed once per session).

Settings are deliberately small (2 chains x 300 draws) so the default suite stays quick; recovery tolerances in
the tests are set for that size.
"""

from __future__ import annotations

import warnings
from functools import cache

import bayes_scaling as bs
from bayes_scaling.analysis.compare import compare_variants
from bayes_scaling.data.simulate import TABLE1, simulate_transfer

SETTINGS = {"draws": 300, "tune": 300, "chains": 2}

#: beta truly differs between the pre-training distributions (0.32 vs 0.44), everything else Table 1.
SEPARATE_TRUTH = {"text": {**TABLE1["text"], "beta": 0.32}, "text+code": {**TABLE1["text+code"], "beta": 0.44}}


def _data(truth, seed):
    df, meta = simulate_transfer(seed=seed, truth=truth)
    return bs.TransferData.from_frame(df, warn=False), meta


@cache
def shared_truth():
    """Table 1 truth (beta shared): data, metadata and a comparison of all three variants."""
    data, meta = _data(TABLE1, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare_variants(data, seed=5, **SETTINGS)
    return data, meta, cmp


@cache
def separate_truth():
    """beta differs (SEPARATE_TRUTH): data, metadata and a comparison of shared_beta vs separate_beta."""
    data, meta = _data(SEPARATE_TRUTH, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare_variants(data, variants=("shared_beta", "separate_beta"), seed=6, **SETTINGS)
    return data, meta, cmp
