"""Benchmarks: ``python benchmarks/bench.py [--quick] [--only SECTION ...]`` (``make bench``).

Prints one Markdown table (paste it into the README) and the machine it ran on. Every speed-up is measured
against a baseline *in the same run*: the same hierarchical transfer model written plainly in PyMC
(uncentred predictors, textbook hierarchy on ``log k``, ``pm.sample`` defaults with PyMC's NUTS).

Sections (``--only``): ``cli`` (fresh-process ``bayes-scaling fit`` on the bundled transfer data and
``fit --model chinchilla_by_corpus.toml`` on the bundled corpora data, cold and warm caches, against the graph
cache switched off and PyMC's sampler; the transfer fit stage by stage), ``refit`` (warm refit in the same process), ``ess`` (effective samples per second vs the baseline),
``backends`` (pymc / nutpie / numpyro side by side), ``chinchilla`` (the from-scratch loss law on Epoch AI's
Chinchilla runs vs a plain-PyMC version), ``spec`` (a hierarchical Chinchilla law spec, 3 corpora x 90 simulated
runs: ESS/s against the same model written plainly in PyMC), ``whiten``
(every built-in law spec on its bundled or example data: leapfrog steps a draw and ESS/s unwhitened, Laplace-
whitened and with PyMC's own NUTS on the same model; a simulated 30 groups x 20 runs fit with three partially
pooled parameters; fresh-process ``bayes-scaling fit`` wall times (transfer; ``chinchilla_by_corpus`` on the
bundled 3 x 36 runs and on 3 x 90 simulated ones), with a ``python -X importtime`` breakdown
written to ``benchmarks/`` when a target is missed), ``scale`` (10,000 runs, 20 pre-training distributions), ``sbc``
(simulation-based calibration, 100 simulations), ``cluster`` (SBC and the smoke sweep, serial against a local
Dask cluster of 2 workers; overhead per task; the 32-worker estimate). ``--quick``: no cold-cache run, no plain-PyMC baselines of
the loss law, 30 SBC simulations, 2,000 runs for the scale test.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from bayes_scaling._system import cpu_model

SECTIONS = ("cli", "refit", "ess", "backends", "chinchilla", "spec", "whiten", "groups", "scale", "sbc", "cluster")
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# ---- the machine ---------------------------------------------------------------------------------------

def machine() -> str:
    cpu = cpu_model() or "unknown CPU"
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    from importlib.metadata import version

    libs = []
    for lib in ("pymc", "pytensor", "nutpie", "numba", "numpyro", "jax"):
        try:
            libs.append(f"{lib} {version(lib)}")
        except Exception:  # noqa: BLE001 - not installed
            pass
    return (f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; {', '.join(libs)}; load average at start: {load}")


# ---- helpers -------------------------------------------------------------------------------------------

def _min_ess(tree, var_names) -> tuple[float, float, int]:
    """(min bulk ESS, max R-hat, divergences) over ``var_names`` present in the posterior."""
    from bayes_scaling.inference.sampling import diagnose

    d = diagnose(tree, [v for v in var_names if v in tree["posterior"].to_dataset()])
    return d.ess_bulk_min, d.r_hat_max, d.divergences


def _quiet():
    warnings.simplefilter("ignore")
    import logging

    for name in ("pymc", "pytensor", "numba", "nutpie", "jax"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _cli() -> list[str]:
    exe = shutil.which("bayes-scaling", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "bayes_scaling"]


def _time_cli(args: list[str], env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(_cli() + args, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"bayes-scaling {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    line = next((ln[ln.index("NUTS back end"):] for ln in proc.stdout.splitlines() if "NUTS back end" in ln), "")
    return seconds, line


def baseline_transfer_model(data):
    """The plain PyMC version: log D_T ~ Normal(log k[p] + alpha[p] log D_F + beta log N, sigma) with raw
    (uncentred) predictors and the textbook centred hierarchy on log k[p] and alpha[p]; same priors."""
    import pymc as pm

    from bayes_scaling.models.transfer import ModelConfig

    pri = ModelConfig().priors
    a = data.arrays()
    with pm.Model(coords={"pretraining": list(data.pretraining)}) as model:
        log_k_mu = pm.Normal("log_k_mu", pri["log_k"]["mu"], pri["log_k"]["sigma"])
        log_k_sigma = pm.Gamma("log_k_sigma", 2.0, 2.0 / pri["log_k_spread"]["sigma"])
        alpha_mu = pm.Normal("alpha_mu", pri["alpha"]["mu"], pri["alpha"]["sigma"])
        alpha_sigma = pm.Gamma("alpha_sigma", 2.0, 2.0 / pri["alpha_spread"]["sigma"])
        log_k = pm.Normal("log_k", log_k_mu, log_k_sigma, dims="pretraining")
        alpha = pm.Normal("alpha", alpha_mu, alpha_sigma, dims="pretraining")
        beta = pm.Normal("beta", pri["beta"]["mu"], pri["beta"]["sigma"])
        sigma = pm.HalfNormal("sigma", pri["sigma"]["sigma"])
        p = a["p_idx"]
        pm.Normal("log_D_T", log_k[p] + alpha[p] * a["log_D_F"] + beta * a["log_N"], sigma,
                  observed=a["log_D_T"])
    return model


def _baseline_fit(model, seed: int) -> tuple[float, object]:
    import pymc as pm

    t0 = time.perf_counter()
    with model:
        tree = pm.sample(random_seed=seed, nuts_sampler="pymc", progressbar=False,
                         compute_convergence_checks=False)
    return time.perf_counter() - t0, tree


TRANSFER_VARS = ["log_k", "alpha", "beta", "sigma", "a_mu", "alpha_mu", "a_sigma", "alpha_sigma", "a",
                 "log_k_mu", "log_k_sigma"]


# ---- sections ------------------------------------------------------------------------------------------

_STAGES_DRIVER = """
import time
t0 = time.perf_counter()
import sys
from bayes_scaling.cli import build_parser
t_cli = time.perf_counter()
import os
from bayes_scaling.data.tables import read_table
from bayes_scaling.inference import fit as engine
from bayes_scaling.inference._nutpie_private import import_nutpie
from bayes_scaling.inference.whiten import WHITENED_TARGET_ACCEPT
from bayes_scaling.models import spec_model as sm
import numba, pytensor   # (PyMC: only where the fit cache misses, in the load below)
import_nutpie()
t_imp = time.perf_counter()
spec = engine._as_spec(sys.argv[2])
table, _ = engine._apply_exclusions(spec, read_table(sys.argv[1], "data"), "data", False)
t_data = time.perf_counter()
plan = sm.plan(spec, table)
t_plan = time.perf_counter()
sampler, param, choice = engine._prepared_sampler(plan, True, "auto")   # as bs.fit: the fit cache first
t_whiten = time.perf_counter()
t_load = t_whiten - choice.seconds   # the whitening's share (0 where read from the fit cache)
tree = sampler.sample(draws=1000, tune=1000, chains=4, seed=1, cores=min(4, os.cpu_count() or 1),
                      target_accept=WHITENED_TARGET_ACCEPT if choice.method == "laplace" else 0.99,
                      coords={g: list(v) for g, v in plan.data.labels.items()}, adaptation=choice.adaptation)
