"""Backtests: fit a law on part of the runs, predict the held-out runs, and score the predictions.

>>> res = backtest(runs, "chinchilla", holdout="C > 6.4e18", seed=1)          # doctest: +SKIP
>>> res.table                      # per split and method: coverage of the 50/80/90/95% intervals, width, ...
>>> res.to_csv("out/"); res.to_netcdf("out/backtest.nc"); res.plot_calibration()   # doctest: +SKIP

The held-out rows are chosen by ``holdout``:

- a condition over the data's columns, e.g. ``"C > 9e19"``, ``"N >= 1e9"``, ``"(N > 1e9) | (D > 1e11)"``,
  ``"1e18 < C <= 1e19"``, ``"corpus == 'web'"``: comparisons of columns, numbers and quoted labels, joined by
  ``&``, ``|``, ``~`` (or ``and``, ``or``, ``not``) and parentheses. It is parsed by :mod:`ast` against a
  whitelist, never ``eval``-ed; an unknown column is an error naming it and listing the columns;
- ``"rolling:COLUMN"``: each of the largest ``rolling_steps`` distinct values of the column left out in turn,
  fitted on the rows with smaller values (a rolling origin: "what would we have predicted for the next budget").

Scores of each held-out run, from the posterior predictive draws of a new run (``kind="observation"``):
relative error of the median, whether the 50/80/90/95% equal-tailed intervals cover it, their relative width
(``(hi - lo) / median``), the log predictive density of ``log(target)`` (a Gaussian kernel density of the draws
of ``log(target)``; on the log scale so that it is comparable across data sets) and the CRPS of ``log(target)``
(energy form, ``E|X - y| - E|X - X'| / 2``, exact for the empirical distribution of the draws; on the log scale
because a Student-t noise with few degrees of freedom gives draws of the target itself without a finite mean).

Point-fit baselines in the same run, on the same training rows: ``lsq`` (least squares on the likelihood's
scale, multi-start: :func:`bayes_scaling.models.spec_model.point_fit`) and ``huber`` (Epoch AI's replication of
Chinchilla: Huber loss with ``delta = 1e-3`` on the log residuals, minimised from Epoch's fixed grid of starting
points, the best of them: :func:`huber_fit`, deterministic). They give a point prediction only (median error; no
intervals).

Convergence: each split's fit reports its worst R-hat, smallest bulk ESS and number of divergences
(:func:`fit_diagnostics`) in the columns ``rhat_max``, ``ess_bulk_min`` and ``divergences`` of the bayes methods'
rows (``points`` and ``table``; over ``all`` splits: the worst R-hat and ESS and the total of divergences; the
point fits: NaN); the worst over a split's nested fits in ``nested_rhat_max``, ``nested_ess_bulk_min`` and
``nested_divergences`` (each nested fit's in ``info["splits"][i]["nested_diagnostics"]``). A split whose fit or
nested fits miss R-hat <= 1.01, bulk ESS >= 400 or no divergence warns once
(:class:`~bayes_scaling.errors.ConvergenceWarning`, naming the split and the fit).

Methods scored: ``bayes``, the default predictions (``Fit.predict(kind="observation")``: the posterior
predictive with the law spec's discrepancy, ``tau`` = ``spec.discrepancy.tau``, 0.059 per decade unless the spec
says otherwise); ``bayes(no discrepancy)``, the posterior predictive alone (absent when the spec's ``tau`` is 0);
``bayes+discrepancy`` (below); ``lsq`` and ``huber``.

**Discrepancy** (``discrepancy="nested"``): the law is wrong by an amount that grows with the distance outside
the data. The predictive draws of ``log(target)`` get an extra ``Normal(0, (tau * d)**2)``, ``d`` the orders of
magnitude the point lies outside the training rows, over the law's inputs and, for laws of N and D, compute
``C = 6 N D`` (``Fit.outside``, :func:`bayes_scaling.laws.discrepancy.outside_table`: the one definition
``Fit.predict`` uses, so that a ``tau`` learnt here means the same there; a run at a new compute budget may lie
inside the ranges of N and of D; a column of the data such as the holdout's ``C`` is not used), and ``tau``
(per order of magnitude) is calibrated by *nested backtests inside the training rows*: the training rows are split again in the same
direction (the rows beyond a quantile of the holdout column), the law is refitted on the rest, and ``tau`` is the
maximum-likelihood value of ``r ~ Normal(0, s**2 + tau**2 d**2)`` over the nested held-out runs (``r``: residual
of the log median, ``s``: the nested predictive sd of ``log(target)``). The test rows never enter it. Both
predictive distributions, with and without the discrepancy, are scored in one run (methods ``bayes`` and
``bayes+discrepancy``). :func:`pooled_tau` pools the nested backtests of several data sets (or configurations)
into one ``tau``, and :meth:`BacktestResult.rescore` scores a backtest with it. The nested residuals are kept in
``info["splits"][i]["nested"]`` (``resid``, ``sd``, ``dist`` and ``fold``, the refit each came from).

**The learnt drift** (:func:`learn_discrepancy`): the nested residuals of a data set share a sign, and their
slope per decade outside the data predicts the forecast's (docs/validation.md); ``learn_discrepancy`` runs the
nested backtests on all of one's runs and returns the drift as a spec's ``[discrepancy] tau = "learnt"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling._numeric import nanquantile
from bayes_scaling.errors import ConfigError, DataError
from bayes_scaling.laws.discrepancy import distance_outside, widen
from bayes_scaling.laws.expr import eval_condition, parse_condition

__all__ = ["Holdout", "parse_holdout", "Split", "make_splits", "crps_draws", "log_density_draws",
           "interval_scores", "distance_outside", "fit_diagnostics", "DIAGNOSTIC_COLUMNS", "huber_fit", "huber_grid",
           "huber_objective", "lsq_fit", "calibrate_tau", "pooled_tau", "learn_discrepancy", "backtest", "BacktestResult", "LEVELS"]

#: nominal levels of the predictive intervals that are scored
LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)

# ---- the holdout expression ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Holdout:
    """A parsed holdout: a condition (``tree``) over ``columns``, or a rolling split along ``rolling``."""

    text: str
    tree: Any = None
    columns: frozenset[str] = frozenset()
    rolling: str | None = None

    def mask(self, table: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the held-out rows of ``table`` (a condition only); unknown columns: ConfigError."""
        if self.rolling is not None:
            raise ConfigError(f"holdout {self.text!r} is a rolling split; it has no single mask")
        unknown = sorted(self.columns - set(map(str, table.columns)))
        if unknown:
            raise ConfigError(f"holdout {self.text!r}: unknown column(s) {', '.join(unknown)}; the data's columns "
                              f"are {', '.join(map(str, table.columns))}")
        out = np.asarray(eval_condition(self.tree, table, "holdout"), dtype=bool)
        return np.broadcast_to(out, (len(table),)).copy()

    @property
    def direction_column(self) -> str | None:
        """The column along which the split extrapolates: the rolling column, or the only column named."""
        if self.rolling is not None:
            return self.rolling
        return next(iter(self.columns)) if len(self.columns) == 1 else None


