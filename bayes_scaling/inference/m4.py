"""Fit one learning curve with the M4 law (built-in specs ``m4``, ``m4_error_rate``) by NUTS in the whitened basis
of :mod:`bayes_scaling.models.m4`: a least-squares fit of the law, the posterior mode from there, the Hessian at
the mode, then nutpie's NUTS on ``z`` (``u = m + R z``). :func:`bayes_scaling.fit` takes this path for such a
spec on the nutpie back end; the result is an ordinary :class:`~bayes_scaling.inference.fit.Fit`.

>>> fit = fit_m4(curve, "m4_error_rate", seed=1)          # columns x, L          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from os import PathLike

import numpy as np
import pandas as pd

from bayes_scaling import __version__
from bayes_scaling._system import one_blas_thread
from bayes_scaling.data.tables import read_table
from bayes_scaling.laws.spec import LawSpec
from bayes_scaling.models import m4 as m4model
from bayes_scaling.models import spec_model as sm

__all__ = ["fit_m4", "laplace", "DEFAULT_TARGET_ACCEPT", "DEFAULT_TUNE"]

#: NUTS's target acceptance: in the anchored basis the posterior is close to normal (7-13 leapfrog steps a draw on
#: the vision curves), but 0.9 left 1 divergence in 4000 draws on 2 of 18 curves, 0.95 none (docs/validation.md).
DEFAULT_TARGET_ACCEPT = 0.95
#: Tuning steps per chain: the Laplace whitening leaves nutpie's adaptation little to learn (docs/validation.md:
#: R-hat <= 1.01 on the vision curves with 300).
DEFAULT_TUNE = 300
#: The smallest alpha the search for the posterior mode starts from (:func:`fit_m4`).
ALPHA_START = 0.01


def _sampler(spec: LawSpec, n: int, log_likelihood: bool):
    from bayes_scaling.inference.compiled import CompiledSampler
    from bayes_scaling.inference.sampling import cached_sampler

    # one compiled model per spec: data, priors and whitening are pm.Data (set before every use)
    return cached_sampler(("m4", spec.hash(), log_likelihood),
                          lambda: CompiledSampler(m4model.build_m4_model(spec, n), log_likelihood=log_likelihood),
                          lambda s: None)


def _with_point(spec: LawSpec, point: dict[str, float]) -> LawSpec:
    """``spec`` with the least-squares ``point`` as the median of each parameter whose default prior is
    data-scaled (positive, not an exponent, no median given): what
    :func:`~bayes_scaling.models.spec_model.default_priors` would put there from its own least-squares fit."""
    d = spec.to_dict()
    exps = spec.exponents()
    for name, p in spec.parameters.items():
        if p.domain in ("positive", "negative") and name not in exps and "median" not in p.prior:
            d["parameters"][name]["median"] = point[name]
    return LawSpec.from_dict(d)


def laplace(logp_grad, u0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mode ``m`` of a log density (``logp_grad(u) -> (logp, gradient)``) by L-BFGS from ``u0``
    (:func:`~bayes_scaling.models.laplace.find_mode`), and the Cholesky factor ``R`` of the inverse of ``-Hessian``
    there (central differences of the gradient, symmetrised; eigenvalues clipped where it is not positive
    definite)."""
    from bayes_scaling.models.laplace import find_mode

    u = find_mode(logp_grad, u0)[0]
    K, h = len(u), 1e-4
    H = np.empty((K, K))
    for i in range(K):
        e = np.zeros(K)
        e[i] = h
        H[:, i] = -(logp_grad(u + e)[1] - logp_grad(u - e)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    if not np.all(np.isfinite(H)):
        return u, np.eye(K)
    vals, vecs = np.linalg.eigh(H)
    if not np.all(np.isfinite(vals)):
        return u, np.eye(K)
    vals = np.clip(vals, 1e-6 * max(vals.max(), 1e-12) + 1e-12, None)
    cov = (vecs / vals) @ vecs.T
    return u, np.linalg.cholesky(0.5 * (cov + cov.T))


def fit_m4(data: pd.DataFrame | str | PathLike, model: LawSpec | str | PathLike | dict = "m4_error_rate", *,
           seed: int | None = None, draws: int = 1000, tune: int | None = None, chains: int = 4,
           target_accept: float | None = None, cores: int | None = None, progressbar: bool | None = None,
           warn: bool = True, log_likelihood: bool = True, adaptation: str = "low_rank"):
    """Fit the M4 law ``(L - L_inf) / (L_0 - L)**alpha = beta * x**c`` to one learning curve (columns ``x`` and
    the target) by NUTS in the whitened basis (:mod:`bayes_scaling.models.m4`); the posterior is the spec's,
    with :func:`~bayes_scaling.models.spec_model.default_priors` (restricted to ``L_inf < L_0``).

    Arguments as :func:`bayes_scaling.fit`; ``tune`` defaults to :data:`DEFAULT_TUNE`, ``target_accept`` to
    :data:`DEFAULT_TARGET_ACCEPT`.
    Returns a :class:`~bayes_scaling.inference.fit.Fit` (``parameterization`` ``{"m4": "whitened"}``).
    """
    from bayes_scaling.inference.fit import Fit, _as_spec
    from bayes_scaling.inference.sampling import sampler_settings

    spec = _as_spec(model)
    m4model.check_m4(spec)
    table = read_table(data, "data")
    prepared = sm.prepare(spec, table)
    sm.check_identifiable(spec, prepared)
    tune = DEFAULT_TUNE if tune is None else tune
    seed, progressbar = sampler_settings(draws, tune, chains, seed, progressbar)
    target_accept = DEFAULT_TARGET_ACCEPT if target_accept is None else target_accept
    if not 0 < target_accept < 1:
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
    x, y = prepared.inputs["x"], prepared.target
    if np.any(x <= 0):
        from bayes_scaling.errors import DataError, format_rows

        raise DataError(f"data: column 'x' must be > 0 for the M4 law (x**c with c < 0); rows "
                        f"{format_rows(np.flatnonzero(x <= 0))} are not")
    # least squares of the law: the data-scaled prior medians (the documented default, found here in the
    # sampling basis, where every step is a valid law) and the start of the search for the mode
    lsq = m4model.least_squares_fit(spec, x, y)
    priors = sm.default_priors(_with_point(spec, lsq), prepared)
    noise = sm.noise_prior(spec, prepared)
    lsq["sigma"] = max(lsq["sigma"], 1e-3 * noise)
    sampler = _sampler(spec, prepared.n, log_likelihood)
    coords = {"row": np.arange(prepared.n)}
    values = m4model.m4_data_values(spec, x, y, priors, noise)
    sampler.set_data(values, coords=coords)
    # the search for the mode starts from least squares with alpha >= ALPHA_START: where the data do not fix
    # alpha, least squares can put it at 1e-5, far out in the prior's tail (log alpha ~ Normal(log 0.3, 1)),
    # where the law's gradient in double precision is NaN (alpha < ~1e-3 on cal_10 / BiT/101/3)
    start = {**lsq, "alpha": max(lsq["alpha"], ALPHA_START)}
    u0 = m4model.to_basis(start, values["log_x_ref"], spec.parameters["L_0"].domain == "unit", spec)
    with one_blas_thread():
        m, R = laplace(sampler._call_logp(), u0)
    sampler.set_data({"whiten_m": m, "whiten_R": R})
    tree = sampler.sample(draws=draws, tune=tune, chains=chains, seed=seed, target_accept=target_accept,
                          progressbar=progressbar, cores=min(cores or os.cpu_count() or 1, chains), coords=coords,
                          adaptation=adaptation)
    tree.attrs.update(
        bayes_scaling_kind="spec", bayes_scaling_version=__version__, spec=json.dumps(spec.to_dict()),
        spec_hash=spec.hash(), backend="nutpie", seed=int(seed), tune=int(tune), target_accept=float(target_accept),
        priors=json.dumps(priors), noise_prior=float(noise), parameterization=json.dumps({"m4": "whitened"}),
        labels=json.dumps({}), m4_least_squares=json.dumps(lsq))
    result = Fit(tree, prepared.table, spec)
    if warn:
        result.diagnostics.warn(stacklevel=2)
    return result
