"""The compute-optimal exponent ``a`` (``N_opt ~ C**a``) by two routes, with honest intervals.

**Route 2, IsoFLOP minima** (Hoffmann et al. 2022, approach 2), done the Bayesian way. At each compute budget
``C`` the runs trace an IsoFLOP curve of loss against model size; near its minimum it is a parabola in
``log N`` (:func:`bayes_scaling.laws.formulas.isoflop_parabola`)::

    log L_i = log_L_opt[c] + k[c] * (log N_i - log_N_opt[c])**2 + eps_i,    eps_i ~ Normal(0, sigma)

fitted by NUTS to the runs within ``window`` decades of N of the budget's lowest observed loss, all budgets in
one PyMC model (one noise scale ``sigma``). Then the vertices follow a power law in C::

    log_N_opt[c] ~ Normal(a * (log C_c - mean log C) + b, tau)        (natural logs)

- :func:`isoflop_optima`: the vertices alone (a weak prior per budget): posterior draws of ``N_opt(C)`` per
  budget, with their means and standard deviations;
- :func:`compute_optimal_exponent` (``method="joint"``, the default): the parabolas and the power law in one
  model, so each minimum's uncertainty (few points, a flat curve) and the scatter ``tau`` of the minima about
  the power law both widen the interval of ``a``; ``method="drawwise"``: a least-squares line through each
  posterior draw of the per-budget minima (a posterior analogue of Porian et al.'s bootstrap; no scatter term).

**Route 1, a fitted loss law**: :func:`law_exponent` takes a law-spec fit of ``L(N, D)`` (e.g.
``bs.fit(runs, "chinchilla")``) and, per posterior draw, finds ``N_opt(C) = argmin_N L(N, C / (6N))`` at the
smallest and largest budget with the vectorised search of :mod:`bayes_scaling.analysis.compute`; ``a`` is the
slope of ``log N_opt`` between them. For the Chinchilla law it is ``alpha_D / (alpha_N + alpha_D)`` at every C
(:func:`bayes_scaling.laws.formulas.chinchilla_optimal_exponent`).

Porian et al. (2024) estimate ``a`` by approach 2 with an Akima interpolation of each IsoFLOP curve instead of a
parabola, and a seed-noise bootstrap of the minima (their ``published_fits.csv``; README, "Compute-optimal
exponent").

>>> res = compute_optimal_exponent(runs, seed=1)   # runs: columns N, C, loss     # doctest: +SKIP
>>> res.exponent(ci_prob=0.95)           # {'median': 0.49, 'lo': 0.48, 'hi': 0.51, ...}   # doctest: +SKIP
>>> res.optima                           # per budget: N_opt median, interval, log mean, sd  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.errors import DataError, format_rows
from bayes_scaling.laws import formulas as laws

__all__ = ["IsoflopFit", "isoflop_optima", "compute_optimal_exponent", "law_exponent", "isoflop_slices",
           "DEFAULT_WINDOW", "MIN_POINTS"]

#: decades of N on each side of a budget's lowest observed loss that the parabola is fitted to
DEFAULT_WINDOW = 0.5
#: fewest runs a budget needs inside its window: a parabola has 3 parameters, and the noise scale is shared by
#: all budgets, so the misfit is measured on the others
MIN_POINTS = 3
#: priors: a ~ Normal(0.5, 0.5); tau ~ HalfNormal(0.5) (natural log of N); sigma ~ HalfNormal(0.05) (log loss)
PRIORS = {"a": (0.5, 0.5), "tau": 0.5, "sigma": 0.05, "b_sigma": 3.0, "vertex_sigma": 1.0, "level_sigma": 0.5,
          "k_sigma": 2.0}


# ---- the slices ------------------------------------------------------------------------------------------


def _table(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"IsoFLOP data must be a DataFrame with columns N, C, loss; got {type(data).__name__}")
    missing = [c for c in ("N", "C", "loss") if c not in data.columns]
    if missing:
        raise DataError(f"IsoFLOP data: missing column(s) {', '.join(missing)} (expected N, C and loss; one row "
                        f"per run; has {', '.join(map(str, data.columns))})")
    if len(data) == 0:
        raise DataError("IsoFLOP data: the table is empty")
    out = data.reset_index(drop=True).copy()
    for c in ("N", "C", "loss"):
        v = pd.to_numeric(out[c], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if len(bad):
            raise DataError(f"IsoFLOP data: column {c} must be finite and > 0; rows {format_rows(bad)} are not "
                            f"(e.g. {out[c].iloc[bad[0]]!r})")
        out[c] = v
    return out


def isoflop_slices(data: pd.DataFrame, *, window: float = DEFAULT_WINDOW, min_points: int = MIN_POINTS,
                   on_edge: str = "drop", on_sparse: str = "raise") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Which runs each budget's parabola is fitted to: the runs within ``window`` decades of N of the budget's
    lowest observed loss (several runs at one N: the lowest loss counts, as Porian et al. do).

    Returns ``(runs, budgets)``: the data with columns ``budget`` (index into ``budgets``, -1 when not used)
    and ``used``; one row per budget kept: ``C``, ``n_points``, ``N_lo``, ``N_hi`` (the window's runs),
    ``N_min_obs`` (the lowest observed loss). A budget whose lowest loss is at its smallest or largest N has no
    interior minimum: with ``on_edge="drop"`` it is left out with a warning naming it, with ``"raise"`` an
    error. A budget with fewer than ``min_points`` runs in its window, or none on one side of its lowest loss,
    is an error naming it and its rows (``on_sparse="raise"``), or left out with a warning (``"drop"``).

    >>> runs = pd.DataFrame({"C": [1e18] * 5 + [4e18] * 5, "N": [1e7, 3e7, 1e8, 3e8, 1e9] * 2,
    ...                      "loss": [3.9, 3.6, 3.5, 3.6, 4.0, 3.6, 3.4, 3.3, 3.25, 3.4]})
    >>> isoflop_slices(runs, window=1.0)[1][["C", "n_points", "N_min_obs"]].to_dict("records")
    [{'C': 1e+18, 'n_points': 5, 'N_min_obs': 100000000.0}, {'C': 4e+18, 'n_points': 4, 'N_min_obs': 300000000.0}]
    """
    for name, value in (("on_edge", on_edge), ("on_sparse", on_sparse)):
        if value not in ("drop", "raise"):
            raise ValueError(f"{name} must be 'drop' or 'raise', got {value!r}")
    if not (np.isfinite(window) and window > 0):
        raise ValueError(f"window must be a positive number of decades, got {window!r}")
    if isinstance(min_points, bool) or not isinstance(min_points, (int, np.integer)) or min_points < 3:
        raise ValueError(f"min_points must be an integer >= 3 (a parabola has 3 parameters), got {min_points!r}")
    runs = _table(data)
    runs["budget"], runs["used"] = -1, False
    rows, edges, sparse = [], [], []
    for C, g in runs.groupby("C", sort=True):
        best = g.loc[g.groupby("N")["loss"].idxmin()].sort_values("N")   # one run per N: the lowest loss
        i = int(np.argmin(best["loss"].to_numpy()))
        if i == 0 or i == len(best) - 1:
            where = "smallest" if i == 0 else "largest"
            edges.append(f"C = {C:g} (lowest loss {best['loss'].iloc[i]:.4g} at its {where} N = "
                         f"{best['N'].iloc[i]:.3g}, rows {format_rows(best.index)})")
            continue
        n_min = float(best["N"].iloc[i])
        inside = best[np.abs(np.log10(best["N"] / n_min)) <= window + 1e-9]
        below, above = (inside["N"] < n_min).sum(), (inside["N"] > n_min).sum()
        if len(inside) < min_points or not (below and above):
            msg = (f"budget C = {C:g} has {len(inside)} run(s) within {window:g} decades of N = {n_min:.3g}, its "
                   f"lowest loss ({below} below, {above} above; rows {format_rows(inside.index)}); a parabola "
                   f"needs at least {min_points} with runs on both sides")
            if on_sparse == "raise":
                raise DataError(f"IsoFLOP data: {msg}: widen the window, add runs or pass on_sparse='drop'")
            sparse.append(msg)
            continue
        runs.loc[inside.index, "budget"] = len(rows)
        runs.loc[inside.index, "used"] = True
        rows.append({"C": float(C), "n_points": len(inside), "N_lo": float(inside["N"].min()),
                     "N_hi": float(inside["N"].max()), "N_min_obs": n_min,
                     "loss_min_obs": float(best["loss"].iloc[i])})
    if edges:
        msg = "no interior minimum (the loss still falls at the edge of the measured sizes): " + "; ".join(edges)
        if on_edge == "raise":
            raise DataError(f"IsoFLOP data: {len(edges)} budget(s) have {msg}")
        from bayes_scaling.analysis.compute import EdgeWarning

        warnings.warn(f"isoflop: {len(edges)} budget(s) left out, {msg}", EdgeWarning, stacklevel=3)
    if sparse:
        from bayes_scaling.analysis.compute import EdgeWarning

        warnings.warn(f"isoflop: {len(sparse)} budget(s) left out: " + "; ".join(sparse), EdgeWarning, stacklevel=3)
    if len(rows) < 2:
        raise DataError(f"IsoFLOP data: {len(rows)} budget(s) with an interior minimum; the exponent needs at "
                        f"least 2 (budgets in the data: {runs['C'].nunique()})")
    return runs, pd.DataFrame(rows)


