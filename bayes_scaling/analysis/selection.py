"""Choosing a pre-trained model to fine-tune from small fine-tuning runs (Lin et al. 2024, Table 1).

The task of Lin et al. (2024), "Selecting Large Language Model to Fine-tune via Rectified Scaling Law" (ICML,
arXiv:2402.02314): each candidate model is fine-tuned on small subsets only, of at most ``max_D`` examples (their
budget ratio ``gamma = max_D / target_D``, 1/8 ... 1/512 of the full 1,638,400 examples), and the loss each model
would reach after fine-tuning on all ``target_D`` examples is predicted. Their law,

    L(D) = B[m] / (D_l[m] + D**beta[m]) + E[m],

has a pre-power phase (``D**beta`` comparable to ``D_l``) and a power phase, where ``log L`` falls on a straight
line in ``log D`` until the floor ``E`` is felt. Their method, AtS (Accept then Stop), finds each model's power
phase from its largest runs down (:func:`power_phase`) and extrapolates the line through those runs. Here the
prediction is Bayesian, on the same runs by default (``window="power_phase"``): one fit of the power law

    L(D) = L1[m] / (D / D_ref)**beta[m]                 (:func:`power_phase_spec`)

to every model's power-phase runs with ``L1`` and ``beta`` partially pooled across models (a model with three
runs borrows its slope from the others'); its posterior gives, per model, the predicted loss at ``target_D``
with a predictive interval, and the posterior probability that the model is the best (lowest loss;
:func:`bayes_scaling.analysis.best.best_group`). The model selected is the one most probably best. These fits
converge on all of Lin et al.'s runs (R-hat <= 1.01, no divergence: docs/validation.md).

``window="all"`` fits the whole rectified law to every run with ``0 < D <= max_D`` instead (the floor ``E``
then set by its prior, as the runs of Table 1's budgets have not flattened); it predicts worse on Lin et al.'s
data, and its 30-model fits do not reach R-hat 1.01.

With ``window="all"`` the law is fitted in a parameterization whose parameters the runs identify
(:func:`selection_spec`), not in Lin et al.'s (B, D_l, beta, E): on runs that have not flattened (every budget
of Table 1) the floor E is barely constrained by the data, and in Lin et al.'s parameterization B, D_l, beta and E all move with it, a curved
ridge per model that NUTS did not cross (FLAN, 30 models: max R-hat 2.1 at 1/8, bulk ESS < 10). Here, with
``D_ref`` the geometric centre of the fitted runs' D range and ``x = D / D_ref``::

    L(D) = f L1 + ((1 - f) L1 + s) / (1 + s x**beta / ((1 - f) L1))

``L1[m]`` is the loss at ``D_ref`` (pinned by the runs), ``s[m]`` the scale of the decline around it, ``beta[m]``
Lin et al.'s exponent, and ``f[m]`` = E / L1 the floor as a fraction of the loss at ``D_ref``: the one weakly
identified direction, now nearly orthogonal to the others (L1, s and beta hardly move with it), informed by its
prior (logit-normal, mean 0.3) and, through the pooling, by all the models' runs. All four are partially pooled
by model. It is the same curve: ``E = f L1``,
``D_l = D_ref**beta (1 - f) L1 / s``, ``B = ((1 - f) L1 + s) D_l`` (:func:`lin_parameters`). Runs at D = 0 are
left out, as by Lin et al.'s AtS: the zero-shot losses are far off the law (FLAN: up to 29 nats for models at 4
after 200 examples; the first 200 examples cut the loss 3 to 8 times more than the next 200, where the law
allows at most about 2.5 times).

Their two metrics (their code: ``src/draw.py``, ``selection_performance``), across the M candidate models:

- ``pearson_correlation``: Pearson's r between the predicted and the actual full-data losses,
  ``r = sum_m (p_m - p_bar)(a_m - a_bar) / sqrt(sum_m (p_m - p_bar)**2 * sum_m (a_m - a_bar)**2)``;
- ``relative_accuracy``: where the selected model's actual loss lies between the worst and the best model's,
  ``RelAcc = (L_worst - L_selected) / (L_worst - L_best)`` (1: the best model was selected; 0: the worst).

Their methods of Table 1 need no Bayesian fit: ``ats`` (the line through each model's power phase; reproduces
their AtS column), ``zero_shot`` (rank by the loss before fine-tuning, D = 0), ``subtuning`` (rank by the loss
at ``max_D``), ``model_size`` (rank by parameter count, largest first; its Pearson feature is ``log(size)``):
:func:`baseline_selection`.

>>> sel = select_model(bs.datasets.load_lin("flan"), ratio=8, seed=1)     # doctest: +SKIP
>>> sel.table.head(3)                                                      # doctest: +SKIP
>>> sel.metrics                                                            # doctest: +SKIP
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import ConvergenceWarning, DataError, format_rows

__all__ = ["pearson_correlation", "relative_accuracy", "baseline_selection", "select_model", "ModelSelection",
           "lin_table1", "read_lin_table1", "selection_spec", "power_phase", "power_phase_spec", "lin_parameters",
           "LIN_FULL_D", "LIN_RATIOS", "BASELINES", "WINDOWS", "RHAT_MAX"]

#: Lin et al.'s full fine-tuning set: 1,638,400 examples (200 * 2**13).
LIN_FULL_D = 1_638_400
#: Their budget ratios: the runs used have at most LIN_FULL_D / ratio examples (Table 1: 1/8 ... 1/512).
LIN_RATIOS = (8, 16, 32, 64, 128, 256, 512)
#: Their selection methods that need no Bayesian fit (Table 1 columns AtS, ZeroShot, SubTuning, ModelSize).
BASELINES = ("ats", "zero_shot", "subtuning", "model_size")
#: ``select_model(window=...)``: which of each model's runs are fitted (:func:`power_phase`, or all).
WINDOWS = ("power_phase", "all")
#: AtS's phase-transition test (Lin et al.'s code, ``src/model_select.py``): start from the ``k`` largest runs,
#: and stop adding smaller ones at the first lying more than ``delta`` residual standard deviations off the line.
ATS_K, ATS_DELTA = 3, 5.0
#: ``select_model(rank_by=...)``: the column of P(best) that orders the candidates.
RANK_COLUMNS = {"discrepancy": "p_best_discrepancy", "law": "p_best"}
#: A selection whose fit has a larger R-hat (or any divergence) has not converged: its P(best) is not reported
#: as trustworthy (:func:`select_model`).
RHAT_MAX = 1.01


def _reference_D(sizes) -> float:
    """The geometric centre of the positive sizes' range, to 2 significant digits (6,400 for 200 ... 204,800)."""
    d = np.asarray(sizes, dtype=float)
    d = d[d > 0]
    if not len(d):
        raise DataError("no runs with D > 0 to fit")
    return float(f"{np.sqrt(d.min() * d.max()):.2g}")