def parse_holdout(text: str) -> Holdout:
    """Parse a holdout condition or ``"rolling:COLUMN"`` (see the module docstring); ConfigError if not allowed.

    >>> sorted(parse_holdout("(C > 9e19) & (N >= 1e9)").columns)
    ['C', 'N']
    >>> parse_holdout("rolling:N").rolling
    'N'
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"holdout must be a non-empty condition such as 'C > 9e19' or 'rolling:N', got {text!r}")
    text = text.strip()
    if text.lower().startswith("rolling:"):
        col = text.split(":", 1)[1].strip()
        if not col.isidentifier():
            raise ConfigError(f"holdout {text!r}: expected 'rolling:COLUMN' with a column name, got {col!r}")
        return Holdout(text=text, rolling=col, columns=frozenset({col}))
    tree, names = parse_condition(text, "holdout")
    return Holdout(text=text, tree=tree, columns=names)


# ---- splits -----------------------------------------------------------------------------------------------
@dataclass
class Split:
    """One backtest split: a name and the row positions of its training and held-out rows."""

    name: str
    train: np.ndarray
    test: np.ndarray


def make_splits(table: pd.DataFrame, holdout: str | Holdout, *, rolling_steps: int = 3) -> list[Split]:
    """The splits of ``holdout`` on ``table``; a ConfigError/DataError for unknown columns or empty sets."""
    h = holdout if isinstance(holdout, Holdout) else parse_holdout(holdout)
    rows = np.arange(len(table))
    if h.rolling is None:
        test = h.mask(table)
        split = Split(h.text, rows[~test], rows[test])
        _check_split(split, h.text)
        return [split]
    col = h.rolling
    if col not in table.columns:
        raise ConfigError(f"holdout {h.text!r}: unknown column {col}; the data's columns are "
                          f"{', '.join(map(str, table.columns))}")
    x = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
    if np.isnan(x).any():
        raise DataError(f"holdout {h.text!r}: column {col!r} must be numeric for a rolling split")
    values = np.unique(x)
    if len(values) < 2:
        raise DataError(f"holdout {h.text!r}: column {col!r} has one value; nothing to roll over")
    if not isinstance(rolling_steps, int) or rolling_steps < 1:
        raise ConfigError(f"rolling_steps must be a positive integer, got {rolling_steps!r}")
    splits = []
    for v in values[::-1][:min(rolling_steps, len(values) - 1)][::-1]:
        splits.append(Split(f"{col} = {v:.4g} (fit on {col} < {v:.4g})", rows[x < v], rows[x == v]))
    return splits


def _check_split(split: Split, text: str) -> None:
    if len(split.test) == 0:
        raise DataError(f"holdout {text!r}: no row is held out (empty test set)")
    if len(split.train) == 0:
        raise DataError(f"holdout {text!r}: every row is held out (empty training set)")


# ---- scores -----------------------------------------------------------------------------------------------
def crps_draws(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of each column of ``draws`` (samples x points) at ``y`` (points), energy form
    ``E|X - y| - E|X - X'| / 2``, exact for the empirical distribution of the draws.

    >>> rng = np.random.default_rng(0)
    >>> round(float(crps_draws(rng.standard_normal((20000, 1)), np.array([0.0]))[0]), 2)   # (sqrt(2) - 1)/sqrt(pi)
    0.23
    """
    x = np.sort(np.asarray(draws, dtype=float), axis=0)
    y = np.asarray(y, dtype=float)
    S = x.shape[0]
    term1 = np.mean(np.abs(x - y[None, :]), axis=0)
    w = (2 * np.arange(1, S + 1) - S - 1)[:, None]
    e_pair = 2.0 * np.sum(w * x, axis=0) / S**2      # E|X - X'| over all ordered pairs
    return term1 - 0.5 * e_pair


