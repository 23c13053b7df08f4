"""Back ends, the compiled-model cache and warm refits, seeds, and the convergence statistics."""

import warnings

import numpy as np
import pytest
import xarray as xr
from helpers import REPO

import bayes_scaling as bs
from bayes_scaling.inference import sampling as inference
from bayes_scaling.inference.sampling import (
    available_backends,
    clear_compiled_cache,
    resolve_backend,
    sample_nuts,
)

needs_nutpie = pytest.mark.skipif("nutpie" not in available_backends(), reason="nutpie is not installed")
SMALL = dict(draws=150, tune=150, chains=2, warn=False)


def _same(a, b) -> bool:
    return all(np.array_equal(a.posterior[v].values, b.posterior[v].values) for v in a.posterior.data_vars)


def _shifted(data: bs.TransferData, factor: float, n_factor: float = 1.0) -> bs.TransferData:
    """Another data set with the same number of runs: D_T scaled, N scaled (moves the centre)."""
    df = data.used.drop(columns=["D_E"], errors="ignore").copy()
    df["D_T"] = df["D_T"] * factor
    df["N"] = df["N"] * n_factor
    return bs.TransferData.from_frame(df, warn=False)


def test_auto_backend_is_recorded(example_data):
    fit = bs.fit_transfer(example_data, seed=4, **SMALL)
    expected = "nutpie" if "nutpie" in available_backends() else "pymc"
    assert resolve_backend("auto") == expected
    assert fit.backend == expected == fit.tree.attrs["backend"]
    with pytest.raises(ValueError, match="backend 'stan' is not one of"):
        bs.fit_transfer(example_data, seed=1, backend="stan", **SMALL)
    with pytest.raises(ValueError, match="seed must be an integer from 0 to"):
        bs.fit_transfer(example_data, seed=-3, **SMALL)


@pytest.mark.parametrize("backend", available_backends())
def test_seed_reproducibility_for_every_backend(example_data, backend):
    kw = dict(SMALL, draws=60, tune=60, backend=backend)
    a = bs.fit_transfer(example_data, seed=21, **kw)
    b = bs.fit_transfer(example_data, seed=21, **kw)
    c = bs.fit_transfer(example_data, seed=22, **kw)
    assert a.backend == backend
    assert _same(a, b)
    assert not np.array_equal(a.posterior["beta"].values, c.posterior["beta"].values)
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data", "constant_data"):
        assert group in a.tree.children, group
    assert a.tree["log_likelihood"]["D_T"].shape == (2, 60, example_data.n_used)


@needs_nutpie
def test_nutpie_draws_do_not_depend_on_cores(example_data):
    a = bs.fit_transfer(example_data, seed=5, backend="nutpie", cores=1, **SMALL)
    b = bs.fit_transfer(example_data, seed=5, backend="nutpie", cores=2, **SMALL)
    assert _same(a, b)


@needs_nutpie
def test_refit_reuses_the_compiled_model_and_equals_a_fresh_fit(example_data):
    """A warm refit on new data (same shape, another centre) swaps pm.Data only, and gives exactly the
    draws of a fit in a process that never saw the first data set."""
    other = _shifted(example_data, 1.7, n_factor=3.0)
    clear_compiled_cache()
    bs.fit_transfer(example_data, seed=1, backend="nutpie", **SMALL)
    (sampler,) = inference._COMPILED.values()
    warm = bs.fit_transfer(other, seed=9, backend="nutpie", **SMALL)
    assert list(inference._COMPILED.values()) == [sampler]  # no second compilation
    assert warm.centre == pytest.approx((np.log(other.used["D_F"]).mean(), np.log(other.used["N"]).mean()))
    clear_compiled_cache()
    fresh = bs.fit_transfer(other, seed=9, backend="nutpie", **SMALL)
    assert _same(warm, fresh)
    # the refit follows the new data: k scales with D_T (x1.7) and with N**-beta (N x3)
    k_ratio = float(warm.posterior["k"].median() / bs.fit_transfer(example_data, seed=9, backend="nutpie",
                                                                    **SMALL).posterior["k"].median())
    assert k_ratio == pytest.approx(1.7 * 3.0 ** -0.38, rel=0.1)


