"""Laplace whitening: NUTS on a posterior made nearly standard normal by a linear change of variables.

With ``m`` the posterior mode of the unconstrained parameters ``x`` and ``H`` the Hessian of ``-log p`` there, the
Laplace approximation is ``x ~ Normal(m, H^-1)``. Writing ``x = m + L z`` with ``L L' = H^-1`` (a Cholesky
factor), NUTS samples ``z``, whose posterior is close to ``Normal(0, I)`` whatever the correlations of ``x``::

    p_z(z) = p_x(m + L z) |det L|          (|det L| constant: the same posterior, only the geometry changes)

so the sampler's step size fits every direction at once and trees stay shallow (Chinchilla law on Epoch AI's
240 runs: ~30 leapfrog steps a draw unwhitened with nutpie's low-rank mass matrix, a handful whitened; numbers in
``docs/benchmarks.md``). The mode is found by L-BFGS (:func:`find_mode`) from the model's initial point; the
Hessian is exact where the caller has it (the loss laws, :func:`bayes_scaling.models.losslaws.laplace_whitening`)
or central differences of the compiled gradient (:func:`hessian_from_gradient`; ``2 K`` gradient calls).

:func:`whiten_sampler` chooses per fit (``whiten="auto"``): Laplace whitening when the sampler was compiled in the
affine form (at most :data:`MAX_DIMENSION` unconstrained parameters: the dense ``K x K`` factor costs ``K**2`` a
gradient), the optimiser converged (damped Newton steps bring the gradient below :data:`MODE_TOLERANCE` posterior
standard deviations) and the Hessian at the mode is positive definite and finite with a condition number below
:data:`MAX_CONDITION`; otherwise the model's own coordinates (``x = z``, the same arithmetic and draws as
unwhitened, with nutpie's low-rank mass matrix adaptation). A law-spec fit (:func:`whiten_spec_sampler`) first
tries its pooled parameters centred wherever every group a parameter enters is informed by its rows
(:func:`~bayes_scaling.models.spec_model.parameterizations_to_try`: a group the parameter does not enter at all, such as the from-scratch rows of
a transfer parameter, makes the data's own choice non-centred, whose posterior is curved where the other groups
are pinned by their data; the centred one has a mode there), then the data's parameterization. Where none has a
mode (a centred hierarchy's density grows without bound as a spread goes to 0), the centred form is whitened
with the pooled spreads held at their marginal estimate (:func:`held_spread_laplace`): the factor still comes
from the Hessian, and the draws are the exact posterior's. The choice and its reason are recorded in the fit's
attributes (``whitening``, ``whitening_reason``, ``adaptation``, ``parameterization``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_scaling._system import one_blas_thread
from bayes_scaling.models.laplace import (
    MAX_CONDITION,
    LogpGrad,
    find_mode,
    hessian_from_gradient,
    inverse_hessian_factor,
)

__all__ = ["MAX_DIMENSION", "MAX_CONDITION", "WHITEN_CHOICES", "WHITENED_TARGET_ACCEPT", "compiled_sampler", "laplace", "Whitening", "find_mode", "hessian_from_gradient",
           "inverse_hessian_factor", "whiten_sampler", "whiten_spec_sampler", "MODE_TOLERANCE",
           "held_spread_laplace", "whiten_held_spreads", "HELD_TARGET_ACCEPT"]

#: the largest number of unconstrained parameters whitened (a dense factor: K**2 flops a gradient)
MAX_DIMENSION = 400
#: the default target acceptance rate of a whitened fit (nearly standard normal: no need for nutpie's 0.99)
WHITENED_TARGET_ACCEPT = 0.9
#: the largest gradient at the mode, in posterior standard deviations (``max |L' g|``), taken as converged
MODE_TOLERANCE = 1e-2
#: the default target acceptance rate of a fit whitened with the pooled spreads held (no mode: the posterior is
#: curved where the data leave a group's parameters loose; at 0.9 the rectified fine-tuning spec's chains
#: disagree, max R-hat 1.02 at 4 x 1000 draws, and synthetic_to_real's diverge, docs/benchmarks.md)
HELD_TARGET_ACCEPT = 0.99
#: damped Newton steps polishing L-BFGS's mode
NEWTON_STEPS = 8
#: ``whiten`` settings of :func:`whiten_sampler` and ``bs.fit``
WHITEN_CHOICES = ("auto", "laplace", "none")

@dataclass
class Whitening:
    """The choice: ``method`` ``"laplace"`` (``x = shift + factor z``) or ``"none"``; ``reason`` in words;
    ``adaptation``: nutpie's mass-matrix adaptation to use on top."""

    method: str
    reason: str
    adaptation: str
    shift: np.ndarray | None = None
    factor: np.ndarray | None = None
    seconds: float = 0.0
    #: the default target acceptance rate of the fit when whitened (``bs.fit``'s ``target_accept=None``)
    target_accept: float = WHITENED_TARGET_ACCEPT

    def attrs(self) -> dict[str, str | float]:
        """``whitening``, ``whitening_reason``, ``adaptation`` and ``whitening_seconds`` (mode and Hessian)."""
        return {"whitening": self.method, "whitening_reason": self.reason, "adaptation": self.adaptation,
                "whitening_seconds": float(self.seconds)}