def log_density_draws(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log density at ``y`` of a Gaussian kernel density estimate of each column of ``draws`` (Scott's rule)."""
    x = np.asarray(draws, dtype=float)
    y = np.asarray(y, dtype=float)
    S = x.shape[0]
    sd = np.std(x, axis=0, ddof=1)
    iqr = np.subtract(*np.quantile(x, [0.75, 0.25], axis=0)) / 1.349
    h = 1.06 * np.maximum(np.minimum(sd, np.where(iqr > 0, iqr, sd)), 1e-12) * S ** (-0.2)
    z = (y[None, :] - x) / h[None, :]
    from scipy.special import logsumexp

    return logsumexp(-0.5 * z**2, axis=0) - np.log(S) - np.log(h) - 0.5 * np.log(2 * np.pi)


def interval_scores(draws: np.ndarray, y: np.ndarray, levels: Sequence[float] = LEVELS) -> dict[str, np.ndarray]:
    """Per point: the median, and for each level the equal-tailed interval, whether it covers ``y`` and its
    width relative to the median (``cover90``, ``width90``, ``lo90``, ``hi90``, ...)."""
    out: dict[str, np.ndarray] = {"median": np.nanmedian(draws, axis=0)}
    for p in levels:
        tag = f"{100 * p:g}"
        lo, hi = nanquantile(draws, [(1 - p) / 2, (1 + p) / 2], axis=0)
        out[f"lo{tag}"], out[f"hi{tag}"] = lo, hi
        out[f"cover{tag}"] = (y >= lo) & (y <= hi)
        out[f"width{tag}"] = (hi - lo) / np.abs(out["median"])
    return out


# ---- point-fit baselines ------------------------------------------------------------------------------------
def _ungrouped(spec):
    from bayes_scaling.laws.spec import LawSpec, Parameter

    params = [Parameter(p.name, domain=p.domain, fixed=p.fixed, prior=dict(p.prior), fraction_of=p.fraction_of)
              for p in spec.parameters.values()]
    return LawSpec(formula=spec.formula, target=spec.target, parameters=params, family="normal", scale=spec.scale,
                   name=spec.name)


def _baseline_groups(spec, table: pd.DataFrame) -> pd.Series:
    """Baselines ignore the hierarchy: one separate point fit per combination of the spec's group columns."""
    if not spec.groups:
        return pd.Series(["all"] * len(table), index=table.index)
    return table[spec.groups].astype(str).agg(" / ".join, axis=1)


def lsq_fit(spec, table: pd.DataFrame, seed: int = 0) -> dict[str, float]:
    """Least squares on the likelihood's scale (log target for log-scale laws), multi-start."""
    from bayes_scaling.models import spec_model as sm

    s = _ungrouped(spec)
    return sm.point_fit(s, sm.prepare(s, table), seed=seed)


#: Epoch AI's grid of starting values (Besiroglu et al. 2024), on each parameter's unconstrained scale: the
#: exponents alpha, beta in {0, 0.5, 1, 1.5, 2} (0 as 0.05: a positive exponent's log), the coefficients' logs
#: a, b in {0, 5, ..., 25} and the floor's log e in {-1, -0.5, ..., 1.5} (shifted by the log of the target's
#: median, so that a target in other units gets the same grid).
EPOCH_EXPONENTS = (0.05, 0.5, 1.0, 1.5, 2.0)
EPOCH_LOG_COEFFICIENTS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
EPOCH_LOG_FLOORS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
#: at most this many grid points are screened (the objective evaluated, vectorised); beyond it a Latin
#: hypercube over the grid's ranges with a fixed seed
HUBER_MAX_GRID = 50000


def huber_grid(spec, table: pd.DataFrame, *, max_points: int = HUBER_MAX_GRID) -> tuple[list[str], np.ndarray]:
    """The deterministic grid of starting points of :func:`huber_fit`: the names of the spec's free parameters
    and an array (points x parameters) on their unconstrained scales (log for positive, logit for unit).

    Per parameter an axis over its range (Epoch AI's grid where it applies): an exponent (a parameter on the
    right of ``**``; of a negative one, its magnitude) :data:`EPOCH_EXPONENTS`; any other positive (or negative)
    parameter the logs :data:`EPOCH_LOG_FLOORS` (+ log of the target's median: a floor such as ``E`` or
    ``L_inf``) and :data:`EPOCH_LOG_COEFFICIENTS` (coefficients such as ``A`` and ``B``); a unit parameter the
    logits -2, 0, 2; a real one its prior's ``mu + sigma * (-1, 0, 1)`` (default ``mu`` 0, ``sigma`` 1 + the
    target's sd); each with the spec's prior median (or mean) added where it gives one. The product of the
    axes when it has at most ``max_points`` points, else a Latin hypercube of ``max_points`` points over the
    axes' ranges (seed 0: deterministic, bounded). The same spec and table give the same grid every time.
    """
    from itertools import product

    from bayes_scaling.models import spec_model as sm

    s = _ungrouped(spec)
    data = sm.prepare(s, table)
    free = [p for p in s.parameters.values() if p.fixed is None]
    exps = s.exponents()
    y_med = float(np.median(np.abs(data.target))) or 1.0
    y_sd = float(np.std(data.target)) if len(data.target) > 1 else 1.0
    axes = []
    for p in free:
        if p.domain in ("positive", "negative") and p.name in exps:     # negative: the same grid of log(-x)
            ax = list(np.log(EPOCH_EXPONENTS))
        elif p.domain in ("positive", "negative"):
            ax = [e + np.log(y_med) for e in EPOCH_LOG_FLOORS] + list(EPOCH_LOG_COEFFICIENTS)
        elif p.domain == "unit":
            ax = [-2.0, 0.0, 2.0]
        else:
            ax = []
        if p.domain in ("positive", "negative") and "median" in p.prior:
            ax.append(float(sm._to_u(p.prior["median"], p.domain)))
        if p.domain == "unit" and "mean" in p.prior:
            ax.append(float(sm._to_u(p.prior["mean"], "unit")))
        if p.domain == "real":
            mu, sd = float(p.prior.get("mu", 0.0)), float(p.prior.get("sigma", 1.0 + y_sd))
            ax += [mu - sd, mu, mu + sd]
        axes.append(np.unique(np.round(np.asarray(ax, dtype=float), 12)))
    names = [p.name for p in free]
    if not axes:
        return names, np.zeros((1, 0))
    size = int(np.prod([len(a) for a in axes]))
    if size <= max_points:
        return names, np.array(list(product(*axes)), dtype=float)
    from scipy.stats import qmc

    lo = np.array([a.min() for a in axes])
    hi = np.array([a.max() for a in axes])
    unit = qmc.LatinHypercube(d=len(axes), seed=0).random(max_points)
    return names, lo + unit * np.where(hi > lo, hi - lo, 0.0)


def huber_fit(spec, table: pd.DataFrame, *, delta: float = 1e-3, n_starts: int = 32, seed: int | None = None,
              max_grid: int = HUBER_MAX_GRID, starts: np.ndarray | None = None) -> dict[str, float]:
    """Epoch AI's fit (Besiroglu et al. 2024): minimise the Huber loss (``delta``) of the log residuals from a
    fixed grid of starting points (:func:`huber_grid`: theirs, exponents 0..2 and coefficients e^0..e^25, for
    any law spec), keep the best. Deterministic: no random numbers (``seed`` is accepted and ignored).

    Epoch run L-BFGS from each of their 4,500 starts; here the objective is evaluated at every grid point
    (vectorised, a fraction of a second), and the ``n_starts`` best points are minimised by a trust-region
    solver on the same objective (scipy's "huber" loss with ``f_scale = delta`` is exactly it); the four best
    ends are polished by L-BFGS as in Epoch's replication and restarted until they stop improving. On simulated
    data and on every real set tried (Epoch's Chinchilla runs, Muennighoff's grid, Porian's 15 configurations)
    it reached an objective no worse than the former best of 32 starts drawn at random (seeds 0-2 or 0-5).
    ``starts`` (points x free parameters, unconstrained scales): minimise from these instead (comparisons)."""
    from scipy.optimize import least_squares, minimize

    from bayes_scaling.models import spec_model as sm

    s = _ungrouped(spec)
    data = sm.prepare(s, table)
    free = [p for p in s.parameters.values() if p.fixed is None]
    fixed = {p.name: p.fixed for p in s.parameters.values() if p.fixed is not None}
    y = np.log(data.target) if s.scale == "log" else data.target

    def residuals(U):
        """Residuals of each row of ``U`` (points x parameters): points x runs; NaN where the law fails."""
        U = np.atleast_2d(U)
        vals = {**data.inputs, **fixed, **{p.name: sm._from_u(U[:, [k]], p.domain, np) for k, p in enumerate(free)}}
        with np.errstate(all="ignore"):
            f = np.asarray(s.formula.evaluate(vals, backend="numpy"), dtype=float)
            r = (np.log(f) if s.scale == "log" else f) - y
        return np.broadcast_to(r, (U.shape[0], len(y)))

    def objective(U):
        r = residuals(U)
        a = np.abs(r)
        h = np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))
        return np.where(np.all(np.isfinite(r), axis=1), np.sum(h, axis=1), np.inf)

    def loss(u):
        v = float(objective(u)[0])
        return v if np.isfinite(v) else 1e10

    def resid(u):
        r = residuals(u)[0]
        return np.where(np.isfinite(r), r, 1e3)

    def jac(u):
        """Forward differences of :func:`resid`, all parameters in one vectorised evaluation."""
        h = np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(u))
        R = residuals(np.vstack([u, u + np.diag(h)]))
        R = np.where(np.isfinite(R), R, 1e3)
        return ((R[1:] - R[0]) / h[:, None]).T

    if starts is None:
        _, grid = huber_grid(spec, table, max_points=max_grid)
        values = np.concatenate([objective(grid[i:i + 512]) for i in range(0, len(grid), 512)])
        order = np.lexsort((np.arange(len(values)), values))          # the best first; ties by position
        starts = [grid[i] for i in order[:n_starts] if np.isfinite(values[i])]
    def local(u0):
        try:
            res = least_squares(resid, np.array(u0, dtype=float), jac=jac, loss="huber", f_scale=delta,
                                method="trf", max_nfev=200)
        except (ValueError, FloatingPointError):
            return None, np.inf
        val = loss(res.x)
        return (res.x, val) if np.isfinite(val) and val < 1e10 else (None, np.inf)

    ends = sorted((r for r in map(local, starts) if r[0] is not None), key=lambda r: r[1])
    if not ends:
        return {}
    # the Huber loss with a small delta is nearly an absolute loss, with kinks where the solver may stop short:
    # restart the few best ends until they stop improving, each polished by L-BFGS as in Epoch's replication
    best, best_val = ends[0]
    for u, val in ends[:4]:
        for _ in range(6):
            try:
                pol = minimize(loss, u, method="L-BFGS-B")
                if np.isfinite(pol.fun) and pol.fun < val:
                    u, val = pol.x, float(pol.fun)
            except (ValueError, FloatingPointError):
                pass
            u2, val2 = local(u)
            if u2 is None or val2 >= val * (1 - 1e-12):
                break
            u, val = u2, val2
        if val < best_val:
            best, best_val = u, val
    return {p.name: float(sm._from_u(ui, p.domain, np)) for p, ui in zip(free, best, strict=True)}


