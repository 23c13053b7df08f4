"""Runs trained with several seeds: the seed-to-seed noise, and its propagation into effective data and ``D_T``.

A *configuration* is a from-scratch ``(N, D)`` or a fine-tuned ``(pretraining, N, D_F)``; a sweep that trains
each configuration with several seeds (a ``seed`` column) measures how much the held-out loss moves with the
random initialisation and data order alone.

- :func:`seed_noise`: the measured spread per model size, the pooled within-configuration standard deviation of
  log loss (about the relative spread of the loss) ``s_N = sqrt(sum_c SS_c / sum_c (n_c - 1))`` with its
  chi-square interval (``SS_c / sigma**2 ~ chi2(n_c - 1)``).
- :func:`effective_data_seeds`: the paper's two-stage route with seeds, **multiple imputation** of ``D_E``. The
  seeds of a configuration are averaged (mean log loss: one row per configuration, as the paper would), and
  ``D_E`` interpolates the averaged from-scratch curve (:func:`~bayes_scaling.analysis.effective.effective_data`).
  The averages are uncertain by ``s_N / sqrt(n_c)``; each of ``n_imputations`` copies redraws **every curve
  point and every fine-tuned loss** from ``Normal(mean, s_N / sqrt(n_c))`` (log scale) and interpolates again.
  A redrawn curve moves the ``D_E`` of all runs of its size together (errors correlated within a size, which
  the transfer fit's independent noise cannot absorb: this is what narrowed beta's interval).
- :func:`fit_transfer_seeds`: :func:`~bayes_scaling.fit_transfer` on each imputation, draws pooled (the
  posterior mixture over imputations: Rubin's total variance, within plus between, for every quantity), so
  ``k, alpha, beta`` and predicted ``D_T`` carry the seed noise. Diagnostics are those of the single fits
  (their worst R-hat, their summed divergences); the pooled chains differ by design.
- :func:`leave_one_size_out` (stability of beta) and :func:`ossification_table` (ossification per
  ``(N, D_F)`` with binomial intervals across seeds and pre-training distributions).

Measured on simulated data with known truth (``tests/analysis/test_seeds.py``; Kaplan law, Table 1 transfer, 3 seeds,
seed noise 0.02 of log loss): the 90% intervals of ``D_E`` held the true ``D_E`` of 87% of the configurations
(5 data sets, 40 imputations; 74% when only the fine-tuned losses are redrawn); over 20 data sets (8
imputations) the pooled 90% intervals of beta held the truth 19 times (width 0.26), the plain fit of the
seed-averaged runs 14 times (width 0.12). The pooled intervals are somewhat conservative: the redrawn fine-tuned
losses repeat noise that the transfer fit's ``sigma`` already holds.

>>> prop = effective_data_seeds(scratch, finetune, scratch_fit=law_fit, n_imputations=20)   # doctest: +SKIP
>>> fit = fit_transfer_seeds(prop, seed=1)                                                 # doctest: +SKIP
>>> fit.summary(0.9, var_names=["alpha", "beta"])                                           # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.analysis.effective import EffectiveData, effective_data, read_finetune
from bayes_scaling.data.tables import TransferData
from bayes_scaling.errors import DataError
from bayes_scaling.inference.sampling import Diagnostics, TransferFit, _fit_transfer
from bayes_scaling.inference.scratch import ScratchFit
from bayes_scaling.models.losslaws import read_scratch, replicate_cells

__all__ = ["SCRATCH_KEYS", "FINETUNE_KEYS", "seed_noise", "cell_means", "SeedPropagation", "effective_data_seeds",
           "ImputedTransferFit", "fit_transfer_seeds", "leave_one_size_out", "ossified_runs", "ossification_table",
           "jeffreys_interval"]

#: the columns that make a configuration (its seeds are replicates)
SCRATCH_KEYS = ("N", "D")
FINETUNE_KEYS = ("pretraining", "N", "D_F")


# ---- the measured seed noise ------------------------------------------------------------------------------


def _noise_rows(table: pd.DataFrame, keys, kind: str, ci_prob: float) -> list[dict]:
    from scipy.special import chdtri  # chdtri(df, p): the chi-square quantile of upper tail p

    cells = replicate_cells(table, keys, what=f"{kind} runs")
    t = cells.table.assign(mean_loss=np.exp(cells.table["mean_log_loss"]))
    q = (1 - ci_prob) / 2
    rows = []
    groups = [(n, g) for n, g in t.groupby("N", sort=True)] + [("all", t)]
    for n, g in groups:
        dof = int((g["n"] - 1).sum())
        ss = float(g["ss"].sum())
        sd = np.sqrt(ss / dof) if dof else np.nan
        lo = np.sqrt(ss / chdtri(dof, q)) if dof else np.nan
        hi = np.sqrt(ss / chdtri(dof, 1 - q)) if dof else np.nan
        rows.append({"kind": kind, "N": n, "configurations": len(g), "replicated": int((g["n"] > 1).sum()),
                     "runs": int(g["n"].sum()), "df": dof, "sd_log_loss": sd, "lb": lo, "ub": hi,
                     "sd_nats": sd * float(g["mean_loss"].mean()) if dof else np.nan})
    return rows


def seed_noise(scratch: pd.DataFrame | None = None, finetune: pd.DataFrame | None = None,
               ci_prob: float = 0.9) -> pd.DataFrame:
    """The measured seed-to-seed noise of log loss per model size and kind of run (and pooled over sizes,
    ``N = "all"``): ``sd_log_loss`` = ``sqrt(sum SS_c / df)``, ``df = sum (n_c - 1)`` over the configurations of
    that size, its equal-tailed ``ci_prob`` interval ``lb, ub`` (chi-square with ``df`` degrees of freedom),
    ``sd_nats`` (the same in nats at the size's mean loss). Sizes without replicates have ``df = 0`` and NaN.

    >>> sc = pd.DataFrame({"N": [1e6] * 4, "D": [1e8, 1e8, 1e9, 1e9], "loss": [3.0, 3.06, 2.8, 2.8 * 0.98],
    ...                    "seed": [0, 1, 0, 1]})
    >>> r = seed_noise(sc).iloc[0]
    >>> int(r["df"]), round(float(r["sd_log_loss"]), 4)
    (2, 0.0141)
    """
    rows = []
    if scratch is not None:
        rows += _noise_rows(read_scratch(scratch, duplicates="mean"), SCRATCH_KEYS, "scratch", ci_prob)
    if finetune is not None:
        rows += _noise_rows(read_finetune(finetune), FINETUNE_KEYS, "finetune", ci_prob)
    if not rows:
        raise ValueError("give scratch= and/or finetune= runs")
    return pd.DataFrame(rows)


def cell_means(table: pd.DataFrame, keys) -> pd.DataFrame:
    """One row per configuration: ``loss`` = exp(mean log loss over its seeds), ``n_seeds``, ``sd_log_loss``
    (NaN for one seed), ``seeds`` (comma-separated); the other columns of its first run (``loss_step0``:
    mean). The rows keep the order of first appearance.

    >>> t = pd.DataFrame({"N": [1, 1], "D": [5, 5], "loss": [2.0, 8.0], "seed": [0, 1]})
    >>> cell_means(t, ["N", "D"])[["N", "D", "loss", "n_seeds", "seeds"]].values.tolist()
    [[1, 5, 4.0, 2, '0, 1']]
    """
    keys = list(keys)
    cells = replicate_cells(table, keys, what="runs")
    out = table.iloc[np.unique(cells.index, return_index=True)[1]].reset_index(drop=True).copy()
    t = cells.table
    out["loss"] = np.exp(t["mean_log_loss"].to_numpy())
    out["n_seeds"] = t["n"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["sd_log_loss"] = np.where(t["n"] > 1, np.sqrt(t["ss"] / (t["n"] - 1).clip(lower=1)), np.nan)
    grouped = table.groupby(cells.index, sort=True)
    if "seed" in table.columns:
        out["seeds"] = grouped["seed"].agg(lambda s: ", ".join(str(v) for v in s)).to_numpy()
        out = out.drop(columns="seed")
    if "loss_step0" in table.columns:
        out["loss_step0"] = grouped["loss_step0"].mean().to_numpy()
    return out


# ---- propagation into effective data -------------------------------------------------------------------


@dataclass
class SeedPropagation:
    """Effective data of the seed-averaged configurations with their seed noise propagated (multiple
    imputation). :attr:`base`: :class:`~bayes_scaling.analysis.effective.EffectiveData` of the averages;
    :attr:`imputations`: one such table per imputation; :attr:`noise`: the per-size standard deviation of log
    loss used for each kind of run (:func:`seed_noise`, or the ``noise`` given); :attr:`draws`: ``D_E`` with dims
    (imputation, run), the interval of each run's effective data."""

    base: EffectiveData
    imputations: list[pd.DataFrame]
    noise: pd.DataFrame
    draws: xr.DataArray | None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def n_imputations(self) -> int:
        return len(self.imputations)

    def transfer_data(self, i: int | None = None, low_only: bool = True) -> TransferData:
        """The :class:`TransferData` of imputation ``i`` (None: of the averages), medium/high-data runs
        excluded when ``low_only``."""
        table = self.base.table if i is None else self.imputations[i]
        eff = EffectiveData(table=table, method=self.base.method, unit=self.base.unit)
        return eff.to_transfer_data(low_only=low_only)

    def interval(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """The base table with ``D_E_lb``, ``D_E_ub`` (equal-tailed over the imputations) and ``p_ossified``
        (share of imputations with ``D_T <= 0`` or a loss above the from-scratch curve)."""
        t = self.base.table.copy()
        if self.draws is None:
            t["D_E_lb"] = t["D_E_ub"] = t["D_E"]
            t["p_ossified"] = _ossified(t).astype(float)
            return t
        q = (1 - ci_prob) / 2
        d = self.draws.values
        t["D_E_lb"], t["D_E_ub"] = np.quantile(d, q, axis=0), np.quantile(d, 1 - q, axis=0)
        t["p_ossified"] = np.mean([_ossified(x) for x in self.imputations], axis=0)
        return t


def _ossified(table: pd.DataFrame) -> np.ndarray:
    """Ossified runs: ``D_T <= 0`` with D_E in range, or a loss above the whole from-scratch curve (then
    ``D_E`` < the smallest measured D <= D_F)."""
    side = table["out_of_range"].astype(str).to_numpy()
    return ((table["D_T"].to_numpy() <= 0) & (side == "")) | (side == "above_curve")


def _noise_lookup(noise: pd.DataFrame, kind: str, N: np.ndarray) -> np.ndarray:
    """Per-row seed noise of log loss: the size's measured value, else the kind's pooled one."""
    t = noise[noise["kind"] == kind]
    pooled = t.loc[t["N"].astype(str) == "all", "sd_log_loss"]
    default = float(pooled.iloc[0]) if len(pooled) and np.isfinite(pooled.iloc[0]) else np.nan
    by_N = {float(n): float(s) for n, s in zip(t["N"], t["sd_log_loss"], strict=True)
            if str(n) != "all" and np.isfinite(s)}
    return np.array([by_N.get(float(n), default) for n in N], float)


def effective_data_seeds(scratch: pd.DataFrame, finetune: pd.DataFrame, *, scratch_fit: ScratchFit,
                         n_imputations: int = 20, noise: float | pd.DataFrame | None = None, seed: int = 0,
                         perturb: tuple[str, ...] = ("scratch", "finetune"), **kwargs) -> SeedPropagation:
    """Effective data of the seed-averaged runs with the seed noise propagated (module docstring).

    ``noise``: None (default) uses the measured :func:`seed_noise` per size (sizes without replicates: the
    pooled value of their kind); a number is the seed noise of log loss of every run (for one-seed data whose
    noise is known from elsewhere); a table like :func:`seed_noise`'s. With no replicates and no ``noise``
    there is nothing to propagate: :attr:`SeedPropagation.imputations` is empty and the result is the plain
    two-stage route. ``perturb``: which losses are redrawn. ``scratch_fit`` labels the regimes
    (:func:`~bayes_scaling.analysis.effective.effective_data`); ``kwargs`` go there too.

    >>> prop = effective_data_seeds(scratch, finetune, scratch_fit=law_fit)          # doctest: +SKIP
    >>> prop.interval(0.9)[["pretraining", "N", "D_F", "D_E", "D_E_lb", "D_E_ub"]]   # doctest: +SKIP
    """
    bad = set(perturb) - {"scratch", "finetune"}
    if bad:
        raise ValueError(f"perturb={perturb!r}: expected a subset of ('scratch', 'finetune')")
    if not isinstance(n_imputations, (int, np.integer)) or n_imputations < 2:
        raise ValueError(f"n_imputations must be an integer >= 2, got {n_imputations!r}")
    sc = read_scratch(scratch, duplicates="mean")
    ft = read_finetune(finetune)
    sc_m, ft_m = cell_means(sc, SCRATCH_KEYS), cell_means(ft, FINETUNE_KEYS)
    kwargs = {"method": "interpolate", "warn": False} | kwargs
    base = effective_data(sc_m, ft_m, scratch_fit=scratch_fit, **kwargs)
    notes = []
    if noise is None:
        table = seed_noise(sc, ft)
        if not (table["df"] > 0).any():
            notes.append("one run per configuration and no noise given: the seed noise is not propagated")
            return SeedPropagation(base, [], table, None, notes=notes)
    elif isinstance(noise, pd.DataFrame):
        table = noise
    else:
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be a finite number >= 0 (seed noise of log loss), got {noise!r}")
        table = pd.DataFrame([{"kind": k, "N": "all", "df": 0, "sd_log_loss": float(noise)}
                              for k in ("scratch", "finetune")])
        notes.append(f"seed noise of log loss given: {noise:g} (not measured)")
    s_sc = _noise_lookup(table, "scratch", sc_m["N"].to_numpy(float)) / np.sqrt(sc_m["n_seeds"].to_numpy())
    s_ft = _noise_lookup(table, "finetune", ft_m["N"].to_numpy(float)) / np.sqrt(ft_m["n_seeds"].to_numpy())
    for kind, s in (("scratch", s_sc), ("finetune", s_ft)):
        if kind in perturb and not np.isfinite(s).all():
            raise DataError(f"{kind} runs: no seed noise measured (no configuration has two seeds) and none given; "
                            "pass noise=<sd of log loss> or perturb without it")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 14]))
    imputations = []
    for _ in range(n_imputations):
        z_sc, z_ft = rng.standard_normal(len(sc_m)), rng.standard_normal(len(ft_m))
        sc_i = sc_m.assign(loss=sc_m["loss"] * np.exp(z_sc * s_sc)) if "scratch" in perturb else sc_m
        ft_i = ft_m.assign(loss=ft_m["loss"] * np.exp(z_ft * s_ft)) if "finetune" in perturb else ft_m
        imputations.append(effective_data(sc_i, ft_i, scratch_fit=scratch_fit, **kwargs).table)
    draws = xr.DataArray(np.stack([t["D_E"].to_numpy(float) for t in imputations]), dims=("imputation", "run"),
                         name="D_E")
    return SeedPropagation(base, imputations, table, draws, notes=notes)


