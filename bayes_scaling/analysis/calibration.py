"""Simulation-based calibration (SBC; Talts et al. 2018) of the transfer model and of any law spec.

Transfer model (:func:`run_sbc`): the transfer law spec of a
:class:`~bayes_scaling.models.transfer.ModelConfig` (:func:`~bayes_scaling.models.transfer.transfer_spec`) on a
fixed design of ``N``, ``D_F`` and pre-training distributions (:class:`SBCDesign`), fitted by the spec engine as
``bs.fit(data, "transfer")`` fits it (:func:`run_spec_sbc`): for each of ``n_sims`` simulations, draw parameters
from the prior, simulate ``D_T``, fit by NUTS, and record the rank of each true parameter among ``L`` thinned
posterior draws (0..L). If the sampler and the model are right, every rank is uniform on 0..L, and the central
50% / 90% posterior intervals contain the truth in 50% / 90% of the simulations.

Checks (each can fail; Bonferroni over the parameters at family level ``alpha``):

- rank uniformity: chi-square test of the ranks in ``bins`` equal bins;
- ECDF: the largest deviation of the rank ECDF from the uniform CDF against a simultaneous band
  (its ``1 - alpha`` quantile under uniform ranks, by simulation);
- coverage of the 50% and 90% central intervals: exact binomial test.

The model is compiled once per form and the data swapped between simulations
(:class:`~bayes_scaling.inference.compiled.CompiledSampler`). The fits run through
:func:`bayes_scaling.inference.batch.map_tasks`: in this process, on local worker processes, or on a Dask
cluster (``client=``, ``scheduler=``); each worker process compiles once. Results are reproducible from
``seed`` whatever the number of workers.

>>> res = run_sbc(100, seed=1)                         # doctest: +SKIP
>>> res.checks()                                       # doctest: +SKIP
>>> res.plot_ecdf()                                    # doctest: +SKIP

Any law spec (:func:`run_spec_sbc`): the same checks for a :class:`~bayes_scaling.laws.spec.LawSpec` fitted by
the spec engine (:func:`bayes_scaling.inference.fit.fit`). The design is the input and group columns of a data
table (the user's runs; their target is used only for the priors that scale with the data) or
:func:`default_design`. The priors are frozen first (:func:`frozen_spec`: every default prior and the noise
prior made explicit, at the values a fit of the data table uses), so that every simulated data set is fitted
under the prior it was drawn from::

    theta ~ prior (group-level structure included),  y_i ~ p(y | f(x_i; theta), sigma[, nu]),
    rank = #{posterior draws of theta given y < theta}

>>> res = run_spec_sbc("chinchilla", 50, data="runs.csv", seed=1)     # doctest: +SKIP
>>> res.checks()["passed"].all()                                     # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.models.transfer import ModelConfig

__all__ = ["SBCDesign", "SBCResult", "run_sbc", "ecdf_band", "run_spec_sbc", "frozen_spec", "default_design",
           "spec_sbc_parameters", "DEFAULT_RANGES"]

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

    def table(self) -> pd.DataFrame:
        """The design as a table of runs: ``pretraining``, ``N``, ``D_F`` (no target)."""
        a = self.arrays()
        return pd.DataFrame({"pretraining": np.asarray(self.pretraining, dtype=object)[a["p_idx"]],
                             "N": np.exp(a["log_N"]), "D_F": np.exp(a["log_D_F"])})


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

def run_sbc(n_sims: int = 100, *, config: ModelConfig | None = None, sim_config: ModelConfig | None = None,
            design: SBCDesign | None = None, draws: int = 400, tune: int = 400, chains: int = 2,
            n_rank: int = 99, target_accept: float = 0.99, seed: int = 0, processes: int | None = 1,
            client=None, scheduler: str | None = None, progress=None) -> SBCResult:
    """Simulation-based calibration of the transfer law (module docstring): :func:`run_spec_sbc` of the
    transfer spec of ``config`` (:func:`~bayes_scaling.models.transfer.transfer_spec`, drawn as
    :func:`~bayes_scaling.models.transfer.engine_form` says, as ``fit_transfer`` draws it) on ``design``'s runs.

    ``config`` is the model that is fitted; ``sim_config`` the one that simulates (default: the same; a
    different one, e.g. a shifted prior, must make the checks fail). Each simulation's posterior has
    ``chains * draws`` draws; ranks use ``n_rank`` of them, evenly spaced (thinning), so ranks are 0..n_rank.
    Simulation ``i`` is fitted with seed ``seed + i + 1``, whatever ``processes``. ``target_accept`` is
    ``fit_transfer``'s default on nutpie (a fit with a divergence is run again higher: :func:`bayes_scaling.fit`).
    The ranks are of the engine's variables (:func:`spec_sbc_parameters`: ``k``, ``alpha`` per distribution,
    ``log_k_at_centre_mu``, ``log_k_at_centre_sigma``, ``alpha_mu``, ``alpha_sigma``, ``beta``, ``sigma``).

    Where the fits run (:func:`bayes_scaling.inference.batch.map_tasks`): ``client=`` (a Dask client) or
    ``scheduler=`` / ``$BAYES_SCALING_SCHEDULER`` (an existing cluster), else ``processes`` local worker
    processes (``1``, the default: in this process; ``None``: one per core), each compiling the model once.
    ``progress``: a progress bar (default: on a terminal or in Jupyter), or a callable ``(done, total)``.
    A simulation whose fit fails is reported with its seed while the others finish; then
    :class:`~bayes_scaling.inference.batch.BatchError` is raised.
    """
    from bayes_scaling.models.transfer import engine_form, transfer_spec

    if n_sims < 2:
        raise ValueError(f"n_sims must be >= 2, got {n_sims}")
    if n_rank > chains * draws:
        raise ValueError(f"n_rank ({n_rank}) cannot exceed chains * draws ({chains * draws})")
    config = config or ModelConfig()
    sim_config = sim_config or config
    design = design or SBCDesign()
    n = len(design.pretraining)
    form, whiten = engine_form(design.arrays(), n, config)
    res = run_spec_sbc(transfer_spec(config, n, form=form), n_sims, data=design.table(),
                       sim_model=transfer_spec(sim_config, n), draws=draws, tune=tune, chains=chains, n_rank=n_rank,
                       target_accept=target_accept, seed=seed, processes=processes, client=client,
                       scheduler=scheduler, progress=progress, whiten=whiten)
    res.settings.update(config=config.to_dict(), sim_config=sim_config.to_dict(),
                        design={"pretraining": list(design.pretraining), "N": list(design.N), "D_F": list(design.D_F)})
    return res


# ---- any law spec ----------------------------------------------------------------------------------------

#: the range (smallest, largest) of each input of :func:`default_design`, by column name: model sizes, data
#: sizes and compute of language-model scaling studies
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "N": (1e7, 1e10), "D": (1e9, 1e12), "D_F": (1e5, 1e8), "U_D": (1e9, 1e11), "C": (1e17, 1e21),
}


def default_design(spec, *, points: int = 5, groups: int = 2) -> pd.DataFrame:
    """A design for a spec without data: every combination of ``points`` log-spaced values of each input
    (ranges :data:`DEFAULT_RANGES`) and ``groups`` labels (``g1``, ``g2``, ...) of each group column.

    A spec with an input outside :data:`DEFAULT_RANGES`, or a parameter pooled within a coarser column, has no
    default design (a :class:`~bayes_scaling.errors.ConfigError`): give a data table.

    >>> from bayes_scaling.laws.spec import builtin_spec
    >>> d = default_design(builtin_spec("chinchilla"))
    >>> len(d), sorted(d.columns)
    (25, ['D', 'N'])
    """
    from bayes_scaling.errors import ConfigError

    spec = _spec_of(spec)
    unknown = [c for c in spec.inputs if c not in DEFAULT_RANGES]
    if unknown:
        raise ConfigError(f"no default design for input(s) {', '.join(unknown)} of {spec.name!r} (known: "
                          f"{', '.join(DEFAULT_RANGES)}); give a data table with the design (--data RUNS.csv)")
    if any(p.within is not None for p in spec.parameters.values()):
        raise ConfigError(f"no default design for {spec.name!r}: a parameter is pooled within a coarser group "
                          "column; give a data table with the design (--data RUNS.csv)")
    axes = [np.logspace(np.log10(DEFAULT_RANGES[c][0]), np.log10(DEFAULT_RANGES[c][1]), points)
            for c in spec.inputs]
    axes += [np.array([f"g{i + 1}" for i in range(groups)], dtype=object) for _ in spec.groups]
    grid = np.meshgrid(*axes, indexing="ij")
    return pd.DataFrame({c: g.ravel() for c, g in zip(spec.inputs + spec.groups, grid, strict=True)})


def _spec_of(model):
    from bayes_scaling.inference.fit import _as_spec

    return _as_spec(model)


def _needs_target(spec) -> list[str]:
    """The free parameters (and ``sigma``, the noise) whose default prior is computed from the target."""
    exps = spec.exponents()
    out = [p.name for p in spec.parameters.values() if p.fixed is None and (
        p.fraction_of == "min_target"
        or (p.domain in ("positive", "negative") and p.fraction_of is None and p.name not in exps
            and "median" not in p.prior)
        or (p.domain == "real" and not {"mu", "sigma"} <= set(p.prior)))]
    return out + ([] if spec.sigma is not None else ["sigma (the noise: [likelihood] sigma)"])


def frozen_spec(model, data: pd.DataFrame | None = None):
    """The spec with every free parameter's prior and the noise prior explicit: the values that
    :func:`bayes_scaling.inference.fit.fit` computes on ``data``
    (:func:`bayes_scaling.models.spec_model.default_priors`; ``(m, s)`` on the unconstrained scale becomes
    ``median = exp(m)``, ``mean = 1 / (1 + exp(-m))`` or ``mu = m``, and ``sigma = s``). Fitting the frozen spec
    to any data uses the same priors.

    ``data``: a table with the spec's input, group and target columns; without the target (or without
    ``data``) only priors that do not scale with the data can be frozen: a
    :class:`~bayes_scaling.errors.ConfigError` names the others. A ``fraction_of = "min_target"`` parameter
    (``value = f min(y)``) is frozen as a fraction of the data's ``min(y)``, a fixed number
    (``fraction_of = c``, ``value = f c``), with the fraction's prior ``mean`` and ``sigma``.

    >>> from bayes_scaling.laws.spec import builtin_spec
    >>> s = frozen_spec(builtin_spec("kaplan").to_dict() | {"likelihood": {"sigma": 0.05}})
    >>> round(s.parameters["alpha_N"].prior["median"], 12), s.parameters["alpha_N"].prior["sigma"], s.sigma
    (0.08, 1.0, 0.05)
    """
    from bayes_scaling.errors import ConfigError
    from bayes_scaling.laws.spec import LawSpec
    from bayes_scaling.models import spec_model as sm

    spec = _spec_of(model)
    table = default_design(spec) if data is None else data
    if spec.target not in table.columns:
        need = _needs_target(spec)
        if need:
            raise ConfigError(f"{spec.name!r}: the default prior of {', '.join(need)} scales with the data's "
                              f"{spec.target!r}; give a data table with a {spec.target!r} column, or priors "
                              "(median/mu and sigma) and [likelihood] sigma in the spec")
        table = table.assign(**{spec.target: 1.0})
    prepared = sm.prepare(spec, table)
    priors = sm.default_priors(spec, prepared)
    doc = spec.to_dict()
    for name, (loc, scale) in priors.items():
        p = spec.parameters[name]
        domain = "unit" if p.fraction_of is not None else p.domain    # a fraction's prior: mean and sigma
        key, value = {"positive": ("median", np.exp(loc)), "negative": ("median", -np.exp(loc)),
                      "unit": ("mean", 1.0 / (1.0 + np.exp(-loc))), "real": ("mu", loc)}[domain]
        entry = {k: v for k, v in doc["parameters"][name].items() if k not in ("median", "mean", "mu", "sigma")}
        if p.fraction_of is not None:     # E = f min(y) becomes E = f c, c the data's min(y): fixed, as the prior
            entry["fraction_of"] = sm.fraction_scale(prepared, p)
        doc["parameters"][name] = {**entry, key: float(value), "sigma": float(scale)}
    doc["likelihood"]["sigma"] = float(sm.noise_prior(spec, prepared))
    try:
        return LawSpec.from_dict(doc)
    except ConfigError as exc:
        raise ConfigError(f"{spec.name!r}: the priors computed from the data cannot be frozen ({exc})") from None


def spec_sbc_parameters(spec) -> list[str]:
    """The posterior variables whose ranks a spec SBC checks: each free parameter on its natural scale (one
    column per group), a pooled one's population location and spread on the unconstrained scale
    (``log_A_mu``, ``log_A_sigma``; a two-level one's also its coarser groups' locations and spread), the
    noise ``sigma`` and, for Student-t noise, ``nu``. (A monotone transform has the same ranks, so the
    unconstrained copies of the natural parameters are left out; so are the non-centred ``z``.)"""
    from bayes_scaling.models.spec_model import unconstrained_name

    out = []
    for p in spec.parameters.values():
        if p.fixed is not None:
            continue
        out.append(p.name)
        if p.sharing == "pooled":
            u = unconstrained_name(p.name, p.domain)
            out += [f"{u}_mu", f"{u}_sigma"]
            if p.name == (spec.monomial() or ("",))[0]:     # a coefficient sampled at the data's centre
                out += [f"{u}_at_centre_mu", f"{u}_at_centre_sigma"]
            if p.within is not None:
                out += [f"{u}_{p.within}", f"{u}_sigma_{p.within}"]
    return out + ["sigma"] + (["nu"] if spec.family == "student_t" else [])


def _simulate_spec(sim, design: pd.DataFrame, n: int, seed: int) -> tuple[dict, dict, np.ndarray]:
    """``n`` draws from the frozen spec ``sim``'s prior (every model variable, per group), each variable's
    group labels (``[]`` for a scalar), and the simulated targets (n, rows) on the natural scale (NaN where the
    law's value is not finite or, on the log scale, not > 0)."""
    import logging
    import warnings

    import pymc as pm

    from bayes_scaling.models import spec_model as sm

    table = design.assign(**{sim.target: 1.0})
    prepared = sm.prepare(sim, table, what="design")
    priors = sm.default_priors(sim, prepared)
    param = sm.choose_parameterization(sim, prepared, priors)
    model = sm.build_spec_model(sim, prepared, priors, param, sim.sigma, sm.centring(sim, prepared, priors))
    log, level = logging.getLogger("pymc"), logging.getLogger("pymc").level
    log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            prior = pm.sample_prior_predictive(draws=n, model=model, random_seed=seed)
    finally:
        log.setLevel(level)
    ds = prior["prior"].to_dataset()
    draws = {v: ds[v].transpose("chain", "draw", ...).values.reshape((n,) + ds[v].shape[2:]) for v in ds.data_vars}
    labels = {v: [str(x) for d in ds[v].dims[2:] for x in ds[d].values] for v in ds.data_vars}
    y = prior["prior_predictive"].to_dataset()[sim.target].values.reshape(n, -1)
    with np.errstate(all="ignore"):
        y = np.exp(y) if sim.scale == "log" else y
    ok = np.isfinite(y) & ((y > 0) if sim.scale == "log" else True)
    return draws, labels, np.where(ok, y, np.nan)


def _fit_spec_one(task) -> tuple:
    """One simulation of :func:`run_spec_sbc`: fit the frozen spec to the simulated table by the spec engine
    (compiled once per process), then the ranks and interval hits of the truth."""
    import warnings

    from bayes_scaling.inference.fit import fit as fit_spec
    from bayes_scaling.laws.spec import LawSpec

    spec_doc, table, seed, truth, kw = task
    spec = LawSpec.from_dict(spec_doc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_spec(table, spec, seed=seed, draws=kw["draws"], tune=kw["tune"], chains=kw["chains"],
                       backend="nutpie", target_accept=kw["target_accept"], progressbar=False, warn=False,
                       log_likelihood=False, cores=1, whiten=kw.get("whiten", "auto"))
    post = res.posterior
    total = kw["chains"] * kw["draws"]
    keep = np.linspace(0, total - 1, kw["n_rank"]).round().astype(int)
    ranks, in50, in90 = [], [], []
    for v, t in truth.items():
        x = post[v].transpose("chain", "draw", ...).values.reshape(total, -1)
        t = np.atleast_1d(t).ravel()
        ranks.append((x[keep] < t).sum(axis=0))
        lo50, hi50, lo90, hi90 = np.quantile(x, [0.25, 0.75, 0.05, 0.95], axis=0)
        in50.append((lo50 <= t) & (t <= hi50))
        in90.append((lo90 <= t) & (t <= hi90))
    div = int(res.tree["sample_stats"]["diverging"].sum())
    return np.concatenate(ranks), np.concatenate(in50), np.concatenate(in90), div


def run_spec_sbc(model, n_sims: int = 100, *, data: pd.DataFrame | str | None = None, sim_model=None,
                 draws: int = 400, tune: int = 400, chains: int = 2, n_rank: int = 99,
                 target_accept: float = 0.99, seed: int = 0, processes: int | None = 1, client=None,
                 scheduler: str | None = None, progress=None, max_tries: int = 10,
                 whiten: str = "auto") -> SBCResult:
    """Simulation-based calibration of a law spec fitted by the spec engine (module docstring); ``whiten`` as
    in :func:`bayes_scaling.fit`.

    For simulation ``i``: ``theta_i`` from the frozen prior of ``sim_model`` (default ``model``; another
    spec, e.g. a shifted prior, must make the checks fail), ``y_i`` simulated at the design with the spec's
    likelihood, the frozen ``model`` fitted to ``y_i`` by NUTS on nutpie with seed ``seed + i + 1`` (``chains
    * draws`` draws, ranks among ``n_rank`` of them evenly spaced), and the rank of every scalar of
    :func:`spec_sbc_parameters` (one column per group, ``name[label]``). The result's ``divergences`` counts each
    fit's divergent transitions.

    Args:
        model: a :class:`~bayes_scaling.laws.spec.LawSpec`, a built-in name (``"chinchilla"``) or a spec file.
        data: the design: a table (or CSV path) with the input and group columns (its target, when present,
            sets the priors that scale with the data, as a fit of it would); default :func:`default_design`.
        sim_model: the spec whose prior simulates (frozen on the same data); default ``model``.
        max_tries: a prior draw whose simulated data are not finite (or not > 0 on a log-scale likelihood) is
            replaced by the next one, up to ``max_tries * n_sims`` draws in all; ``settings["rejected"]`` counts
            them (the ranks then test the prior restricted to valid data sets).

    Where the fits run: as :func:`run_sbc` (``processes``, ``client``, ``scheduler``, ``progress``).

    >>> res = run_spec_sbc("kaplan", 20, data=runs, draws=200, tune=200, n_rank=49, seed=3)  # doctest: +SKIP
    >>> res.checks()                                                                        # doctest: +SKIP
    """
    from bayes_scaling.data.tables import read_table
    from bayes_scaling.errors import BayesScalingError
    from bayes_scaling.inference.batch import map_tasks
    from bayes_scaling.inference.sampling import available_backends

    if n_sims < 2:
        raise ValueError(f"n_sims must be >= 2, got {n_sims}")
    if n_rank > chains * draws:
        raise ValueError(f"n_rank ({n_rank}) cannot exceed chains * draws ({chains * draws})")
    if "nutpie" not in available_backends():
        raise ValueError("simulation-based calibration runs on the nutpie back end (compiled once, data "
                         "swapped between simulations); install it: pip install 'nutpie>=0.16.9,<0.17'")
    t0 = time.perf_counter()
    spec = _spec_of(model)
    table = default_design(spec) if data is None else read_table(data, "data")
    fitted = frozen_spec(spec, table)
    sim = fitted if sim_model is None else frozen_spec(_spec_of(sim_model), table)
    if sim.inputs != fitted.inputs or sim.groups != fitted.groups or sim.target != fitted.target:
        raise BayesScalingError(f"sim_model simulates {sim.target} from {', '.join(sim.inputs + sim.groups)}; the "
                                f"fitted spec needs {fitted.target} from {', '.join(fitted.inputs + fitted.groups)}")
    design = table[fitted.inputs + fitted.groups].reset_index(drop=True)
    draws_all, var_labels, ys = _simulate_spec(sim, design, max_tries * n_sims, seed)
    valid = np.flatnonzero(np.isfinite(ys).all(axis=1))
    if len(valid) < n_sims:
        raise BayesScalingError(f"only {len(valid)} of {max_tries * n_sims} prior draws of {spec.name!r} simulate "
                                "finite data at the design; give priors that keep the law finite (and > 0 on a "
                                "log-scale likelihood) there")
    chosen = valid[:n_sims]
    params = [v for v in spec_sbc_parameters(fitted) if v in draws_all]
    if sim is not fitted:
        params = [v for v in params if v in spec_sbc_parameters(sim)]
    kw = dict(draws=draws, tune=tune, chains=chains, n_rank=n_rank, target_accept=target_accept, whiten=whiten)
    tasks = []
    for i, j in enumerate(chosen):
        sim_table = design.assign(**{fitted.target: ys[j]})
        tasks.append((fitted.to_dict(), sim_table, seed + i + 1, {v: draws_all[v][j] for v in params}, kw))
    results = map_tasks(_fit_spec_one, tasks, client=client, scheduler=scheduler, workers=processes,
                        progress=progress, desc="SBC fits",
                        labels=[f"simulation {i} (seed {seed + i + 1})" for i in range(n_sims)])
    names = [n for v in params for n in ([f"{v}[{lab}]" for lab in var_labels[v]] or [v])]
    ranks = pd.DataFrame(np.stack([r[0] for r in results]), columns=names)
    in50 = pd.DataFrame(np.stack([r[1] for r in results]), columns=names)
    in90 = pd.DataFrame(np.stack([r[2] for r in results]), columns=names)
    settings = dict(backend="nutpie", model=fitted.name, spec=fitted.to_dict(), sim_spec=sim.to_dict(),
                    n_sims=n_sims, draws=draws, tune=tune, chains=chains, n_rank=n_rank, seed=seed,
                    target_accept=target_accept, processes=processes, design_rows=len(design),
                    rejected=int(chosen[-1] + 1 - n_sims))
    return SBCResult(ranks=ranks, n_draws=n_rank, in50=in50, in90=in90,
                     divergences=np.array([r[3] for r in results]), seconds=time.perf_counter() - t0,
                     settings=settings)
