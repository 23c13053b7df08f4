"""Figures (matplotlib). Each function returns its ``Figure``."""

from __future__ import annotations

import numpy as np

from .predictions import predict

__all__ = ["plot_transfer"]


def plot_transfer(fit, *, ci_prob: float = 0.94, n_grid: int = 40, sizes: int | None = 4):
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
    for ax, name in zip(axes[0], names):
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
