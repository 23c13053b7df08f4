"""Figures (matplotlib). Each function returns its ``Figure``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_scaling._interval import CI_PROB
from bayes_scaling.analysis.predictions import predict

__all__ = ["plot_law", "plot_transfer", "plot_transfer_fraction", "plot_posteriors", "plot_ppc", "plot_prior_predictive",
           "plot_compare", "plot_compute_frontier", "plot_forecast", "plot_calibration"]


def plot_transfer(fit, *, ci_prob: float = CI_PROB, n_grid: int = 40, sizes: int | None = 4):
    """D_T against D_F on log-log axes: one line per model size (posterior median) with an equal-tailed
    ``ci_prob`` band, one panel per pre-training distribution, and the measured runs as points
    (the paper's Figure 1 idea). Excluded runs (D_T <= 0) are listed in the panel, not plotted."""
    import matplotlib.pyplot as plt

    data = fit.data
    used = data.used
    Ns = np.sort(used["N"].unique())
    if sizes is not None and len(Ns) > sizes:
        Ns = Ns[np.linspace(0, len(Ns) - 1, sizes).round().astype(int)]
    D_F = np.logspace(np.log10(used["D_F"].min()), np.log10(used["D_F"].max()), n_grid)
    pred = predict(fit, N=Ns, D_F=D_F)["D_T"]
    q = pred.quantile([(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2], dim=("chain", "draw"))
    names = fit.pretraining
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.2), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, name in zip(axes[0], names, strict=True):
        for i, n in enumerate(Ns):
            color = cmap(i / max(len(Ns) - 1, 1))
            qq = q.sel(pretraining=name, N=n)
            ax.fill_between(D_F, qq.isel(quantile=0), qq.isel(quantile=2), color=color, alpha=0.2, lw=0)
            ax.plot(D_F, qq.isel(quantile=1), color=color, lw=1.8, label=f"N = {n:.1e}")
            pts = used[(used["pretraining"] == name) & np.isclose(used["N"], n)]
            ax.scatter(pts["D_F"], pts["D_T"], color=color, s=18, edgecolor="k", lw=0.4, zorder=3)
        others = used[(used["pretraining"] == name) & ~np.isin(used["N"], Ns)]
        if len(others):
            ax.scatter(others["D_F"], others["D_T"], color="0.6", s=10, zorder=2, label="other sizes")
        n_ex = int((data.excluded["pretraining"] == name).sum())
        if n_ex:
            ax.text(0.02, 0.02, f"{n_ex} run(s) with D_T <= 0 excluded", transform=ax.transAxes, fontsize=8)
        ax.set(xscale="log", yscale="log", title=f"pre-training: {name}",
               xlabel=f"fine-tuning data D_F ({data.unit})")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel(f"effective data transferred D_T ({data.unit})")
    axes[0][-1].legend(fontsize=8, title=f"median, {100 * ci_prob:g}% band", title_fontsize=8)
    fig.tight_layout()
    return fig


# ---- fraction from transfer, posteriors, posterior and prior predictive checks, comparison ---------------

_PARAM_LABELS = {"k": "k (log scale)", "alpha": "alpha (D_F exponent)", "beta": "beta (N exponent)"}


def _eti(x, ci_prob: float, axis=None):
    return np.quantile(x, [(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2], axis=axis)


def plot_transfer_fraction(fit, *, D_F=None, ci_prob: float = CI_PROB, n_grid: int = 40):
    """Fraction of the effective data that comes from transfer, ``D_T / D_E = 1 / (1 + D_F / D_T)``, against
    model size N (log axis): one line per fine-tuning set size D_F (posterior median, ``ci_prob`` band), one
    panel per pre-training distribution (the paper's Figure 2 idea). ``D_F`` defaults to four sizes spanning
    the data. Uses :func:`bayes_scaling.analysis.predictions.predict`."""
    import matplotlib.pyplot as plt

    used = fit.data.used
    if D_F is None:
        D_F = np.logspace(np.log10(used["D_F"].min()), np.log10(used["D_F"].max()), 4)
    D_F = np.atleast_1d(np.asarray(D_F, float))
    N = np.logspace(np.log10(used["N"].min()), np.log10(used["N"].max()), n_grid)
    frac = predict(fit, N=N, D_F=D_F)["fraction"]
    q = frac.quantile([(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2], dim=("chain", "draw"))
    names = fit.pretraining
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.2), sharey=True, squeeze=False)
    cmap = plt.get_cmap("plasma")
    unit = fit.data.unit
    for ax, name in zip(axes[0], names, strict=True):
        for i, d in enumerate(D_F):
            color = cmap(0.85 * i / max(len(D_F) - 1, 1))
            qq = q.sel(pretraining=name, D_F=d)
            ax.fill_between(N, qq.isel(quantile=0), qq.isel(quantile=2), color=color, alpha=0.2, lw=0)
            ax.plot(N, qq.isel(quantile=1), color=color, lw=1.8, label=f"D_F = {d:.1e} {unit}")
        ax.set(xscale="log", ylim=(0, 1), title=f"pre-training: {name}", xlabel="model size N (parameters)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("fraction of effective data from transfer, D_T / D_E")
    axes[0][-1].legend(fontsize=8, title=f"median, {100 * ci_prob:g}% band", title_fontsize=8,
                       loc="lower right")
    fig.tight_layout()
    return fig


def plot_posteriors(fit, *, truth: dict | None = None, ci_prob: float = CI_PROB):
    """Posterior densities of k (log axis), alpha and beta, one curve per pre-training distribution, side by
    side; a shared beta is one curve. ``truth`` (e.g. :data:`bayes_scaling.TABLE1`, or the simulation's
    ``meta["truth"]``) draws the known values as dashed lines. The legend gives median and ``ci_prob``
    interval."""
    import matplotlib.pyplot as plt
    from scipy.stats import gaussian_kde

    post = fit.posterior
    names = fit.pretraining
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.0))
    for ax, var in zip(axes, ("k", "alpha", "beta"), strict=True):
        da = post[var]
        groups = names if "pretraining" in da.dims else [None]
        for i, name in enumerate(groups):
            x = (da.sel(pretraining=name) if name is not None else da).values.ravel()
            xs = np.log10(x) if var == "k" else x
            lo, med, hi = _eti(xs, ci_prob)
            label = name if name is not None else f"shared ({', '.join(names)})"
            color = cmap(i) if name is not None else "0.25"
            if np.ptp(xs) > 0:
                grid = np.linspace(xs.min() - 0.1 * np.ptp(xs), xs.max() + 0.1 * np.ptp(xs), 300)
                dens = gaussian_kde(xs)(grid)
                xplot = 10 ** grid if var == "k" else grid
                ax.plot(xplot, dens, color=color, lw=1.8)
                ax.fill_between(xplot, dens, where=(grid >= lo) & (grid <= hi), color=color, alpha=0.2, lw=0)
            fmt = (lambda v: f"{10 ** v:.3g}") if var == "k" else (lambda v: f"{v:.3f}")
            ax.plot([], [], color=color, lw=1.8, label=f"{label}: {fmt(med)} [{fmt(lo)}, {fmt(hi)}]")
        if truth:
            for i, name in enumerate(names):
                if name in truth and var in truth[name]:
                    color = cmap(i) if "pretraining" in da.dims else "0.25"
                    ax.axvline(truth[name][var], color=color, ls="--", lw=1.2)
            ax.plot([], [], color="0.4", ls="--", lw=1.2, label="true value")
        if var == "k":
            ax.set_xscale("log")
        ax.set(xlabel=_PARAM_LABELS[var], ylabel="posterior density" + (" (per decade of k)" if var == "k" else ""),
               title=f"{var}: median [{100 * ci_prob:g}% interval]")
        ax.set_ylim(bottom=0)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left" if var != "k" else "best")
    fig.suptitle(f"Posteriors per pre-training distribution (variant {fit.config.variant}; "
                 f"D_T = k D_F^alpha N^beta, data in {fit.data.unit})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_ppc(fit, *, ci_prob: float = 0.9, seed: int = 0):
    """Posterior predictive check (left) and LOO-PIT (right), from :mod:`bayes_scaling.analysis.checks`, for a
    law-spec fit or a transfer fit.

    Left: predicted target (posterior predictive median with its central ``ci_prob`` interval, noise included)
    against the observed target (log-log for a likelihood on the log scale), one colour per group of the first
    group column, with the 1:1 line; observations outside their interval are ringed in red and the coverage
    shares (in-sample and leave-one-out) are printed. Right: ECDF of the LOO-PIT values minus the uniform ECDF
    with a 95% simultaneous band (Dvoretzky-Kiefer-Wolfowitz); a calibrated model stays inside.
    """
    import matplotlib.pyplot as plt

    from bayes_scaling.analysis.checks import coverage, loo_pit, posterior_predictive_check

    tag = f"{100 * ci_prob:g}"
    ppc = posterior_predictive_check(fit, ci_probs=(ci_prob,), seed=seed)
    pit = loo_pit(fit, seed=seed)
    cov = coverage(fit, ci_probs=(ci_prob,), seed=seed).iloc[0]
    y, unit, log = ppc.attrs["target"], ppc.attrs["unit"], ppc.attrs["log"]
    group = ppc.attrs["groups"][0] if ppc.attrs["groups"] else None
    in_unit = f" ({unit})" if unit else ""
    cmap = plt.get_cmap("tab10")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    keys = list(dict.fromkeys(ppc[group])) if group else [None]
    for i, name in enumerate(keys):
        s = ppc if name is None else ppc[ppc[group] == name]
        yerr = np.vstack([s[f"{y}_median"] - s[f"lb{tag}"], s[f"ub{tag}"] - s[f"{y}_median"]])
        ax.errorbar(s[y], s[f"{y}_median"], yerr=yerr, fmt="o", ms=3.5, color=cmap(i % 10), ecolor=cmap(i % 10),
                    elinewidth=0.8, alpha=0.8, label=None if name is None or i >= 10 else str(name))
    out = ppc[~ppc[f"inside{tag}"]]
    ax.scatter(out[y], out[f"{y}_median"], s=70, facecolor="none", edgecolor="red", lw=1.2, zorder=4,
               label=f"outside its {tag}% interval ({len(out)})")
    lo_v, hi_v = min(ppc[y].min(), ppc[f"lb{tag}"].min()), max(ppc[y].max(), ppc[f"ub{tag}"].max())
    lim = [lo_v / 1.5, hi_v * 1.5] if log else [lo_v - 0.05 * (hi_v - lo_v), hi_v + 0.05 * (hi_v - lo_v)]
    ax.plot(lim, lim, color="0.3", lw=1, ls="--", label="predicted = observed")
    scale = "log" if log else "linear"
    ax.set(xscale=scale, yscale=scale, xlim=lim, ylim=lim, xlabel=f"observed {y}{in_unit}",
           ylabel=f"predicted {y}{in_unit}: median, {tag}% interval",
           title=f"posterior predictive check of {y}")
    ax.text(0.98, 0.03, f"coverage of the {tag}% intervals:\nin-sample {cov['in_sample']:.0%}, "
            f"leave-one-out {cov['loo']:.0%}\n(nominal {ci_prob:.0%} +- {cov['binomial_se']:.0%} binomial SE)",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"})
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    u = np.sort(pit.values)
    n = len(u)
    grid = np.linspace(0, 1, 201)
    ecdf = np.searchsorted(u, grid, side="right") / n
    eps = np.sqrt(np.log(2 / 0.05) / (2 * n))
    ax2.fill_between(grid, -eps, eps, color="0.85", label="95% band for a calibrated model (DKW)")
    ax2.plot(grid, ecdf - grid, color="C0", lw=1.8, label="LOO-PIT ECDF - uniform")
    ax2.axhline(0, color="0.3", lw=0.8)
    on_scale = f"log {y}" if log else y
    ax2.set(xlim=(0, 1), xlabel=f"LOO-PIT value  P(replicated {on_scale} <= observed | other rows)",
            ylabel="ECDF difference", title=f"LOO-PIT (KS distance {pit.ks_statistic:.3f}, "
                                             f"p = {pit.ks_pvalue:.2f}; n = {n})")
    ax2.set_ylim(-max(2 * eps, 1.2 * np.max(np.abs(ecdf - grid))), max(2 * eps, 1.2 * np.max(np.abs(ecdf - grid))))
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_prior_predictive(prior):
    """Prior predictive check (:func:`bayes_scaling.analysis.checks.prior_predictive_check`): for every observed run
    (sorted by the observed target, e.g. D_T) the prior 90% interval and median of the target, with the
    observation (a log axis for a law on the log scale)."""
    import matplotlib.pyplot as plt

    target = getattr(prior, "target", "D_T")
    runs = prior.runs.sort_values(target, ignore_index=True)
    x = np.arange(len(runs))
    fig, ax = plt.subplots(figsize=(8, 4.4))
    ax.fill_between(x, runs["prior_q05"], runs["prior_q95"], color="C0", alpha=0.25, lw=0,
                    label="prior predictive 90% interval")
    ax.plot(x, runs["prior_median"], color="C0", lw=1.5, label="prior predictive median")
    ax.scatter(x, runs[target], color="k", s=10, zorder=3, label=f"observed {target}")
    cov = prior.coverage.set_index("nominal")["observed"]
    log = getattr(prior, "scale", "log") == "log"
    span = (f"which spans ~{prior.orders_90:.0f} orders of magnitude (median over runs)" if log else
            f"which spans ~{prior.orders_90:.1f} times the observed spread (median over runs)")
    ax.set(yscale="log" if log else "linear", xlabel=f"observed runs, sorted by observed {target}",
           ylabel=f"{target} ({prior.unit})" if prior.unit else target,
           title=f"Prior predictive check: {cov.loc[0.9]:.0%} of the runs lie inside their 90% interval,\n{span}",
           xlim=(-1, len(runs)))
    ax.title.set_fontsize(10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_compare(comparison):
    """PSIS-LOO comparison of variants (:class:`bayes_scaling.analysis.compare.VariantComparison`): elpd difference to
    the best variant with +-1 and +-2 standard errors of the difference; higher is better."""
    import matplotlib.pyplot as plt

    t = comparison.table.iloc[::-1]
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(9, 0.7 * len(t) + 1.9))
    ax.errorbar(t["elpd_diff"], y, xerr=2 * t["dse"], fmt="none", ecolor="0.6", elinewidth=1.2, capsize=3,
                label="\u00b12 SE of the difference")
    ax.errorbar(t["elpd_diff"], y, xerr=t["dse"], fmt="o", color="C0", ecolor="C0", elinewidth=2.5,
                label="elpd difference \u00b11 SE")
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y, [f"{v} (k>0.7: {n})" if n else v for v, n in zip(t["variant"], t["n_pareto_k_bad"], strict=True)])
    for xi, yi, d, r in zip(t["elpd_diff"], y, t["dse"], t["rank"], strict=True):
        ax.annotate("best (reference)" if r == 0 else f"{xi:.1f} \u00b1 {d:.1f}", (xi, yi), xytext=(0, 7), textcoords="offset points", ha="center",
                    fontsize=8)
    lo = float(np.min(t["elpd_diff"] - 2 * t["dse"]))
    if lo < -60:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(lo * 1.6, 5)
    else:
        ax.set_xlim(min(lo, -1) * 1.25, max(1.0, 0.25 * abs(lo)))
    ax.set_ylim(-0.6, len(t) - 0.4)
    ax.set(xlabel="elpd_loo difference to the best variant (log density units; higher is better)"
                  + ("; symlog axis" if lo < -60 else ""),
           title="PSIS-LOO comparison of model variants")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# ---- compute-efficient sizes and timeline forecasts (bayes_scaling.analysis.compute / bayes_scaling.analysis.timeline) -------


def _band(da, ci_prob: float):
    """(low, median, high) over chain and draw, NaN draws skipped."""
    lo, hi = (1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2
    q = da.quantile([lo, 0.5, hi], dim=("chain", "draw"), skipna=True)
    return q.isel(quantile=0).values, q.isel(quantile=1).values, q.isel(quantile=2).values


def plot_compute_frontier(frontier, *, ci_prob: float = 0.9):
    """Compute-optimal model size and the loss frontier against compute, from
    :func:`bayes_scaling.analysis.compute.compute_frontier`: one line (posterior median) and ``ci_prob`` band per row of
    ``pretraining`` (from scratch: C = 6 N D; fine-tuned: C_F = 6 N D_F, pre-training compute excluded).
    Rows whose optimum sits at the edge of the search (e.g. D_F = D_F_min) are marked in the legend."""
    import matplotlib.pyplot as plt

    C = frontier["C"].values
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(frontier["pretraining"].values):
        row = frontier.sel(pretraining=name)
        edge = float(row["at_edge"].mean())
        label = str(name) + (f" ({100 * edge:.0f}% of draws at the search edge)" if edge > 0 else "")
        for ax, var in zip(axes, ("N_opt", "D_opt", "loss"), strict=True):
            lo, med, hi = _band(row[var], ci_prob)
            ax.fill_between(C, lo, hi, color=cmap(i), alpha=0.2, lw=0)
            ax.plot(C, med, color=cmap(i), lw=1.8, label=label)
    unit = frontier.attrs.get("unit", "")
    axes[0].set(ylabel="compute-optimal model size N", yscale="log")
    axes[1].set(ylabel=f"target-task data: D (scratch) or D_F (fine-tuned) [{unit}]", yscale="log")
    axes[2].set(ylabel=f"loss ({frontier.attrs.get('law', '')} law)")
    for ax in axes:
        ax.set(xscale="log", xlabel="compute C (FLOPs; C_F for fine-tuned rows)")
        ax.grid(True, which="major", alpha=0.3)
    axes[2].legend(fontsize=7, title=f"median, {100 * ci_prob:g}% band", title_fontsize=7)
    fig.tight_layout()
    return fig


def plot_forecast(forecast, *, ci_prob: float = 0.9, quantity: str = "saving"):
    """A timeline forecast from :mod:`bayes_scaling.analysis.timeline`. For :func:`forecast` (draws per pre-training
    distribution) the posterior of log10 ``quantity`` (default the saving D_req / D_F) as histograms; for
    :func:`forecast_grid` the median and ``ci_prob`` band against D_req, one line per (pretraining, N).
    Unsolved draws are counted in the legend, and the distance outside the data is in the title."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    names = forecast["pretraining"].values
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    if "D_req" in forecast.dims:
        R = forecast["D_req"].values
        j = 0
        for name in names:
            for n in forecast["N"].values:
                sel = forecast[quantity].sel(pretraining=name, N=n)
                lo, med, hi = _band(sel, ci_prob)
                ax.fill_between(R, lo, hi, color=cmap(j % 10), alpha=0.2, lw=0)
                ax.plot(R, med, color=cmap(j % 10), lw=1.8, label=f"{name}, N = {n:.2g}")
                j += 1
        ax.set(xscale="log", yscale="log", xlabel=f"D_req ({forecast.attrs.get('unit', '')})", ylabel=quantity)
        outside = f"N up to {float(np.max(forecast['N_orders_outside'].values)):+.1f} orders outside the data"
    else:
        if f"log10_{quantity}" in forecast:   # exact where the value under- or overflows
            logs = forecast[f"log10_{quantity}"]
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.log10(forecast[quantity])
        pooled = logs.values[np.isfinite(logs.values)]
        edges = np.quantile(pooled, [0.01, 0.99]) if len(pooled) else np.array([0.0, 1.0])
        bins = np.linspace(edges[0], edges[1] + 1e-9, 41)
        for i, name in enumerate(names):
            x = logs.sel(pretraining=name).values.ravel()
            ok = np.isfinite(x)
            lo, med, hi = np.quantile(x[ok], [(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2]) \
                if ok.any() else (np.nan,) * 3
            ax.hist(np.clip(x[ok], bins[0], bins[-1]), bins=bins, color=cmap(i), alpha=0.5,
                    label=f"{name}: median 1e{med:.1f}, {100 * ci_prob:g}% [1e{lo:.1f}, 1e{hi:.1f}]"
                          + (f"; {int((~ok).sum())} draw(s) unsolved" if (~ok).any() else ""))
        ax.set(xlabel=f"log10 {quantity} (outer 1% of draws piled into the end bins)", ylabel="posterior draws")
        d = forecast["D_F_orders_outside"].median().item()
        n = forecast["N_orders_outside"].median().item()
        outside = f"median D_F {d:+.1f}, N {n:+.1f} orders of magnitude outside the data"
    ax.set_title(f"{quantity}: {outside}", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_law(fit, x: str, *, series: str | None = None, ci_prob: float = 0.9, kind: str = "mean",
             n_grid: int = 60, max_series: int = 12, ax=None):
    """A law-spec fit (:class:`~bayes_scaling.inference.fit.Fit`) against one input ``x``: the runs as points
    and the posterior median and ``ci_prob`` band of the law (``kind="observation"``: of a new run), one curve
    per value of ``series`` (a group column or another input; default: the first group column, else the other
    input). Curves extend half an order of magnitude beyond the data on each side (shaded: extrapolation).

    >>> fig = plot_law(fit, "D", series="corpus")                         # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    spec, data = fit.spec, fit.data
    if x not in spec.inputs:
        raise ValueError(f"x must be one of the law's inputs {', '.join(spec.inputs)}, got {x!r}")
    others = [c for c in spec.inputs + spec.groups if c != x]
    if series is None and others:
        series = spec.groups[0] if spec.groups else others[0]
    if series is not None and series not in others:
        raise ValueError(f"series must be one of {', '.join(others)}, got {series!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
    else:
        fig = ax.figure
    keys = list(dict.fromkeys(data[series])) if series else [None]
    colours = plt.cm.viridis(np.linspace(0.0, 0.9, max(len(keys[:max_series]), 1)))
    lo_x, hi_x = float(data[x].min()), float(data[x].max())
    logx = lo_x > 0
    grid = np.geomspace(lo_x / 10**0.5, hi_x * 10**0.5, n_grid) if logx else \
        np.linspace(lo_x - 0.1 * (hi_x - lo_x), hi_x + 0.1 * (hi_x - lo_x), n_grid)
    for key, colour in zip(keys[:max_series], colours, strict=False):
        rows = data if key is None else data[data[series] == key]
        # the other columns at this series' typical value (median of numbers, the first label of groups)
        point = {c: (rows[c].median() if c in spec.inputs else rows[c].iloc[0]) for c in others if c != series}
        if key is not None:
            point[series] = key
        pts = pd.DataFrame({**{c: [v] * n_grid for c, v in point.items()}, x: grid})
        band = fit.predict(pts, kind=kind, ci_prob=ci_prob)
        label = None if key is None else f"{series} = {key:.3g}" if isinstance(key, float) else f"{series} = {key}"
        ax.plot(grid, band["median"], color=colour, lw=1.5, label=label)
        ax.fill_between(grid, band["lo"], band["hi"], color=colour, alpha=0.25, lw=0)
        ax.scatter(rows[x], rows[spec.target], color=colour, s=12, zorder=3)
    ax.axvspan(grid[0], lo_x, color="0.9", zorder=0)
    ax.axvspan(hi_x, grid[-1], color="0.9", zorder=0)
    if logx:
        ax.set_xscale("log")
    if spec.scale == "log":
        ax.set_yscale("log")
    from bayes_scaling.laws.expr import Equation

    law = spec.formula.text if isinstance(spec.formula, Equation) else f"{spec.target} = {spec.formula.text}"
    ax.set(xlabel=x, ylabel=spec.target,
           title=f"{law}: median and {100 * ci_prob:g}% band (grey: outside the data)")
    ax.title.set_fontsize(9)
    if keys[0] is not None:
        ax.legend(fontsize=7, ncol=2 if len(keys) > 6 else 1)
    if len(keys) > max_series:
        ax.text(0.01, 0.01, f"first {max_series} of {len(keys)} {series} values", transform=ax.transAxes, fontsize=7)
    return fig


def plot_calibration(result, *, methods=None, ax=None):
    """A backtest's calibration (:class:`~bayes_scaling.analysis.backtest.BacktestResult`): nominal against
    observed coverage of the held-out runs' predictive intervals, one line per method with intervals, with a
    binomial 95% band around the diagonal (what a calibrated model shows for this many held-out runs).

    >>> fig = plot_calibration(bs.analysis.backtest.backtest(runs, "chinchilla", "C > 1e20"))   # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    pts = result.points
    if methods is None:
        methods = [m for m in dict.fromkeys(pts["method"]) if pts.loc[pts["method"] == m, "lpd"].notna().any()]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.6))
    else:
        fig = ax.figure
    nominal = np.array(result.levels, dtype=float)
    grid = np.linspace(0.0, 1.0, 101)
    n = None
    for i, m in enumerate(methods):
        cov = result.coverage(m)
        n = int(cov["n"].iloc[0])
        ax.plot(cov["nominal"], cov["observed"], "o-", color=f"C{i}", label=f"{m} (n = {n})")
    if n:
        se = np.sqrt(grid * (1 - grid) / n)
        ax.fill_between(grid, np.clip(grid - 1.96 * se, 0, 1), np.clip(grid + 1.96 * se, 0, 1), color="0.88",
                        label="95% band if calibrated")
    ax.plot([0, 1], [0, 1], color="0.3", lw=1, ls="--")
    ax.set(xlim=(min(0.4, nominal.min() - 0.05), 1.0), ylim=(0.0, 1.02), xlabel="nominal coverage",
           ylabel="observed coverage of held-out runs",
           title=f"backtest calibration: holdout {result.info.get('holdout', '')}")
    ax.title.set_fontsize(9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig
