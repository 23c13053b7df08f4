"""Compute-efficient model sizes with and without pre-training, as posteriors.

A from-scratch loss law ``L(N, D)`` (Chinchilla ``E + A/N**alpha_N + B/D**alpha_D`` or Kaplan
``[(N_c/N)**(alpha_N/alpha_D) + D_c/D]**alpha_D``; formulas in :mod:`bayes_scaling.laws`) comes either as a
fitted posterior (an object with ``.law`` and ``.posterior``, e.g. ``losslaws.ScratchFit``; or a netCDF file
with attribute ``law`` and a ``posterior`` group) or as given parameters::

    law = loss_law("chinchilla", {"A": 482, "B": 2085, "E": 1.817, "alpha_N": 0.348, "alpha_D": 0.366})

Or it is any law spec whose formula has the inputs ``N`` and ``D`` (others held fixed with ``at=``): a fitted
:class:`~bayes_scaling.inference.fit.Fit` (``chinchilla``, ``chinchilla_by_corpus`` per corpus,
``data_constrained`` at a given ``U_D``, a user's own spec), or a :class:`~bayes_scaling.laws.spec.LawSpec`
with given parameters. The spec's one formula is evaluated (:meth:`~bayes_scaling.laws.expr.Formula.evaluate`,
on the per-draw parameters that :meth:`Fit.predict <bayes_scaling.inference.fit.Fit.predict>` uses), so the
optimum is numerical for every law; its inverse in ``D`` (:meth:`LossLaw.data_needed`) is a bracketed root::

    fit = bs.fit(runs, "chinchilla_by_corpus")
    scratch_optimum(fit, [1e21, 1e23])                        # dims chain, draw, corpus, C
    finetune_optimum(loss_law(fit, group="c4"), transfer_fit, [1e18])
    scratch_optimum(bs.fit(runs, "data_constrained"), [1e21], at={"U_D": 1e11})

Training compute is ``C = 6 N D`` (:func:`laws.training_compute`); fine-tuning compute ``C_F = 6 N D_F``
excludes the pre-training compute, as in Hernandez et al. (2021). With pre-training, a model of size ``N``
fine-tuned on ``D_F`` reaches the loss of a from-scratch model trained on ``D_E = D_F + k D_F**alpha N**beta``
(the definition of effective data), so its loss is ``L(N, D_E)``.

1. :func:`scratch_optimum`: ``N_opt(C) = argmin_N L(N, C / (6N))``;
2. :func:`finetune_optimum`: ``N_opt(C_F) = argmin_N L(N, D_E(N, C_F / (6N)))``;
   :func:`compute_frontier` puts both on one dataset (the loss frontier, for plots);
3. :func:`smallest_model`: the smallest ``N`` with ``L(N, D_E(N, D_F)) <= L*``;
4. :func:`compute_saved`: from-scratch compute ``min_N 6 N D(N, L_ft)`` reaching the loss ``L_ft`` that
   fine-tuning reaches with ``C_F``, its ratio to ``C_F`` and the difference.

**Outside the data.** A loss law that knows its fitted runs (a ``ScratchFit``, or ``loss_law(..., data=runs)``)
gives :func:`scratch_optimum` the distance of each optimum ``(N_opt, D_opt, C)`` outside them
(``N_orders_outside``, ``D_orders_outside``, ``C_orders_outside`` per draw; ``outside`` their largest, as
:mod:`bayes_scaling.laws.discrepancy` defines it), and its ``loss`` carries the law's discrepancy by default
(``log L += Normal(0, (tau d)**2)``, ``tau`` = :data:`~bayes_scaling.laws.discrepancy.DEFAULT_TAU`, calibrated
on real IsoFLOP runs of the same Chinchilla law; ``discrepancy=0``: off) with the split of its log-scale variance
(``share_parameters``, ``share_discrepancy`` per budget). ``N_opt`` and ``D_opt`` are the parameters' alone:
the discrepancy is an error of the law's value at a point, which says nothing about where the law's minimum
over N lies. Given parameters (no runs) have no distance: ``outside`` is NaN and no discrepancy is added.

Every answer is vectorised over posterior draws: a log-N grid, then SciPy's vectorised minimiser
(``scipy.optimize.elementwise.find_minimum``) in the bracket around each draw's grid minimum; its bracketing
root finder (``find_root``) for monotone problems. Draws of the loss law and of the transfer
fit are aligned draw by draw as described in :mod:`bayes_scaling.analysis._draws` (seeded). Answers at the edge of the
search interval are flagged (``at_edge``) and counted in the attributes, never silently clipped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.analysis._draws import align, flat, n_samples, unflat
from bayes_scaling.analysis.predictions import data_range, orders_outside, parameters, positive_grid
from bayes_scaling.errors import BayesScalingError, FitFileError
from bayes_scaling.inference.fitfile import read_tree
from bayes_scaling.laws import formulas as laws
from bayes_scaling.laws.formulas import (  # parameters of each from-scratch loss law, as named in laws.py
    LAW_PARAMETERS,
    law_inverse,
    law_loss,
)

__all__ = ["LAW_PARAMETERS", "SCRATCH", "LossLaw", "loss_law", "spec_loss_laws", "scratch_optimum",
           "finetune_optimum", "compute_frontier", "smallest_model", "compute_saved", "optimum_distance", "EdgeWarning", "UnitWarning"]


#: Label of the from-scratch rows in :func:`compute_frontier` and :func:`smallest_model`.
SCRATCH = "none (from scratch)"

N_MIN = 1.0       # smallest model size searched
N_MAX = 1e20      # largest model size searched where the budget does not bound it
D_MAX = 1e30      # largest data size searched by the numerical inverse of a spec's law in D


class EdgeWarning(UserWarning):
    """An optimum or a root lies at the edge of the searched interval (see the ``at_edge`` variable)."""


class UnitWarning(UserWarning):
    """The loss law's unit of data differs from the transfer fit's (D and D_F must be in one unit)."""


# ---- the loss law ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossLaw:
    """A from-scratch loss law: its name and draws of its parameters (dims ``chain``, ``draw``).

    A named law (``law`` in :data:`LAW_PARAMETERS`) is evaluated by :mod:`bayes_scaling.laws`; a law spec
    (``spec`` set) by its formula, with the inputs other than ``N`` and ``D`` at the values ``at``."""

    law: str
    params: xr.Dataset
    unit: str = ""          # unit of D (tokens, characters, ...); "" when unknown (given parameters)
    #: the fitted runs (columns N and D), for the distance outside the data; None for given parameters
    data: pd.DataFrame | None = None
    #: the law spec whose formula is the law (None: the named law ``law``)
    spec: Any = None
    #: the spec's other inputs, held fixed
    at: dict[str, float] = field(default_factory=dict)
    #: the discrepancy per decade outside the data (None: the default, DEFAULT_TAU)
    tau: float | None = None

    @property
    def n_draws(self) -> int:
        return n_samples(self.params)

    def flat_params(self, index: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Parameters as 1-d arrays over the flattened draws (optionally re-indexed)."""
        names = LAW_PARAMETERS[self.law] if self.spec is None else list(self.params.data_vars)
        out = {k: flat(self.params[k]).astype(float) for k in names}
        return out if index is None else {k: v[index] for k, v in out.items()}

    def loss(self, N, D, p: dict):
        """``L(N, D)`` with the parameters ``p`` (arrays that broadcast against ``N`` and ``D``)."""
        if self.spec is None:
            return law_loss(self.law, N, D, p)
        with np.errstate(all="ignore"):
            return self.spec.formula.evaluate({**self.at, **p, "N": N, "D": D}, backend="numpy")

    def data_needed(self, loss, N, p: dict):
        """Data a from-scratch model of size N needs to reach ``loss`` (inf where unreachable).

        A law spec: the root in ``log D`` of ``L(N, D) = loss`` for ``D`` in ``[1, D_MAX]`` (the law must
        decrease in D there): 1 where the loss is reached already at ``D = 1``, inf where not by ``D_MAX``."""
        if self.spec is None:
            return law_inverse(self.law, loss, N, p)
        names = list(p)
        loss, N, *values = np.broadcast_arrays(np.asarray(loss, float), np.asarray(N, float),
                                               *(np.asarray(v, float) for v in p.values()))

        def g(u, L, N, *vals):
            return self.loss(N, np.exp(u), dict(zip(names, vals, strict=True))) - L

        u, status = _root_decreasing(g, np.zeros(loss.shape), np.full(loss.shape, np.log(D_MAX)),
                                     (loss, N, *values))
        return np.where(status == 2, np.inf, np.exp(u))