# ---- the model -------------------------------------------------------------------------------------------


def _arrays(runs: pd.DataFrame, budgets: pd.DataFrame) -> dict[str, np.ndarray]:
    used = runs[runs["used"]]
    x, y, c = np.log(used["N"].to_numpy()), np.log(used["loss"].to_numpy()), used["budget"].to_numpy()
    B = len(budgets)
    k0 = np.empty(B)
    for j in range(B):  # least-squares curvature of each slice, the centre of its prior (data-scaled prior)
        m = c == j
        coef = np.polyfit(x[m], y[m], 2)[0]
        k0[j] = coef if coef > 0 else 0.05
    lc = np.log(budgets["C"].to_numpy())
    u0 = np.log(budgets["N_min_obs"].to_numpy())
    w = np.array([np.mean((x[c == j] - u0[j]) ** 2) for j in range(B)])
    return {"log_N": x, "log_L": y, "budget": c.astype("int64"), "log_C_c": lc - lc.mean(), "u0": u0,
            "m0": np.log(budgets["loss_min_obs"].to_numpy()), "log_k0": np.log(k0), "w": w}


def _build(arrays: dict[str, np.ndarray], pooled: bool):
    import pymc as pm

    B = len(arrays["u0"])
    coords = {"C": np.arange(B), "row": np.arange(len(arrays["log_N"]))}
    with pm.Model(coords=coords) as model:
        x = pm.Data("log_N", arrays["log_N"], dims="row")
        y = pm.Data("log_L_obs", arrays["log_L"], dims="row")
        c = pm.Data("budget", arrays["budget"], dims="row")
        lc = pm.Data("log_C_c", arrays["log_C_c"], dims="C")
        u0 = pm.Data("u0", arrays["u0"], dims="C")
        m0 = pm.Data("m0", arrays["m0"], dims="C")
        log_k0 = pm.Data("log_k0", arrays["log_k0"], dims="C")
        w = pm.Data("w", arrays["w"], dims="C")
        if pooled:
            a = pm.Normal("a", *PRIORS["a"])
            b = pm.Normal("b", u0.mean(), PRIORS["b_sigma"])
            tau = pm.HalfNormal("tau", PRIORS["tau"])
            z = pm.Normal("log_N_opt_z", 0.0, 1.0, dims="C")   # non-centred: tau is often near 0
            u = pm.Deterministic("log_N_opt", a * lc + b + tau * z, dims="C")
        else:
            u = pm.Normal("log_N_opt", u0, PRIORS["vertex_sigma"], dims="C")
        k = pm.LogNormal("k", log_k0, PRIORS["k_sigma"], dims="C")
        # sampled: the slice's mean level over its runs, log_L_opt + k w (w: the runs' mean squared distance in
        # log N from the lowest observed loss), which the data pin nearly independently of k
        level = pm.Normal("level", m0 + pm.math.exp(log_k0) * w, PRIORS["level_sigma"], dims="C")
        m = pm.Deterministic("log_L_opt", level - k * w, dims="C")
        sigma = pm.HalfNormal("sigma", PRIORS["sigma"])
        mu = laws.isoflop_parabola(x, m[c], k[c], u[c])
        pm.Normal("log_L", mu=mu, sigma=sigma, observed=y, dims="row")
    return model