# ---- the transfer fit over imputations ----------------------------------------------------------------------


class ImputedTransferFit(TransferFit):
    """Pooled draws of :func:`fit_transfer` over the imputations of a :class:`SeedPropagation` (chains
    renumbered imputation by imputation); :attr:`data` is the averaged runs' table, :attr:`fits_diagnostics`
    the diagnostics of each single fit. Only ``k, log_k, alpha, beta, sigma`` (``nu``) are kept: the
    hierarchy's centre differs between imputations (so a new pre-training distribution cannot be predicted).
    Saved and loaded again (``bs.load``) it is a plain TransferFit: its R-hat across the pooled chains then
    measures the spread between imputations, not a convergence problem."""

    def __init__(self, tree: xr.DataTree, data: TransferData, config, fits_diagnostics: list[Diagnostics]):
        super().__init__(tree, data, config)
        self.fits_diagnostics = fits_diagnostics

    @property
    def diagnostics(self) -> Diagnostics:
        """The single fits' diagnostics: worst R-hat, summed ESS (of the pooled draws), summed divergences."""
        d = self.fits_diagnostics
        return Diagnostics(max(x.r_hat_max for x in d), sum(x.ess_bulk_min for x in d),
                           sum(x.ess_tail_min for x in d), sum(x.divergences for x in d),
                           sum(x.n_samples for x in d))


