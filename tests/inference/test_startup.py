"""Start-up of a fit: deferred imports (``_lazy.lazy_module``, nutpie without ArviZ), nutpie's raw trace converted
here, and the disk cache of rewritten log-density graphs (same draws with or without it)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr

import bayes_scaling as bs
from bayes_scaling.inference.sampling import (
    available_backends,
    clear_compiled_cache,
    compiled_transfer_sampler,
)

needs_nutpie = pytest.mark.skipif("nutpie" not in available_backends(), reason="nutpie is not installed")
SMALL = dict(draws=60, tune=60, chains=2, seed=5)


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_lazy_module_becomes_the_real_module():
    """Nothing runs at ``import``; the first use loads it; then it is the module a normal import gives (the same
    object in sys.modules, the same attributes as a module loaded eagerly)."""
    out = _run("""
        import importlib, importlib.util, sys, types
        from bayes_scaling._lazy import lazy_module, pending
        assert "colorsys" not in sys.modules
        m = lazy_module("colorsys")
        import colorsys                       # an import statement leaves it unloaded
        from importlib import import_module
        assert colorsys is m and pending("colorsys") and "rgb_to_hsv" not in object.__getattribute__(m, "__dict__")
        assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)   # first use: loaded
        assert not pending("colorsys") and type(m) is types.ModuleType
        assert sys.modules["colorsys"] is m and import_module("colorsys") is m
        eager = importlib.util.module_from_spec(importlib.util.find_spec("colorsys"))
        eager.__spec__.loader.exec_module(eager)
        names = lambda mod: sorted(k for k in vars(mod) if k not in ("__spec__", "__loader__"))
        assert names(m) == names(eager), (names(m), names(eager))
        assert all(getattr(m, k).__code__.co_code == getattr(eager, k).__code__.co_code
                   for k in names(m) if callable(getattr(m, k)) and hasattr(getattr(m, k), "__code__"))
        assert type(m.__spec__.loader) is type(eager.__spec__.loader)
        assert lazy_module("colorsys") is m and lazy_module("no_such_module_here") is None
        print("ok")
    """)
    assert out.split() == ["ok"]


@needs_nutpie
def test_fit_path_loads_no_arviz_matplotlib_jax_or_distributed():
    """A fresh process that imports what ``bayes-scaling fit`` imports and samples: no ArviZ (nutpie's import
    of it deferred, the trace converted here), arviz-stats, matplotlib, JAX, Dask's distributed or scipy.stats;
    ArviZ then loads on first use as the real module, the one nutpie holds."""
    out = _run("""
        import importlib, sys, types
        import bayes_scaling as bs
        from bayes_scaling.cli import build_parser
        from bayes_scaling.cli.fit import cmd_fit
        from bayes_scaling.inference.sampling import fit_transfer
        from bayes_scaling._lazy import pending
        fit = fit_transfer(bs.load_example(), draws=30, tune=30, chains=1, seed=1, warn=False)
        fit.summary()
        # (Dask: xarray's question whether an array is a Dask array is answered without it)
        heavy = ["arviz_base", "arviz_stats", "arviz_plots", "matplotlib", "jax", "distributed", "scipy.stats",
                 "xarray_einstats", "dask"]
        print("loaded:", [m for m in heavy if m in sys.modules])
        print("arviz pending:", pending("arviz") or "arviz" not in sys.modules)
        nutpie_sample = sys.modules["nutpie.sample"]   # (nutpie.sample is the function)
        az = importlib.import_module("arviz")
        assert az is nutpie_sample.arviz is sys.modules["arviz"]
        az.from_dict                                   # first use: loaded
        assert type(az) is types.ModuleType and "arviz_base" in sys.modules and not pending("arviz")
        assert az.from_dict is sys.modules["arviz_base"].from_dict
        print("real:", az is nutpie_sample.arviz)
    """)
    assert "loaded: []" in out and "arviz pending: True" in out and "real: True" in out, out


def test_writing_a_fit_file_loads_no_distributed_and_writes_the_same_bytes(tmp_path):
    """xarray's writer imports Dask's distributed to ask whether a client runs (~0.4 s of a fresh ``bayes-scaling
    fit``); in a process that has not imported it the answer is known without it (``fitfile``), and the file is
    byte for byte the one written with distributed loaded."""
    out = _run(f"""
        import sys
        import numpy as np, xarray as xr
        from bayes_scaling.inference.fitfile import write_tree
        from bayes_scaling.inference._nutpie_private import defer_dask_array_check
        defer_dask_array_check()                     # as a fit does before it makes its datasets
        tree = xr.DataTree.from_dict({{"posterior": xr.Dataset({{"a": (("chain", "draw"), np.arange(6.0).reshape(2, 3))}}),
                                       "data": xr.Dataset({{"x": ("row", np.array([1.0, 2.0]))}})}})
        write_tree(tree, {str(tmp_path / "fresh.nc")!r})
        print("distributed loaded:", "distributed" in sys.modules, "dask.distributed" in sys.modules,
              "dask" in sys.modules)
        import dask.distributed                      # importable again after the write
        write_tree(tree, {str(tmp_path / "loaded.nc")!r})
    """)
    assert "distributed loaded: False False False" in out, out
    assert (tmp_path / "fresh.nc").read_bytes() == (tmp_path / "loaded.nc").read_bytes()


def test_dask_array_check_deferred_until_dask_array_loads():
    """Until ``dask.array`` is loaded, xarray's "is this a Dask array?" is answered without importing it; once
    it is loaded, xarray sees Dask arrays as chunked again (the real record takes over)."""
    out = _run("""
        import sys
        import numpy as np, xarray as xr
        from bayes_scaling.inference._nutpie_private import defer_dask_array_check
        defer_dask_array_check()
        ds = xr.Dataset({"a": (("chain", "draw"), np.zeros((2, 3)))}, coords={"chain": [0, 1], "draw": [0, 1, 2]})
        print("dask.array loaded:", "dask.array" in sys.modules, "dask" in sys.modules)
        import dask.array as da
        arr = xr.DataArray(da.zeros(4, chunks=2), dims="x")
        print("chunks:", arr.chunks, type(arr.data).__module__.split(".")[0])
        print("sum:", float(arr.sum().compute()), float(ds["a"].sum()))
    """)
    assert "dask.array loaded: False False" in out, out
    assert "chunks: ((2, 2),) dask" in out and "sum: 0.0 0.0" in out, out


@needs_nutpie
def test_own_trace_conversion_equals_nutpies(monkeypatch):
    """The compiled path converts nutpie's raw trace itself: the same posterior and sample statistics (values,
    dtypes, dims, coordinates) as nutpie's own conversion through ArviZ."""
    from bayes_scaling.inference import _nutpie_private, compiled

    data = bs.load_example()
    sampler = compiled_transfer_sampler(data, bs.ModelConfig())
    ours = sampler.sample(**SMALL)
    def unexpected(running, results, coords):
        results.get_arrow_trace()          # taken before the failure: the fallback still has it
        raise KeyError("a raw trace of another layout")

    monkeypatch.setattr(_nutpie_private, "_trace_to_tree", unexpected)
    fallback = sampler.sample(**SMALL)   # the raw trace handed back to nutpie's own conversion
    monkeypatch.setattr(_nutpie_private, "raw_trace_supported", lambda: False)
    theirs = sampler.sample(**SMALL)
    assert compiled.CompiledSampler.sample.__module__ == compiled.__name__
    for other in (theirs, fallback):
        for group in ("posterior", "sample_stats", "log_likelihood"):
            a, b = ours[group].to_dataset(), other[group].to_dataset()
            xr.testing.assert_equal(a, b)
            assert {k: v.dtype for k, v in a.variables.items()} == {k: v.dtype for k, v in b.variables.items()}


