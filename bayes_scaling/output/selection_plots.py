"""The figure of a model selection (:func:`bayes_scaling.analysis.selection.select_model`): learning curves with
predictive bands out to the full fine-tuning set, and the posterior probability that each model is the best."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_selection"]


def plot_selection(selection, *, models: list[str] | None = None, max_models: int = 8, n_grid: int = 50,
                   axes=None):
    """Left: each model's runs (filled: fitted; hollow: not fitted, beyond ``max_D`` or before the power phase),
    the posterior median of the law with its ``ci_prob`` band of a new run's loss from the smallest fitted run out
    to ``target_D``,
    and the predictive interval at ``target_D`` (bar). Right: P(best) per model, the selection's ranking column
    (bars: ``p_best_discrepancy`` by default; ticks: ``p_best``, the law alone), the actual best, when known,
    marked with a star.

    Args:
        selection: a :class:`~bayes_scaling.analysis.selection.ModelSelection`.
        models: the models to draw (default: the ``max_models`` most probably best).

    >>> fig = plot_selection(bs.analysis.select_model(runs, ratio=8, seed=1))        # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    fit, table = selection.fit, selection.table
    spec = fit.spec
    group = table.columns[0]
    x, y = spec.inputs[0], spec.target
    if models is None:
        models = list(table[group].head(max_models))
    unknown = sorted(set(models) - set(table[group]))
    if unknown:
        raise ValueError(f"models not in the selection: {', '.join(unknown)}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.6, 1]})
    else:
        fig = axes[0].figure
    ax, bx = axes
    data = fit.data
    lo_x = float(data.loc[data[x] > 0, x].min())
    grid = np.geomspace(lo_x, selection.target_D, n_grid)
    colours = plt.cm.tab10(np.arange(len(models)) % 10)
    held = getattr(selection, "held_out", None)
    for m, colour in zip(models, colours, strict=True):
        pts = pd.DataFrame({group: [m] * n_grid, x: grid})
        band = fit.predict(pts, kind="observation", ci_prob=selection.ci_prob, seed=0)
        mean = fit.predict(pts, kind="mean", ci_prob=selection.ci_prob)
        ax.plot(grid, mean["median"], color=colour, lw=1.4, label=m)
        ax.fill_between(grid, band["lo"], band["hi"], color=colour, alpha=0.18, lw=0)
        own = data[data[group].astype(str) == m]
        ax.scatter(own[x], own[y], color=colour, s=14, zorder=3)
        if held is not None:
            h = held[held[group].astype(str) == m]
            ax.scatter(h[x], h[y], facecolors="none", edgecolors=colour, s=22, zorder=3)
        row = table[table[group] == m].iloc[0]
        ax.errorbar([selection.target_D * 1.06], [row["predicted"]], yerr=[[row["predicted"] - row["lo"]],
                    [row["hi"] - row["predicted"]]], color=colour, capsize=3, lw=1.2)
    ax.axvline(selection.max_D, color="grey", ls=":", lw=1)
    ax.text(selection.max_D, 0.98, " max_D", transform=ax.get_xaxis_transform(), va="top", fontsize=8,
            color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.yaxis.set_major_formatter(ScalarFormatter())
    lo_y, hi_y = ax.get_ylim()
    # within a decade a log axis has no major tick: label the minor ones, else the axis has no numbers
    ax.yaxis.set_minor_formatter(ScalarFormatter() if hi_y < 10 * lo_y else NullFormatter())
    ax.set_xlabel(f"{x} (fine-tuning examples)")
    ax.set_ylabel(y)
    ax.set_title(f"fitted on {x} <= {selection.max_D:g}; {100 * selection.ci_prob:g}% predictive bands",
                 fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    shown = table[table[group].isin(models)].iloc[::-1]
    from bayes_scaling.analysis.selection import RANK_COLUMNS

    rank_by = selection.metrics.get("rank_by", "law")
    column = RANK_COLUMNS[rank_by]
    bx.barh(shown[group], shown[column], color=[colours[models.index(m)] for m in shown[group]])
    from matplotlib.patches import Patch

    handles = [Patch(color="lightgrey", label="with the discrepancy" if rank_by == "discrepancy" else "under the law")]
    if rank_by == "discrepancy":      # the law alone, for comparison: surer, and on real runs worse scored
        handles += bx.plot(shown["p_best"], np.arange(len(shown)), "|", color="black", ms=9, ls="none",
                           label="under the law alone")
    best = selection.metrics.get("actual_best")
    if best in set(shown[group]):
        k = list(shown[group]).index(best)
        handles += bx.plot([shown[column].iloc[k]], [k], marker="*", color="black", ms=10, ls="none",
                           label="actual best at full data")
    bx.legend(handles=handles, fontsize=7, loc="lower right")
    bx.set_xlim(0, 1)
    bx.set_xlabel(f"P(lowest {y} at {x} = {selection.target_D:g})")
    if not getattr(selection, "converged", True):
        bx.set_title(f"NOT CONVERGED (max R-hat {selection.diagnostics.r_hat_max:.2f}): P(best) unreliable",
                     fontsize=9, color="red")
    bx.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig
