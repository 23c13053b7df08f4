"""Bayesian from-scratch loss laws ``L(N, D)``: the laws, their centred parametrisation and a PyMC graph of their
own, used for the law's posterior mode (the regimes of a joint fit: :mod:`bayes_scaling.inference.joint`). A from-scratch
fit is a law spec (``bs.fit(runs, "kaplan")``, :mod:`bayes_scaling.inference.scratch`); this graph is the former
``fit_scratch`` model, with which the spec's fits agree (tests).

Two laws (formulas in :mod:`bayes_scaling.laws`, written once):

- Chinchilla (Hoffmann et al. 2022): ``L = E + A / N**alpha_N + B / D**alpha_D``
- Kaplan et al. (2020): ``L = [(N_c / N)**(alpha_N / alpha_D) + D_c / D]**alpha_D``

Likelihood on the log loss: ``log L_obs ~ Normal(log L(N, D), sigma)`` or ``StudentT(nu, ...)`` (robust to bad
runs; the Bayesian analogue of the Huber loss Epoch AI used).

Parametrisation (why NUTS mixes): the natural parameters are strongly correlated (``A`` with ``alpha_N``:
changing the exponent moves the term at every N; ``E`` with both terms; ``N_c``, ``D_c`` with ``alpha_D``).
Two steps remove most of it:

1. centred predictors ``x = log N - c_N``, ``y = log D - c_D`` (``c`` = the data's means) and parameters on the
   log scale: Chinchilla ``log_E``, ``a_c = log(A exp(-alpha_N c_N))`` (log of the N-term at the centre),
   ``b_c = log(B exp(-alpha_D c_D))``, ``log alpha_N``, ``log alpha_D``; Kaplan ``log_L_c`` (log loss at the
   centre), ``w`` (log ratio of the two bracket terms at the centre), ``log alpha_D``, ``log r`` with
   ``r = alpha_N / alpha_D``; plus ``log sigma`` (and ``log nu``);
2. Laplace whitening: that vector is ``u = m + L z`` with ``m`` the posterior mode and ``L L^T`` the inverse
   Hessian there (found by L-BFGS before sampling), and NUTS samples ``z`` (flat; the priors of ``u`` enter as a
   Potential). A linear change of variables leaves the posterior unchanged; it only makes it nearly standard
   normal (the correlations left on Epoch's Chinchilla data were about -0.97 between ``a_c`` and ``alpha_N``:
   with a diagonal mass matrix NUTS needed tree depth 6, after whitening 2-3).

The natural parameters (``E, A, B, alpha_N, alpha_D`` / ``N_c, D_c, alpha_N, alpha_D``), the centred ones and
``sigma`` (``nu``) are Deterministics. On Epoch's Chinchilla data (240 runs), default settings (4 x 1000, PyMC
NUTS): no divergences, R-hat <= 1.005, bulk ESS > 3000 for every parameter; ~8 s in all, 2 s of sampling.

Input table: columns ``N``, ``D``, ``loss`` (optionally ``unit``, ``seed``). Losses must be finite and > 0.
Rows of one ``(N, D)`` with different ``seed`` values are **replicates** (the same configuration trained with
other random seeds: initialisation, data order). Other repeated ``(N, D)`` pairs: the default
``duplicates="error"`` refuses them, naming N, D and the rows; ``"mean"`` treats them as replicates too.

**Seed noise** (:func:`replicate_cells`, :func:`replicate_likelihood`). With replicates, the runs of one
configuration ``c`` (``n_c`` seeds, log losses ``y_cs``) share the law's misfit there, and scatter around their
mean by the seed-to-seed noise ``sigma_seed(N)``::

    y_cs = log L(N_c, D_c) + delta_c + e_cs,   delta_c ~ Normal(0, sigma),   e_cs ~ Normal(0, sigma_seed(N_c))
    log sigma_seed(N) = log sigma_seed_c + seed_slope * (log N - c_N)

whose likelihood factorises exactly into the **cell mean with its standard error** and the **within-cell
scatter**: ``ybar_c ~ Normal(log L, sqrt(sigma**2 + sigma_seed(N_c)**2 / n_c))`` and
``SS_c / sigma_seed(N_c)**2 ~ chi2(n_c - 1)``. Treating the replicates as independent observations with one
noise scale would count the law's misfit at a configuration ``n_c`` times and make the intervals too narrow;
with the factorisation ``sigma`` is the misfit between configurations and ``sigma_seed`` the measured seed
noise (posterior variables ``sigma_seed`` at the centre of log N and ``seed_slope``; priors
:data:`SEED_NOISE_PRIORS`). With one run per configuration the model is the one above (``sigma`` holds every
noise: seed noise cannot be told apart from misfit). With a Student-t likelihood the cell mean is Student-t and
the within-cell scatter stays normal.

>>> from bayes_scaling.data.datasets import load_scratch_losses
>>> import bayes_scaling as bs
>>> fit = bs.fit(load_scratch_losses(), "kaplan", seed=1)                   # doctest: +SKIP
>>> fit.summary()                                                          # doctest: +SKIP
>>> fit.inverse(3.5, 1e8)          # draws of the data a 1e8-parameter model needs to reach loss 3.5  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling._system import one_blas_thread
from bayes_scaling.data.tables import _resolve_unit, check_numeric, read_table, require_columns, source_name
from bayes_scaling.errors import (
    ConfigError,
    DataError,
    ExclusionWarning,
    format_rows,
)
from bayes_scaling.laws import formulas as laws
from bayes_scaling.laws.formulas import (  # the loss laws by name, evaluated (laws.formulas: written once)
    LAW_PARAMETERS,
    LOSS_LAWS,
    converged_data,
    law_inverse,
    law_loss,
)
from bayes_scaling.models.transfer import merge_priors

__all__ = [
    "LAWS", "LAW_PARAMETERS", "DEFAULT_LOSS_PRIORS", "LossLawConfig", "read_scratch", "read_epoch_chinchilla",
    "build_loss_model", "law_loss", "law_inverse", "converged_data", "laplace_whitening", "SEED_NOISE_PRIORS",
    "ReplicateCells", "replicate_cells", "replicate_likelihood",
]

LIKELIHOODS = ("normal", "student_t")
LAWS = LOSS_LAWS
_SAMPLED = {
    "chinchilla": ("log_E", "a_c", "b_c", "alpha_N", "alpha_D"),
    "kaplan": ("log_L_c", "w", "alpha_D", "r"),
}

#: Default priors. Locations marked "relative" are added to a data summary: ``log_E`` and ``a_c``/``b_c`` to the
#: log of the median loss, ``log_L_c`` to the mean log loss (so the priors do not depend on the loss unit).
DEFAULT_LOSS_PRIORS: dict[str, dict[str, float]] = {
    # Chinchilla: E = median loss * exp(mu + sigma z) (relative): mu = -0.7 means E ~ half the median loss
    "log_E": {"mu": -0.7, "sigma": 1.0},
    # Chinchilla: log of the N- and D-terms at the centre of the data (relative to log median loss)
    "a_c": {"mu": -1.5, "sigma": 2.0},
    "b_c": {"mu": -1.5, "sigma": 2.0},
    # exponents (both laws): LogNormal(mu, sigma); exp(-1.5) = 0.22, 95% prior range 0.03 .. 1.6
    "alpha_N": {"mu": -1.5, "sigma": 1.0},
    "alpha_D": {"mu": -1.5, "sigma": 1.0},
    # Kaplan: log loss at the centre (relative to mean log loss), log ratio of the bracket terms, and
    # r = alpha_N / alpha_D ~ LogNormal(mu, sigma)
    "log_L_c": {"mu": 0.0, "sigma": 1.0},
    "w": {"mu": 0.0, "sigma": 3.0},
    "r": {"mu": 0.0, "sigma": 1.0},
    # noise of log loss (HalfNormal scale) and Student-t degrees of freedom (Gamma(alpha, beta), mean 20)
    "sigma": {"sigma": 0.2},
    "nu": {"alpha": 2.0, "beta": 0.1},
}


#: Priors of the seed noise (used only when some configuration has replicates; kept apart from
#: DEFAULT_LOSS_PRIORS so that the configuration, and its hash in fit files, of one-seed fits is unchanged):
#: sigma_seed at the centre of log N ~ HalfNormal(sigma); its slope in log N ~ Normal(0, sigma) (0.5: a factor
#: e^1.15 per decade of N at 1 sd).
SEED_NOISE_PRIORS: dict[str, dict[str, float]] = {"sigma_seed": {"sigma": 0.2}, "seed_slope": {"sigma": 0.5}}


@dataclass
class LossLawConfig:
    """Law, likelihood and priors of a from-scratch loss-law fit (priors override :data:`DEFAULT_LOSS_PRIORS`).

    >>> LossLawConfig(law="kaplan", likelihood="student_t").priors["r"]
    {'mu': 0.0, 'sigma': 1.0}
    """

    law: str = "chinchilla"
    likelihood: str = "normal"
    priors: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.law not in LAWS:
            raise ConfigError(f"law {self.law!r} is not one of {', '.join(LAWS)}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood {self.likelihood!r} is not one of {', '.join(LIKELIHOODS)}")
        self.priors = merge_priors(DEFAULT_LOSS_PRIORS, self.priors)

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law, "likelihood": self.likelihood, "priors": self.priors}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LossLawConfig:
        return cls(law=doc["law"], likelihood=doc.get("likelihood", "normal"), priors=doc.get("priors", {}))


# ---- input tables ---------------------------------------------------------------------------------------


def read_scratch(source: str | PathLike | pd.DataFrame, *, duplicates: str = "error",
                 what: str | None = None) -> pd.DataFrame:
    """Validate a table of from-scratch runs: ``N``, ``D``, ``loss`` (> 0, finite); extra columns are kept.

    Rows of one ``(N, D)`` with different values in a ``seed`` column are replicates and are kept.
    ``duplicates``: ``"error"`` (default) raises on other repeated ``(N, D)`` pairs (no ``seed`` column, or the
    same seed twice), naming N, D and the rows; ``"mean"`` keeps them as replicate measurements too (they enter
    the likelihood as replicates, module docstring; :func:`~bayes_scaling.analysis.effective.effective_data`
    with ``method="interpolate"`` averages their log losses).
    Adds the column ``unit`` (default tokens).

    >>> read_scratch(pd.DataFrame({"N": [1e6, 1e6], "D": [1e8, 1e9], "loss": [3.1, 2.9]}))["unit"].tolist()
    ['tokens', 'tokens']
    """
    if duplicates not in ("error", "mean"):
        raise ValueError(f"duplicates={duplicates!r}: expected 'error' or 'mean'")
    what = what or source_name(source, "from-scratch runs")
    df = read_table(source, what=what)
    require_columns(df, ["N", "D", "loss"], what)
    for col in ("N", "D", "loss"):
        df[col] = check_numeric(df, col, what)
    df["unit"] = _resolve_unit(df, None, what)
    dup = df.duplicated(["N", "D"] + (["seed"] if "seed" in df.columns else []), keep=False).to_numpy()
    if dup.any() and duplicates == "error":
        first = df.loc[dup].groupby(["N", "D"], sort=False)
        parts = [f"N={n:g}, D={d:g} at rows {format_rows(g.index.tolist())} (losses "
                 f"{', '.join(f'{v:g}' for v in g['loss'])})" for (n, d), g in list(first)[:3]]
        raise DataError(f"{what}: repeated (N, D) pairs: {'; '.join(parts)}"
                        f"{' ...' if first.ngroups > 3 else ''}; expected one run per (N, D)"
                        f"{' and seed' if 'seed' in df.columns else ''} (replicates carry different values in a "
                        "'seed' column; pass duplicates='mean' to treat these as replicate runs)")
    return df


def read_epoch_chinchilla(path: str | PathLike, drop_highest: int = 5,
                          warn: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Epoch AI's extraction of Chinchilla's Figure 4: ``(runs, dropped)``.

    ``N`` = ``Model Size``, ``D = Training FLOP / (6 N)`` tokens; the ``drop_highest`` highest-loss runs are
    removed as Epoch did (returned as ``dropped`` and reported by an :class:`ExclusionWarning`).
    """
    raw = read_table(path, what=str(path))
    require_columns(raw, ["Model Size", "Training FLOP", "loss"], str(path))
    N = check_numeric(raw, "Model Size", str(path))
    C = check_numeric(raw, "Training FLOP", str(path))
    df = pd.DataFrame({"N": N, "D": laws.data_for_compute(C, N), "loss": raw["loss"], "unit": "tokens"})
    order = np.argsort(-check_numeric(raw, "loss", str(path)), kind="stable")
    drop = np.sort(order[:drop_highest])
    dropped = df.loc[drop]
    if warn and drop_highest:
        warnings.warn(f"{path}: dropped the {drop_highest} highest-loss runs as Epoch AI did (rows "
                      f"{format_rows(drop.tolist())}, losses {', '.join(f'{v:.3f}' for v in dropped['loss'])})",
                      ExclusionWarning, stacklevel=2)
    return read_scratch(df.drop(index=drop), what=str(path)), dropped


