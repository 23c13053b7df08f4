"""A PyMC model from a law spec and a data table.

For a spec with formula ``f(x; theta)``, target ``y`` and likelihood scale ``log``::

    log y[i] ~ Normal(log f(x[i]; theta[i]), sigma)          (or StudentT(nu, ...); scale "identity": y, f)

Each parameter is sampled on its unconstrained scale ``u`` (log for positive, logit for (0, 1), itself for real)
and reported on its natural scale. By sharing:

- shared:   ``u ~ Normal(m, s)``;
- separate: ``u[g] ~ Normal(m, s)`` for each group ``g`` of its column;
- pooled:   ``u[g] ~ Normal(u_mu, u_sigma)``, ``u_mu ~ Normal(m, s)``, ``u_sigma ~ Gamma(2, 2 / spread)``
  (zero-avoiding), centred or non-centred (``u[g] = u_mu + u_sigma z[g]``, ``z ~ Normal(0, 1)``);
- nested:   pooled by a column within a coarser one (``within``): ``u[g] ~ Normal(u_f[family[g]], u_sigma)``,
  ``u_f[h] = u_mu + u_sigma_<within> z_f[h]`` (always non-centred: few groups per family), both spreads
  ``Gamma(2, 2 / spread)``; ``u[g]`` centred or non-centred as for one level;
- fixed:    a constant.

``(m, s)`` is the parameter's prior on the unconstrained scale (see :mod:`bayes_scaling.laws.spec` for the
defaults, some of which scale with the data). Inputs, group indices, the target and every prior location and
scale enter through ``pm.Data``: a compiled model is refitted on new data of the same structure without
recompiling.

Replicate runs (``[likelihood] replicates = true``): the rows that share every input and group column are one
configuration ``c`` with ``n_c`` runs (seeds) ``y[c, s]`` on the likelihood's scale::

    y[c, s] = f(x_c) + delta_c + e[c, s],   delta_c ~ Normal(0, sigma),   e[c, s] ~ Normal(0, sigma_seed)

whose likelihood factorises exactly into the cell mean with its standard error,
``ybar_c ~ Normal(f(x_c), sqrt(sigma**2 + sigma_seed**2 / n_c))`` (the observed variable, dims ``cell``), and the
within-cell scatter, ``SS_c / sigma_seed**2 ~ chi2(n_c - 1)`` (a Potential). ``sigma_seed ~ HalfNormal``. With
the Student-t family the cell mean is Student-t and the scatter stays normal. With ``seed_slope = "N"`` the seed
noise of cell ``c`` is ``sigma_seed * exp(seed_slope * (log N_c - c_N))``, ``c_N`` the mean of ``log N`` over the
rows (:func:`seed_centre`), ``seed_slope ~ Normal(0, 0.5)`` (as
:func:`bayes_scaling.models.losslaws.replicate_likelihood`).

Centred coefficient: when the law is one power-law monomial on the log scale, ``f = c * prod_i x_i**e_i``
(:meth:`~bayes_scaling.laws.spec.LawSpec.monomial`; the transfer law ``k * D_F**alpha * N**beta``), the
coefficient is sampled at the data's geometric centre ``x_c`` (``log x_c`` the mean of ``log x`` over the rows)::

    log c_at_centre = log c + sum_i e_i log x_c,i          (the law's log value at the centre)
    log c_at_centre ~ Normal(m_c + sum_i E[e_i] log x_c,i, sqrt(s_c**2 + sum_i (sd[e_i] log x_c,i)**2))

its prior the moment-matched projection of the spec's prior on ``log c`` (stated at ``x = 1``) and of the
exponents' priors; a pooled coefficient is pooled at the centre (``log_c_at_centre_mu``, ``_sigma`` with the
spec's ``spread``, ``_z``). ``c`` itself (at ``x = 1``) and ``log_c`` are reported as before (deterministics), so
summaries and predictions keep their meaning. At ``x = 1`` the coefficient and the exponents are strongly
correlated (``x`` spans orders of magnitude far from 1); at the centre they are nearly independent
(:class:`Centring`, :func:`centring`).

Parameterization (``"auto"``): centred where every group of the parameter's column has at least
:data:`CENTRED_MIN_ROWS` rows that the parameter enters (the data pin each group, and the non-centred form would
turn that into a curved ridge), non-centred otherwise (few informative rows: the centred form is a funnel).

A noise scale per level (``[likelihood] sigma_by = "kind"``): row ``i`` of level ``l = kind[i]`` has noise
``sigma[l]``, ``sigma[l] ~ HalfNormal(s)`` with the spec's one prior scale ``s``; with replicates each level has
its own ``sigma_seed[l]`` (and ``seed_slope[l]``), with the Student-t family its own ``nu[l]``. The column is read
as labels (like a group column) and splits the replicate configurations.

A noise scale along a column (``[likelihood] sigma_slope = "x"``): row ``i`` has noise
``sigma_i = sigma * exp(sigma_slope * (x_i - c))`` (:func:`noise_sd`), ``c`` the mean of ``x`` over the fitted
rows (:func:`sigma_centre`, kept with the fit for predictions), ``sigma_slope ~ Normal(0, 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.tables import check_labels, check_numeric, require_columns
from bayes_scaling.errors import ConfigError, DataError
from bayes_scaling.laws.spec import LawSpec

__all__ = ["SpecData", "ModelPlan", "Centring", "centring", "centred_name", "plan", "parameterizations_to_try", "prepare",
           "default_priors", "choose_parameterization", "build_spec_model", "CENTRED_MIN_ROWS", "unconstrained_name",
           "natural_value", "fraction_scale"]

#: A pooled parameter is centred when every group has at least this many rows.
CENTRED_MIN_ROWS = 10
#: A centred monomial's pooled parameters are centred when, in every group, the standard error of each one's
#: least-squares estimate is below this fraction of its spread (:func:`pinned_by_groups`).
CENTRED_MAX_SE_RATIO = 0.12
_RESERVED = {"sigma", "nu", "row"}


@dataclass
class SpecData:
    """A validated table for a spec: inputs, target, group labels and indices."""

    table: pd.DataFrame
    inputs: dict[str, np.ndarray]
    target: np.ndarray
    labels: dict[str, list[str]] = field(default_factory=dict)
    index: dict[str, np.ndarray] = field(default_factory=dict)
    #: ``(by, within)`` -> the index of each ``by`` group's ``within`` group (two-level pooling; -1: none)
    parents: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    #: replicate runs (spec ``replicates``): each row's configuration (cell) index, else None
    cell: np.ndarray | None = None

    @property
    def n_cells(self) -> int:
        return 0 if self.cell is None else int(self.cell.max()) + 1 if len(self.cell) else 0

    def cell_table(self, spec: LawSpec) -> dict[str, np.ndarray]:
        """Per cell: ``first`` (a row of it), ``n`` (runs), ``mean`` and ``ss`` (sum of squared deviations) of the
        target on the likelihood's scale."""
        y = _on_scale(self.target, spec, np)
        k = self.n_cells
        n = np.bincount(self.cell, minlength=k).astype(float)
        mean = np.bincount(self.cell, weights=y, minlength=k) / n
        ss = np.bincount(self.cell, weights=(y - mean[self.cell]) ** 2, minlength=k)
        first = np.array([np.flatnonzero(self.cell == c)[0] for c in range(k)], dtype=np.int64)
        return {"first": first, "n": n, "mean": mean, "ss": ss}

    @property
    def n(self) -> int:
        return len(self.target)

    def rows_per_group(self, column: str) -> np.ndarray:
        return np.bincount(self.index[column], minlength=len(self.labels[column]))