def _sample(arrays, pooled: bool, *, seed, draws, tune, chains, backend, progressbar):
    from bayes_scaling.inference.sampling import (
        DEFAULT_TARGET_ACCEPT,
        cached_sampler,
        resolve_backend,
        sample_nuts,
        sampler_settings,
    )

    seed, progressbar = sampler_settings(draws, tune, chains, seed, progressbar)
    ran = resolve_backend(backend)
    B, n = len(arrays["u0"]), len(arrays["log_N"])
    values = {"log_N": arrays["log_N"], "log_L_obs": arrays["log_L"], "budget": arrays["budget"],
              **{k: arrays[k] for k in ("log_C_c", "u0", "m0", "log_k0", "w")}}
    compiled = None
    if ran == "nutpie":
        from bayes_scaling.inference.compiled import CompiledSampler

        compiled = cached_sampler(("isoflop", bool(pooled), B),
                                  lambda: CompiledSampler(_build(arrays, pooled), log_likelihood=False),
                                  lambda s: s.set_data(values, coords={"row": np.arange(n)}))
        model = compiled.model
    else:
        model = _build(arrays, pooled)
    if compiled is not None:  # nutpie with a low-rank mass matrix: the vertices, levels and curvatures correlate
        tree = compiled.sample(draws=draws, tune=tune, chains=chains, seed=seed,
                               target_accept=DEFAULT_TARGET_ACCEPT[ran], progressbar=progressbar,
                               cores=min(os.cpu_count() or 1, chains), adaptation="low_rank")
        tree.attrs["backend"] = ran
    else:
        tree = sample_nuts(model, draws=draws, tune=tune, chains=chains, seed=seed, backend=ran,
                           target_accept=DEFAULT_TARGET_ACCEPT[ran], progressbar=progressbar, log_likelihood=False)
    tree.attrs.update(seed=int(seed))
    return tree


