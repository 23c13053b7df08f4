"""Effective data ``D_E`` of fine-tuned runs, from raw losses (Hernandez et al. 2021).

``D_E`` is the from-scratch data a model of the same size ``N`` would need to reach the fine-tuned run's loss;
``D_T = D_E - D_F``. Two methods:

- ``"interpolate"`` (the paper's): the measured from-scratch curve of the same ``N``, made monotone by
  **isotonic regression** (pool-adjacent-violators, decreasing log loss in log D; replicate runs at one D are
  averaged in log loss first; pooled blocks collapse to one knot at their mean log D), then **monotone PCHIP
  interpolation of log D as a function of log loss**. A loss below the lowest (above the highest) knot is out of
  range: ``D_E`` would exceed the largest (fall below the smallest) measured D. Such rows are never
  extrapolated: ``D_E`` holds the bound, ``out_of_range`` says which side, and the row is excluded.
- ``"law"``: the closed-form inverse of a fitted :class:`~bayes_scaling.inference.scratch.ScratchFit`, draw by draw
  (by default of ``loss * exp(-e)``, ``e`` ~ the fitted noise of log loss (for a law fitted to several seeds, the
  misfit and one run's seed noise: ``sqrt(sigma**2 + sigma_seed(N)**2)``), so that the measurement noise of the
  fine-tuned loss is in the interval too: without it, 90% intervals covered the true D_E of only ~20% of
  simulated runs, with it ~90%): ``D_E`` is the posterior median, with an equal-tailed interval (``D_E_lb``,
  ``D_E_ub``) and the draws in :attr:`EffectiveData.draws`. Losses at or below the law's infinite-data loss ``L(N, inf)`` are unreachable
  (``inverse = inf``); when that holds for the median the row is out of range (excluded, ``D_E`` = the largest
  measured D as a lower bound). ``D_E`` outside the measured D range or ``N`` outside the measured N range is
  flagged ``extrapolated`` (kept).

Regimes (from the law's posterior median of ``D(N)``, the data a from-scratch model of size N needs to get within
1% of its infinite-data loss): **low** ``D_F <= 0.1 D(N)`` (where the transfer law holds), **medium**
``0.1 D(N) < D_F <= D(N)``, **high** ``D_F > D(N)``. Ossified runs (``D_T <= 0``) are reported per model size.

>>> import bayes_scaling as bs
>>> from bayes_scaling.data.datasets import load_scratch_losses, load_finetune_losses
>>> eff = effective_data(load_scratch_losses(), load_finetune_losses(), method="interpolate")  # doctest: +SKIP
>>> data = restrict_to_low_data(eff.to_transfer_data())                                      # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from os import PathLike

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling._interval import CI_PROB
from bayes_scaling.data.finetune import LOW_FRACTION, REGIME_REASONS, exclude_non_low, read_finetune, regime
from bayes_scaling.data.tables import TransferData, source_name
from bayes_scaling.errors import DataError, ExclusionWarning, format_rows
from bayes_scaling.inference.scratch import ScratchFit, _fit_scratch
from bayes_scaling.models.losslaws import read_scratch

__all__ = ["METHODS", "LOW_FRACTION", "REGIME_REASONS", "MonotoneCurve", "EffectiveData", "effective_data",
           "read_finetune", "monotone_curve", "regime", "exclude_non_low", "restrict_to_low_data",
           "ossification_report"]

METHODS = ("interpolate", "law")


# ---- the measured curves ---------------------------------------------------------------------------------


@dataclass
class MonotoneCurve:
    """The from-scratch curve of one model size, made monotone (knots: strictly decreasing loss in D)."""

    N: float
    log_D: np.ndarray          # knots, increasing
    log_loss: np.ndarray       # knots, strictly decreasing
    n_points: int              # measured runs on the curve
    n_pooled: int              # runs whose (averaged) loss isotonic regression changed
    rows: list = field(default_factory=list)

    def __post_init__(self) -> None:
        from scipy.interpolate import PchipInterpolator

        # log D as a monotone (PCHIP) function of -log loss (increasing)
        self._f = PchipInterpolator(-self.log_loss, self.log_D, extrapolate=False)

    def effective_data(self, loss) -> tuple[np.ndarray, np.ndarray]:
        """``(D_E, side)``: interpolated D for each loss; out of range: ``D_E`` = the bound and ``side`` =
        ``"below_curve"`` (loss lower than every measured point: D_E > largest D) or ``"above_curve"``."""
        ll = np.log(np.atleast_1d(np.asarray(loss, float)))
        side = np.where(ll < self.log_loss[-1], "below_curve", np.where(ll > self.log_loss[0], "above_curve", ""))
        x = np.clip(-ll, -self.log_loss[0], -self.log_loss[-1])
        return np.exp(self._f(x)), side


def monotone_curve(D: np.ndarray, loss: np.ndarray, N: float = float("nan"), rows=None) -> MonotoneCurve:
    """Isotonic (decreasing) regression of log loss on log D, pooled blocks collapsed to one knot.

    >>> c = monotone_curve(np.array([1e6, 1e7, 1e8, 1e9]), np.array([4.0, 3.5, 3.6, 3.0]))
    >>> c.n_pooled, np.round(np.exp(c.log_loss), 3).tolist()
    (2, [4.0, 3.55, 3.0])
    """
    from scipy.optimize import isotonic_regression

    rows = list(rows) if rows is not None else list(range(len(D)))
    df = pd.DataFrame({"log_D": np.log(D), "log_loss": np.log(loss)})
    g = df.groupby("log_D", sort=True)["log_loss"].agg(["mean", "count"])
    if len(g) < 2:
        raise DataError(f"from-scratch curve N={N:g}: {len(g)} distinct D value(s) (rows {format_rows(rows)}); "
                        "need at least 2 runs of different D to interpolate")
    y, w = g["mean"].to_numpy(), g["count"].to_numpy(float)
    fitted = isotonic_regression(y, weights=w, increasing=False).x
    changed = ~np.isclose(fitted, y, rtol=0, atol=1e-12)
    n_pooled = int(w[changed].sum())
    log_D = g.index.to_numpy(float)
    # collapse blocks of equal fitted value to one knot (weighted mean log D)
    knots = pd.DataFrame({"block": np.cumsum(np.r_[True, ~np.isclose(np.diff(fitted), 0, atol=1e-12)]),
                          "wlD": w * log_D, "w": w, "y": fitted}).groupby("block").agg(
        wlD=("wlD", "sum"), w=("w", "sum"), y=("y", "first"))
    if len(knots) < 2:
        raise DataError(f"from-scratch curve N={N:g} (rows {format_rows(rows)}): the loss does not decrease with D "
                        "anywhere, so no monotone curve can be interpolated")
    return MonotoneCurve(N=float(N), log_D=(knots["wlD"] / knots["w"]).to_numpy(), log_loss=knots["y"].to_numpy(),
                         n_points=int(w.sum()), n_pooled=n_pooled, rows=rows)


def _match_N(scratch_N: np.ndarray, finetune: pd.DataFrame, what: str) -> np.ndarray:
    """Index into ``scratch_N`` (unique sizes) for each fine-tuned run; error naming N and rows if absent."""
    idx = np.full(len(finetune), -1)
    for j, n in enumerate(scratch_N):
        idx[np.isclose(finetune["N"].to_numpy(), n, rtol=1e-6, atol=0)] = j
    missing = idx < 0
    if missing.any():
        parts = [f"N={n:g} (rows {format_rows(g.index.tolist())})"
                 for n, g in finetune.loc[missing].groupby("N", sort=True)]
        raise DataError(f"{what}: no from-scratch curve for model size(s) {'; '.join(parts)}; the from-scratch "
                        f"runs have N = {', '.join(f'{n:g}' for n in scratch_N)} (method 'interpolate' needs a "
                        "measured curve of the same N; method 'law' does not)")
    return idx


# ---- regimes --------------------------------------------------------------------------------------------


def restrict_to_low_data(data: TransferData, column: str = "regime") -> TransferData:
    """The TransferData with medium- and high-data runs excluded (reported by ``data.exclusion_report()``).

    >>> data = restrict_to_low_data(eff.to_transfer_data())        # doctest: +SKIP
    >>> data.exclusion_report()                                    # doctest: +SKIP
    """
    if column not in data.table.columns:
        raise DataError(f"{data.source}: no column {column!r}; run effective_data() to label the regimes")
    labels = data.table[column].astype(str).to_numpy()
    bad = sorted(set(labels) - {"low", "medium", "high"})
    if bad:
        raise DataError(f"{data.source}: column {column!r} has {', '.join(map(repr, bad))}; expected low, medium, "
                        "high")
    return TransferData(table=exclude_non_low(data.table, column), unit=data.unit, source=data.source)


def ossification_report(table: pd.DataFrame) -> pd.DataFrame:
    """Per model size: runs, ossified runs (``D_T <= 0``), and the D_F of the ossified ones."""
    rows = []
    for n, g in table.groupby("N", sort=True):
        oss = g.loc[g["D_T"] <= 0]
        rows.append({"N": n, "n_runs": len(g), "n_ossified": len(oss),
                     "D_F_ossified": ", ".join(f"{d:.3g}" for d in oss["D_F"]),
                     "pretraining_ossified": ", ".join(sorted(set(map(str, oss["pretraining"]))))})
    return pd.DataFrame(rows)


# ---- the result -----------------------------------------------------------------------------------------


@dataclass
class EffectiveData:
    """Effective data of every fine-tuned run: :attr:`table` is the foundation's input table
    (``pretraining, N, D_F, D_E, D_T, regime, flags, excluded, exclusion_reason, ...``); :attr:`draws` holds the
    posterior draws of ``D_E`` (method ``law``; dims chain, draw, run)."""

    table: pd.DataFrame
    method: str
    unit: str
    scratch_fit: ScratchFit | None = None
    curves: dict = field(default_factory=dict)
    draws: xr.DataArray | None = None

    def to_transfer_data(self, *, low_only: bool = False, warn: bool = False) -> TransferData:
        """A :class:`TransferData` (out-of-range and ossified rows excluded with reasons); ``low_only`` also
        excludes the medium/high-data runs (:func:`restrict_to_low_data`)."""
        data = TransferData.from_frame(self.table, unit=self.unit, source=f"effective data ({self.method})",
                                       warn=False)
        if low_only:
            data = restrict_to_low_data(data)
        if warn and data.n_excluded:
            warnings.warn(data.exclusion_report(), ExclusionWarning, stacklevel=2)
        return data

    def transfer_table(self, low_only: bool = True) -> pd.DataFrame:
        """:attr:`table` with, when ``low_only``, the medium/high-data runs also marked ``excluded`` (with the
        reason): what ``bayes-scaling effective-data`` writes, so ``bayes-scaling fit`` uses the low-data runs
        and reports the others."""
        return exclude_non_low(self.table) if low_only else self.table.copy()

    def ossified(self) -> pd.DataFrame:
        """Ossified runs (``D_T <= 0``, in range) per model size."""
        return ossification_report(self.table.loc[self.table["out_of_range"] == ""])

    def to_csv(self, path: str | PathLike, low_only: bool = True) -> None:
        """Write :meth:`transfer_table` (``low_only``: medium/high-data runs marked excluded), atomically."""
        from bayes_scaling._atomic import atomic_path

        table = self.transfer_table(low_only)
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.10g")

    def __repr__(self) -> str:
        t = self.table
        return (f"EffectiveData(method={self.method!r}, {len(t)} runs: "
                f"{', '.join(f'{k} {v}' for k, v in t['regime'].value_counts().items())}; "
                f"{int((t['out_of_range'] != '').sum())} out of range, {int((t['D_T'] <= 0).sum())} with D_T <= 0)")


def effective_data(scratch: pd.DataFrame | str | PathLike, finetune: pd.DataFrame | str | PathLike, *,
                   method: str = "interpolate", scratch_fit: ScratchFit | None = None, law: str = "chinchilla",
                   ci_prob: float = CI_PROB, within: float = 0.01, low: float = LOW_FRACTION,
                   duplicates: str = "error", seed: int | None = 1, fit_kwargs: dict | None = None,
                   noise: bool = True, warn: bool = True) -> EffectiveData:
    """Effective data ``D_E`` (and ``D_T = D_E - D_F``, regime, flags) for every fine-tuned run.

    ``scratch``: from-scratch runs ``N, D, loss``; ``finetune``: ``pretraining, N, D_F, loss``. ``method``:
    ``"interpolate"`` or ``"law"`` (module docstring). The regimes need a law: ``scratch_fit`` (fitted with
    :func:`~bayes_scaling.inference.scratch.fit_scratch`) or, when None, one is fitted here (``law``, ``seed``,
    ``fit_kwargs``). Out-of-range rows are excluded with a reason (``ExclusionWarning`` when ``warn``).
    Method ``law`` with ``noise=True`` (default) treats each fine-tuned loss as a noisy measurement of the law's
    mean loss: draw by draw it inverts ``loss * exp(-e)``, ``e ~ Normal(0, sigma)`` (the fitted noise of log
    loss; seeded by ``seed``), so the interval of ``D_E`` holds both the law's and the measurement's
    uncertainty; ``noise=False`` inverts the measured loss itself (the law's uncertainty only).

    >>> eff = effective_data("scratch.csv", "finetune.csv", method="law", scratch_fit=fit)   # doctest: +SKIP
    >>> eff.table[["pretraining", "N", "D_F", "D_E", "D_T", "regime", "flags"]]            # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    sc = read_scratch(scratch, duplicates=duplicates)
    ft = read_finetune(finetune)
    what_ft = source_name(finetune, "fine-tuned runs")
    unit_s, unit_f = sc["unit"].iloc[0], ft["unit"].iloc[0]
    if unit_s != unit_f:
        raise DataError(f"the from-scratch runs count data in {unit_s} but the fine-tuned runs in {unit_f}; "
                        "D and D_F must be in the same unit")
    if scratch_fit is None:
        scratch_fit = _fit_scratch(sc, law=law, seed=seed, duplicates=duplicates, **(fit_kwargs or {}))
    out = ft[["pretraining", "N", "D_F", "loss"]].copy()
    out["method"] = method
    flags: list[list[str]] = [[] for _ in range(len(ft))]
    out_of_range = np.full(len(ft), "", dtype=object)
    curves: dict = {}
    draws = None
    if method == "interpolate":
        sizes = np.array(sorted(sc["N"].unique()))
        idx = _match_N(sizes, ft, what_ft)
        D_E = np.empty(len(ft))
        for j in np.unique(idx):
            members = np.isclose(sc["N"].to_numpy(), sizes[j], rtol=1e-6, atol=0)
            sub = sc.loc[members]
            curve = monotone_curve(sub["D"].to_numpy(), sub["loss"].to_numpy(), sizes[j], sub.index.tolist())
            curves[float(sizes[j])] = curve
            at = np.flatnonzero(idx == j)
            d_e, side = curve.effective_data(ft["loss"].to_numpy()[at])
            D_E[at] = d_e
            out_of_range[at] = side
            if curve.n_pooled:
                for i in at:
                    flags[i].append(f"curve N={sizes[j]:g} made monotone ({curve.n_pooled} of {curve.n_points} "
                                    "runs pooled)")
        out["D_E"] = D_E
    else:
        loss = xr.DataArray(ft["loss"].to_numpy(float), dims="point")
        if noise and "sigma" in scratch_fit.posterior:
            # the measured loss is the law's mean loss times exp(noise): invert exp(-noise) * loss, draw by draw
            post = scratch_fit.posterior
            rng = np.random.default_rng(np.random.SeedSequence([0 if seed is None else int(seed), 7]))
            z = rng.standard_normal((post.sizes["chain"], post.sizes["draw"], len(ft)))
            sd = post["sigma"]
            s_seed = scratch_fit.seed_noise(ft["N"].to_numpy(float))
            if s_seed is not None:  # a law fitted to several seeds: sigma is the misfit, add one run's seed noise
                sd = np.sqrt(sd ** 2 + s_seed ** 2)
            loss = loss * np.exp(-sd * xr.DataArray(z, dims=("chain", "draw", "point")))
            loss = loss.transpose("chain", "draw", "point")
        draws = _invert(scratch_fit, loss, ft["N"].to_numpy(float))
        q = (1 - ci_prob) / 2
        flat = draws.stack(sample=("chain", "draw")).transpose("run", "sample").values
        with np.errstate(invalid="ignore"):
            lb, med, ub = (np.quantile(flat, p, axis=1, method="inverted_cdf") for p in (q, 0.5, 1 - q))
        out["D_E_lb"], out["D_E_ub"] = lb, ub
        frac_inf = np.mean(~np.isfinite(flat), axis=1)
        D_max = float(sc["D"].max())
        D_min = float(sc["D"].min())
        unreachable = ~np.isfinite(med)
        out_of_range[unreachable] = "unreachable"
        D_E = np.where(unreachable, D_max, med)
        out["D_E"] = D_E
        n_lo, n_hi = float(sc["N"].min()), float(sc["N"].max())
        extrap = (~unreachable & ((D_E > D_max) | (D_E < D_min))) | (ft["N"].to_numpy() < n_lo) | \
            (ft["N"].to_numpy() > n_hi)
        out["extrapolated"] = extrap
        for i in np.flatnonzero(frac_inf > 0):
            flags[i].append(f"loss unreachable (below L(N, inf)) in {100 * frac_inf[i]:.0f}% of draws")
        for i in np.flatnonzero(extrap):
            flags[i].append("extrapolated beyond the measured N or D range")
    # bounds for out-of-range rows, exclusions
    for i in np.flatnonzero(out_of_range != ""):
        flags[i].append({"below_curve": "loss below the lowest measured from-scratch loss of this N: D_E > largest "
                                        "measured D (D_E column = that lower bound)",
                         "above_curve": "loss above the highest measured from-scratch loss of this N: D_E < "
                                        "smallest measured D (D_E column = that upper bound)",
                         "unreachable": "loss at or below the law's infinite-data loss L(N, inf) in most draws: "
                                        "D_E unbounded (D_E column = largest measured D, a lower bound)"}[
            out_of_range[i]])
    out["D_T"] = out["D_E"] - out["D_F"]
    D_N = scratch_fit.converged_data(ft["N"].to_numpy(), within=within)
    D_N_med = np.asarray(D_N.median(("chain", "draw")).values, float)
    out["D_N"] = D_N_med
    out["regime"] = regime(out["D_F"].to_numpy(), D_N_med, low)
    out["out_of_range"] = out_of_range
    out["flags"] = ["; ".join(f) for f in flags]
    out["excluded"] = out_of_range != ""
    out["exclusion_reason"] = np.where(out_of_range != "", "D_E out of range (" + out_of_range.astype(str) + ")", "")
    out["unit"] = unit_f
    for extra in ft.columns:
        if extra not in out.columns:
            out[extra] = ft[extra]
    first = ["pretraining", "N", "D_F", "loss", "D_E", "D_T", "D_E_lb", "D_E_ub", "regime", "D_N", "method",
             "out_of_range", "extrapolated", "flags", "excluded", "exclusion_reason", "unit"]
    out = out[[c for c in first if c in out.columns] + [c for c in out.columns if c not in first]]
    result = EffectiveData(table=out, method=method, unit=str(unit_f), scratch_fit=scratch_fit, curves=curves,
                           draws=draws)
    if warn and out["excluded"].any():
        ex = np.flatnonzero(out["excluded"].to_numpy())
        warnings.warn(f"{len(ex)} fine-tuned run(s) have D_E out of range and are excluded (rows "
                      f"{format_rows(ex.tolist())}; see columns out_of_range, flags)", ExclusionWarning,
                      stacklevel=2)
    return result


def _invert(fit: ScratchFit, loss: xr.DataArray, N: np.ndarray) -> xr.DataArray:
    """Draws of ``D = L^{-1}(loss, N)``: dims chain, draw, run (``loss`` per point, or per draw and point)."""
    from bayes_scaling.models.losslaws import law_inverse

    post = fit.posterior
    names = fit.parameters
    arrays = xr.broadcast(loss, xr.DataArray(N, dims="point"), *(post[k] for k in names))
    arrays = [x.transpose("chain", "draw", "point") for x in arrays]
    D = law_inverse(fit.law, arrays[0].values, arrays[1].values, {k: x.values for k, x in zip(names, arrays[2:],
                                                                                             strict=True)})
    out = xr.DataArray(np.asarray(D, float), dims=("chain", "draw", "run"),
                       coords={"chain": post["chain"].values, "draw": post["draw"].values})
    return out.rename("D_E")