_POOLED = ("k", "log_k", "alpha", "beta", "sigma", "nu")


def fit_transfer_seeds(prop: SeedPropagation, *, seed: int = 1, draws: int = 250, chains: int = 4,
                       low_only: bool = True, warn: bool = True, **kwargs) -> TransferFit:
    """Fit the transfer law to every imputation of ``prop`` (``draws`` per chain, after the default tuning) and
    pool the draws (module docstring); ``kwargs`` go to :func:`fit_transfer` (e.g. ``model``). Without
    imputations (nothing to propagate): the plain :func:`fit_transfer` of the averaged runs, default draws.

    >>> fit = fit_transfer_seeds(prop, seed=1)                      # doctest: +SKIP
    >>> fit.diagnostics.divergences                                 # doctest: +SKIP
    0
    """
    base = prop.transfer_data(None, low_only=low_only)
    if not prop.imputations:
        return _fit_transfer(base, seed=seed, chains=chains, warn=warn, **kwargs)
    posts, stats, diags = [], [], []
    config = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(prop.n_imputations):
            f = _fit_transfer(prop.transfer_data(i, low_only=low_only), seed=seed + i, draws=draws, chains=chains,
                             warn=False, log_likelihood=False, **kwargs)
            config = f.config
            diags.append(f.diagnostics)
            post = f.posterior[[v for v in _POOLED if v in f.posterior]]
            offset = i * chains
            posts.append(post.assign_coords(chain=post["chain"].values + offset))
            st = f.tree["sample_stats"].to_dataset()
            stats.append(st[["diverging"]].assign_coords(chain=st["chain"].values + offset))
    tree = xr.DataTree.from_dict({"posterior": xr.concat(posts, "chain"), "sample_stats": xr.concat(stats, "chain")})
    tree.attrs.update(f.tree.attrs)
    tree.attrs.update(imputations=prop.n_imputations, pooled="posterior mixture over imputations of the seed noise")
    fit = ImputedTransferFit(tree, base, config, diags)
    if warn:
        fit.diagnostics.warn(stacklevel=2)
    return fit