def loss_law(source, params: dict | None = None, *, data: pd.DataFrame | None = None,
             group: str | dict[str, str] | None = None, at: dict[str, float] | None = None,
             seed: int | None = None) -> LossLaw:
    """A :class:`LossLaw` from a fitted posterior (``.law`` and ``.posterior``; its ``.data``, the fitted runs,
    are kept when they have columns N and D), a netCDF file, a LossLaw, or a law name and a dict of scalars /
    1-d arrays of draws (all of one length; scalars are repeated). ``data``: the runs the law was fitted to
    (columns N and D), for the distance outside the data (module docstring).

    A law spec with inputs ``N`` and ``D``: a fitted :class:`~bayes_scaling.inference.fit.Fit` (its runs kept,
    its spec's discrepancy ``tau``), or a :class:`~bayes_scaling.laws.spec.LawSpec` (or a built-in spec's name)
    with ``params``. ``group``: the group of a spec with group columns (a label, or ``{column: label}``; a label
    the fit has not seen draws a new group of a pooled parameter, seeded by ``seed``); ``at``: values of the
    spec's other inputs. :func:`spec_loss_laws` gives one law per group.

    >>> law = loss_law("chinchilla", {"A": 482, "B": 2085, "E": 1.817, "alpha_N": 0.348, "alpha_D": 0.366})
    >>> law.law, law.n_draws
    ('chinchilla', 1)
    >>> from bayes_scaling.laws.spec import builtin_spec
    >>> law = loss_law(builtin_spec("chinchilla"), {"A": 482, "B": 2085, "E": 1.817, "alpha_N": 0.348,
    ...                                             "alpha_D": 0.366})
    >>> round(float(law.loss(7e10, 1.4e12, law.flat_params())[0]), 4)
    1.9728
    """
    if data is not None:
        from dataclasses import replace

        if not isinstance(data, pd.DataFrame) or not {"N", "D"} <= set(data.columns) or not len(data):
            raise BayesScalingError("data: the fitted runs, a table with columns N and D")
        return replace(loss_law(source, params, group=group, at=at, seed=seed),
                       data=data[["N", "D"]].reset_index(drop=True))
    if isinstance(source, LossLaw):
        return source
    if _is_spec_fit(source):
        if params is not None:
            raise BayesScalingError("params: give parameters with a law spec, not with a fit (its posterior has them)")
        laws_ = spec_loss_laws(source, group=group, at=at, seed=seed)
        if len(laws_) > 1:
            raise BayesScalingError(f"{source.spec.name!r} varies by {', '.join(source.spec.groups)}: choose the "
                                    f"group, loss_law(fit, group=...) with one of {', '.join(laws_)} (or "
                                    "spec_loss_laws(fit): one law per group)")
        out = next(iter(laws_.values()))
        unit = getattr(source, "unit", "")     # a ScratchFit knows the unit of its data
        if isinstance(unit, str) and unit and not out.unit:
            from dataclasses import replace

            out = replace(out, unit=unit)
        return out
    if _is_law_spec(source) or (isinstance(source, str) and params is not None and source not in LAW_PARAMETERS
                                and _builtin_spec_name(source)):
        return _from_spec_params(source, params, group, at)
    if isinstance(source, str) and source in LAW_PARAMETERS:
        return _from_params(source, params)
    if params is not None:
        raise BayesScalingError(f"unknown loss law {source!r}; expected one of {', '.join(LAW_PARAMETERS)}")
    if isinstance(source, (str, PathLike)):
        return _from_file(Path(source))
    law = getattr(source, "law", None)
    post = getattr(source, "posterior", None)
    what = type(source).__name__
    if law is None or post is None:
        raise FitFileError(f"{what} has no from-scratch loss law (expected .law in "
                           f"{', '.join(LAW_PARAMETERS)} and a .posterior); a transfer fit is not a loss-law fit")
    out = _from_posterior(str(law), post, what)
    unit = getattr(source, "unit", "")
    runs = getattr(source, "data", None)
    runs = runs[["N", "D"]].reset_index(drop=True) if isinstance(runs, pd.DataFrame) and \
        {"N", "D"} <= set(runs.columns) and len(runs) else None
    return LossLaw(out.law, out.params, unit if isinstance(unit, str) else "", runs)


