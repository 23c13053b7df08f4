"""The scaling laws, each written once.

Every function here works on numpy arrays (predictions, plots) *and* on PyTensor tensors (the PyMC models),
so the sampler, the predictions and the figures all evaluate the same formula.

Notation follows Hernandez et al. (2021) and Kaplan et al. (2020):

- ``N``: non-embedding parameters; ``D_F``: fine-tuning data; ``D_E``: effective data;
  ``D_T = D_E - D_F``: effective data transferred.
- Transfer law (low-data regime): ``D_T = k * D_F**alpha * N**beta``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_scaling.errors import ConfigError

__all__ = [
    "log_transfer",
    "log_k_from_centre",
    "transfer",
    "effective_data",
    "multiplier",
    "transfer_fraction",
    "exchange_rate",
    "crossover",
    "chinchilla_loss",
    "chinchilla_inverse",
    "kaplan_loss",
    "kaplan_inverse",
    "training_compute",
    "data_for_compute",
    "chinchilla_optimal_N",
    "chinchilla_optimal_exponent",
    "isoflop_parabola",
    "observation_noise",
    "LOSS_LAWS",
    "LAW_PARAMETERS",
    "law_loss",
    "law_inverse",
    "converged_data",
]


def _math(*xs: Any):
    """numpy, or pytensor.tensor when any argument is a PyTensor variable."""
    for x in xs:
        if type(x).__module__.startswith("pytensor"):
            import pytensor.tensor as pt

            return pt
    return np


def log_transfer(log_k, alpha, beta, log_D_F, log_N):
    """Natural log of the effective data transferred.

    ``log D_T = log k + alpha * log D_F + beta * log N``

    With ``log_D_F`` and ``log_N`` measured from a reference point (``log D_F - log D_F0``), ``log_k`` is
    ``log D_T`` at that point: the models use this to centre their predictors.

    >>> round(float(np.exp(log_transfer(np.log(1.9e4), 0.18, 0.38, np.log(3e5), np.log(4e7)))))
    142369914
    """
    return log_k + alpha * log_D_F + beta * log_N


def log_k_from_centre(a, alpha, beta, c_F, c_N):
    """``log k`` from ``a``, the log effective data transferred at the centre ``(c_F, c_N)`` of log D_F and
    log N (what the models sample): ``log k = a - alpha * c_F - beta * c_N``.

    >>> round(log_k_from_centre(log_transfer(1.5, 0.2, 0.4, 3.0, 5.0), 0.2, 0.4, 3.0, 5.0), 12)
    1.5
    """
    return log_transfer(a, alpha, beta, -c_F, -c_N)


def transfer(D_F, N, k, alpha, beta):
    """Effective data transferred, ``D_T = k * D_F**alpha * N**beta``.

    >>> f"{transfer(3e5, 4e7, 1.9e4, 0.18, 0.38):.3e}"
    '1.424e+08'
    """
    m = _math(D_F, N, k, alpha, beta)
    return m.exp(log_transfer(m.log(k), alpha, beta, m.log(D_F), m.log(N)))


def effective_data(D_F, N, k, alpha, beta):
    """Effective data, ``D_E = D_F + D_T = D_F + k * D_F**alpha * N**beta``."""
    return D_F + transfer(D_F, N, k, alpha, beta)


def multiplier(D_F, N, k, alpha, beta):
    """Effective-data multiplier, ``D_E / D_F = 1 + k * D_F**(alpha - 1) * N**beta``.

    >>> round(float(multiplier(3e5, 4e7, 1.9e4, 0.18, 0.38)), 1)   # text -> Python, Table 1
    475.6
    """
    return effective_data(D_F, N, k, alpha, beta) / D_F


def transfer_fraction(D_F, N, k, alpha, beta):
    """Fraction of effective data that comes from transfer, ``D_T / D_E = 1 / (1 + D_F / D_T)``."""
    return 1.0 / (1.0 + D_F / transfer(D_F, N, k, alpha, beta))


def exchange_rate(alpha, beta, C=100.0):
    """Model-size factor worth a factor ``C`` more fine-tuning data: ``C**(alpha / beta)``.

    >>> round(float(exchange_rate(0.18, 0.38, 100.0)), 1)
    8.9
    """
    return C ** (alpha / beta)


def crossover(k_1, alpha_1, k_2, alpha_2):
    """Fine-tuning data size where two transfer curves with a shared beta cross:
    ``D_F* = (k_2 / k_1) ** (1 / (alpha_1 - alpha_2))``.

    >>> f"{crossover(1.9e4, 0.18, 2.1e5, 0.096):.2e}"
    '2.64e+12'
    """
    return (k_2 / k_1) ** (1.0 / (alpha_1 - alpha_2))


# --- from-scratch loss laws -------------------------------------------------------------------------------


def chinchilla_loss(N, D, E, A, B, alpha_N, alpha_D):
    """Chinchilla (Hoffmann et al. 2022): ``L(N, D) = E + A / N**alpha_N + B / D**alpha_D``."""
    return E + A * N ** (-alpha_N) + B * D ** (-alpha_D)


def chinchilla_inverse(loss, N, E, A, B, alpha_N, alpha_D):
    """Data ``D`` a model of size ``N`` needs to reach ``loss`` under the Chinchilla law:
    ``D = (B / (L - E - A / N**alpha_N)) ** (1 / alpha_D)``; ``inf`` where the loss is unreachable."""
    m = _math(loss, N, E, A, B, alpha_N, alpha_D)
    gap = loss - E - A * N ** (-alpha_N)
    if m is np:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0, (B / np.where(gap > 0, gap, 1.0)) ** (1.0 / alpha_D), np.inf)
    return m.switch(gap > 0, (B / m.switch(gap > 0, gap, 1.0)) ** (1.0 / alpha_D), np.inf)


def kaplan_loss(N, D, N_c, D_c, alpha_N, alpha_D):
    """Kaplan et al. (2020): ``L(N, D) = [(N_c / N)**(alpha_N / alpha_D) + D_c / D]**alpha_D``."""
    return ((N_c / N) ** (alpha_N / alpha_D) + D_c / D) ** alpha_D


def kaplan_inverse(loss, N, N_c, D_c, alpha_N, alpha_D):
    """Data ``D`` a model of size ``N`` needs to reach ``loss`` under the Kaplan law:
    ``D = D_c / (L**(1/alpha_D) - (N_c/N)**(alpha_N/alpha_D))``; ``inf`` where the loss is unreachable."""
    m = _math(loss, N, N_c, D_c, alpha_N, alpha_D)
    gap = loss ** (1.0 / alpha_D) - (N_c / N) ** (alpha_N / alpha_D)
    if m is np:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0, D_c / np.where(gap > 0, gap, 1.0), np.inf)
    return m.switch(gap > 0, D_c / m.switch(gap > 0, gap, 1.0), np.inf)


# --- compute ----------------------------------------------------------------------------------------------


def training_compute(N, D):
    """Training compute in FLOPs, ``C = 6 * N * D`` (Kaplan et al. 2020; Chinchilla).

    >>> f"{training_compute(7e10, 1.4e12):.2e}"
    '5.88e+23'
    """
    return 6.0 * N * D


def data_for_compute(C, N):
    """Training data that compute ``C`` buys a model of size ``N``: ``D = C / (6 N)`` (inverts
    :func:`training_compute`; by symmetry also the ``N`` that ``C`` allows with ``D`` tokens).

    >>> f"{data_for_compute(5.88e23, 7e10):.2e}"
    '1.40e+12'
    """
    return C / (6.0 * N)


def chinchilla_optimal_N(C, A, B, alpha_N, alpha_D):
    """Compute-optimal model size under the Chinchilla law with ``D = C / (6 N)`` (Hoffmann et al. 2022, eq. 4):
    ``N_opt = G * (C / 6)**(b / (a + b))``, ``G = (a A / (b B))**(1 / (a + b))``, ``a = alpha_N``, ``b = alpha_D``.

    >>> f"{chinchilla_optimal_N(5.76e23, 482.0, 2085.0, 0.348, 0.366):.3g}"   # Epoch's fit, Chinchilla's budget
    '7.23e+10'
    """
    G = (alpha_N * A / (alpha_D * B)) ** (1.0 / (alpha_N + alpha_D))
    return G * (C / 6.0) ** chinchilla_optimal_exponent(alpha_N, alpha_D)


def chinchilla_optimal_exponent(alpha_N, alpha_D):
    """The compute-optimal exponent ``a`` of ``N_opt ~ C**a`` under the Chinchilla law with ``C = 6 N D``
    (Hoffmann et al. 2022, eq. 4): ``a = alpha_D / (alpha_N + alpha_D)``; ``D_opt ~ C**(1 - a)``.

    >>> f"{chinchilla_optimal_exponent(0.348, 0.366):.3f}"   # Epoch AI's fit of the Chinchilla runs
    '0.513'
    """
    return alpha_D / (alpha_N + alpha_D)


def isoflop_parabola(log_N, log_L_opt, k, log_N_opt):
    """One IsoFLOP slice near its minimum (Hoffmann et al. 2022, approach 2): log loss as a parabola in
    ``log N`` at a fixed compute budget, ``log L = log_L_opt + k * (log N - log_N_opt)**2`` (natural logs,
    ``k > 0`` the curvature); its vertex ``log_N_opt`` is the budget's compute-optimal model size.

    >>> float(isoflop_parabola(np.log(2e8), np.log(3.2), 0.05, np.log(2e8)))
    1.1631508098056809
    """
    return log_L_opt + k * (log_N - log_N_opt) ** 2


# --- the noise model --------------------------------------------------------------------------------------


def observation_noise(value, sigma, rng, *, nu=None, log: bool = True):
    """A new observation around the law's ``value``: ``value * exp(eps)`` (``log=True``, noise on the log
    scale) or ``value + eps`` (``log=False``), ``eps ~ Normal(0, sigma)`` or ``sigma * StudentT(nu)``.
    ``sigma`` and ``nu`` broadcast against ``value`` (draws along the first axis).

    >>> observation_noise(np.ones((2, 3)), np.zeros((2, 1)), np.random.default_rng(0)).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    value = np.asarray(value, dtype=float)
    z = rng.standard_t(np.broadcast_to(nu, value.shape)) if nu is not None else rng.standard_normal(value.shape)
    eps = np.asarray(sigma) * z
    return value * np.exp(eps) if log else value + eps