# ---- the law, evaluated for either family ---------------------------------------------------------------


# ---- the PyMC model -------------------------------------------------------------------------------------


def _centres(df: pd.DataFrame) -> dict[str, float]:
    logL = np.log(df["loss"].to_numpy(float))
    return {"c_N": float(np.mean(np.log(df["N"]))), "c_D": float(np.mean(np.log(df["D"]))),
            "log_L_med": float(np.log(np.median(df["loss"]))), "log_L_mean": float(np.mean(logL))}


def law_parameters(law: str, sampled: dict[str, Any], centres: dict[str, float], m) -> dict[str, Any]:
    """Natural parameters (and their scaled versions for centred inputs) from the sampled ones.

    ``m`` is numpy or pytensor.tensor. Returns ``(natural, scaled)``: ``law_loss(law, N e^{-c_N}, D e^{-c_D},
    scaled) == law_loss(law, N, D, natural)``.
    """
    c_N, c_D = centres["c_N"], centres["c_D"]
    if law == "chinchilla":
        aN, aD = sampled["alpha_N"], sampled["alpha_D"]
        E = m.exp(sampled["log_E"])
        natural = {"E": E, "A": m.exp(sampled["a_c"] + aN * c_N), "B": m.exp(sampled["b_c"] + aD * c_D),
                   "alpha_N": aN, "alpha_D": aD}
        scaled = {"E": E, "A": m.exp(sampled["a_c"]), "B": m.exp(sampled["b_c"]), "alpha_N": aN, "alpha_D": aD}
        return natural, scaled
    aD, r, w = sampled["alpha_D"], sampled["r"], sampled["w"]
    g = sampled["log_L_c"] / aD                       # log of the bracket at the centre
    d_c = g - m.log1p(m.exp(w))                       # log(D_c * exp(-c_D))
    n_c = (d_c + w) / r                               # log(N_c * exp(-c_N))
    natural = {"log_N_c": c_N + n_c, "log_D_c": c_D + d_c, "alpha_N": r * aD, "alpha_D": aD}
    natural["N_c"], natural["D_c"] = m.exp(natural["log_N_c"]), m.exp(natural["log_D_c"])
    scaled = {"N_c": m.exp(n_c), "D_c": m.exp(d_c), "alpha_N": r * aD, "alpha_D": aD}
    return natural, scaled