def _is_spec_fit(source) -> bool:
    """A law-spec fit (not a from-scratch fit of the former loss-law model, a file of 0.1/0.2: its law and draws
    are read directly)."""
    from bayes_scaling.inference.fit import Fit
    from bayes_scaling.inference.sampling import TransferFit

    return (isinstance(source, Fit) and not isinstance(source, TransferFit)   # a transfer law is no loss law
            and not getattr(source, "legacy", False))


def _is_law_spec(source) -> bool:
    from bayes_scaling.laws.spec import LawSpec

    return isinstance(source, LawSpec)


def _builtin_spec_name(name: str) -> bool:
    from bayes_scaling.laws.spec import builtin_names

    return name in builtin_names()


def _check_spec_inputs(spec, at: dict | None) -> dict[str, float]:
    """The spec's inputs are N, D and those given in ``at`` (numbers): else a BayesScalingError."""
    at = dict(at or {})
    if not {"N", "D"} <= set(spec.inputs):
        raise BayesScalingError(f"{spec.name!r} is a law of {', '.join(spec.inputs)}, not of N and D: compute-"
                                "optimal sizes need a loss law with inputs N (parameters) and D (data)")
    missing = [c for c in spec.inputs if c not in ("N", "D") and c not in at]
    extra = [c for c in at if c not in spec.inputs or c in ("N", "D")]
    if missing or extra:
        raise BayesScalingError(f"{spec.name!r}: give the inputs other than N and D with at={{...}}"
                                + (f"; missing {', '.join(missing)}" if missing else "")
                                + (f"; not an input held fixed: {', '.join(extra)}" if extra else ""))
    out = {}
    for c, v in at.items():
        try:
            out[c] = float(v)
        except (TypeError, ValueError):
            raise BayesScalingError(f"at: {c} must be a number, got {v!r}") from None
        if not np.isfinite(out[c]):
            raise BayesScalingError(f"at: {c} must be finite, got {v!r}")
    return out


def _group_rows(spec, group, labels: dict[str, list[str]] | None) -> pd.DataFrame:
    """The group columns of one row per group: ``group`` (a label, or {column: label}), or every label of the
    fit (``labels``) when None."""
    cols = spec.groups
    if not cols:
        if group is not None:
            raise BayesScalingError(f"{spec.name!r} has no group columns; leave out group")
        return pd.DataFrame(index=[0])
    if group is None:
        if labels is None:
            raise BayesScalingError(f"{spec.name!r} varies by {', '.join(cols)}: give group=...")
        if len(cols) > 1:
            raise BayesScalingError(f"{spec.name!r} varies by {', '.join(cols)}: give group={{column: label}}")
        return pd.DataFrame({cols[0]: list(labels[cols[0]])})
    if not isinstance(group, dict):
        if len(cols) > 1:
            raise BayesScalingError(f"{spec.name!r} varies by {', '.join(cols)}: give group={{column: label}}")
        group = {cols[0]: group}
    missing = [c for c in cols if c not in group]
    if missing or set(group) - set(cols):
        raise BayesScalingError(f"group: expected a label for each of {', '.join(cols)}, got {group!r}")
    return pd.DataFrame({c: [str(group[c])] for c in cols})


def _group_name(row: pd.Series, cols: list[str]) -> str:
    return str(row[cols[0]]) if len(cols) == 1 else ", ".join(f"{c}={row[c]}" for c in cols)


def spec_loss_laws(fit, *, group: str | dict[str, str] | None = None, at: dict[str, float] | None = None,
                   seed: int | None = None) -> dict[str, LossLaw]:
    """One :class:`LossLaw` per group of a fitted law spec with inputs ``N`` and ``D`` (a
    :class:`~bayes_scaling.inference.fit.Fit`): each group's parameter draws, as
    :meth:`Fit.predict <bayes_scaling.inference.fit.Fit.predict>` takes them (a new label of a pooled parameter:
    drawn from its population, seeded), keyed by the group's label (``""`` for a spec without groups).
    ``group``: one group only; ``at``: the values of the spec's other inputs.

    >>> laws = spec_loss_laws(bs.fit(runs, "chinchilla_by_corpus"))       # doctest: +SKIP
    >>> list(laws)                                                        # doctest: +SKIP
    ['c4', 'pile']
    """
    from bayes_scaling.models import spec_model as sm

    spec = fit.spec
    fixed = _check_spec_inputs(spec, at)
    rows = _group_rows(spec, group, fit.labels)
    table = rows.assign(N=1.0, D=1.0, **fixed)
    new = sm.prepare(spec, table, what="group", labels=fit.labels, target=False)
    draws = fit._param_draws(new, np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3]))
    post = fit.posterior
    C, Dn = post.sizes["chain"], post.sizes["draw"]
    coords = {"chain": post["chain"].values, "draw": post["draw"].values}
    runs = fit.table[["N", "D"]].reset_index(drop=True)
    tau = float(spec.discrepancy.tau)
    out = {}
    for i in range(len(rows)):
        ds = xr.Dataset({k: (("chain", "draw"), np.asarray(v[:, i], dtype=float).reshape(C, Dn))
                         for k, v in draws.items()}, coords=coords)
        bad = [k for k in ds.data_vars if not np.isfinite(ds[k].values).all()]
        if bad:
            raise BayesScalingError(f"{spec.name!r}: parameter(s) {', '.join(bad)} have non-finite draws")
        name = _group_name(rows.iloc[i], spec.groups) if spec.groups else ""
        out[name] = LossLaw(spec.name, ds, "", runs, spec, fixed, tau)
    return out


