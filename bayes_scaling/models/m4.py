"""The M4 learning-curve law (Alabdulmohsin et al. 2022) sampled in a basis where its posterior is nearly normal.

The law is the built-in spec's equation (``m4``, ``m4_error_rate``; written there once, solved by
:class:`~bayes_scaling.laws.expr.Equation`)::

    (L - L_inf) / (L_0 - L)**alpha = beta * x**c          (c < 0, alpha > 0, 0 < L_inf < L_0)

Its natural parameters are a hard geometry for NUTS: ``log beta`` and ``c`` move together (``beta x**c`` at
x ~ 1e8 is pinned, so ``d log beta = -log(x) dc``, a correlation near -1), a proposal with ``L_inf >= L_0``
has no root (the sampler rejects it: divergences), and where ``alpha`` is small the data barely fix ``L_0``,
which in any basis that scales ``L_inf`` with ``L_0`` drags the well-fixed floor along (a funnel). The sampler
here works on what the data fix, the curve at the centre of its data, ``x_ref`` (the geometric mean of the
fitted x)::

    u = (u_ref, u_inf, u_0, u_alpha, u_g, u_sigma)
    L_ref = sigmoid(u_ref) [m4_error_rate] or exp(u_ref) [m4]       the law's value at x_ref
    L_inf = L_ref sigmoid(u_inf)                                     below L_ref
    L_0   = L_ref + (1 - L_ref) sigmoid(u_0) [unit] or L_ref (1 + exp(u_0))   above L_ref (below 1)
    alpha = exp(u_alpha),   g = exp(u_g) = -d log L / d log x at x_ref,   sigma = exp(u_sigma)

with ``c`` and ``beta`` from the equation at ``x_ref`` (:func:`natural`). Every ``u`` is a valid law
(``0 < L_inf < L_ref < L_0``, ``c < 0``: no rejected proposals), and at small ``alpha`` a loose ``L_0`` moves
nothing else. The map to the spec's unconstrained scales has a closed-form log-Jacobian
(:func:`log_jacobian`), so the posterior is the spec's (its priors,
:func:`~bayes_scaling.models.spec_model.default_priors`, restricted to ``L_inf < L_0``), and NUTS samples ``z``
with ``u = m + R z`` (Laplace whitening: ``m`` the posterior mode, ``R R'`` the inverse Hessian there), started
from a least-squares fit of the law (:func:`least_squares_fit`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_scaling.errors import ConfigError
from bayes_scaling.laws.expr import Equation
from bayes_scaling.laws.spec import LawSpec

__all__ = ["M4_EQUATION", "BASIS", "ILLINOIS_STEPS", "NEWTON_STEPS", "is_m4", "check_m4", "solve", "natural", "log_jacobian", "to_basis",
           "least_squares_fit", "build_m4_model", "m4_data_values"]

#: The M4 equation as the built-in specs write it (``Equation.text``) and its bracket.
M4_EQUATION = "(L - L_inf) / (L_0 - L)**alpha = beta * x**c"
_BRACKET = ("L_inf", "L_0")
#: The sampling basis, in order.
BASIS = ("u_ref", "u_inf", "u_0", "u_alpha", "u_g", "u_sigma")
_LAW = ("L_inf", "L_0", "alpha", "beta", "c")
#: Regula falsi (Illinois) steps of :func:`solve`, then Newton steps (the last one carries the gradient).
ILLINOIS_STEPS = 8
NEWTON_STEPS = 2
#: :func:`solve` keeps ``|t|`` below this (the root within 1e-13 of either end, relative to the bracket).
_T_MAX = 30.0


def is_m4(spec: LawSpec) -> bool:
    """Whether ``spec`` is the M4 law of one learning curve in the form this module samples: the equation and
    bracket of the built-in specs, every parameter shared and free, ``c`` negative, ``alpha``, ``beta``,
    ``L_inf`` positive, ``L_0`` positive or in (0, 1), and a normal likelihood."""
    eq = spec.formula
    if not isinstance(eq, Equation) or eq.text != M4_EQUATION or tuple(b.text for b in eq.bracket) != _BRACKET:
        return False
    if set(spec.parameters) != set(_LAW) or spec.family != "normal":
        return False
    ps = spec.parameters
    if any(p.by is not None or p.fixed is not None for p in ps.values()):
        return False
    return (ps["c"].domain == "negative" and all(ps[n].domain == "positive" for n in ("L_inf", "alpha", "beta"))
            and ps["L_0"].domain in ("positive", "unit"))


def check_m4(spec: LawSpec) -> None:
    """A :class:`ConfigError` saying what differs when ``spec`` is not :func:`is_m4`."""
    if not is_m4(spec):
        raise ConfigError(f"spec {spec.name!r} is not the one-curve M4 law this sampler handles: it needs the "
                          f"equation {M4_EQUATION!r} with bracket [L_inf, L_0], parameters L_inf, L_0, alpha, "
                          "beta (positive), c (negative), all shared (no by, no fixed), L_0 positive or unit, "
                          "and a normal likelihood; fit other forms with bayes_scaling.fit")


_DETACH = None


def _detach(x):
    """``x`` with no gradient path to its inputs (PyTensor): an identity Op whose output is disconnected from its
    input. PyMC's log-density rewrites drop PyTensor's own ``disconnected_grad`` (a ViewOp) before the gradient
    is taken, which let the gradient run back through every regula-falsi step (more work per gradient, and NaN where a
    step's bracket end is exactly at ``L_0``: divergences at small ``alpha``); this Op is kept."""
    global _DETACH
    if _DETACH is None:
        _DETACH = _make_detach()
    return _DETACH(x)


def _make_detach():
    import pytensor.tensor as pt
    from pytensor.gradient import DisconnectedType
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class Detach(Op):
        __props__ = ()

        def make_node(self, x):
            x = pt.as_tensor_variable(x)
            return Apply(self, [x], [x.type()])

        def perform(self, node, inputs, outputs):
            outputs[0][0] = np.array(inputs[0], copy=True)

        def connection_pattern(self, node):
            return [[False]]

        def grad(self, inputs, output_grads):
            return [DisconnectedType()()]

        def infer_shape(self, *args):                # (node, shapes); older PyTensor: (fgraph, node, shapes)
            return args[-1]

    try:
        from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

        @register_funcify_default_op_cache_key(Detach)
        def _numba_detach(op, node, **kwargs):
            @numba_njit
            def detach(x):
                return x.copy()

            return detach
    except ImportError:       # no Numba back end: the C and Python back ends call perform
        pass
    Detach.__module__ = __name__
    Detach.__qualname__ = "Detach"
    return Detach()


def _sigmoid(t, m):
    if m is np:
        from scipy.special import expit

        return expit(t)
    return m.sigmoid(t)


def _bracketed_root(G, zero, m):
    """``t`` near the root of ``G`` (increasing) in ``[-T, T]`` (``T`` = :data:`_T_MAX`): the Illinois variant
    of regula falsi (superlinear, one evaluation of ``G`` a step, never leaves its bracket) for
    :data:`ILLINOIS_STEPS` steps, from the bracket ``[0, T]`` or ``[-T, 0]`` that holds the sign change."""
    g0, g_lo, g_hi = G(zero), G(zero - _T_MAX), G(zero + _T_MAX)
    left = g0 > 0
    a, ga = zero, g0
    b, gb = m.where(left, zero - _T_MAX, zero + _T_MAX), m.where(left, g_lo, g_hi)
    for _ in range(ILLINOIS_STEPS):
        den = gb - ga
        ok = m.isfinite(den) & ((den > 0) | (den < 0))
        c = m.where(ok, (a * gb - b * ga) / m.where(ok, den, 1.0), 0.5 * (a + b))
        gc = G(c)
        flip = gc * gb < 0                   # the root lies between b and c: a takes b's place
        a, ga = m.where(flip, b, a), m.where(flip, gb, 0.5 * ga)
        b, gb = c, gc
    return m.clip(b, -_T_MAX, _T_MAX)


def solve(spec: LawSpec, values: dict[str, Any], m=np):
    """The root in the target of the spec's equation ``lhs = rhs`` within its bracket ``(a, b)``, on NumPy
    arrays or PyTensor tensors (``m``), found in ``t = logit((L - a) / (b - a))`` for
    ``G(t) = log lhs - log rhs``: :data:`ILLINOIS_STEPS` steps of regula falsi (Illinois) within
    ``|t| <= 30``, then :data:`NEWTON_STEPS` Newton steps. NaN where ``b <= a``.

    For M4, with ``s = (L - L_inf) / (L_0 - L_inf)``, ``G = log s - alpha log(1 - s) + const``: increasing in
    ``t`` and nearly piecewise linear (slope 1 for ``t << 0``, ``alpha`` for ``t >> 0``), so regula falsi closes
    in fast and Newton ends it (within 1e-9 on log L for roots 1e-12 to 1 - 1e-9 of the way across the
    bracket and alpha 0.01 to 5: tests/laws/test_laws_implicit.py; the generic bisection of
    :class:`~bayes_scaling.laws.expr.Equation` takes 60 steps). PyTensor: every step is cut from the gradient
    except the last Newton step, so the derivative is the implicit-function theorem's,
    ``dt/dtheta = -G_theta / G_t``. The equation's sides are the spec's (one formula)."""
    eq = spec.formula
    backend = "numpy" if m is np else "pytensor"
    a, b = eq.ends(values, backend)

    def G(t):
        L = a + (b - a) * _sigmoid(t, m)
        vals = {**values, eq.target: L}
        return m.log(eq.lhs.evaluate(vals, backend)) - m.log(eq.rhs.evaluate(vals, backend))

    if m is np:
        with np.errstate(all="ignore"):
            t = _bracketed_root(G, np.zeros(np.broadcast_shapes(*(np.shape(v) for v in (a, b, G(0.0))))), np)
            for _ in range(NEWTON_STEPS):
                g, slope = G(t), (G(t + 1e-3) - G(t - 1e-3)) / 2e-3     # a step that survives rounding near an end
                t = np.clip(t - np.where(np.isfinite(slope) & (slope > 0), g / slope, 0.0), -_T_MAX, _T_MAX)
            L = a + (b - a) * _sigmoid(t, np)
            return np.where(b > a, L, np.nan)
    import pytensor.tensor as pt

    t = _bracketed_root(G, pt.zeros_like(a + b + G(pt.as_tensor(0.0))), pt)
    for k in range(NEWTON_STEPS):
        t = _detach(t)
        g = G(t)
        slope = _detach(pt.grad(pt.sum(g), t))
        usable = pt.isfinite(slope) & (slope > 0)
        step = pt.where(usable, g / pt.where(usable, slope, 1.0), 0.0)
        t = t - step if k == NEWTON_STEPS - 1 else pt.clip(t - step, -_T_MAX, _T_MAX)
    return pt.where(b > a, a + (b - a) * pt.sigmoid(t), np.nan)


def _log_sigmoid(t, m):
    return -m.log1p(m.exp(-t)) if m is np else -m.softplus(-t)


def natural(u, log_x_ref: float, unit_l0: bool, m=np) -> dict[str, Any]:
    """The law's parameters and ``sigma`` from the basis ``u`` (a sequence of six, NumPy or PyTensor ``m``):
    the law's value ``L_ref`` and log-slope ``-g`` at ``x_ref`` fix ``beta`` and ``c`` (module docstring)::

        c = -g L_ref (1 / (L_ref - L_inf) + alpha / (L_0 - L_ref))      (d log L / d log x = -g at x_ref)
        log beta = log(L_ref - L_inf) - alpha log(L_0 - L_ref) - c log x_ref   (the equation at x_ref)
    """
    u_ref, u_inf, u_0, u_alpha, u_g, u_sigma = (u[i] for i in range(6))
    if unit_l0:
        L_ref = _sigmoid(u_ref, m)
        gap0 = (1 - L_ref) * _sigmoid(u_0, m)                    # L_0 - L_ref, so that L_0 < 1
    else:
        L_ref = m.exp(u_ref)
        gap0 = L_ref * m.exp(u_0)
    gap_inf = L_ref * _sigmoid(-u_inf, m)                        # L_ref - L_inf
    alpha = m.exp(u_alpha)
    c = -m.exp(u_g) * L_ref * (1 / gap_inf + alpha / gap0)
    return {"L_0": L_ref + gap0, "L_inf": L_ref * _sigmoid(u_inf, m), "alpha": alpha,
            "beta": m.exp(m.log(gap_inf) - alpha * m.log(gap0) - c * log_x_ref), "c": c,
            "sigma": m.exp(u_sigma), "L_ref": L_ref}


def log_jacobian(u, log_x_ref: float, unit_l0: bool, m=np):
    """``log |d theta / d u|`` of :func:`natural`, ``theta`` the spec's unconstrained scales
    ``(logit L_0 or log L_0, log L_inf, log alpha, log beta, log(-c))``: triangular through
    ``(u_ref, log L_inf, logit/log L_0, log alpha, log(-c))``, whose diagonal is ``sigmoid(-u_inf)``, the
    derivative of L_0's scale in ``u_0``, 1, 1; then ``u_ref -> log beta`` at the others fixed,
    ``dL_ref/du_ref (1 / (L_ref - L_inf) + alpha / (L_0 - L_ref))``. ``sigma = exp(u_sigma)`` not included."""
    th = natural(u, log_x_ref, unit_l0, m)
    L_ref, L_0, u_0, u_inf = th["L_ref"], th["L_0"], u[2], u[1]
    gap0, gap_inf = L_0 - L_ref, L_ref - th["L_inf"]
    if unit_l0:
        d_ref = m.log(L_ref) + m.log1p(-L_ref)
        d_0 = _log_sigmoid(u_0, m) - m.log(L_0)                  # d logit(L_0) / d u_0
    else:
        d_ref = m.log(L_ref)
        d_0 = _log_sigmoid(u_0, m)                               # d log L_0 / d u_0
    return _log_sigmoid(-u_inf, m) + d_0 + d_ref + m.log(1 / gap_inf + th["alpha"] / gap0)


def to_basis(theta: dict[str, float], log_x_ref: float, unit_l0: bool, spec: LawSpec) -> np.ndarray:
    """The inverse of :func:`natural` (NumPy): ``L_ref`` by :func:`solve` of the spec's equation at ``x_ref``."""
    th = {k: float(theta[k]) for k in _LAW}
    if unit_l0:
        th["L_0"] = min(th["L_0"], 1 - 1e-9)
    th["L_inf"] = min(th["L_inf"], th["L_0"] * (1 - 1e-9))
    L_ref = float(solve(spec, {**th, "x": np.exp(log_x_ref)}))
    L_ref = min(max(L_ref, th["L_inf"] + 1e-12 * th["L_0"]), th["L_0"] * (1 - 1e-12))
    gap0, gap_inf = th["L_0"] - L_ref, L_ref - th["L_inf"]
    g = -th["c"] / (L_ref * (1 / gap_inf + th["alpha"] / gap0))
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    return np.array([logit(L_ref) if unit_l0 else np.log(L_ref), np.log(th["L_inf"]) - np.log(gap_inf),
                     logit(gap0 / (1 - L_ref)) if unit_l0 else np.log(gap0 / L_ref), np.log(th["alpha"]),
                     np.log(g), np.log(float(theta["sigma"]))])


def _on_scale(y, spec: LawSpec, m=np):
    return m.log(y) if spec.scale == "log" else y


def least_squares_fit(spec: LawSpec, x: np.ndarray, y: np.ndarray, *, starts: int = 8,
                      seed: int = 0) -> dict[str, float]:
    """A least-squares fit of the law (scipy, trust-region reflective) on the likelihood's scale, in the
    sampling basis (so every step is a valid law: ``c < 0``, ``0 < L_inf < L_0``, ``L_0 < 1`` for an error
    rate), multi-start from a seeded set of points; ``sigma`` is the residuals' root mean square. The law's
    values come from the spec's equation."""
    from scipy.optimize import least_squares

    unit = spec.parameters["L_0"].domain == "unit"
    x, y = np.asarray(x, float), np.asarray(y, float)
    log_x_ref = float(np.mean(np.log(x)))
    target = _on_scale(y, spec)
    rng = np.random.default_rng(seed)

    def resid(v):
        with np.errstate(all="ignore"):
            th = natural(np.append(v, 0.0), log_x_ref, unit)
            f = solve(spec, {"x": x, **{k: th[k] for k in _LAW}})
            r = _on_scale(np.asarray(f, float), spec) - target
        return np.where(np.isfinite(r), r, 1e3)

    lo, hi = float(np.min(y)), float(np.max(y))
    best, best_cost = None, np.inf
    for k in range(starts):
        L_0 = min(0.999, hi * (1.05 if k == 0 else rng.uniform(1.0, 1.6))) if unit else hi * (
            1.05 if k == 0 else rng.uniform(1.0, 2.0))
        L_inf = lo * (0.9 if k == 0 else rng.uniform(0.2, 0.99))
        L_inf = min(L_inf, 0.95 * L_0)
        c = -(0.5 if k == 0 else rng.uniform(0.05, 1.5))
        alpha = 0.5 if k == 0 else float(np.exp(rng.uniform(np.log(0.05), np.log(3.0))))
        # the power law's level at x_ref from the data near it: (L - L_inf) / (L_0 - L)**alpha there
        mid = float(np.median(y))
        level = max(mid - L_inf, 1e-6 * mid) / max(L_0 - mid, 1e-6) ** alpha
        v0 = to_basis({"L_0": L_0, "L_inf": L_inf, "alpha": alpha, "beta": level * np.exp(-c * log_x_ref),
                       "c": c, "sigma": 1.0}, log_x_ref, unit, spec)[:5]
        try:
            res = least_squares(resid, v0, method="trf", max_nfev=400, x_scale="jac")
        except (ValueError, FloatingPointError):
            continue
        if res.cost < best_cost and np.all(np.isfinite(res.x)):
            best, best_cost = res.x, res.cost
    if best is None:
        raise ConfigError("the least-squares fit of the M4 law found no finite solution on these data")
    th = natural(np.append(best, 0.0), log_x_ref, unit)
    out = {k: float(th[k]) for k in _LAW}
    out["sigma"] = float(np.sqrt(2 * best_cost / len(y))) or 1e-6
    return out


def build_m4_model(spec: LawSpec, n: int):
    """The PyMC model of ``n`` points of one learning curve in the whitened basis (module docstring): free
    variable ``basis_z`` (flat), ``u = m + R z``; the spec's priors on their unconstrained scales with the
    Jacobian of the basis; the law's value from the spec's equation; its parameters and ``sigma`` as
    Deterministics (the names of :class:`~bayes_scaling.inference.fit.Fit`). Every number that depends on the
    data (x, the target, ``x_ref``, the priors, ``m``, ``R``) is ``pm.Data``: one compiled model serves every
    curve (:func:`m4_data_values`)."""
    import pymc as pm
    import pytensor.tensor as pt

    check_m4(spec)
    unit = spec.parameters["L_0"].domain == "unit"
    with pm.Model(coords={"row": np.arange(n), "basis": list(BASIS)}) as model:
        x = pm.Data("x", np.ones(n), dims="row")
        obs = pm.Data("observed__" + spec.target, np.zeros(n), dims="row")
        log_x_ref = pm.Data("log_x_ref", 0.0)
        m = pm.Data("whiten_m", np.zeros(6))
        R = pm.Data("whiten_R", np.eye(6))
        loc = {k: pm.Data(f"prior__{k}__loc", 0.0) for k in _LAW}
        scale = {k: pm.Data(f"prior__{k}__scale", 1.0) for k in _LAW}
        noise = pm.Data("prior__sigma__scale", 1.0)
        z = pm.Flat("basis_z", dims="basis")
        u = m + pt.dot(R, z)
        th = natural([u[i] for i in range(6)], log_x_ref, unit, pt)
        # the spec's unconstrained scales (log; logit for a unit L_0; log(-c)), their normal priors, the Jacobian
        logit_l0 = (pt.log(th["L_0"]) - pt.log1p(-th["L_ref"]) - _log_sigmoid(-u[2], pt)) if unit else pt.log(th["L_0"])
        s = {"L_0": logit_l0, "L_inf": pt.log(th["L_inf"]), "alpha": u[3], "beta": pt.log(th["beta"]),
             "c": pt.log(-th["c"])}
        logp = sum(pm.logp(pm.Normal.dist(loc[k], scale[k]), s[k]) for k in _LAW)
        logp += log_jacobian([u[i] for i in range(6)], log_x_ref, unit, pt)
        logp += pm.logp(pm.HalfNormal.dist(noise), th["sigma"]) + u[5]  # sigma = exp(u_sigma)
        pm.Potential("prior", logp)
        for k in (*_LAW, "sigma"):
            pm.Deterministic(k, th[k])
        f = solve(spec, {"x": x, **{k: th[k] for k in _LAW}}, pt)
        pm.Normal(spec.target, mu=_on_scale(f, spec, pt), sigma=th["sigma"], observed=obs, dims="row")
    return model


def m4_data_values(spec: LawSpec, x: np.ndarray, y: np.ndarray, priors: dict[str, tuple[float, float]],
                   noise: float, m: np.ndarray | None = None, R: np.ndarray | None = None) -> dict[str, Any]:
    """The ``pm.Data`` values of :func:`build_m4_model` for one curve (``m, R``: identity whitening if None)."""
    vals: dict[str, Any] = {"x": np.asarray(x, float), "observed__" + spec.target: _on_scale(np.asarray(y, float), spec),
                            "log_x_ref": float(np.mean(np.log(x))), "prior__sigma__scale": float(noise),
                            "whiten_m": np.zeros(6) if m is None else np.asarray(m, float),
                            "whiten_R": np.eye(6) if R is None else np.asarray(R, float)}
    for k in _LAW:
        vals[f"prior__{k}__loc"], vals[f"prior__{k}__scale"] = (float(v) for v in priors[k])
    return vals
