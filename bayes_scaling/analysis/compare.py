"""Comparing models (PSIS-LOO) and groups (posterior contrasts), for law-spec fits and transfer fits alike.

Every fit is scored by its expected log pointwise predictive density, estimated by Pareto-smoothed importance
sampling leave-one-out cross-validation (PSIS-LOO, ``arviz.loo``/``arviz.compare``): higher ``elpd`` predicts
held-out rows better; ``elpd_diff`` and its standard error ``dse`` say by how much and how surely. Observations
whose Pareto k exceeds 0.7 make the estimate unreliable and are named (row of the data table, its groups and
inputs). :func:`loo`, :func:`pareto_k_table` and :func:`compare_fits` take any law-spec fit
(:class:`~bayes_scaling.inference.fit.Fit`) or transfer fit; fits compared must share their observations.

**Sharing of a parameter** (any law spec): :func:`sharing_variants` builds copies of a spec that differ only in
how one parameter is shared across a group column (``"shared"``, ``"pooled"``: partially, ``"separate"``, or
fixed at a value); :func:`compare_sharing` fits each and ranks them; :func:`sharing_evidence` turns "does this
parameter depend on the group?" into two numbers with uncertainties: the elpd difference varying - shared and
the posterior of ``theta[A] - theta[B]`` in the varying variant.

**The transfer law** ``D_T = k[p] * D_F**alpha[p] * N**beta`` (:mod:`bayes_scaling.models.transfer`) has its
own variants, fitted by :func:`fit_variants`/:func:`compare_variants`:

- ``shared_beta``: one beta for every pre-training distribution (the paper's model);
- ``separate_beta``: beta[p] per distribution, partially pooled;
- ``pooled``: one k, alpha and beta for all distributions.

:func:`beta_evidence` is :func:`sharing_evidence` for beta, shared_beta against separate_beta.

>>> cmp = compare_sharing(bs.datasets.load_corpora(), "chinchilla_by_corpus", "beta",
...                       ["shared", "separate"], seed=1, draws=300, tune=300, chains=2)  # doctest: +SKIP
>>> cmp.table[["variant", "elpd", "se", "elpd_diff", "dse"]]                              # doctest: +SKIP
>>> sharing_evidence(cmp)                                                                 # doctest: +SKIP
>>> contrasts(cmp.fits["separate"], by="corpus")                                          # doctest: +SKIP
>>> cmp = compare_variants(bs.load_example(), seed=1, draws=300, tune=300, chains=2)      # doctest: +SKIP
>>> beta_evidence(cmp)                                                                    # doctest: +SKIP
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field
from itertools import combinations
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_scaling._interval import CI_PROB
from bayes_scaling.analysis._fits import build_model, check_kind, observed
from bayes_scaling.data.tables import TransferData
from bayes_scaling.errors import BayesScalingError, ConfigError
from bayes_scaling.inference.fit import Fit
from bayes_scaling.inference.fit import fit as fit_spec
from bayes_scaling.inference.sampling import TransferFit, _fit_transfer
from bayes_scaling.laws import formulas as laws
from bayes_scaling.laws.spec import LawSpec, Parameter
from bayes_scaling.models.transfer import VARIANTS, ModelConfig

__all__ = ["VARIANTS", "PARETO_K_MAX", "SHARINGS", "VariantComparison", "SharingEvidence", "BetaEvidence",
           "log_likelihood", "loo", "pareto_k_table", "fit_variants", "compare_fits", "compare_variants",
           "sharing_variants", "sharing_alternatives", "fit_specs", "compare_sharing", "sharing_evidence",
           "beta_evidence", "contrasts", "target_difference"]

#: Pareto k above which a PSIS-LOO term is unreliable (Vehtari et al. 2024).
PARETO_K_MAX = 0.7
#: how a parameter may be shared across a group column (:func:`sharing_variants`; a number: fixed at it)
SHARINGS = ("shared", "pooled", "separate", "fixed")

AnyFit = Fit | TransferFit
_LOG_LIKELIHOOD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def log_likelihood(fit: AnyFit) -> xr.DataTree:
    """The fit's DataTree with a ``log_likelihood`` group: the pointwise log density of each observation per
    draw (``log p(y_i | theta)`` on the likelihood's scale), as sampled (``bs.fit(..., log_likelihood=True)``,
    the default) or, when the fit was drawn without it, computed now from the rebuilt model."""
    check_kind(fit, "log_likelihood")
    tree = fit.tree
    if "log_likelihood" in tree.children:
        return tree
    if fit in _LOG_LIKELIHOOD:
        return _LOG_LIKELIHOOD[fit]
    import pymc as pm

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        tree = pm.compute_log_likelihood(tree.copy(), model=build_model(fit), progressbar=False)
    _LOG_LIKELIHOOD[fit] = tree
    return tree


def loo(fit: AnyFit):
    """PSIS-LOO of a fit (``arviz.loo`` with pointwise values): ``.elpd``, ``.se``, ``.p``, ``.pareto_k``.

    ``elpd_loo = sum_i log p(y_i | y_-i)``, each term estimated from the posterior draws with Pareto-smoothed
    importance weights ``w_s ~ 1 / p(y_i | theta_s)``."""
    import arviz as az

    var = observed(fit).var
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*|.*[Ee]stimated shape.*")
        return az.loo(log_likelihood(fit), pointwise=True, var_name=var)


def pareto_k_table(fit: AnyFit, threshold: float = PARETO_K_MAX, loo_result=None) -> pd.DataFrame:
    """Observations whose PSIS-LOO Pareto k exceeds ``threshold``, worst first: row of the data table
    (0-based, as in error messages; a transfer fit's excluded runs skipped), its groups, inputs and target (a
    transfer fit: pretraining, N, D_F, D_T), and ``pareto_k``. Empty when every k is fine."""
    res = loo_result if loo_result is not None else loo(fit)
    k = np.asarray(res.pareto_k).ravel()
    bad = np.flatnonzero(k > threshold)
    out = observed(fit).rows.iloc[bad].reset_index(drop=True).assign(pareto_k=k[bad])
    return out.sort_values("pareto_k", ascending=False, ignore_index=True)


def fit_variants(data: TransferData, *, variants: tuple[str, ...] | list[str] = VARIANTS,
                 config: ModelConfig | None = None, seed: int = 0, draws: int = 1000, tune: int = 1000,
                 chains: int = 4, backend: str = "auto", target_accept: float | None = None,
                 progressbar: bool = False, warn: bool = True) -> dict[str, TransferFit]:
    """Fit each variant to the same data with the same priors/likelihood (``config``) and the same seed."""
    base = config or ModelConfig()
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise BayesScalingError(f"variants: unknown {', '.join(map(repr, unknown)) or '(none given)'}; "
                                f"expected some of {', '.join(VARIANTS)}")
    fits = {}
    for v in variants:
        cfg = ModelConfig(likelihood=base.likelihood, variant=v, parameterization=base.parameterization,
                          priors=base.priors)
        fits[v] = _fit_transfer(data, config=cfg, seed=seed, draws=draws, tune=tune, chains=chains,
                               backend=backend, target_accept=target_accept, progressbar=progressbar, warn=warn)
    return fits


@dataclass
class VariantComparison:
    """PSIS-LOO comparison of fitted variants (law-spec or transfer fits of the same observations).

    ``table``: one row per variant, best first: ``rank``, ``elpd`` (higher is better) and its ``se``,
    ``elpd_diff`` (this variant minus the best) and ``dse`` (its standard error), ``p_worse`` (normal
    approximation of P(this variant predicts worse than the best)), ``p_loo`` (effective number of parameters),
    ``weight`` (stacking), ``n_pareto_k_bad`` (observations with k > 0.7), and the NUTS diagnostics of each fit.
    ``pareto``: the observations with k > 0.7, named (variant, row, groups, inputs, target, pareto_k).
    ``parameter``, ``by``: the parameter whose sharing the variants differ in, and its group column
    (:func:`compare_sharing`; empty otherwise).
    """

    fits: dict[str, AnyFit]
    table: pd.DataFrame
    pareto: pd.DataFrame
    loo: dict = field(repr=False, default_factory=dict)
    parameter: str = ""
    by: str = ""

    def __str__(self) -> str:
        cols = ["variant", "rank", "elpd", "se", "elpd_diff", "dse", "p_worse", "p_loo", "n_pareto_k_bad",
                "divergences", "r_hat_max"]
        head = f"sharing of {self.parameter}" + (f" across {self.by}" if self.by else "") + "\n" \
            if self.parameter else ""
        return head + self.table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}")


def _check_same_observations(fits: dict[str, AnyFit]) -> None:
    """Fits compared by LOO must score the same observations on the same scale."""
    obs = {name: observed(f) for name, f in fits.items()}
    n_obs = {name: len(o.rows) for name, o in obs.items()}
    if len(set(n_obs.values())) != 1:
        raise BayesScalingError(f"fits were made on different data (observations used: {n_obs}); LOO compares "
                                "models on the same observations")
    (first, ref), *rest = obs.items()
    for name, o in rest:
        if o.log != ref.log or not np.allclose(o.values, ref.values, rtol=1e-9, atol=0.0, equal_nan=True):
            raise BayesScalingError(f"fits {first!r} and {name!r} were made on different observations (or on "
                                    "different likelihood scales); LOO compares models on the same observations")


def compare_fits(fits: dict[str, AnyFit], threshold: float = PARETO_K_MAX, *, parameter: str = "",
                 by: str = "") -> VariantComparison:
    """Compare already-fitted models (same observations) by PSIS-LOO; see :class:`VariantComparison`.

    ``elpd_diff = elpd_loo(variant) - elpd_loo(best)``, ``dse`` the standard error of the pointwise
    differences (``arviz.compare``)."""
    import arviz as az

    if len(fits) < 2:
        raise BayesScalingError(f"compare needs at least two fits, got {len(fits)}")
    for f in fits.values():
        check_kind(f, "compare_fits")
    _check_same_observations(fits)
    loos = {name: loo(f) for name, f in fits.items()}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*|.*[Ee]stimated shape.*")
        cmp = az.compare(loos, round_to="none")
    rows, pareto = [], []
    for name in cmp.index:
        r = cmp.loc[name]
        diag = fits[name].diagnostics
        bad = pareto_k_table(fits[name], threshold, loos[name])
        pareto.append(bad.assign(variant=name))
        rows.append({
            "variant": name, "rank": int(r["rank"]), "elpd": float(r["elpd"]), "se": float(r["se"]),
            "elpd_diff": float(r["elpd_diff"]), "dse": float(r["dse"]),
            "p_worse": float(r["p_worse"]) if pd.notna(r["p_worse"]) else 0.0,
            "p_loo": float(r["p"]), "weight": float(r["weight"]), "n_pareto_k_bad": len(bad),
            "max_pareto_k": float(np.max(np.asarray(loos[name].pareto_k))),
            "note": str(r.get("diag_diff", "") or ""), "backend": fits[name].backend,
            "divergences": diag.divergences, "r_hat_max": diag.r_hat_max, "ess_bulk_min": diag.ess_bulk_min,
        })
    pareto_df = pd.concat(pareto, ignore_index=True) if pareto else pd.DataFrame()
    pareto_df = pareto_df[["variant"] + [c for c in pareto_df.columns if c != "variant"]]
    return VariantComparison(fits=fits, table=pd.DataFrame(rows), pareto=pareto_df, loo=loos,
                             parameter=parameter, by=by)


def compare_variants(data: TransferData, *, variants: tuple[str, ...] | list[str] = VARIANTS,
                     config: ModelConfig | None = None, seed: int = 0, draws: int = 1000, tune: int = 1000,
                     chains: int = 4, backend: str = "auto", target_accept: float | None = None,
                     threshold: float = PARETO_K_MAX, progressbar: bool = False,
                     warn: bool = True) -> VariantComparison:
    """Fit every variant on ``data`` (seeded, same settings) and compare them by PSIS-LOO.

    >>> cmp = compare_variants(bs.load_example(), seed=1, draws=300, tune=300, chains=2)   # doctest: +SKIP
    >>> print(cmp)                                                                         # doctest: +SKIP
    """
    if not isinstance(data, TransferData):
        raise BayesScalingError(f"compare_variants needs a TransferData, got {type(data).__name__}")
    if len(data.pretraining) < 2:
        raise BayesScalingError(f"the variants differ only with several pre-training distributions; the data "
                                f"have one ({data.pretraining[0]!r})")
    fits = fit_variants(data, variants=variants, config=config, seed=seed, draws=draws, tune=tune,
                        chains=chains, backend=backend, target_accept=target_accept, progressbar=progressbar,
                        warn=warn)
    return compare_fits(fits, threshold)


# ---- sharing of a parameter of any law spec --------------------------------------------------------------


def _parse_choice(choice: Any) -> tuple[str, float | None, str]:
    """``(sharing, fixed value, label)`` of one sharing choice: ``"shared"``, ``"pooled"``, ``"separate"``, a
    number or ``"fixed=VALUE"`` (fixed at VALUE)."""
    if isinstance(choice, (int, float, np.integer, np.floating)) and not isinstance(choice, bool):
        return "fixed", float(choice), f"fixed={float(choice):g}"
    if isinstance(choice, str) and choice in SHARINGS[:3]:
        return choice, None, choice
    if isinstance(choice, str) and choice.startswith("fixed"):
        _, _, text = choice.partition("=")
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"sharing choice {choice!r}: give the value a fixed parameter takes, e.g. "
                              "'fixed=0.28' or the number 0.28") from None
        return "fixed", value, f"fixed={value:g}"
    raise ConfigError(f"sharing choice {choice!r} is not one of shared, pooled, separate, a number or "
                      "'fixed=VALUE'")


def _with_sharing(p: Parameter, sharing: str, by: str | None, value: float | None) -> Parameter:
    """``p`` shared as ``sharing`` (across ``by``), its domain and prior kept (a fixed parameter has none; a
    ``fraction_of`` parameter is one only while shared, its fraction's prior with it)."""
    base = dict(name=p.name, domain=p.domain, prior={} if p.fraction_of else dict(p.prior), spread=p.spread,
                description=p.description)
    if sharing == "fixed":
        return Parameter(**{**base, "prior": {}}, fixed=value)
    if sharing == "shared":
        return Parameter(**{**base, "prior": dict(p.prior)}, fraction_of=p.fraction_of)
    same_column = p.by == by
    return Parameter(**base, by=by, pooling="partial" if sharing == "pooled" else "none",
                     within=p.within if same_column and sharing == "pooled" else None,
                     parameterization=p.parameterization if same_column and sharing == "pooled" else "auto")


def sharing_variants(spec: LawSpec | str | PathLike | dict, parameter: str,
                     choices: list | tuple = ("shared", "pooled", "separate"), *,
                     by: str | None = None) -> dict[str, LawSpec]:
    """Copies of ``spec`` that differ only in how ``parameter`` is shared across the group column ``by``, one
    per choice, keyed by its label:

    - ``"shared"``: one value for every row, ``u ~ Normal(m, s)``;
    - ``"pooled"``: a value per group, partially pooled, ``u[g] ~ Normal(u_mu, u_sigma)``;
    - ``"separate"``: a value per group, each with the prior, ``u[g] ~ Normal(m, s)``;
    - a number ``v`` or ``"fixed=v"`` (label ``"fixed=v"``): fixed at ``v``.

    ``by`` defaults to the parameter's own group column, else the spec's only one. Domain, prior and every
    other parameter stay as they are (:mod:`bayes_scaling.laws.spec`); a parameter of a variant that is free
    keeps its prior.

    >>> list(sharing_variants("chinchilla_by_corpus", "beta", ["shared", "separate", 0.28]))
    ['shared', 'separate', 'fixed=0.28']
    """
    from bayes_scaling.inference.fit import _as_spec

    spec = _as_spec(spec)
    if parameter not in spec.parameters:
        raise ConfigError(f"parameter {parameter!r} is not in the spec {spec.name!r} (parameters: "
                          f"{', '.join(spec.parameters)})")
    if isinstance(choices, (str, int, float)) or not len(choices):
        raise ConfigError(f"choices: expected a list of sharing choices (shared, pooled, separate, a number), got "
                          f"{choices!r}")
    parsed = [_parse_choice(c) for c in choices]
    labels = [lab for _, _, lab in parsed]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"choices: {', '.join(labels)} name a variant twice")
    p = spec.parameters[parameter]
    if any(sh in ("pooled", "separate") for sh, _, _ in parsed):
        by = by or p.by or (spec.groups[0] if len(spec.groups) == 1 else None)
        if by is None:
            raise ConfigError(f"parameter {parameter!r} is shared and the spec has "
                              f"{len(spec.groups) or 'no'} group column(s){': ' if spec.groups else ''}"
                              f"{', '.join(spec.groups)}; name the column it should vary by (by=...)")
    out = {}
    for sharing, value, label in parsed:
        doc = spec.to_dict()
        doc["parameters"][parameter] = _with_sharing(p, sharing, by, value).to_dict()
        out[label] = LawSpec.from_dict(doc)
    return out