def _from_spec_params(source, params: dict | None, group, at) -> LossLaw:
    """A spec's law with given parameter values (scalars or 1-d arrays of draws of one length)."""
    from bayes_scaling.laws.spec import builtin_spec

    spec = source if _is_law_spec(source) else builtin_spec(source)
    fixed = _check_spec_inputs(spec, at)
    if group is not None:
        raise BayesScalingError("group: give each parameter's value for the group instead (params)")
    names = [p.name for p in spec.parameters.values() if p.fixed is None]
    params = dict(params or {})
    missing = [n for n in names if n not in params]
    extra = [n for n in params if n not in spec.parameters]
    if missing or extra:
        raise BayesScalingError(f"{spec.name!r} needs parameters {', '.join(names)}"
                                + (f"; missing {', '.join(missing)}" if missing else "")
                                + (f"; unknown {', '.join(extra)}" if extra else ""))
    for p in spec.parameters.values():
        if p.fixed is not None:
            params[p.name] = p.fixed
    ds = _params_dataset(spec.name, params)
    bad = [n for n in ds.data_vars if not np.isfinite(ds[n].values).all()]
    if bad:
        raise BayesScalingError(f"{spec.name!r}: parameter(s) {', '.join(map(str, bad))} must be finite")
    return LossLaw(spec.name, ds, "", None, spec, fixed, None)


def _from_params(law: str, params: dict | None) -> LossLaw:
    names = LAW_PARAMETERS[law]
    params = dict(params or {})
    missing = [n for n in names if n not in params]
    extra = [n for n in params if n not in names]
    if missing or extra:
        raise BayesScalingError(f"{law} loss law needs parameters {', '.join(names)}"
                                + (f"; missing {', '.join(missing)}" if missing else "")
                                + (f"; unknown {', '.join(extra)}" if extra else ""))
    return _checked(law, _params_dataset(law, params), "given parameters")


def _params_dataset(law: str, params: dict) -> xr.Dataset:
    """Scalars / 1-d arrays of draws of one length (scalars repeated) as a dataset with dims chain, draw."""
    names = list(params)
    arrays = {}
    for n in names:
        try:
            arrays[n] = np.atleast_1d(np.asarray(params[n], dtype=float)).ravel()
        except (TypeError, ValueError):
            raise BayesScalingError(f"{law} parameter {n} must be a number or an array of draws, "
                                    f"got {params[n]!r}") from None
    lengths = {len(v) for v in arrays.values()} - {1}
    if len(lengths) > 1:
        raise BayesScalingError(f"{law} parameters have different numbers of draws "
                                f"({', '.join(f'{n}: {len(v)}' for n, v in arrays.items())}); give scalars or "
                                "arrays of one length")
    S = lengths.pop() if lengths else 1
    ds = xr.Dataset({n: (("chain", "draw"), np.broadcast_to(v, (S,)).reshape(1, S).copy())
                     for n, v in arrays.items()}, coords={"chain": [0], "draw": np.arange(S)})
    return ds


def _from_posterior(law: str, post: xr.Dataset, what: str) -> LossLaw:
    if law not in LAW_PARAMETERS:
        raise FitFileError(f"{what}: unknown loss law {law!r}; expected one of {', '.join(LAW_PARAMETERS)}")
    missing = [n for n in LAW_PARAMETERS[law] if n not in post]
    if missing:
        raise FitFileError(f"{what}: the posterior lacks {', '.join(missing)} needed by the {law} loss law "
                           f"(has {', '.join(map(str, post.data_vars))})")
    if not {"chain", "draw"} <= set(post.dims):
        raise FitFileError(f"{what}: the posterior needs dimensions chain and draw")
    return _checked(law, post[list(LAW_PARAMETERS[law])], what)


def _from_file(path: Path) -> LossLaw:
    tree = read_tree(path)
    if tree.attrs.get("bayes_scaling_kind") == "scratch":   # written by losslaws.ScratchFit.save: its reader
        from bayes_scaling.inference.scratch import load_scratch_fit

        return loss_law(load_scratch_fit(path))
    law = tree.attrs.get("law")
    if law not in LAW_PARAMETERS or "posterior" not in tree.children:
        raise FitFileError(f"{path} has no from-scratch loss law (attribute law={law!r}; expected "
                           f"{' or '.join(LAW_PARAMETERS)} and a posterior group); fit one with "
                           "'bayes-scaling scratch'")
    return _from_posterior(law, tree["posterior"].to_dataset(), str(path))


def _checked(law: str, ds: xr.Dataset, what: str) -> LossLaw:
    for n in LAW_PARAMETERS[law]:
        v = ds[n].values
        bad = ~np.isfinite(v) | ((v <= 0) if n != "E" else (v < 0))
        if bad.any():
            raise BayesScalingError(f"{what}: {law} parameter {n} must be finite and "
                                    f"{'>= 0' if n == 'E' else '> 0'}; {int(bad.sum())} draw(s) are not "
                                    f"(e.g. {v[bad].ravel()[0]:g})")
    return LossLaw(law, ds)


# ---- vectorised search -----------------------------------------------------------------------------------


def _finite(v):
    return np.where(np.isfinite(v), v, np.inf)


def _argmin_log(f, lo: np.ndarray, hi: np.ndarray, args: tuple = (), n_grid: int = 160):
    """Minimise ``f(u, *args)`` over ``u`` in [lo, hi] (arrays of one batch shape) for every batch element: the
    best of ``n_grid`` grid points, then ``scipy.optimize.elementwise.find_minimum`` in the bracket of its two
    neighbours. ``f`` is elementwise: ``u`` and ``args`` broadcast (``args`` against the batch shape). At the
    edge of the grid the edge point is the answer (flagged). Returns (u*, f(u*), at_edge)."""
    from scipy.optimize.elementwise import find_minimum

    args = tuple(np.broadcast_to(a, lo.shape) for a in args)

    def F(x, *a):
        with np.errstate(all="ignore"):
            return _finite(f(x, *a))

    t = np.linspace(0.0, 1.0, n_grid)
    u = lo[..., None] + (hi - lo)[..., None] * t
    v = F(u, *(a[..., None] for a in args))
    i = np.argmin(v, axis=-1)
    at_edge = (i == 0) | (i == n_grid - 1) | ~np.isfinite(np.min(v, axis=-1))

    def at(j):
        return np.take_along_axis(u, j[..., None], -1)[..., 0]

    inner = np.clip(i, 1, n_grid - 2)
    res = find_minimum(F, (at(inner - 1), at(inner), at(inner + 1)), args=args)
    u_star = np.where(~at_edge & res.success, res.x, at(i))  # flat or edge: the best grid point
    return u_star, F(u_star, *args), at_edge