# A parameter of the unconstrained vector u: (name, prior, a, b). Priors: "normal" (u ~ Normal(a, b)),
# "halfnormal" (exp(u) ~ HalfNormal(b)), "gamma" (exp(u) ~ Gamma(a, b)); names "log_X" expose X = exp(u) too.
Spec = list[tuple[str, str, float, float]]


def loss_spec(config: LossLawConfig, centres: dict[str, float], replicates: bool = False) -> Spec:
    """The unconstrained parameters of the loss law and their priors (see :data:`DEFAULT_LOSS_PRIORS`); with
    ``replicates``, the seed noise's too (``log_sigma_seed``, ``seed_slope``: :data:`SEED_NOISE_PRIORS`)."""
    p = config.priors
    if config.law == "chinchilla":
        spec = [("log_E", "normal", centres["log_L_med"] + p["log_E"]["mu"], p["log_E"]["sigma"]),
                ("a_c", "normal", centres["log_L_med"] + p["a_c"]["mu"], p["a_c"]["sigma"]),
                ("b_c", "normal", centres["log_L_med"] + p["b_c"]["mu"], p["b_c"]["sigma"]),
                ("log_alpha_N", "normal", p["alpha_N"]["mu"], p["alpha_N"]["sigma"]),
                ("log_alpha_D", "normal", p["alpha_D"]["mu"], p["alpha_D"]["sigma"])]
    else:
        spec = [("log_L_c", "normal", centres["log_L_mean"] + p["log_L_c"]["mu"], p["log_L_c"]["sigma"]),
                ("w", "normal", p["w"]["mu"], p["w"]["sigma"]),
                ("log_alpha_D", "normal", p["alpha_D"]["mu"], p["alpha_D"]["sigma"]),
                ("log_r", "normal", p["r"]["mu"], p["r"]["sigma"])]
    spec.append(("log_sigma", "halfnormal", 0.0, p["sigma"]["sigma"]))
    if config.likelihood == "student_t":
        spec.append(("log_nu", "gamma", p["nu"]["alpha"], p["nu"]["beta"]))
    if replicates:
        spec += seed_noise_spec()
    return spec