# ---- the result ------------------------------------------------------------------------------------------


@dataclass
class IsoflopFit:
    """Posterior of IsoFLOP minima (and, for :func:`compute_optimal_exponent`, of the exponent ``a``).

    ``runs``: the data with ``budget``/``used`` (which runs each parabola saw); ``budgets``: the budgets kept;
    ``posterior``: draws of ``log_N_opt``, ``log_L_opt``, ``k`` per budget (dim ``C``), ``sigma``, and ``a``,
    ``b``, ``tau`` (joint) or ``a``, ``b`` (draw-wise); ``method``: ``"optima"``, ``"joint"`` or ``"drawwise"``.
    """

    runs: pd.DataFrame
    budgets: pd.DataFrame
    posterior: xr.Dataset
    method: str
    window: float
    tree: xr.DataTree | None = field(default=None, repr=False)

    @property
    def C(self) -> np.ndarray:
        return self.budgets["C"].to_numpy()

    def _flat(self, name: str) -> np.ndarray:
        da = self.posterior[name]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        return da.transpose("chain", "draw", *other).values.reshape(-1, *[da.sizes[d] for d in other])

    @property
    def diagnostics(self):
        """R-hat, ESS and divergences of the NUTS run (see :func:`bayes_scaling.inference.sampling.diagnose`)."""
        from bayes_scaling.inference.sampling import diagnose

        return diagnose(self.tree, ["log_N_opt", "log_L_opt", "k", "sigma", "a", "b", "tau"])

    @property
    def optima(self) -> pd.DataFrame:
        """One row per budget: ``C``, ``n_points``, ``N_opt`` (median) with its 90% interval ``N_opt_lo``,
        ``N_opt_hi``, ``log_N_opt_mean``/``log_N_opt_sd`` (natural log), ``loss_opt`` (median), and
        ``p_outside``: the share of draws whose vertex lies outside the runs the parabola saw."""
        u = self._flat("log_N_opt")
        lo, med, hi = np.quantile(u, [0.05, 0.5, 0.95], axis=0)
        out = self.budgets[["C", "n_points"]].copy()
        out["N_opt"], out["N_opt_lo"], out["N_opt_hi"] = np.exp(med), np.exp(lo), np.exp(hi)
        out["log_N_opt_mean"], out["log_N_opt_sd"] = u.mean(axis=0), u.std(axis=0, ddof=1)
        out["loss_opt"] = np.exp(np.median(self._flat("log_L_opt"), axis=0))
        out["p_outside"] = ((u < np.log(self.budgets["N_lo"].to_numpy()))
                            | (u > np.log(self.budgets["N_hi"].to_numpy()))).mean(axis=0)
        return out

    def exponent(self, ci_prob: float = 0.9) -> dict[str, float]:
        """``a`` of ``N_opt ~ C**a``: median, equal-tailed ``ci_prob`` interval (``lo``, ``hi``), mean, sd."""
        if "a" not in self.posterior:
            raise ValueError("this fit has the minima only; use compute_optimal_exponent for the exponent")
        if not 0 < ci_prob < 1:
            raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
        a = self._flat("a")
        lo, med, hi = np.quantile(a, [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2])
        return {"median": float(med), "lo": float(lo), "hi": float(hi), "mean": float(a.mean()),
                "sd": float(a.std(ddof=1))}

    def curves(self, n: int = 60, ci_prob: float = 0.9) -> pd.DataFrame:
        """The fitted parabolas for plots: per budget, ``n`` sizes over the window's runs, the loss's posterior
        median and equal-tailed ``ci_prob`` interval (``median``, ``lo``, ``hi``); columns ``C``, ``N``."""
        u, m, k = (self._flat(v) for v in ("log_N_opt", "log_L_opt", "k"))
        q = [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2]
        parts = []
        for j, row in self.budgets.iterrows():
            N = np.geomspace(row["N_lo"], row["N_hi"], n)
            L = np.exp(laws.isoflop_parabola(np.log(N)[None, :], m[:, j, None], k[:, j, None], u[:, j, None]))
            lo, med, hi = np.quantile(L, q, axis=0)
            parts.append(pd.DataFrame({"C": row["C"], "N": N, "median": med, "lo": lo, "hi": hi}))
        return pd.concat(parts, ignore_index=True)

    def __repr__(self) -> str:
        s = f"IsoflopFit({self.method}, {len(self.budgets)} budgets, {int(self.runs['used'].sum())} runs"
        if "a" in self.posterior:
            e = self.exponent()
            s += f", a = {e['median']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}] (90%)"
        return s + ")"


