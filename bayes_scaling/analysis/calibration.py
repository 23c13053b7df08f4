"""Simulation-based calibration (SBC; Talts et al. 2018) of the transfer model.

For each of ``n_sims`` simulations: draw parameters from the prior (``pm.sample_prior_predictive`` on
:func:`~bayes_scaling.models.transfer.build_transfer_model` with a fixed design of ``N``, ``D_F`` and pre-training
distributions), simulate ``log D_T``, fit by NUTS, and record the rank of each true parameter among ``L``
thinned posterior draws (0..L). If the sampler and the model are right, every rank is uniform on 0..L, and
the central 50% / 90% posterior intervals contain the truth in 50% / 90% of the simulations.

Checks (each can fail; Bonferroni over the parameters at family level ``alpha``):

- rank uniformity: chi-square test of the ranks in ``bins`` equal bins;
- ECDF: the largest deviation of the rank ECDF from the uniform CDF against a simultaneous band
  (its ``1 - alpha`` quantile under uniform ranks, by simulation);
- coverage of the 50% and 90% central intervals: exact binomial test.

The model is compiled once and the data swapped between simulations
(:class:`~bayes_scaling.inference.compiled.CompiledSampler`). The fits run through
:func:`bayes_scaling.inference.batch.map_tasks`: in this process, on local worker processes, or on a Dask
cluster (``client=``, ``scheduler=``); each worker process compiles once. Results are reproducible from
``seed`` whatever the number of workers.

>>> res = run_sbc(100, seed=1)                         # doctest: +SKIP
>>> res.checks()                                       # doctest: +SKIP
>>> res.plot_ecdf()                                    # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.models.transfer import ModelConfig, build_transfer_model, prior_parameterization

__all__ = ["SBCDesign", "SBCResult", "run_sbc", "ecdf_band"]

#: parameters whose ranks are checked (those present in the model variant)
SBC_PARAMETERS = ("a_mu", "alpha_mu", "beta", "a_sigma", "alpha_sigma", "beta_mu", "beta_sigma", "a", "alpha",
                  "log_k", "sigma", "nu")


@dataclass(frozen=True)
class SBCDesign:
    """The fixed experimental design: every pre-training distribution gets every (N, D_F) pair.

    Default: 2 distributions, N in 1e6..1e9 (4 sizes), D_F in 1e5..1e8 (4 sizes): 32 runs.
    """

    pretraining: tuple[str, ...] = ("A", "B")
    N: tuple[float, ...] = tuple(np.logspace(6, 9, 4))
    D_F: tuple[float, ...] = tuple(np.logspace(5, 8, 4))

    def arrays(self) -> dict[str, np.ndarray]:
        p, n, d = np.meshgrid(np.arange(len(self.pretraining)), np.asarray(self.N, float),
                              np.asarray(self.D_F, float), indexing="ij")
        return {"log_D_F": np.log(d.ravel()), "log_N": np.log(n.ravel()), "p_idx": p.ravel().astype(np.int64),
                "log_D_T": np.zeros(p.size)}


@dataclass
class SBCResult:
    """Ranks (one row per simulation, one column per scalar parameter, values 0..``n_draws``) and the
    simulations' posterior-interval hits."""

    ranks: pd.DataFrame
    n_draws: int
    in50: pd.DataFrame
    in90: pd.DataFrame
    divergences: np.ndarray
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sims(self) -> int:
        return len(self.ranks)

    def uniformity(self, bins: int | None = None) -> pd.DataFrame:
        """Chi-square test of rank uniformity per parameter: ``chi2``, ``df``, ``p_value``.

        ``bins`` defaults to about ``n_sims / 5`` (>= 5 expected per bin), at most 20, dividing ``L + 1``."""
        from scipy.special import chdtrc

        L1 = self.n_draws + 1
        if bins is None:
            bins = max(2, min(20, self.n_sims // 5))
            while L1 % bins and bins > 2:  # equal-width bins of rank values
                bins -= 1
        edges = np.linspace(0, L1, bins + 1)
        rows = []
        for name, r in self.ranks.items():
            counts, _ = np.histogram(r.to_numpy(), bins=edges)
            expected = len(r) * np.diff(edges) / L1
            chi2 = float(np.sum((counts - expected) ** 2 / expected))
            rows.append({"parameter": name, "chi2": chi2, "df": bins - 1, "p_value": float(chdtrc(bins - 1, chi2))})
        return pd.DataFrame(rows).set_index("parameter")

    def ecdf_max_deviation(self) -> pd.Series:
        """Largest ``|ECDF(rank fraction) - uniform CDF|`` per parameter (evaluated on the rank grid)."""
        grid = np.arange(self.n_draws + 1)
        out = {}
        for name, r in self.ranks.items():
            ecdf = np.searchsorted(np.sort(r.to_numpy()), grid, side="right") / len(r)
            out[name] = float(np.max(np.abs(ecdf - (grid + 1) / (self.n_draws + 1))))
        return pd.Series(out, name="ecdf_max_dev")

    def coverage(self) -> pd.DataFrame:
        """Share of simulations whose 50% / 90% central posterior interval contains the truth."""
        return pd.DataFrame({"coverage50": self.in50.mean(), "coverage90": self.in90.mean()})

    def checks(self, alpha: float = 0.01) -> pd.DataFrame:
        """Per parameter: uniformity p-value, ECDF deviation vs its simultaneous band, 50% / 90% coverage with
        binomial p-values, and ``passed`` (every check at level ``alpha / n_parameters``)."""
        from scipy.stats import binomtest

        level = alpha / self.ranks.shape[1]
        uni = self.uniformity()
        dev = self.ecdf_max_deviation()
        band = ecdf_band(self.n_sims, self.n_draws, 1 - level, seed=0)
        cov = self.coverage()
        rows = []
        for name in self.ranks.columns:
            k50, k90, n = int(self.in50[name].sum()), int(self.in90[name].sum()), self.n_sims
            p50 = binomtest(k50, n, 0.5).pvalue
            p90 = binomtest(k90, n, 0.9).pvalue
            ok = uni.loc[name, "p_value"] >= level and dev[name] <= band and p50 >= level and p90 >= level
            rows.append({"parameter": name, "uniformity_p": uni.loc[name, "p_value"], "ecdf_max_dev": dev[name],
                         "ecdf_band": band, "coverage50": cov.loc[name, "coverage50"], "coverage50_p": p50,
                         "coverage90": cov.loc[name, "coverage90"], "coverage90_p": p90, "passed": bool(ok)})
        return pd.DataFrame(rows).set_index("parameter")

    @property
    def passed(self) -> bool:
        return bool(self.checks()["passed"].all())

    def plot_ecdf(self, alpha: float = 0.01, ncols: int = 4):
        """ECDF-difference plot (Säilynoja et al. 2022 style): ECDF of rank fractions minus the uniform CDF,
        per parameter, with the simultaneous ``1 - alpha / n_parameters`` band. Returns a Figure."""
        from matplotlib.figure import Figure

        names = list(self.ranks.columns)
        level = alpha / len(names)
        band = ecdf_band(self.n_sims, self.n_draws, 1 - level, seed=0)
        nrows = int(np.ceil(len(names) / ncols))
        fig = Figure(figsize=(3.0 * ncols, 2.4 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        grid = np.arange(self.n_draws + 1)
        z = (grid + 1) / (self.n_draws + 1)
        checks = self.checks(alpha)
        for ax, name in zip(axes, names, strict=False):
            ecdf = np.searchsorted(np.sort(self.ranks[name].to_numpy()), grid, side="right") / self.n_sims
            ok = checks.loc[name, "passed"]
            ax.fill_between(z, -band, band, color="0.85", step="post", label=f"{100 * (1 - level):.2f}% band")
            ax.step(z, ecdf - z, where="post", color="C0" if ok else "C3")
            ax.axhline(0, color="0.4", lw=0.6)
            ax.set_title(f"{name} ({'pass' if ok else 'FAIL'})", fontsize=9)
            ax.set_xlabel("fractional rank", fontsize=8)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        axes[0].set_ylabel("ECDF - uniform", fontsize=8)
        fig.suptitle(f"SBC: {self.n_sims} simulations, ranks among {self.n_draws} posterior draws", fontsize=10)
        return fig


def ecdf_band(n_sims: int, n_draws: int, prob: float = 0.99, *, reps: int = 4000, seed: int = 0) -> float:
    """Half-width of the simultaneous band for the ECDF of ``n_sims`` uniform ranks on 0..``n_draws``: the
    ``prob`` quantile of ``max |ECDF - CDF|`` over the rank grid, by simulation (a discrete Kolmogorov band)."""
    rng = np.random.default_rng(seed)
    L1 = n_draws + 1
    grid = np.arange(L1)
    cdf = (grid + 1) / L1
    ranks = np.sort(rng.integers(0, L1, size=(reps, n_sims)), axis=1)
    counts = np.stack([np.searchsorted(r, grid, side="right") for r in ranks]) / n_sims
    return float(np.quantile(np.max(np.abs(counts - cdf), axis=1), prob))


# ---- running it ------------------------------------------------------------------------------------------

def _scalar_names(post_vars: dict[str, np.ndarray], pretraining: tuple[str, ...]) -> list[str]:
    names = []
    for v, a in post_vars.items():
        if np.ndim(a) == 0:
            names.append(v)
        else:
            names += [f"{v}[{p}]" for p in pretraining]
    return names


def _make_sampler(config: ModelConfig, design: SBCDesign, y: np.ndarray | None = None):
    """The transfer model compiled for the design (shared with ``fit_transfer``'s in-process cache), its data
    set to the simulated ``y``: with ``parameterization = "auto"`` each simulation gets the form its data
    call for, as a fit would (at most one compilation per form)."""
    from bayes_scaling.inference.sampling import compiled_transfer_sampler

    arrays = design.arrays()
    if y is not None:
        arrays = {**arrays, "log_D_T": np.asarray(y, dtype=float)}
    return compiled_transfer_sampler((arrays, design.pretraining), config)


def _fit_one(sampler, y: np.ndarray, seed: int, params: list[str], truth: dict[str, np.ndarray],
             draws: int, tune: int, chains: int, n_rank: int, target_accept: float) -> tuple:
    sampler.set_data({"log_D_T_obs": y})
    tree = sampler.sample(draws=draws, tune=tune, chains=chains, seed=seed, target_accept=target_accept)
    post = tree["posterior"].to_dataset()
    total = chains * draws
    keep = np.linspace(0, total - 1, n_rank).round().astype(int)  # thinned, evenly spaced
    ranks, in50, in90 = [], [], []
    for v in params:
        x = post[v].values.reshape(total, -1)
        t = np.atleast_1d(truth[v]).ravel()
        ranks.append((x[keep] < t).sum(axis=0))
        lo50, hi50, lo90, hi90 = np.quantile(x, [0.25, 0.75, 0.05, 0.95], axis=0)
        in50.append((lo50 <= t) & (t <= hi50))
        in90.append((lo90 <= t) & (t <= hi90))
    div = int(tree["sample_stats"]["diverging"].sum())
    return np.concatenate(ranks), np.concatenate(in50), np.concatenate(in90), div


def _sbc_task(task) -> tuple:
    """One simulation, on a worker (or in this process): the compiled model comes from the process's cache
    (:func:`~bayes_scaling.inference.sampling.compiled_transfer_sampler`), so each worker compiles it once."""
    import warnings

    config_dict, design, kwargs, y, seed, truth = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = _make_sampler(ModelConfig.from_dict(config_dict), design, y)
        return _fit_one(sampler, y, seed, truth=truth, **kwargs)


def run_sbc(n_sims: int = 100, *, config: ModelConfig | None = None, sim_config: ModelConfig | None = None,
            design: SBCDesign | None = None, draws: int = 400, tune: int = 400, chains: int = 2,
            n_rank: int = 99, target_accept: float = 0.99, seed: int = 0, processes: int | None = 1,
            client=None, scheduler: str | None = None, progress=None) -> SBCResult:
    """Simulation-based calibration of the transfer model (see the module docstring).

    ``config`` is the model that is fitted; ``sim_config`` the one that simulates (default: the same; a
    different one, e.g. a shifted prior, must make the checks fail). Each simulation's posterior has
    ``chains * draws`` draws; ranks use ``n_rank`` of them, evenly spaced (thinning), so ranks are 0..n_rank.
    Simulation ``i`` is fitted with seed ``seed + i + 1``, whatever ``processes``. ``target_accept`` is
    ``fit_transfer``'s default on nutpie.

    Where the fits run (:func:`bayes_scaling.inference.batch.map_tasks`): ``client=`` (a Dask client) or
    ``scheduler=`` / ``$BAYES_SCALING_SCHEDULER`` (an existing cluster), else ``processes`` local worker
    processes (``1``, the default: in this process; ``None``: one per core), each compiling the model once.
    ``progress``: a progress bar (default: on a terminal or in Jupyter), or a callable ``(done, total)``.
    A simulation whose fit fails is reported with its seed while the others finish; then
    :class:`~bayes_scaling.inference.batch.BatchError` is raised.
    """
    import warnings

    import pymc as pm

    from bayes_scaling.inference.sampling import available_backends

    if n_sims < 2:
        raise ValueError(f"n_sims must be >= 2, got {n_sims}")
    if "nutpie" not in available_backends():
        raise ValueError("simulation-based calibration runs on the nutpie back end (compiled once, data "
                         "swapped between simulations); install it: pip install 'nutpie>=0.16.9,<0.17'")
    if n_rank > chains * draws:
        raise ValueError(f"n_rank ({n_rank}) cannot exceed chains * draws ({chains * draws})")
    config = config or ModelConfig()
    sim_config = sim_config or config
    design = design or SBCDesign()
    t0 = time.perf_counter()
    # the prior is drawn in a form that pm.sample_prior_predictive can draw from (not the whitened one)
    sim_model = build_transfer_model(design.arrays(), design.pretraining, sim_config,
                                     parameterization=prior_parameterization(sim_config))
    import logging

    log, level = logging.getLogger("pymc"), logging.getLogger("pymc").level
    log.setLevel(logging.WARNING)  # not "Sampling: [...]"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prior = pm.sample_prior_predictive(draws=n_sims, model=sim_model, random_seed=seed)
    finally:
        log.setLevel(level)
    prior_ds = prior["prior"].to_dataset()
    ys = prior["prior_predictive"].to_dataset()["log_D_T"].values.reshape(n_sims, -1)
    fit_model_vars = set(build_transfer_model(design.arrays(), design.pretraining, config).named_vars)
    params = [p for p in SBC_PARAMETERS if p in prior_ds and p in fit_model_vars]
    truths = [{p: prior_ds[p].values.reshape(n_sims, -1)[i] for p in params} for i in range(n_sims)]
    kwargs = dict(params=params, draws=draws, tune=tune, chains=chains, n_rank=n_rank,
                  target_accept=target_accept)
    from bayes_scaling.inference.batch import map_tasks

    tasks = [(config.to_dict(), design, kwargs, ys[i], seed + i + 1, truths[i]) for i in range(n_sims)]
    results = map_tasks(_sbc_task, tasks, client=client, scheduler=scheduler, workers=processes,
                        progress=progress, desc="SBC fits", labels=[f"simulation {i} (seed {seed + i + 1})"
                                                                    for i in range(n_sims)])
    names = _scalar_names({p: truths[0][p].reshape(()) if truths[0][p].size == 1 else truths[0][p]
                           for p in params}, design.pretraining)
    ranks = pd.DataFrame(np.stack([r[0] for r in results]), columns=names)
    in50 = pd.DataFrame(np.stack([r[1] for r in results]), columns=names)
    in90 = pd.DataFrame(np.stack([r[2] for r in results]), columns=names)
    settings = dict(backend="nutpie", n_sims=n_sims, draws=draws, tune=tune, chains=chains, n_rank=n_rank, seed=seed,
                    target_accept=target_accept, processes=processes, config=config.to_dict(),
                    sim_config=sim_config.to_dict(), design={"pretraining": list(design.pretraining),
                                                             "N": list(design.N), "D_F": list(design.D_F)})
    return SBCResult(ranks=ranks, n_draws=n_rank, in50=in50, in90=in90,
                     divergences=np.array([r[3] for r in results]), seconds=time.perf_counter() - t0,
                     settings=settings)
