"""Fitting by NUTS, convergence diagnostics, the transfer fit (:class:`TransferFit`, a
:class:`~bayes_scaling.inference.fit.Fit` of the built-in transfer law; :func:`fit_transfer` wraps the engine
:func:`bayes_scaling.fit`), and the saved result (a netCDF ``xarray.DataTree``).

NUTS back ends (``backend=``):

- ``"auto"`` (default): ``"nutpie"`` when nutpie is installed, else ``"pymc"``. The back end that ran is
  recorded in the fit (``fit.backend``, the file's ``backend`` attribute) and printed by the CLI.
- ``"nutpie"``: nutpie's Rust NUTS on the log density compiled by PyTensor's Numba back end
  (:class:`~bayes_scaling.inference.compiled.CompiledSampler`): the compiled code is cached on disk, and each
  compiled model (:func:`cached_sampler`) is kept in the process and refitted by swapping its ``pm.Data`` (new
  data of the same structure: no recompilation). Its speed against PyMC's sampler: the README's
  benchmark table (``python benchmarks/bench.py``).
- ``"pymc"``: PyMC's own NUTS (``pm.sample(nuts_sampler="pymc")``).
- ``"numpyro"``: JAX NUTS through PyMC (``pip install 'bayes_scaling[numpyro]'``); chains run ``"vectorized"``
  on a GPU/TPU and ``"sequential"``-ly on a CPU unless ``BAYES_SCALING_CHAIN_METHOD`` says otherwise.

Every back end gives bit-identical draws for the same seed, data and settings (tested).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling._interrupts import stop_on_signals
from bayes_scaling._interval import CI_PROB
from bayes_scaling.data.tables import TransferData
from bayes_scaling.errors import ConfigError, ConvergenceWarning, FitFileError
from bayes_scaling.inference.fit import Fit
from bayes_scaling.inference.fitfile import json_attr, read_tree, require_variables, without, write_tree
from bayes_scaling.laws.spec import LawSpec
from bayes_scaling.models.transfer import (
    ModelConfig,
    build_transfer_model,
    engine_form,
    parameter_names,
    resolve_parameterization,
    transfer_spec,
)

__all__ = ["TransferFit", "fit_transfer", "load_fit", "diagnose", "available_backends", "summarize",
           "sample_nuts", "resolve_backend", "compiled_transfer_sampler", "clear_compiled_cache",
           "fit_transfer_many"]

BACKENDS = ("auto", "pymc", "nutpie", "numpyro")
RHAT_MAX = 1.01
ESS_MIN = 400
#: compiled transfer models kept in this process (least recently used dropped first)
CACHE_SIZE = 8
#: default NUTS target acceptance per back end (fit_transfer's ``target_accept=None``). nutpie at 0.99: on the
#: measured data set (non-centred) 0 divergences in 4 seeds, against 4 of 4 seeds with some at 0.98.
DEFAULT_TARGET_ACCEPT = {"nutpie": 0.99, "pymc": 0.95, "numpyro": 0.95}
_COMPILED: OrderedDict[tuple, object] = OrderedDict()


def available_backends() -> list[str]:
    """NUTS back ends usable here: ``pymc`` always; ``nutpie`` and ``numpyro`` when installed."""
    import importlib.util

    return ["pymc"] + [b for b in ("nutpie", "numpyro") if importlib.util.find_spec(b) is not None]


def resolve_backend(backend: str) -> str:
    """The back end that will run: ``"auto"`` is ``"nutpie"`` when installed, else ``"pymc"``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "nutpie" if "nutpie" in available_backends() else "pymc"
    if backend not in available_backends():
        how = "pip install 'nutpie>=0.16.9,<0.17'" if backend == "nutpie" else f"pip install 'bayes_scaling[{backend}]'"
        raise ValueError(f"backend {backend!r} is not installed; install it: {how} "
                         f"(available: {', '.join(available_backends())})")
    return backend


#: seeds run from 0 to SEED_MAX (NumPy's and JAX's 32-bit seeds; nutpie takes 64 bits)
SEED_MAX = 2**32 - 1


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be an integer from 0 to {SEED_MAX} (2**32 - 1), got {seed!r}")
    return int(seed)