def _result(tree, runs, budgets, method, window) -> IsoflopFit:
    post = tree["posterior"].to_dataset()
    post = post.assign_coords(C=budgets["C"].to_numpy())
    return IsoflopFit(runs, budgets, post, method, window, tree)


def isoflop_optima(data: pd.DataFrame, *, window: float = DEFAULT_WINDOW, min_points: int = MIN_POINTS,
                   on_edge: str = "drop", on_sparse: str = "raise", seed: int | None = None, draws: int = 1000,
                   tune: int = 1000, chains: int = 4, backend: str = "auto", progressbar: bool | None = None,
                   warn: bool = True) -> IsoflopFit:
    """Posterior of each budget's compute-optimal size: a parabola in ``log N`` per IsoFLOP slice
    (``log L = log_L_opt + k (log N - log_N_opt)**2``, Normal noise on log loss, one ``sigma``), fitted by NUTS
    to the runs within ``window`` decades of the lowest observed loss (:func:`isoflop_slices`); each vertex has a
    weak prior ``Normal(log N_min_obs, 1)`` of its own.

    ``data``: one row per run, columns ``N``, ``C`` (the budget, FLOPs) and ``loss``. Returns an
    :class:`IsoflopFit` whose ``optima`` table gives ``N_opt`` per budget with its interval.

    >>> opt = isoflop_optima(runs, seed=1)               # doctest: +SKIP
    >>> opt.optima[["C", "N_opt", "N_opt_lo", "N_opt_hi"]]   # doctest: +SKIP
    """
    runs, budgets = isoflop_slices(data, window=window, min_points=min_points, on_edge=on_edge,
                                   on_sparse=on_sparse)
    tree = _sample(_arrays(runs, budgets), False, seed=seed, draws=draws, tune=tune, chains=chains,
                   backend=backend, progressbar=progressbar)
    res = _result(tree, runs, budgets, "optima", window)
    if warn:
        res.diagnostics.warn(stacklevel=2)
    return res