def selection_spec(D_ref: float, *, group: str = "model", size: str = "D", target: str = "loss",
                   f_parameterization: str = "auto", within: str | None = None):
    """Lin et al.'s rectified law ``B / (D_l + D**beta) + E`` in the parameterization :func:`select_model` fits
    (module docstring): ``f L1 + ((1 - f) L1 + s) / (1 + s (D / D_ref)**beta / ((1 - f) L1))``, with ``L1`` (the
    loss at ``D_ref``), ``s``, ``beta`` and ``f = E / L1`` partially pooled by ``group``.

    Priors (weakly informative, on the data's scale): ``L1`` LogNormal around the least-squares value, sd 1 on
    the log scale; ``s`` the same with sd 2; ``beta`` the exponent default (median 0.3, sd 1); ``f`` logit-normal,
    mean 0.3, sd 1 (95%: 0.06 to 0.76 of the loss at ``D_ref``). ``L1`` and ``s`` are centred (each model's runs
    pin them); ``beta`` and ``f`` (``f_parameterization``) by default left to the data's choice
    (:func:`~bayes_scaling.models.spec_model.choose_parameterization`: centred with >= 10 runs per model, as at
    1/8 and 1/16, else non-centred). Measured at 1/8, seed 1: on the demo's six FLAN models f non-centred
    converged (1000 x 4: R-hat 1.006, ESS 517; 1500 x 4: 1.003, 919; no divergence) where centred gave 3
    divergences in 6000 draws; but on all 30 FLAN models non-centred was worse (R-hat 1.11, ESS 29, 28
    divergences) than centred (R-hat 1.02, ESS 88, none), and on simulated curves whose floor the runs pin
    non-centred did not converge (R-hat 1.04, ESS 124) where centred did (1.006, 1160). No single choice
    converges everywhere yet.

    ``within`` (e.g. ``"family"``): every parameter pooled in two levels, models within their families and the
    families across the population (Lin et al.'s 30 models come from 12 families).

    >>> selection_spec(6400).formula.text
    'f * L1 + ((1 - f) * L1 + s) / (1 + s * (D / 6400)**beta / ((1 - f) * L1))'
    """
    from bayes_scaling.laws.spec import LawSpec

    if not (np.isfinite(D_ref) and D_ref > 0):
        raise ValueError(f"D_ref must be a positive number, got {D_ref!r}")
    nest = {"within": within} if within is not None else {}
    return LawSpec.from_dict({
        "law": {"name": "rectified_finetuning_selection", "target": target,
                "formula": f"f * L1 + ((1 - f) * L1 + s) / (1 + s * ({size} / {D_ref:g})**beta / ((1 - f) * L1))",
                "description": "Lin et al. 2024 rectified fine-tuning law B / (D_l + D**beta) + E, reparameterized "
                               "for sampling: L1 = loss at D_ref, s = decline scale, f = E / L1 (shared)",
                "reference": "Lin et al. 2024, arXiv:2402.02314, eq. 3"},
        "likelihood": {"family": "normal", "scale": "log"},
        "parameters": {
            "L1": {"by": group, **nest, "sigma": 1.0, "parameterization": "centred",
                   "description": f"loss after fine-tuning on D_ref = {D_ref:g} examples"},
            "s": {"by": group, **nest, "sigma": 2.0, "parameterization": "centred",
                  "description": "scale of the loss's decline around D_ref"},
            "beta": {"by": group, **nest, "description": "Lin et al.'s exponent beta"},
            "f": {"by": group, **nest, "domain": "unit", "mean": 0.3, "sigma": 1.0, "parameterization": f_parameterization,
                  "description": "the floor E as a fraction of L1"}}})