@needs_nutpie
def test_graph_cache_gives_the_same_draws(tmp_path, monkeypatch):
    """Two fits from an empty cache folder: the first builds and rewrites the graphs and writes them, the second
    (a fresh compilation: the in-process cache cleared) reads them; the same seed gives the same draws, which are
    also those of a fit without the cache."""
    monkeypatch.setenv("BAYES_SCALING_GRAPH_CACHE", str(tmp_path))
    from bayes_scaling.inference import fit as engine
    from bayes_scaling.laws.spec import builtin_spec
    from bayes_scaling.models import spec_model as sm

    table = bs.load_example().used[["pretraining", "N", "D_F", "D_T"]].reset_index(drop=True)
    plan = sm.plan(builtin_spec("transfer"), table)
    fits, states = [], []
    for setting in (str(tmp_path), str(tmp_path), "off"):
        monkeypatch.setenv("BAYES_SCALING_GRAPH_CACHE", setting)
        clear_compiled_cache()
        fits.append(bs.fit(table, "transfer", whiten="none", warn=False, **SMALL))
        states.append(engine._sampler(plan, True, "none").graph_cache)   # the sampler the fit used (kept)
    clear_compiled_cache()
    assert states == ["miss", "hit", "off"]
    assert len(list(tmp_path.glob("*.pkl"))) == 1
    for fit in fits[1:]:
        for group in ("posterior", "sample_stats", "log_likelihood"):
            xr.testing.assert_equal(fits[0].tree[group].to_dataset(), fit.tree[group].to_dataset())