def _root_decreasing(g, lo: np.ndarray, hi: np.ndarray, args: tuple = ()):
    """Root of a decreasing ``g(u, *args)`` in [lo, hi], vectorised (``scipy.optimize.elementwise.find_root``;
    ``g`` elementwise like :func:`_argmin_log`'s ``f``). Returns (u, status) with status 0 = root, 1 = already
    satisfied at ``lo`` (g(lo) <= 0), 2 = not reached by ``hi`` (g(hi) > 0; u is NaN)."""
    from scipy.optimize.elementwise import find_root

    args = tuple(np.broadcast_to(a, lo.shape) for a in args)

    def G(x, *a):
        with np.errstate(all="ignore"):
            return g(x, *a)

    g_lo, g_hi = G(lo, *args), G(hi, *args)
    below = g_lo <= 0
    never = ~below & ~(g_hi <= 0)
    res = find_root(G, (lo, hi), args=args)
    u = np.where(below, lo, np.where(never | ~res.success, np.nan, res.x))
    return u, np.where(below, 1, np.where(never, 2, 0))


_FT_HINT = ("; when fine-tuning, the edge is usually D_F = D_F_min: with beta > alpha the transfer law makes "
            "extra fine-tuning compute worth more as parameters than as data, down to the smallest D_F allowed "
            "(default: the smallest D_F in the transfer data, below which the law is untested)")


def _warn_edge(flags: np.ndarray, what: str, hint: str = "") -> int:
    n = int(np.sum(flags))
    if n:
        warnings.warn(f"{what}: {n} of {flags.size} draw(s) at the edge of the searched interval "
                      f"(see the at_edge variable){hint or '; widen the bounds or check the law parameters'}",
                      EdgeWarning, stacklevel=3)
    return n


# ---- alignment with a transfer fit -----------------------------------------------------------------------


def _aligned(law: LossLaw, fit, pretraining, seed):
    """Loss-law parameters aligned to the fit's draws, and the fit's (k, alpha, beta) as (S, P) arrays."""
    if law.unit and law.unit != fit.data.unit:
        warnings.warn(f"the loss law counts data in {law.unit} but the transfer fit in {fit.data.unit}: D_E and "
                      "D are compared as if they were one unit (convert one of them)", UnitWarning, stacklevel=3)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    par = parameters(fit, pretraining, seed=seed)
    S = n_samples(par)
    idx, how = align(np.arange(law.n_draws), S, rng, "loss-law draws")
    p = law.flat_params(idx)
    tr = {k: flat(par[k]) for k in ("k", "alpha", "beta")}
    return p, tr, par, how


def _budgets(C, name: str) -> np.ndarray:
    return positive_grid(C, name).values


# ---- 1. from scratch -------------------------------------------------------------------------------------


def _scratch(law: LossLaw, p: dict, C: np.ndarray):
    """Optimum over N at each budget for parameter arrays ``p`` of shape (S,): arrays (S, B)."""
    names = list(p)

    def f(u, C, *values):  # loss at N = e^u, D = C / (6N)
        N = np.exp(u)
        return law.loss(N, laws.data_for_compute(C, N), dict(zip(names, values, strict=True)))

    S = len(next(iter(p.values())))
    lo = np.full((S, len(C)), np.log(N_MIN))
    hi = np.broadcast_to(np.log(laws.data_for_compute(C, 1.0)), lo.shape).copy()  # D >= 1
    u, loss, edge = _argmin_log(f, lo, hi, (C[None, :], *(v[:, None] for v in p.values())))
    N = np.exp(u)
    return N, laws.data_for_compute(C[None, :], N), loss, edge


def scratch_optimum(law, C, params: dict | None = None, *, discrepancy: float | None = None,
                    seed: int | None = None, group: str | dict[str, str] | None = None,
                    at: dict[str, float] | None = None) -> xr.Dataset:
    """Posterior of the compute-optimal model size trained from scratch, ``argmin_N L(N, C / (6N))``.

    Returns ``N_opt``, ``D_opt = C / (6 N_opt)``, ``loss`` (the loss frontier) and ``at_edge``; dims ``chain``,
    ``draw`` (the loss law's), ``C``. For Chinchilla this reproduces the closed form
    :func:`laws.chinchilla_optimal_N`. When the law knows its fitted runs (module docstring): the distance of
    each optimum outside them (``N_orders_outside``, ``D_orders_outside``, ``C_orders_outside``, ``outside``,
    per draw), ``loss`` with the law's discrepancy (``discrepancy``: ``tau`` per decade; None: the default
    0.059, or a fitted spec's own ``[discrepancy] tau``; 0: off; seeded by ``seed``), ``loss_without_discrepancy``,
    and per budget the coordinates ``share_parameters``, ``share_discrepancy`` of the loss's log-scale variance
    (their sum is 1).

    ``law`` may be a fitted law spec of ``N`` and ``D`` (:func:`loss_law`; ``at``: its other inputs): per
    draw the same minimisation of the spec's formula. A spec with a group column gives one optimum per group
    (a dimension named after the column, ``group`` for several columns), or the one ``group``.

    >>> ds = scratch_optimum("chinchilla", [1e21, 1e23], {"A": 482, "B": 2085, "E": 1.817, "alpha_N": 0.348,
    ...                                                      "alpha_D": 0.366})
    >>> [f"{v:.3g}" for v in ds["N_opt"].values.ravel()]
    ['2.78e+09', '2.95e+10']
    >>> scratch_optimum(bs.fit(runs, "chinchilla_by_corpus"), [1e21])["N_opt"].dims     # doctest: +SKIP
    ('chain', 'draw', 'corpus', 'C')
    """
    if _is_spec_fit(law) and law.spec.groups and group is None:
        laws_ = spec_loss_laws(law, at=at, seed=seed)
        dim = law.spec.groups[0] if len(law.spec.groups) == 1 else "group"
        parts = [scratch_optimum(one, C, discrepancy=discrepancy, seed=seed) for one in laws_.values()]
        out = xr.concat(parts, dim=xr.DataArray(list(laws_), dims=dim), coords="different", compat="equals",
                        combine_attrs="drop_conflicts")
        out.attrs["n_at_edge"] = int(sum(p.attrs["n_at_edge"] for p in parts))
        dims = [d for d in ("chain", "draw", dim, "C") if d in out.dims]
        return out.transpose(*dims)
    law = loss_law(law, params, group=group, at=at, seed=seed)
    C = _budgets(C, "C")
    N, D, loss, edge = _scratch(law, law.flat_params(), C)
    like = law.params
    ds = xr.Dataset({name: unflat(v, like, ("C",), {"C": C}) for name, v in
                     (("N_opt", N), ("D_opt", D), ("loss", loss), ("at_edge", edge))})
    ds.attrs.update(law=law.law, n_at_edge=_warn_edge(edge, "scratch_optimum"),
                    compute="C = 6 N D", objective="argmin_N L(N, C/(6N))")
    return _with_law_discrepancy(ds, law, N, D, loss, discrepancy, seed)


