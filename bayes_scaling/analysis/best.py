"""Which group is best: posterior probabilities that each group of a fitted law (pre-trained model, pre-training
distribution, corpus) gives the lowest (or highest) target at a stated point, with how far outside the data the
point lies, overall and for the group's own runs.

The curricula comparison of Hernandez et al. generalised to any grouped law spec: for each posterior draw the
law is evaluated for every group at the point, and the group with the best value wins that draw;
``p_best`` is the fraction of draws a group wins (ties share the draw).

>>> fit = bs.fit(bs.datasets.load_lin("flan"), "rectified_finetuning", seed=1)       # doctest: +SKIP
>>> best_group(fit, at={"D": 1638400})                                                # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_scaling._numeric import nanquantile
from bayes_scaling.errors import DataError

__all__ = ["best_group"]


def best_group(fit, at: pd.DataFrame | dict, *, group: str | None = None, lower_is_better: bool = True,
               kind: str = "mean", ci_prob: float = 0.9, groups: list[str] | None = None,
               seed: int | None = None, discrepancy: float | bool | None = None) -> pd.DataFrame:
    """Posterior probability that each group is the best at each point of ``at``.

    Args:
        fit: a law-spec fit (:class:`~bayes_scaling.inference.fit.Fit`) or a transfer fit (viewed as the transfer
            law; its target ``D_T`` is better when higher: pass ``lower_is_better=False``).
        at: the point(s): the law's input columns (and any group column other than ``group``); a dict of
            scalars is one point.
        group: the group column to compare (default: the fit's only group column).
        lower_is_better: the best group has the lowest target (a loss, an error) or, if False, the highest (data).
        kind: ``"mean"`` (the law's value: which group is better in expectation) or ``"observation"`` (which
            group's next run comes out better, noise included).
        ci_prob: interval of each group's predicted target.
        groups: the groups to compare (default: all groups of the fit).
        seed: for the noise and discrepancy draws (reproducible ``p_best`` and intervals).
        discrepancy: ``tau`` per decade outside the data, as in ``Fit.predict``; ``None`` (default): the spec's.
            It enters the intervals and ``p_best_discrepancy``, where each group's prediction gets its own
            discrepancy draw (independent across groups; a misfit common to all groups would cancel in the
            ranking, so independence is the cautious end).

    Returns:
        One row per point and group, with the columns ``point``, the point's columns, ``group``, ``p_best``
        (under the law: the probability if the law held outside the data), ``p_best_discrepancy`` (each group
        with its own discrepancy draw: less sure), ``median``, ``lo``, ``hi`` of the target (the interval with
        the discrepancy, as ``Fit.predict``; the median without it: the discrepancy, centred on the law, leaves
        it where it is and would only add Monte Carlo noise), ``rank`` (by ``p_best``, 1 = most probably best),
        ``outside`` (orders of magnitude outside the whole fitted data, the largest over the distance columns) and ``outside_group`` (outside the group's own runs). Sorted by
        point, then ``p_best`` descending.
    """
    from bayes_scaling.inference.fit import as_spec_fit

    fit = as_spec_fit(fit)
    spec = fit.spec
    if not spec.groups:
        raise DataError("the law has no group column: there are no groups to compare")
    if group is None:
        if len(spec.groups) > 1:
            raise DataError(f"the law has several group columns ({', '.join(spec.groups)}); pass group=")
        group = spec.groups[0]
    if group not in spec.groups:
        raise DataError(f"group {group!r} is not a group column of the law ({', '.join(spec.groups)})")
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
    points = pd.DataFrame([at]) if isinstance(at, dict) else pd.DataFrame(at).reset_index(drop=True)
    if len(points) == 0:
        raise DataError("at: no points given")
    if group in points.columns:
        raise DataError(f"at: leave out the column {group!r}: every group is compared at the point")
    known = [str(g) for g in fit.labels[group]]
    if groups is not None:
        unknown = sorted(set(map(str, groups)) - set(known))
        if unknown:
            raise DataError(f"groups {', '.join(unknown)} are not in the fit (known: {', '.join(known)})")
        known = [g for g in known if g in set(map(str, groups))]
    if len(known) < 2:
        raise DataError(f"only {len(known)} group to compare")
    G, P = len(known), len(points)
    grid = points.loc[points.index.repeat(G)].reset_index(drop=True)
    grid[group] = np.tile(known, P)
    for within in dict.fromkeys(p.within for p in spec.parameters.values() if p.by == group and p.within):
        if within not in grid:     # two-level pooling: each group's parent (family) as in the fitted data
            parent = dict(zip(fit.table[group].astype(str), fit.table[within], strict=True))
            grid[within] = grid[group].map(parent)
    law = fit.predict(grid, kind=kind, seed=seed, discrepancy=0)[spec.target].values.reshape(-1, P, G)
    draws = fit.predict(grid, kind=kind, seed=seed, discrepancy=discrepancy)[spec.target].values
    flat = draws.reshape(-1, P, G)                                           # samples, point, group
    # both are returned; the order here is under the law. Which scores better on real held-out runs depends on
    # how many groups and how much of their misfit is shared (README, "Should P(best) carry the discrepancy?"):
    # Lin et al.'s 6 demo models, the law (log score -0.39 vs -0.65); all 30, the discrepancy (-2.66 vs -3.70),
    # which select_model therefore ranks by
    p_best = _p_best(law, lower_is_better)                                  # point, group
    p_disc = _p_best(flat, lower_is_better)
    q = [(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2]
    lo, _, hi = nanquantile(flat, q, axis=0)
    med = np.nanmedian(law, axis=0)   # the discrepancy is centred: it leaves the median
    overall = fit.outside(grid)["outside"].to_numpy()
    by_group = np.zeros(len(grid))
    data = fit.table
    for g in known:
        rows = np.flatnonzero(grid[group].astype(str).to_numpy() == g)
        own = data[data[group].astype(str) == g]
        by_group[rows] = _outside(own, spec.inputs, grid.iloc[rows])
    out = grid.copy()
    out.insert(0, "point", np.repeat(np.arange(P), G))
    out = out.rename(columns={group: "group"})
    out["p_best"] = p_best.ravel()
    out["p_best_discrepancy"] = p_disc.ravel()
    out["median"], out["lo"], out["hi"] = med.ravel(), lo.ravel(), hi.ravel()
    out["outside"], out["outside_group"] = overall, by_group
    out = out.sort_values(["point", "p_best"], ascending=[True, False], kind="stable").reset_index(drop=True)
    out.insert(out.columns.get_loc("p_best_discrepancy") + 1, "rank", out.groupby("point").cumcount() + 1)
    out.attrs.update(group=group, target=spec.target, lower_is_better=lower_is_better, kind=kind,
                     ci_prob=ci_prob)
    return out


def _p_best(draws: np.ndarray, lower_is_better: bool) -> np.ndarray:
    """Share of draws (samples x point x group) each group wins at each point (ties share the draw)."""
    score = np.where(np.isfinite(draws), draws, np.inf if lower_is_better else -np.inf)
    best = score.min(axis=2, keepdims=True) if lower_is_better else score.max(axis=2, keepdims=True)
    wins = score == best
    return (wins / wins.sum(axis=2, keepdims=True)).mean(axis=0)


def _outside(data: pd.DataFrame, inputs: list[str], points: pd.DataFrame) -> np.ndarray:
    """The distance of each point outside ``data`` (as ``Fit.outside``: :mod:`bayes_scaling.laws.discrepancy`)."""
    from bayes_scaling.laws.discrepancy import distance_outside

    return distance_outside(data, points.reset_index(drop=True), inputs)