def sharing_alternatives(spec: LawSpec | str | PathLike | dict,
                         parameters: list[str] | None = None) -> dict[str, LawSpec]:
    """Copies of ``spec`` with one parameter's sharing changed each: a parameter that varies by a group column
    becomes shared (label ``"<name> shared"``); a shared parameter becomes partially pooled by the spec's group
    column when it has exactly one (``"<name> pooled by <column>"``); fixed parameters stay. ``parameters``:
    only these (each must be free; a shared one needs the spec to have one group column).

    >>> list(sharing_alternatives("chinchilla_by_corpus"))
    ['E shared', 'A shared', 'B shared', 'alpha pooled by corpus', 'beta pooled by corpus']
    """
    from bayes_scaling.inference.fit import _as_spec

    spec = _as_spec(spec)
    names = list(spec.parameters) if parameters is None else list(parameters)
    unknown = [n for n in names if n not in spec.parameters]
    if unknown:
        raise ConfigError(f"parameter(s) {', '.join(map(repr, unknown))} are not in the spec {spec.name!r} "
                          f"(parameters: {', '.join(spec.parameters)})")
    out = {}
    for name in names:
        p = spec.parameters[name]
        if p.sharing == "fixed":
            if parameters is not None:
                raise ConfigError(f"parameter {name!r} is fixed; its sharing cannot be compared")
            continue
        if p.by is not None:
            out[f"{name} shared"] = sharing_variants(spec, name, ["shared"])["shared"]
        elif len(spec.groups) == 1:
            by = spec.groups[0]
            out[f"{name} pooled by {by}"] = sharing_variants(spec, name, ["pooled"], by=by)["pooled"]
        elif parameters is not None:
            raise ConfigError(f"parameter {name!r} is shared and the spec has {len(spec.groups) or 'no'} group "
                              "column(s): there is no one column to let it vary by")
    return out