def _numpyro_chain_method() -> str:
    method = os.environ.get("BAYES_SCALING_CHAIN_METHOD")
    if method:
        if method not in ("vectorized", "parallel", "sequential"):
            raise ValueError(f"BAYES_SCALING_CHAIN_METHOD={method!r}: expected vectorized, parallel or sequential")
        return method
    import jax

    return "vectorized" if jax.default_backend() in ("gpu", "cuda", "rocm", "tpu") else "sequential"


def sample_nuts(model, *, draws: int, tune: int, chains: int, seed: int, backend: str, target_accept: float,
                progressbar: bool, cores: int | None = None, log_likelihood: bool = True,
                compiled=None) -> xr.DataTree:
    """NUTS on a PyMC ``model`` with the named back end (see the module docstring); the back end that ran is
    in ``tree.attrs["backend"]``.

    ``compiled``: a :class:`~bayes_scaling.inference.compiled.CompiledSampler` of ``model`` to reuse (nutpie only).
    """
    backend = resolve_backend(backend)
    seed = _check_seed(seed)
    if backend == "nutpie":
        from bayes_scaling.inference.compiled import CompiledSampler

        sampler = compiled if compiled is not None else CompiledSampler(model, log_likelihood=log_likelihood)
        tree = sampler.sample(draws=draws, tune=tune, chains=chains, seed=seed, target_accept=target_accept,
                              progressbar=progressbar, cores=min(cores or os.cpu_count() or 1, chains))
    else:
        import pymc as pm

        kwargs: dict = {}
        if backend == "pymc":
            kwargs["target_accept"] = target_accept
            kwargs["cores"] = cores if cores is not None else 1
            kwargs["callback"] = lambda trace, draw: signals.check()  # stop all chains at the first signal
        else:
            method = _numpyro_chain_method()
            # "parallel" on a single device runs the chains in turn
            kwargs["nuts"] = {"target_accept": target_accept,
                              "chain_method": "parallel" if method == "sequential" else method}
        # Ctrl-C / SIGTERM: PyMC may return the draws so far; stop_on_signals raises Interrupted instead
        with stop_on_signals(f"sampling ({backend})") as signals, model, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Rr]hat.*|.*effective sample size.*|.*divergen.*"
                                    "|.*There are not enough devices.*")
            tree = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed, nuts_sampler=backend,
                             progressbar=progressbar, compute_convergence_checks=False, **kwargs)
            if log_likelihood:
                tree = pm.compute_log_likelihood(tree, progressbar=False)
    tree.attrs["backend"] = backend
    return tree


def compiled_transfer_sampler(data: TransferData | tuple[dict[str, np.ndarray], tuple[str, ...]],
                              config: ModelConfig, *, log_likelihood: bool = True):
    """The compiled transfer model for ``config`` and data with this many pre-training distributions, its
    ``pm.Data`` (runs and centre) set to ``data``; compiled on first use and kept in this process
    (``CACHE_SIZE`` entries, least recently used dropped). Key: configuration hash, number of pre-training
    distributions (the number of runs may change between fits). ``data``: a :class:`TransferData`, or
    ``(arrays, pretraining)`` as :func:`~bayes_scaling.models.transfer.build_transfer_model` takes them.
    """
    from bayes_scaling.inference.compiled import CompiledSampler

    arrays, pretraining = (data.arrays(), data.pretraining) if isinstance(data, TransferData) else data
    centre = (float(np.mean(arrays["log_D_F"])), float(np.mean(arrays["log_N"])))
    param = resolve_parameterization(arrays, len(pretraining), config)
    key = ("transfer", config.hash(), len(pretraining), bool(log_likelihood), tuple(sorted(param.items())))
    sampler = cached_sampler(
        key,
        lambda: CompiledSampler(build_transfer_model(arrays, tuple(pretraining), config, centre=centre,
                                                     parameterization=param), log_likelihood=log_likelihood),
        lambda s: s.set_data({"log_D_F": arrays["log_D_F"], "log_N": arrays["log_N"], "p_idx": arrays["p_idx"],
                              "log_D_T_obs": arrays["log_D_T"], "centre_log_D_F": centre[0],
                              "centre_log_N": centre[1]}, coords={"run": np.arange(len(arrays["log_D_T"]))}))
    sampler.model.centre = centre  # type: ignore[attr-defined]
    return sampler


