"""Several laws, one prediction: Bayesian stacking of the laws' predictive distributions (Yao et al. 2018) on
leave-future-out scores.

>>> st = bs.stack(runs, ["chinchilla", "kaplan"], order_by="C", seed=1)         # doctest: +SKIP
>>> st.weights                   # one weight per law, summing to 1
>>> st.table                     # per law: weight (stacking and pseudo-BMA+), LFO log score, fits' convergence
>>> st.predict(new_runs, kind="observation", ci_prob=0.9)                       # doctest: +SKIP

**Leave-future-out scores.** The runs are ordered by a column (``order_by``, e.g. compute ``C`` or size ``N``).
Each cut ``c_j`` (:func:`lfo_splits`) fits every law on the runs with ``x < c_j`` and scores the next block,
``c_j <= x < c_{j+1}`` (the last block: ``x >= c_J``). A scored run ``i`` gets from each law ``k`` its log
predictive density ``lpd_ik = log p_k(log y_i)``: the density of ``log(target)`` under the law's predictive draws
of a new run (``Fit.predict(kind="observation")``, with the spec's discrepancy outside the data), a Gaussian kernel
density of the draws (:func:`bayes_scaling.analysis.backtest.log_density_draws`, the backtests' log score).

**Weights.** Stacking (default): the weights on the simplex that maximise the log score of the mixture over the
scored runs,

    w = argmax_{w in simplex} sum_i log sum_k w_k exp(lpd_ik)

(:func:`stacking_weights`: concave in ``w``; solved by L-BFGS in a softmax parameterisation). Pseudo-BMA+
(``method="pseudo-bma+"``): ``w_k ∝ exp(elpd_k)``, ``elpd_k = sum_i lpd_ik``, averaged over Bayesian-bootstrap
reweightings of the scored runs (:func:`pseudo_bma_weights`, Yao et al. 2018, section 3.3); ``"pseudo-bma"``
without the bootstrap. Then every law is fitted on all runs, and :meth:`Stack.predict` mixes their predictive
draws by weight (a share ``w_k`` of the draws from law ``k``; the same seed, the same draws).

**Convergence.** A fit whose R-hat exceeds ``rhat_limit`` (1.01) or that has divergent transitions is run
again with safer settings (:data:`SAFER`: twice the draws, twice the tuning steps, at least 1000, and
``target_accept`` 0.99). A
law with a fit that still has not converged (any leave-future-out fit, or its fit on all runs) gets no weight:
the weights are those of the other laws, a :class:`~bayes_scaling.errors.ConvergenceWarning` names it, and
the ``excluded`` column of :attr:`Stack.table` says why (``exclude_unconverged=False`` keeps it, with the
reason still reported). If no law converged, all are weighed, with the warning.

The laws must predict the same target (the scores are densities of one quantity). The scores are on
``log(target)``, so the target must be positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import ConfigError, DataError, format_rows

__all__ = ["METHODS", "RHAT_LIMIT", "SAFER", "lfo_splits", "stacking_weights", "pseudo_bma_weights", "lfo_scores", "stack", "Stack"]

#: the weighting methods of :func:`stack`
METHODS = ("stacking", "pseudo-bma+", "pseudo-bma")
#: the largest R-hat of a converged fit (with no divergent transitions)
RHAT_LIMIT = 1.01
#: the second attempt at a fit that did not converge: ``tune`` times ``factor`` (at least ``tune_min``),
#: ``draws`` times ``factor`` (a less noisy R-hat), this ``target_accept``, another seed
SAFER = {"factor": 2, "tune_min": 1000, "target_accept": 0.99}


# ---- weights ------------------------------------------------------------------------------------------------
def _check_lpd(lpd: np.ndarray) -> np.ndarray:
    a = np.asarray(lpd, dtype=float)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"lpd must be a (points x laws) array with at least one of each, got shape {a.shape}")
    bad = np.flatnonzero(~np.all(np.isfinite(a) | (a == -np.inf), axis=1))
    if len(bad):
        raise ValueError(f"lpd has NaN or +inf at rows {format_rows(bad)}")
    if np.any(np.all(a == -np.inf, axis=1)):
        raise ValueError("lpd: a point has zero density under every law; the mixture cannot score it")
    return a


def stacking_weights(lpd: np.ndarray) -> np.ndarray:
    """Stacking weights of ``K`` predictive distributions from their pointwise log predictive densities ``lpd``
    (points x laws): ``argmax_w sum_i log sum_k w_k exp(lpd_ik)`` over the simplex (Yao et al. 2018, eq. 4).

    The objective is concave in ``w``; it is maximised by L-BFGS over ``w = softmax(z)`` (``z_K = 0``) with
    the exact gradient, from equal weights, each row's densities divided by its largest (which does not
    move the maximum). One law: ``[1.0]``.

    >>> stacking_weights(np.log([[0.9, 0.1], [0.8, 0.2], [0.9, 0.3]])).round(2)
    array([1., 0.])
    """
    from scipy.optimize import minimize
    from scipy.special import softmax

    a = _check_lpd(lpd)
    K = a.shape[1]
    if K == 1:
        return np.ones(1)
    p = np.exp(a - a.max(axis=1, keepdims=True))          # each row's best law has density 1
    n = a.shape[0]

    def neg(z: np.ndarray) -> tuple[float, np.ndarray]:
        w = softmax(np.append(z, 0.0))
        m = p @ w                                            # mixture density per point, > 0
        g_w = -(p / m[:, None]).sum(axis=0) / n              # d(-mean log m)/dw
        g_z = w * (g_w - w @ g_w)                            # chain rule through the softmax
        return -float(np.mean(np.log(m))), g_z[:-1]

    res = minimize(neg, np.zeros(K - 1), jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-10,
                                                                               "ftol": 1e-15})
    w = softmax(np.append(res.x, 0.0))
    return w / w.sum()


def pseudo_bma_weights(lpd: np.ndarray, *, bootstrap: bool = True, n_boot: int = 1000,
                       seed: int | None = 0) -> np.ndarray:
    """Pseudo-BMA weights ``w_k ∝ exp(elpd_k)``, ``elpd_k = sum_i lpd_ik`` (points x laws); with ``bootstrap``
    (pseudo-BMA+, Yao et al. 2018, section 3.3) averaged over ``n_boot`` Bayesian-bootstrap reweightings,
    ``elpd_k^b = n sum_i a_i^b lpd_ik``, ``a^b ~ Dirichlet(1, ..., 1)`` (seeded: the same seed, the same weights).

    >>> pseudo_bma_weights(np.log([[0.5, 0.25]]), bootstrap=False).round(3)
    array([0.667, 0.333])
    """
    from scipy.special import softmax

    a = _check_lpd(lpd)
    if not bootstrap:
        return softmax(a.sum(axis=0))
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    n = a.shape[0]
    alpha = np.random.default_rng(seed).dirichlet(np.ones(n), size=n_boot)      # n_boot x points
    finite = np.where(np.isfinite(a), a, -1e300)
    z = n * alpha @ finite                                                       # n_boot x laws
    return softmax(z, axis=1).mean(axis=0)


def _weights(lpd: np.ndarray, method: str, seed: int, keep: np.ndarray | None = None) -> np.ndarray:
    """The weights of the laws (columns of ``lpd``) in ``keep`` (a mask; default all); the others get 0."""
    keep = np.ones(lpd.shape[1], dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    w = np.zeros(lpd.shape[1])
    sub = lpd[:, keep]
    w[keep] = stacking_weights(sub) if method == "stacking" else \
        pseudo_bma_weights(sub, bootstrap=method == "pseudo-bma+", seed=seed)
    return w


# ---- leave-future-out splits ----------------------------------------------------------------------------------
def _order_values(table: pd.DataFrame, order_by: str) -> np.ndarray:
    if not isinstance(order_by, str) or order_by not in table.columns:
        raise ConfigError(f"order_by: no column {order_by!r} in the runs; their columns are "
                          f"{', '.join(map(str, table.columns))}")
    x = pd.to_numeric(table[order_by], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(x))
    if len(bad):
        raise DataError(f"order_by column {order_by!r} must be a finite number on every run; not at rows "
                        f"{format_rows(bad)}")
    return x


def lfo_splits(table: pd.DataFrame, order_by: str, cuts: int | Sequence[float] = 3, *,
               scored: float = 0.3) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """The leave-future-out splits along ``order_by``: a list of ``(cut, train rows, scored rows)`` (row
    positions), training on ``x < cut`` and scoring ``cut <= x < next cut`` (the last: ``x >= cut``).

    ``cuts``: the cut values, or their number ``J``: the runs with the largest ``x`` are scored, about a
    fraction ``scored`` of them, in ``J`` blocks of at least ``scored * n / J`` runs each, filled from the largest
    ``x`` down; runs with the same ``x`` stay in one block (IsoFLOP budgets: one budget per block when each
    budget holds that many runs).
    A cut that scores no run, or leaves no run to fit: a DataError naming it.
    """
    x = _order_values(table, order_by)
    n = len(x)
    if isinstance(cuts, int | np.integer) and not isinstance(cuts, bool):
        J = int(cuts)
        if J < 1:
            raise ConfigError(f"cuts must be a positive number of cuts or a list of cut values, got {cuts!r}")
        if not 0 < scored < 1:
            raise ConfigError(f"scored must be a fraction in (0, 1), got {scored!r}")
        values = np.unique(x)[::-1]                                  # the largest first
        if len(values) < 2:
            raise DataError(f"order_by column {order_by!r} has one value ({values[0]:g}); nothing to order by")
        counts = np.array([np.sum(x == v) for v in values])
        size = max(scored * n / J, 1.0)                              # runs per block, about
        cutv: list[float] = []
        i = 0
        for _ in range(J):                                           # from the top down, whole values per block
            block = 0
            while i < len(values) - 1 and block < size:              # the smallest value is never scored
                block += counts[i]
                i += 1
            if block == 0:
                raise DataError(f"order_by column {order_by!r}: {J} cuts need {J + 1} distinct values (one "
                                f"block each and runs below the lowest cut to fit), found {len(values)}; use "
                                "fewer cuts")
            cutv.append(float(values[i - 1]))
        cutv.sort()
    else:
        try:
            cutv = sorted(float(c) for c in cuts)
        except (TypeError, ValueError):
            raise ConfigError(f"cuts must be a positive number of cuts or a list of cut values, got {cuts!r}") \
                from None
        if not cutv or not np.all(np.isfinite(cutv)) or len(set(cutv)) < len(cutv):
            raise ConfigError(f"cuts must be distinct finite values, got {cuts!r}")
    rows = np.arange(n)
    out = []
    for j, c in enumerate(cutv):
        hi = cutv[j + 1] if j + 1 < len(cutv) else np.inf
        train, test = rows[x < c], rows[(x >= c) & (x < hi)]
        if len(test) == 0:
            raise DataError(f"cut {order_by} >= {c:.4g} scores no run (the runs' {order_by} spans "
                            f"[{x.min():.4g}, {x.max():.4g}])")
        if len(train) == 0:
            raise DataError(f"cut {order_by} >= {c:.4g} leaves no run to fit (the smallest {order_by} is "
                            f"{x.min():.4g})")
        out.append((float(c), train, test))
    return out


# ---- scores ---------------------------------------------------------------------------------------------------
def _specs(models) -> dict[str, Any]:
    from bayes_scaling.inference.fit import _as_spec

    if isinstance(models, str | PathLike | dict) or not isinstance(models, Sequence | dict):
        raise ConfigError("stacking needs a list of at least two laws (built-in names, spec files or LawSpecs), "
                          f"got {models!r}")
    specs = [_as_spec(m) for m in models]
    if len(specs) < 2:
        raise ConfigError(f"stacking needs at least two laws to weigh; got one ({specs[0].name if specs else ''})"
                          " -- fit a single law with bs.fit")
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"law {', '.join(map(repr, dup))} given more than once; give each law once (a spec "
                          "file with its own [law] name to stack variants)")
    targets = {s.name: s.target for s in specs}
    if len(set(targets.values())) > 1:
        raise ConfigError("the laws predict different targets (" + ", ".join(f"{k} -> {v}" for k, v in
                          targets.items()) + "); stacking mixes predictive distributions of one target")
    return dict(zip(names, specs, strict=True))


def _check_runs(table: pd.DataFrame, specs: dict[str, Any]) -> None:
    for name, s in specs.items():
        missing = [c for c in dict.fromkeys([*s.inputs, *s.groups, s.target]) if c not in table.columns]
        if missing:
            raise DataError(f"law {name!r} needs column(s) {', '.join(missing)}; the runs' columns are "
                            f"{', '.join(map(str, table.columns))}")
    target = next(iter(specs.values())).target
    y = pd.to_numeric(table[target], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~(np.isfinite(y) & (y > 0)))
    if len(bad):
        raise DataError(f"column {target!r} must be a finite number > 0 on every run (the scores are on "
                        f"log {target}); not at rows {format_rows(bad)}")


def _n_free(spec) -> int:
    return sum(1 for p in spec.parameters.values() if p.fixed is None)


def _flat(fit, table: pd.DataFrame, kind: str, seed: int, discrepancy) -> np.ndarray:
    """Predictive draws of the target at ``table``'s rows, samples x rows."""
    ds = fit.predict(table, kind=kind, seed=seed, discrepancy=discrepancy)
    v = ds[fit.spec.target].values
    return v.reshape(-1, v.shape[-1])


