"""Shared fixtures: the bundled data and fits with small settings (module-scoped to keep the suite quick)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py
from helpers import REPO, SHARED_DATA, digest, one_error_line  # noqa: E402,F401

os.environ.setdefault("MPLBACKEND", "Agg")
# the start-up cache of a fit skips steps that tests patch: off, but in its own tests (tests/inference/test_fitcache.py)
os.environ.setdefault("BAYES_SCALING_FIT_CACHE", "off")


@pytest.fixture(scope="session")
def example_data():
    import bayes_scaling as bs

    return bs.load_example()


@pytest.fixture(scope="session")
def example_fit(example_data):
    """The bundled data fitted with the default settings (4 chains x 1000 draws), seed 1 (fit_transfer's engine
    path, without its FutureWarning)."""
    from bayes_scaling.inference.sampling import _fit_transfer

    return _fit_transfer(example_data, seed=1)


@pytest.fixture(scope="session")
def small_fit(example_data):
    """A quick fit of the bundled data (2 chains x 300 draws) for tests that need any posterior."""
    from bayes_scaling.inference.sampling import _fit_transfer

    return _fit_transfer(example_data, seed=2, draws=300, tune=300, chains=2, warn=False)


@pytest.fixture
def default_signals():
    """These tests signal their own process and start from SIGINT/SIGTERM at their defaults. A run started in the
    background (``cmd &`` from a script) ignores SIGINT, and test workers (pytest-xdist) inherit that; the
    handlers are put back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