def laplace(logp_grad: LogpGrad, x0: np.ndarray, mask: np.ndarray | None = None) -> tuple:
    """The mode ``m``, the shear ``S`` and the factor ``L`` of the Laplace approximation (:func:`find_mode`,
    :func:`hessian_from_gradient`, :func:`inverse_hessian_factor`) and the reason in words, or
    ``(None, None, None, why not)``.

    L-BFGS stops on ``log p``; damped Newton steps ``x + t L L' g`` (``t`` = 1, 1/2, ..., 1/16, taken where ``log p``
    rises and the Hessian stays positive definite) then bring the gradient down on the posterior's own scale, to
    at most :data:`MODE_TOLERANCE` posterior standard deviations.

    ``mask`` marks log exponents ``l`` (``alpha = exp(l)``): the other coordinates are taken relative to their
    regression on ``alpha`` (not on ``l``), ``x = y + S expm1(mask (y - m))`` with ``S = Cov(x, l) Cov(l, l)^-1``
    in the columns of ``l`` (the Laplace covariance; 0 elsewhere), and ``L`` whitens ``y``. A coefficient and its
    exponent lie on the ridge ``log A - alpha log x_c = const`` (``x_c``: the data's centre), straight in
    ``alpha``, bent in ``l``; the shear straightens it, as the centred coefficients of the loss laws do."""
    m, lp, grad = find_mode(logp_grad, x0)
    if not np.isfinite(lp) or not np.all(np.isfinite(m)):
        return None, None, None, "no finite mode found"
    H = hessian_from_gradient(logp_grad, m)
    L = inverse_hessian_factor(H)
    for _ in range(NEWTON_STEPS):   # L-BFGS's tolerance is on log p, not on the gradient
        if L is None or np.max(np.abs(L.T @ grad)) <= 1e-3:
            break
        step = L @ (L.T @ grad)
        for t in (1.0, 0.5, 0.25, 0.125, 0.0625):
            x = m + t * step
            lp_x, grad_x = logp_grad(x)
            if np.isfinite(lp_x) and lp_x > lp and np.all(np.isfinite(grad_x)):
                break
        else:
            break
        H_x = hessian_from_gradient(logp_grad, x)
        L_x = inverse_hessian_factor(H_x)
        if L_x is None:
            break
        m, lp, grad, H, L = x, float(lp_x), np.asarray(grad_x, dtype=float), H_x, L_x
    if L is None:
        return None, None, None, "the Hessian at the mode is not positive definite (a ridge, a funnel or a boundary)"
    # the gradient must be small on the posterior's own scale (a mode, not a slope): within a fraction of a
    # posterior standard deviation of it, the factor whitens as well
    if np.max(np.abs(L.T @ grad)) > MODE_TOLERANCE:
        return None, None, None, "the optimiser did not converge to a mode"
    K = len(m)
    S = np.zeros((K, K))
    on = np.zeros(K, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if on.any() and not on.all():
        cov = L @ L.T
        S[:, on] = np.linalg.solve(cov[np.ix_(on, on)], cov[on, :]).T
        S[on, :] = 0.0
        J = np.eye(K) + S                    # dx/dy at the mode
        L = inverse_hessian_factor(J.T @ H @ J)
        if L is None:
            return None, None, None, "the Hessian at the mode is not positive definite after the shear"
    how = f", exponents sheared ({int(on.sum())})" if S.any() else ""
    return m, S, L, f"Laplace approximation at the mode ({K} unconstrained parameters{how})"


def whiten_sampler(sampler, whiten: str = "auto", exponents=()) -> Whitening:
    """Set the change of variables of a :class:`~bayes_scaling.inference.compiled.CompiledSampler` (its data
    already set) and return the choice (module docstring). ``whiten``: ``"auto"``, ``"laplace"`` (an error where
    the Laplace approximation is not defined) or ``"none"``. ``exponents``: names of the model's free variables
    that are log exponents (sheared, :func:`laplace`)."""
    if whiten not in WHITEN_CHOICES:
        raise ValueError(f"whiten must be one of {', '.join(WHITEN_CHOICES)}, got {whiten!r}")
    plain = "low_rank"
    if whiten == "none":
        return Whitening("none", "switched off (whiten='none')", plain)
    if not getattr(sampler, "affine", False):
        return Whitening("none", f"{sampler.n_dim} unconstrained parameters (whitened up to {MAX_DIMENSION})", plain)
    t0 = time.perf_counter()
    x0 = sampler.initial_point(0, jitter=False)
    sampler.set_affine(np.zeros(sampler.n_dim), np.eye(sampler.n_dim))   # z = x while the mode is sought
    mask = np.zeros(sampler.n_dim)
    for name, idx in sampler.value_indices().items():
        mask[idx] = float(name in set(exponents))
    with one_blas_thread():   # small matrices: BLAS threads only compete for the cores
        m, S, L, reason = laplace(sampler.logp_and_gradient(), x0, mask)
    if m is None:
        if whiten == "laplace":
            from bayes_scaling.errors import ConfigError

            raise ConfigError(f"whiten='laplace': {reason}; use whiten='auto' or 'none'")
        # the model's own coordinates (x = z, the same arithmetic as unwhitened), from its initial point
        sampler.set_affine(np.zeros(sampler.n_dim), np.eye(sampler.n_dim), start=x0)
        return Whitening("none", reason, plain, seconds=time.perf_counter() - t0)
    sampler.set_affine(m, L, S, mask * S.any(axis=0))
    return Whitening("laplace", reason, "diag", m, L, seconds=time.perf_counter() - t0)


#: the most alternations of the spreads' update and the conditional mode (:func:`held_spread_laplace`)
SPREAD_STEPS = 25
#: the change of each log spread below which :func:`held_spread_laplace`'s update has converged
SPREAD_TOLERANCE = 0.01


def held_spread_laplace(logp_grad: LogpGrad, x0: np.ndarray, pools: list[tuple[np.ndarray, int, int]]) -> tuple:
    """The Laplace factor of a centred hierarchy, which has no mode: ``(x, L, reason)``, or
    ``(None, None, why not)``. ``pools``: for each centred pooled parameter, the indices of its group values
    ``u[g] ~ Normal(mu, sigma)``, of ``mu`` and of ``log sigma`` in ``x``.

    The joint density grows without bound as a spread ``sigma -> 0`` with every ``u[g] = mu`` (the funnel's
    neck), so the spreads are held at their marginal (type-II) estimate, found by expectation-maximisation with a
    Laplace E-step: the mode ``m(sigma)`` of the other coordinates given the spreads, ``C`` the inverse of their
    Hessian there, then for each pool ::

        sigma**2 = mean_g [ (m_u[g] - m_mu)**2 + C[u_g, u_g] - 2 C[u_g, mu] + C[mu, mu] ]

    repeated until each ``log sigma`` moves by less than :data:`SPREAD_TOLERANCE`. ``x`` is that point and
    ``L L' = H^-1`` with ``H`` the Hessian of ``-log p`` in all coordinates there (the spreads included: it
    need not be a mode, only positive definite). Whitened with ``x`` and ``L``, NUTS samples the exact
    posterior; the approximation sets only its coordinates."""
    x = np.asarray(x0, dtype=float).copy()
    held = np.zeros(len(x), dtype=bool)
    for _, _, s in pools:
        held[s] = True
    free = np.flatnonzero(~held)
    pos = np.full(len(x), -1)
    pos[free] = np.arange(len(free))

    def conditional(y):
        full = x.copy()
        full[free] = y
        lp, g = logp_grad(full)
        return lp, np.asarray(g, dtype=float)[free]

    for _ in range(SPREAD_STEPS):
        y, lp, _ = find_mode(conditional, x[free])
        if not np.isfinite(lp) or not np.all(np.isfinite(y)):
            return None, None, "no finite mode found with the pooled spreads held"
        x[free] = y
        C_factor = inverse_hessian_factor(hessian_from_gradient(conditional, y))
        if C_factor is None:
            return None, None, "the Hessian with the pooled spreads held is not positive definite"
        C = C_factor @ C_factor.T
        moved = 0.0
        for u, mu, s in pools:
            iu, im = pos[np.asarray(u)], pos[mu]
            d = x[np.asarray(u)] - x[mu]
            var = np.diag(C)[iu] - 2 * C[iu, im] + C[im, im]
            new = 0.5 * np.log(max(float(np.mean(d**2 + var)), 1e-12))
            moved = max(moved, abs(new - x[s]))
            x[s] = new
        if moved < SPREAD_TOLERANCE:
            break
    else:
        return None, None, "the pooled spreads' estimate did not converge"
    y, lp, _ = find_mode(conditional, x[free])
    x[free] = y
    L = inverse_hessian_factor(hessian_from_gradient(logp_grad, x))
    if not np.isfinite(lp) or L is None:
        return None, None, "the Hessian at the pooled spreads' estimate is not positive definite"
    return x, L, (f"Laplace approximation with the pooled spreads held at their marginal estimate ({len(x)} "
                  f"unconstrained parameters, {len(pools)} centred pooled: the centred joint density has no mode)")


def whiten_held_spreads(sampler, pools: list[tuple[str, str, str]]) -> Whitening:
    """Whiten an affine sampler of a centred hierarchy by :func:`held_spread_laplace`, or leave it in the model's
    own coordinates (``method "none"``). ``pools``: the names of each centred pooled parameter's group values,
    location and spread (``ModelPlan.pools``)."""
    t0 = time.perf_counter()
    x0 = sampler.initial_point(0, jitter=False)
    n = sampler.n_dim
    sampler.set_affine(np.zeros(n), np.eye(n))
    where = sampler.value_indices()
    index = [(where[u], int(where[mu][0]), int(where[f"{s}_log__"][0])) for u, mu, s in pools
             if u in where and mu in where and f"{s}_log__" in where]
    if not index:
        return Whitening("none", "no centred pooled parameter", "low_rank", seconds=time.perf_counter() - t0)
    with one_blas_thread():
        x, L, reason = held_spread_laplace(sampler.logp_and_gradient(), x0, index)
    if x is None:
        sampler.set_affine(np.zeros(n), np.eye(n), start=x0)
        return Whitening("none", reason, "low_rank", seconds=time.perf_counter() - t0)
    sampler.set_affine(x, L)
    return Whitening("laplace", reason, "diag", x, L, seconds=time.perf_counter() - t0,
                     target_accept=HELD_TARGET_ACCEPT)


def whiten_spec_sampler(make_sampler: Callable[[dict[str, str]], Any], parameterization: dict[str, str],
                        attempts: list[dict[str, str]],
                        exponents_of: Callable[[dict[str, str]], list[str]],
                        whiten: str = "auto",
                        pools_of: Callable[[dict[str, str]], list[tuple[str, str, str]]] | None = None,
                        ) -> tuple[Any, dict[str, str], Whitening]:
    """The sampler of a law-spec fit, its parameterization of the pooled parameters and the whitening: the first
    of ``attempts`` (parameterizations, :func:`~bayes_scaling.models.spec_model.parameterizations_to_try`) whose Laplace approximation
    is defined (:func:`whiten_sampler`); else the model's own coordinates (``x = z``) in the data's
    ``parameterization``, the draws of ``whiten="none"``. ``make_sampler(parameterization)``: a compiled
    sampler, data set; ``exponents_of``: its log exponents. The reasons of the attempts that failed are kept in
    the choice's ``reason``. Where no attempt has a mode, the first with centred pooled parameters
    (``pools_of(parameterization)``: their group values', locations' and spreads' names) is whitened with the
    spreads held at their marginal estimate (:func:`whiten_held_spreads`) where that is defined.
    ``whiten="laplace"``: an error instead of the fallback; ``"none"``: the fallback alone. Every parameterization gives the same posterior of the law's parameters; only the geometry NUTS sees
    differs."""
    if whiten == "none":
        sampler = make_sampler(parameterization)
        return sampler, parameterization, whiten_sampler(sampler, "none")
    failed: list[str] = []
    seconds = 0.0
    for form in attempts:
        sampler = make_sampler(form)
        choice = whiten_sampler(sampler, "auto", exponents_of(form))
        seconds += choice.seconds
        if not getattr(sampler, "affine", False):        # too many dimensions: no whitening in any form
            sampler = make_sampler(parameterization)
            return sampler, parameterization, whiten_sampler(sampler, "auto")
        if choice.method == "laplace":
            changed = {k: v for k, v in form.items() if parameterization.get(k) != v}
            before = f"{'; '.join(failed)}; then " if failed else ""
            how = (f" with {', '.join(f'{k} {v}' for k, v in changed.items())} (the data's choice: "
                   f"{', '.join(f'{k} {parameterization[k]}' for k in changed)})" if changed else "")
            choice.reason = f"{before}{choice.reason}{how}"
            choice.seconds = seconds
            return sampler, form, choice
        form_text = ", ".join(f"{k} {v}" for k, v in form.items()) or "as specified"
        failed.append(f"{form_text}: {choice.reason}")
    for form in attempts if pools_of is not None else []:
        pools = pools_of(form)
        if not pools:
            continue
        sampler = make_sampler(form)
        choice = whiten_held_spreads(sampler, pools)
        seconds += choice.seconds
        if choice.method == "laplace":
            changed = {k: v for k, v in form.items() if parameterization.get(k) != v}
            how = (f" with {', '.join(f'{k} {v}' for k, v in changed.items())} (the data's choice: "
                   f"{', '.join(f'{k} {parameterization[k]}' for k in changed)})" if changed else "")
            choice.reason = f"{'; '.join(failed)}; then {choice.reason}{how}"
            choice.seconds = seconds
            return sampler, form, choice
        failed.append(f"spreads held: {choice.reason}")
        break
    if whiten == "laplace":
        from bayes_scaling.errors import ConfigError

        raise ConfigError(f"whiten='laplace': {'; '.join(failed)}; use whiten='auto' or 'none'")
    sampler = make_sampler(parameterization)
    sampler.set_affine(np.zeros(sampler.n_dim), np.eye(sampler.n_dim), start=sampler.initial_point(0, jitter=False))
    return sampler, parameterization, Whitening("none", "; ".join(failed), "low_rank", seconds=seconds)


def compiled_sampler(model, log_likelihood: bool = True):
    """A :class:`~bayes_scaling.inference.compiled.CompiledSampler` of ``model``, in the affine form when it has
    at most :data:`MAX_DIMENSION` unconstrained parameters (then :func:`whiten_sampler` can whiten it)."""
    from bayes_scaling.inference.compiled import CompiledSampler, _initial_point_fn

    ip = _initial_point_fn(model)()
    n_dim = sum(int(np.size(v)) for v in ip.values())
    return CompiledSampler(model, log_likelihood=log_likelihood, affine=n_dim <= MAX_DIMENSION)