def _with_law_discrepancy(ds: xr.Dataset, law: LossLaw, N: np.ndarray, D: np.ndarray, loss: np.ndarray,
                          discrepancy, seed) -> xr.Dataset:
    """The distance of the optima (S, B) outside the law's runs and the discrepancy on their loss."""
    from bayes_scaling.laws.discrepancy import DEFAULT_TAU, check_tau, outside_table, variance_split, widen

    if law.data is None:
        ds["outside"] = xr.full_like(ds["loss"], np.nan, dtype=float)
        ds.attrs.update(tau=0.0, discrepancy="none: the loss law has no fitted runs, so no distance outside them")
        return ds
    default = DEFAULT_TAU if law.tau is None else law.tau
    tau = default if discrepancy is None else check_tau(discrepancy, "discrepancy")
    pts = pd.DataFrame({"N": N.ravel(), "D": D.ravel()})
    where = outside_table(law.data, pts, ["N", "D"])
    for c in where.columns:
        name = "outside" if c == "outside" else f"{c[len('outside_'):]}_orders_outside"
        ds[name] = ds["loss"].copy(data=where[c].to_numpy(dtype=float).reshape(N.shape).reshape(ds["loss"].shape))
    d = where["outside"].to_numpy(dtype=float).reshape(N.shape)                   # (S, B)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    wide = widen(loss, d, tau, rng)
    with np.errstate(all="ignore"):
        # the parameters' spread of log L at each budget; the discrepancy's sd at the median distance
        split = variance_split(np.log(loss), tau, np.nanmedian(d, axis=0))
    ds["loss_without_discrepancy"] = ds["loss"]
    ds["loss"] = ds["loss"].copy(data=wide.reshape(ds["loss"].shape))
    ds = ds.assign_coords({k: ("C", split[k].to_numpy()) for k in ("share_parameters", "share_discrepancy")})
    ds.attrs.update(tau=tau, discrepancy="loss: log L += Normal(0, (tau d)^2), d = decades of (N_opt, D_opt, C) "
                    "outside the fitted runs; N_opt and D_opt: the parameters' uncertainty only")
    return ds


# ---- 2. pre-trained, then fine-tuned ---------------------------------------------------------------------


def _D_F_min(fit, D_F_min) -> float:
    value = data_range(fit)["D_F"][0] if D_F_min is None else float(D_F_min)
    if not (np.isfinite(value) and value > 0):
        raise BayesScalingError(f"D_F_min must be finite and > 0, got {D_F_min!r}")
    return value


def _finetune(law: LossLaw, p: dict, tr: dict, C: np.ndarray, D_F_min: float):
    """Fine-tuning optimum over N in [N_MIN, C / (6 D_F_min)]: arrays (S, P, B)."""
    smallest = laws.training_compute(N_MIN, D_F_min)
    small = C < smallest
    if small.any():
        raise BayesScalingError(f"fine-tuning budget(s) {', '.join(f'{c:g}' for c in C[small])} are below "
                                f"6 * N * D_F_min = {smallest:g} (N >= {N_MIN:g}, D_F >= {D_F_min:g})")
    names = list(p)
    k, alpha, beta = (tr[n][:, :, None] for n in ("k", "alpha", "beta"))

    def f(u, C, k, alpha, beta, *values):  # loss at N = e^u fine-tuned on D_F = C / (6N)
        N = np.exp(u)
        D_E = laws.effective_data(laws.data_for_compute(C, N), N, k, alpha, beta)
        return law.loss(N, D_E, dict(zip(names, values, strict=True)))

    S, Pn = tr["k"].shape
    lo = np.full((S, Pn, len(C)), np.log(N_MIN))
    hi = np.broadcast_to(np.log(laws.data_for_compute(C, D_F_min)), lo.shape).copy()  # D_F >= D_F_min
    u, loss, edge = _argmin_log(f, lo, hi, (C[None, None, :], k, alpha, beta,
                                            *(v[:, None, None] for v in p.values())))
    N = np.exp(u)
    D_F = laws.data_for_compute(C[None, None, :], N)
    D_E = laws.effective_data(D_F, N, k, alpha, beta)
    return N, D_F, D_E, loss, edge