t_sample = time.perf_counter()
tree.attrs.update(bayes_scaling_kind="spec", spec=__import__("json").dumps(spec.to_dict()), spec_hash=spec.hash(),
                  backend="nutpie", seed=1, priors=__import__("json").dumps(plan.priors),
                  labels=__import__("json").dumps(plan.data.labels))
fit = engine.Fit(tree, plan.data.table, spec)
fit.summary(); str(fit.diagnostics)
t_summary = time.perf_counter()
fit.save(sys.argv[3])
t_save = time.perf_counter()
print(t_cli - t0, t_imp - t_cli, t_data - t_imp, t_plan - t_data, t_load - t_plan, t_whiten - t_load,
      t_sample - t_whiten, t_summary - t_sample, t_save - t_summary, sampler.graph_cache, choice.method)
from bayes_scaling_launch import _exit_without_teardown
_exit_without_teardown(0)   # as the executable ends
"""

#: the stages the driver times, in its order
STAGE_NAMES = ["imports: Python, NumPy, pandas (+pyarrow), xarray, the command line",
               "imports: PyTensor, Numba, nutpie (ArviZ deferred; PyMC only where the fit cache misses)",
               "read the CSV, the spec's exclusions",
               "plan: check the data, default priors (least-squares start), parameterization",
               "load the sampler (graph cache: {cache}, where snapshot: read from the fit cache; Numba cache)",
               "whitening: mode and Hessian ({method}; read from the fit cache on a hit)",
               "sampling (4 x 2000 steps)", "summary and diagnostics", "write the fit file",
               "the rest of the process (interpreter start, exit handlers)"]


def _stages(csv: Path, spec: str, out: Path, env: dict | None = None) -> list:
    """The stages of a spec fit (``bayes-scaling fit CSV --model SPEC``) in a fresh process: seconds for each of
    :data:`STAGE_NAMES` (the last: the process's wall time not in the others: the interpreter's start, the
    exit handlers), then the graph cache's state and the whitening chosen."""
    env = dict(os.environ if env is None else env)
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):   # as the executable sets them before NumPy loads
        env.setdefault(name, "1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _STAGES_DRIVER, str(csv), spec, str(out)], capture_output=True,
                          text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"stages driver failed: {proc.stderr.strip()[-500:]}")
    *times, cache, method = proc.stdout.split()[-(len(STAGE_NAMES) + 1):]
    times = [float(t) for t in times]
    return times + [wall - sum(times), cache, method]


def stage_table(csv: Path, spec: str, repeat: int) -> tuple[float, str]:
    """The best of ``repeat`` fresh-process stage runs: the sum, and each stage's seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        _stages(csv, spec, Path(tmp) / "warm.nc")   # warm the caches
        runs = [_stages(csv, spec, Path(tmp) / "stages.nc") for _ in range(repeat)]
    n = len(STAGE_NAMES)
    best = min(runs, key=lambda st: sum(st[:n]))
    names = [s.format(cache=best[n], method=best[n + 1]) for s in STAGE_NAMES]
    return sum(best[:n]), "; ".join(f"{name} {t:.2f} s" for name, t in zip(names, best[:n], strict=True))


def bench_cli(rows: list, quick: bool) -> None:
    """Fresh-process ``bayes-scaling fit``: the bundled transfer data and the hierarchical Chinchilla spec on the
    bundled corpora data; warm caches (best of 5) and cold caches (PyTensor's, Numba's and the graph cache
    emptied); the graph cache switched off, and PyMC's own sampler, as baselines in the same run."""
    from bayes_scaling.data.datasets import CORPORA_CSV, EXAMPLE_CSV

    spec = REPO / "models" / "laws" / "chinchilla_by_corpus.toml"
    repeat = 2 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "fit.nc")
        cases = [("`bayes-scaling fit` (transfer, bundled data)", ["fit", str(EXAMPLE_CSV), "--out", out], "<= 3 s"),
                 ("`bayes-scaling fit --model chinchilla_by_corpus.toml` (bundled corpora data, 3 x 36 runs)",
                  ["fit", str(CORPORA_CSV), "--model", str(spec), "--out", out], "<= 4 s")]
        for label, args, target in cases:
            if not quick:
                env = dict(os.environ)
                env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp}/pytensor"
                env["NUMBA_CACHE_DIR"] = f"{tmp}/numba"
                s, line = _time_cli(args, env)
                rows.append((f"{label}, fresh process, cold caches", f"{s:.1f} s", "-", line))
                shutil.rmtree(f"{tmp}/pytensor", ignore_errors=True)
                shutil.rmtree(f"{tmp}/numba", ignore_errors=True)
            _time_cli(args)  # warm the caches
            times = [_time_cli(args) for _ in range(repeat)]
            best = min(t for t, _ in times)
            off = dict(os.environ, BAYES_SCALING_GRAPH_CACHE="off")
            no_cache = min(_time_cli(args, off)[0] for _ in range(1 if quick else 3))
            rows.append((f"{label}, fresh process, warm caches (best of {repeat})", f"{best:.2f} s", target,
                         f"graph cache off: {no_cache:.2f} s ({no_cache / best:.2f}x); {times[0][1]}"))
        times = [_time_cli(cases[0][1] + ["--backend", "pymc"]) for _ in range(1 if quick else 2)]
        pymc_s = min(t for t, _ in times)
        rows.append(("`bayes-scaling fit --backend pymc` (transfer; fresh process, warm caches)", f"{pymc_s:.2f} s",
                     "-", f"baseline: the nutpie row is {pymc_s / _warm_transfer_seconds(rows):.1f}x faster; {times[0][1]}"))
    for label, csv, name in (("transfer", EXAMPLE_CSV, "transfer"),
                             ("chinchilla_by_corpus", CORPORA_CSV, "chinchilla_by_corpus")):
        total, detail = stage_table(csv, name, repeat)
        rows.append((f"fresh `fit` ({label}) stage by stage (best of {repeat}; sum)", f"{total:.2f} s", "-", detail))


