"""Fitting by NUTS, convergence diagnostics, and the saved result (a netCDF ``xarray.DataTree``)."""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import __version__
from .data import TransferData
from .errors import ConvergenceWarning, FitFileError
from .models import ModelConfig, build_transfer_model, parameter_names

__all__ = ["TransferFit", "fit_transfer", "load_fit", "diagnose", "available_backends", "summarize"]

BACKENDS = ("pymc", "nutpie", "numpyro")
RHAT_MAX = 1.01
ESS_MIN = 400


def available_backends() -> list[str]:
    """NUTS back ends usable here: ``pymc`` always; ``nutpie`` and ``numpyro`` when installed."""
    import importlib.util

    return ["pymc"] + [b for b in ("nutpie", "numpyro") if importlib.util.find_spec(b) is not None]


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend not in available_backends():
        raise ValueError(f"backend {backend!r} is not installed; install the extra: "
                         f"pip install 'bayes_scaling[{backend}]' (available: {', '.join(available_backends())})")


def sample_nuts(model, *, draws: int, tune: int, chains: int, seed: int, backend: str, target_accept: float,
                progressbar: bool, cores: int | None = None, log_likelihood: bool = True) -> xr.DataTree:
    """``pm.sample`` with the back end named explicitly (PyMC 6 would otherwise pick nutpie when installed)."""
    import pymc as pm

    _check_backend(backend)
    kwargs: dict = {}
    if backend == "pymc":
        kwargs["target_accept"] = target_accept
        kwargs["cores"] = cores if cores is not None else 1
    else:
        kwargs["nuts_sampler_kwargs"] = {"target_accept": target_accept} if backend == "numpyro" else {}
        if backend == "nutpie":
            kwargs["nuts_sampler_kwargs"] = {"target_accept": target_accept, "cores": cores or 1}
    with model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Rr]hat.*|.*effective sample size.*|.*divergen.*")
        tree = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed, nuts_sampler=backend,
                         progressbar=progressbar, compute_convergence_checks=False, **kwargs)
        if log_likelihood:
            tree = pm.compute_log_likelihood(tree, progressbar=False)
    return tree


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

    def __str__(self) -> str:
        status = "ok" if self.ok else "PROBLEMS"
        return (f"diagnostics {status}: max R-hat {self.r_hat_max:.4f}, min bulk ESS {self.ess_bulk_min:.0f}, "
                f"min tail ESS {self.ess_tail_min:.0f}, divergences {self.divergences} of {self.n_samples}")


def diagnose(tree: xr.DataTree, var_names: list[str]) -> Diagnostics:
    """R-hat (rank-normalised), bulk and tail ESS over ``var_names``, and the divergence count."""
    import arviz as az

    post = tree["posterior"].to_dataset()
    var_names = [v for v in var_names if v in post]
    rhat = az.rhat(post, var_names=var_names)
    ess_b = az.ess(post, var_names=var_names, method="bulk")
    ess_t = az.ess(post, var_names=var_names, method="tail")

    def extreme(ds: xr.Dataset, fn) -> float:
        vals = np.concatenate([np.atleast_1d(ds[v].values).ravel() for v in ds.data_vars])
        vals = vals[np.isfinite(vals)]
        return float(fn(vals)) if len(vals) else float("nan")

    stats = tree["sample_stats"].to_dataset()
    div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    n = int(post.sizes["chain"] * post.sizes["draw"])
    return Diagnostics(extreme(rhat, np.max), extreme(ess_b, np.min), extreme(ess_t, np.min), div, n)