def seed_noise_spec(suffix: str = "") -> Spec:
    """The seed noise's unconstrained parameters: ``log_sigma_seed`` (at the centre of log N) and
    ``seed_slope`` (its slope in log N), priors :data:`SEED_NOISE_PRIORS`."""
    p = SEED_NOISE_PRIORS
    return [("log_sigma_seed" + suffix, "halfnormal", 0.0, p["sigma_seed"]["sigma"]),
            ("seed_slope" + suffix, "normal", 0.0, p["seed_slope"]["sigma"])]


# ---- replicates: configurations trained with several seeds ----------------------------------------------


@dataclass
class ReplicateCells:
    """The configurations (cells) of a table of runs. :attr:`index`: the cell of each row; :attr:`table`: one
    row per cell (in order of first appearance) with the key columns, ``n`` (runs), ``mean_log_loss`` and ``ss``
    (sum of squared deviations of the runs' log losses from the cell mean)."""

    keys: list[str]
    table: pd.DataFrame
    index: np.ndarray

    @property
    def replicated(self) -> bool:
        """Whether some configuration has more than one run (then the seed noise is estimated)."""
        return bool((self.table["n"] > 1).any())

    @property
    def df(self) -> int:
        """Degrees of freedom of the seed noise: runs minus configurations."""
        return int((self.table["n"] - 1).sum())


