"""Fit any law spec by NUTS; one fit object (:class:`Fit`) and one loader (:func:`load`) for every fit file.

>>> import bayes_scaling as bs
>>> fit = bs.fit("runs.csv", model="models/laws/chinchilla.toml", seed=1)     # doctest: +SKIP
>>> fit.summary(ci_prob=0.9)                                                  # doctest: +SKIP
>>> fit.predict(pd.DataFrame({"N": [1e10], "D": [2e11]}), kind="observation", ci_prob=0.9)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import os
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling import __version__
from bayes_scaling._interval import CI_PROB
from bayes_scaling._numeric import nanquantile
from bayes_scaling.data.tables import read_table
from bayes_scaling.errors import ConfigError, DataError, FitFileError, format_rows
from bayes_scaling.inference.base import FitBase
from bayes_scaling.inference.fitfile import read_tree, require_variables, without, write_tree
from bayes_scaling.laws.spec import LawSpec, builtin_spec
from bayes_scaling.models import spec_model as sm

__all__ = ["Fit", "fit", "load"]



def _as_spec(model: LawSpec | str | PathLike | dict) -> LawSpec:
    if isinstance(model, LawSpec):
        return model
    if isinstance(model, dict):
        return LawSpec.from_dict(model)
    if not isinstance(model, str | PathLike):
        from bayes_scaling.errors import InputTypeError

        raise InputTypeError(f"model: expected a LawSpec, a built-in name such as 'chinchilla', the path of a spec "
                             f"file or a dict, got {type(model).__name__}")
    return builtin_spec(str(model))


def _sampler(plan: sm.ModelPlan, log_likelihood: bool, whiten: str = "none"):
    """The compiled sampler of ``plan``'s model, from this process's cache when one of the same structure was
    compiled before (then only the data's values change)."""
    from bayes_scaling.inference.compiled import CompiledSampler
    from bayes_scaling.inference.sampling import cached_sampler
    from bayes_scaling.inference.whiten import compiled_sampler

    refit = lambda s: s.set_data(plan.values(), coords={"row": np.arange(plan.data.n)})  # noqa: E731
    if whiten == "none":
        return cached_sampler(_sampler_key(plan, log_likelihood, whiten),
                              lambda: CompiledSampler(plan.build(), log_likelihood=log_likelihood), refit)
    return cached_sampler(   # compiled in the affine form (inference.whiten) when the dimension allows
        _sampler_key(plan, log_likelihood, whiten), lambda: compiled_sampler(plan.build(), log_likelihood), refit)


def _sampler_key(plan: sm.ModelPlan, log_likelihood: bool, whiten: str) -> tuple:
    """The key of :func:`_sampler`'s compiled sampler in this process's cache."""
    return ("spec", *(("affine",) if whiten != "none" else ()), *plan.structure(log_likelihood))


def _prepared_sampler(plan: sm.ModelPlan, log_likelihood: bool, whiten: str):
    """``(sampler, parameterization, whitening)`` of a nutpie fit: a compiled model kept in this process for the
    first parameterization tried; else the start-up cache's (:mod:`bayes_scaling.inference.fitcache`: a fresh
    process fitting data fitted before); else made (:func:`~bayes_scaling.inference.whiten.whiten_spec_sampler`;
    a monomial law whose coefficient is sampled at the data's centre is not whitened) and written to that cache."""
    from bayes_scaling.inference import fitcache
    from bayes_scaling.inference.sampling import _COMPILED
    from bayes_scaling.inference.whiten import Whitening, whiten_spec_sampler

    centred = whiten == "auto" and bool(plan.centred)
    form = "none" if centred else whiten
    first = plan if form == "none" else plan.with_parameterization((plan.attempts or [plan.parameterization])[0])
    key = None
    if _sampler_key(first, log_likelihood, form) not in _COMPILED and fitcache.cache_dir() is not None:
        key = fitcache.fit_key(plan, log_likelihood, whiten)
        hit = fitcache.load(key)
        if hit is not None:
            return hit
    if centred:   # its own coordinates are nearly uncorrelated: a mode search would cost more than it saves
        made = (_sampler(plan, log_likelihood, "none"), plan.parameterization,
                Whitening("none", "the law's coefficient is sampled at the data's centre (nearly uncorrelated "
                          "coordinates)", "diag"))
    else:
        made = whiten_spec_sampler(lambda p: _sampler(plan.with_parameterization(p), log_likelihood, whiten),
                                   plan.parameterization, plan.attempts,
                                   lambda p: plan.with_parameterization(p).exponents, whiten,
                                   lambda p: plan.with_parameterization(p).pools())
    if key is not None:
        fitcache.save(key, *made)
    return made


def fit(data: pd.DataFrame | str | PathLike, model: LawSpec | str | PathLike | dict = "transfer", *,
        seed: int | None = None, draws: int = 1000, tune: int | None = None, chains: int = 4, backend: str = "auto",
        target_accept: float | None = None, cores: int | None = None, progressbar: bool | None = None,
        warn: bool = True, log_likelihood: bool = True, whiten: str = "auto", rerun: bool = True) -> Fit:
    """Fit the law ``model`` (a :class:`LawSpec`, a spec file, or a built-in name such as ``"chinchilla"``)
    to ``data`` (a DataFrame or CSV path) by NUTS.

    Args:
        data: one row per run, with the formula's input columns, the target and the group columns.
        model: the law spec.
        seed: makes the result reproducible (a fresh seed is drawn and recorded when None).
        draws, tune, chains: NUTS settings; ``tune`` defaults to 1000 (300 for one M4 learning curve, whose
            whitened basis leaves little to adapt: :func:`~bayes_scaling.inference.m4.fit_m4`);
            ``target_accept`` defaults to 0.95 (0.99 on nutpie, 0.9 there for a whitened fit, 0.99 for one
            whitened with its pooled spreads held).
        backend: ``"auto"`` (nutpie's compiled sampler, else PyMC), ``"nutpie"``, ``"pymc"``, ``"numpyro"``.
        log_likelihood: keep the pointwise log-likelihood (for LOO); chains x draws x rows floats.
        whiten: nutpie only: ``"auto"`` samples ``z`` with ``x = m + L z`` (``m`` the mode of the unconstrained
            parameters, ``L L' = H^-1`` the Laplace covariance) where that approximation is defined and the
            dimension small (a centred hierarchy without a mode: at its pooled spreads' marginal estimate,
            the other coordinates' mode given them), else the model's own coordinates (and always for a monomial law, whose coefficient
            is sampled at the data's centre: :mod:`bayes_scaling.models.spec_model`); ``"laplace"`` always (an error where undefined);
            ``"none"`` never. The same posterior either way (:mod:`bayes_scaling.inference.whiten`); the choice
            is in ``fit.tree.attrs["whitening"]`` and ``["whitening_reason"]``, and the form of the pooled
            parameters it sampled (centred where every group a parameter enters is informed, if that form has a
            mode) in ``["parameterization"]``.
        rerun: a fit with a divergent transition is run once more, same seed and form, at the higher
            ``target_accept`` ``1 - (1 - t) / 10`` (0.99 -> 0.999, 0.9 -> 0.99); the
            first run's ``target_accept`` and divergences are in ``fit.tree.attrs["rerun_from"]`` and a warning
            that remains says so. False: keep the first run.

    Returns:
        A :class:`Fit`. R-hat > 1.01, ESS < 400 or any divergence warns with what to do.

    >>> fit = bs.fit(bs.datasets.load_corpora(), model="chinchilla_by_corpus", seed=1)   # doctest: +SKIP
    """
    from bayes_scaling.inference.sampling import (
        DEFAULT_TARGET_ACCEPT,
        resolve_backend,
        sample_nuts,
        sampler_settings,
    )

    spec = _as_spec(model)
    from bayes_scaling.models.m4 import is_m4

    if is_m4(spec) and resolve_backend(backend) == "nutpie":   # one M4 learning curve: its whitened basis
        from bayes_scaling.inference.m4 import fit_m4

        return fit_m4(data, spec, seed=seed, draws=draws, tune=tune, chains=chains, target_accept=target_accept,
                      cores=cores, progressbar=progressbar, warn=warn, log_likelihood=log_likelihood)
    tune = 1000 if tune is None else tune
    what = str(data) if isinstance(data, str | PathLike) else "data"
    table, excluded = _apply_exclusions(spec, read_table(data, "data"), what, warn)
    plan = sm.plan(spec, table, what=what)     # the spec's one way down: data, priors, parameterization, checks
    seed, progressbar = sampler_settings(draws, tune, chains, seed, progressbar)
    ran = resolve_backend(backend)
    accept_by_default = target_accept is None
    if target_accept is None:
        target_accept = DEFAULT_TARGET_ACCEPT[ran]
    if not 0 < target_accept < 1:
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
    prepared, priors, param = plan.data, plan.priors, plan.parameterization
    coords = {g: list(v) for g, v in prepared.labels.items()}
    from bayes_scaling.inference.whiten import WHITEN_CHOICES

    if whiten not in WHITEN_CHOICES:
        raise ValueError(f"whiten must be one of {', '.join(WHITEN_CHOICES)}, got {whiten!r}")
    def run(target_accept: float, default: bool) -> tuple[xr.DataTree, float]:
        """One run of the sampler; ``default``: ``target_accept`` is the back end's default (a whitened fit's
        is then :data:`~bayes_scaling.inference.whiten.WHITENED_TARGET_ACCEPT`)."""
        nonlocal param
        if ran == "nutpie":   # the parameterization of pooled parameters may change with the whitening (same posterior)
            sampler, param, choice = _prepared_sampler(plan, log_likelihood, whiten)
            if default and choice.method == "laplace":
                target_accept = choice.target_accept
            tree = sampler.sample(draws=draws, tune=tune, chains=chains, seed=seed, target_accept=target_accept,
                                  progressbar=progressbar, cores=min(cores or os.cpu_count() or 1, chains),
                                  coords=coords, adaptation=choice.adaptation)
            tree.attrs["backend"] = ran
            tree.attrs.update(choice.attrs() if sampler.engine != "public" else
                              {"whitening": "none", "whitening_reason": "nutpie's public path samples the model itself"})
        else:
            tree = sample_nuts(plan.build(), draws=draws, tune=tune, chains=chains, seed=seed, backend=ran,
                               target_accept=target_accept, progressbar=progressbar, cores=cores,
                               log_likelihood=log_likelihood)
            tree.attrs.update(whitening="none", whitening_reason=f"back end {ran}")
        return tree, target_accept

    tree, target_accept = run(target_accept, accept_by_default)
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else {}
    first = int(stats["diverging"].sum()) if "diverging" in stats else 0
    rerun_from = None
    if rerun and first:    # the same posterior at smaller steps: divergences there are the sampler's, not the model's
        rerun_from = {"target_accept": float(target_accept), "divergences": first}
        tree, target_accept = run(rerun_target_accept(target_accept), False)
    tree.attrs.update(
        bayes_scaling_kind="spec", bayes_scaling_version=__version__, spec=json.dumps(spec.to_dict()),
        spec_hash=spec.hash(), backend=ran, seed=int(seed), tune=int(tune), target_accept=float(target_accept),
        priors=json.dumps(priors), noise_prior=float(plan.noise), parameterization=json.dumps(param),
        labels=json.dumps(prepared.labels))
    if rerun_from is not None:
        tree.attrs["rerun_from"] = json.dumps(rerun_from)
    if plan.centred:
        tree.attrs["centring"] = json.dumps({n: c.to_dict() for n, c in plan.centred.items()})
    if spec.seed_slope is not None:
        tree.attrs["seed_centre"] = sm.seed_centre(spec, prepared)
    if spec.sigma_slope is not None:
        tree.attrs["sigma_centre"] = sm.sigma_centre(spec, prepared)
    if len(excluded):
        tree.attrs["excluded"] = excluded.to_json(orient="split", index=False)
    from bayes_scaling.inference.scratch import as_scratch_fit

    result = as_scratch_fit(Fit(tree, prepared.table, spec))   # a from-scratch loss law: a ScratchFit
    if warn:
        _warn(result.diagnostics, rerun_from, target_accept)
    return result


def rerun_target_accept(target_accept: float) -> float:
    """The ``target_accept`` of a divergent fit's rerun (:func:`fit`): ``1 - (1 - t) / 10``, a tenth of the
    rejection rate (0.9 -> 0.99, 0.99 -> 0.999)."""
    return 1 - (1 - target_accept) / 10


def _warn(diagnostics, rerun_from: dict | None, target_accept: float) -> None:
    """The fit's :class:`~bayes_scaling.errors.ConvergenceWarning`, unless its diagnostics are ok; after a rerun
    (:func:`fit`) it says so."""
    import warnings

    from bayes_scaling.errors import ConvergenceWarning

    if diagnostics.ok:
        return
    text = f"{diagnostics}. " + " ".join(diagnostics.problems())
    if rerun_from is not None:
        text += (f" (this is a rerun at target_accept {target_accept:g}; the first run, at "
                 f"{rerun_from['target_accept']:g}, had {rerun_from['divergences']} divergent transition(s))")
    warnings.warn(text, ConvergenceWarning, stacklevel=3)


def _apply_exclusions(spec: LawSpec, table: pd.DataFrame, what: str, warn: bool) -> tuple[pd.DataFrame,
                                                                                          pd.DataFrame]:
    """The spec's ``[exclude]`` rules on the data (:meth:`LawSpec.exclusions`): the kept rows, and the excluded
    ones with their reasons, reported by an :class:`~bayes_scaling.errors.ExclusionWarning` (``warn``); every row
    excluded: a DataError."""
    import warnings

    from bayes_scaling.errors import ExclusionWarning

    kept, excluded = spec.exclusions(table, what)
    if not len(excluded):
        return kept, excluded
    report = exclusion_report(excluded, len(table))
    if not len(kept):
        raise DataError(f"{what}: every row is excluded by the spec's [exclude] rules: {report}")
    if warn:
        warnings.warn(f"{what}: {report}", ExclusionWarning, stacklevel=3)
    return kept, excluded


def exclusion_report(excluded: pd.DataFrame, n: int) -> str:
    """One line: how many of ``n`` rows were excluded, and which rows for each reason."""
    parts = [f"{reason}: {len(g)} row(s) [{format_rows(g['row'].to_numpy())}]"
             for reason, g in excluded.groupby("reason", sort=False)]
    return f"excluded {len(excluded)} of {n} rows from the fit: " + "; ".join(parts)


class Fit(FitBase):
    """A fitted law: the data, the spec, the posterior (``tree``, an ``xarray.DataTree`` with ``posterior``,
    ``sample_stats``, ``log_likelihood``, ``observed_data``), the back end, the seed and the priors used.

    >>> fit.summary(ci_prob=0.9)                                        # doctest: +SKIP
    >>> fit.predict(new_runs, kind="observation", ci_prob=0.9)          # doctest: +SKIP
    >>> fit.save("fit.nc"); bs.load("fit.nc")                           # doctest: +SKIP
    """

    def __init__(self, tree: xr.DataTree, data: pd.DataFrame, spec: LawSpec):
        self.tree = tree
        self.data = data
        self.spec = spec

    # ---- accessors (posterior, backend, seed, parameterization: FitBase) -------------------------------
    @property
    def table(self) -> pd.DataFrame:
        """The fitted rows (the spec's columns), as the methods of :class:`Fit` read them."""
        return self.data

    @property
    def labels(self) -> dict[str, list[str]]:
        return json.loads(self.tree.attrs.get("labels", "{}"))

    @property
    def excluded(self) -> pd.DataFrame:
        """The input rows the spec's ``[exclude]`` rules left out: ``row`` (position in the input table), the
        row's columns and ``reason``; empty when none was."""
        text = self.tree.attrs.get("excluded")
        if not text:
            return pd.DataFrame(columns=["row", *self.table.columns, "reason"])
        from io import StringIO

        return pd.read_json(StringIO(text), orient="split")

    @property
    def priors(self) -> dict[str, tuple[float, float]]:
        """Each free parameter's prior ``(location, scale)`` on its unconstrained scale, as used."""
        return {k: tuple(v) for k, v in json.loads(self.tree.attrs.get("priors", "{}")).items()}

    @property
    def centring(self) -> dict[str, sm.Centring]:
        """The coefficients sampled at the data's centre (:func:`~bayes_scaling.models.spec_model.centring`);
        empty for other laws and for files written before the engine centred them."""
        return {n: sm.Centring.from_dict(d) for n, d in json.loads(self.tree.attrs.get("centring", "{}")).items()}

    def parameter_names(self) -> list[str]:
        names = []
        for p in self.spec.parameters.values():
            if p.fixed is None:   # a two-level parameter: its families' locations after its models'
                names += [p.name] + ([f"{p.name}_{p.within}"] if p.within else [])
        names += ["sigma"] + (["sigma_seed"] if self.spec.replicates else [])
        names += ["seed_slope"] if self.spec.seed_slope is not None else []
        names += ["sigma_slope"] if self.spec.sigma_slope is not None else []
        return names + (["nu"] if self.spec.family == "student_t" else [])

    @property
    def diagnostics(self):
        from bayes_scaling.inference.sampling import diagnose

        post = self.posterior
        return diagnose(self.tree, [v for v in post.data_vars if not v.startswith("z_")
                                    and not v.endswith("_z")])

    def summary(self, ci_prob: float = CI_PROB, var_names: list[str] | None = None) -> pd.DataFrame:
        """One row per parameter (and group): mean, sd, median, equal-tailed ``ci_prob`` interval, bulk and
        tail ESS, R-hat (:func:`~bayes_scaling.inference.sampling.summarize`, the summary of every fit)."""
        from bayes_scaling.inference.sampling import summarize

        return summarize(self.tree, var_names or self.parameter_names(), ci_prob)

    # ---- predictions -----------------------------------------------------------------------------------
    def data_range(self) -> dict[str, tuple[float, float]]:
        """The fitted data's range of each input column."""
        return {c: (float(self.table[c].min()), float(self.table[c].max())) for c in self.spec.inputs}

    def _check_points(self, new, n_points: int) -> None:
        """Points to predict: an input that is positive throughout the fitted data must be positive (> 0) at
        every point (a DataError naming the column and rows), and the prediction must fit in memory
        (:func:`bayes_scaling._system.check_prediction_memory`)."""
        from bayes_scaling._system import check_prediction_memory

        for c, (lo, hi) in self.data_range().items():
            values = np.asarray(new.inputs[c], dtype=float)
            bad = np.flatnonzero(values <= 0)
            if lo > 0 and len(bad):
                raise DataError(f"new data: column {c!r} has values <= 0 at rows {format_rows(bad)} "
                                f"({', '.join(f'{values[i]:g}' for i in bad[:3])}); the fitted data has {c} in "
                                f"[{lo:.3g}, {hi:.3g}], all > 0")
        post = self.posterior
        check_prediction_memory(n_points, int(post.sizes.get("chain", 1)) * int(post.sizes.get("draw", 1)))

    def outside(self, points: pd.DataFrame) -> pd.DataFrame:
        """How far each point lies outside the fitted data: ``outside_<column>`` per input (and ``outside_C``,
        compute ``C = 6 N D``, for laws with N and D): orders of magnitude (log10) beyond the range for positive
        columns, else multiples of the range's width, + above, - below; and the largest, ``outside`` (the
        distance ``d`` of the discrepancy). One definition: :func:`bayes_scaling.laws.discrepancy.outside_table`.
        """
        from bayes_scaling.laws.discrepancy import outside_table

        return outside_table(self.table, points, self.spec.inputs)

    def _param_draws(self, new: sm.SpecData, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per-row parameter values, shape (samples, rows); a new group of a pooled parameter gets draws from
        its population, of a separate parameter an error."""
        post = self.posterior
        S = post.sizes["chain"] * post.sizes["draw"]
        out = {}
        for p in self.spec.parameters.values():
            if p.fixed is not None:
                out[p.name] = np.full((S, new.n), p.fixed)
                continue
            if p.by is None:
                out[p.name] = np.repeat(post[p.name].values.reshape(S, 1), new.n, axis=1)
                continue
            vals = post[p.name].transpose("chain", "draw", p.by).values.reshape(S, -1)
            idx = new.index[p.by]
            unknown = np.flatnonzero(idx < 0)
            if len(unknown) and p.sharing == "separate":
                names = sorted({str(new.table[p.by].iloc[i]) for i in unknown})
                raise DataError(f"new data: column {p.by!r} has group(s) {', '.join(names)} at rows "
                                f"{format_rows(unknown)} that the fit has not seen; parameter {p.name!r} is "
                                f"separate per group (known: {', '.join(self.labels[p.by])})")
            cols = vals[:, np.where(idx >= 0, idx, 0)]
            if p.within is not None:
                self._check_parents(new, p)
            if len(unknown):
                cols[:, unknown] = self._new_group_draws(p, new, unknown, rng)
            out[p.name] = cols
        for name, c in self.centring.items():   # a new group's coefficient at x = 1 from its draw at the centre
            unknown = np.flatnonzero(new.index[self.spec.parameters[name].by] < 0) \
                if self.spec.parameters[name].by is not None else np.array([], dtype=int)
            if len(unknown):
                u = np.log(out[name][:, unknown])
                out[name][:, unknown] = np.exp(c.log_coefficient(u, {e: out[e][:, unknown] for _, e, _ in c.powers}))
        return out

    def _new_group_draws(self, p, new: sm.SpecData, unknown: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draws of a pooled parameter for the rows ``unknown`` of ``new``, whose groups the fit has not seen:
        one draw per new group (its rows share it) from the population, ``u_mu + u_sigma z``; for a two-level
        parameter from the group's parent, ``u_<within>[h] + u_sigma z``, or for a new parent too
        ``u_mu + u_sigma_<within> z' + u_sigma z``; a centred coefficient at the data's centre (its value at
        ``x = 1`` follows in :meth:`_param_draws`, from the group's exponents). Shape (samples, len(unknown))."""
        post = self.posterior
        S = post.sizes["chain"] * post.sizes["draw"]
        uname = sm.centred_name(p.name, p.domain) if p.name in self.centring else \
            sm.unconstrained_name(p.name, p.domain)     # a centred coefficient: its draw at the centre
        mu = post[f"{uname}_mu"].values.reshape(S)
        sd = post[f"{uname}_sigma"].values.reshape(S)
        names = new.table[p.by].astype(str).to_numpy()[unknown]
        if p.within is not None:
            u_parent = post[f"{uname}_{p.within}"].transpose("chain", "draw", p.within).values.reshape(S, -1)
            sd_parent = post[f"{uname}_sigma_{p.within}"].values.reshape(S)
            parent_idx = new.index[p.within][unknown]
            parent_names = new.table[p.within].astype(str).to_numpy()[unknown]
        out = np.empty((S, len(unknown)))
        new_parents: dict[str, np.ndarray] = {}
        for name in dict.fromkeys(names):
            rows = names == name
            centre = mu
            if p.within is not None:
                j = int(parent_idx[rows][0])
                if j >= 0:
                    centre = u_parent[:, j]
                else:                     # a new parent group too: one draw for all its new children
                    key = str(parent_names[rows][0])
                    if key not in new_parents:
                        new_parents[key] = mu + sd_parent * rng.standard_normal(S)
                    centre = new_parents[key]
            u_new = centre + sd * rng.standard_normal(S)
            out[:, rows] = np.asarray(sm._from_u(u_new, p.domain, np))[:, None]
        return out

    @functools.cached_property
    def _parents(self) -> dict[tuple[str, str], np.ndarray]:
        """The fitted data's ``(by, within)`` -> each ``by`` group's ``within`` index (prepared once per fit)."""
        return sm.prepare(self.spec, self.table, labels=self.labels).parents

    def _check_parents(self, new: sm.SpecData, p) -> None:
        """New rows of a group the fit has seen must name the same ``within`` group as the fitted data."""
        expected = self._parents[(p.by, p.within)]
        idx, pidx = new.index[p.by], new.index[p.within]
        bad = np.flatnonzero((idx >= 0) & (pidx != expected[np.maximum(idx, 0)]))
        if len(bad):
            i = bad[0]
            want = self.labels[p.within][expected[idx[i]]]
            raise DataError(f"new data: column {p.within!r} at rows {format_rows(bad)} does not match the fitted "
                            f"data: {p.by} {new.table[p.by].iloc[i]!r} is in {p.within} {want!r} there, here "
                            f"{new.table[p.within].iloc[i]!r}")

    def predict(self, new_data: pd.DataFrame | dict, kind: str = "mean", *, ci_prob: float | None = None,
                seed: int | None = None, discrepancy: float | bool | None = None) -> xr.Dataset | pd.DataFrame:
        """Posterior predictions of the target at ``new_data`` (the input and group columns), with the law's
        discrepancy outside the data (:mod:`bayes_scaling.laws.discrepancy`) by default.

        Each draw is ``f(x; theta)`` (``kind="mean"``: the law's value), with the likelihood's noise added for
        ``kind="observation"`` (a new run, on the likelihood's scale), times ``exp(tau * d * z)``,
        ``z ~ Normal(0, 1)``, ``d`` the point's distance outside the fitted data (:meth:`outside`; 0 inside)::

            log y = log f(x; theta) [+ noise] + Normal(0, (tau d)**2)

        The discrepancy belongs to both kinds: it is the law's *mean* being wrong out of sample (backtests:
        README, "Backtests"), so the mean's interval carries it as well as a new run's.

        Args:
            new_data: points to predict (columns of the formula's inputs and the spec's group columns).
            kind: ``"mean"`` or ``"observation"``.
            ci_prob: if given, a DataFrame: the columns of ``new_data``, then ``median``, ``lo``, ``hi`` of the
                equal-tailed ``ci_prob`` interval, how far outside the fitted data each point lies
                (``outside_<column>``, ``outside``), ``tau`` and the split of the log-scale predictive variance
                into parameters, noise and discrepancy (``sd_*``, ``share_*``:
                :func:`~bayes_scaling.laws.discrepancy.variance_split`; the shares sum to 1).
            seed: for the noise and discrepancy draws and for new groups of pooled parameters.
            discrepancy: ``tau`` per decade outside the data; ``None`` (default): the spec's
                (``fit.spec.discrepancy``: 0.059 unless the spec says otherwise; ``tau = "learnt"``: the
                learnt drift, :class:`~bayes_scaling.laws.discrepancy.Discrepancy`, and the attribute ``tau``
                its root mean square per decade); ``0`` or ``False``: none (the parameters' and the noise's uncertainty only).

        Returns:
            An ``xarray.Dataset`` with the target's draws (``chain``, ``draw``, ``point``); coordinates along
            ``point``: ``<column>_orders_outside`` (read by :mod:`bayes_scaling.output.forecasting`),
            ``outside`` and the ``share_*`` columns; attribute ``tau``. Or the DataFrame (``ci_prob``).

        >>> fit.predict(pd.DataFrame({"N": [7e10], "D": [1.4e12]}), ci_prob=0.9)        # doctest: +SKIP
        >>> fit.predict(points, kind="observation", discrepancy=0)          # without the discrepancy  # doctest: +SKIP
        """
        from bayes_scaling.laws.discrepancy import check_tau, variance_split, widen

        if kind not in ("mean", "observation"):
            raise ValueError(f"kind must be 'mean' or 'observation', got {kind!r}")
        if discrepancy is None:
            tau = self.spec.discrepancy.tau       # a learnt discrepancy: its root mean square (the variance split)
        else:
            tau = 0.0 if discrepancy is False else check_tau(discrepancy, "discrepancy")
        table = read_table(new_data, "new data")   # a DataFrame, a dict of columns or a CSV path; else InputTypeError
        new = sm.prepare(self.spec, table, what="new data", labels=self.labels, target=False)
        self._check_points(new, len(table))
        # one independent stream per source (common random numbers): the new groups' draws and the
        # discrepancy's z are the same for kind="mean" and kind="observation", so the two differ by the noise only
        streams = np.random.SeedSequence(self.seed if seed is None else seed).spawn(3)
        rng_groups, rng_noise, rng_discrepancy = (np.random.default_rng(s) for s in streams)
        params = self._param_draws(new, rng_groups)
        values = {**{c: v[None, :] for c, v in new.inputs.items()}, **params}
        f = np.asarray(self.spec.formula.evaluate(values, backend="numpy"), dtype=float)
        f = np.broadcast_to(f, (next(iter(params.values())).shape[0], new.n)).copy()
        mean = f
        noisy = _add_noise(mean, self.spec, self.posterior, rng_noise, new.inputs,
                           float(self.tree.attrs.get("seed_centre", 0.0)),
                           _noise_levels(self.spec, new), sm.noise_covariate(self.spec, new),
                           float(self.tree.attrs.get("sigma_centre", 0.0))) if kind == "observation" else mean
        where = self.outside(table)
        d = where["outside"].to_numpy(dtype=float)
        if discrepancy is None and self.spec.discrepancy.learnt:
            f = self.spec.discrepancy.apply(noisy, d, rng_discrepancy)
        else:
            f = widen(noisy, d, tau, rng_discrepancy)
        with np.errstate(all="ignore"):
            log_mean = np.log(mean)
            split = variance_split(log_mean, tau, d, None if kind == "mean" else np.log(noisy) - log_mean)
        post = self.posterior
        C, D = post.sizes["chain"], post.sizes["draw"]
        coords = {"chain": post["chain"].values, "draw": post["draw"].values, "point": np.arange(new.n),
                  "outside": ("point", d)}
        coords.update({f"{c[len('outside_'):]}_orders_outside": ("point", where[c].to_numpy(dtype=float))
                       for c in where.columns if c != "outside"})
        coords.update({c: ("point", split[c].to_numpy()) for c in split.columns if c.startswith("share_")})
        da = xr.DataArray(f.reshape(C, D, new.n), dims=("chain", "draw", "point"), coords=coords,
                          name=self.spec.target)
        da.attrs["tau"] = tau
        ds = da.to_dataset()
        ds.attrs.update(kind=kind, target=self.spec.target, tau=tau,
                        discrepancy="log y += Normal(0, (tau d)^2), d = decades outside the data")
        if ci_prob is None:
            return ds
        if not 0 < ci_prob < 1:
            raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
        flat = f.reshape(-1, new.n)
        lo, med, hi = nanquantile(flat, [(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2], axis=0)
        out = table.copy()
        out["median"], out["lo"], out["hi"] = med, lo, hi
        out = pd.concat([out, where], axis=1)
        out["tau"] = tau
        return pd.concat([out, split], axis=1)

    def derived(self, points: pd.DataFrame | dict, kind: str = "mean", *, ci_prob: float | None = None,
                seed: int | None = None, discrepancy: float | bool | None = None) -> xr.Dataset | pd.DataFrame:
        """Posterior draws of the spec's derived quantities (its ``[derived]`` table) at ``points``, with the
        target's predictions they are computed from.

        Each draw evaluates every derived formula (in dependency order) on the points' inputs, the draw's
        parameters and the draw's predicted target (:meth:`predict` with the same ``kind``, ``seed`` and
        ``discrepancy``): for the transfer law, ``D_E = D_F + D_T``, ``multiplier = D_E / D_F``,
        ``fraction = D_T / D_E`` per draw.

        Returns:
            the :meth:`predict` Dataset with one more variable per derived quantity (``chain``, ``draw``,
            ``point``); with ``ci_prob``, a DataFrame with one row per point and quantity (the target first):
            the points' columns, ``quantity``, ``median``, ``lo``, ``hi`` (equal-tailed ``ci_prob`` interval).

        >>> fit.derived(pd.DataFrame({"pretraining": ["text"], "N": [1e8], "D_F": [1e6]}), ci_prob=0.9)  # doctest: +SKIP
        """
        if not self.spec.derived:
            raise ConfigError(f"law {self.spec.name!r} declares no derived quantities (a [derived] table of "
                              "name = \"formula\")")
        if ci_prob is not None and not 0 < ci_prob < 1:
            raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
        ds = self.predict(points, kind, seed=seed, discrepancy=discrepancy)
        table = read_table(points, "new data")
        new = sm.prepare(self.spec, table, what="new data", labels=self.labels, target=False)
        # the new groups' draws of predict (its first stream), so that the parameters match its target's draws
        rng_groups = np.random.default_rng(np.random.SeedSequence(self.seed if seed is None else seed).spawn(3)[0])
        params = self._param_draws(new, rng_groups)
        target = self.spec.target
        C, D = ds.sizes["chain"], ds.sizes["draw"]
        values = {**{c: v[None, :] for c, v in new.inputs.items()}, **params,
                  target: ds[target].values.reshape(C * D, new.n)}
        for name in self.spec.derived_order:
            v = np.asarray(self.spec.derived[name].evaluate(values, backend="numpy"), dtype=float)
            values[name] = np.broadcast_to(v, (C * D, new.n))
            ds[name] = (("chain", "draw", "point"), values[name].reshape(C, D, new.n))
        if ci_prob is None:
            return ds
        q = [(1 - ci_prob) / 2, 0.5, 1 - (1 - ci_prob) / 2]
        frames = []
        for name in [target, *self.spec.derived]:
            lo, med, hi = np.nanquantile(values[name], q, axis=0)
            out = table.reset_index(drop=True).copy()
            out["quantity"], out["median"], out["lo"], out["hi"] = name, med, lo, hi
            frames.append(out)
        return pd.concat(frames, ignore_index=True)

    def _repr_html_(self) -> str:
        """A fit in Jupyter: the law, each parameter's sharing and prior, the diagnostics and the summary
        (:meth:`summary` with its default interval)."""
        import html

        spec, p = self.spec, self.posterior
        esc = html.escape
        rows = []
        for name, par in spec.parameters.items():
            sharing = par.sharing + (f" by {par.by}" if par.by else "") + (f" within {par.within}" if par.within else "")
            prior = "fixed" if par.fixed is not None else ", ".join(f"{k} {v:g}" for k, v in par.prior.items()) \
                or "default"
            rows.append(f"<tr><td>{esc(name)}</td><td>{esc(par.domain)}</td><td>{esc(sharing)}</td>"
                        f"<td>{esc(prior)}</td><td>{esc(self.parameterization.get(name, ''))}</td></tr>")
        diag = self.diagnostics
        colour = "green" if diag.ok else "#b00"
        law = spec.formula.text if hasattr(spec.formula, "text") else str(spec.formula)
        table = self.summary()
        ci = next((c[3:-3] for c in table.columns if c.startswith("eti") and c.endswith("_lb")), "")
        summary = table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
        return (f"<div><b>Fit</b> of <code>{esc(spec.name or '')}</code>: <code>{esc(spec.target)} ~ "
                f"{esc(law)}</code> ({esc(spec.family)} noise on the {esc(spec.scale)} scale)<br>"
                f"{len(self.table)} rows; {p.sizes['chain']} chains x {p.sizes['draw']} draws; back end "
                f"{esc(str(self.backend))}, seed {self.seed}<br>"
                f"<span style='color:{colour}'>{esc(str(diag))}</span>"
                "<table><tr><th>parameter</th><th>domain</th><th>sharing</th><th>prior</th>"
                f"<th>parameterization</th></tr>{''.join(rows)}</table>"
                f"<details open><summary>summary (median, {ci}% interval)</summary>{summary}</details></div>")

    def __repr__(self) -> str:
        p = self.posterior
        return (f"Fit({self.spec!r}, {len(self.data)} rows, {p.sizes['chain']} chains x {p.sizes['draw']} "
                f"draws, backend={self.backend!r}, parameterization={self.parameterization})")

    # ---- persistence ------------------------------------------------------------------------------------
    def save(self, path: str | PathLike) -> Path:
        """One netCDF file with the draws, sample stats, the data table, the spec and its hash, priors, seed
        and back end; :func:`load` reads it with nothing else."""
        return write_tree(self.tree, path, spec_data=_frame_to_dataset(self.table))


def _noise_levels(spec: LawSpec, new: sm.SpecData) -> np.ndarray | None:
    """Each new point's level of the noise's ``sigma_by`` column (None without one); a level the fit has not
    seen is a DataError naming the column and rows."""
    if spec.sigma_by is None:
        return None
    dim = sm.noise_dim(spec)
    level = new.index[dim]
    bad = np.flatnonzero(level < 0)
    if len(bad):
        raise DataError(f"new data: column {spec.sigma_by!r} (each of its levels has its own noise) has levels the "
                        f"fit has not seen at rows {format_rows(bad)}; expected one of "
                        f"{', '.join(map(repr, new.labels[dim]))}")
    return level


def _add_noise(f: np.ndarray, spec: LawSpec, post: xr.Dataset, rng: np.random.Generator,
               inputs: dict[str, np.ndarray] | None = None, seed_centre: float = 0.0,
               levels: np.ndarray | None = None, covariate: np.ndarray | None = None,
               sigma_centre: float = 0.0) -> np.ndarray:
    """A new observation: the law's value with the likelihood's noise, on its scale (``laws``' noise model); with
    replicate runs, a new run of a new configuration: ``sqrt(sigma**2 + sigma_seed(x)**2)`` (``sigma_seed(x)``
    at the points' ``inputs`` where the spec has a ``seed_slope``); with ``sigma_by``, each point's level's
    ``sigma``, ``sigma_seed``, ``seed_slope``, ``nu`` (``levels``: the points' level indices); with
    ``sigma_slope``, ``sigma * exp(sigma_slope * (x - c))`` at the points' ``covariate`` ``x``."""
    from bayes_scaling.laws.formulas import observation_noise

    S = f.shape[0]

    def per_point(name):
        v = post[name].transpose("chain", "draw", ...).values.reshape(S, -1)    # (draws, 1) or (draws, levels)
        return v if levels is None else v[:, levels]

    sigma = per_point("sigma")
    if spec.sigma_slope is not None and "sigma_slope" in post and covariate is not None:
        from bayes_scaling.models.spec_model import noise_sd

        sigma = noise_sd(sigma, per_point("sigma_slope"), np.asarray(covariate, dtype=float)[None, :], sigma_centre)
    if "sigma_seed" in post:
        s_seed = per_point("sigma_seed")
        if spec.seed_slope is not None and "seed_slope" in post and inputs is not None:
            log_x = np.log(np.asarray(inputs[spec.seed_slope], dtype=float))[None, :]
            s_seed = s_seed * np.exp(per_point("seed_slope") * (log_x - seed_centre))
        sigma = np.sqrt(sigma**2 + s_seed**2)
    nu = per_point("nu") if spec.family == "student_t" else None
    return observation_noise(f, sigma, rng, nu=nu, log=spec.scale == "log")


def _frame_to_dataset(df: pd.DataFrame) -> xr.Dataset:
    ds = xr.Dataset({c: ("row", df[c].to_numpy() if df[c].dtype != object else df[c].astype(str).to_numpy())
                     for c in df.columns})
    ds.attrs["columns"] = json.dumps([str(c) for c in df.columns])
    return ds


def _dataset_to_frame(ds: xr.Dataset) -> pd.DataFrame:
    cols = json.loads(ds.attrs.get("columns", "[]")) or list(ds.data_vars)
    return pd.DataFrame({c: ds[c].values for c in cols})


def _stored_spec(path, tree: xr.DataTree, what: str = "law-spec fit", groups: tuple[str, ...] = (),
                 attrs: tuple[str, ...] = ()) -> LawSpec:
    """The spec stored in a fit file, checked: its groups and attributes present (``posterior``, ``spec_data``,
    the spec, its hash, seed, backend, and ``groups``/``attrs`` of the kind), the spec valid and its hash equal."""
    missing = [g for g in ("posterior", "spec_data", *groups) if g not in tree.children]
    missing += [a for a in ("spec", "spec_hash", "seed", "backend", *attrs) if a not in tree.attrs]
    if missing:
        raise FitFileError(f"{path}: not a complete {what} (missing {', '.join(missing)})")
    try:
        spec = LawSpec.from_dict(json.loads(tree.attrs["spec"]))
    except (ConfigError, json.JSONDecodeError) as exc:
        raise FitFileError(f"{path}: the stored spec is invalid ({exc})") from None
    if spec.hash() != tree.attrs["spec_hash"]:
        raise FitFileError(f"{path}: spec hash mismatch (file edited or corrupted)")
    return spec


def load(path: str | PathLike) -> Any:
    """Read any fit file written by this package: a law-spec :class:`Fit`, and transfer, from-scratch and
    joint fits (``TransferFit``, ``ScratchFit``, ``JointFit``, including files of earlier versions).

    A :class:`FitFileError` names the file and what is missing or wrong.
    """
    tree = read_tree(path)
    kind = tree.attrs.get("bayes_scaling_kind")
    if kind == "transfer" or (kind == "spec" and "transfer_data" in tree.children):   # a TransferFit
        from bayes_scaling.inference.sampling import load_fit

        return load_fit(path)
    if kind == "scratch":
        from bayes_scaling.inference.scratch import load_scratch_fit

        return load_scratch_fit(path)
    if kind == "joint" or (kind == "spec" and "finetune_data" in tree.children):   # a JointFit
        from bayes_scaling.inference.joint import load_joint_fit

        return load_joint_fit(path, tree)
    if kind != "spec":
        raise FitFileError(f"{path} is not a bayes_scaling fit file (kind {kind!r}; expected spec, transfer, "
                           "scratch or joint)")
    spec = _stored_spec(path, tree)
    post = tree["posterior"].to_dataset()
    absent = [p.name for p in spec.parameters.values() if p.fixed is None and p.name not in post]
    absent += [v for v in ("sigma",) if v not in post]
    if absent:
        raise FitFileError(f"{path}: the posterior lacks parameter(s) {', '.join(absent)}")
    require_variables(tree, path, [p.name for p in spec.parameters.values() if p.fixed is None] + ["sigma"])
    data = _dataset_to_frame(tree["spec_data"].to_dataset())
    from bayes_scaling.inference.scratch import as_scratch_fit

    return as_scratch_fit(Fit(without(tree, "spec_data"), data, spec))   # a loss law: a ScratchFit


def as_spec_fit(fit: Any) -> Fit:
    """A law-spec view of a fit: a :class:`Fit` (a transfer fit, ``TransferFit``, is one: the built-in transfer
    law ``D_T = k[p] * D_F**alpha[p] * N**beta``) as it is; other kinds: a :class:`FitFileError`."""
    if isinstance(fit, Fit):
        return fit
    raise FitFileError(f"{type(fit).__name__} has no law-spec view; use its own methods (e.g. .loss)")


def is_law_spec(path: str | PathLike) -> bool:
    """Whether a TOML file is a law spec (has a ``[law]`` table) rather than a transfer-model config."""
    import tomllib

    try:
        return "law" in tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