def compute_optimal_exponent(data: pd.DataFrame, *, method: str = "joint", window: float = DEFAULT_WINDOW,
                             min_points: int = MIN_POINTS, on_edge: str = "drop", on_sparse: str = "raise",
                             seed: int | None = None,
                             draws: int = 1000, tune: int = 1000, chains: int = 4, backend: str = "auto",
                             progressbar: bool | None = None, warn: bool = True) -> IsoflopFit:
    """Posterior of the compute-optimal exponent ``a`` in ``N_opt = e^b * (C / C_c)**a`` (``C_c``: the geometric
    mean of the budgets) from IsoFLOP minima (approach 2), each minimum's uncertainty propagated.

    - ``method="joint"``: one model, the parabolas of :func:`isoflop_optima` with their vertices on the power
      law, ``log N_opt[c] ~ Normal(a (log C_c - mean) + b, tau)``; priors ``a ~ Normal(0.5, 0.5)``,
      ``tau ~ HalfNormal(0.5)`` (scatter of the minima about the law, natural log of N).
    - ``method="drawwise"``: :func:`isoflop_optima`, then a least-squares line of ``log N_opt`` on ``log C``
      through each posterior draw (no scatter term: budgets whose minima disagree with the line do not widen it).

    Returns an :class:`IsoflopFit`; ``.exponent(ci_prob)`` gives ``a``.

    >>> res = compute_optimal_exponent(runs, seed=1)       # doctest: +SKIP
    >>> res.exponent(0.95)                                 # doctest: +SKIP
    """
    if method not in ("joint", "drawwise"):
        raise ValueError(f"method must be 'joint' or 'drawwise', got {method!r}")
    kw = dict(seed=seed, draws=draws, tune=tune, chains=chains, backend=backend, progressbar=progressbar)
    runs, budgets = isoflop_slices(data, window=window, min_points=min_points, on_edge=on_edge,
                                   on_sparse=on_sparse)
    if method == "joint":
        tree = _sample(_arrays(runs, budgets), True, **kw)
        res = _result(tree, runs, budgets, "joint", window)
    else:
        tree = _sample(_arrays(runs, budgets), False, **kw)
        res = _result(tree, runs, budgets, "drawwise", window)
        x = np.log(res.C) - np.log(res.C).mean()
        u = res.posterior["log_N_opt"]
        a = (u * xr.DataArray(x, dims="C", coords={"C": res.C})).sum("C") / float(np.sum(x**2))
        res.posterior["a"], res.posterior["b"] = a, u.mean("C")
    if warn:
        res.diagnostics.warn(stacklevel=2)
    return res


# ---- route 1: through a fitted loss law ------------------------------------------------------------------