def replicate_cells(df: pd.DataFrame, keys=("N", "D"), column: str = "loss", what: str = "runs"
                    ) -> ReplicateCells:
    """Group the runs of ``df`` by ``keys`` (a configuration) for the seed-noise likelihood.

    An error when replicates exist but all have identical losses (the seed noise would be 0: copies of one run,
    not replicates).

    >>> c = replicate_cells(pd.DataFrame({"N": [1, 1, 2], "D": [5, 5, 5], "loss": [np.e, np.e ** 1.2, 2.0]}))
    >>> c.table[["N", "D", "n"]].values.tolist(), c.index.tolist(), round(float(c.table["ss"].iloc[0]), 3)
    ([[1, 5, 2], [2, 5, 1]], [0, 0, 1], 0.02)
    """
    keys = list(keys)
    y = np.log(df[column].to_numpy(float))
    g = pd.DataFrame({k: df[k].to_numpy() for k in keys} | {"_y": y}).groupby(keys, sort=False)
    index = g.ngroup().to_numpy()
    table = g["_y"].agg(n="size", mean_log_loss="mean").reset_index()
    dev = y - table["mean_log_loss"].to_numpy()[index]
    table["ss"] = np.bincount(index, weights=dev ** 2, minlength=len(table))
    cells = ReplicateCells(keys=keys, table=table, index=index)
    if cells.replicated and float(table["ss"].sum()) <= 1e-24:
        rows = np.flatnonzero((table["n"] > 1).to_numpy()[index])
        raise DataError(f"{what}: the replicate runs (same {', '.join(keys)}) at rows {format_rows(rows.tolist())} "
                        f"all have identical {column} values; expected runs with different seeds, whose losses "
                        "differ (copies of one run carry no seed noise: remove them)")
    return cells


def seed_noise_scale(vals: dict, log_N, c_N: float, suffix: str = "", m=np):
    """``sigma_seed(N) = sigma_seed_c * exp(seed_slope * (log N - c_N))`` (``vals``: the sampled values)."""
    return vals["sigma_seed" + suffix] * m.exp(vals["seed_slope" + suffix] * (log_N - c_N))