def _log_density(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log predictive density of ``log y`` from the draws of ``y`` (samples x points): the backtests' kernel
    density (:func:`~bayes_scaling.analysis.backtest.log_density_draws`) of ``log(draws)``; a draw that is not a
    finite positive number (an overflow of a heavy-tailed noise) puts its mass away from every finite ``y``:
    a point's density is the share of finite draws times the kernel density of those."""
    from bayes_scaling.analysis.backtest import log_density_draws

    with np.errstate(all="ignore"):
        x = np.log(np.asarray(draws, dtype=float))
        ly = np.log(np.asarray(y, dtype=float))
    ok = np.isfinite(x)
    if ok.all():
        return log_density_draws(x, ly)
    out = np.empty(x.shape[1])
    for j in range(x.shape[1]):
        xs = x[ok[:, j], j]
        out[j] = (log_density_draws(xs[:, None], ly[[j]])[0] + np.log(len(xs) / len(x))) if len(xs) > 1 \
            else -np.inf
    return out


def _fit_kwargs(settings: dict, seed: int) -> dict:
    return dict(seed=seed, draws=settings["draws"], tune=settings["tune"], chains=settings["chains"],
                backend=settings["backend"], progressbar=False, warn=False, log_likelihood=False)


def _fit(table: pd.DataFrame, spec, name: str, where: str, settings: dict, seed: int, **extra):
    import warnings

    from bayes_scaling.inference.fit import fit as fit_law

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fit_law(table, spec, **_fit_kwargs(settings, seed), **extra)
        except (DataError, ConfigError) as exc:
            raise type(exc)(f"law {name!r} on {where}: {exc}") from None


def _diagnostics(fit) -> dict[str, float]:
    from bayes_scaling.analysis.backtest import fit_diagnostics

    return fit_diagnostics(fit)


def _converged(d: dict, rhat_limit: float) -> bool:
    return bool(np.isfinite(d["rhat_max"]) and d["rhat_max"] <= rhat_limit and d["divergences"] == 0)


def _fit_converged(table: pd.DataFrame, spec, name: str, where: str, settings: dict, seed: int,
                   rhat_limit: float) -> tuple[Any, dict]:
    """Fit; if it has not converged (R-hat > ``rhat_limit`` or divergences), fit again with :data:`SAFER`
    settings (another seed). Returns the fit kept (the second, if run) and its diagnostics, with ``refit`` and
    ``converged``."""
    f = _fit(table, spec, name, where, settings, seed)
    d = _diagnostics(f)
    if _converged(d, rhat_limit):
        return f, {**d, "refit": False, "converged": True}
    safer = {**settings, "tune": max(SAFER["factor"] * settings["tune"], SAFER["tune_min"]),
             "draws": SAFER["factor"] * settings["draws"]}
    f = _fit(table, spec, name, where, safer, seed + 7919, target_accept=SAFER["target_accept"])
    d = _diagnostics(f)
    return f, {**d, "refit": True, "converged": _converged(d, rhat_limit)}


def lfo_scores(runs: pd.DataFrame | str | PathLike, models: Sequence, *, order_by: str = "C",
               cuts: int | Sequence[float] = 3, scored: float = 0.3, seed: int = 0, draws: int = 500,
               tune: int = 500, chains: int = 2, backend: str = "auto",
               discrepancy: float | None = None,
               rhat_limit: float = RHAT_LIMIT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave-future-out log scores of each law (module docstring): ``(points, fits)``, ``points`` one row per
    scored run with its cut, ``order_by`` value, target and one ``lpd`` column per law (``lpd_<law>``), ``fits``
    one row per fit with its convergence (``rhat_max``, ``ess_bulk_min``, ``divergences``; ``refit``: fitted
    again with :data:`SAFER` settings, ``converged``: R-hat <= ``rhat_limit`` and no divergences)."""
    from bayes_scaling.data.tables import read_table

    specs = _specs(models)
    table = read_table(runs, "runs").reset_index(drop=True)
    _check_runs(table, specs)
    splits = lfo_splits(table, order_by, cuts, scored=scored)
    target = next(iter(specs.values())).target
    for c, train, _ in splits:                   # every fit possible, checked before the first one
        for name, s in specs.items():
            need = _n_free(s) + 1
            if len(train) < need:
                raise DataError(f"cut {order_by} >= {c:.4g} leaves {len(train)} run(s) to fit law {name!r}, "
                                f"which has {_n_free(s)} free parameters: it needs at least {need} (fewer cuts, "
                                "a smaller 'scored' fraction, or more runs)")
    settings = dict(draws=draws, tune=tune, chains=chains, backend=backend)
    frames, fits = [], []
    for j, (c, train, test) in enumerate(splits):
        tr, te = table.iloc[train].reset_index(drop=True), table.iloc[test].reset_index(drop=True)
        y = te[target].to_numpy(dtype=float)
        frame = pd.DataFrame({"cut": c, "row": test, order_by: te[order_by].to_numpy(), target: y})
        for k, (name, s) in enumerate(specs.items()):
            f, d = _fit_converged(tr, s, name, f"the runs with {order_by} < {c:.4g}", settings,
                                  seed + 1000 * j + k, rhat_limit)
            pred = _flat(f, te, "observation", seed + 1000 * j + k + 500, discrepancy)
            frame[f"lpd_{name}"] = _log_density(pred, y)
            fits.append({"law": name, "cut": c, "n_train": len(tr), "n_scored": len(te), **d})
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), pd.DataFrame(fits)


# ---- the result -------------------------------------------------------------------------------------------------
@dataclass
class Stack:
    """Laws stacked on leave-future-out scores: ``weights`` (law -> weight), ``points`` (the scored runs' log
    predictive densities per law), ``fits`` (each law fitted on all runs), and the settings in ``info``."""

    weights: pd.Series
    points: pd.DataFrame
    fits: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    #: the convergence of every fit (the LFO fits and the final ones, ``cut`` NaN)
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the laws left out of the weights (weight 0), with the reason
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def laws(self) -> list[str]:
        return list(self.weights.index)

    @property
    def lpd(self) -> np.ndarray:
        """The leave-future-out log predictive densities, scored runs x laws."""
        return self.points[[f"lpd_{k}" for k in self.laws]].to_numpy(dtype=float)

    @property
    def table(self) -> pd.DataFrame:
        """Per law: the weight used, the stacking and pseudo-BMA+ weights (over the laws not excluded), the
        number of scored runs, the mean LFO log score and its sum (``elpd_lfo``), the worst convergence of its
        fits (``converged``: every fit, after a refit if one was needed), and ``excluded``: why the law got no
        weight ("" if weighed); a last row ``stack``: the mixture's mean log score over the same runs (in-sample
        for the weights: optimistic)."""
        from scipy.special import logsumexp

        lpd = self.lpd
        keep = np.array([k not in self.excluded for k in self.laws])
        stk = _weights(lpd, "stacking", 0, keep)
        bma = _weights(lpd, "pseudo-bma+", self.info.get("seed", 0), keep)
        d = self.diagnostics
        rows = []
        for k, name in enumerate(self.laws):
            g = d[d["law"] == name] if len(d) else d
            rows.append({"law": name, "weight": float(self.weights[name]), "stacking": float(stk[k]),
                         "pseudo_bma_plus": float(bma[k]), "n_scored": len(lpd), "lpd_mean": float(lpd[:, k].mean()),
                         "elpd_lfo": float(lpd[:, k].sum()),
                         "rhat_max": float(g["rhat_max"].max()) if len(g) else np.nan,
                         "ess_bulk_min": float(g["ess_bulk_min"].min()) if len(g) else np.nan,
                         "divergences": float(g["divergences"].sum()) if len(g) else np.nan,
                         "converged": bool(g["converged"].all()) if "converged" in g else True,
                         "excluded": self.excluded.get(name, "")})
        mix = logsumexp(lpd, axis=1, b=self.weights.to_numpy()[None, :])
        rows.append({"law": "stack", "weight": 1.0, "stacking": np.nan, "pseudo_bma_plus": np.nan,
                     "n_scored": len(lpd), "lpd_mean": float(mix.mean()), "elpd_lfo": float(mix.sum()),
                     "rhat_max": np.nan, "ess_bulk_min": np.nan, "divergences": np.nan,
                     "converged": bool(keep.any()), "excluded": ""})
        return pd.DataFrame(rows)

    def _draws(self, new, kind: str, seed: int | None) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
        from bayes_scaling.data.tables import read_table

        if kind not in ("mean", "observation"):
            raise ValueError(f"kind must be 'mean' or 'observation', got {kind!r}")
        table = read_table(new, "new data").reset_index(drop=True)
        seed = self.info.get("seed", 0) if seed is None else seed
        disc = self.info.get("discrepancy")
        return {k: _flat(self.fits[k], table, kind, seed + 7 * i, disc) for i, k in enumerate(self.laws)}, table

    def mix(self, draws: dict[str, np.ndarray], seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The laws' predictive draws (law -> samples x points) mixed by weight: ``round(w_k S)`` whole draws
        (rows) from law ``k`` (largest remainders; ``S`` the smallest number of draws of a law), chosen at random
        without replacement and shuffled. Returns the mixed draws and the law index of each."""
        seed = self.info.get("seed", 0) if seed is None else seed
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 24]))
        w = self.weights.to_numpy(dtype=float)
        S = min(v.shape[0] for v in draws.values())
        raw = w * S
        n_k = np.floor(raw).astype(int)
        order = np.argsort(-(raw - n_k), kind="stable")
        n_k[order[: S - n_k.sum()]] += 1
        parts, which = [], []
        for k, name in enumerate(self.laws):
            v = draws[name]
            idx = rng.choice(v.shape[0], size=n_k[k], replace=False)
            parts.append(v[idx])
            which.append(np.full(n_k[k], k))
        out, lab = np.concatenate(parts), np.concatenate(which)
        perm = rng.permutation(len(out))
        return out[perm], lab[perm]

    def predict(self, new_data: pd.DataFrame | dict | str | PathLike, kind: str = "observation", *,
                ci_prob: float | None = None, seed: int | None = None):
        """The stacked predictive distribution at ``new_data``, ``p(y) = sum_k w_k p_k(y)``: each law's draws
        (``Fit.predict`` with its discrepancy; ``kind`` ``"observation"``, a new run, or ``"mean"``, the law's
        value) mixed by weight (:meth:`mix`); the same ``seed`` (default: the stack's), the same draws.

        Returns an ``xarray.Dataset`` with the target's draws (``draw``, ``point``; coordinate ``law``: the law
        each draw came from), or with ``ci_prob`` a DataFrame: the columns of ``new_data``, then ``median``,
        ``lo``, ``hi`` of the equal-tailed interval, and each law's own median (``median_<law>``)."""
        import xarray as xr

        from bayes_scaling._numeric import nanquantile

        draws, table = self._draws(new_data, kind, seed)
        mixed, lab = self.mix(draws, seed)
        target = self.info["target"]
        if ci_prob is None:
            da = xr.DataArray(mixed, dims=("draw", "point"), name=target,
                              coords={"draw": np.arange(len(mixed)), "point": np.arange(mixed.shape[1]),
                                      "law": ("draw", np.array(self.laws)[lab])})
            ds = da.to_dataset()
            ds.attrs.update(kind=kind, target=target, weights=str(self.weights.round(4).to_dict()))
            return ds
        if not 0 < ci_prob < 1:
            raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
        lo, med, hi = nanquantile(mixed, [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2], axis=0)
        out = table.copy()
        out["median"], out["lo"], out["hi"] = med, lo, hi
        for name, v in draws.items():
            out[f"median_{name}"] = np.nanmedian(v, axis=0)
        return out

    def score(self, new_data: pd.DataFrame | str | PathLike, *, seed: int | None = None,
              levels: Sequence[float] = (0.5, 0.9)) -> pd.DataFrame:
        """Scores of the predictions of runs whose target is known (held-out runs), one row per run and method
        (each law, and ``stack``): the median's relative error, coverage of the ``levels`` intervals, log
        predictive density of ``log(target)`` and CRPS on it (as the backtests score). The stack's density is
        the mixture of the laws' densities, ``log sum_k w_k p_k``; its median, intervals and CRPS are those of
        the mixed draws (:meth:`predict`). Draws that overflow (not finite) are left out of the CRPS."""
        from scipy.special import logsumexp

        from bayes_scaling.analysis.backtest import crps_draws, interval_scores

        draws, table = self._draws(new_data, "observation", seed)
        target = self.info["target"]
        if target not in table.columns:
            raise DataError(f"new data: scoring needs the target column {target!r}")
        y = pd.to_numeric(table[target], errors="coerce").to_numpy(dtype=float)
        mixed, _ = self.mix(draws, seed)
        frames, dens = [], []
        for name, v in [*draws.items(), ("stack", mixed)]:
            with np.errstate(all="ignore"):
                lpd = _log_density(v, y) if name != "stack" else \
                    logsumexp(np.column_stack(dens), axis=1, b=self.weights.to_numpy()[None, :])
                lv = np.log(v)
                crps = crps_draws(lv, np.log(y)) if np.isfinite(lv).all() else np.array(
                    [crps_draws(lv[np.isfinite(lv[:, j]), j][:, None], np.log(y[[j]]))[0] for j in range(len(y))])
            dens.append(lpd)
            sc = interval_scores(v, y, levels)
            f = pd.DataFrame({"method": name, "row": np.arange(len(y)), target: y, "median": sc["median"],
                              "rel_error": np.abs(sc["median"] - y) / y, "lpd": lpd, "crps": crps})
            for lv in levels:
                tag = f"{100 * lv:g}"
                f[f"cover{tag}"] = sc[f"cover{tag}"].astype(float)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        w = ", ".join(f"{k} {v:.3f}" for k, v in self.weights.items())
        return f"Stack({self.info.get('method')}: {w}; {len(self.points)} runs scored along {self.info.get('order_by')})"