# ---- analyses ---------------------------------------------------------------------------------------------------


def leave_one_size_out(prop: SeedPropagation, *, full: TransferFit | None = None, ci_prob: float = 0.9,
                       seed: int = 1, low_only: bool = True, **kwargs) -> pd.DataFrame:
    """Stability of beta: refit the averaged runs without each model size in turn (plain
    :func:`fit_transfer`), and compare each refit's median of beta with ``full``'s ``ci_prob`` interval
    (default: :func:`fit_transfer_seeds` of all sizes). One row per left-out size (``N``, runs used, beta
    median and interval, ``inside`` the full interval), plus the full fit (``N = "none"``). Sizes whose removal
    leaves fewer than 2 sizes or 4 runs are skipped (beta needs two sizes).

    >>> leave_one_size_out(prop)[["N", "beta", "lb", "ub", "inside"]]     # doctest: +SKIP
    """
    from bayes_scaling.inference.mcmc_stats import eti

    full = full or fit_transfer_seeds(prop, seed=seed, low_only=low_only, warn=False, **kwargs)
    b = full.posterior["beta"].values.ravel()
    lo, hi = eti(b, ci_prob)
    rows = [{"N": "none", "runs": full.data.n_used, "beta": float(np.median(b)), "lb": lo, "ub": hi,
             "inside": True, "divergences": full.diagnostics.divergences}]
    base = prop.transfer_data(None, low_only=low_only)
    used = base.table.loc[~base.table["excluded"].astype(bool)]
    for n in sorted(used["N"].unique()):
        data = base.with_exclusions((base.table["N"] == n).to_numpy(), f"left out: N = {n:g}")
        left = data.table.loc[~data.table["excluded"].astype(bool), "N"]
        if data.n_used < 4 or left.nunique() < 2:  # beta needs two sizes
            continue
        f = _fit_transfer(data, seed=seed, warn=False, **kwargs)
        x = f.posterior["beta"].values.ravel()
        m = float(np.median(x))
        l2, h2 = eti(x, ci_prob)
        rows.append({"N": n, "runs": data.n_used, "beta": m, "lb": l2, "ub": h2, "inside": bool(lo <= m <= hi),
                     "divergences": f.diagnostics.divergences})
    return pd.DataFrame(rows)