@needs_nutpie
def test_refit_with_another_number_of_runs(example_data):
    subset = bs.TransferData.from_frame(example_data.used.drop(columns=["D_E"]).iloc[::2], warn=False)
    fit = bs.fit_transfer(subset, seed=3, backend="nutpie", **SMALL)
    assert fit.tree["log_likelihood"]["D_T"].sizes["row"] == subset.n_used
    assert fit.tree["observed_data"]["D_T"].size == subset.n_used


@needs_nutpie
def test_warm_refit_default_quality(example_data):
    """A warm refit with defaults: bulk ESS >= 400 (the package's threshold; the bundled data are fitted
    non-centred, see resolve_parameterization), no divergence, the compiled C callbacks (no Python in the
    sampling loop). Its time is the benchmark's (README, Performance), not asserted here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.errors.ConvergenceWarning)
        bs.fit_transfer(example_data, seed=1)  # compiles (or takes the cached model)
        fit = bs.fit_transfer(example_data, seed=2)
    d = fit.diagnostics
    assert fit.backend == "nutpie"
    assert d.divergences == 0 and d.ess_bulk_min >= 400 and d.r_hat_max <= 1.01, str(d)
    assert fit.posterior.attrs["engine"] == "cfunc"


@needs_nutpie
def test_python_callbacks_give_the_same_draws(example_data):
    """The fallback engine (Numba functions called from Python) evaluates the same compiled code."""
    sampler = inference.compiled_transfer_sampler(example_data, bs.ModelConfig())
    a = sampler.sample(draws=100, tune=100, chains=2, seed=8)
    sampler.engine = "python"
    try:
        b = sampler.sample(draws=100, tune=100, chains=2, seed=8)
    finally:
        sampler.engine = "cfunc"
    assert a["posterior"].attrs["engine"] == "cfunc" and b["posterior"].attrs["engine"] == "python"
    assert all(np.array_equal(a["posterior"][v].values, b["posterior"][v].values)
               for v in a["posterior"].data_vars)


@needs_nutpie
def test_generic_model_matches_closed_form_posterior():
    """Normal mean with known sigma and a Normal prior: posterior N(m, s) in closed form."""
    import pymc as pm

    y = np.array([1.2, 0.4, 2.2, 1.9, 0.8, 1.5])
    with pm.Model() as model:
        data = pm.Data("y", y)
        mu = pm.Normal("mu", 0.0, 2.0)
        pm.Normal("obs", mu, 0.5, observed=data)
    tree = sample_nuts(model, draws=2000, tune=500, chains=2, seed=3, backend="nutpie", target_accept=0.8,
                       progressbar=False)
    prec = 1 / 2.0 ** 2 + len(y) / 0.5 ** 2
    m, s = (y.sum() / 0.5 ** 2) / prec, prec ** -0.5
    draws = tree["posterior"]["mu"].values.ravel()
    assert tree.attrs["backend"] == "nutpie"
    assert abs(draws.mean() - m) < 4 * s / np.sqrt(1000)
    assert draws.std() == pytest.approx(s, rel=0.1)
    assert tree["log_likelihood"]["obs"].shape == (2, 2000, len(y))


@needs_nutpie
def test_public_nutpie_path_when_its_private_api_differs(monkeypatch):
    """nutpie's private API is used in one module only; where it differs (here: a CompiledPyMCModel without
    the fields we pass, as in nutpie < 0.16.9), the sampler warns and samples through nutpie's public
    compile_pymc_model + with_data: the same closed-form posterior, the same trace layout, refits follow
    new data."""
    import dataclasses

    import pymc as pm

    from bayes_scaling.inference import _nutpie_private
    from bayes_scaling.inference.compiled import CompiledSampler

    @dataclasses.dataclass(frozen=True)
    class OlderCompiledPyMCModel:
        dims: dict
        compiled_logp_func: object

    monkeypatch.setattr(_nutpie_private, "_compiled_pymc_model_class", lambda: OlderCompiledPyMCModel)
    y = np.array([1.2, 0.4, 2.2, 1.9, 0.8, 1.5])
    with pm.Model(coords={"obs_id": range(len(y))}) as model:
        data = pm.Data("y", y, dims="obs_id")
        mu = pm.Normal("mu", 0.0, 2.0)
        pm.Normal("obs", mu, 0.5, observed=data, dims="obs_id")
    sampler = CompiledSampler(model)
    with pytest.warns(RuntimeWarning, match="public compile_pymc_model"):
        tree = sampler.sample(draws=1000, tune=300, chains=2, seed=3)
    assert sampler.engine == "public" and tree["posterior"].attrs["engine"] == "public"
    prec = 1 / 2.0 ** 2 + len(y) / 0.5 ** 2
    for shift in (0.0, 1.0):
        if shift:
            sampler.set_data({"y": y + shift})
            tree = sampler.sample(draws=1000, tune=300, chains=2, seed=3)
        m, s = ((y + shift).sum() / 0.5 ** 2) / prec, prec ** -0.5
        draws = tree["posterior"]["mu"].values.ravel()
        assert abs(draws.mean() - m) < 5 * s / np.sqrt(500), shift
        assert draws.std() == pytest.approx(s, rel=0.15)
    assert tree["log_likelihood"]["obs"].dims == ("chain", "draw", "obs_id")
    lp = -0.5 * ((xr.DataArray(y + 1.0, dims="obs_id") - tree["posterior"]["mu"]) / 0.5) ** 2 - np.log(0.5 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(tree["log_likelihood"]["obs"].values, lp.transpose("chain", "draw", ...).values)
    np.testing.assert_array_equal(tree["observed_data"]["obs"].values, y + 1.0)
    # outside the tested versions the private API is not used at all
    monkeypatch.setattr(_nutpie_private, "TESTED_NUTPIE", ((0, 0, 0), (0, 1, 0)))
    with pytest.raises(_nutpie_private.PrivateAPIError, match="outside the tested range"):
        _nutpie_private.pyfunc_model()


def test_mcmc_stats_match_arviz_stats():
    """Our R-hat / bulk ESS / tail ESS (5%, 95%) / equal-tailed intervals equal arviz-stats' on iid,
    autocorrelated, tied and non-mixing draws (the copy exists only for import time: see its docstring)."""
    from arviz_stats.base import array_stats

    from bayes_scaling.inference import mcmc_stats

    rng = np.random.default_rng(1)
    cases = [rng.normal(size=(4, 500)), np.cumsum(rng.normal(size=(4, 400)), axis=1),
             np.round(rng.normal(size=(2, 300)), 1), rng.normal(size=(3, 200)) + np.arange(3)[:, None]]
    for x in cases:
        assert mcmc_stats.rhat(x) == pytest.approx(float(array_stats.rhat(x, method="rank")), rel=1e-10)
        assert mcmc_stats.ess_bulk(x) == pytest.approx(float(array_stats.ess(x, method="bulk")), rel=1e-10)
        assert mcmc_stats.ess_tail(x) == pytest.approx(
            float(array_stats.ess(x, method="tail", prob=(0.05, 0.95))), rel=1e-10)
        for prob in (0.5, 0.94):
            np.testing.assert_allclose(mcmc_stats.eti(x, prob), array_stats.eti(x, prob, axis=(-2, -1)),
                                       rtol=1e-12)
    assert mcmc_stats.rhat(cases[3]) > 1.1  # chains that disagree are flagged
    # the summary table is built from them
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"x": (("chain", "draw"), cases[1])}),
                                  "sample_stats": xr.Dataset()})
    row = inference.summarize(tree, ["x"], ci_prob=0.9).iloc[0]
    assert (row["eti90_lb"], row["eti90_ub"]) == pytest.approx(tuple(array_stats.eti(cases[1], 0.9, axis=(-2, -1))))
    assert row["r_hat"] == pytest.approx(float(array_stats.rhat(cases[1], method="rank")), rel=1e-10)


@needs_nutpie
def test_many_fits_in_parallel_processes_are_reproducible(example_data):
    """Data subsets fitted in 2 worker processes (each compiling once) give exactly the sequential fits."""
    from bayes_scaling.inference.sampling import fit_transfer_many

    subsets = [example_data.with_exclusions(example_data.table["N"] > n, "N cut") for n in (1e8, 1e9)]
    kw = dict(draws=100, tune=100, chains=2)
    seq = fit_transfer_many(subsets, seed=3, **kw)
    par = fit_transfer_many(subsets, seed=3, processes=2, **kw)
    assert [f.data.n_used for f in par] == [s.n_used for s in subsets]
    assert all(_same(a, b) for a, b in zip(seq, par, strict=True))
    assert _same(seq[1], bs.fit_transfer(subsets[1], seed=4, warn=False, **kw))
    with pytest.raises(ValueError, match="configurations for 2 data sets"):
        fit_transfer_many(subsets, config=[bs.ModelConfig()] * 3)


@needs_nutpie
def test_inconsistent_data_raises_instead_of_sampling_garbage(example_data):
    sampler = inference.compiled_transfer_sampler(example_data, bs.ModelConfig())
    try:
        sampler.set_data({"log_D_F": example_data.arrays()["log_D_F"][:50]}, coords={"run": np.arange(50)})
        with pytest.raises(ValueError, match="incompatible shape"):
            sampler.sample(draws=20, tune=20, chains=1, seed=1)
    finally:
        clear_compiled_cache()


@needs_nutpie
def test_log_likelihood_can_be_skipped(example_data):
    with_ll = bs.fit_transfer(example_data, seed=6, **SMALL)
    without = bs.fit_transfer(example_data, seed=6, log_likelihood=False, **SMALL)
    assert "log_likelihood" in with_ll.tree.children and "log_likelihood" not in without.tree.children
    assert _same(with_ll, without)  # the same sampler path: only the recorded trace differs


def test_one_convergence_warning_for_every_fit_function():
    """Diagnostics.warn is the one place that turns bad diagnostics into a ConvergenceWarning (fit_transfer,
    fit_scratch and fit_joint call it): silent when ok, otherwise the problems and what to do, attributed to
    the caller."""
    from bayes_scaling.inference.sampling import Diagnostics

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Diagnostics(1.001, 2000.0, 1500.0, 0, 4000).warn()
    with pytest.warns(bs.errors.ConvergenceWarning, match=r"PROBLEMS.*3 divergent transition\(s\): raise target_accept") as rec:
        Diagnostics(1.001, 2000.0, 1500.0, 3, 4000).warn()
    assert rec[0].filename == __file__
    with pytest.warns(bs.errors.ConvergenceWarning, match=r"R-hat 1.200 > 1.01.*ESS \(bulk 100, tail 90\) < 400"):
        Diagnostics(1.2, 100.0, 90.0, 0, 4000).warn()


def test_declared_version_ranges_hold_here_and_match_the_private_nutpie_module():
    """pyproject.toml declares tested ranges of nutpie, pytensor, pymc and arviz: the installed versions (the
    ones the suite tests) lie inside, and the private-API module uses nutpie's private API on that range."""
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    from packaging.requirements import Requirement
    from packaging.version import Version

    from bayes_scaling.inference import _nutpie_private

    deps = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    reqs = {r.name: r for r in map(Requirement, deps["dependencies"])}
    for name in ("nutpie", "pytensor", "pymc", "arviz"):
        spec = reqs[name].specifier
        assert any(s.operator == "<" for s in spec) and any(s.operator == ">=" for s in spec), (name, spec)
        assert Version(version(name)) in spec, (name, version(name), spec)
    low, high = (Version(".".join(map(str, v))) for v in _nutpie_private.TESTED_NUTPIE)
    assert {(s.operator, Version(s.version)) for s in reqs["nutpie"].specifier} == {(">=", low), ("<", high)}
    assert "nutpie" not in deps["optional-dependencies"]  # a core dependency, not an extra