def _power_window(D: np.ndarray, y: np.ndarray, k: int = ATS_K, delta: float = ATS_DELTA) -> int:
    """How many of the largest runs (``D`` ascending) are in the power phase, by AtS's test (:func:`power_phase`)."""
    lx, ly = np.log(D), np.log(y)
    n = len(lx)
    if n <= k:
        return n
    p = k
    for p in range(k, n):
        slope, icpt = np.polyfit(lx[-p:], ly[-p:], 1)
        sd = np.std(ly[-p:] - (slope * lx[-p:] + icpt))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(ly[-p - 1] - (slope * lx[-p - 1] + icpt)) / sd
        if not z <= delta:
            break
    return p


def power_phase(data: pd.DataFrame, *, max_D: float, group: str = "model", size: str = "D", target: str = "loss",
                k: int = ATS_K, delta: float = ATS_DELTA) -> np.ndarray:
    """The runs in each model's *power phase*, as Lin et al.'s AtS chooses them (their ``src/model_select.py``):
    a boolean per row of ``data``, True for the runs with ``0 < D <= max_D`` that AtS would fit.

    Past the pre-power phase the rectified law ``B / (D_l + D**beta) + E`` is a straight line in
    ``(log D, log L)`` (``D**beta >> D_l``, and on these budgets ``E`` is not yet felt). Per model, with its runs
    ``D_1 < ... < D_n``: the line through the ``p`` largest (``p = k`` first) predicts ``log L`` at the next
    smaller run; the run is accepted, and ``p`` grows by one, while its residual is at most ``delta`` times the
    standard deviation of the line's residuals, ``|log L_j - line(log D_j)| <= delta * sd``; the first run that
    fails stops the walk. As in their code the smallest run is never accepted when every test passes (``p`` stops
    at ``n - 1``), and a model with at most ``k`` runs keeps them all.

    >>> runs = pd.DataFrame({"model": "m", "D": 200.0 * 2 ** np.arange(6), "loss": [9, 5, 4.02, 3.58, 3.25, 2.91]})
    >>> power_phase(runs, max_D=6400).astype(int).tolist()     # 5 lies far above the line through the rest
    [0, 0, 1, 1, 1, 1]
    >>> runs.loc[2, "loss"] = 4.1                              # now so does 4.1
    >>> power_phase(runs, max_D=6400).astype(int).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    if not (isinstance(k, int | np.integer) and k >= 2):
        raise ValueError(f"k must be an integer >= 2 (a line needs two runs), got {k!r}")
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta!r}")
    data = _check_runs(data, group, size, target)
    mask = np.zeros(len(data), dtype=bool)
    cand = data[(data[size] > 0) & (data[size] <= max_D)].sort_values(size, kind="stable")
    for _, rows in cand.groupby(cand[group].astype(str), sort=False):
        p = _power_window(rows[size].to_numpy(float), rows[target].to_numpy(float), k, delta)
        mask[rows.index[len(rows) - p:]] = True
    return mask


def power_phase_spec(D_ref: float, *, group: str = "model", size: str = "D", target: str = "loss",
                     slope: str = "separate", within: str | None = None):
    """The law :func:`select_model` fits to each model's power-phase runs (:func:`power_phase`) by default:
    Lin et al.'s rectified law where ``D**beta >> D_l`` and the floor is not yet felt, a power law

        ``L(D) = L1 / (D / D_ref)**beta``        (``log L = log L1 - beta log(D / D_ref)``)

    with noise normal on ``log L`` (one scale for all models). ``L1[m]``, the loss at ``D_ref``, is partially
    pooled by ``group`` (centred; LogNormal population prior around the least-squares value, sd 1 on the log
    scale). The slope ``beta[m]`` (real: a loss may also rise) is, with ``slope="separate"`` (default), each
    model's own, prior Normal(0, 1) (flat over the slopes of Lin et al.'s runs, 0.007 to 0.3): AtS's per-model
    line (Lin et al. 2024, Algorithm 1) with a posterior for every prediction, and P(best); with
    ``slope="pooled"``, partially pooled (centred, population mean Normal(0, 1), spread ``Gamma(2, 2 / 0.1)``),
    a model's slope drawn toward the others' (``within``: both parameters in two levels, as
    :func:`selection_spec`). The default converges on Lin et al.'s 30 models x 3 targets x 7 budgets (R-hat <=
    1.01, no divergence: docs/validation.md); pooled slopes, tried on two of those cells, scored lower in Pearson r
    (by 0.006).

    >>> power_phase_spec(25600).formula.text
    'L1 / (D / 25600)**beta'
    """
    from bayes_scaling.laws.spec import LawSpec

    if not (np.isfinite(D_ref) and D_ref > 0):
        raise ValueError(f"D_ref must be a positive number, got {D_ref!r}")
    if slope not in ("separate", "pooled"):
        raise ValueError(f"slope must be 'separate' or 'pooled', got {slope!r}")
    nest = {"within": within} if within is not None else {}
    beta = ({"by": group, "pooling": "none"} if slope == "separate" else
            {"by": group, **nest, "spread": 0.1, "parameterization": "centred"})
    return LawSpec.from_dict({
        "law": {"name": "rectified_finetuning_power_phase", "target": target,
                "formula": f"L1 / ({size} / {D_ref:g})**beta",
                "description": "Lin et al. 2024 rectified fine-tuning law in its power phase (D**beta >> D_l, "
                               "floor not reached): a power law per model",
                "reference": "Lin et al. 2024, arXiv:2402.02314, eq. 3 and Algorithm 1 (AtS)"},
        "likelihood": {"family": "normal", "scale": "log"},
        "parameters": {
            "L1": {"by": group, **nest, "sigma": 1.0, "parameterization": "centred",
                   "description": f"loss after fine-tuning on D_ref = {D_ref:g} examples"},
            "beta": {**beta, "domain": "real", "mu": 0.0, "sigma": 1.0,
                     "description": "the power-phase slope: -d log L / d log D"}}})


def lin_parameters(fit, D_ref: float | None = None) -> pd.DataFrame:
    """Posterior medians (and 90% intervals) of Lin et al.'s ``B, D_l, beta, E`` per model from a fit of
    :func:`selection_spec` (``E = f L1``, ``D_l = D_ref**beta (1 - f) L1 / s``, ``B = ((1 - f) L1 + s) D_l``);
    ``D_ref`` is read from the fit's formula when not given."""
    post = fit.posterior
    missing = [v for v in ("L1", "s", "beta", "f") if v not in post]
    if missing:
        raise ValueError(f"not a selection_spec fit (no {', '.join(missing)} in its posterior): lin_parameters reads "
                         "the whole-curve fit, select_model(..., window='all')")
    if D_ref is None:
        m = re.search(r"/ ([0-9.e+]+)\)\*\*beta", fit.spec.formula.text)
        if not m:
            raise ValueError("not a selection_spec fit; give D_ref")
        D_ref = float(m.group(1))
    gdim = [d for d in post["L1"].dims if d not in ("chain", "draw")][0]
    L1, s, beta, f = (post[v] for v in ("L1", "s", "beta", "f"))
    E = f * L1
    D_l = D_ref**beta * (1 - f) * L1 / s
    B = ((1 - f) * L1 + s) * D_l
    rows = []
    for name, da in (("B", B), ("D_l", D_l), ("beta", beta), ("E", E)):
        q = da.quantile([0.05, 0.5, 0.95], dim=("chain", "draw")).transpose(gdim, "quantile").values
        rows += [{"parameter": name, gdim: str(g), "median": q[i, 1], "eti90_lb": q[i, 0], "eti90_ub": q[i, 2]}
                 for i, g in enumerate(post[gdim].values)]
    return pd.DataFrame(rows)