def _warm_transfer_seconds(rows: list) -> float:
    """The seconds of the last warm-cache transfer row (``"1.23 s"``)."""
    for r in reversed(rows):
        if r[0].startswith("`bayes-scaling fit` (transfer") and "warm" in r[0]:
            return float(r[1].split()[0])
    return float("nan")


def bench_refit(rows: list, quick: bool) -> None:
    import bayes_scaling as bs
    from bayes_scaling.inference.sampling import _fit_transfer

    data = bs.load_example()
    _fit_transfer(data, seed=1, warn=False)
    times = []
    rng = np.random.default_rng(0)
    for i in range(5):
        df = data.used.drop(columns=["D_E"], errors="ignore").copy()
        df["D_T"] *= np.exp(rng.normal(0, 0.05, len(df)))  # new measurements, same shape
        new = bs.TransferData.from_frame(df, warn=False)
        t0 = time.perf_counter()
        fit = _fit_transfer(new, seed=10 + i, warn=False)
        times.append(time.perf_counter() - t0)
    d = fit.diagnostics
    rows.append(("warm refit in the same process (new data, same shape; median of 5)",
                 f"{np.median(times):.2f} s", "<= 0.5 s",
                 f"backend {fit.backend}; min bulk ESS {d.ess_bulk_min:.0f}, divergences {d.divergences}"))


def bench_ess(rows: list, quick: bool) -> None:
    import bayes_scaling as bs
    from bayes_scaling.inference.sampling import _fit_transfer

    data = bs.load_example()
    _fit_transfer(data, seed=1, warn=False)  # compiled model ready: time sampling + summary only
    t0 = time.perf_counter()
    fit = _fit_transfer(data, seed=1, warn=False)
    ours_s = time.perf_counter() - t0
    ours_ess, ours_rhat, ours_div = _min_ess(fit.tree, TRANSFER_VARS)
    base_s, tree = _baseline_fit(baseline_transfer_model(data), seed=1)
    base_ess, base_rhat, base_div = _min_ess(tree, TRANSFER_VARS)
    ratio = (ours_ess / ours_s) / (base_ess / base_s)
    rows.append(("ESS/s, min over parameters: bayes_scaling defaults (warm)",
                 f"{ours_ess / ours_s:.0f} /s", "-",
                 f"{fit.backend}: min bulk ESS {ours_ess:.0f} in {ours_s:.2f} s, R-hat {ours_rhat:.3f}, "
                 f"divergences {ours_div}"))
    rows.append(("ESS/s, min over parameters: plain PyMC baseline (`pm.sample` defaults, incl. compile)",
                 f"{base_ess / base_s:.1f} /s", "-",
                 f"min bulk ESS {base_ess:.0f} in {base_s:.1f} s, R-hat {base_rhat:.3f}, divergences {base_div}"))
    ours_sampling = float(fit.posterior.attrs.get("sampling_time", ours_s))
    base_sampling = float(tree["posterior"].attrs.get("sampling_time", base_s))
    ratio_sampling = (ours_ess / ours_sampling) / (base_ess / base_sampling)
    rows.append(("ESS/s ratio (ours / baseline)", f"{ratio:.0f}x", ">= 4x",
                 f"sampling time only: {ratio_sampling:.0f}x ({ours_sampling:.2f} s vs {base_sampling:.1f} s)"))