def prepare(spec: LawSpec, table: pd.DataFrame, *, what: str = "data", labels: dict | None = None,
            target: bool = True) -> SpecData:
    """Check ``table`` against ``spec`` (columns present, numbers finite, a log-scale target > 0, group labels
    non-empty); a :class:`DataError` names the column and rows. ``labels``: known group labels (new data for
    predictions: unknown labels are kept and marked with index -1)."""
    if labels is None:   # fitting: a formula name that is no column is unknown; new data: a missing input
        spec.formula.check_names(list(table.columns), list(spec.parameters))
    for name in spec.parameters:
        if name in _RESERVED:
            raise ConfigError(f"parameter name {name!r} is reserved (the noise model uses it); rename it")
    slope = [spec.sigma_slope] if spec.sigma_slope is not None else []
    needed = list(dict.fromkeys(spec.inputs + list(label_columns(spec).values()) + slope)) + \
        ([spec.target] if target else [])
    require_columns(table, needed, what)
    inputs = {c: check_numeric(table, c, what, positive=False) for c in spec.inputs}
    for c in slope:     # the noise's covariate: numbers at every row (a fitted row and a predicted point alike)
        check_numeric(table, c, what, positive=False)
    y = check_numeric(table, spec.target, what, positive=spec.scale == "log") if target else np.full(len(table),
                                                                                                     np.nan)
    out_labels, index = {}, {}
    for g, column in label_columns(spec).items():
        lab = check_labels(table, column, what)
        known = list(labels[g]) if labels is not None else sorted(dict.fromkeys(lab))
        pos = {v: i for i, v in enumerate(known)}
        index[g] = np.array([pos.get(v, -1) for v in lab], dtype=np.int64)
        out_labels[g] = known
    out = SpecData(table=table.reset_index(drop=True), inputs=inputs, target=y, labels=out_labels, index=index)
    for by, within in nestings(spec):
        out.parents[(by, within)] = parent_index(out, by, within, what)
    fractions = [p.name for p in spec.parameters.values() if p.fraction_of == "min_target"]
    if fractions and target and not np.min(y) > 0:
        raise DataError(f"{what}: parameter(s) {', '.join(fractions)} are fractions of the smallest "
                        f"{spec.target!r}, which is {np.min(y):.4g} here; expected every {spec.target!r} > 0")
    if spec.replicates and target:
        out.cell = replicate_cells(out, spec, what)
    if spec.seed_slope is not None and target:
        bad = np.flatnonzero(~(inputs[spec.seed_slope] > 0))
        if len(bad):
            from bayes_scaling.errors import format_rows

            raise DataError(f"{what}: column {spec.seed_slope!r} (the seed noise's slope is in its log) has values "
                            f"<= 0 at rows {format_rows(bad)}; expected positive values")
    return out


def noise_dim(spec: LawSpec) -> str | None:
    """The dimension of the noise's scales (``[likelihood] sigma_by``): the column's name, or
    ``<column>_level`` where the column is also an input of the formula; None without ``sigma_by``."""
    if spec.sigma_by is None:
        return None
    return f"{spec.sigma_by}_level" if spec.sigma_by in spec.inputs else spec.sigma_by


def label_columns(spec: LawSpec) -> dict[str, str]:
    """The columns read as labels, by their dimension's name: the group columns, then the noise's ``sigma_by``
    column (under :func:`noise_dim`) if another."""
    out = {g: g for g in spec.groups}
    dim = noise_dim(spec)
    if dim is not None and spec.sigma_by not in spec.groups:
        out[dim] = spec.sigma_by
    return out


def replicate_cells(data: SpecData, spec: LawSpec, what: str = "data") -> np.ndarray:
    """Each row's configuration: rows with the same value in every input and group column share one (in order
    of first appearance). A :class:`DataError` when replicates exist but all have the same target (copies of one
    run carry no seed noise)."""
    from bayes_scaling.errors import format_rows

    keys = pd.DataFrame({**{c: data.inputs[c] for c in spec.inputs},
                         **{f"label__{g}": data.index[g] for g in label_columns(spec)}})
    cell = keys.groupby(list(keys.columns), sort=False).ngroup().to_numpy(dtype=np.int64) if len(keys.columns) \
        else np.zeros(data.n, dtype=np.int64)
    counts = np.bincount(cell)
    if (counts > 1).any():
        y = data.target
        mean = np.bincount(cell, weights=y) / counts
        if np.all(np.abs(y - mean[cell]) <= 1e-12 * np.abs(y)):
            rows = np.flatnonzero(counts[cell] > 1)
            same = ", ".join(dict.fromkeys(spec.inputs + list(label_columns(spec).values())))
            raise DataError(f"{what}: the replicate runs (same {same}) at rows "
                            f"{format_rows(rows)} all have identical {spec.target!r} values; expected runs with "
                            "different seeds (copies of one run carry no seed noise)")
    return cell