def test_the_speed_up_is_quoted_in_one_place():
    """The speed-up against PyMC is a number in the benchmark table (docs/benchmarks.md) and the README's headline
    only; in the package and its metadata it is referred to."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    quote = re.compile(r"\d+\s*x (the )?(ESS|effective samples)", re.IGNORECASE)
    files = [root / "pyproject.toml", *sorted((root / "bayes_scaling").rglob("*.py"))]
    found = [f"{f.relative_to(root)}: {m.group(0)}" for f in files for m in quote.finditer(f.read_text())]
    assert not found, found
    table = (root / "docs" / "benchmarks.md").read_text()
    assert re.search(r"\| \*\*ratio \(ours / baseline\)\*\* \| \*\*\d+x\*\* \|", table)


def test_summary_command_does_not_import_arviz_stats():
    """The reason the NumPy copy of R-hat/ESS exists (inference/mcmc_stats.py): ``bayes-scaling summary`` in a
    fresh process imports no arviz-stats (which costs it ~1.6 s)."""
    import subprocess
    import sys

    fit = REPO / "tests" / "fixtures" / "v0.1_transfer.nc"
    code = ("import io, contextlib, sys\nfrom bayes_scaling.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    rc = main(['summary', {str(fit)!r}])\n"
            "print(rc, sorted(m for m in ('arviz', 'arviz_stats', 'arviz_base') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "[]"], out