def bench_backends(rows: list, quick: bool) -> None:
    import bayes_scaling as bs
    from bayes_scaling.inference.sampling import _fit_transfer, available_backends, clear_compiled_cache

    data = bs.load_example()
    for backend in available_backends():
        clear_compiled_cache()
        t0 = time.perf_counter()
        fit = _fit_transfer(data, seed=1, backend=backend, warn=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit = _fit_transfer(data, seed=1, backend=backend, warn=False)
        second = time.perf_counter() - t0
        ess, rhat, div = _min_ess(fit.tree, TRANSFER_VARS)
        rows.append((f"back end `{backend}`: bundled data, 4 x 1000 draws",
                     f"{first:.1f} s first / {second:.2f} s again", "-",
                     f"min bulk ESS {ess:.0f} ({ess / second:.0f}/s), R-hat {rhat:.3f}, divergences {div}"))


def bench_chinchilla(rows: list, quick: bool) -> None:
    path = SHARED_DATA / "chinchilla_epoch_svg_extracted.csv"
    import bayes_scaling as bs
    from bayes_scaling.inference.scratch import loss_law_spec
    from bayes_scaling.models import losslaws

    if not path.is_file():
        rows.append(("Chinchilla loss law", "skipped", "-", f"{path} not found"))
        return
    runs, _ = losslaws.read_epoch_chinchilla(path, warn=False)
    spec = loss_law_spec("chinchilla", likelihood="normal")     # what fit_scratch(law="chinchilla") fits
    fit = bs.fit(runs, spec, seed=1, backend="auto", warn=False)  # compiles
    t0 = time.perf_counter()
    fit = bs.fit(runs, spec, seed=2, backend="auto", warn=False)
    s = time.perf_counter() - t0
    d = fit.diagnostics
    rows.append(("Chinchilla law, Epoch AI's 240 runs: `bs.fit` (normal noise, warm)", f"{s:.1f} s", "<= 10 s",
                 f"min bulk ESS {d.ess_bulk_min:.0f}, divergences {d.divergences}, R-hat {d.r_hat_max:.3f}"))
    if quick:
        return
    import pymc as pm

    logL = np.log(runs["loss"].to_numpy())
    N, D = runs["N"].to_numpy(), runs["D"].to_numpy()
    with pm.Model() as plain:  # textbook: raw parameters, weak priors around Epoch AI's fit
        E = pm.LogNormal("E", np.log(1.8), 0.5)
        A = pm.LogNormal("A", np.log(400), 1.5)
        B = pm.LogNormal("B", np.log(2000), 1.5)
        aN = pm.Normal("alpha_N", 0.35, 0.15)
        aD = pm.Normal("alpha_D", 0.35, 0.15)
        sigma = pm.HalfNormal("sigma", 0.1)
        pm.Normal("logL", pm.math.log(E + A * N ** -aN + B * D ** -aD), sigma, observed=logL)
    base_s, tree = _baseline_fit(plain, seed=1)
    ess, rhat, div = _min_ess(tree, ["E", "A", "B", "alpha_N", "alpha_D", "sigma"])
    rows.append(("Chinchilla law: plain PyMC baseline (`pm.sample` defaults)", f"{base_s:.1f} s", "-",
                 f"min bulk ESS {ess:.0f}, divergences {div}, R-hat {rhat:.3f}"))


def bench_spec(rows: list, quick: bool) -> None:
    """The hierarchical Chinchilla spec on 3 corpora x 90 simulated runs (:func:`corpora_3x90`): ESS/s of
    ``bs.fit`` against the same model written plainly in PyMC (the fresh-process command line: section
    ``whiten``)."""
    import pandas as pd

    import bayes_scaling as bs

    runs = pd.read_csv(corpora_3x90())
    spec = "chinchilla_by_corpus"
    names = ["E", "A", "B", "alpha", "beta", "sigma", "nu"]
    bs.fit(runs, spec, seed=1, warn=False)  # compiled model ready
    t0 = time.perf_counter()
    fit = bs.fit(runs, spec, seed=2, warn=False)
    ours_s = time.perf_counter() - t0
    ours_ess, ours_rhat, ours_div = _min_ess(fit.tree, names)
    rows.append(("hierarchical Chinchilla spec, 3 x 90 simulated runs: `bs.fit` warm, ESS/s (min over parameters)",
                 f"{ours_ess / ours_s:.0f} /s", "-",
                 f"min bulk ESS {ours_ess:.0f} in {ours_s:.2f} s, R-hat {ours_rhat:.3f}, divergences {ours_div}"))
    if quick:
        return
    import pymc as pm

    corpora = sorted(runs["corpus"].unique())
    g = runs["corpus"].map({c: i for i, c in enumerate(corpora)}).to_numpy()
    N, D, logL = runs["N"].to_numpy(), runs["D"].to_numpy(), np.log(runs["loss"].to_numpy())
    with pm.Model(coords={"corpus": corpora}) as plain:  # the same model, written as a user would
        def pooled(name, loc, scale):
            mu = pm.Normal(f"log_{name}_mu", loc, scale)
            sd = pm.Gamma(f"log_{name}_sigma", 2.0, 2.0 / 0.5)
            return pm.math.exp(pm.Normal(f"log_{name}", mu, sd, dims="corpus"))
        E, A, B = pooled("E", np.log(1.8), 3.0), pooled("A", np.log(400.0), 3.0), pooled("B", np.log(1500.0), 3.0)
        alpha = pm.LogNormal("alpha", np.log(0.3), 1.0)
        beta = pm.LogNormal("beta", np.log(0.3), 1.0)
        sigma = pm.HalfNormal("sigma", float(np.std(logL)))
        nu = pm.Gamma("nu", 2.0, 0.1)
        pm.StudentT("loss", nu=nu, mu=pm.math.log(E[g] + A[g] / N**alpha + B[g] / D**beta), sigma=sigma,
                    observed=logL)
    base_s, tree = _baseline_fit(plain, seed=1)
    base_ess, base_rhat, base_div = _min_ess(tree, ["log_E", "log_A", "log_B", "alpha", "beta", "sigma", "nu"])
    rows.append(("hierarchical Chinchilla: plain PyMC baseline (`pm.sample` defaults, incl. compile), ESS/s",
                 f"{base_ess / base_s:.2f} /s", "-",
                 f"min bulk ESS {base_ess:.0f} in {base_s:.1f} s, R-hat {base_rhat:.3f}, divergences {base_div}"))
    rows.append(("hierarchical Chinchilla ESS/s ratio (ours / baseline)",
                 f"{(ours_ess / ours_s) / (base_ess / base_s):.0f}x", ">= 10x", "same run, same machine"))


# ---- Laplace whitening of law-spec fits (bayes_scaling.inference.whiten) ---------------------------------

WHITEN_DRAWS = {"draws": 200, "tune": 200, "chains": 2}
#: ``--specs``: the built-in specs of section ``whiten`` to run (all when empty; the Lin-sized fit and the command
#: line are then left out)
SPECS: list[str] = []


def _rate(x: float) -> str:
    """A rate or ratio to two significant figures below 10 (``0.31``, ``4.2``), as a whole number above."""
    return f"{x:.0f}" if x >= 10 else f"{x:.2g}"


def _row(rows: list, row: tuple) -> None:
    """Add a row and print it at once (a long section's rows survive an interrupted run)."""
    rows.append(row)
    print("| " + " | ".join(row) + " |", file=sys.stderr, flush=True)


def builtin_spec_data() -> dict:
    """Every built-in law spec (:func:`~bayes_scaling.laws.spec.builtin_names`) and its data (as in the tests):
    ``name -> (table, what)``; bundled tables where the package has them, Epoch AI's runs from the shared data
    folder (``table`` None, ``what`` the reason, where that file is missing), simulated runs otherwise."""
    import pandas as pd

    import bayes_scaling as bs
    from bayes_scaling.data.simulate import simulate_law
    from bayes_scaling.laws.spec import builtin_spec
    from bayes_scaling.models.losslaws import read_epoch_chinchilla, read_scratch

    out = {}
    epoch = SHARED_DATA / "chinchilla_epoch_svg_extracted.csv"
    if epoch.is_file():
        runs, _ = read_epoch_chinchilla(epoch, warn=False)
        out["chinchilla"] = (runs, "Epoch AI's 240 runs")
    else:
        out["chinchilla"] = (None, f"{epoch} not found")
    out["chinchilla_by_corpus"] = (bs.datasets.load_corpora(), "bundled corpora, 3 x 36 runs")
    out["transfer"] = (bs.load_example().used[["pretraining", "N", "D_F", "D_T"]], "bundled transfer runs")
    scratch = read_scratch(bs.datasets.SCRATCH_LOSSES_CSV)
    out["kaplan"] = (scratch, "bundled from-scratch losses")
    out["chinchilla_robust"] = out["chinchilla"]
    ft = pd.read_csv(bs.datasets.FINETUNE_LOSSES_CSV)
    ft = ft[ft["true_D_T"] > 0]
    joint = pd.concat([
        pd.DataFrame({"N": scratch["N"], "D": scratch["D"], "loss": scratch["loss"], "pretrained": 0,
                      "pretraining": "scratch"}),
        pd.DataFrame({"N": ft["N"], "D": ft["D_F"], "loss": ft["loss"], "pretrained": 1,
                      "pretraining": ft["pretraining"]})])
    out["joint_kaplan"] = (joint, "bundled from-scratch and fine-tuned losses")
    out["joint_chinchilla"] = (joint, "bundled from-scratch and fine-tuned losses")
    mu = {"A": 521.0, "B": 1488.0, "E": 1.87, "alpha": 0.353, "beta": 0.353, "RD_star": 15.4, "RN_star": 5.3}
    rows = [(N, U, U * ep) for N in np.geomspace(2e7, 9e9, 8) for U in np.geomspace(1e8, 1e11, 5)
            for ep in (1, 2, 4, 8, 16, 40)]
    design = pd.DataFrame(rows, columns=["N", "U_D", "D"])
    out["data_constrained"] = (simulate_law(builtin_spec("data_constrained"), design, mu, 0.01, seed=1),
                               "simulated at Muennighoff's published values, 240 runs")
    lin = bs.datasets.load_lin("flan")
    lin = lin[lin["D"] > 0].reset_index(drop=True)
    out["rectified_finetuning"] = (lin, f"bundled Lin et al. FLAN, {lin['model'].nunique()} models, {len(lin)} runs")
    out["rectified_finetuning_by_family"] = (lin, "bundled Lin et al. FLAN")
    out["synthetic_to_real"] = (bs.datasets.load_mikami(), "bundled Mikami et al.; the spec excludes the 10 rows with x = 0")
    m4 = {"L_0": 2.3, "alpha": 0.6, "c": -0.5, "L_inf": 0.4, "beta": 25.0}
    x = pd.DataFrame({"x": np.geomspace(1, 1e6, 25)})
    out["m4"] = (simulate_law(builtin_spec("m4"), x, m4, 0.01, seed=4), "simulated learning curve, 25 points")
    out["m4_error_rate"] = (simulate_law(builtin_spec("m4_error_rate"), pd.DataFrame({"x": np.geomspace(1, 1e6, 20)}),
                                         {**m4, "L_inf": 0.2, "L_0": 0.9}, 0.01, seed=6),
                            "simulated error-rate curve, 20 points")
    bnsl = {"a": 0.1, "b": 0.4 * 1e5**0.2, "c0": 0.2, "c1": 0.5, "d1": 1e5, "f1": 0.3}   # one break at x = 1e5
    out["broken_power_law"] = (simulate_law(builtin_spec("broken_power_law"), pd.DataFrame({"x": np.logspace(3, 7, 30)}),
                                            bnsl, 0.01, seed=3), "simulated curve with one break, 30 points")
    return out


#: the simulated 3 corpora x 90 runs of ``chinchilla_by_corpus`` (:func:`corpora_3x90`), written once
CORPORA_3X90_CSV = REPO / "benchmarks" / "data" / "corpora_3x90_simulated.csv"


def corpora_3x90(path: Path = CORPORA_3X90_CSV) -> Path:
    """3 corpora x 90 runs (9 model sizes N x 10 data sizes D each, over the bundled table's range) simulated from
    the ``chinchilla_by_corpus`` spec at the posterior medians of its fit to the bundled corpora table (3 x 36;
    seed 1; Student-t noise at the fit's ``sigma`` and ``nu``), written to ``path`` once (seed 0) and read after."""
    import pandas as pd

    if path.is_file():
        return path
    import bayes_scaling as bs
    from bayes_scaling.data.simulate import simulate_law
    from bayes_scaling.laws.spec import builtin_spec

    spec = builtin_spec("chinchilla_by_corpus")
    fit = bs.fit(bs.datasets.load_corpora(), spec, seed=1, warn=False, progressbar=False)
    post = fit.posterior
    med = {}
    for name, p in spec.parameters.items():
        m = post[name].median(("chain", "draw"))
        med[name] = ({str(g): float(m.sel({p.by: g})) for g in m[p.by].values} if p.by else float(m))
    corpora = sorted(med["E"])
    design = pd.DataFrame([(c, n, d) for c in corpora for n in np.geomspace(2e7, 1e9, 9)
                           for d in np.geomspace(5e8, 5e10, 10)], columns=["corpus", "N", "D"])
    runs = simulate_law(spec, design, med, float(post["sigma"].median()), seed=0, nu=float(post["nu"].median()))
    path.parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(path, index=False, float_format="%.6g")
    return path


def _spec_fit_stats(fit) -> dict:
    """Leapfrog steps a draw, the slowest parameter's bulk ESS, sampling seconds (+ the whitening's), divergences."""
    from bayes_scaling.inference.sampling import diagnose

    post = fit.posterior
    names = [v for v in fit.parameter_names() if v in post]
    d = diagnose(fit.tree, names)
    seconds = float(post.attrs["sampling_time"]) + float(fit.tree.attrs.get("whitening_seconds", 0.0))
    return {"steps": float(fit.tree["sample_stats"]["n_steps"].mean()), "ess": d.ess_bulk_min, "s": seconds,
            "div": d.divergences, "names": names}


def _pymc_plain(name: str, table, seed: int = 1) -> dict:
    """The same PyMC model as ``bs.fit`` builds, sampled by ``pm.sample`` with its default NUTS (same draws)."""
    import pymc as pm

    from bayes_scaling.inference.fit import _apply_exclusions, _as_spec
    from bayes_scaling.inference.sampling import diagnose
    from bayes_scaling.models import spec_model as sm

    spec = _as_spec(name)
    table, _ = _apply_exclusions(spec, table.reset_index(drop=True), "data", False)   # the spec's [exclude] rules
    data = sm.prepare(spec, table.reset_index(drop=True))
    priors = sm.default_priors(spec, data)
    model = sm.build_spec_model(spec, data, priors, sm.choose_parameterization(spec, data, priors),
                                sm.noise_prior(spec, data))
    with model:
        tree = pm.sample(random_seed=seed, nuts_sampler="pymc", progressbar=False, compute_convergence_checks=False,
                         **WHITEN_DRAWS)
    post = tree["posterior"].to_dataset()
    names = [p.name for p in spec.parameters.values() if p.fixed is None and p.name in post] + ["sigma"] + \
        (["nu"] if "nu" in post else [])
    d = diagnose(tree, names)
    return {"steps": float(tree["sample_stats"]["n_steps"].mean()), "ess": d.ess_bulk_min,
            "s": float(post.attrs.get("sampling_time", np.nan)), "div": d.divergences}


def lin_sized_table(groups: int = 30, runs: int = 20, seed: int = 0):
    """``groups`` x ``runs`` simulated runs of ``y = E + A x**-alpha``, E, A and alpha varying by group around a
    population (the size of Lin et al.'s fits: 30 models x ~20 fine-tuning sizes)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        E, A, alpha = (c * np.exp(s * rng.normal()) for c, s in ((1.5, 0.1), (20.0, 0.3), (0.4, 0.1)))
        for x in np.geomspace(1e2, 1e5, runs):
            rows.append({"group": f"g{g:02d}", "x": x, "y": (E + A * x ** -alpha) * np.exp(0.01 * rng.normal())})
    return pd.DataFrame(rows)


LIN_SIZED_SPEC = {"law": {"formula": "E + A * x**(-alpha)", "target": "y"},
                  "parameters": {"E": {"by": "group"}, "A": {"by": "group"}, "alpha": {"by": "group"}}}


def _importtime(args: list[str], out: Path) -> str:
    """``python -X importtime -m bayes_scaling ARGS`` in a fresh process, its report written to ``out``; the
    five slowest top-level imports (cumulative) as text."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "bayes_scaling", *args], capture_output=True,
                          text=True)
    out.write_text(proc.stderr)
    top = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        top_level = parts[-1].startswith(" ") and not parts[-1].startswith("  ")
        if len(parts) == 3 and top_level and parts[1].strip().isdigit():
            top.append((int(parts[1]), parts[2].strip()))
    top.sort(reverse=True)
    total = sum(t for t, _ in top)
    return f"imports {total / 1e6:.2f} s, slowest: " + ", ".join(f"{n} {t / 1e6:.2f} s" for t, n in top[:5])