def nestings(spec: LawSpec) -> list[tuple[str, str]]:
    """The ``(by, within)`` column pairs of the spec's two-level pooled parameters."""
    return list(dict.fromkeys((p.by, p.within) for p in spec.parameters.values() if p.within is not None))


def parent_index(data: SpecData, by: str, within: str, what: str = "data") -> np.ndarray:
    """For each ``by`` group of ``data``, the index of its ``within`` group (-1 for a group with no rows or an
    unknown one); a :class:`DataError` names the groups that lie in more than one ``within`` group, and their
    rows."""
    from bayes_scaling.errors import format_rows

    by_values = data.table[by].astype(str).to_numpy()
    within_values = data.table[within].astype(str).to_numpy()
    bad = []
    for name in dict.fromkeys(by_values):
        rows = np.flatnonzero(by_values == name)
        values = list(dict.fromkeys(within_values[rows]))
        if len(values) > 1:
            bad.append((name, rows, values))
    if bad:
        name, rows, values = bad[0]
        raise DataError(f"{what}: column {within!r} must be constant within each {by!r} group (a parameter is "
                        f"pooled by {by!r} within {within!r}), but {len(bad)} group(s) are not: {by} {name!r} "
                        f"has {within} {', '.join(repr(v) for v in values)} at rows {format_rows(rows)}")
    child, parent = data.index[by], data.index[within]
    out = np.full(len(data.labels[by]), -1, dtype=np.int64)
    for g in range(len(data.labels[by])):
        rows = np.flatnonzero(child == g)
        if len(rows):
            out[g] = parent[rows[0]]
    return out


def unconstrained_name(name: str, domain: str) -> str:
    return {"positive": f"log_{name}", "unit": f"logit_{name}", "real": name, "negative": f"log_neg_{name}"}[domain]


def _to_u(value, domain):
    if domain == "positive":
        return np.log(value)
    if domain == "negative":
        return np.log(-np.asarray(value))
    if domain == "unit":
        return np.log(value) - np.log1p(-value)
    return value


def _from_u(u, domain, m):
    if domain == "positive":
        return m.exp(u)
    if domain == "negative":
        return -m.exp(u)
    if domain == "unit":
        return 1.0 / (1.0 + m.exp(-u))
    return u


def fraction_scale(data: SpecData, p=None) -> float:
    """What a ``fraction_of`` parameter ``p`` is a fraction of: the smallest target of the rows
    (``"min_target"``, or ``p`` None), or its fixed value (a number)."""
    if p is not None and not isinstance(p.fraction_of, str):
        return float(p.fraction_of)
    return float(np.min(data.target))


def natural_value(p, u, data: SpecData, m=np):
    """A free parameter's natural value at ``u`` on its unconstrained scale: ``_from_u``, or for a
    ``fraction_of`` parameter ``c / (1 + exp(-u))`` (``c``: :func:`fraction_scale`, e.g. ``min(y)``)."""
    if p.fraction_of is not None:
        return fraction_scale(data, p) / (1.0 + m.exp(-u))
    return _from_u(u, p.domain, m)


def _on_scale(f, spec: LawSpec, m):
    return m.log(f) if spec.scale == "log" else f


def centred_name(name: str, domain: str) -> str:
    """The sampled variable of a centred coefficient (:class:`Centring`): ``log_<name>_at_centre``."""
    return f"{unconstrained_name(name, domain)}_at_centre"


@dataclass(frozen=True)
class Centring:
    """A power-law monomial's coefficient ``c`` sampled at the data's geometric centre (module docstring):
    ``log c = log c_at_centre - sum_i s_i e_i centre[x_i]`` for ``powers = ((x_i, e_i, s_i), ...)``; ``prior``: the
    ``(location, scale)`` of ``log c_at_centre`` (of its population location when pooled)."""

    coefficient: str
    powers: tuple[tuple[str, str, int], ...]
    centre: dict[str, float]
    prior: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"coefficient": self.coefficient, "powers": [list(p) for p in self.powers],
                "centre": dict(self.centre), "prior": list(self.prior)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Centring:
        return cls(str(d["coefficient"]), tuple((str(x), str(e), int(s)) for x, e, s in d["powers"]),
                   {str(k): float(v) for k, v in d["centre"].items()}, (float(d["prior"][0]), float(d["prior"][1])))

    def log_coefficient(self, u_centre, exponents: dict[str, Any]):
        """``log c`` (at ``x = 1``) from ``log c_at_centre`` and each exponent's value (arrays or tensors that
        broadcast with ``u_centre``)."""
        out = u_centre
        for x, e, s in self.powers:
            out = out - s * exponents[e] * self.centre[x]
        return out


def _moments(loc: float, scale: float, domain: str) -> tuple[float, float]:
    """Mean and sd of a parameter whose unconstrained value is ``Normal(loc, scale)``."""
    if domain == "real":
        return loc, scale
    if domain in ("positive", "negative"):
        sign = -1.0 if domain == "negative" else 1.0
        mean = float(np.exp(loc + scale**2 / 2))
        return sign * mean, mean * float(np.sqrt(np.expm1(scale**2)))
    m = 1.0 / (1.0 + np.exp(-loc))
    return float(m), float(scale * m * (1 - m))      # unit: the delta method


def monomial_constant(spec: LawSpec) -> float:
    """The product of a monomial law's number factors: the law's value with every name at 1."""
    with np.errstate(all="ignore"):
        return float(spec.formula.evaluate(dict.fromkeys(spec.formula.names, 1.0), backend="numpy"))