def pearson_correlation(predicted, actual) -> float:
    """Pearson's correlation between predicted and actual values (Lin et al.'s ``PearCorr``, as a fraction).

    ``r = sum (p - p_bar)(a - a_bar) / sqrt(sum (p - p_bar)**2 * sum (a - a_bar)**2)``.

    >>> round(pearson_correlation([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]), 4)
    0.982
    """
    p = np.asarray(predicted, dtype=float)
    a = np.asarray(actual, dtype=float)
    if p.shape != a.shape or p.ndim != 1:
        raise DataError(f"predicted and actual must be 1-d and of one length, got shapes {p.shape} and {a.shape}")
    if len(p) < 2:
        raise DataError(f"a correlation needs at least 2 values, got {len(p)}")
    for name, v in (("predicted", p), ("actual", a)):
        bad = np.flatnonzero(~np.isfinite(v))
        if len(bad):
            raise DataError(f"{name}: non-finite values at {format_rows(bad)}; expected finite numbers")
        if np.ptp(v) == 0:
            raise DataError(f"{name}: all values are equal ({v[0]:g}); the correlation is undefined")
    dp, da = p - p.mean(), a - a.mean()
    return float(np.sum(dp * da) / np.sqrt(np.sum(dp**2) * np.sum(da**2)))


def relative_accuracy(actual: pd.Series | dict, selected: Any, *, lower_is_better: bool = True) -> float:
    """Lin et al.'s relative accuracy (``RelAcc``, as a fraction) of selecting ``selected``.

    ``RelAcc = (L_worst - L_selected) / (L_worst - L_best)`` over the actual full-data losses ``actual`` (one
    per model): 1 when the best model is selected, 0 for the worst (for ``lower_is_better=False`` the same with
    the signs turned: ``(selected - worst) / (best - worst)``).

    >>> round(relative_accuracy({"a": 1.5, "b": 1.6, "c": 2.0}, "b"), 12)
    0.8
    """
    act = pd.Series(actual, dtype=float)
    if act.index.has_duplicates:
        raise DataError(f"actual: models given twice: {', '.join(map(str, act.index[act.index.duplicated()]))}")
    bad = act.index[~np.isfinite(act.to_numpy())]
    if len(bad):
        raise DataError(f"actual: non-finite losses for {', '.join(map(str, bad))}")
    if selected not in act.index:
        raise DataError(f"the selected model {selected!r} has no actual value (known: "
                        f"{', '.join(map(str, act.index))})")
    worst, best = (act.max(), act.min()) if lower_is_better else (act.min(), act.max())
    if worst == best:
        raise DataError("actual: every model has the same value; the relative accuracy is undefined")
    return float((worst - act[selected]) / (worst - best))


