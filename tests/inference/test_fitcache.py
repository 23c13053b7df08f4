"""The start-up cache of a law-spec fit (``inference.fitcache``): a fresh process that fits data fitted before
reads the sampler's snapshot and the whitening instead of building the PyMC model and seeking the mode, and
draws exactly what a fit without the cache draws."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr

import bayes_scaling as bs
from bayes_scaling.inference.sampling import available_backends, clear_compiled_cache

needs_nutpie = pytest.mark.skipif("nutpie" not in available_backends(), reason="nutpie is not installed")
SMALL = dict(draws=40, tune=40, chains=2, seed=7)
GROUPS = ("posterior", "sample_stats", "log_likelihood", "observed_data", "constant_data")


def _table():
    return bs.load_example().used[["pretraining", "N", "D_F", "D_T"]].reset_index(drop=True)


def _scratch():
    from bayes_scaling.models.losslaws import read_scratch

    return read_scratch(bs.datasets.SCRATCH_LOSSES_CSV)


def _assert_same_draws(a: xr.DataTree, b: xr.DataTree) -> None:
    for group in GROUPS:
        xr.testing.assert_equal(a[group].to_dataset(), b[group].to_dataset())
    for name in ("whitening", "whitening_reason", "adaptation", "parameterization", "target_accept"):
        assert a.attrs[name] == b.attrs[name], name


@needs_nutpie
def test_fresh_process_reads_the_fit_cache_and_draws_the_same(tmp_path, monkeypatch):
    """A fit writes the cache (a miss); a fresh process fitting the same data with the same seed reads it
    without importing PyMC or SciPy's optimisers; both fits' draws equal a fit without any cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BAYES_SCALING_FIT_CACHE", str(cache))
    clear_compiled_cache()
    first = bs.fit(_table(), "transfer", warn=False, **SMALL)
    assert len(list(cache.glob("*.fit"))) == 1
    code = f"""
        import sys
        import bayes_scaling as bs
        table = bs.load_example().used[["pretraining", "N", "D_F", "D_T"]].reset_index(drop=True)
        fit = bs.fit(table, "transfer", warn=False, **{SMALL!r})
        fit.tree.to_netcdf({str(tmp_path / "hit.nc")!r})
        print("loaded:", [m for m in ("pymc", "scipy.optimize") if m in sys.modules])
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, "BAYES_SCALING_FIT_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "loaded: []" in proc.stdout, proc.stdout
    hit = xr.open_datatree(tmp_path / "hit.nc").load()
    monkeypatch.setenv("BAYES_SCALING_FIT_CACHE", "off")
    clear_compiled_cache()
    plain = bs.fit(_table(), "transfer", warn=False, **SMALL)
    clear_compiled_cache()
    _assert_same_draws(plain.tree, first.tree)
    _assert_same_draws(plain.tree, hit)


@needs_nutpie
@pytest.mark.parametrize("law, data, method", [("transfer", _table, "none"), ("kaplan", _scratch, "laplace")],
                         ids=["centred-transfer", "whitened-kaplan"])
def test_fit_cache_in_process_and_a_damaged_file(tmp_path, monkeypatch, law, data, method):
    """In one process: a second fit of the same data reads the cache once the compiled model is gone (the same
    draws); a damaged file is a miss, rewritten; data changed by one value: another key. Both forms the cache
    keeps: a monomial law sampled at the data's centre (not whitened) and a Laplace-whitened loss law."""
    from bayes_scaling.inference import fitcache
    from bayes_scaling.laws.spec import builtin_spec
    from bayes_scaling.models import spec_model as sm

    monkeypatch.setenv("BAYES_SCALING_FIT_CACHE", str(tmp_path))
    clear_compiled_cache()
    table = data()
    first = bs.fit(table, law, warn=False, **SMALL)
    plan = sm.plan(builtin_spec(law), table)
    key = fitcache.fit_key(plan, True, "auto")
    assert key == fitcache.fit_key(sm.plan(builtin_spec(law), table), True, "auto")
    sampler, param, choice = fitcache.load(key)
    assert sampler.graph_cache == "snapshot" and sampler.model is None and choice.method == method
    with pytest.raises(ValueError, match="snapshot has no PyMC model"):
        sampler.set_data({})
    # the C callbacks straight from Numba's cache, or the graphs linked again: the same draws
    import pickle

    from bayes_scaling.inference.compiled import CompiledSampler

    state = pickle.loads((tmp_path / f"{key}{fitcache.SUFFIX}").read_bytes())["sampler"]
    slow = CompiledSampler.from_snapshot(state, fast=False)
    assert sampler._fixed_values is not None and slow._fixed_values is None
    with pytest.raises(ValueError, match="C callbacks alone"):
        sampler.logp_and_gradient()
    run = dict(draws=30, tune=30, chains=2, seed=2, adaptation=choice.adaptation)
    xr.testing.assert_equal(sampler.sample(**run)["posterior"].to_dataset(), slow.sample(**run)["posterior"].to_dataset())
    clear_compiled_cache()
    second = bs.fit(table, law, warn=False, **SMALL)
    _assert_same_draws(first.tree, second.tree)
    if method == "laplace":
        assert first.tree.attrs["whitening_seconds"] > 0.0 and second.tree.attrs["whitening_seconds"] == 0.0  # read
    (tmp_path / f"{key}{fitcache.SUFFIX}").write_bytes(b"not a pickle")
    assert fitcache.load(key) is None
    clear_compiled_cache()
    third = bs.fit(table, law, warn=False, **SMALL)     # a miss: made again, the file rewritten
    _assert_same_draws(first.tree, third.tree)
    assert fitcache.load(key) is not None
    clear_compiled_cache()
    other = table.copy()
    other.loc[0, builtin_spec(law).target] *= 1.0 + 1e-12
    assert fitcache.fit_key(sm.plan(builtin_spec(law), other), True, "auto") != key
    assert fitcache.fit_key(plan, False, "auto") != key and fitcache.fit_key(plan, True, "none") != key
    assert np.isfinite(first.tree["posterior"]["sigma"].values).all()