def centring(spec: LawSpec, data: SpecData, priors: dict[str, tuple[float, float]]) -> dict[str, Centring]:
    """The centred coefficient of ``spec`` on ``data`` (module docstring), keyed by its name; empty unless the
    law is one monomial (:meth:`~bayes_scaling.laws.spec.LawSpec.monomial`) on the log scale whose coefficient
    is free, positive and pooled on one level at most, whose exponents are fixed or vary by the coefficient's
    column (or are shared), and whose inputs are > 0 on every row."""
    mono = spec.monomial()
    if mono is None or spec.scale != "log" or data.n == 0 or not monomial_constant(spec) > 0:
        return {}
    name, powers = mono
    c = spec.parameters[name]
    if c.fixed is not None or c.domain != "positive" or c.within is not None:
        return {}
    loc, var = priors[name][0], priors[name][1] ** 2
    centre = {}
    for x, e, s in powers:
        p = spec.parameters[e]
        values = np.asarray(data.inputs[x], dtype=float)
        if p.within is not None or (p.fixed is None and p.by not in (None, c.by)) or not np.all(values > 0):
            return {}
        centre[x] = float(np.mean(np.log(values)))
        mean, sd = (float(p.fixed), 0.0) if p.fixed is not None else _moments(*priors[e], p.domain)
        loc += s * mean * centre[x]
        var += (sd * centre[x]) ** 2
    return {name: Centring(name, tuple(powers), centre, (float(loc), float(np.sqrt(var))))}


def point_fit(spec: LawSpec, data: SpecData, seed: int = 0) -> dict[str, float]:
    """Least-squares values of the free parameters (groups ignored) on the likelihood's scale: the starting
    point of the data-scaled default priors. Multi-start (a seeded set of starting points over many orders of
    magnitude), exponents held gently near 0.3."""
    from scipy.optimize import least_squares

    free = [p for p in spec.parameters.values() if p.fixed is None]
    fixed = {p.name: p.fixed for p in spec.parameters.values() if p.fixed is not None}
    exps = spec.exponents()
    y = _on_scale(data.target, spec, np)
    rng = np.random.default_rng(seed)

    def resid(u):
        vals = {**data.inputs, **fixed, **{p.name: _from_u(ui, p.domain, np) for p, ui in zip(free, u, strict=True)}}
        with np.errstate(all="ignore"):
            r = _on_scale(np.asarray(spec.formula.evaluate(vals, backend="numpy"), dtype=float), spec, np) - y
        r = np.where(np.isfinite(r), r, 1e3)
        pen = [(ui - np.log(0.3)) * 0.05 if p.name in exps and p.domain in ("positive", "negative") else ui * 1e-3
               for p, ui in zip(free, u, strict=True)]
        return np.concatenate([r, pen])

    best, best_cost = None, np.inf
    for k in range(12):
        u0 = []
        for p in free:
            if p.name in exps and p.domain in ("positive", "negative"):
                u0.append(np.log(rng.uniform(0.05, 1.0)) if k else np.log(0.3))
            elif p.domain in ("positive", "negative"):
                u0.append(rng.uniform(-5.0, 25.0) if k else np.log(max(np.median(np.abs(data.target)), 1e-12)))
            elif p.domain == "unit":
                u0.append(rng.uniform(-3.0, 3.0) if k else 0.0)
            else:
                u0.append(rng.normal(0.0, 1.0 + np.std(data.target)) if k else 0.0)
        try:
            res = least_squares(resid, np.array(u0, dtype=float), method="trf", max_nfev=200)
        except (ValueError, FloatingPointError):
            continue
        if res.cost < best_cost and np.all(np.isfinite(res.x)):
            best, best_cost = res.x, res.cost
    if best is None:
        return {}
    return {p.name: float(_from_u(ui, p.domain, np)) for p, ui in zip(free, best, strict=True)}