def fit_specs(data: pd.DataFrame | str | PathLike, specs: dict[str, LawSpec], *, seed: int = 0,
              draws: int = 1000, tune: int = 1000, chains: int = 4, backend: str = "auto",
              target_accept: float | None = None, progressbar: bool = False,
              warn: bool = True) -> dict[str, Fit]:
    """Fit each spec to the same data with the same settings and seed (:func:`bayes_scaling.inference.fit.fit`,
    which keeps the pointwise log-likelihood for LOO)."""
    if not specs:
        raise BayesScalingError("fit_specs: no specs given")
    return {name: fit_spec(data, s, seed=seed, draws=draws, tune=tune, chains=chains, backend=backend,
                           target_accept=target_accept, progressbar=progressbar, warn=warn)
            for name, s in specs.items()}


def compare_sharing(data: pd.DataFrame | str | PathLike, spec: LawSpec | str | PathLike | dict, parameter: str,
                    choices: list | tuple = ("shared", "pooled", "separate"), *, by: str | None = None,
                    seed: int = 0, draws: int = 1000, tune: int = 1000, chains: int = 4, backend: str = "auto",
                    target_accept: float | None = None, threshold: float = PARETO_K_MAX,
                    progressbar: bool = False, warn: bool = True) -> VariantComparison:
    """Fit the variants of ``spec`` that differ in how ``parameter`` is shared (:func:`sharing_variants`) to
    ``data`` (same seed and settings) and rank them by PSIS-LOO (:func:`compare_fits`).

    >>> cmp = compare_sharing(runs, "chinchilla_by_corpus", "beta", ["shared", "pooled", "separate"],
    ...                       seed=1, draws=300, tune=300, chains=2)                  # doctest: +SKIP
    >>> print(cmp); sharing_evidence(cmp)                                             # doctest: +SKIP
    """
    specs = sharing_variants(spec, parameter, choices, by=by)
    if len(specs) < 2:
        raise BayesScalingError(f"compare_sharing needs at least two choices, got {list(specs)}")
    varying = [s.parameters[parameter].by for s in specs.values() if s.parameters[parameter].by]
    fits = fit_specs(data, specs, seed=seed, draws=draws, tune=tune, chains=chains, backend=backend,
                     target_accept=target_accept, progressbar=progressbar, warn=warn)
    return compare_fits(fits, threshold, parameter=parameter, by=varying[0] if varying else "")