def replicate_likelihood(name: str, mu, vals: dict, likelihood: str, cells: ReplicateCells, c_N: float,
                         dim: str, suffix: str = "", seed_suffix: str | None = None) -> None:
    """Inside a model: the likelihood of replicate runs (module docstring), ``mu`` = the law's log loss per
    cell. The cell means are the observed variable ``name`` (dims ``dim``; noise ``sigma`` + ``suffix``, ``nu``
    + ``suffix``); the within-cell scatter is the Potential ``name + "_seed_scatter"``; ``sigma_seed`` and
    ``seed_slope`` + ``seed_suffix`` (default ``suffix``) are Deterministics (``sigma_seed``: the seed noise at
    the centre ``c_N`` of log N)."""
    import pymc as pm
    import pytensor.tensor as pt

    seed_suffix = suffix if seed_suffix is None else seed_suffix
    t = cells.table
    n = t["n"].to_numpy(float)
    log_N = np.log(t["N"].to_numpy(float))
    s_seed = seed_noise_scale(vals, log_N, c_N, seed_suffix, pt)
    pm.Deterministic("sigma_seed" + seed_suffix, vals["sigma_seed" + seed_suffix])
    pm.Deterministic("seed_slope" + seed_suffix, vals["seed_slope" + seed_suffix])
    obs = pm.Data(name + "_cell_mean_obs", t["mean_log_loss"].to_numpy(float), dims=dim)
    scale = pt.sqrt(vals["sigma" + suffix] ** 2 + s_seed ** 2 / n)
    if likelihood == "student_t":
        pm.StudentT(name, nu=vals["nu" + suffix], mu=mu, sigma=scale, observed=obs, dims=dim)
    else:
        pm.Normal(name, mu=mu, sigma=scale, observed=obs, dims=dim)
    rep = np.flatnonzero(n > 1)
    ss = t["ss"].to_numpy(float)[rep]
    pm.Potential(name + "_seed_scatter", pt.sum(-(n[rep] - 1) * pt.log(s_seed[rep]) - ss / (2 * s_seed[rep] ** 2)))


def spec_start(spec: Spec) -> np.ndarray:
    """A starting point: the prior centre of each unconstrained parameter."""
    out = []
    for _, kind, a, b in spec:
        out.append(a if kind == "normal" else np.log(b) if kind == "halfnormal" else np.log(a / b))
    return np.array(out, float)


def unpack(spec: Spec, u) -> tuple[dict[str, Any], Any]:
    """Named tensors from the vector ``u`` and the log prior density of ``u`` (Jacobians of exp included)."""
    import pymc as pm
    import pytensor.tensor as pt

    vals: dict[str, Any] = {}
    logp = 0.0
    for i, (name, kind, a, b) in enumerate(spec):
        x = u[i]
        vals[name] = x
        if name.startswith("log_"):
            vals[name[4:]] = pt.exp(x)
        if kind == "normal":
            logp = logp + pm.logp(pm.Normal.dist(a, b), x)
        elif kind == "halfnormal":
            logp = logp + pm.logp(pm.HalfNormal.dist(b), pt.exp(x)) + x
        else:
            logp = logp + pm.logp(pm.Gamma.dist(alpha=a, beta=b), pt.exp(x)) + x
    return vals, logp


def whitened_vector(model, spec: Spec, m: np.ndarray | None, L: np.ndarray | None):
    """Inside ``model``: ``u = m + L z`` with ``z`` flat, the prior of ``u`` added as a Potential.

    ``m, L`` come from a Laplace approximation (:func:`laplace_whitening`), so NUTS samples a nearly standard
    normal ``z`` whatever the correlations of ``u``; any ``m, L`` give the same posterior (a linear change of
    variables), only the efficiency depends on them.
    """
    import pymc as pm
    import pytensor.tensor as pt

    K = len(spec)
    m = spec_start(spec) if m is None else np.asarray(m, float)
    L = np.eye(K) if L is None else np.asarray(L, float)
    with model:
        z = pm.Flat("z", shape=K)
        u = pt.as_tensor(m) + pt.dot(pt.as_tensor(L), z)
        vals, logp = unpack(spec, u)
        pm.Potential("log_prior", logp)
    return vals