def _bench_whiten_lin_sized_and_cli(rows: list, kw: dict) -> None:
    """Section ``whiten``'s first rows: a simulated Lin-sized fit and the fresh-process command line."""
    import bayes_scaling as bs
    from bayes_scaling.laws.spec import LawSpec

    table, spec = lin_sized_table(), LawSpec.from_dict(LIN_SIZED_SPEC)
    for whiten in ("none", "auto"):
        bs.fit(table, spec, whiten=whiten, **{**kw, "draws": 20, "tune": 20})
    stats = {}
    for whiten in ("none", "auto"):
        t0 = time.perf_counter()
        f = bs.fit(table, spec, whiten=whiten, **{**kw, "draws": 1000, "tune": 1000, "chains": 4})
        stats[whiten] = (time.perf_counter() - t0, _spec_fit_stats(f), f.tree.attrs["whitening"])
    (t_p, p, _), (t_w, w, how) = stats["none"], stats["auto"]
    _row(rows, ("30 groups x 20 runs, E, A, alpha partially pooled (simulated, Lin-sized), 4 x 1000 draws, "
                "compiled model cached", f"{t_p:.1f} -> {t_w:.1f} s", "-",
                f"{how}; steps/draw {p['steps']:.1f} -> {w['steps']:.1f}; ESS/s {p['ess'] / p['s']:.0f} -> "
                f"{w['ess'] / w['s']:.0f}; min bulk ESS {p['ess']:.0f} -> {w['ess']:.0f}; divergences "
                f"{p['div']} -> {w['div']}"))
    # fresh-process command line, warm caches
    from bayes_scaling.data.datasets import CORPORA_CSV, EXAMPLE_CSV

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "fit.nc")
        for label, args, target, tag in (
                ("`bayes-scaling fit` (transfer, bundled data)", ["fit", str(EXAMPLE_CSV), "--out", out], 3.0,
                 "transfer"),
                ("`bayes-scaling fit --model chinchilla_by_corpus` (bundled corpora data, 3 x 36 runs)",
                 ["fit", str(CORPORA_CSV), "--model", "chinchilla_by_corpus", "--out", out], 4.0, "by_corpus"),
                ("`bayes-scaling fit --model chinchilla_by_corpus` (3 x 90 runs simulated at the bundled fit's "
                 "posterior medians)", ["fit", str(corpora_3x90()), "--model", "chinchilla_by_corpus", "--out", out],
                 4.0, "by_corpus_3x90")):
            _time_cli(args)   # warm the caches
            times = [_time_cli(args) for _ in range(3)]
            best = min(t for t, _ in times)
            detail = times[0][1].replace("|", "/")
            if best > target:
                detail += "; " + _importtime(args, REPO / "benchmarks" / f"importtime_fit_{tag}.txt")
            _row(rows, (f"{label}, fresh process, warm caches (best of 3)", f"{best:.2f} s", f"<= {target:g} s",
                        detail))