def finetune_optimum(law, fit, C_F, *, pretraining=None, seed: int | None = None, D_F_min: float | None = None,
                     params: dict | None = None) -> xr.Dataset:
    """Posterior of the compute-optimal model size when fine-tuning a pre-trained model with fine-tuning
    compute ``C_F = 6 N D_F`` (pre-training compute excluded): ``argmin_N L(N, D_E(N, C_F / (6N)))``.

    Returns ``N_opt``, ``D_F_opt``, ``D_E_opt``, ``loss``, ``at_edge`` and the distance outside the transfer
    data (``N_orders_outside``, ``D_F_orders_outside``); dims ``chain``, ``draw`` (the transfer fit's),
    ``pretraining``, ``C``. Loss-law draws are aligned to the fit's draws (seeded; see ``attrs['alignment']``).

    N is searched in ``[1, C_F / (6 D_F_min)]``; ``D_F_min`` defaults to the smallest D_F in the transfer data.
    Where beta > alpha the fitted law rewards ever larger models on ever less fine-tuning data, so the optimum
    often sits at ``D_F = D_F_min`` (flagged in ``at_edge``, with a warning): the answer is then "as large a
    model as the smallest credible fine-tuning set allows", and it depends on ``D_F_min``.
    """
    law = loss_law(law, params)
    C = _budgets(C_F, "C_F")
    p, tr, par, how = _aligned(law, fit, pretraining, seed)
    N, D_F, D_E, loss, edge = _finetune(law, p, tr, C, _D_F_min(fit, D_F_min))
    dims, coords = ("pretraining", "C"), {"pretraining": par["pretraining"].values, "C": C}
    rng = data_range(fit)
    ds = xr.Dataset({name: unflat(v, par, dims, coords) for name, v in
                     (("N_opt", N), ("D_F_opt", D_F), ("D_E_opt", D_E), ("loss", loss), ("at_edge", edge),
                      ("N_orders_outside", orders_outside(N, *rng["N"])),
                      ("D_F_orders_outside", orders_outside(D_F, *rng["D_F"])))})
    ds.attrs.update(law=law.law, alignment=how, n_at_edge=_warn_edge(edge, "finetune_optimum", _FT_HINT),
                    compute="C_F = 6 N D_F (pre-training compute excluded)",
                    objective="argmin_N L(N, D_E(N, C_F/(6N)))", unit=fit.data.unit)
    return ds


def compute_frontier(law, fit, C, *, pretraining=None, seed: int | None = None, D_F_min: float | None = None,
                     params: dict | None = None) -> xr.Dataset:
    """From-scratch and fine-tuned optima on one dataset (the loss frontier, for plots): ``pretraining``
    holds :data:`SCRATCH` and the fit's distributions; variables ``N_opt``, ``D_opt`` (target-task data: D
    from scratch, D_F when fine-tuning), ``D_E``, ``loss``, ``at_edge``; dims ``chain``, ``draw`` (the fit's),
    ``pretraining``, ``C`` (from-scratch compute for the SCRATCH row, fine-tuning compute otherwise)."""
    law = loss_law(law, params)
    C = _budgets(C, "C")
    p, tr, par, how = _aligned(law, fit, pretraining, seed)
    Ns, Ds, Ls, Es = _scratch(law, p, C)
    Nf, Df, DEf, Lf, Ef = _finetune(law, p, tr, C, _D_F_min(fit, D_F_min))
    stack = lambda s, f: np.concatenate([s[:, None, :], f], axis=1)  # noqa: E731
    names = [SCRATCH] + [str(x) for x in par["pretraining"].values]
    dims, coords = ("pretraining", "C"), {"pretraining": names, "C": C}
    ds = xr.Dataset({name: unflat(v, par, dims, coords) for name, v in
                     (("N_opt", stack(Ns, Nf)), ("D_opt", stack(Ds, Df)), ("D_E", stack(Ds, DEf)),
                      ("loss", stack(Ls, Lf)), ("at_edge", stack(Es, Ef)))})
    ds.attrs.update(law=law.law, alignment=how, n_at_edge=_warn_edge(ds["at_edge"].values, "compute_frontier", _FT_HINT),
                    unit=fit.data.unit, compute="C = 6 N D (scratch), C_F = 6 N D_F (fine-tuning)")
    return ds


# ---- 3. smallest model reaching a target loss ------------------------------------------------------------


def smallest_model(law, fit, target_loss, D_F, *, pretraining=None, seed: int | None = None,
                   include_scratch: bool = True, N_bounds: tuple[float, float] = (N_MIN, N_MAX),
                   params: dict | None = None) -> xr.Dataset:
    """Posterior of the smallest ``N`` whose fine-tuned loss ``L(N, D_E(N, D_F))`` reaches ``target_loss``
    (and, with ``include_scratch``, the smallest from-scratch model with ``L(N, D_F) <= target``).

    The loss decreases in N (for beta >= 0), so this is bisection on log N within ``N_bounds``. ``status``:
    0 found, 1 reached already at the lower bound (N_min reported), 2 not reached below the upper bound
    (NaN: e.g. a target below the irreducible loss E). Dims ``chain``, ``draw``, ``pretraining``,
    ``target_loss``, ``D_F``; ``N_orders_outside`` gives the distance outside the transfer data.
    """
    law = loss_law(law, params)
    L_star = positive_grid(target_loss, "target_loss").values
    D = positive_grid(D_F, "D_F").values
    lo_N, hi_N = N_bounds
    if not (0 < lo_N < hi_N):
        raise BayesScalingError(f"N_bounds must satisfy 0 < low < high, got {N_bounds!r}")
    p, tr, par, how = _aligned(law, fit, pretraining, seed)
    S, Pn = tr["k"].shape
    k, alpha, beta = (tr[n] for n in ("k", "alpha", "beta"))
    if include_scratch:  # k = 0: D_E = D_F
        k = np.concatenate([np.zeros((S, 1)), k], axis=1)
        alpha = np.concatenate([np.ones((S, 1)), alpha], axis=1)
        beta = np.concatenate([np.zeros((S, 1)), beta], axis=1)
        Pn += 1
    shape = (S, Pn, len(L_star), len(D))
    names_p = list(p)
    k4, a4, b4 = (x[:, :, None, None] for x in (k, alpha, beta))
    L4, D4 = L_star[None, None, :, None], D[None, None, None, :]

    def g(u, L, D_F, k, alpha, beta, *values):
        N = np.exp(u)
        return law.loss(N, laws.effective_data(D_F, N, k, alpha, beta), dict(zip(names_p, values, strict=True))) - L

    u, status = _root_decreasing(g, np.full(shape, np.log(lo_N)), np.full(shape, np.log(hi_N)),
                                 (L4, D4, k4, a4, b4, *(v[:, None, None, None] for v in p.values())))
    N = np.exp(u)
    names = ([SCRATCH] if include_scratch else []) + [str(x) for x in par["pretraining"].values]
    dims = ("pretraining", "target_loss", "D_F")
    coords = {"pretraining": names, "target_loss": L_star, "D_F": D}
    rng = data_range(fit)
    ds = xr.Dataset({"N_min": unflat(N, par, dims, coords), "status": unflat(status, par, dims, coords),
                     "N_orders_outside": unflat(orders_outside(N, *rng["N"]), par, dims, coords)})
    ds = ds.assign_coords(D_F_orders_outside=("D_F", orders_outside(D, *rng["D_F"])))
    n_never = int((status == 2).sum())
    if n_never:
        warnings.warn(f"smallest_model: {n_never} of {status.size} draw(s) never reach the target loss below "
                      f"N = {hi_N:g} (N_min is NaN there; status == 2)", EdgeWarning, stacklevel=2)
    ds.attrs.update(law=law.law, alignment=how, n_not_reached=n_never, n_at_lower_bound=int((status == 1).sum()),
                    N_bounds=[lo_N, hi_N], unit=fit.data.unit)
    return ds