def stack(runs: pd.DataFrame | str | PathLike, models: Sequence, *, order_by: str = "C",
          cuts: int | Sequence[float] = 3, scored: float = 0.3, method: str = "stacking", seed: int = 0,
          draws: int = 500, tune: int = 500, chains: int = 2, backend: str = "auto",
          discrepancy: float | None = None, rhat_limit: float = RHAT_LIMIT,
          exclude_unconverged: bool = True) -> Stack:
    """Stack several laws fitted to the same runs (module docstring): leave-future-out scores along
    ``order_by`` (:func:`lfo_scores`: ``cuts``, ``scored``), weights by ``method`` (``"stacking"``,
    ``"pseudo-bma+"``, ``"pseudo-bma"``), then every law fitted on all runs.

        w = argmax_{w in simplex} sum_i log sum_k w_k p_k(y_i | runs with x < cut(i))

    Args:
        runs: one row per run (every law's inputs, group columns, the target, ``order_by``).
        models: two or more laws predicting the same target: built-in names (``"chinchilla"``, ``"kaplan"``,
            ``"data_constrained"``, ``"m4"``, ...), spec files or :class:`~bayes_scaling.LawSpec` objects.
        order_by: the column the runs are ordered by (the direction of extrapolation).
        discrepancy: ``tau`` of the predictions (``Fit.predict``); None: each spec's own.
        seed, draws, tune, chains, backend: NUTS settings of every fit (``(cuts + 1) x laws`` fits; a fit
            that has not converged is run again with :data:`SAFER` settings).
        rhat_limit: a fit converged if its R-hat <= this and it has no divergent transitions.
        exclude_unconverged: leave a law out of the weights (weight 0, a ConvergenceWarning, the table's
            ``excluded`` column) if any of its fits has not converged after the refit; False: weigh it anyway.

    Returns:
        A :class:`Stack`: ``weights``, ``table``, ``predict(new, kind=..., ci_prob=...)``, ``score(held_out)``.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not (isinstance(rhat_limit, int | float) and np.isfinite(rhat_limit) and rhat_limit >= 1):
        raise ConfigError(f"rhat_limit must be a number >= 1, got {rhat_limit!r}")
    import warnings

    from bayes_scaling.data.tables import read_table
    from bayes_scaling.errors import ConvergenceWarning

    specs = _specs(models)
    table = read_table(runs, "runs").reset_index(drop=True)
    points, diag = lfo_scores(table, list(specs.values()), order_by=order_by, cuts=cuts, scored=scored, seed=seed,
                              draws=draws, tune=tune, chains=chains, backend=backend, discrepancy=discrepancy,
                              rhat_limit=rhat_limit)
    names = list(specs)
    settings = dict(draws=draws, tune=tune, chains=chains, backend=backend)
    fits, rows = {}, []
    for k, (name, s) in enumerate(specs.items()):
        fits[name], d = _fit_converged(table, s, name, "all runs", settings, seed + 100_000 + k, rhat_limit)
        rows.append({"law": name, "cut": np.nan, "n_train": len(table), "n_scored": 0, **d})
    diag = pd.concat([diag, pd.DataFrame(rows)], ignore_index=True)
    reasons = {name: _why_not(diag[diag["law"] == name], order_by, rhat_limit) for name in names}
    reasons = {k: v for k, v in reasons.items() if v}
    keep = np.array([k not in reasons for k in names])
    excluded: dict[str, str] = {}
    if reasons:
        if not exclude_unconverged:
            what = "weighed anyway (exclude_unconverged=False)"
        elif not keep.any():
            what = "no law converged, so all are weighed: treat the weights with care"
            keep[:] = True
        else:
            what = "left out of the weights (exclude_unconverged=False keeps it)"
            excluded = {k: f"{v}; left out" for k, v in reasons.items()}
        if not exclude_unconverged:
            keep[:] = True
        warnings.warn("stacking: " + "; ".join(f"law {k!r}: {v}" for k, v in reasons.items()) + f" -- {what}",
                      ConvergenceWarning, stacklevel=2)
    w = _weights(points[[f"lpd_{k}" for k in names]].to_numpy(dtype=float), method, seed, keep)
    info = {"method": method, "order_by": order_by, "cuts": sorted(points["cut"].unique().tolist()),
            "scored": scored, "seed": seed, "draws": draws, "tune": tune, "chains": chains,
            "backend": next(iter(fits.values())).backend, "discrepancy": discrepancy,
            "target": next(iter(specs.values())).target, "n_runs": len(table), "rhat_limit": rhat_limit,
            "exclude_unconverged": exclude_unconverged}
    return Stack(pd.Series(w, index=names, name="weight"), points, fits, info, diag, excluded)


def _why_not(d: pd.DataFrame, order_by: str, rhat_limit: float) -> str:
    """Why a law's fits (rows of the diagnostics) have not converged, or "" if they all have."""
    bad = d[~d["converged"].astype(bool)]
    if bad.empty:
        return ""
    where = ", ".join("all runs" if not np.isfinite(c) else f"{order_by} < {c:.4g}" for c in bad["cut"])
    what = [f"R-hat {bad['rhat_max'].max():.3f} > {rhat_limit:g}"] if (bad["rhat_max"] > rhat_limit).any() else []
    if bad["divergences"].sum() > 0:
        what.append(f"{int(bad['divergences'].sum())} divergences")
    return f"not converged after a refit with safer settings ({', '.join(what)}; fits on {where})"