def bench_whiten(rows: list, quick: bool) -> None:
    """Laplace whitening of law-spec fits: every built-in spec on its data, unwhitened (``whiten="none"``: nutpie's
    low-rank mass matrix, target_accept 0.99) against the default (whitened where defined: target_accept 0.9),
    and PyMC's default NUTS on the same model; 2 chains x 200 draws (200 tuning) each. ESS/s: the slowest
    parameter's bulk ESS over the sampling time (whitened: plus the mode and Hessian). First a simulated
    Lin-sized fit (4 x 1000 draws) and the fresh-process command line (``python -X importtime`` breakdown in
    ``benchmarks/importtime_fit_*.txt`` where a target is missed)."""
    import bayes_scaling as bs

    kw = dict(WHITEN_DRAWS, seed=1, warn=False, progressbar=False)
    if not SPECS:
        _bench_whiten_lin_sized_and_cli(rows, kw)
    for name, (table, what) in builtin_spec_data().items():
        if SPECS and name not in SPECS:
            continue
        if table is None:
            _row(rows, (f"spec `{name}`", "skipped", "-", what))
            continue
        try:
            bs.fit(table, name, whiten="none", **{**kw, "draws": 20, "tune": 20})  # compile both forms first
            bs.fit(table, name, **{**kw, "draws": 20, "tune": 20})
            plain = _spec_fit_stats(bs.fit(table, name, whiten="none", **kw))
            white_fit = bs.fit(table, name, **kw)
            white = _spec_fit_stats(white_fit)
        except Exception as exc:  # noqa: BLE001 - report and carry on
            _row(rows, (f"spec `{name}` ({what})", "error", "-", f"{type(exc).__name__}: {str(exc)[:150]}"))
            continue
        base = None
        if not quick:
            try:
                base = _pymc_plain(name, table)
            except Exception as exc:  # noqa: BLE001
                base = {"error": f"{type(exc).__name__}: {str(exc)[:100]}"}
        e_p, e_w = plain["ess"] / plain["s"], white["ess"] / white["s"]
        attrs = white_fit.tree.attrs
        if "m4_least_squares" in attrs:   # one M4 curve: bs.fit samples its own whitened basis, whatever `whiten`
            how, why = "m4", "one learning curve: the M4 path's own whitened basis, `whiten` does not apply"
        else:
            how, why = attrs["whitening"], attrs["whitening_reason"]
        detail = (f"{how} ({why}); steps/draw {plain['steps']:.1f} -> "
                  f"{white['steps']:.1f}; ESS/s {_rate(e_p)} -> {_rate(e_w)} ({e_w / e_p:.1f}x); min bulk ESS "
                  f"{plain['ess']:.0f} -> {white['ess']:.0f}; divergences {plain['div']} -> {white['div']}")
        if base is not None and "error" in base:
            detail += f"; PyMC: {base['error']}"
        elif base is not None:
            e_b = base["ess"] / base["s"]
            detail += (f"; PyMC NUTS: {base['steps']:.1f} steps/draw, ESS/s {_rate(e_b)} (ESS {base['ess']:.0f} in "
                       f"{base['s']:.1f} s, divergences {base['div']}); whitened / PyMC {_rate(e_w / e_b)}x")
        _row(rows, (f"spec `{name}` ({what}): ESS/s unwhitened -> default", f"{_rate(e_p)} -> {_rate(e_w)} /s",
                    ">= 10x PyMC", detail))