def huber_objective(spec, table: pd.DataFrame, values: dict[str, float], *, delta: float = 1e-3) -> float:
    """The Huber objective of :func:`huber_fit` (sum over runs, ``delta`` on the log residuals) at ``values``."""
    f = _point_predict(_ungrouped(spec), values, table)
    y = pd.to_numeric(table[spec.target], errors="coerce").to_numpy(dtype=float)
    with np.errstate(all="ignore"):
        r = np.log(f) - np.log(y) if spec.scale == "log" else f - y
    if not np.all(np.isfinite(r)):
        return np.inf
    a = np.abs(r)
    return float(np.sum(np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))))


def _point_predict(spec, values: dict[str, float], table: pd.DataFrame) -> np.ndarray:
    if not values:
        return np.full(len(table), np.nan)
    fixed = {p.name: p.fixed for p in spec.parameters.values() if p.fixed is not None}
    inputs = {c: pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float) for c in spec.inputs}
    with np.errstate(all="ignore"):
        f = np.asarray(spec.formula.evaluate({**inputs, **fixed, **values}, backend="numpy"), dtype=float)
    return np.broadcast_to(f, (len(table),)).copy()


def _baselines(spec, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    g_train, g_test = _baseline_groups(spec, train), _baseline_groups(spec, test)
    out = {"lsq": np.full(len(test), np.nan), "huber": np.full(len(test), np.nan)}
    for g in pd.unique(g_test):
        tr, te = train[(g_train == g).to_numpy()], (g_test == g).to_numpy()
        if len(tr) <= len(spec.parameters):
            continue
        for name, fn in (("lsq", lsq_fit), ("huber", huber_fit)):
            try:
                vals = fn(spec, tr, seed=seed)
            except (DataError, ConfigError, ValueError):
                continue
            out[name][te] = _point_predict(spec, vals, test[te])
    return out


# ---- the discrepancy ----------------------------------------------------------------------------------------
def calibrate_tau(resid: np.ndarray, sd: np.ndarray, dist: np.ndarray, *, tau_max: float = 2.0) -> float:
    """Maximum-likelihood ``tau`` of ``resid ~ Normal(0, sd**2 + tau**2 dist**2)`` on a fine grid in
    ``[0, tau_max]`` (per order of magnitude); 0 when no point lies outside (``dist`` all 0).

    >>> rng = np.random.default_rng(0); d = rng.uniform(0.2, 1, 4000)
    >>> round(calibrate_tau(rng.normal(0, np.hypot(0.01, 0.05 * d)), np.full(4000, 0.01), d), 2)
    0.05
    """
    resid, sd, dist = (np.asarray(a, dtype=float) for a in (resid, sd, dist))
    ok = np.isfinite(resid) & np.isfinite(sd) & np.isfinite(dist)
    resid, sd, dist = resid[ok], sd[ok], np.abs(dist[ok])
    if len(resid) == 0 or not np.any(dist > 0):
        return 0.0
    taus = np.concatenate([[0.0], np.geomspace(1e-5, tau_max, 400)])
    var = sd[None, :] ** 2 + (taus[:, None] * dist[None, :]) ** 2
    ll = -0.5 * np.sum(np.log(var) + resid[None, :] ** 2 / var, axis=1)
    return float(taus[int(np.argmax(ll))])


def _nested_tables(train: pd.DataFrame, test: pd.DataFrame | None, column: str | None, fracs: Sequence[float],
                   *, upward: bool = True):
    """Nested splits inside ``train`` in the direction of the outer split along ``column``: the training rows
    beyond the ``1 - frac`` quantile (or below the ``frac`` quantile, when the test rows lie below; without
    ``test``: ``upward``)."""
    if column is None or column not in train.columns:
        return []
    x = pd.to_numeric(train[column], errors="coerce").to_numpy(dtype=float)
    if np.isnan(x).any():
        return []
    if test is not None:
        xt = pd.to_numeric(test[column], errors="coerce").to_numpy(dtype=float)
        if np.isnan(xt).any():
            return []
        upward = np.median(xt) >= np.median(x)
    out = []
    for frac in fracs:
        if upward:
            cut = np.quantile(x, 1 - frac)
            inner = x >= cut if np.sum(x >= cut) < len(x) else x > cut
        else:
            cut = np.quantile(x, frac)
            inner = x <= cut if np.sum(x <= cut) < len(x) else x < cut
        if 0 < inner.sum() < len(x):
            out.append((train[~inner], train[inner]))
    return out


# ---- one split --------------------------------------------------------------------------------------------
def _log_draws(fit, table: pd.DataFrame, kind: str, seed: int, discrepancy: float | None = 0.0) -> np.ndarray:
    ds = fit.predict(table, kind=kind, seed=seed, discrepancy=discrepancy)
    v = ds[fit.spec.target].values
    return v.reshape(-1, v.shape[-1])


#: the convergence columns of the backtest tables (the bayes methods; NaN for the point fits): the split's fit,
#: then the worst over its nested fits (NaN without nested backtests)
DIAGNOSTIC_COLUMNS: tuple[str, ...] = ("rhat_max", "ess_bulk_min", "divergences")
NESTED_DIAGNOSTIC_COLUMNS: tuple[str, ...] = ("nested_rhat_max", "nested_ess_bulk_min", "nested_divergences")


def _check_whiten(whiten: str) -> None:
    from bayes_scaling.inference.whiten import WHITEN_CHOICES

    if whiten not in WHITEN_CHOICES:
        raise ConfigError(f"whiten must be one of {', '.join(WHITEN_CHOICES)}, got {whiten!r}")


def nested_summary(diags: Sequence[dict[str, float]]) -> dict[str, float]:
    """The worst R-hat, smallest bulk ESS and total divergences over a split's nested fits (NaN without any)."""
    if not diags:
        return {c: np.nan for c in NESTED_DIAGNOSTIC_COLUMNS}
    return {"nested_rhat_max": float(max(d["rhat_max"] for d in diags)),
            "nested_ess_bulk_min": float(min(d["ess_bulk_min"] for d in diags)),
            "nested_divergences": float(sum(d["divergences"] for d in diags))}


def convergence_problems(diag: dict[str, float]) -> list[str]:
    """What fails of R-hat <= 1.01, bulk ESS >= 400 and no divergence in one fit's :func:`fit_diagnostics`."""
    from bayes_scaling.inference.sampling import ESS_MIN, RHAT_MAX

    out = []
    if diag["rhat_max"] > RHAT_MAX:
        out.append(f"R-hat {diag['rhat_max']:.3f} > {RHAT_MAX}")
    if diag["ess_bulk_min"] < ESS_MIN:
        out.append(f"bulk ESS {diag['ess_bulk_min']:.0f} < {ESS_MIN}")
    if diag["divergences"] > 0:
        out.append(f"{diag['divergences']:.0f} divergences")
    return out


def _warn_convergence(name: str, diag: dict[str, float], nested: Sequence[dict[str, float]]) -> None:
    """One :class:`~bayes_scaling.errors.ConvergenceWarning` per split whose fit or nested fits did not converge."""
    import warnings

    from bayes_scaling.errors import ConvergenceWarning

    parts = [f"its fit: {', '.join(p)}" for p in [convergence_problems(diag)] if p]
    parts += [f"nested fit {k + 1}: {', '.join(p)}" for k, d in enumerate(nested) if (p := convergence_problems(d))]
    if parts:
        warnings.warn(f"backtest split {name}: " + "; ".join(parts) + " (the table's rhat_max, ess_bulk_min, "
                      "divergences and nested_* columns; raise draws/tune or target_accept)", ConvergenceWarning,
                      stacklevel=3)


def fit_diagnostics(fit) -> dict[str, float]:
    """A fit's worst rank-normalised R-hat, smallest bulk ESS and number of divergent transitions
    (:attr:`bayes_scaling.inference.fit.Fit.diagnostics`), as the backtest tables report them."""
    d = fit.diagnostics
    return {"rhat_max": float(d.r_hat_max), "ess_bulk_min": float(d.ess_bulk_min),
            "divergences": float(d.divergences)}


def _distance(fit, table: pd.DataFrame) -> np.ndarray:
    """The distance ``d`` of ``table``'s rows outside the fit's training rows: :meth:`Fit.outside`, the one
    definition predictions use (the law's inputs and, for laws of N and D, ``C = 6 N D``; a column of the data
    such as the holdout's ``C`` is not used), so that a ``tau`` calibrated here means the same in predictions."""
    return fit.outside(table)["outside"].to_numpy(dtype=float)


def _run_split(task: dict) -> dict:
    """Fit on the split's training rows and score its held-out rows (a module-level function: a Dask task)."""
    import warnings

    from bayes_scaling.inference.fit import _as_spec
    from bayes_scaling.inference.fit import fit as fit_law

    spec = _as_spec(task["spec"])
    train, test, seed = task["train"], task["test"], task["seed"]
    kw = dict(seed=seed, draws=task["draws"], tune=task["tune"], chains=task["chains"], progressbar=False,
              log_likelihood=False, backend=task["backend"], whiten=task.get("whiten", "auto"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit_law(train, spec, warn=False, **kw)
        diag = fit_diagnostics(f)
        pred = _log_draws(f, test, "observation", seed + 1)           # no discrepancy
        default = _log_draws(f, test, "observation", seed + 1, None) if spec.discrepancy.tau > 0 else pred
        dist = _distance(f, test)
        tau, nested, nested_diag = np.nan, {}, []
        if task["discrepancy"] == "nested":
            nested, nested_diag = _nested_residuals(train, spec, task["direction"], task["nested_fracs"], kw,
                                                    test=test)
            tau = calibrate_tau(nested["resid"], nested["sd"], nested["dist"]) if nested["resid"] else 0.0
    base = _baselines(spec, train, test, seed)
    return {"name": task["name"], "pred": pred, "default": default, "dist": dist, "tau": tau, "nested": nested, "baselines": base,
            "backend": f.backend, "n_train": len(train), "diagnostics": diag, "nested_diagnostics": nested_diag}


def _nested_residuals(train: pd.DataFrame, spec, column: str | None, fracs: Sequence[float], kw: dict, *,
                      test: pd.DataFrame | None = None, upward: bool = True) -> tuple[dict[str, list], list]:
    """Nested backtests inside ``train`` (:func:`_nested_tables`): per nested held-out run, the residual of
    ``log(target)`` against the predictive median, the predictive sd of ``log(target)``, the distance outside
    and the refit it came from (``resid``, ``sd``, ``dist``, ``fold``); and each refit's diagnostics."""
    from bayes_scaling.inference.fit import fit as fit_law

    resid, sds, dists, folds, diags = [], [], [], [], []
    seed = kw["seed"]
    for k, (tr, te) in enumerate(_nested_tables(train, test, column, fracs, upward=upward)):
        try:
            fn = fit_law(tr, spec, warn=False, **{**kw, "seed": seed + 10 + k})
        except (DataError, ConfigError):
            continue
        diags.append(fit_diagnostics(fn))
        lp = np.log(_log_draws(fn, te, "observation", seed + 20 + k))
        resid.append(np.log(te[spec.target].to_numpy(dtype=float)) - np.median(lp, axis=0))
        sds.append(np.subtract(*np.quantile(lp, [0.8413, 0.1587], axis=0)) / 2)
        dists.append(_distance(fn, te))
        folds.append(np.full(len(te), float(k)))
    nested = {k: np.concatenate(v).tolist() if v else [] for k, v in
              (("resid", resid), ("sd", sds), ("dist", dists), ("fold", folds))}
    return nested, diags


def learn_discrepancy(data: pd.DataFrame | str | PathLike, model="chinchilla", column: str = "C", *,
                      upward: bool = True, fracs: Sequence[float] = (0.15, 0.3), seed: int = 0, draws: int = 500,
                      tune: int = 500, chains: int = 2, backend: str = "auto", whiten: str = "auto",
                      population: str | None = None):
    """The discrepancy learnt for one's own runs: nested backtests of the law on ``data`` along ``column``
    (the runs beyond its 85% and 70% quantiles held out in turn, ``upward``; below the 15% and 30% quantiles
    otherwise), their residuals' drift slope ``b`` per decade outside
    (:func:`~bayes_scaling.laws.discrepancy.drift_posterior`, the population scales ``tau_b``, ``tau_e`` of the
    shipped real data sets), carried to a forecast as the population's transfer says (``lam``, ``mu``, ``kappa``:
    :func:`~bayes_scaling.laws.discrepancy.population_transfer`)::

        drift, drift_sd = transfer_slope(b_mean, b_sd, lam, lam_sd, kappa, mu, mu_sd, lam_mu_cov),   tau_e

    Returns a :class:`~bayes_scaling.laws.discrepancy.Discrepancy` (``tau = "learnt"``): set it as the spec's
    ``discrepancy`` (``dataclasses.replace(spec, discrepancy=...)``), or write its ``to_dict()`` into the spec's
    ``[discrepancy]`` table; ``Fit.predict`` then shifts and widens by it. ``whiten``: as for
    :func:`bayes_scaling.inference.fit.fit`, for the nested fits. ``population``: the shipped population
    (:data:`~bayes_scaling.laws.discrepancy.POPULATIONS`; default by the law,
    :func:`~bayes_scaling.laws.discrepancy.population_for_law`): ``"chinchilla"`` (the drift above) or
    ``"m4_vision"`` (learning curves: a learnt scale, :func:`~bayes_scaling.laws.discrepancy.learnt_scale`)."""
    from bayes_scaling.data.tables import read_table
    from bayes_scaling.inference.fit import _as_spec
    from bayes_scaling.laws.discrepancy import (
        TRANSFER_KEYS,
        Discrepancy,
        drift_posterior,
        learnt_scale,
        load_named_population,
        population_for_law,
        transfer_slope,
    )

    _check_whiten(whiten)
    spec = _as_spec(model)
    table = read_table(data, "data").reset_index(drop=True)
    if column not in table.columns and not (column == "C" and {"N", "D"} <= set(table.columns)):
        raise ConfigError(f"learn_discrepancy: unknown column {column!r}; the data's columns are "
                          f"{', '.join(map(str, table.columns))}")
    if column == "C" and "C" not in table.columns:
        from bayes_scaling.laws.formulas import training_compute

        table = table.assign(C=training_compute(table["N"].to_numpy(dtype=float), table["D"].to_numpy(dtype=float)))
    pop = load_named_population(population or population_for_law(spec.name))
    kw = dict(seed=seed, draws=draws, tune=tune, chains=chains, progressbar=False, log_likelihood=False,
              backend=backend, whiten=whiten)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nested, _ = _nested_residuals(table, spec, column, fracs, kw, upward=upward)
    if not nested["resid"]:
        raise DataError(f"learn_discrepancy: no nested backtest along {column!r} could be fitted (too few runs "
                        f"beyond its quantiles {', '.join(f'{1 - f:g}' for f in fracs)})")
    if "scale_mu" in pop:
        return learnt_scale(nested["resid"], nested["sd"], nested["dist"], pop, fold=nested["fold"],
                            source=f"nested backtests of {len(table)} runs along {column} ({len(nested['resid'])} "
                                   f"held out), population of vision learning curves")
    b_mean, b_sd = drift_posterior(nested["resid"], nested["sd"], nested["dist"], pop["tau_b"], pop["tau_e"])
    drift, drift_sd = transfer_slope(b_mean, b_sd, **{k: pop[k] for k in TRANSFER_KEYS if k in pop})
    return Discrepancy("learnt", f"nested backtests of {len(table)} runs along {column} ({len(nested['resid'])} "
                                 f"held out), population of real data sets", drift=drift, drift_sd=drift_sd,
                       tau_e=pop["tau_e"])


def _with_discrepancy(pred: np.ndarray, dist: np.ndarray, tau: float, seed: int) -> np.ndarray:
    return widen(pred, dist, tau, np.random.default_rng(seed))


# ---- the result ---------------------------------------------------------------------------------------------
@dataclass
class BacktestResult:
    """A backtest: ``points`` (one row per held-out run and method) and ``table`` (per split and method, and
    ``all`` splits: n, median relative error, coverage and width of each level, mean log predictive density
    and CRPS), with the settings in ``info``."""

    points: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    levels: tuple[float, ...] = LEVELS
    #: per split: the predictive draws of the held-out rows (samples x rows), their distance outside, the rows
    #: (in memory only; for :meth:`rescore`)
    draws: dict[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]] = field(default_factory=dict, repr=False)

    def rescore(self, tau: float, method: str = "bayes+discrepancy(tau)", seed: int = 0) -> BacktestResult:
        """The same backtest with one more method: the predictive draws widened by a discrepancy of the given
        ``tau`` (per order of magnitude outside the data), e.g. a ``tau`` pooled over the nested backtests of
        several data sets (:func:`pooled_tau`)."""
        frames = [self.points]
        target = self.info.get("target", "loss")
        for i, (split, (pred, dist, test)) in enumerate(self.draws.items()):
            y = test[target].to_numpy(dtype=float)
            wide = _with_discrepancy(pred, dist, tau, seed + i)
            f = _score(method, split, test, y, wide, None, dist, tau, self.levels)
            frames.append(f.assign(tau=tau, **self._split_diagnostics(split)))
        return BacktestResult(pd.concat(frames, ignore_index=True), {**self.info}, self.levels, self.draws)

    def _split_diagnostics(self, split: str) -> dict[str, float]:
        for sp in self.info.get("splits", []):
            if sp.get("name") == split and sp.get("diagnostics"):
                return {**sp["diagnostics"], **nested_summary(sp.get("nested_diagnostics") or [])}
        return {c: np.nan for c in (*DIAGNOSTIC_COLUMNS, *NESTED_DIAGNOSTIC_COLUMNS)}

    @property
    def table(self) -> pd.DataFrame:
        rows = []
        p = self.points
        for (split, method), g in [*p.groupby(["split", "method"], sort=False),
                                   *((("all", m), g) for m, g in p.groupby("method", sort=False))]:
            if split == "all" and p["split"].nunique() == 1:
                continue
            r = {"split": split, "method": method, "n_test": len(g),
                 "median_rel_error": float(np.nanmedian(g["rel_error"])),
                 "mean_rel_error": float(np.nanmean(g["rel_error"]))}
            for lv in self.levels:
                tag = f"{100 * lv:g}"
                has = g[f"cover{tag}"].notna()
                r[f"coverage{tag}"] = float(g.loc[has, f"cover{tag}"].mean()) if has.any() else np.nan
                r[f"width{tag}"] = float(np.nanmedian(g[f"width{tag}"])) if has.any() else np.nan
            r["lpd"] = float(np.nanmean(g["lpd"])) if g["lpd"].notna().any() else np.nan
            r["crps"] = float(np.nanmean(g["crps"])) if g["crps"].notna().any() else np.nan
            r["tau"] = float(np.nanmean(g["tau"])) if g["tau"].notna().any() else np.nan
            # the fits' convergence (the bayes methods): the worst over the splits' fits (one per split)
            for c, fn in (("rhat_max", np.max), ("ess_bulk_min", np.min), ("divergences", np.sum),
                          ("nested_rhat_max", np.max), ("nested_ess_bulk_min", np.min), ("nested_divergences", np.sum)):
                per_split = g.groupby("split", sort=False)[c].first() if c in g else pd.Series(dtype=float)
                per_split = per_split[per_split.notna()]
                r[c] = float(fn(per_split)) if len(per_split) else np.nan
            rows.append(r)
        return pd.DataFrame(rows)

    def coverage(self, method: str = "bayes") -> pd.DataFrame:
        """Nominal against observed coverage over all held-out runs, per method."""
        p = self.points[self.points["method"] == method]
        return pd.DataFrame({"nominal": list(self.levels),
                             "observed": [float(p[f"cover{100 * lv:g}"].mean()) for lv in self.levels],
                             "n": len(p)})

    def to_csv(self, path: str | PathLike) -> tuple[Path, Path]:
        """Write ``backtest_summary.csv`` and ``backtest_points.csv`` into the folder ``path``."""
        from bayes_scaling._atomic import atomic_write

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        out = (d / "backtest_summary.csv", d / "backtest_points.csv")
        for frame, file in ((self.table, out[0]), (self.points, out[1])):
            with atomic_write(file) as fh:
                frame.to_csv(fh, index=False)
        return out

    def to_netcdf(self, path: str | PathLike) -> Path:
        """One netCDF file: ``points`` and ``summary`` as groups, the settings as attributes."""
        import xarray as xr

        from bayes_scaling.inference.fitfile import write_netcdf

        def ds(frame):
            return xr.Dataset({str(c): ("row", frame[c].astype(str).to_numpy() if frame[c].dtype == object
                                        else frame[c].to_numpy()) for c in frame.columns})

        tree = xr.DataTree.from_dict({"points": ds(self.points), "summary": ds(self.table)})
        tree.attrs["backtest"] = json.dumps(self.info, default=str)
        return write_netcdf(tree, path)   # in memory, then atomically (a full disk: an OSError)

    def plot_calibration(self, **kw):
        from bayes_scaling.output.plots import plot_calibration

        return plot_calibration(self, **kw)

    def __repr__(self) -> str:
        return f"BacktestResult({self.info.get('holdout')!r}, {self.points['split'].nunique()} split(s))"


def _score(method: str, split: str, test: pd.DataFrame, y: np.ndarray, draws: np.ndarray | None,
           point: np.ndarray | None, dist: np.ndarray, tau: float, levels) -> pd.DataFrame:
    out = test.reset_index(drop=True).copy()
    out.insert(0, "method", method)
    out.insert(0, "split", split)
    out["outside"] = dist
    if draws is not None:
        sc = interval_scores(draws, y, levels)
        med = sc.pop("median")
        with np.errstate(all="ignore"):
            out["lpd"] = log_density_draws(np.log(draws), np.log(y))
        with np.errstate(all="ignore"):
            out["crps"] = crps_draws(np.log(draws), np.log(y))
        for k, v in sc.items():
            out[k] = v.astype(float) if k.startswith("cover") else v
    else:
        med = point
        for lv in levels:
            tag = f"{100 * lv:g}"
            out[f"lo{tag}"] = out[f"hi{tag}"] = out[f"width{tag}"] = np.nan
            out[f"cover{tag}"] = np.nan
            out[f"cover{tag}"] = out[f"cover{tag}"].astype(float)
        out["lpd"] = out["crps"] = np.nan
    out["predicted"] = med
    out["rel_error"] = np.abs(med - y) / np.abs(y)
    out["tau"] = tau
    for c in DIAGNOSTIC_COLUMNS:
        out[c] = np.nan
    return out


def backtest(data: pd.DataFrame | str | PathLike, model="chinchilla", holdout: str = "rolling:N", *,
             seed: int = 0, draws: int = 500, tune: int = 500, chains: int = 2, backend: str = "auto",
             discrepancy: str = "nested", nested_fracs: Sequence[float] = (0.15, 0.3),
             rolling_steps: int = 3, levels: Sequence[float] = LEVELS, client=None, workers: int | None = 1,
             progress=None, whiten: str = "auto") -> BacktestResult:
    """Fit ``model`` on the rows not held out by ``holdout``, predict the held-out rows and score them (module
    docstring). ``discrepancy``: ``"nested"`` (also score the discrepancy-widened predictive) or ``"none"``.
    Splits (rolling) run through :func:`bayes_scaling.inference.batch.map_tasks` (``client``/``workers``:
    a Dask cluster; ``workers=1``: in this process). ``whiten``: as for :func:`bayes_scaling.inference.fit.fit`,
    for every fit of the backtest (``"none"``: nutpie's own adaptation, which converged where the Laplace whitening
    did not on small IsoFLOP grids: docs/validation.md)."""
    from bayes_scaling.data.tables import read_table
    from bayes_scaling.inference.batch import map_tasks
    from bayes_scaling.inference.fit import _as_spec

    if discrepancy not in ("nested", "none"):
        raise ConfigError(f"discrepancy must be 'nested' or 'none', got {discrepancy!r}")
    _check_whiten(whiten)
    levels = tuple(float(x) for x in levels)
    if not levels or not all(0 < x < 1 for x in levels):
        raise ConfigError(f"levels must be in (0, 1), got {levels!r}")
    spec = _as_spec(model)
    table = read_table(data, "data").reset_index(drop=True)
    h = parse_holdout(holdout)
    splits = make_splits(table, h, rolling_steps=rolling_steps)
    tasks = [{"name": s.name, "spec": spec.to_dict(), "train": table.iloc[s.train].reset_index(drop=True),
              "test": table.iloc[s.test].reset_index(drop=True), "seed": int(seed) + 1000 * i, "draws": draws,
              "tune": tune, "chains": chains, "backend": backend, "discrepancy": discrepancy,
              "direction": h.direction_column, "nested_fracs": tuple(nested_fracs), "whiten": whiten}
             for i, s in enumerate(splits)]
    results = map_tasks(_run_split, tasks, client=client, workers=workers, progress=progress,
                        desc="backtest splits", labels=[s.name for s in splits])
    frames = []
    for task, res in zip(tasks, results, strict=True):
        test = task["test"]
        y = test[spec.target].to_numpy(dtype=float)
        tau0 = spec.discrepancy.tau
        diag = res["diagnostics"]
        bayes = [_score("bayes", res["name"], test, y, res["default"], None, res["dist"], tau0, levels)]
        if tau0 > 0:
            bayes.append(_score("bayes(no discrepancy)", res["name"], test, y, res["pred"], None, res["dist"],
                                np.nan, levels))
        if discrepancy == "nested":
            widened = _with_discrepancy(res["pred"], res["dist"], res["tau"], task["seed"] + 7)
            bayes.append(_score("bayes+discrepancy", res["name"], test, y, widened, None, res["dist"], res["tau"],
                                levels))
        frames += [f.assign(**diag, **nested_summary(res["nested_diagnostics"])) for f in bayes]
        _warn_convergence(res["name"], diag, res["nested_diagnostics"])
        for name, point in res["baselines"].items():
            frames.append(_score(name, res["name"], test, y, None, point, res["dist"], np.nan, levels))
    info = {"holdout": h.text, "target": spec.target, "model": spec.name, "tau_default": spec.discrepancy.tau, "formula": spec.formula.text, "seed": seed, "draws": draws,
            "tune": tune, "chains": chains, "backend": results[0]["backend"], "whiten": whiten, "discrepancy": discrepancy,
            "nested_fracs": list(nested_fracs), "n_rows": len(table),
            "splits": [{"name": r["name"], "n_train": r["n_train"], "n_test": len(t["test"]),
                        "tau": None if not np.isfinite(r["tau"]) else r["tau"], "nested": r["nested"],
                        "diagnostics": r["diagnostics"], "nested_diagnostics": r["nested_diagnostics"]}
                       for r, t in zip(results, tasks, strict=True)]}
    draws = {r["name"]: (r["pred"], r["dist"], t["test"]) for r, t in zip(results, tasks, strict=True)}
    return BacktestResult(pd.concat(frames, ignore_index=True), info, levels, draws)


def pooled_tau(results: Sequence[BacktestResult]) -> float:
    """One discrepancy ``tau`` from the nested backtests of several backtests (data sets or configurations
    that share a law): the maximum-likelihood value over all their nested held-out runs (training rows only:
    no held-out run enters it)."""
    r, s, d = [], [], []
    for res in results:
        for sp in res.info.get("splits", []):
            nested = sp.get("nested") or {}
            r += nested.get("resid", [])
            s += nested.get("sd", [])
            d += nested.get("dist", [])
    return calibrate_tau(np.array(r), np.array(s), np.array(d))