def _check_runs(data: pd.DataFrame, group: str, size: str, target: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a DataFrame with columns {group}, {size}, {target}")
    missing = [c for c in (group, size, target) if c not in data.columns]
    if missing:
        raise DataError(f"data: missing column(s) {', '.join(missing)}; expected one row per fine-tuning run with "
                        f"columns {group} (the candidate), {size} (fine-tuning examples), {target}")
    out = data.reset_index(drop=True)
    for c in (size, target):
        v = pd.to_numeric(out[c], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(v))
        if len(bad):
            raise DataError(f"column {c!r}: missing or non-numeric values at rows {format_rows(bad)}")
        neg = np.flatnonzero(v < 0) if c == size else np.flatnonzero(v <= 0)
        if len(neg):
            raise DataError(f"column {c!r}: expected {'>= 0' if c == size else '> 0'}, got "
                            f"{', '.join(f'{x:g}' for x in v[neg][:5])} at rows {format_rows(neg)}")
        out[c] = v
    dup = out.duplicated([group, size], keep=False).to_numpy()
    if dup.any():
        raise DataError(f"data: several runs of one {group} at one {size}, rows {format_rows(np.flatnonzero(dup))}; "
                        "expected one loss per (model, size): average the repeats first")
    return out


def _actual(data: pd.DataFrame, group: str, size: str, target: str, target_D: float) -> pd.Series | None:
    at = data[data[size] == target_D]
    return at.set_index(at[group].astype(str))[target] if len(at) else None


def baseline_selection(data: pd.DataFrame, method: str, *, max_D: float, target_D: float = LIN_FULL_D,
                       group: str = "model", size: str = "D", target: str = "loss",
                       model_size: str = "size") -> dict:
    """One of Lin et al.'s selection baselines, with its metrics when the actual losses at ``target_D`` are there.

    ``method``: ``"ats"`` (their Accept-then-Stop: per model, the least-squares line in ``(log D, log L)``
    through its :func:`power_phase` runs, extrapolated to ``target_D``; feature: that predicted loss, lowest
    selected), ``"zero_shot"`` (the loss at D = 0, lowest selected), ``"subtuning"`` (the loss at ``max_D``,
    lowest selected) or ``"model_size"`` (feature ``log(size)``, largest selected).

    Returns:
        ``{"feature": Series by model, "selected": model, "pearson": r, "relative_accuracy": RelAcc}``, the
        metrics NaN without actual losses at ``target_D``.

    >>> baseline_selection(bs.datasets.load_lin("flan"), "subtuning", max_D=204800)["selected"]  # doctest: +SKIP
    """
    if method not in BASELINES:
        raise ValueError(f"method must be one of {', '.join(BASELINES)}, got {method!r}")
    data = _check_runs(data, group, size, target)
    keys = data[group].astype(str)
    if method == "ats":
        fitted = power_phase(data, max_D=max_D, group=group, size=size, target=target)
        pred = {}
        for m, rows in data[fitted].groupby(keys[fitted]):
            slope, icpt = np.polyfit(np.log(rows[size].to_numpy(float)), np.log(rows[target].to_numpy(float)), 1)
            pred[m] = float(np.exp(slope * np.log(target_D) + icpt))
        missing = sorted(set(keys) - set(pred))
        if missing:
            raise DataError(f"ats: no run with 0 < {size} <= {max_D:g} for {', '.join(missing)}")
        feature = pd.Series(pred)
        selected = feature.idxmin()
    elif method == "model_size":
        if model_size not in data.columns:
            raise DataError(f"data: the model_size baseline needs a column {model_size!r} (parameters)")
        sizes = data.groupby(keys)[model_size].first().astype(float)
        feature, selected = np.log(sizes), sizes.idxmax()
    else:
        at = 0.0 if method == "zero_shot" else float(max_D)
        rows = data[data[size] == at]
        feature = rows.set_index(keys[rows.index])[target]
        missing = sorted(set(keys) - set(feature.index))
        if missing:
            raise DataError(f"{method}: no run at {size} = {at:g} for {', '.join(missing)}")
        selected = feature.idxmin()
    out = {"feature": feature, "selected": selected, "pearson": np.nan, "relative_accuracy": np.nan}
    actual = _actual(data, group, size, target, target_D)
    if actual is not None:
        out["pearson"] = pearson_correlation(feature.reindex(actual.index), actual)
        out["relative_accuracy"] = relative_accuracy(actual, selected)
    return out


@dataclass
class ModelSelection:
    """The result of :func:`select_model`.

    ``table``: one row per candidate, most probably best first (``metrics["rank_by"]``; default by
    ``p_best_discrepancy``): the group column, ``p_best`` (posterior
    probability of the lowest loss at ``target_D`` under the law), ``p_best_discrepancy`` (with an independent
    discrepancy per model: less sure; see :func:`~bayes_scaling.analysis.best.best_group`),
    ``rank``, ``predicted`` (posterior median of the law's loss),
    ``lo``/``hi`` (predictive interval of a run's loss, noise included), ``outside`` (orders of magnitude of
    ``target_D`` beyond the model's own runs), ``n_runs`` (runs fitted), and ``actual`` when the data hold the
    loss at ``target_D`` (kept out of the fit). ``metrics``: ``pearson``, ``relative_accuracy``,
    ``actual_best``, ``p_best_of_actual_best`` (and ``p_best_discrepancy_of_actual_best``), ``coverage``
    (fraction of actual losses inside [lo, hi]); NaN without actual losses. ``held_out``: the runs not fitted
    (above ``max_D``, D = 0 unless ``zero_shot``, and with ``window="power_phase"`` those before each model's
    power phase).
    ``converged``: max R-hat <= :data:`RHAT_MAX` and no divergence (``diagnostics``: the fit's
    :class:`~bayes_scaling.inference.sampling.Diagnostics`); when False, ``p_best`` is not to be trusted (the
    chains disagree about it) and :func:`select_model` has warned."""

    table: pd.DataFrame
    selected: str
    fit: Any
    max_D: float
    target_D: float
    ci_prob: float
    metrics: dict = field(default_factory=dict)
    held_out: pd.DataFrame | None = None
    diagnostics: Any = None

    @property
    def converged(self) -> bool:
        d = self.diagnostics
        return d is None or (d.r_hat_max <= RHAT_MAX and d.divergences == 0)

    def __repr__(self) -> str:
        m = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in self.metrics.items())
        flag = "" if self.converged else f"NOT CONVERGED ({self.diagnostics}); "
        return (f"ModelSelection({flag}selected={self.selected!r}, max_D={self.max_D:g}, "
                f"target_D={self.target_D:g}, {len(self.table)} candidates; {m})")