def default_priors(spec: LawSpec, data: SpecData, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Each free parameter's prior as ``(location, scale)`` on its unconstrained scale, the spec's values
    where given, else the documented defaults (:mod:`bayes_scaling.laws.spec`)."""
    exps = spec.exponents()
    need_point = any(p.fixed is None and p.name not in exps and not {"median", "mu"} & set(p.prior)
                     and p.median_of is None and p.domain != "unit" and p.fraction_of is None
                     for p in spec.parameters.values())
    point = point_fit(spec, data, seed) if need_point else {}
    y_sd = float(np.std(data.target)) if len(data.target) > 1 else 1.0
    out = {}
    for p in spec.parameters.values():
        if p.fixed is not None:
            continue
        if p.domain in ("positive", "negative") and p.fraction_of is None:
            sign = -1.0 if p.domain == "negative" else 1.0     # negative: the prior of -x, a positive number
            if p.median_of is not None:           # the centre of an input column, on the log scale
                with np.errstate(all="ignore"):
                    lx = np.log(np.asarray(data.inputs[p.median_of], dtype=float))
                lx = lx[np.isfinite(lx)]
                median = float(np.exp(lx.mean())) if len(lx) else 1.0
                sigma = p.prior.get("sigma", 1.0 if p.name in exps else 3.0)
            elif p.name in exps:
                median, sigma = sign * p.prior.get("median", sign * 0.3), p.prior.get("sigma", 1.0)
            else:
                fallback = float(np.median(np.abs(data.target))) or 1.0
                median = sign * p.prior.get("median", point.get(p.name, sign * fallback))
                if not np.isfinite(median) or median <= 0:
                    median = fallback
                sigma = p.prior.get("sigma", 3.0)
            out[p.name] = (float(np.log(median)), float(sigma))
        elif p.domain == "unit" or p.fraction_of is not None:
            mean = p.prior.get("mean", 0.5)
            out[p.name] = (float(np.log(mean) - np.log1p(-mean)), float(p.prior.get("sigma", 1.5)))
        else:
            mu = p.prior.get("mu", point.get(p.name, 0.0))
            out[p.name] = (float(mu), float(p.prior.get("sigma", 10.0 * (abs(mu) + y_sd))))
    return out


def noise_prior(spec: LawSpec, data: SpecData) -> float:
    """HalfNormal scale of the noise sd: the spec's, else the target's sd on the likelihood's scale."""
    if spec.sigma is not None:
        return float(spec.sigma)
    y = _on_scale(data.target, spec, np)
    sd = float(np.std(y)) if len(y) > 1 else 0.0
    return sd if np.isfinite(sd) and sd > 0 else 1.0


def informative_rows(spec: LawSpec, data: SpecData, priors: dict[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """For each grouped parameter, the number of rows per group whose law value depends on it: the change of
    the law's value (on the likelihood's scale) when the parameter moves by 0.01 on its unconstrained scale,
    at the prior locations, is above 1e-9. A row that the parameter does not enter (e.g. a from-scratch run
    for a transfer parameter multiplied by 0) does not count."""
    base = {c: v for c, v in data.inputs.items()}
    for p in spec.parameters.values():
        if p.fixed is not None:
            base[p.name] = p.fixed
        else:
            base[p.name] = float(natural_value(p, priors[p.name][0], data))

    def value(vals):
        with np.errstate(all="ignore"):
            return _on_scale(np.asarray(spec.formula.evaluate(vals, backend="numpy"), dtype=float), spec, np)

    out = {}
    for p in spec.parameters.values():
        if p.by is None or p.fixed is not None:
            continue
        lo, hi = dict(base), dict(base)
        lo[p.name] = float(_from_u(priors[p.name][0] - 0.01, p.domain, np))
        hi[p.name] = float(_from_u(priors[p.name][0] + 0.01, p.domain, np))
        delta = np.abs(value(hi) - value(lo)) * np.ones(data.n)
        informative = np.isfinite(delta) & (delta > 1e-9)
        out[p.name] = np.bincount(data.index[p.by][informative], minlength=len(data.labels[p.by]))
    return out


def check_solvable(spec: LawSpec, data: SpecData, priors: dict[str, tuple[float, float]]) -> None:
    """For a law given as an equation (:class:`~bayes_scaling.laws.expr.Equation`): at the initial point (every
    parameter at its prior location, or fixed) the residual ``lhs - rhs`` must change sign between the bracket's
    ends on every row; a :class:`DataError` names the rows where it does not, the bracket's ends there and the
    parameter values. A formula: nothing to check."""
    from bayes_scaling.errors import format_rows
    from bayes_scaling.laws.expr import Equation

    eq = spec.formula
    if not isinstance(eq, Equation):
        return
    values: dict[str, Any] = dict(data.inputs)
    for p in spec.parameters.values():
        values[p.name] = p.fixed if p.fixed is not None else float(natural_value(p, priors[p.name][0], data))
    bad = np.flatnonzero(np.broadcast_to(eq.no_root(values), (data.n,)))
    if len(bad):
        a, b = (np.broadcast_to(np.asarray(v, dtype=float), (data.n,)) for v in eq.ends(values, "numpy"))
        i = bad[0]
        at = ", ".join(f"{p} = {values[p]:.4g}" for p in spec.parameters)
        raise DataError(
            f"equation {eq.text!r}: no root in {eq.target!r} between the bracket's ends "
            f"({eq.bracket[0].text}, {eq.bracket[1].text}) at the initial point ({at}): lhs - rhs does not change "
            f"sign there on {len(bad)} of {data.n} rows, at rows {format_rows(bad)} (row {i}: ends {a[i]:.4g} and "
            f"{b[i]:.4g}); give a bracket that holds the root on every row, or priors whose medians put it there")


def pinned_by_groups(spec: LawSpec, data: SpecData, centred: dict[str, Centring]) -> bool | None:
    """Whether the data pin every group of a centred monomial's pooled parameters (:func:`centring`): each
    group's rows fitted by least squares, ``log y`` on ``1`` and the centred ``log x_i``; pinned when every
    pooled parameter's standard error, on its unconstrained scale, is below :data:`CENTRED_MAX_SE_RATIO` times
    its ``spread`` in every group (fewer rows than columns: not pinned). None without a pooled centred
    coefficient. The centred form is then the easy geometry; otherwise the spreads are weakly identified and
    the centred form is a funnel (the transfer SBC design, 16 runs per distribution, draws spreads near 0)."""
    for name, c in centred.items():
        coef = spec.parameters[name]
        if coef.sharing != "pooled":
            continue
        X = np.column_stack([np.ones(data.n)] + [np.log(data.inputs[x]) - c.centre[x] for x, _, _ in c.powers])
        y = np.log(data.target)
        cols = [(0, coef)] + [(i + 1, spec.parameters[e]) for i, (_, e, _) in enumerate(c.powers)
                              if spec.parameters[e].sharing == "pooled"]
        for g in range(len(data.labels[coef.by])):
            m = data.index[coef.by] == g
            Xg, yg = X[m], y[m]
            if m.sum() <= X.shape[1] or np.linalg.matrix_rank(Xg) < X.shape[1]:
                return False
            b, *_ = np.linalg.lstsq(Xg, yg, rcond=None)
            resid = yg - Xg @ b
            se = np.sqrt(np.clip(np.diag(resid @ resid / (m.sum() - X.shape[1]) * np.linalg.pinv(Xg.T @ Xg)), 0, None))
            for i, p in cols:      # on the unconstrained scale: d log|e| = de / |e|
                scale = 1.0 if i == 0 or p.domain == "real" else max(abs(float(b[i])), 1e-12)
                if se[i] / scale >= CENTRED_MAX_SE_RATIO * p.spread:
                    return False
        return True
    return None


def choose_parameterization(spec: LawSpec, data: SpecData,
                            priors: dict[str, tuple[float, float]] | None = None,
                            centred: dict[str, Centring] | None = None) -> dict[str, str]:
    """``"centred"`` or ``"non_centred"`` for each partially pooled parameter: with a pooled coefficient
    sampled at the data's centre (``centred``, :func:`centring`), centred when the data pin every group
    (:func:`pinned_by_groups`); otherwise centred when every group has at least :data:`CENTRED_MIN_ROWS`
    informative rows (:func:`informative_rows`; with ``priors`` None, all rows). For a two-level parameter this
    is the form of its finer level; the coarser level is always non-centred."""
    counts = informative_rows(spec, data, priors) if priors is not None else {}
    pinned = pinned_by_groups(spec, data, centred or {})
    out = {}
    for p in spec.parameters.values():
        if p.sharing != "pooled":
            continue
        if p.parameterization != "auto":
            out[p.name] = p.parameterization
        elif pinned is not None:
            out[p.name] = "centred" if pinned else "non_centred"
        else:
            n = counts.get(p.name, data.rows_per_group(p.by))
            out[p.name] = "centred" if n.min() >= CENTRED_MIN_ROWS else "non_centred"
    return out


def check_identifiable(spec: LawSpec, data: SpecData) -> None:
    """Errors for designs the law cannot be fitted on: fewer rows than free parameters; a group column with
    one group for a pooled or separate parameter is fine (it is one value), but a group with no rows is not."""
    n_free = 0
    for p in spec.parameters.values():
        if p.fixed is None:
            n_free += len(data.labels[p.by]) if p.by else 1
    if data.n <= n_free - sum(1 for p in spec.parameters.values() if p.sharing == "pooled"):
        raise DataError(f"{data.n} rows for {n_free} free parameter values: the law cannot be learned from "
                        "these rows; add runs or share/fix parameters")


def build_spec_model(spec: LawSpec, data: SpecData, priors: dict[str, tuple[float, float]],
                     parameterization: dict[str, str], noise_scale: float,
                     centred: dict[str, Centring] | None = None):
    """The PyMC model (see the module docstring). Data and prior constants are ``pm.Data``. ``centred``: the
    coefficients sampled at the data's centre (:func:`centring`; none by default)."""
    import pymc as pm
    import pytensor.tensor as pt

    centred = centred or {}
    priors = {**priors, **{n: c.prior for n, c in centred.items()}}

    coords: dict[str, Any] = {"row": np.arange(data.n)}
    coords.update({g: list(lab) for g, lab in data.labels.items()})
    with pm.Model(coords=coords) as model:
        inputs = {c: pm.Data(c, v, dims="row") for c, v in data.inputs.items()}
        idx = {g: pm.Data(f"idx__{g}", data.index[g], dims="row") for g in data.labels}
        obs = pm.Data("observed__" + spec.target, _on_scale(data.target, spec, np), dims="row")
        parents = {(by, within): pm.Data(f"parent__{by}__{within}", v, dims=by)
                   for (by, within), v in data.parents.items()}
        row_values: dict[str, Any] = {}
        group_values: dict[str, Any] = {}    # each parameter per group (or a scalar), natural scale
        for p in spec.parameters.values():
            if p.fixed is not None:
                row_values[p.name] = group_values[p.name] = pt.constant(p.fixed)
                continue
            uname = centred_name(p.name, p.domain) if p.name in centred else unconstrained_name(p.name, p.domain)
            loc = pm.Data(f"prior__{p.name}__loc", priors[p.name][0])
            scale = pm.Data(f"prior__{p.name}__scale", priors[p.name][1])
            dims = p.by
            if p.fraction_of is not None:     # value = f min(y) (or f c), logit f ~ Normal(loc, scale) (shared only)
                u = pm.Normal(f"logit_{p.name}_fraction", loc, scale)
                frac = pm.Deterministic(f"{p.name}_fraction", _from_u(u, "unit", pt))
                row_values[p.name] = pm.Deterministic(
                    p.name, frac * pm.Data(f"fraction__{p.name}__of", fraction_scale(data, p)))
                continue
            if p.sharing == "shared":
                u = pm.Normal(uname, loc, scale)
            elif p.sharing == "separate":
                u = pm.Normal(uname, loc, scale, dims=dims)
            else:
                u_mu = pm.Normal(f"{uname}_mu", loc, scale)
                u_sigma = pm.Gamma(f"{uname}_sigma", alpha=2.0, beta=2.0 / p.spread)
                centre = u_mu
                if p.within is not None:     # two levels: each group's centre is its parent group's location
                    s_out = pm.Gamma(f"{uname}_sigma_{p.within}", alpha=2.0, beta=2.0 / p.spread)
                    z_out = pm.Normal(f"{uname}_{p.within}_z", 0.0, 1.0, dims=p.within)
                    u_out = pm.Deterministic(f"{uname}_{p.within}", u_mu + s_out * z_out, dims=p.within)
                    if p.domain != "real":
                        pm.Deterministic(f"{p.name}_{p.within}", _from_u(u_out, p.domain, pt), dims=p.within)
                    centre = u_out[parents[(p.by, p.within)]]
                if parameterization[p.name] == "centred":
                    u = pm.Normal(uname, centre, u_sigma, dims=dims)
                else:
                    z = pm.Normal(f"{uname}_z", 0.0, 1.0, dims=dims)
                    u = pm.Deterministic(uname, centre + u_sigma * z, dims=dims)
            if p.name in centred:            # the coefficient at x = 1 once the exponents are known (below)
                group_values[p.name] = u
                continue
            natural = u if p.domain == "real" else pm.Deterministic(p.name, _from_u(u, p.domain, pt), dims=dims)
            group_values[p.name] = natural
            row_values[p.name] = natural[idx[p.by]] if p.by is not None else natural
        mu = None
        for name, c in centred.items():
            p = spec.parameters[name]
            centre = {x: pm.Data(f"centre__{name}__{x}", v) for x, v in c.centre.items()}
            log_c = pm.Deterministic(unconstrained_name(name, p.domain), Centring(
                name, c.powers, centre, c.prior).log_coefficient(group_values[name], group_values), dims=p.by)
            natural = pm.Deterministic(name, pt.exp(log_c), dims=p.by)
            row_values[name] = natural[idx[p.by]] if p.by is not None else natural
            # the law's log value, linear in the centred log inputs: log f = log c_at_centre + log(number
            # factors) + sum_i s_i e_i (log x_i - log x_c,i) (no powers or logs of the law in the gradient)
            u = group_values[name]
            mu = (u[idx[p.by]] if p.by is not None else u) + float(np.log(monomial_constant(spec)))
            for x, e, s in c.powers:
                log_x = pm.Data(f"log_input__{x}", np.log(data.inputs[x]), dims="row")
                mu = mu + s * row_values[e] * (log_x - centre[x])
        if mu is None:
            f = spec.formula.evaluate({**inputs, **row_values}, backend="pytensor")
            mu = _on_scale(f, spec, pt)
        level = noise_dim(spec)
        sigma = pm.HalfNormal("sigma", pm.Data("prior__sigma__scale", noise_scale), dims=level)
        if spec.sigma_slope is not None:   # log sigma linear in the column (laws/spec.py, "sigma_slope")
            x = pm.Data("noise__covariate", noise_covariate(spec, data), dims="row")
            slope = pm.Normal("sigma_slope", 0.0, SIGMA_SLOPE_SD)
            sigma = noise_sd(sigma, slope, x, pm.Data("noise__centre", sigma_centre(spec, data)), pt)
        if data.cell is not None:
            _replicate_likelihood(spec, data, mu, sigma, noise_scale, inputs)
        elif spec.family == "student_t":
            nu = pm.Gamma("nu", spec.nu_alpha, spec.nu_beta, dims=level)
            pm.StudentT(spec.target, nu=_per_row(spec, nu, idx), mu=mu, sigma=_per_row(spec, sigma, idx),
                        observed=obs, dims="row")
        else:
            pm.Normal(spec.target, mu=mu, sigma=_per_row(spec, sigma, idx), observed=obs, dims="row")
    return model


def _per_row(spec: LawSpec, value, idx: dict, rows=None):
    """A noise quantity at each row (or at ``rows``): ``value[level[row]]`` with ``sigma_by``, else ``value``."""
    if spec.sigma_by is None:
        return value
    level = idx[noise_dim(spec)]
    return value[level if rows is None else level[rows]]


#: the Normal prior sd of ``seed_slope`` (a factor e^1.15 per decade of the column at 1 sd)
SEED_SLOPE_SD = 0.5


#: the Normal prior sd of ``sigma_slope`` (per unit of its column: a factor e per unit at 1 sd)
SIGMA_SLOPE_SD = 1.0


def noise_covariate(spec: LawSpec, data: SpecData) -> np.ndarray | None:
    """The column ``x`` of the spec's ``sigma_slope`` at each row (None without one)."""
    if spec.sigma_slope is None:
        return None
    return pd.to_numeric(data.table[spec.sigma_slope], errors="coerce").to_numpy(dtype=float)


def sigma_centre(spec: LawSpec, data: SpecData) -> float:
    """``c``: the mean over the rows of the spec's ``sigma_slope`` column (0 without one)."""
    x = noise_covariate(spec, data)
    return 0.0 if x is None else float(np.mean(x))


def noise_sd(sigma, slope, x, centre: float, m=np):
    """The noise sd along the ``sigma_slope`` column: ``sigma * exp(slope * (x - c))`` (numpy or pytensor)."""
    return sigma * m.exp(slope * (x - centre))


def seed_centre(spec: LawSpec, data: SpecData) -> float:
    """``c``: the mean of ``log x`` over the rows, ``x`` the spec's ``seed_slope`` column (0 without one)."""
    if spec.seed_slope is None:
        return 0.0
    return float(np.mean(np.log(data.inputs[spec.seed_slope])))


def _replicate_likelihood(spec: LawSpec, data: SpecData, mu, sigma, noise_scale: float, inputs=None) -> None:
    """Inside a model: the replicate runs' likelihood (module docstring), the cell means observed (dims ``cell``),
    the within-cell scatter a Potential."""
    import pymc as pm
    import pytensor.tensor as pt

    t = data.cell_table(spec)
    model = pm.modelcontext(None)
    model.add_coord("cell", np.arange(data.n_cells))
    first = pm.Data("cell__first", t["first"], dims="cell")
    n = pm.Data("cell__n", t["n"], dims="cell")
    ss = pm.Data("cell__ss", t["ss"], dims="cell")
    obs = pm.Data("observed__cell_mean", t["mean"], dims="cell")
    scale = spec.seed_sigma if spec.seed_sigma is not None else noise_scale
    level = noise_dim(spec)
    idx = {level: model[f"idx__{level}"]} if level else {}
    sigma_seed = pm.HalfNormal("sigma_seed", pm.Data("prior__sigma_seed__scale", scale), dims=level)
    s_seed = _per_row(spec, sigma_seed, idx, first)
    if spec.seed_slope is not None:     # log sigma_seed linear in log x (module docstring)
        slope = _per_row(spec, pm.Normal("seed_slope", 0.0, SEED_SLOPE_SD, dims=level), idx, first)
        centre = pm.Data("seed__centre", seed_centre(spec, data))
        s_seed = s_seed * pt.exp(slope * (pt.log(inputs[spec.seed_slope][first]) - centre))
    sd = pt.sqrt(_per_row(spec, sigma, idx, first)**2 + s_seed**2 / n)
    if spec.family == "student_t":
        nu = _per_row(spec, pm.Gamma("nu", spec.nu_alpha, spec.nu_beta, dims=level), idx, first)
        pm.StudentT(spec.target, nu=nu, mu=mu[first], sigma=sd, observed=obs, dims="cell")
    else:
        pm.Normal(spec.target, mu=mu[first], sigma=sd, observed=obs, dims="cell")
    pm.Potential(spec.target + "_seed_scatter", pt.sum(-(n - 1) * pt.log(s_seed) - ss / (2 * s_seed**2)))


def data_values(spec: LawSpec, data: SpecData, priors, noise_scale: float,
                centred: dict[str, Centring] | None = None) -> dict[str, Any]:
    """The ``pm.Data`` values of :func:`build_spec_model` for ``data`` (to refit a compiled model)."""
    centred = centred or {}
    priors = {**priors, **{n: c.prior for n, c in centred.items()}}
    vals: dict[str, Any] = dict(data.inputs)
    for name, c in centred.items():
        vals.update({f"centre__{name}__{x}": v for x, v in c.centre.items()})
        vals.update({f"log_input__{x}": np.log(data.inputs[x]) for x in c.centre})
    vals.update({f"idx__{g}": data.index[g] for g in data.labels})
    vals.update({f"parent__{by}__{within}": v for (by, within), v in data.parents.items()})
    vals["observed__" + spec.target] = _on_scale(data.target, spec, np)
    for name, (loc, scale) in priors.items():
        vals[f"prior__{name}__loc"] = loc
        vals[f"prior__{name}__scale"] = scale
        if spec.parameters[name].fraction_of is not None:
            vals[f"fraction__{name}__of"] = fraction_scale(data, spec.parameters[name])
    vals["prior__sigma__scale"] = noise_scale
    if data.cell is not None:
        t = data.cell_table(spec)
        vals.update({"cell__first": t["first"], "cell__n": t["n"], "cell__ss": t["ss"],
                     "observed__cell_mean": t["mean"],
                     "prior__sigma_seed__scale": spec.seed_sigma if spec.seed_sigma is not None else noise_scale})
        if spec.seed_slope is not None:
            vals["seed__centre"] = seed_centre(spec, data)
    if spec.sigma_slope is not None:
        vals.update({"noise__covariate": noise_covariate(spec, data), "noise__centre": sigma_centre(spec, data)})
    return vals


def exponent_variables(spec: LawSpec, parameterization: dict[str, str]) -> list[str]:
    """The free variables of :func:`build_spec_model` that are the log of an exponent (``alpha = exp(u)``, or
    ``-exp(u)``): a shared, separate or centred exponent's ``u`` and a pooled one's location ``u_mu``."""
    out = []
    for p in spec.parameters.values():
        if p.fixed is not None or p.name not in spec.exponents() or p.domain not in ("positive", "negative"):
            continue
        uname = unconstrained_name(p.name, p.domain)
        if p.sharing != "pooled":
            out.append(uname)
        else:
            out.append(f"{uname}_mu")
            if parameterization.get(p.name) == "centred" and p.within is None:
                out.append(uname)
    return out


@dataclass(frozen=True)
class ModelPlan:
    """Everything the sampler needs from a spec and its data, made in one pass by :func:`plan`: the prepared
    data, each free parameter's prior ``(location, scale)`` on its unconstrained scale, the noise prior's scale,
    the parameterization of each pooled parameter and the exponents' unconstrained variables (for the
    whitening's shear); ``attempts``: the parameterizations a whitened fit tries in order
    (:func:`parameterizations_to_try`); ``centred``: the coefficients sampled at the data's centre
    (:func:`centring`). :meth:`build` makes the PyMC model and :meth:`values` its ``pm.Data`` values (to refit a
    compiled model on this data)."""

    spec: LawSpec
    data: SpecData
    priors: dict[str, tuple[float, float]]
    noise: float
    parameterization: dict[str, str]
    exponents: list[str]
    attempts: list[dict[str, str]] = field(default_factory=list)
    #: the coefficients sampled at the data's centre (:func:`centring`)
    centred: dict[str, Centring] = field(default_factory=dict)

    def with_parameterization(self, parameterization: dict[str, str]) -> ModelPlan:
        """The same plan with the pooled parameters in ``parameterization`` (and their exponents' variables)."""
        from dataclasses import replace

        if parameterization == self.parameterization:
            return self
        return replace(self, parameterization=dict(parameterization),
                       exponents=exponent_variables(self.spec, parameterization))

    def pools(self) -> list[tuple[str, str, str]]:
        """The centred one-level pooled parameters of :meth:`build`'s model, ``u[g] ~ Normal(u_mu, u_sigma)``:
        the names ``(u, u_mu, u_sigma)`` of each (for the whitening with the spreads held,
        :func:`bayes_scaling.inference.whiten.whiten_held_spreads`)."""
        out = []
        for p in self.spec.parameters.values():
            if (p.fixed is None and p.sharing == "pooled" and p.within is None and p.fraction_of is None
                    and self.parameterization.get(p.name) == "centred"):
                u = centred_name(p.name, p.domain) if p.name in self.centred else unconstrained_name(p.name, p.domain)
                out.append((u, f"{u}_mu", f"{u}_sigma"))
        return out

    def build(self):
        """The PyMC model (:func:`build_spec_model`)."""
        return build_spec_model(self.spec, self.data, self.priors, self.parameterization, self.noise, self.centred)

    def values(self) -> dict[str, Any]:
        """The ``pm.Data`` values of :meth:`build`'s model for this data (:func:`data_values`)."""
        return data_values(self.spec, self.data, self.priors, self.noise, self.centred)

    def structure(self, log_likelihood: bool) -> tuple:
        """What a compiled model depends on besides the data's values: the spec, the groups, the
        parameterization, the pointwise log-likelihood, the number of replicate cells, the centred coefficients."""
        return (self.spec.hash(), tuple((g, len(v)) for g, v in self.data.labels.items()),
                tuple(sorted(self.parameterization.items())), log_likelihood, self.data.n_cells,
                tuple((n, c.powers) for n, c in sorted(self.centred.items())))


def plan(spec: LawSpec, table: pd.DataFrame, *, what: str = "data") -> ModelPlan:
    """Prepare ``table`` for ``spec`` and choose the model around it, checking as it goes: the data
    (:func:`prepare`), that each parameter is identifiable, the priors scaled to the data
    (:func:`default_priors`), that a law given as an equation has a root on every row, the noise prior, the
    parameterization (:func:`choose_parameterization`), and last the law at the prior medians on every row
    (:func:`bayes_scaling.laws.validate.check_on_data`). Bad data or specs: a ``DataError``/``ConfigError``
    naming the column and rows."""
    from bayes_scaling.laws.validate import check_on_data

    data = prepare(spec, table, what=what)
    check_identifiable(spec, data)
    priors = default_priors(spec, data)
    check_solvable(spec, data, priors)
    noise = noise_prior(spec, data)
    centred = centring(spec, data, priors)
    param = choose_parameterization(spec, data, priors, centred)
    # a centred monomial: the data's choice alone (pinned_by_groups; the informed-groups rule is for the rest)
    attempts = [param] if centred else parameterizations_to_try(spec, data, priors, param)
    out = ModelPlan(spec, data, priors, noise, param, exponent_variables(spec, param), attempts, centred)
    check_on_data(spec, data, priors, what)
    return out


def parameterizations_to_try(spec: LawSpec, data: SpecData, priors: dict[str, tuple[float, float]], parameterization: dict[str, str]) -> list[dict[str, str]]:
    """The parameterizations of the pooled parameters a whitened spec fit tries, in order
    (:func:`~bayes_scaling.inference.whiten.whiten_spec_sampler`): first centred where every group the parameter enters has at least
    :data:`~bayes_scaling.models.spec_model.CENTRED_MIN_ROWS` informative rows, the groups it does not enter at
    all (e.g. the from-scratch rows of a transfer parameter) left aside: their values follow the population's
    prior alone, whose scale the informed groups pin, so the centred joint density has a mode; then the data's
    (``parameterization``: :func:`~bayes_scaling.models.spec_model.choose_parameterization`). One entry where
    they are the same; a parameterization set in the spec is kept."""
    counts = informative_rows(spec, data, priors)
    informed = dict(parameterization)
    for p in spec.parameters.values():
        n = counts.get(p.name)
        if (p.name in parameterization and p.parameterization == "auto" and n is not None and np.any(n > 0)
                and n[n > 0].min() >= CENTRED_MIN_ROWS):
            informed[p.name] = "centred"
    return [informed, parameterization] if informed != parameterization else [parameterization]