def law_exponent(fit, C=None) -> xr.Dataset:
    """``a`` of ``N_opt ~ C**a`` implied by a fitted loss law ``L(N, D)`` with ``C = 6 N D``: per posterior draw,
    ``N_opt(C) = argmin_N L(N, C/(6N))`` at the two budgets ``C`` (default: the smallest and largest ``C`` of the
    fit's data, or of ``6 N D``), and ``a = (log N_opt(C_hi) - log N_opt(C_lo)) / (log C_hi - log C_lo)``. For the
    Chinchilla law this is ``alpha_D / (alpha_N + alpha_D)`` whatever the budgets.

    ``fit``: a law-spec fit (:func:`bayes_scaling.fit`) whose formula's inputs are ``N`` and ``D`` and whose
    parameters are shared by all runs. Returns ``a``, ``N_opt`` (dim ``C``) and ``at_edge`` (the search hit
    ``N = 1`` or ``D = 1``), dims ``chain``, ``draw``.

    >>> fit = bs.fit(runs, "chinchilla", seed=1)            # doctest: +SKIP
    >>> law_exponent(fit)["a"].quantile([0.05, 0.5, 0.95])   # doctest: +SKIP
    """
    from bayes_scaling.analysis.compute import N_MIN, _argmin_log, _warn_edge

    spec, post = getattr(fit, "spec", None), getattr(fit, "posterior", None)
    if spec is None or post is None:
        raise TypeError(f"law_exponent needs a law-spec fit (bs.fit); got {type(fit).__name__}")
    if set(spec.inputs) != {"N", "D"}:
        raise ValueError(f"law_exponent needs a law of N and D (C = 6 N D); the law's inputs are "
                         f"{', '.join(spec.inputs)}")
    grouped = [p.name for p in spec.parameters.values() if p.by is not None]
    if grouped:
        raise ValueError(f"law_exponent needs parameters shared by all runs; {', '.join(grouped)} vary by group")
    if C is None:
        data = fit.data
        c = data["C"] if "C" in data else laws.training_compute(data["N"], data["D"])
        C = [float(np.min(c)), float(np.max(c))]
    C = np.asarray(C, dtype=float).ravel()
    if len(C) != 2 or not (np.all(np.isfinite(C)) and np.all(C > 0) and C[0] < C[1]):
        raise ValueError(f"C must be two budgets, low < high, both > 0; got {C.tolist()}")
    S = post.sizes["chain"] * post.sizes["draw"]
    params = {p.name: (np.full(S, p.fixed) if p.fixed is not None else post[p.name].values.reshape(S))
              for p in spec.parameters.values()}
    names = list(params)

    def f(u, C, *values):  # the law at N = e^u, D = C / (6N)
        N = np.exp(u)
        return np.asarray(spec.formula.evaluate({"N": N, "D": laws.data_for_compute(C, N),
                                                 **dict(zip(names, values, strict=True))}, backend="numpy"))

    lo = np.full((S, 2), np.log(N_MIN))
    hi = np.broadcast_to(np.log(laws.data_for_compute(C, 1.0)), lo.shape).copy()  # D >= 1
    u, _, edge = _argmin_log(f, lo, hi, (C[None, :], *(v[:, None] for v in params.values())))
    a = (u[:, 1] - u[:, 0]) / (np.log(C[1]) - np.log(C[0]))
    shape = (post.sizes["chain"], post.sizes["draw"])
    coords = {"chain": post["chain"].values, "draw": post["draw"].values}
    ds = xr.Dataset({"a": (("chain", "draw"), a.reshape(shape)),
                     "N_opt": (("chain", "draw", "C"), np.exp(u).reshape(*shape, 2)),
                     "at_edge": (("chain", "draw", "C"), edge.reshape(*shape, 2))}, coords={**coords, "C": C})
    ds.attrs.update(n_at_edge=_warn_edge(edge, "law_exponent"), compute="C = 6 N D",
                    objective="argmin_N L(N, C/(6N))")
    return ds