def summarize(tree: xr.DataTree, var_names: list[str], ci_prob: float = 0.94) -> pd.DataFrame:
    """Tidy table: one row per parameter (and pre-training distribution) with mean, sd, equal-tailed
    ``ci_prob`` interval, bulk/tail ESS and R-hat."""
    import arviz as az

    post = tree["posterior"].to_dataset()
    var_names = [v for v in var_names if v in post]
    lo_q, hi_q = (1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2
    rhat = az.rhat(post, var_names=var_names)
    ess_b = az.ess(post, var_names=var_names, method="bulk")
    ess_t = az.ess(post, var_names=var_names, method="tail")
    pct = f"{100 * ci_prob:g}"
    rows = []
    for v in var_names:
        da = post[v]
        groups = da["pretraining"].values if "pretraining" in da.dims else [None]
        for p in groups:
            sel = {"pretraining": p} if p is not None else {}
            x = da.sel(sel).values.ravel()
            rows.append({
                "parameter": v, "pretraining": p if p is not None else "",
                "mean": float(np.mean(x)), "sd": float(np.std(x, ddof=1)),
                "median": float(np.median(x)),
                f"eti{pct}_lb": float(np.quantile(x, lo_q)), f"eti{pct}_ub": float(np.quantile(x, hi_q)),
                "ess_bulk": float(ess_b[v].sel(sel)), "ess_tail": float(ess_t[v].sel(sel)),
                "r_hat": float(rhat[v].sel(sel)),
            })
    return pd.DataFrame(rows)


class TransferFit:
    """A fitted transfer model: posterior draws (``tree``, an ``xarray.DataTree``), data and configuration.

    >>> import bayes_scaling as bs
    >>> fit = bs.fit_transfer(bs.load_example(), seed=1)          # doctest: +SKIP
    >>> fit.summary()                                              # doctest: +SKIP
    """

    def __init__(self, tree: xr.DataTree, data: TransferData, config: ModelConfig):
        self.tree = tree
        self.data = data
        self.config = config

    # ---- accessors --------------------------------------------------------------------------------------
    @property
    def posterior(self) -> xr.Dataset:
        return self.tree["posterior"].to_dataset()

    @property
    def backend(self) -> str:
        return str(self.tree.attrs.get("backend", "unknown"))

    @property
    def seed(self) -> int:
        return int(self.tree.attrs["seed"])

    @property
    def centre(self) -> tuple[float, float]:
        return float(self.tree.attrs["centre_log_D_F"]), float(self.tree.attrs["centre_log_N"])

    @property
    def pretraining(self) -> list[str]:
        return [str(p) for p in self.posterior["pretraining"].values]

    @property
    def diagnostics(self) -> Diagnostics:
        return diagnose(self.tree, _diagnostic_vars(self.tree))

    def summary(self, ci_prob: float = 0.94, var_names: list[str] | None = None) -> pd.DataFrame:
        """Posterior summary of k, alpha, beta and the noise scale (mean, sd, equal-tailed interval at
        ``ci_prob``, ESS, R-hat), one row per parameter and pre-training distribution."""
        return summarize(self.tree, var_names or parameter_names(self.config), ci_prob)

    def __repr__(self) -> str:
        p = self.posterior
        return (f"TransferFit({self.data.n_used} runs, pretraining={self.pretraining}, "
                f"{p.sizes['chain']} chains x {p.sizes['draw']} draws, backend={self.backend!r}, "
                f"likelihood={self.config.likelihood!r}, variant={self.config.variant!r})")

    # ---- persistence ------------------------------------------------------------------------------------
    def save(self, path: str | PathLike) -> Path:
        """Write everything (draws, sample stats, observed data, the full data table, configuration, package
        version) to one netCDF file that :func:`load_fit` reads without any other file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tree = self.tree.copy()
        tree["transfer_data"] = xr.DataTree(self.data.to_dataset())
        tree.to_netcdf(path, engine="h5netcdf")
        return path


def load_fit(path: str | PathLike) -> TransferFit:
    """Read a fit written by :meth:`TransferFit.save`."""
    path = Path(path)
    if not path.is_file():
        raise FitFileError(f"fit file not found: {path}")
    try:
        tree = xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as exc:  # noqa: BLE001 - any reader failure is reported the same way
        raise FitFileError(f"cannot read {path} as a netCDF fit file: {exc}") from None
    if "posterior" not in tree.children or "transfer_data" not in tree.children or \
            tree.attrs.get("bayes_scaling_kind") != "transfer":
        raise FitFileError(f"{path} is not a bayes_scaling transfer fit (no posterior/transfer_data groups)")
    data = TransferData.from_dataset(tree["transfer_data"].to_dataset())
    config = ModelConfig.from_dict(json.loads(tree.attrs["config"]), where=str(path))
    if config.hash() != tree.attrs.get("config_hash"):
        raise FitFileError(f"{path}: configuration hash mismatch (file edited or corrupted)")
    tree = tree.copy()
    del tree["transfer_data"]
    return TransferFit(tree, data, config)


def _diagnostic_vars(tree: xr.DataTree) -> list[str]:
    post = tree["posterior"].to_dataset()
    skip = {"k"}  # a monotone function of log_k: same ranks, same diagnostics
    return [v for v in post.data_vars if v not in skip]


def fit_transfer(data: TransferData | pd.DataFrame | str | PathLike, *, config: ModelConfig | None = None,
                 seed: int | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 backend: str = "pymc", target_accept: float = 0.95, cores: int | None = None,
                 progressbar: bool | None = None, warn: bool = True) -> TransferFit:
    """Fit the hierarchical transfer law ``D_T = k[p] * D_F**alpha[p] * N**beta`` by NUTS.

    ``seed`` makes the result bit-identical (a random seed is drawn and recorded when it is None).
    After sampling, R-hat > 1.01, ESS < 400 or any divergence raises a :class:`ConvergenceWarning` that says
    what to do.

    >>> import bayes_scaling as bs
    >>> fit = bs.fit_transfer(bs.load_example(), seed=1)   # doctest: +SKIP
    >>> fit.summary()[["parameter", "pretraining", "mean", "eti94_lb", "eti94_ub"]]   # doctest: +SKIP
    """
    if not isinstance(data, TransferData):
        data = TransferData.from_frame(data) if isinstance(data, pd.DataFrame) else TransferData.from_csv(data)
    config = config or ModelConfig()
    for name, value in {"draws": draws, "tune": tune, "chains": chains}.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    if progressbar is None:
        progressbar = sys.stderr.isatty()
    arrays = data.arrays()
    model = build_transfer_model(arrays, data.pretraining, config)
    tree = sample_nuts(model, draws=draws, tune=tune, chains=chains, seed=seed, backend=backend,
                       target_accept=target_accept, progressbar=progressbar, cores=cores)
    tree = _annotate(tree, data, config, model.centre, backend=backend, seed=seed, tune=tune,
                     target_accept=target_accept)
    fit = TransferFit(tree, data, config)
    if warn:
        diag = fit.diagnostics
        if not diag.ok:
            warnings.warn(f"{diag}. " + " ".join(diag.problems()), ConvergenceWarning, stacklevel=2)
    return fit


def _annotate(tree: xr.DataTree, data: TransferData, config: ModelConfig, centre: tuple[float, float], *,
              backend: str, seed: int, tune: int, target_accept: float) -> xr.DataTree:
    tree.attrs.update(
        bayes_scaling_kind="transfer",
        bayes_scaling_version=__version__,
        config=json.dumps(config.to_dict()),
        config_hash=config.hash(),
        backend=backend,
        seed=int(seed),
        tune=int(tune),
        target_accept=float(target_accept),
        unit=data.unit,
        centre_log_D_F=float(centre[0]),
        centre_log_N=float(centre[1]),
        pretraining=json.dumps(list(data.pretraining)),
        law="D_T = k * D_F**alpha * N**beta",
    )
    return tree