# ---- 4. compute saved ------------------------------------------------------------------------------------


def compute_saved(law, fit, C_F, *, pretraining=None, seed: int | None = None, D_F_min: float | None = None,
                  params: dict | None = None) -> xr.Dataset:
    """Posterior of the from-scratch compute that reaches the loss fine-tuning reaches with compute ``C_F``.

    ``L_ft = min_N L(N, D_E(N, C_F/(6N)))``; ``C_scratch = min_N 6 N D(N, L_ft)`` with ``D(N, L)`` the law's
    inverse in D (inf where N cannot reach L). Returns ``loss`` (L_ft), ``C_scratch``, ``N_scratch``,
    ``ratio = C_scratch / C_F`` and ``saved = C_scratch - C_F`` (pre-training compute not counted), dims
    ``chain``, ``draw``, ``pretraining``, ``C``; plus ``at_edge``.
    """
    law = loss_law(law, params)
    C = _budgets(C_F, "C_F")
    p, tr, par, how = _aligned(law, fit, pretraining, seed)
    Nf, Df, DEf, L_ft, edge_f = _finetune(law, p, tr, C, _D_F_min(fit, D_F_min))
    names = list(p)

    def f(u, L, *values):  # log compute from scratch at N = e^u reaching L
        N = np.exp(u)
        return np.log(laws.training_compute(N, law.data_needed(L, N, dict(zip(names, values, strict=True)))))

    lo = np.full(L_ft.shape, np.log(N_MIN))
    hi = np.full(L_ft.shape, np.log(N_MAX))
    u, logC, edge_s = _argmin_log(f, lo, hi, (L_ft, *(v[:, None, None] for v in p.values())))
    C_s = np.exp(logC)
    edge = edge_f | edge_s
    dims, coords = ("pretraining", "C"), {"pretraining": par["pretraining"].values, "C": C}
    ds = xr.Dataset({name: unflat(v, par, dims, coords) for name, v in
                     (("loss", L_ft), ("N_finetune", Nf), ("C_scratch", C_s), ("N_scratch", np.exp(u)),
                      ("ratio", C_s / C[None, None, :]), ("saved", C_s - C[None, None, :]), ("at_edge", edge))})
    ds.attrs.update(law=law.law, alignment=how, n_at_edge=_warn_edge(edge, "compute_saved", _FT_HINT),
                    note="pre-training compute is not counted (as in Hernandez et al. 2021)")
    return ds


def optimum_distance(spec, params: dict[str, float], runs: pd.DataFrame, *, span: float = 3.0,
                     step: float = 0.005) -> np.ndarray:
    """Each run's distance from the law's compute optimum at its budget, in decades of ``N``::

        x_i = |log10(N_i / N_opt(C_i))|,   N_opt(C) = argmin_N f(N, C / (6N); params),   C_i = 6 N_i D_i

    ``spec``: a law spec (or its name) with inputs ``N`` and ``D`` (others as columns of ``runs``); ``params``:
    its parameters' values (e.g. a least-squares fit to the training runs:
    :func:`bayes_scaling.analysis.backtest.lsq_fit`). A grid of ``step`` decades within ``span`` decades of each
    run's ``N`` (a minimum at the grid's edge gives ``span``). The covariate of a noise that grows off the
    optimum (``[likelihood] sigma_slope``: IsoFLOP runs far from their budget's optimum fit the law worse).

    >>> from bayes_scaling.laws.formulas import chinchilla_optimal_N
    >>> p = {"E": 1.8, "A": 482.0, "B": 2085.0, "alpha_N": 0.348, "alpha_D": 0.366}
    >>> n = 10 * chinchilla_optimal_N(1e21, **{k: p[k] for k in ("A", "B", "alpha_N", "alpha_D")})
    >>> round(float(optimum_distance("chinchilla", p, pd.DataFrame({"N": [n], "D": [1e21 / (6 * n)]}))[0]), 2)
    1.0
    """
    from bayes_scaling.errors import ConfigError, DataError
    from bayes_scaling.inference.fit import _as_spec

    spec = _as_spec(spec)
    missing = [c for c in ("N", "D") if c not in spec.inputs]
    if missing:
        raise ConfigError(f"optimum_distance: the law {spec.name!r} has no input(s) {', '.join(missing)}; it needs "
                          "N and D (the compute optimum is along C = 6 N D)")
    N, D = (pd.to_numeric(runs[c], errors="coerce").to_numpy(dtype=float) for c in ("N", "D"))
    bad = np.flatnonzero(~((N > 0) & (D > 0)))
    if len(bad):
        from bayes_scaling.errors import format_rows

        raise DataError(f"optimum_distance: columns 'N' and 'D' need numbers > 0; not so at rows {format_rows(bad)}")
    grid = np.log10(N)[:, None] + np.arange(-span, span + step / 2, step)[None, :]
    n_g = 10.0**grid
    values = {**{c: pd.to_numeric(runs[c]).to_numpy(dtype=float)[:, None] for c in spec.inputs if c not in ("N", "D")},
              **params, "N": n_g, "D": (6 * N * D)[:, None] / (6 * n_g)}
    with np.errstate(all="ignore"):
        f = np.broadcast_to(np.asarray(spec.formula.evaluate(values, backend="numpy"), dtype=float), n_g.shape)
    best = np.nanargmin(np.where(np.isfinite(f), f, np.inf), axis=1)
    return np.abs(np.log10(N) - grid[np.arange(len(N)), best])