def select_model(data: pd.DataFrame, *, max_D: float | None = None, ratio: float | None = None,
                 target_D: float = LIN_FULL_D, model=None, group: str = "model",
                 size: str = "D", target: str = "loss", zero_shot: bool = False, ci_prob: float = 0.9,
                 seed: int | None = None, min_runs: int = 3, require_converged: bool = False,
                 within: str | None = None, rank_by: str = "discrepancy", window: str = "power_phase",
                 **fit_kwargs) -> ModelSelection:
    """Predict each candidate's loss after fine-tuning on ``target_D`` examples from its runs with at most
    ``max_D`` examples, and the posterior probability that each is the best.

    Args:
        data: one row per fine-tuning run: ``group`` (the candidate model), ``size`` (examples, ``D``) and
            ``target`` (test loss), e.g. ``bs.datasets.load_lin("flan")``. Runs above ``max_D`` are never fitted;
            those at ``target_D`` serve as the actual losses for the metrics.
        max_D: the largest fine-tuning set used; or ``ratio``: ``max_D = target_D / ratio`` (Lin et al.'s
            budget 1/ratio).
        target_D: the full fine-tuning set size to predict at (Lin et al.: 1,638,400).
        window: which runs with ``0 < D <= max_D`` are fitted: ``"power_phase"`` (default; each model's runs in
            its power phase, :func:`power_phase`, as Lin et al.'s AtS) or ``"all"``.
        model: the law spec; default (None) with ``window="power_phase"`` the partially pooled power law
            :func:`power_phase_spec`, with ``window="all"`` the whole rectified law in the parameterization
            :func:`selection_spec` (module docstring); ``D_ref`` the geometric centre of the fitted runs' D
            range. Any spec mapping ``size`` to ``target`` with ``group`` among its group columns works, e.g.
            ``"rectified_finetuning"`` (the same law as :func:`selection_spec`, at a fixed ``D_ref = 25600``).
        zero_shot: also fit the runs at D = 0 (the loss before fine-tuning; only with ``window="all"``); Lin et
            al.'s AtS leaves them out, and on their data the zero-shot losses lie far off the law (module
            docstring).
        require_converged: raise (a :class:`RuntimeError`) instead of warning when the fit has not converged
            (max R-hat > :data:`RHAT_MAX` or any divergence). Either way an unconverged selection says so
            (``converged`` False, ``metrics["converged"]``).
        ci_prob: the predictive interval's probability.
        min_runs: each candidate needs at least this many runs with ``0 < D <= max_D``.
        rank_by: which P(best) orders the table and picks ``selected``: ``"discrepancy"`` (default;
            ``p_best_discrepancy``, each model's prediction with its own discrepancy draw, from the same
            predictive distributions as the intervals) or ``"law"`` (``p_best``, the law taken as exact outside
            the runs). Chosen on Lin et al.'s held-out full-data runs (README, "Choosing a model to fine-tune").
        within: with the default model, pool in two levels: the candidates within this column's groups
            (``"family"`` in Lin et al.'s data), those across all; with ``window="power_phase"`` the level ``L1``
            (the slopes stay per model: :func:`power_phase_spec`), with ``window="all"`` every parameter
            (:func:`selection_spec`).
        fit_kwargs: passed to :func:`bayes_scaling.fit` (``draws``, ``tune``, ``chains``, ...).

    Returns:
        A :class:`ModelSelection`. When the fit has not converged, a :class:`ConvergenceWarning` (always, whatever
        ``warn``) saying that P(best) is unreliable, and ``metrics["converged"]`` False.

    >>> sel = select_model(bs.datasets.load_lin("flan"), ratio=8, seed=1, draws=500, chains=2)  # doctest: +SKIP
    >>> sel.selected, round(sel.metrics["relative_accuracy"], 3)                                 # doctest: +SKIP
    """
    from bayes_scaling.analysis.best import best_group
    from bayes_scaling.inference.fit import _as_spec
    from bayes_scaling.inference.fit import fit as fit_law

    if rank_by not in RANK_COLUMNS:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_COLUMNS)}, got {rank_by!r}")
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    if zero_shot and window != "all":
        raise ValueError("zero_shot=True fits the runs at D = 0, which lie before any power phase: "
                         "use window='all'")
    if (max_D is None) == (ratio is None):
        raise ValueError("give exactly one of max_D and ratio")
    if ratio is not None:
        if not ratio >= 1:
            raise ValueError(f"ratio must be >= 1 (max_D = target_D / ratio), got {ratio!r}")
        max_D = target_D / ratio
    if not (0 < max_D <= target_D):
        raise ValueError(f"max_D must be in (0, target_D = {target_D:g}], got {max_D!r}")
    data = _check_runs(data, group, size, target)
    keys = data[group].astype(str)
    fitted = (data[size] <= max_D) & ((data[size] > 0) | zero_shot)
    counts = data[fitted].groupby(keys[fitted]).size().reindex(sorted(set(keys)), fill_value=0)
    few = counts[counts < min_runs]
    if len(few):
        raise DataError(f"too few runs with 0 < {size} <= {max_D:g} (expected at least {min_runs} per {group}): "
                        + ", ".join(f"{m} ({n})" for m, n in few.items()))
    if window == "power_phase":
        fitted = pd.Series(power_phase(data, max_D=max_D, group=group, size=size, target=target), index=data.index)
    if model is None:
        make = power_phase_spec if window == "power_phase" else selection_spec
        model = make(_reference_D(data.loc[fitted, size]), group=group, size=size, target=target, within=within)
    spec = _as_spec(model)
    if group not in spec.groups:
        raise DataError(f"the law's group columns are {spec.groups or 'none'}; expected {group!r} among them")
    if spec.inputs != [size] or spec.target != target:
        raise DataError(f"the law must map {size!r} to {target!r}; it maps {', '.join(spec.inputs)} to "
                        f"{spec.target!r}")
    used = data[fitted].reset_index(drop=True)
    counts = used.groupby(used[group].astype(str)).size().reindex(sorted(set(keys)), fill_value=0)
    result = fit_law(used, spec, seed=seed, **fit_kwargs)
    diag = result.diagnostics
    converged = diag.r_hat_max <= RHAT_MAX and diag.divergences == 0
    if not converged:
        msg = (f"select_model: the fit has NOT converged ({diag}); P(best) and the selection are unreliable: the "
               "chains disagree. Run more tune/draws or chains (defaults: 1000 x 4) and check the parameterization "
               "(the default, window='power_phase', converges on all of Lin et al.'s runs: docs/validation.md)")
        if require_converged:
            raise RuntimeError(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    at = {size: float(target_D)}
    best = best_group(result, at=at, group=group, kind="mean", ci_prob=ci_prob, seed=seed)
    obs = best_group(result, at=at, group=group, kind="observation", ci_prob=ci_prob, seed=seed)
    obs = obs.set_index(obs["group"].astype(str))
    table = pd.DataFrame({
        group: best["group"].astype(str).to_numpy(), "p_best": best["p_best"].to_numpy(),
        "p_best_discrepancy": best["p_best_discrepancy"].to_numpy(), "rank": best["rank"].to_numpy(),
        "predicted": best["median"].to_numpy()})
    table["lo"] = obs.loc[table[group], "lo"].to_numpy()
    table["hi"] = obs.loc[table[group], "hi"].to_numpy()
    table["outside"] = best["outside_group"].to_numpy()
    table["n_runs"] = counts.reindex(table[group]).to_numpy()
    # most probably best first (by rank_by); ties broken by the lower predicted loss
    table = table.sort_values([RANK_COLUMNS[rank_by], "predicted"], ascending=[False, True],
                              kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    selected = str(table.loc[0, group])
    metrics = {"rank_by": rank_by, "pearson": np.nan, "relative_accuracy": np.nan, "actual_best": None,
               "p_best_of_actual_best": np.nan,
               "p_best_discrepancy_of_actual_best": np.nan,
               "coverage": np.nan, "converged": bool(converged), "r_hat_max": float(diag.r_hat_max),
               "ess_bulk_min": float(diag.ess_bulk_min), "divergences": int(diag.divergences)}
    actual = _actual(data, group, size, target, target_D)
    if actual is not None:
        table["actual"] = table[group].map(actual).to_numpy(dtype=float)
        known = table.dropna(subset=["actual"])
        if len(known) >= 2:
            metrics["pearson"] = pearson_correlation(known["predicted"], known["actual"])
            act = known.set_index(group)["actual"]
            if selected in act.index:
                metrics["relative_accuracy"] = relative_accuracy(act, selected)
            metrics["actual_best"] = str(act.idxmin())
            top = known.set_index(group).loc[act.idxmin()]
            metrics["p_best_of_actual_best"] = float(top["p_best"])
            metrics["p_best_discrepancy_of_actual_best"] = float(top["p_best_discrepancy"])
            metrics["coverage"] = float(np.mean((known["lo"] <= known["actual"]) & (known["actual"] <= known["hi"])))
    return ModelSelection(table=table, selected=selected, fit=result, max_D=float(max_D), target_D=float(target_D),
                          ci_prob=ci_prob, metrics=metrics, held_out=data[~fitted].reset_index(drop=True),
                          diagnostics=diag)


_TEX_METHODS = {"AtS": "ats", "ZeroShot": "zero_shot", "SubTuning": "subtuning", "ModelSize": "model_size"}
_TEX_METRICS = {"PearCorr": "pearson", "RelAcc": "relative_accuracy"}


def read_lin_table1(path: str | Path) -> pd.DataFrame:
    """Lin et al.'s Table 1 (their LaTeX, ``published_selection_table1.tex``) as a long table: ``target``
    (flan | wmt19 | gigaword), ``method`` (ats, zero_shot, subtuning, model_size), ``metric`` (pearson |
    relative_accuracy), ``ratio`` (8 ... 512), ``value`` (a fraction: their percentages / 100)."""
    rows = []
    header = None
    for line in Path(path).read_text().splitlines():
        cells = [c.strip() for c in line.rstrip().rstrip("\\").split("&")]
        if len(cells) < 2:
            continue
        if header is None:
            header = cells[1:]
            continue
        m = re.search(r"\{(\w+)\}-1/(\d+)", cells[0])
        if not m or m.group(1) not in _TEX_METRICS:
            raise DataError(f"{path}: unexpected row label {cells[0]!r}")
        for col, cell in zip(header, cells[1:], strict=True):
            target, method = col.split("-", 1)
            value = float(re.sub(r"\\\w+\{([^}]*)\}", r"\1", cell))
            rows.append({"target": target.lower(), "method": _TEX_METHODS[method], "metric": _TEX_METRICS[m.group(1)],
                         "ratio": int(m.group(2)), "value": value / 100})
    if not rows:
        raise DataError(f"{path}: no table rows found")
    return pd.DataFrame(rows)


def lin_table1(data: pd.DataFrame, *, targets=("flan", "wmt19", "gigaword"), ratios=LIN_RATIOS,
               target_D: float = LIN_FULL_D, published: str | Path | None = None, seed: int = 1,
               **select_kwargs) -> tuple[pd.DataFrame, dict]:
    """Lin et al.'s Table 1 with a Bayesian column: for each target and budget ratio, :func:`select_model`'s
    Pearson correlation and relative accuracy, beside their methods computed here (ats, zero_shot, subtuning,
    model_size) and, with ``published`` (the path of their .tex table), their published values.

    Args:
        data: all targets in long form with a ``target`` column (``bs.datasets.load_lin()``).
        select_kwargs: passed to :func:`select_model` (``draws``, ``chains``, ...).

    Returns:
        ``(table, selections)``: the long table ``target, ratio, max_D, metric, bayes`` plus one column per
        baseline (and ``published_<method>`` columns), and the :class:`ModelSelection` of each (target, ratio).
    """
    rows, selections = [], {}
    for t in targets:
        runs = data[data["target"] == t].reset_index(drop=True)
        if runs.empty:
            raise DataError(f"data: no runs of target {t!r}")
        for r in ratios:
            max_D = target_D / r
            sel = select_model(runs, max_D=max_D, target_D=target_D, seed=seed, **select_kwargs)
            selections[(t, r)] = sel
            base = {b: baseline_selection(runs, b, max_D=max_D, target_D=target_D) for b in BASELINES}
            for metric in ("pearson", "relative_accuracy"):
                rows.append({"target": t, "ratio": r, "max_D": max_D, "metric": metric, "bayes": sel.metrics[metric],
                             "selected": sel.selected,
                             "p_best_selected": float(sel.table.loc[0, RANK_COLUMNS[sel.metrics["rank_by"]]]),
                             "converged": sel.converged,
                             **{b: base[b][metric] for b in BASELINES}})
    table = pd.DataFrame(rows)
    if published is not None:
        pub = read_lin_table1(published).pivot_table(index=["target", "ratio", "metric"], columns="method",
                                                     values="value")
        pub.columns = [f"published_{c}" for c in pub.columns]
        table = table.join(pub, on=["target", "ratio", "metric"])
    return table, selections