def cached_sampler(key: tuple, build, refit):
    """The compiled sampler kept in this process under ``key`` (least recently used dropped beyond
    ``CACHE_SIZE``): ``build()`` makes it on first use, ``refit(sampler)`` puts the new data into a kept one.
    Every compiled model of the package (transfer model, law specs) lives in this one cache."""
    sampler = _COMPILED.get(key)
    if sampler is None:
        sampler = build()
        _COMPILED[key] = sampler
        while len(_COMPILED) > CACHE_SIZE:
            _COMPILED.popitem(last=False)
    else:
        _COMPILED.move_to_end(key)
        refit(sampler)
    return sampler


def clear_compiled_cache() -> None:
    """Forget the compiled transfer models kept in this process."""
    _COMPILED.clear()


@dataclass
class Diagnostics:
    """Convergence diagnostics of a fit: worst R-hat, smallest bulk/tail ESS, number of divergences."""

    r_hat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    n_samples: int

    @property
    def ok(self) -> bool:
        return self.r_hat_max <= RHAT_MAX and self.ess_bulk_min >= ESS_MIN and self.ess_tail_min >= ESS_MIN \
            and self.divergences == 0

    def problems(self) -> list[str]:
        out = []
        if self.divergences:
            out.append(f"{self.divergences} divergent transition(s): raise target_accept (e.g. 0.95-0.99), "
                       "or check the data for runs the law cannot describe (try likelihood='student_t')")
        if self.r_hat_max > RHAT_MAX:
            out.append(f"R-hat {self.r_hat_max:.3f} > {RHAT_MAX}: chains disagree; run more tuning/draws "
                       "(--draws, tune) or more chains, and look at the trace")
        if min(self.ess_bulk_min, self.ess_tail_min) < ESS_MIN:
            out.append(f"ESS (bulk {self.ess_bulk_min:.0f}, tail {self.ess_tail_min:.0f}) < {ESS_MIN}: "
                       "draw more samples (--draws) before trusting intervals")
        return out

    def warn(self, stacklevel: int = 1) -> None:
        """Unless :attr:`ok`, a :class:`ConvergenceWarning` that says what is wrong and what to do (every fit
        function calls this; ``stacklevel`` as for ``warnings.warn``, counted from the caller of ``warn``)."""
        if not self.ok:
            warnings.warn(f"{self}. " + " ".join(self.problems()), ConvergenceWarning, stacklevel=stacklevel + 1)

    def __str__(self) -> str:
        status = "ok" if self.ok else "PROBLEMS"
        return (f"diagnostics {status}: max R-hat {self.r_hat_max:.4f}, min bulk ESS {self.ess_bulk_min:.0f}, "
                f"min tail ESS {self.ess_tail_min:.0f}, divergences {self.divergences} of {self.n_samples}")


def diagnose(tree: xr.DataTree, var_names: list[str]) -> Diagnostics:
    """Rank-normalised split R-hat, bulk and tail ESS (5% and 95% quantiles; Vehtari et al. 2021) over
    ``var_names``, and the divergence count."""
    from bayes_scaling.inference.mcmc_stats import diagnostics_table

    post = tree["posterior"].to_dataset()
    var_names = [v for v in var_names if v in post]
    table = diagnostics_table(post, var_names)

    def extreme(key: str, fn) -> float:
        vals = np.concatenate([np.atleast_1d(t[key]).ravel() for t in table.values()]) if table else np.array([])
        vals = vals[np.isfinite(vals)]
        return float(fn(vals)) if len(vals) else float("nan")

    stats = tree["sample_stats"].to_dataset()
    div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    n = int(post.sizes["chain"] * post.sizes["draw"])
    return Diagnostics(extreme("r_hat", np.max), extreme("ess_bulk", np.min), extreme("ess_tail", np.min), div, n)