# ---- does a parameter depend on the group? --------------------------------------------------------------


@dataclass
class SharingEvidence:
    """Evidence on "``parameter`` does not depend on the group (``by``)".

    ``elpd_diff = elpd(varying) - elpd(shared)`` with standard error ``dse``: positive and several ``dse`` away
    from 0 means a value per group predicts held-out rows better. ``p_varying_better`` is its normal
    approximation ``Phi(elpd_diff / dse)`` (unreliable when ``|elpd_diff| < 4``: see ``note``).
    ``differences``: posterior of ``theta[A] - theta[B]`` in the varying variant for every pair of groups (mean,
    sd, median, equal-tailed ``ci_prob`` interval, P(> 0)).
    """

    parameter: str
    by: str
    shared: str
    varying: str
    elpd_diff: float
    dse: float
    p_varying_better: float
    differences: pd.DataFrame
    ci_prob: float
    note: str = ""

    @property
    def p_separate_better(self) -> float:
        """:attr:`p_varying_better` (the transfer law's name for it)."""
        return self.p_varying_better

    def __str__(self) -> str:
        head = (f"elpd({self.varying}) - elpd({self.shared}) = {self.elpd_diff:+.2f} +- {self.dse:.2f} (SE); "
                f"P({self.varying} better) ~ {self.p_varying_better:.2f}")
        lines = [head] + ([f"  note: {self.note}"] if self.note else [])
        pct = f"{100 * self.ci_prob:g}"
        q = self.parameter
        for _, r in self.differences.iterrows():
            lines.append(f"{q}[{r['A']}] - {q}[{r['B']}] = {r['mean']:+.3g} (sd {r['sd']:.3g}; {pct}% "
                         f"[{r['eti_lb']:+.3g}, {r['eti_ub']:+.3g}]; P(> 0) = {r['p_gt_0']:.2f})")
        return "\n".join(lines)