# ---- the from-scratch loss laws by name ------------------------------------------------------------------

#: the from-scratch loss laws evaluated by name (:func:`law_loss`)
LOSS_LAWS = ("chinchilla", "kaplan")
#: natural parameters of each law, in the order of the signatures above
LAW_PARAMETERS: dict[str, tuple[str, ...]] = {
    "chinchilla": ("E", "A", "B", "alpha_N", "alpha_D"),
    "kaplan": ("N_c", "D_c", "alpha_N", "alpha_D"),
}

#: law -> (L(N, D), its inverse in D), both above, taking the parameters of LAW_PARAMETERS by name.
_LAW_FUNCTIONS = {"chinchilla": (chinchilla_loss, chinchilla_inverse),
                  "kaplan": (kaplan_loss, kaplan_inverse)}


def _law(law: str, params: dict[str, Any], which: int):
    if law not in _LAW_FUNCTIONS:
        raise ConfigError(f"law {law!r} is not one of {', '.join(LOSS_LAWS)}")
    return _LAW_FUNCTIONS[law][which], {k: params[k] for k in LAW_PARAMETERS[law]}


def law_loss(law: str, N, D, params: dict[str, Any]):
    """``L(N, D)`` of ``law`` with natural ``params`` (numpy, xarray or pytensor)."""
    fn, kw = _law(law, params, 0)
    return fn(N, D, **kw)


def law_inverse(law: str, loss, N, params: dict[str, Any]):
    """``D`` such that ``L(N, D) = loss`` (closed form; ``inf`` where the loss is at or below ``L(N, inf)``)."""
    fn, kw = _law(law, params, 1)
    return fn(loss, N, **kw)


def converged_data(law: str, N, params: dict[str, Any], within: float = 0.01):
    """``D(N)``: the data a from-scratch model of size ``N`` needs to get within ``within`` (1%) of its
    infinite-data loss: ``D(N) = L^{-1}((1 + within) * L(N, inf), N)`` (Hernandez et al. 2021, regimes).

    >>> p = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}   # Kaplan, WebText2
    >>> f"{converged_data('kaplan', 1e6, p):.2e}"
    '3.08e+08'
    """
    L_inf = law_loss(law, N, np.inf, params)
    return law_inverse(law, (1.0 + within) * L_inf, N, params)
