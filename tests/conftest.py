"""Shared fixtures: the bundled data and fits with small settings (module-scoped to keep the suite quick)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def example_data():
    import bayes_scaling as bs

    return bs.load_example()


@pytest.fixture(scope="session")
def example_fit(example_data):
    """The bundled data fitted with the default settings (4 chains x 1000 draws), seed 1."""
    import bayes_scaling as bs

    return bs.fit_transfer(example_data, seed=1)


@pytest.fixture(scope="session")
def small_fit(example_data):
    """A quick fit of the bundled data (2 chains x 300 draws) for tests that need any posterior."""
    import bayes_scaling as bs

    return bs.fit_transfer(example_data, seed=2, draws=300, tune=300, chains=2, warn=False)
