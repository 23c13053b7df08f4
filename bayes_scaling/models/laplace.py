"""The Laplace approximation's numerics: the posterior mode, the Hessian there and its inverse's Cholesky factor.

``x ~ Normal(m, H^-1)`` with ``m`` the mode of ``log p`` and ``H`` the Hessian of ``-log p`` at ``m``; ``L L' = H^-1``.
Used by the loss laws' whitening (:func:`bayes_scaling.models.losslaws.laplace_whitening`) and by the spec
engine's (:mod:`bayes_scaling.inference.whiten`); plain NumPy/SciPy, below both.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["MAX_CONDITION", "LogpGrad", "find_mode", "hessian_from_gradient", "inverse_hessian_factor"]

#: the largest condition number of the Hessian at the mode that is whitened (beyond: a ridge or a boundary)
MAX_CONDITION = 1e12

LogpGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


def find_mode(logp_grad: LogpGrad, x0: np.ndarray, restarts: int = 3) -> tuple[np.ndarray, float, np.ndarray]:
    """The maximum of ``log p`` by L-BFGS from ``x0`` (restarted up to ``restarts`` times from where it stopped):
    ``(x, log p(x), gradient there)``. Non-finite values count as ``-inf`` (the optimiser backs off)."""
    from scipy.optimize import minimize

    cache: dict = {}

    def both(x):
        key = x.tobytes()
        if key not in cache:
            cache.clear()
            try:
                lp, g = logp_grad(x)
            except (ValueError, FloatingPointError, ArithmeticError):
                lp, g = -np.inf, np.zeros_like(x)
            cache[key] = (float(lp), np.asarray(g, dtype=float))
        return cache[key]

    def f(x):
        v = -both(x)[0]
        return v if np.isfinite(v) else 1e300

    def g(x):
        grad = -both(x)[1]
        return np.where(np.isfinite(grad), grad, 0.0)

    x = np.asarray(x0, dtype=float).copy()
    for _ in range(restarts):
        res = minimize(f, x, jac=g, method="L-BFGS-B")
        if np.allclose(res.x, x, atol=1e-8):
            break
        x = res.x
    lp, grad = both(x)
    return x, lp, grad


def hessian_from_gradient(logp_grad: LogpGrad, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """The Hessian of ``-log p`` at ``x`` by central differences of the gradient (``2 K`` calls), symmetrised."""
    K = len(x)
    H = np.empty((K, K))
    for i in range(K):
        h = step * (1.0 + abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        H[:, i] = -(np.asarray(logp_grad(up)[1], dtype=float) - np.asarray(logp_grad(down)[1], dtype=float)) / (2 * h)
    return 0.5 * (H + H.T)


def inverse_hessian_factor(H: np.ndarray, clip: bool = False) -> np.ndarray | None:
    """Lower-triangular ``L`` with ``L L' = H^-1`` (the Laplace covariance's Cholesky factor). Where ``H`` is not
    positive definite with a condition number below :data:`MAX_CONDITION`: ``None``. With ``clip`` always a factor:
    the eigenvalues raised to at least ``1e-8`` of the largest (non-finite ``H``: the identity)."""
    H = 0.5 * (np.asarray(H, dtype=float) + np.asarray(H, dtype=float).T)
    K = len(H)
    if not np.all(np.isfinite(H)):
        return np.eye(K) if clip else None
    vals, vecs = np.linalg.eigh(H)
    if clip:
        vals = np.clip(vals, 1e-8 * max(vals.max(), 1e-12) + 1e-12, None)
    elif vals.min() <= 0 or vals.max() > MAX_CONDITION * vals.min():
        return None
    cov = (vecs / vals) @ vecs.T
    return np.linalg.cholesky(0.5 * (cov + cov.T))