def summarize(tree: xr.DataTree | xr.Dataset, var_names: list[str], ci_prob: float = CI_PROB) -> pd.DataFrame:
    """The posterior summary of every fit class: one row per parameter and group, with ``mean``, ``sd``,
    ``median``, the equal-tailed ``ci_prob`` interval ``eti{100 ci_prob}_lb`` .. ``_ub`` (the ``(1 - ci_prob) / 2``
    and ``(1 + ci_prob) / 2`` quantiles of the pooled draws), bulk and tail ESS and R-hat.

    ``by`` names the variable's group dimension(s) and ``group`` its label ('' for a scalar); ``pretraining``
    repeats the label where the dimension is the pre-training distribution ('' elsewhere). Names not in the
    posterior are skipped.
    """
    from bayes_scaling.inference.mcmc_stats import diagnostics_table

    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
    post = tree["posterior"].to_dataset() if isinstance(tree, xr.DataTree) else tree
    var_names = [v for v in dict.fromkeys(var_names) if v in post]
    table = diagnostics_table(post, var_names)
    pct = f"{100 * ci_prob:g}"
    q = [(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2]
    rows = []
    for v in var_names:
        da = post[v].transpose("chain", "draw", ...)
        dims = [d for d in da.dims if d not in ("chain", "draw")]
        labels = [[str(x) for x in da[d].values] if d in da.coords else [str(i) for i in range(da.sizes[d])]
                  for d in dims]
        flat = da.values.reshape(da.sizes["chain"] * da.sizes["draw"], -1)
        stats = {k: np.atleast_1d(a).ravel() for k, a in table[v].items()}
        for i, combo in enumerate(np.ndindex(*[len(lab) for lab in labels]) if dims else [()]):
            x = flat[:, i]
            lo, med, hi = np.quantile(x, q)
            group = ",".join(labels[j][c] for j, c in enumerate(combo))
            rows.append({
                "parameter": v, "by": ",".join(dims), "group": group,
                "pretraining": group if dims == ["pretraining"] else "",
                "mean": float(np.mean(x)), "sd": float(np.std(x, ddof=1)), "median": float(med),
                f"eti{pct}_lb": float(lo), f"eti{pct}_ub": float(hi),
                "ess_bulk": float(stats["ess_bulk"][i]), "ess_tail": float(stats["ess_tail"][i]),
                "r_hat": float(stats["r_hat"][i]),
            })
    columns = ["parameter", "by", "group", "pretraining", "mean", "sd", "median", f"eti{pct}_lb", f"eti{pct}_ub",
               "ess_bulk", "ess_tail", "r_hat"]
    return pd.DataFrame(rows, columns=columns)


class TransferFit(Fit):
    """A fitted transfer law ``D_T = k[p] * D_F**alpha[p] * N**beta``: a law-spec :class:`Fit` of the built-in
    transfer law (its ``summary``, ``predict``, ``derived``, ``save``, ``_repr_html_``) with the transfer
    accessors: ``data`` (a :class:`TransferData`, exclusions included), ``config`` (the :class:`ModelConfig`),
    ``pretraining``, ``centre``, and posterior draws ``k``, ``log_k``, ``alpha`` (dim ``pretraining``), ``beta``
    (by ``pretraining`` in the separate-beta variant), ``sigma`` (``nu``).

    >>> import bayes_scaling as bs
    >>> fit = bs.fit(bs.load_example().used, "transfer", seed=1)   # the engine; TransferFit: fit_transfer  # doctest: +SKIP
    >>> fit.summary()                                              # doctest: +SKIP
    """

    def __init__(self, tree: xr.DataTree, data: TransferData, config: ModelConfig, spec: LawSpec | None = None):
        # files that store no spec (versions 0.1, 0.2): each distribution's draws as they are
        super().__init__(tree, data, spec if spec is not None else
                         transfer_spec(config, len(data.pretraining), view=True))
        self.config = config

    # ---- accessors (posterior, backend, seed, parameterization: FitBase) -------------------------------
    @property
    def table(self) -> pd.DataFrame:
        """The runs used in the fit (``pretraining``, ``N``, ``D_F``, ``D_T``), as the methods of :class:`Fit`
        read them."""
        return self.data.used[["pretraining", "N", "D_F", "D_T"]].reset_index(drop=True)

    @property
    def labels(self) -> dict[str, list[str]]:
        return {"pretraining": self.pretraining}

    @property
    def excluded(self) -> pd.DataFrame:
        """The runs left out of the fit (``row``: position in the data table), with their ``reason``."""
        table = self.data.table.reset_index(drop=True)
        out = table["excluded"].to_numpy(bool)
        ex = table.loc[out, [c for c in ("pretraining", "N", "D_F", "D_T") if c in table.columns]].copy()
        ex.insert(0, "row", np.flatnonzero(out))
        ex["reason"] = table.loc[out, "exclusion_reason"].astype(str).to_numpy()
        return ex.reset_index(drop=True)

    @property
    def centre(self) -> tuple[float, float]:
        """Means of log D_F and log N over the runs used (the old transfer model's centre)."""
        return float(self.tree.attrs["centre_log_D_F"]), float(self.tree.attrs["centre_log_N"])

    @property
    def pretraining(self) -> list[str]:
        return [str(p) for p in self.posterior["pretraining"].values]

    @property
    def from_engine(self) -> bool:
        """Drawn by the engine (:func:`bayes_scaling.fit`); False for files of versions 0.1 and 0.2, drawn from
        the earlier transfer model (:func:`~bayes_scaling.models.transfer.build_transfer_model`)."""
        return "spec_hash" in self.tree.attrs

    @property
    def observed_name(self) -> str:
        """The observed variable of the model (its ``log_likelihood`` group): ``D_T``, ``log_D_T`` in old files."""
        return "D_T" if self.from_engine else "log_D_T"

    def parameter_names(self) -> list[str]:
        return parameter_names(self.config)

    def build_model(self):
        """The PyMC model this fit sampled (its data, priors and parameterization), e.g. to compute the
        log-likelihood or posterior predictive draws from the stored posterior."""
        if not self.from_engine:
            return build_transfer_model(self.data.arrays(), self.data.pretraining, self.config,
                                        centre=self.centre, parameterization=self.parameterization or None)
        from bayes_scaling.models import spec_model as sm

        # the spec that reads the draws: the one fitted, or (no population: k, alpha stored per distribution)
        # its view with each distribution's own values; the same likelihood given the draws
        prepared = sm.prepare(self.spec, self.table, labels=self.labels)
        return sm.build_spec_model(self.spec, prepared, self.priors, self.parameterization,
                                   float(self.tree.attrs["noise_prior"]), self.centring)

    def summary(self, ci_prob: float = CI_PROB, var_names: list[str] | None = None) -> pd.DataFrame:
        """Posterior summary of k, alpha, beta and the noise scale (mean, sd, equal-tailed interval at
        ``ci_prob``, ESS, R-hat), one row per parameter and pre-training distribution (:func:`summarize`, the
        one summary of every fit)."""
        return summarize(self.tree, var_names or self.parameter_names(), ci_prob)

    def __repr__(self) -> str:
        p = self.posterior
        return (f"TransferFit({self.data.n_used} runs, pretraining={self.pretraining}, "
                f"{p.sizes['chain']} chains x {p.sizes['draw']} draws, backend={self.backend!r}, "
                f"likelihood={self.config.likelihood!r}, variant={self.config.variant!r})")

    # ---- persistence ------------------------------------------------------------------------------------
    def save(self, path: str | PathLike) -> Path:
        """Write everything (draws, sample stats, observed data, the full runs table with its exclusions, the
        spec, the configuration, package version) to one netCDF file that :func:`bayes_scaling.load` reads
        without any other file."""
        if not self.from_engine:     # a file of an earlier version, loaded: written as it was
            return write_tree(self.tree, path, transfer_data=self.data.to_dataset())
        from bayes_scaling.inference.fit import _frame_to_dataset

        tree = self.tree.copy()      # the spec that reads these draws (the pooled view where there is no population)
        tree.attrs.update(spec=json.dumps(self.spec.to_dict()), spec_hash=self.spec.hash())
        table = _frame_to_dataset(self.table)     # the row index as a variable: checksummed like every array
        return write_tree(tree, path, spec_data=table.assign_coords(row=np.arange(table.sizes["row"])),
                          transfer_data=self.data.to_dataset())


def load_fit(path: str | PathLike) -> TransferFit:
    """Read a transfer fit written by :meth:`TransferFit.save`, or by versions 0.1 and 0.2."""
    tree = read_tree(path)
    engine = tree.attrs.get("bayes_scaling_kind") == "spec"
    tree = read_tree(path, "spec" if engine else "transfer", groups=("posterior", "transfer_data"),
                     attrs=("config", "config_hash", "seed", "centre_log_D_F", "centre_log_N")
                     + (("spec", "spec_hash") if engine else ()))
    try:
        config = ModelConfig.from_dict(json_attr(tree, path, "config"), where=f"{path}: attribute 'config'")
    except ConfigError as exc:
        raise FitFileError(str(exc)) from None
    if config.hash() != tree.attrs.get("config_hash"):
        raise FitFileError(f"{path}: configuration hash mismatch (file edited or corrupted)")
    spec = None
    if engine:
        try:
            spec = LawSpec.from_dict(json_attr(tree, path, "spec"))
        except ConfigError as exc:
            raise FitFileError(f"{path}: the stored spec is invalid ({exc})") from None
        if spec.hash() != tree.attrs["spec_hash"]:
            raise FitFileError(f"{path}: spec hash mismatch (file edited or corrupted)")
    require_variables(tree, path, parameter_names(config))
    try:
        data = TransferData.from_dataset(tree["transfer_data"].to_dataset())
    except (KeyError, ValueError, TypeError) as exc:
        raise FitFileError(f"{path}: the transfer_data group is malformed ({type(exc).__name__}: {exc}); "
                           "expected the runs table with pretraining, N, D_F, D_T, excluded, "
                           "exclusion_reason") from None
    post = tree["posterior"].to_dataset()
    labels = [str(p) for p in post["pretraining"].values] if "pretraining" in post.coords else None
    if labels is not None and labels != [str(p) for p in data.pretraining]:
        raise FitFileError(f"{path}: the posterior's pre-training distributions {labels} do not match the stored "
                           f"data's {list(data.pretraining)}")
    return TransferFit(without(tree, *[g for g in ("transfer_data", "spec_data") if g in tree.children]), data,
                       config, spec)


#: the most tuning steps per chain (beyond, a fit would not end in any useful time)
TUNE_MAX = 10**7


def sampler_settings(draws, tune, chains, seed: int | None, progressbar: bool | None, *,
                     values_per_draw: int = 0, log_likelihood: bool = False) -> tuple[int, bool]:
    """Check draws/tune/chains (positive integers; ``tune`` <= ``TUNE_MAX``; the draws must fit in memory: an
    estimate from ``values_per_draw``, the posterior values and pointwise log-likelihood kept per draw, see
    :func:`bayes_scaling._system.check_draws_memory`) and the seed (0 .. ``SEED_MAX``), and resolve the seed
    (a fresh one, recorded, when None) and the progress bar (on when stderr is a terminal), for every NUTS fit
    of the package."""
    from bayes_scaling._system import check_draws_memory

    for name, value in {"draws": draws, "tune": tune, "chains": chains}.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if tune > TUNE_MAX:
        raise ValueError(f"tune = {tune} tuning steps per chain is beyond the limit of {TUNE_MAX}")
    # the samplers keep the tuning draws in memory until the end too
    check_draws_memory(int(draws) + int(tune), int(chains), int(values_per_draw), log_likelihood=log_likelihood)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    from bayes_scaling._progress import default_progress  # a terminal and not --quiet

    return _check_seed(seed), default_progress() if progressbar is None else bool(progressbar)


def fit_transfer(data: TransferData | pd.DataFrame | str | PathLike, *,
                 model: ModelConfig | str | PathLike | None = None, config: ModelConfig | None = None,
                 seed: int | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 backend: str = "auto", target_accept: float | None = None, cores: int | None = None,
                 progressbar: bool | None = None, warn: bool = True,
                 log_likelihood: bool = True) -> TransferFit:
    """Fit the hierarchical transfer law ``D_T = k[p] * D_F**alpha[p] * N**beta`` by NUTS: the built-in
    ``"transfer"`` law of :func:`bayes_scaling.fit`, which this wrapper calls (a :class:`FutureWarning` says
    so; use ``bs.fit(data, "transfer", ...)``), with ``model``'s priors, likelihood, variant and
    parameterization (:func:`~bayes_scaling.models.transfer.transfer_spec`).

    ``model``: a :class:`ModelConfig` or a TOML file such as ``models/transfer.toml`` (``config=`` is the same
    argument under its earlier name). ``backend``, ``cores``, ``seed``, ``log_likelihood``: as
    :func:`bayes_scaling.fit` (refitting data with the same number of pre-training distributions reuses the
    compiled model). ``target_accept`` defaults to 0.99 on nutpie and 0.95 on the other back ends
    (``DEFAULT_TARGET_ACCEPT``). After sampling, R-hat > 1.01, ESS < 400 or any divergence raises a
    :class:`ConvergenceWarning` that says what to do.

    Returns:
        A :class:`TransferFit` (a :class:`~bayes_scaling.inference.fit.Fit` with the transfer accessors).

    >>> import bayes_scaling as bs
    >>> fit = bs.fit_transfer(bs.load_example(), seed=1)   # doctest: +SKIP
    >>> fit.summary()[["parameter", "pretraining", "mean", "eti94_lb", "eti94_ub"]]   # doctest: +SKIP
    """
    warnings.warn('fit_transfer is a wrapper of the engine: use bs.fit(data, "transfer", ...) (the same law and '
                  "numbers; a ModelConfig maps to the spec by bayes_scaling.models.transfer.transfer_spec)",
                  FutureWarning, stacklevel=2)
    return _fit_transfer(data, model=model, config=config, seed=seed, draws=draws, tune=tune, chains=chains,
                         backend=backend, target_accept=target_accept, cores=cores, progressbar=progressbar,
                         warn=warn, log_likelihood=log_likelihood, stacklevel=3)


def _fit_transfer(data: TransferData | pd.DataFrame | str | PathLike, *,
                  model: ModelConfig | str | PathLike | None = None, config: ModelConfig | None = None,
                  seed: int | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
                  backend: str = "auto", target_accept: float | None = None, cores: int | None = None,
                  progressbar: bool | None = None, warn: bool = True, log_likelihood: bool = True,
                  stacklevel: int = 2) -> TransferFit:
    """:func:`fit_transfer` without its FutureWarning (the package's own callers): the transfer law spec of
    ``model`` drawn by the engine, :func:`bayes_scaling.fit`."""
    from bayes_scaling.inference.fit import fit as engine

    if not isinstance(data, TransferData):
        data = TransferData.from_frame(data) if isinstance(data, pd.DataFrame | dict) else \
            TransferData.from_csv(data)   # a path; anything else: InputTypeError (data.tables.as_frame)
    if model is not None and config is not None:
        raise ValueError("give model= or config= (the same argument), not both")
    model = model if model is not None else config
    if model is not None and not isinstance(model, ModelConfig | str | PathLike):
        from bayes_scaling.errors import InputTypeError

        raise InputTypeError(f"model: expected a ModelConfig or the path of a TOML model file, got "
                             f"{type(model).__name__}")
    config = model if isinstance(model, ModelConfig) else ModelConfig.from_toml(model) if model else ModelConfig()
    n_groups = len(data.pretraining)
    seed, progressbar = sampler_settings(draws, tune, chains, seed, progressbar,
                                         values_per_draw=8 * n_groups + 8 + (data.n_used if log_likelihood else 0),
                                         log_likelihood=log_likelihood)
    if target_accept is None:   # 0.99 on nutpie (the engine's whitened 0.9: 1-3 divergences in 4,000 draws of the
        target_accept = DEFAULT_TARGET_ACCEPT[resolve_backend(backend)]     # bundled data, 0 at 0.95 and 0.99)
    form, whiten = engine_form(data.arrays(), n_groups, config)
    spec = transfer_spec(config, n_groups, form=form)
    result = engine(data.used[["pretraining", "N", "D_F", "D_T"]].reset_index(drop=True), spec, seed=seed,
                    draws=draws, tune=tune, chains=chains, backend=backend, target_accept=target_accept,
                    cores=cores, progressbar=progressbar, warn=False, log_likelihood=log_likelihood,
                    whiten=whiten)
    tree = _as_transfer_posterior(result.tree, data, config)
    arrays = data.arrays()
    centre = (float(np.mean(arrays["log_D_F"])), float(np.mean(arrays["log_N"])))
    tree.attrs.update(config=json.dumps(config.to_dict()), config_hash=config.hash(), unit=data.unit,
                      centre_log_D_F=centre[0], centre_log_N=centre[1], pretraining=json.dumps(list(data.pretraining)),
                      law="D_T = k * D_F**alpha * N**beta")
    hierarchical = any(p.sharing == "pooled" for p in spec.parameters.values())
    if not hierarchical:    # read by the view (each distribution's k as drawn), not by the model that drew it
        tree.attrs.pop("centring", None)
    fit = TransferFit(tree, data, config, spec if hierarchical else None)
    if warn:
        fit.diagnostics.warn(stacklevel=stacklevel)
    return fit


def _as_transfer_posterior(tree: xr.DataTree, data: TransferData, config: ModelConfig) -> xr.DataTree:
    """The engine's posterior with the transfer accessors' layout: the distributions in the data's order, and
    k, log k, alpha (and beta in the separate-beta variant) per distribution where the spec shares them (the
    pooled variant, one distribution)."""
    post = tree["posterior"].to_dataset()
    order = list(data.pretraining)
    if "pretraining" in post.dims:
        post = post.sel(pretraining=order)
    else:
        post = post.assign_coords(pretraining=order)
    view = transfer_spec(config, len(order), view=True)
    for name in ["log_k"] + [p.name for p in view.parameters.values() if p.by == "pretraining"]:
        if "pretraining" not in post[name].dims:
            post[name] = post[name].expand_dims(pretraining=order, axis=-1).copy()
    tree = tree.copy()
    tree["posterior"] = xr.DataTree(post)
    tree.attrs["labels"] = json.dumps({"pretraining": order})
    return tree


def fit_transfer_many(datasets: list, *, config: ModelConfig | list[ModelConfig] | None = None, seed: int = 0,
                      processes: int | None = 1, client=None, scheduler: str | None = None, progress=None,
                      **fit_kwargs) -> list[TransferFit]:
    """Fit many data sets (subsets, simulations) and/or configurations (prior sensitivity), optionally in
    parallel worker processes or on a Dask cluster.

    ``config``: one configuration for all, or one per data set. Fit ``i`` uses seed ``seed + i``, so the
    result does not depend on where it ran. The fits go through :func:`bayes_scaling.inference.batch.map_tasks`:
    ``client=`` (a Dask client) or ``scheduler=`` / ``$BAYES_SCALING_SCHEDULER`` (an existing cluster), else
    ``processes`` local worker processes (``1``: in this process; ``None``: one per core). Each worker keeps its
    compiled models (one compilation per configuration and number of pre-training distributions, not per fit).
    A fit that fails is reported with its data set while the others finish; then
    :class:`~bayes_scaling.inference.batch.BatchError` is raised. ``fit_kwargs`` go to :func:`fit_transfer`
    (``warn`` defaults to False here).

    >>> subsets = [data.with_exclusions(data.table["N"] > n, "N cut") for n in (1e7, 1e8, 1e9)]  # doctest: +SKIP
    >>> fits = fit_transfer_many(subsets, seed=1, processes=2)                                  # doctest: +SKIP
    """
    configs = list(config) if isinstance(config, (list, tuple)) else [config] * len(datasets)
    if len(configs) != len(datasets):
        raise ValueError(f"{len(configs)} configurations for {len(datasets)} data sets; give one, or one each")
    if processes is not None and processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    from bayes_scaling.inference.batch import map_tasks

    fit_kwargs.setdefault("warn", False)
    tasks = [(d, c, _check_seed(seed + i), fit_kwargs) for i, (d, c) in enumerate(zip(datasets, configs,
                                                                                          strict=True))]
    return map_tasks(_fit_task, tasks, client=client, scheduler=scheduler,
                     workers=1 if len(tasks) == 1 and client is None else processes, progress=progress,
                     desc="fits", labels=[f"data set {i} (seed {t[2]})" for i, t in enumerate(tasks)])


def _fit_task(task) -> TransferFit:
    data, config, seed, kwargs = task
    with warnings.catch_warnings():
        if not kwargs.get("warn", False):
            warnings.simplefilter("ignore")
        return _fit_transfer(data, config=config, seed=seed, **kwargs)