def jeffreys_interval(k, n, ci_prob: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed Jeffreys interval of a binomial proportion: Beta(k + 1/2, n - k + 1/2) quantiles (0 when
    k = 0 and 1 when k = n at the open end, as Brown, Cai and DasGupta 2001 advise).

    >>> [round(float(v), 3) for v in jeffreys_interval(0, 6)]
    [0.0, 0.264]
    """
    from scipy.special import betaincinv  # the Beta quantile

    k, n = np.asarray(k, float), np.asarray(n, float)
    q = (1 - ci_prob) / 2
    lo = np.where(k == 0, 0.0, betaincinv(k + 0.5, n - k + 0.5, q))
    hi = np.where(k == n, 1.0, betaincinv(k + 0.5, n - k + 0.5, 1 - q))
    return lo, hi


def ossified_runs(scratch: pd.DataFrame, finetune: pd.DataFrame) -> pd.DataFrame:
    """Each fine-tuned run (every seed) with ``D_E`` on the seed-averaged, monotone from-scratch curve of its
    size (:func:`~bayes_scaling.analysis.effective.monotone_curve`; no law needed), ``D_T = D_E - D_F``,
    ``out_of_range`` and ``ossified``: ``D_T <= 0`` (the run is worse than a from-scratch model of the same N
    trained on D_F alone), or a loss above the whole curve (``D_E`` < the smallest D <= D_F). Sizes without a
    curve (partial sweeps) are left out.

    >>> ossified_runs(scratch, finetune).groupby("N")["ossified"].sum()     # doctest: +SKIP
    """
    from bayes_scaling.analysis.effective import monotone_curve

    sc = cell_means(read_scratch(scratch, duplicates="mean"), SCRATCH_KEYS)
    ft = read_finetune(finetune).copy()
    ft["D_E"], ft["out_of_range"] = np.nan, ""
    for n, g in sc.groupby("N", sort=True):
        at = np.isclose(ft["N"].to_numpy(float), float(n), rtol=1e-6, atol=0)
        if not at.any() or g["D"].nunique() < 2:
            continue
        curve = monotone_curve(g["D"].to_numpy(float), g["loss"].to_numpy(float), float(n), g.index.tolist())
        d_e, side = curve.effective_data(ft.loc[at, "loss"].to_numpy())
        ft.loc[at, "D_E"], ft.loc[at, "out_of_range"] = d_e, side
    ft = ft[ft["D_E"].notna()].copy()
    ft["D_T"] = ft["D_E"] - ft["D_F"]
    ft["ossified"] = _ossified(ft)
    return ft


def ossification_table(scratch: pd.DataFrame, finetune: pd.DataFrame, *, scratch_fit: ScratchFit | None = None,
                       ci_prob: float = 0.9, by=("N", "D_F")) -> pd.DataFrame:
    """Ossification per ``by`` cell (default each ``(N, D_F)``, over pre-training distributions and seeds), from
    :func:`ossified_runs`: columns ``runs``, ``ossified``, ``share`` and its Jeffreys ``ci_prob`` interval
    ``lb, ub``; with ``scratch_fit``, the regime of the cell too (``D_F`` against ``0.1 D(N)``, ``D(N)`` from the
    fit: :func:`~bayes_scaling.analysis.effective.regime`).

    >>> ossification_table(scratch, finetune, scratch_fit=law_fit)      # doctest: +SKIP
    """
    from bayes_scaling.analysis.effective import regime

    eff = ossified_runs(scratch, finetune)
    g = eff.groupby(list(by), sort=True)
    out = g.agg(runs=("ossified", "size"), ossified=("ossified", "sum")).reset_index()
    if scratch_fit is not None and {"N", "D_F"} <= set(out.columns):
        D_N = scratch_fit.converged_data(out["N"].to_numpy(float)).median(("chain", "draw")).values
        out["regime"] = regime(out["D_F"].to_numpy(float), np.asarray(D_N, float))
    out["share"] = out["ossified"] / out["runs"]
    out["lb"], out["ub"] = jeffreys_interval(out["ossified"], out["runs"], ci_prob)
    return out
