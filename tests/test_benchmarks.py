"""``benchmarks/bench.py`` (``make bench``) measures every built-in law spec: its table of data has one entry for
each spec file in ``bayes_scaling/specs/laws/``, so a new spec cannot be left out of the benchmark silently; and the
simulated 3 corpora x 90 runs of the hierarchical Chinchilla command-line row are the committed table."""

from __future__ import annotations

import sys

import pandas as pd
from helpers import REPO

from bayes_scaling.laws.spec import builtin_names, builtin_spec

sys.path.insert(0, str(REPO / "benchmarks"))
import bench  # noqa: E402


def test_every_builtin_spec_has_a_benchmark_case():
    """``builtin_spec_data()`` names exactly the built-in specs, each with a table holding the spec's inputs and
    target (or, for Epoch AI's runs outside the repository, the reason it has none)."""
    cases = bench.builtin_spec_data()
    assert sorted(cases) == builtin_names()
    for name, (table, what) in cases.items():
        if table is None:
            assert "not found" in what, name
            continue
        spec = builtin_spec(name)
        missing = {*spec.inputs, spec.target} - set(table.columns)
        assert not missing, f"{name}: no column(s) {sorted(missing)}"
        assert len(table) >= 20 and what, name


def test_corpora_3x90_table_is_committed_and_has_3_corpora_of_90_runs():
    """The fresh-process ``chinchilla_by_corpus`` row on 3 x 90 runs reads the committed CSV (the same table in
    every run of the benchmark, written once from the bundled fit's posterior medians), not a new simulation."""
    path = bench.corpora_3x90()
    assert path == bench.CORPORA_3X90_CSV and path.is_file()
    runs = pd.read_csv(path)
    assert runs.groupby("corpus").size().to_dict() == {"books": 90, "code": 90, "web": 90}
    assert (runs["loss"] > 0).all() and runs.groupby("corpus")[["N", "D"]].nunique().eq([9, 10]).all().all()