@needs_nutpie
def test_graph_cache_of_a_law_spec_and_a_damaged_file(tmp_path):
    """A law spec (the hierarchical Chinchilla law on the bundled corpora): a cache hit gives the same draws;
    an unreadable cache file is a miss (and rewritten)."""
    from bayes_scaling.inference.compiled import CompiledSampler
    from bayes_scaling.laws.spec import LawSpec
    from bayes_scaling.models import spec_model as sm

    spec = LawSpec.from_toml("models/laws/chinchilla_by_corpus.toml")
    prepared = sm.prepare(spec, bs.datasets.load_corpora())
    priors = sm.default_priors(spec, prepared)
    noise = sm.noise_prior(spec, prepared)
    param = sm.choose_parameterization(spec, prepared, priors)

    def sampler():
        return CompiledSampler(sm.build_spec_model(spec, prepared, priors, param, noise), cache=tmp_path)

    first = sampler()
    (path,) = tmp_path.glob("*.pkl")
    second = sampler()
    path.write_bytes(b"not a pickle")
    third = sampler()
    assert [s.graph_cache for s in (first, second, third)] == ["miss", "hit", "miss"]
    draws = [s.sample(**SMALL)["posterior"].to_dataset() for s in (first, second, third)]
    xr.testing.assert_equal(draws[0], draws[1])
    xr.testing.assert_equal(draws[0], draws[2])


def test_graph_cache_key_follows_the_model():
    """Another prior, likelihood or number of groups: another key; the same model built twice: the same key."""
    from bayes_scaling.inference.compiled import _graph_cache_key
    from bayes_scaling.models.transfer import ModelConfig, build_transfer_model

    data = bs.load_example()
    arrays, pre = data.arrays(), tuple(data.pretraining)

    def key(config, arrays=arrays, pre=pre):
        model = build_transfer_model(arrays, pre, config, centre=(1.0, 2.0))
        shapes = [np.shape(v) for v in model.initial_point().values()]
        return _graph_cache_key(model, "NUMBA", True, shapes)

    base = key(ModelConfig())
    assert base is not None and base == key(ModelConfig())
    assert key(ModelConfig(likelihood="student_t")) != base
    one = arrays["p_idx"] == 0
    assert key(ModelConfig(), {k: v[one] for k, v in arrays.items()}, pre[:1]) != base