#: the transfer law's evidence on beta (:func:`beta_evidence`) is a :class:`SharingEvidence`
BetaEvidence = SharingEvidence


def _group_dim(da: xr.DataArray, what: str) -> str:
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if len(dims) != 1:
        raise BayesScalingError(f"{what}: expected a value per group (one group dimension), got dims {dims}")
    return dims[0]


def sharing_evidence(comparison: VariantComparison, parameter: str | None = None, *, shared: str | None = None,
                     varying: str | None = None, ci_prob: float = CI_PROB) -> SharingEvidence:
    """Answer "does ``parameter`` depend on the group?" with numbers and their uncertainty, from a comparison
    holding a variant where it is shared (``shared``, default ``"shared"``) and one where it varies by group
    (``varying``, default ``"separate"``, else ``"pooled"``): ``elpd(varying) - elpd(shared)`` with its standard
    error, and the posterior of ``theta[A] - theta[B]`` in the varying variant.

    >>> print(sharing_evidence(compare_sharing(runs, spec, "beta", ["shared", "separate"])))   # doctest: +SKIP
    """
    import arviz as az

    parameter = parameter or comparison.parameter
    if not parameter:
        raise BayesScalingError("sharing_evidence: name the parameter (the comparison does not record one)")
    fits = comparison.fits
    shared = shared or "shared"
    varying = varying or next((v for v in ("separate", "pooled") if v in fits), "separate")
    missing = [v for v in (shared, varying) if v not in fits]
    if missing:
        raise BayesScalingError(f"sharing_evidence needs the variant(s) {', '.join(map(repr, missing))} in the "
                                f"comparison (it has {', '.join(map(repr, fits))})")
    loos = comparison.loo or {v: loo(fits[v]) for v in (shared, varying)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*|.*[Ee]stimated shape.*")
        cmp = az.compare({shared: loos[shared], varying: loos[varying]}, reference=shared, round_to="none")
    diff, dse = float(cmp.loc[varying, "elpd_diff"]), float(cmp.loc[varying, "dse"])
    p_better = float(stats.norm.cdf(diff / dse)) if dse > 0 else float(diff > 0)
    post = fits[varying].posterior
    if parameter not in post:
        raise BayesScalingError(f"sharing_evidence: the variant {varying!r} has no posterior of {parameter!r}")
    da = post[parameter]
    by = _group_dim(da, f"sharing_evidence: {parameter!r} in the variant {varying!r}")
    names = [str(g) for g in da[by].values]
    rows = []
    for a, b in combinations(names, 2):
        d = (da.sel({by: a}) - da.sel({by: b})).values.ravel()
        rows.append({"A": a, "B": b, "quantity": f"{parameter}_A - {parameter}_B", **_describe(d, ci_prob),
                     "p_gt_0": float(np.mean(d > 0))})
    note = (f"|elpd_diff| < 4: the two variants predict about equally well; the normal approximation behind "
            f"P({varying} better) is unreliable for such small differences (Sivula et al. 2022)") \
        if abs(diff) < 4 else ""
    return SharingEvidence(parameter, by, shared, varying, diff, dse, p_better, pd.DataFrame(rows), ci_prob, note)


def beta_evidence(comparison: VariantComparison, ci_prob: float = CI_PROB) -> SharingEvidence:
    """Answer "does beta depend on the pre-training data?" for the transfer law: :func:`sharing_evidence` of
    beta, ``shared_beta`` against ``separate_beta`` (both needed in ``comparison``)."""
    missing = [v for v in ("shared_beta", "separate_beta") if v not in comparison.fits]
    if missing:
        raise BayesScalingError(f"beta_evidence needs the variant(s) {', '.join(missing)} in the comparison")
    return sharing_evidence(comparison, "beta", shared="shared_beta", varying="separate_beta", ci_prob=ci_prob)


# ---- contrasts between groups ---------------------------------------------------------------------------


def _describe(x: np.ndarray, ci_prob: float) -> dict[str, float]:
    lo, hi = (1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2
    finite = x[np.isfinite(x)]
    with np.errstate(invalid="ignore"):
        return {"mean": float(np.mean(finite)) if len(finite) == len(x) else float("nan"),
                "sd": float(np.std(finite, ddof=1)) if len(finite) == len(x) else float("nan"),
                "median": float(np.quantile(x, 0.5)), "eti_lb": float(np.quantile(x, lo)),
                "eti_ub": float(np.quantile(x, hi))}


def contrasts(fit: AnyFit, pairs: list[tuple[str, str]] | None = None, ci_prob: float = CI_PROB, *,
              by: str | None = None, at: pd.DataFrame | None = None) -> pd.DataFrame:
    """Posterior contrasts between groups A and B, one tidy table (columns ``A``, ``B``, ``quantity``, ``kind``
    (difference, ratio, crossover, probability), ``mean``, ``sd``, ``median``, ``eti_lb``, ``eti_ub``: the
    equal-tailed ``ci_prob`` interval, ``unit``; probabilities in ``mean``). ``pairs`` defaults to every pair.

    A law-spec fit: the groups of the column ``by`` (default: the spec's only group column); for every free
    parameter theta that varies by it, ``theta_A - theta_B``, ``theta_A / theta_B`` (positive or negative
    domain) and ``P(theta_A > theta_B)``; with ``at`` (points: the other inputs and group columns), the law's
    value ``y_A - y_B`` at each point and ``P(y_A < y_B)`` (:func:`target_difference`).

    A transfer fit: see :func:`_transfer_contrasts` (k, alpha, beta and the crossover D_F*).

    >>> contrasts(fit, by="corpus").query("kind == 'probability'")      # doctest: +SKIP
    """
    if isinstance(fit, TransferFit):
        if at is not None or by not in (None, "pretraining"):
            raise BayesScalingError("contrasts of a transfer fit compare pre-training distributions (by = "
                                    "'pretraining'); at= applies to law-spec fits")
        return _transfer_contrasts(fit, pairs, ci_prob)
    check_kind(fit, "contrasts")
    by, names = _groups_of(fit, by)
    pairs = _check_pairs(pairs, names, by)
    params = [p for p in fit.spec.parameters.values() if p.by == by and p.fixed is None]
    if not params and at is None:
        raise BayesScalingError(f"contrasts: no parameter of {fit.spec.name!r} varies by {by!r}; give points "
                                "(at=) to contrast the law's values")
    post = fit.posterior
    rows = []
    for a, b in pairs:
        for p in params:
            xa, xb = (post[p.name].sel({by: g}).values.ravel() for g in (a, b))
            q = p.name
            rows.append({"A": a, "B": b, "quantity": f"{q}_A - {q}_B", "kind": "difference",
                         **_describe(xa - xb, ci_prob), "unit": ""})
            if p.domain in ("positive", "negative"):
                rows.append({"A": a, "B": b, "quantity": f"{q}_A / {q}_B", "kind": "ratio",
                             **_describe(xa / xb, ci_prob), "unit": ""})
            rows.append(_probability(a, b, f"P({q}_A > {q}_B)", np.mean(xa > xb)))
    if at is not None:
        diff = target_difference(fit, at, pairs, by=by, ci_prob=ci_prob)
        y = fit.spec.target
        inputs = [c for c in diff.columns if c not in ("A", "B", "mean", "sd", "median", "eti_lb", "eti_ub",
                                                        "p_A_lower")]
        for _, r in diff.iterrows():
            where = ", ".join(f"{c}={r[c]:.3g}" if isinstance(r[c], float) else f"{c}={r[c]}" for c in inputs)
            rows.append({"A": r["A"], "B": r["B"], "quantity": f"{y}_A - {y}_B at {where}", "kind": "difference",
                         **{k: r[k] for k in ("mean", "sd", "median", "eti_lb", "eti_ub")}, "unit": ""})
            rows.append(_probability(r["A"], r["B"], f"P({y}_A < {y}_B) at {where}", r["p_A_lower"]))
    out = pd.DataFrame(rows)
    out.attrs.update(ci_prob=ci_prob, by=by)
    return out


def _probability(a: str, b: str, quantity: str, p: float) -> dict:
    return {"A": a, "B": b, "quantity": quantity, "kind": "probability", "mean": float(p), "sd": float("nan"),
            "median": float("nan"), "eti_lb": float("nan"), "eti_ub": float("nan"), "unit": ""}


def _groups_of(fit: Fit, by: str | None) -> tuple[str, list[str]]:
    """The group column (``by``, default the spec's only one) and its groups, as fitted."""
    groups = fit.spec.groups
    if by is None:
        if len(groups) != 1:
            raise BayesScalingError(f"name the group column to contrast (by=...): the spec has "
                                    f"{', '.join(groups) if groups else 'none'}")
        by = groups[0]
    if by not in fit.labels:
        raise BayesScalingError(f"by={by!r} is not a group column of the fit ({', '.join(groups) or 'none'})")
    return by, [str(g) for g in fit.labels[by]]


def _check_pairs(pairs, names: list[str], by: str) -> list[tuple[str, str]]:
    if pairs is None:
        return list(combinations(names, 2))
    for a, b in pairs:
        unknown = [p for p in (a, b) if p not in names]
        if unknown or a == b:
            raise BayesScalingError(f"contrast ({a!r}, {b!r}): expected two different groups of {by!r} of the "
                                    f"fit ({', '.join(map(repr, names))})")
    return list(pairs)


def target_difference(fit: Fit, at: pd.DataFrame | dict, pairs: list[tuple[str, str]] | None = None, *,
                      by: str | None = None, ci_prob: float = CI_PROB) -> pd.DataFrame:
    """The law's value for group A minus group B at each point of ``at`` (the other inputs and group columns):
    ``y_A - y_B = f(x; theta_A) - f(x; theta_B)``, draw by draw (:meth:`Fit.predict`, ``kind="mean"``, without
    the discrepancy: parameter uncertainty only).

    One row per pair and point: ``A``, ``B``, the columns of ``at``, ``mean``, ``sd``, ``median``, ``eti_lb``,
    ``eti_ub`` (equal-tailed ``ci_prob`` interval) and ``p_A_lower`` = P(y_A < y_B).

    >>> target_difference(fit, pd.DataFrame({"N": [1e9], "D": [2e10]}), [("code", "web")])   # doctest: +SKIP
    """
    from bayes_scaling.data.tables import read_table

    if not isinstance(fit, Fit):
        raise BayesScalingError(f"target_difference needs a law-spec fit (bs.fit), got {type(fit).__name__}")
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
    by, names = _groups_of(fit, by)
    pairs = _check_pairs(pairs, names, by)
    at = read_table(at, "at").reset_index(drop=True)
    if by in at.columns:
        raise BayesScalingError(f"at: leave out the column {by!r} (the groups compared are set per pair)")
    n = len(at)
    y = fit.spec.target
    rows = []
    for a, b in pairs:
        points = pd.concat([at.assign(**{by: a}), at.assign(**{by: b})], ignore_index=True)
        draws = fit.predict(points, kind="mean", discrepancy=0)[y].values.reshape(-1, 2 * n)
        d = draws[:, :n] - draws[:, n:]
        for i in range(n):
            rows.append({"A": a, "B": b, **at.iloc[i].to_dict(), **_describe(d[:, i], ci_prob),
                         "p_A_lower": float(np.mean(d[:, i] < 0))})
    out = pd.DataFrame(rows)
    out.attrs.update(ci_prob=ci_prob, by=by, target=y)
    return out


def _transfer_contrasts(fit: TransferFit, pairs: list[tuple[str, str]] | None = None,
                        ci_prob: float = CI_PROB) -> pd.DataFrame:
    """Posterior contrasts between pre-training distributions A and B of a transfer fit, one tidy table.

    One row per (A, B, quantity): ``k_A / k_B``, ``log k_A - log k_B``, ``alpha_A - alpha_B``,
    ``alpha_A / alpha_B``, ``beta_A - beta_B`` (separate-beta fits), the crossover
    ``D_F* = (k_B / k_A) ** (1 / (alpha_A - alpha_B))`` (:func:`laws.crossover`; shared beta only) and its
    ``log10``, then the probabilities ``P(k_A > k_B)``, ``P(alpha_A < alpha_B)`` and
    ``P(data_min <= D_F* <= data_max)`` (column ``mean``). Columns: ``A``, ``B``, ``quantity``, ``kind``
    (difference, ratio, crossover, probability), ``mean``, ``sd``, ``median``, ``eti_lb``, ``eti_ub`` (equal-tailed
    ``ci_prob`` interval), ``unit``. ``pairs`` defaults to every pair in the fit's order.

    Ratios and the crossover are heavy-tailed: read the median and interval (mean and sd are NaN where a draw is
    infinite). The crossover direction: below D_F* the distribution with the smaller alpha transfers more.

    >>> contrasts(fit).query("kind == 'probability'")       # doctest: +SKIP
    """
    post = fit.posterior
    names = [str(p) for p in post["pretraining"].values]
    if pairs is None:
        pairs = list(combinations(names, 2))
    for a, b in pairs:
        unknown = [p for p in (a, b) if p not in names]
        if unknown or a == b:
            raise BayesScalingError(f"contrast ({a!r}, {b!r}): expected two different distributions of the fit "
                                    f"({', '.join(map(repr, names))})")
    shared_beta = "pretraining" not in post["beta"].dims
    lo_D, hi_D = float(fit.data.used["D_F"].min()), float(fit.data.used["D_F"].max())
    unit = fit.data.unit
    rows = []

    def draws(var, p):
        return post[var].sel(pretraining=p).values.ravel()

    def add(a, b, quantity, kind, x, unit_=""):
        rows.append({"A": a, "B": b, "quantity": quantity, "kind": kind, **_describe(x, ci_prob), "unit": unit_})

    def add_p(a, b, quantity, p):
        rows.append({"A": a, "B": b, "quantity": quantity, "kind": "probability", "mean": float(p),
                     "sd": float("nan"), "median": float("nan"), "eti_lb": float("nan"), "eti_ub": float("nan"),
                     "unit": ""})

    for a, b in pairs:
        lk_a, lk_b = draws("log_k", a), draws("log_k", b)
        al_a, al_b = draws("alpha", a), draws("alpha", b)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            add(a, b, "k_A / k_B", "ratio", np.exp(lk_a - lk_b))
            add(a, b, "log k_A - log k_B", "difference", lk_a - lk_b)
            add(a, b, "alpha_A - alpha_B", "difference", al_a - al_b)
            add(a, b, "alpha_A / alpha_B", "ratio", al_a / al_b)
            if not shared_beta:
                add(a, b, "beta_A - beta_B", "difference", draws("beta", a) - draws("beta", b))
            else:
                star = laws.crossover(np.exp(lk_a), al_a, np.exp(lk_b), al_b)
                add(a, b, "D_F* (crossover)", "crossover", star, unit)
                rows[-1].update(mean=float("nan"), sd=float("nan"))  # heavy-tailed: read median and interval
                add(a, b, "log10 D_F*", "crossover", np.log10(star), f"log10 {unit}")
        add_p(a, b, "P(k_A > k_B)", np.mean(lk_a > lk_b))
        add_p(a, b, "P(alpha_A < alpha_B)", np.mean(al_a < al_b))
        if not shared_beta:
            add_p(a, b, "P(beta_A > beta_B)", np.mean(draws("beta", a) > draws("beta", b)))
        else:
            add_p(a, b, f"P({lo_D:.3g} <= D_F* <= {hi_D:.3g}) (inside the data)",
                  np.mean((star >= lo_D) & (star <= hi_D)))
    out = pd.DataFrame(rows)
    out.attrs.update(ci_prob=ci_prob, variant=fit.config.variant)
    return out