def laplace_whitening(build, spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mode ``m`` and Cholesky factor ``L`` of the inverse Hessian there (Laplace approximation) of
    the model ``build(m0, I)``, found by L-BFGS from the prior centre; ``L`` falls back to a clipped
    eigen-decomposition when the Hessian is not positive definite.

    The Hessian is exact: the Jacobian of PyMC's gradient graph (``model.dlogp()``). It is evaluated once, so it
    is compiled without graph rewrites for the Python linker: the whitening then took as long as with finite
    differences (bundled Chinchilla data, Student-t: 12.4 s against 12.9 s on a loaded 2-core machine), where
    PyTensor's default (Numba) compilation of the second derivative added 35 s."""
    from pytensor.compile.mode import Mode
    from pytensor.gradient import jacobian

    from bayes_scaling.models.laplace import find_mode, inverse_hessian_factor

    K = len(spec)
    m0 = spec_start(spec)
    model = build(m0, np.eye(K))
    z_var = model.rvs_to_values[model["z"]]
    dlogp = model.dlogp(vars=[model["z"]])
    fn = model.compile_fn([model.logp(), dlogp], point_fn=False)  # one compilation for both
    with one_blas_thread():
        z, _, _ = find_mode(lambda v: fn(**{z_var.name: v}), np.zeros(K))
    m = m0 + z
    hessian = model.compile_fn(jacobian(dlogp, z_var, vectorize=True), point_fn=False,
                               mode=Mode(linker="py", optimizer=None))
    H = -np.asarray(hessian(**{z_var.name: z}), float)  # of -log p: positive definite at a strict mode
    return m, inverse_hessian_factor(H, clip=True)


def build_loss_model(df: pd.DataFrame, config: LossLawConfig, centres: dict[str, float] | None = None,
                     m: np.ndarray | None = None, L: np.ndarray | None = None):
    """The PyMC model of ``log loss`` for a validated from-scratch table (see the module docstring).

    The free variable is ``z`` (``u = m + L z``, :func:`whitened_vector`); the sampled-scale parameters
    (``log_E, a_c, b_c`` / ``log_L_c, w, r``) and the natural ones are Deterministics.
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = config.law
    centres = centres or _centres(df)
    cells = replicate_cells(df, ("N", "D"), what="from-scratch runs")
    spec = loss_spec(config, centres, replicates=cells.replicated)
    model = pm.Model(coords={"scratch_run": np.arange(len(df)), "scratch_cell": np.arange(len(cells.table))})
    vals = whitened_vector(model, spec, m, L)
    with model:
        natural, scaled = law_parameters(law, vals, centres, pt)
        _deterministics(law, vals, natural, config)
        if cells.replicated:  # seed noise: cell means and within-cell scatter (module docstring)
            t = cells.table
            n = pm.Data("N_scaled", t["N"].to_numpy(float) * np.exp(-centres["c_N"]), dims="scratch_cell")
            d = pm.Data("D_scaled", t["D"].to_numpy(float) * np.exp(-centres["c_D"]), dims="scratch_cell")
            replicate_likelihood("log_loss", pt.log(law_loss(law, n, d, scaled)), vals, config.likelihood, cells,
                                 centres["c_N"], "scratch_cell")
        else:
            n = pm.Data("N_scaled", df["N"].to_numpy(float) * np.exp(-centres["c_N"]), dims="scratch_run")
            d = pm.Data("D_scaled", df["D"].to_numpy(float) * np.exp(-centres["c_D"]), dims="scratch_run")
            obs = pm.Data("log_loss_obs", np.log(df["loss"].to_numpy(float)), dims="scratch_run")
            mu = pt.log(law_loss(law, n, d, scaled))
            _likelihood("log_loss", mu, vals, config.likelihood, obs, "scratch_run")
    model.centres = centres  # type: ignore[attr-defined]
    model.spec = spec  # type: ignore[attr-defined]
    return model, natural


def _deterministics(law: str, vals: dict, natural: dict, config: LossLawConfig, noise_suffix: str = "") -> None:
    """Sampled-scale and natural law parameters, and the noise (``sigma``/``nu`` + ``noise_suffix``)."""
    import pymc as pm

    for name in _SAMPLED[law]:
        if name not in LAW_PARAMETERS[law]:
            pm.Deterministic(name, vals[name])
    for name in LAW_PARAMETERS[law]:
        pm.Deterministic(name, natural[name])
    if law == "kaplan":
        pm.Deterministic("log_N_c", natural["log_N_c"])
        pm.Deterministic("log_D_c", natural["log_D_c"])
    pm.Deterministic("sigma" + noise_suffix, vals["sigma"])
    if config.likelihood == "student_t":
        pm.Deterministic("nu" + noise_suffix, vals["nu"])


def _likelihood(name: str, mu, vals: dict, likelihood: str, obs, dim: str, suffix: str = ""):
    import pymc as pm

    if likelihood == "student_t":
        return pm.StudentT(name, nu=vals["nu" + suffix], mu=mu, sigma=vals["sigma" + suffix], observed=obs,
                           dims=dim)
    return pm.Normal(name, mu=mu, sigma=vals["sigma" + suffix], observed=obs, dims=dim)