def many_groups_table(groups: int = 200, runs: int = 3, seed: int = 0):
    """``groups`` pre-training distributions x ``runs`` fine-tuned runs of the transfer law (the issue's table)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        log_k, alpha = rng.normal(10.0, 1.0), rng.normal(0.2, 0.05)
        for _ in range(runs):
            N, D_F = 10 ** rng.uniform(5, 9), 10 ** rng.uniform(5, 8)
            rows.append({"pretraining": f"d{g:03d}", "N": N, "D_F": D_F,
                         "D_T": np.exp(log_k + alpha * np.log(D_F) + 0.38 * np.log(N) + rng.normal(0, 0.15))})
    return pd.DataFrame(rows)


def bench_groups(rows: list, quick: bool) -> None:
    """Many small groups: `fit_transfer` (whitened form) against the `transfer` spec on 200 distributions x 3 runs,
    1 chain x 20 draws (20 tuning), in this process; each timed twice, the second with its compiled model cached."""
    import bayes_scaling as bs
    from bayes_scaling.inference.sampling import _fit_transfer

    table = many_groups_table()
    kw = {"seed": 1, "chains": 1, "draws": 20, "tune": 20, "progressbar": False, "warn": False}
    times = {}
    for name, fit in (("fit_transfer", lambda: _fit_transfer(table, **kw)),
                      ("spec", lambda: bs.fit(table, "transfer", **kw))):
        t = []
        for _ in range(2):
            t0 = time.perf_counter()
            fit()
            t.append(time.perf_counter() - t0)
        times[name] = t
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows.append(("200 distributions x 3 runs, 1 chain x 20 draws: `fit_transfer` (first / compiled model cached)",
                 f"{times['fit_transfer'][0]:.1f} / {times['fit_transfer'][1]:.1f} s", "-",
                 f"`bs.fit(table, \"transfer\")` in the same run: {times['spec'][0]:.1f} / {times['spec'][1]:.1f} s; "
                 f"load average {load:.1f}"))


def bench_scale(rows: list, quick: bool) -> None:
    import bayes_scaling as bs
    from bayes_scaling.inference.sampling import _fit_transfer

    n_dist, (n_N, n_D) = 20, ((10, 10) if quick else (25, 20))  # 20 x 25 x 20 = 10,000 runs
    rng = np.random.default_rng(20)
    truth = {f"P{i:02d}": {"k": float(np.exp(rng.normal(10, 1.0))), "alpha": float(rng.normal(0.18, 0.05)),
                           "beta": 0.38} for i in range(n_dist)}
    df, _ = bs.data.simulate_transfer(seed=20, truth=truth, N=np.logspace(5, 9, n_N), D_F=np.logspace(5, 8, n_D),
                                 sigma=0.2, n_ossified=0)
    data = bs.TransferData.from_frame(df, warn=False)
    t0 = time.perf_counter()
    fit = _fit_transfer(data, seed=1, warn=False, log_likelihood=False)
    s = time.perf_counter() - t0
    d = fit.diagnostics
    rows.append((f"scale: {data.n_used:,} runs, {n_dist} pre-training distributions (incl. compile)",
                 f"{s:.1f} s", "<= 60 s", f"{fit.backend}: min bulk ESS {d.ess_bulk_min:.0f}, "
                 f"R-hat {d.r_hat_max:.3f}, divergences {d.divergences}"))


def bench_sbc(rows: list, quick: bool) -> None:
    from bayes_scaling.analysis.calibration import run_sbc

    n = 30 if quick else 100
    res = run_sbc(n, seed=2026)
    checks = res.checks()
    failed = [p for p in checks.index if not checks.loc[p, "passed"]]
    rows.append((f"SBC: {n} simulations x 2 chains x 400 draws (incl. compile)", f"{res.seconds:.1f} s",
                 "<= 60 s", f"{len(checks) - len(failed)}/{len(checks)} parameters pass"
                 + (f" (failed: {', '.join(failed)})" if failed else "")
                 + f"; simulations with divergences: {(res.divergences > 0).sum()}"))


_SBC_DRIVER = """
import json, sys, time
t0 = time.perf_counter()
from bayes_scaling.analysis.calibration import run_sbc
res = run_sbc({n}, seed=2026, processes={k}, progress=False)
print(json.dumps({{"s": time.perf_counter() - t0, "ranks": res.ranks.to_numpy().tolist()}}))
"""


def _noop(x):
    return x


def _sbc_fresh(n: int, k: int) -> tuple[float, list]:
    """SBC of ``n`` fits in a fresh process on ``k`` workers (1: in the process): (seconds, ranks)."""
    import json

    p = subprocess.run([sys.executable, "-c", _SBC_DRIVER.format(n=n, k=k)], capture_output=True, text=True,
                       check=True)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    return out["s"], out["ranks"]


def _sweep_fresh(out: Path, k: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([*_cli(), "experiment", "run", "--smoke", "--out", str(out), "--workers", str(k)],
                   capture_output=True, text=True, check=True)
    return time.perf_counter() - t0


def bench_cluster(rows: list, quick: bool) -> None:
    """Issue 13: batches on Dask. Serial (in the process) against a local cluster of 2 worker processes, each
    in a fresh process and including every start-up (imports, worker start, compilation from warm disk
    caches); the cluster's overhead per task; the 32-worker estimate for a 1,000-run sweep."""
    import logging

    import pandas as pd
    from distributed import Client, LocalCluster

    from bayes_scaling.data import datasets
    from bayes_scaling.inference.batch import map_tasks

    n = 30 if quick else 100
    _sbc_fresh(4, 1)  # warm the disk caches (Numba / PyTensor) so both sides start alike
    s1, r1 = _sbc_fresh(n, 1)
    s2, r2 = _sbc_fresh(n, 2)
    rows.append((f"SBC, {n} fits: serial, in the process (fresh process, incl. imports and compile)",
                 f"{s1:.1f} s", "-", f"{s1 / n * 1000:.0f} ms per fit overall"))
    rows.append((f"SBC, {n} fits: local Dask cluster, 2 workers (incl. cluster start, compile per worker)",
                 f"{s2:.1f} s", "-", f"speed-up {s1 / s2:.2f}x; ranks identical to serial: {r1 == r2}"))
    with tempfile.TemporaryDirectory() as tmp:
        _sweep_fresh(Path(tmp) / "warm", 1)  # warm the JAX compilation cache
        t1 = _sweep_fresh(Path(tmp) / "serial", 1)
        t2 = _sweep_fresh(Path(tmp) / "cluster", 2)
        a = pd.read_csv(Path(tmp) / "serial" / "runs.csv").set_index("run_id").sort_index()
        b = pd.read_csv(Path(tmp) / "cluster" / "runs.csv").set_index("run_id").sort_index()
        same = bool((a["loss"] == b["loss"]).all() and (a["steps"] == b["steps"]).all())
        per_run = float(a["wall_s"].median())
    rows.append(("smoke sweep (18 runs): serial, `experiment run --smoke --workers 1` (fresh process)",
                 f"{t1:.1f} s", "-", f"median run {per_run:.2f} s once compiled; JAX cache warm"))
    rows.append(("smoke sweep: local Dask cluster, 2 workers (`--workers 2`)", f"{t2:.1f} s", "-",
                 f"speed-up {t1 / t2:.2f}x; losses identical to serial: {same}"))
    m = 200
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.CRITICAL)
    client = Client(cluster)
    map_tasks(_noop, [0, 1], client=client, progress=False)  # workers up and warm
    start = time.perf_counter() - t0
    t0 = time.perf_counter()
    map_tasks(_noop, list(range(m)), client=client, progress=False)
    per_task = (time.perf_counter() - t0) / m
    t0 = time.perf_counter()
    client.close()
    cluster.close()
    stop = time.perf_counter() - t0
    rows.append((f"cluster overhead per task ({m} no-op tasks, 2 workers, results streamed back)",
                 f"{per_task * 1000:.1f} ms", "-",
                 f"local cluster start {start:.1f} s, stop {stop:.1f} s"))
    # on paper: a 1,000-run sweep like models/experiments/full.toml on 32 workers, from the measured runs
    meta = datasets.measured_metadata()
    walls = pd.concat([datasets.load_measured_scratch()["wall_s"], datasets.load_measured_finetune()["wall_s"],
                       pd.Series([r["wall_s"] for r in meta["pretraining_runs"]])])
    mean, longest, n_runs = float(walls.mean()), float(walls.max()), 1000
    serial_h = n_runs * (mean + per_task) / 3600
    est = n_runs * (mean + per_task) / 32 + longest + start
    rows.append(("estimate: 1,000-run sweep (full.toml-sized runs) on 32 workers",
                 f"~{est / 60:.0f} min", "-",
                 f"serial {serial_h:.1f} h; = 1000 x ({mean:.1f} s mean run + {per_task * 1000:.0f} ms overhead) / 32 "
                 f"+ longest run {longest:.0f} s + start {start:.0f} s"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run (see the module docstring)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--specs", nargs="+", default=[], help="section whiten: only these built-in specs")
    args = parser.parse_args(argv)
    SPECS[:] = args.specs
    _quiet()
    print(f"machine: {machine()}", flush=True)
    rows: list[tuple[str, str, str, str]] = []
    for name in SECTIONS:
        if name not in args.only:
            continue
        t0 = time.perf_counter()
        try:
            globals()[f"bench_{name}"](rows, args.quick)
        except Exception as exc:  # noqa: BLE001 - report and carry on with the other sections
            rows.append((name, "error", "-", f"{type(exc).__name__}: {str(exc)[:200]}"))
        print(f"[{name} done in {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
    print()
    print("| measurement | result | target | details |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
