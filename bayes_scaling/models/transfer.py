"""The hierarchical transfer model: configuration (priors, likelihood, variant) and the PyMC graph.

Model (natural logs; ``p`` indexes the pre-training distribution of each run)::

    log D_T ~ Normal(mu, sigma)            or StudentT(nu, mu, sigma)
    mu      = log_transfer(a[p], alpha[p], beta, log D_F - c_F, log N - c_N)
            = log k[p] + alpha[p] * log D_F + beta * log N
    a[p]    ~ Normal(a_mu, a_sigma)         (log D_T at the centre (c_F, c_N): partially pooled)
    a_sigma, alpha_sigma ~ Gamma(2, 2 / scale)   (spreads across distributions; zero-avoiding)
    alpha[p]~ Normal(alpha_mu, alpha_sigma)
    log k[p]= a[p] - alpha[p] * c_F - beta * c_N,   k = exp(log k)

``c_F, c_N`` are the means of log D_F and log N in the data (predictors centred so NUTS sees nearly
uncorrelated parameters). The user states priors on the population of ``log k``, on ``alpha`` and on ``beta``;
the prior of ``a_mu`` is their moment-matched projection to the centre:
``a_mu ~ Normal(m_k + m_alpha c_F + m_beta c_N, sqrt(s_k^2 + (s_alpha c_F)^2 + (s_beta c_N)^2))``.
Partial pooling of ``(a, alpha)`` is partial pooling of ``(log k, alpha)``: ``log k`` is a linear function of
them.

**Parameterization** (``"auto"``, :func:`resolve_parameterization`). When the data pin every distribution's
``a`` and ``alpha`` the hierarchy is *centred* (the easy geometry). Otherwise, with the normal likelihood, it is
*whitened*: given the spreads ``a_sigma, alpha_sigma`` (``beta_sigma``) and ``sigma``, every location of the
model (``a_mu, alpha_mu``, ``beta`` or ``beta_mu``, ``a[p], alpha[p]``, ``beta[p]``) is jointly Gaussian (a
linear-Gaussian hierarchy), so they are sampled as ``theta = m + R'^-1 u`` with ``u`` standard normal, ``m`` and
``R R' = Q`` the conditional posterior mean and precision (:func:`_whitened_locations`). This is an exact change
of variables: NUTS then sees only the spreads' marginal posterior and independent standard normals, with no
funnel. The centred form has a funnel at small spreads, the non-centred one at large spreads (with two
distributions the spread of the intercept is left to its prior). With the Student-t likelihood the conditional
is not Gaussian and weakly pinned data get the non-centred form. With one pre-training distribution, or the
pooled variant, the hierarchy is dropped (``a = a_mu``, ``alpha = alpha_mu``).

Variants (for model comparison): ``shared_beta`` (the paper's, default), ``separate_beta`` (beta partially
pooled per distribution) and ``pooled`` (one k, alpha and beta for all distributions).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from bayes_scaling.errors import ConfigError
from bayes_scaling.laws import formulas as laws

# "auto": a grouped parameter is centred when every distribution pins it to within this fraction of the prior's
# between-distribution spread (standard error of its least-squares estimate / spread scale), as in the engine
from bayes_scaling.models.spec_model import CENTRED_MAX_SE_RATIO

__all__ = ["ModelConfig", "DEFAULT_PRIORS", "build_transfer_model", "prior_parameterization", "priors_from_spec",
           "transfer_spec", "engine_form"]

LIKELIHOODS = ("normal", "student_t")
PARAMETERIZATIONS = ("auto", "whitened", "centred", "non_centred")
VARIANTS = ("shared_beta", "separate_beta", "pooled")

def priors_from_spec(spec) -> dict[str, dict[str, float]]:
    """The transfer model's priors from the transfer law spec (``specs/laws/transfer.toml``, the one place they
    are written): Normal(mu, sigma) for the population locations (``log_k``: the log of ``k``'s median and
    its sigma; ``alpha``, ``beta``: real-domain parameters' mu and sigma), Gamma(2, 2/sigma) for the spreads
    across distributions (each parameter's ``spread``; ``log_k_spread`` is applied at the data's centre),
    HalfNormal(sigma) for the noise (``[likelihood] sigma``), Gamma(alpha, beta) for nu (``nu_alpha``,
    ``nu_beta``). A ConfigError names what the spec lacks.

    >>> from bayes_scaling.laws.spec import builtin_spec
    >>> priors_from_spec(builtin_spec("transfer"))["log_k"]
    {'mu': 10.0, 'sigma': 4.0}
    """
    pars = spec.parameters
    missing = [n for n in ("k", "alpha", "beta") if n not in pars]
    if missing:
        raise ConfigError(f"transfer law spec {spec.name!r}: no parameter(s) {', '.join(missing)}")
    need = {"k": ("positive", ("median", "sigma")), "alpha": ("real", ("mu", "sigma")),
            "beta": ("real", ("mu", "sigma"))}
    for name, (domain, keys) in need.items():
        p = pars[name]
        if p.domain != domain or not set(keys) <= set(p.prior):
            raise ConfigError(f"transfer law spec {spec.name!r}: parameter {name!r} needs domain {domain!r} and "
                              f"{' and '.join(keys)} (the transfer model's Normal prior)")
    if spec.sigma is None:
        raise ConfigError(f"transfer law spec {spec.name!r}: [likelihood] needs sigma (the noise prior)")
    k, alpha, beta = pars["k"], pars["alpha"], pars["beta"]
    return {
        "log_k": {"mu": float(np.log(k.prior["median"])), "sigma": k.prior["sigma"]},
        "alpha": {"mu": alpha.prior["mu"], "sigma": alpha.prior["sigma"]},
        "beta": {"mu": beta.prior["mu"], "sigma": beta.prior["sigma"]},
        "log_k_spread": {"sigma": k.spread},
        "alpha_spread": {"sigma": alpha.spread},
        "beta_spread": {"sigma": beta.spread},
        "sigma": {"sigma": float(spec.sigma)},
        "nu": {"alpha": spec.nu_alpha, "beta": spec.nu_beta},
    }


def _default_priors() -> dict[str, dict[str, float]]:
    from bayes_scaling.laws.spec import builtin_spec

    return priors_from_spec(builtin_spec("transfer"))


#: Default priors, read from the transfer law spec (:func:`priors_from_spec`): Normal(mu, sigma) for locations,
#: HalfNormal(sigma) for the noise, Gamma(2, 2/sigma) for the between-distribution spreads, Gamma(alpha, beta)
#: for nu. On the built-in spec: log_k Normal(10, 4), alpha Normal(0.25, 0.25), beta Normal(0.4, 0.4), spreads
#: 1.5 (log D_T at the centre), 0.1 (alpha), 0.1 (beta), sigma 1, nu Gamma(2, 0.1).
DEFAULT_PRIORS: dict[str, dict[str, float]] = _default_priors()


#: sane bounds of prior parameters: |mu| <= PRIOR_LOCATION_MAX, and every scale/shape/rate in
#: [PRIOR_SCALE_MIN, PRIOR_SCALE_MAX] (sigma 1e-300 or 1e300 made nutpie fail with a Rust backtrace)
PRIOR_LOCATION_MAX = 1e3
PRIOR_SCALE_MIN, PRIOR_SCALE_MAX = 1e-4, 1e4


def merge_priors(defaults: dict[str, dict[str, float]], priors: dict | None) -> dict[str, dict[str, float]]:
    """``defaults`` overridden entry by entry by ``priors``; a ConfigError for an unknown prior or parameter,
    or a value that is not a finite number (> 0 for every parameter but ``mu``)."""
    merged = copy.deepcopy(defaults)
    if priors is not None and not isinstance(priors, dict):
        raise ConfigError(f"priors must be a table of [priors.NAME] tables, got {type(priors).__name__} {priors!r}")
    for name, params in (priors or {}).items():
        if name not in defaults:
            raise ConfigError(f"unknown prior {name!r}; expected one of {', '.join(defaults)}")
        if not isinstance(params, dict):
            raise ConfigError(f"prior {name!r} must be a table of parameters, got {params!r}")
        unknown = set(params) - set(defaults[name])
        if unknown:
            raise ConfigError(f"prior {name!r}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                              f"expected {', '.join(defaults[name])}")
        from bayes_scaling.laws.validate import is_finite_number

        for key, value in params.items():
            if not isinstance(value, (int, float)) or not is_finite_number(value):
                raise ConfigError(f"prior {name!r}: {key} must be a finite number, got {value!r}")
            if key != "mu" and value <= 0:
                raise ConfigError(f"prior {name!r}: {key} must be > 0, got {value!r}")
            if key == "mu" and abs(value) > PRIOR_LOCATION_MAX:
                raise ConfigError(f"prior {name!r}: mu = {value!r} is outside the sane range "
                                  f"[-{PRIOR_LOCATION_MAX:g}, {PRIOR_LOCATION_MAX:g}] (locations are on the log "
                                  "scale or exponents)")
            if key != "mu" and not PRIOR_SCALE_MIN <= value <= PRIOR_SCALE_MAX:
                raise ConfigError(f"prior {name!r}: {key} = {value!r} is outside the sane range "
                                  f"[{PRIOR_SCALE_MIN:g}, {PRIOR_SCALE_MAX:g}]: NUTS cannot sample a prior that "
                                  "narrow or that wide")
            merged[name][key] = float(value)
    return merged


@dataclass
class ModelConfig:
    """Priors, likelihood and variant of the transfer model.

    >>> cfg = ModelConfig(likelihood="student_t", priors={"beta": {"mu": 0.38, "sigma": 0.1}})
    >>> cfg.priors["beta"], cfg.priors["alpha"]
    ({'mu': 0.38, 'sigma': 0.1}, {'mu': 0.25, 'sigma': 0.25})

    ``priors`` given here override the defaults (:data:`DEFAULT_PRIORS`, from ``models/laws/transfer.toml``) entry by
    entry (see ``models/transfer.toml``).
    """

    likelihood: str = "normal"
    variant: str = "shared_beta"
    parameterization: str = "auto"
    priors: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.priors = merge_priors(DEFAULT_PRIORS, self.priors)
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood {self.likelihood!r} is not one of {', '.join(LIKELIHOODS)}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ConfigError(f"parameterization {self.parameterization!r} is not one of "
                              f"{', '.join(PARAMETERIZATIONS)}")
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant {self.variant!r} is not one of {', '.join(VARIANTS)}")
        if self.parameterization == "whitened" and self.likelihood != "normal":
            raise ConfigError(f'parameterization "whitened" needs the normal likelihood (its conditional '
                              f'posterior is Gaussian), got likelihood {self.likelihood!r}: use "auto", '
                              f'"centred" or "non_centred"')

    # ---- I/O --------------------------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | PathLike) -> ModelConfig:
        """Read a model file such as ``models/transfer.toml``."""
        from bayes_scaling._toml import read_toml

        doc = read_toml(path)
        return cls.from_dict(doc, where=str(path))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], where: str = "config") -> ModelConfig:
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: expected a table ([model], [priors.NAME]), got {type(doc).__name__}")
        model = doc.get("model", {})
        if not isinstance(model, dict):
            raise ConfigError(f"{where}: 'model' must be a table ([model] with likelihood, variant, "
                              f"parameterization), got {type(model).__name__} {model!r}")
        for key, value in model.items():
            if not isinstance(value, str):
                raise ConfigError(f"{where}: model.{key} must be a string, got {type(value).__name__} {value!r}")
        if not isinstance(doc.get("priors", {}), dict):
            raise ConfigError(f"{where}: 'priors' must be a table of [priors.NAME] tables, got "
                              f"{type(doc['priors']).__name__} {doc['priors']!r}")
        unknown = (set(doc) - {"model", "priors"}) | (set(model) - {"likelihood", "variant", "parameterization"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected [model] "
                              "likelihood/variant/parameterization and [priors.NAME] tables")
        try:
            return cls(likelihood=model.get("likelihood", "normal"), variant=model.get("variant", "shared_beta"),
                       parameterization=model.get("parameterization", "auto"), priors=doc.get("priors", {}))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"model": {"likelihood": self.likelihood, "variant": self.variant,
                          "parameterization": self.parameterization}, "priors": self.priors}

    def to_toml(self) -> str:
        lines = ["[model]", f'likelihood = "{self.likelihood}"', f'variant = "{self.variant}"',
                 f'parameterization = "{self.parameterization}"']
        for name, params in self.priors.items():
            lines += ["", f"[priors.{name}]"] + [f"{k} = {v!r}" for k, v in params.items()]
        return "\n".join(lines) + "\n"

    def hash(self) -> str:
        """A short hash of the configuration, stored in fit files."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def centre_prior(self, c_F: float, c_N: float) -> tuple[float, float]:
        """Normal(mean, sd) prior of ``a_mu``, log D_T at the centre, projected from log_k, alpha, beta."""
        p = self.priors
        mean = p["log_k"]["mu"] + p["alpha"]["mu"] * c_F + p["beta"]["mu"] * c_N
        sd = (p["log_k"]["sigma"] ** 2 + (p["alpha"]["sigma"] * c_F) ** 2 + (p["beta"]["sigma"] * c_N) ** 2) ** 0.5
        if isinstance(mean, (int, float, np.number)):
            return float(mean), float(sd)
        return mean, sd  # PyTensor variables (the centre as pm.Data, see build_transfer_model)


def resolve_parameterization(arrays: dict[str, np.ndarray], n_groups: int, config: ModelConfig) -> dict[str, str]:
    """``"whitened"``, ``"centred"`` or ``"non_centred"`` for each grouped parameter (``a``: log D_T at the
    centre, ``alpha``, and ``beta`` in the separate-beta variant).

    A stated choice applies to all. ``"auto"`` chooses from the data: each distribution's runs are fitted by
    least squares (``log D_T`` on centred ``log D_F`` and ``log N``); the hierarchy is centred when, in every
    distribution, the standard error of each grouped parameter's estimate is below
    :data:`CENTRED_MAX_SE_RATIO` times the prior's between-distribution spread (the data pin each group: the
    centred form is the easy geometry and the cheapest per step), and otherwise whitened (normal likelihood:
    exact, no funnel; module docstring) or, with the Student-t likelihood, non-centred. One choice for all
    grouped parameters. On the bundled example (49 runs per distribution; largest ratio 0.105): centred, 0
    divergences, min bulk ESS 1,569 in 0.9 s warm (whitened: 4,748 in 3.7 s, 0 divergences; non-centred needs
    ~20x the leapfrog steps); on the measured data set (21 noisy runs per distribution; 0.58): whitened, 0
    divergences in every fit of its report (non-centred: 1-3 per 4,000 draws at large ``a_sigma``; centred or
    a centred intercept with a non-centred slope: 23-28 in 20 imputation fits).
    """
    names = grouped_names(config)
    if config.parameterization != "auto":
        return dict.fromkeys(names, config.parameterization)
    weak = "whitened" if config.likelihood == "normal" else "non_centred"
    scale = {"a": config.priors["log_k_spread"]["sigma"], "alpha": config.priors["alpha_spread"]["sigma"],
             "beta": config.priors["beta_spread"]["sigma"]}
    X = np.column_stack([np.ones_like(arrays["log_D_F"]), arrays["log_D_F"] - np.mean(arrays["log_D_F"]),
                         arrays["log_N"] - np.mean(arrays["log_N"])])
    ratio = dict.fromkeys(names, 0.0)
    for p in range(n_groups):
        m = arrays["p_idx"] == p
        Xp, yp = X[m], arrays["log_D_T"][m]
        if m.sum() <= 3 or np.linalg.matrix_rank(Xp) < 3:
            return dict.fromkeys(names, weak)
        b, *_ = np.linalg.lstsq(Xp, yp, rcond=None)
        resid = yp - Xp @ b
        cov = (resid @ resid / (m.sum() - 3)) * np.linalg.pinv(Xp.T @ Xp)
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        for i, name in enumerate(("a", "alpha", "beta")):
            if name in ratio:
                ratio[name] = max(ratio[name], se[i] / scale[name])
    centred = all(r < CENTRED_MAX_SE_RATIO for r in ratio.values())
    return dict.fromkeys(names, "centred" if centred else weak)


def grouped_names(config: ModelConfig) -> list[str]:
    """The partially pooled parameters of ``config``'s variant: ``a``, ``alpha`` (and ``beta`` if separate)."""
    return ["a", "alpha"] + (["beta"] if config.variant == "separate_beta" else [])


def prior_parameterization(config: ModelConfig) -> dict[str, str]:
    """The form to draw from the *prior* with (``pm.sample_prior_predictive``): the whitened form's locations
    depend on the observed data (its correction term is a ``pm.Potential``, which prior sampling ignores), so
    prior draws use the non-centred form of the same prior."""
    form = "centred" if config.parameterization == "centred" else "non_centred"
    return dict.fromkeys(grouped_names(config), form)


def build_transfer_model(arrays: dict[str, np.ndarray], pretraining: tuple[str, ...] | list[str],
                         config: ModelConfig, centre: tuple[float, float] | None = None,
                         parameterization: dict[str, str] | None = None):
    """The PyMC model for ``arrays`` (from :meth:`TransferData.arrays`).

    Data enter through ``pm.Data`` containers (``log_D_F``, ``log_N``, ``p_idx``, ``log_D_T_obs``) so that a
    compiled model can be refitted on new data of the same shape. ``centre`` = (c_F, c_N) defaults to the
    means of log D_F and log N. ``parameterization``: per grouped parameter (default
    :func:`resolve_parameterization`); stored as ``model.parameterization``.
    """
    import pymc as pm

    if parameterization is None:
        parameterization = resolve_parameterization(arrays, len(pretraining), config)

    if centre is None:
        centre = (float(np.mean(arrays["log_D_F"])), float(np.mean(arrays["log_N"])))
    c_F, c_N = centre
    P = len(pretraining)
    pri = config.priors
    coords = {"pretraining": list(pretraining), "run": np.arange(len(arrays["log_D_T"]))}
    with pm.Model(coords=coords) as model:
        log_D_F = pm.Data("log_D_F", arrays["log_D_F"], dims="run")
        log_N = pm.Data("log_N", arrays["log_N"], dims="run")
        p_idx = pm.Data("p_idx", arrays["p_idx"], dims="run")
        obs = pm.Data("log_D_T_obs", arrays["log_D_T"], dims="run")

        # the centre is data too, so that a compiled model can be refitted on data with another centre
        c_F = pm.Data("centre_log_D_F", c_F)
        c_N = pm.Data("centre_log_N", c_N)
        m_a, s_a = config.centre_prior(c_F, c_N)
        hierarchical = P > 1 and config.variant != "pooled"
        separate = config.variant == "separate_beta"
        ones = np.ones(P)
        if hierarchical and parameterization["a"] == "whitened":
            a_sigma = _spread("a_sigma", pri["log_k_spread"]["sigma"])
            alpha_sigma = _spread("alpha_sigma", pri["alpha_spread"]["sigma"])
            beta_sigma = _spread("beta_sigma", pri["beta_spread"]["sigma"]) if separate else None
            sigma = pm.HalfNormal("sigma", pri["sigma"]["sigma"])
            loc = _whitened_locations(
                P, log_D_F - c_F, log_N - c_N, p_idx, obs, sigma,
                top=[(m_a, s_a), (pri["alpha"]["mu"], pri["alpha"]["sigma"]),
                     (pri["beta"]["mu"], pri["beta"]["sigma"])],
                spreads=[a_sigma, alpha_sigma] + ([beta_sigma] if separate else []))
            pm.Deterministic("a_mu", loc[0][0])
            pm.Deterministic("alpha_mu", loc[0][1])
            beta_mu = pm.Deterministic("beta_mu" if separate else "beta", loc[0][2])
            a = pm.Deterministic("a", loc[1][0], dims="pretraining")
            alpha = pm.Deterministic("alpha", loc[1][1], dims="pretraining")
            if separate:
                beta = pm.Deterministic("beta", loc[1][2], dims="pretraining")
                beta_run = beta[p_idx]
            else:
                beta = beta_run = beta_mu
        else:
            a_mu = pm.Normal("a_mu", m_a, s_a)
            alpha_mu = pm.Normal("alpha_mu", pri["alpha"]["mu"], pri["alpha"]["sigma"])
            beta_mu = pm.Normal("beta_mu" if separate else "beta", pri["beta"]["mu"], pri["beta"]["sigma"])
            if hierarchical:
                a_sigma = _spread("a_sigma", pri["log_k_spread"]["sigma"])
                alpha_sigma = _spread("alpha_sigma", pri["alpha_spread"]["sigma"])
                a = _group("a", a_mu, a_sigma, parameterization["a"])
                alpha = _group("alpha", alpha_mu, alpha_sigma, parameterization["alpha"])
            else:
                a = pm.Deterministic("a", a_mu * ones, dims="pretraining")
                alpha = pm.Deterministic("alpha", alpha_mu * ones, dims="pretraining")
            if separate and P > 1:
                beta_sigma = _spread("beta_sigma", pri["beta_spread"]["sigma"])
                beta = _group("beta", beta_mu, beta_sigma, parameterization["beta"])
                beta_run = beta[p_idx]
            elif separate:
                beta = pm.Deterministic("beta", beta_mu * ones, dims="pretraining")
                beta_run = beta[p_idx]
            else:
                beta = beta_run = beta_mu
            sigma = pm.HalfNormal("sigma", pri["sigma"]["sigma"])
        log_k = pm.Deterministic("log_k", laws.log_k_from_centre(a, alpha, beta, c_F, c_N), dims="pretraining")
        pm.Deterministic("k", pm.math.exp(log_k), dims="pretraining")
        mu = laws.log_transfer(a[p_idx], alpha[p_idx], beta_run, log_D_F - c_F, log_N - c_N)
        if config.likelihood == "student_t":
            nu = pm.Gamma("nu", pri["nu"]["alpha"], pri["nu"]["beta"])
            pm.StudentT("log_D_T", nu=nu, mu=mu, sigma=sigma, observed=obs, dims="run")
        else:
            pm.Normal("log_D_T", mu=mu, sigma=sigma, observed=obs, dims="run")
    model.centre = (float(centre[0]), float(centre[1]))  # type: ignore[attr-defined]
    model.parameterization = dict(parameterization) if hierarchical else {}  # type: ignore[attr-defined]
    return model


def _spread(name: str, scale: float):
    """Between-distribution spread: Gamma(2, 2 / scale), mean ``scale``, zero-avoiding.

    With a handful of pre-training distributions a HalfNormal spread puts mass near 0, where the centred
    hierarchy becomes a funnel (NUTS divergences at spreads ~0.01 on the bundled data); Gamma(2, .) has
    density 0 at 0 and is the usual boundary-avoiding choice for few groups (Chung et al. 2013)."""
    import pymc as pm

    return pm.Gamma(name, alpha=2.0, beta=2.0 / scale)


def _normal_logp(x, mu, sd):
    import pytensor.tensor as pt

    return pt.sum(-0.5 * ((x - mu) / sd) ** 2 - pt.log(sd) - 0.5 * np.log(2 * np.pi))


def _whitened_locations(P: int, x_F, x_N, p_idx, y, sigma, *, top, spreads):
    """The whitened form (module docstring): every location drawn through its Gaussian conditional posterior.

    The locations ``theta = (h_0, h_1, h_2, g_0[1..P], g_1[1..P], ...)``: the three population locations
    (``a_mu, alpha_mu``, ``beta``/``beta_mu``) with ``h_j ~ Normal(*top[j])``, and per grouped parameter ``j``
    ``g_j[p] ~ Normal(h_j, spreads[j])``; the data ``y ~ Normal(X theta, sigma)`` with ``X`` the columns of
    ``log_transfer`` (``x_N`` on ``h_2`` for a shared beta; one-hot ``[p]``, ``x_F [p]``, ``x_N [p]`` on the
    groups). Given the spreads and ``sigma`` the posterior of ``theta`` is ``Normal(m, Q^-1)``, ``Q = Q0 + X'X /
    sigma^2`` (Q0 the prior precision), ``Q m = b = Q0 mu0 + X'y / sigma^2``. With ``Q = R R'`` (Cholesky),
    ``theta = R'^-1 (R^-1 b + u)``, ``u ~ Normal(0, I)`` (``u_whitened``); a ``pm.Potential`` adds the prior of
    ``theta`` and ``log |d theta / d u| = -sum log diag R`` and takes out ``u``'s own normal density, so the joint
    density is exactly the centred model's. Returns ``((h_0, h_1, h_2), [g_0, g_1, (g_2)])``.

    ``Q`` is block arrowhead: the groups do not share a data column, so each group's ``J`` locations couple only
    with each other (a J x J block per group) and with the three population locations. With the groups ordered
    first, ``R`` has no fill-in: P small Cholesky factors (closed form, vectorised over the groups), the coupling
    ``W_p = R_p^-1 B_p'`` and the 3 x 3 Schur complement ``S = C - sum_p W_p' W_p``. Every step costs O(P)
    (a dense K x K Cholesky, K = 3 + J P, cost O(P^3) per gradient: 200 groups did not finish a 20-draw fit in
    120 s). The ordering changes which ``u`` maps to which ``theta``, not the density of ``theta``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    J = len(spreads)  # grouped parameters: a, alpha (and beta)
    inv_var = 1.0 / sigma**2

    def per_group(v):  # sum of v over the runs of each group (length P)
        return pt.inc_subtensor(pt.zeros(P)[p_idx], v)

    Z = [pt.ones_like(x_F), x_F] + ([x_N] if J == 3 else [])  # each group's own data columns
    # per-group block D_p = Z_p' Z_p / sigma^2 + diag(1 / s_j^2), its right-hand side Z_p' y / sigma^2
    D = [[per_group(Z[k] * Z[m]) * inv_var + (1.0 / spreads[k] ** 2 if k == m else 0.0) for m in range(k + 1)]
         for k in range(J)]
    b_g = [per_group(Z[k] * y) * inv_var for k in range(J)]
    # coupling B_p (3 x J) of the population locations with group p: the links -1/s_j^2, and for a shared beta
    # the data column x_N of h_2
    zero = pt.zeros(P)
    B = [[(zero - 1.0 / spreads[r] ** 2) if r == k else zero for k in range(J)] for r in range(J)]
    if J == 2:
        B.append([per_group(x_N * Z[k]) * inv_var for k in range(J)])
    top_prec = [1.0 / sd**2 for _, sd in top]
    C = [top_prec[r] + (P / spreads[r] ** 2 if r < J else 0.0) for r in range(3)]
    b_h = [m * w for (m, _), w in zip(top, top_prec, strict=True)]
    if J == 2:
        C[2] = C[2] + pt.sum(x_N**2) * inv_var
        b_h[2] = b_h[2] + pt.sum(x_N * y) * inv_var
    L = _small_cholesky(D)                                        # P factors at once (vectors of length P)
    W = [_forward(L, B[r]) for r in range(3)]                     # W[r][k]: column r of W_p = R_p^-1 B_p'
    S = [[(C[r] if r == q else 0.0) - sum(pt.sum(W[r][k] * W[q][k]) for k in range(J)) for q in range(r + 1)]
         for r in range(3)]
    LS = _small_cholesky(S)
    # one coordinate per location (groups by index: a compiled model is refitted on other labels)
    labels = ["a_mu", "alpha_mu", "beta_mu" if J == 3 else "beta"] + \
        [f"{g}[{p}]" for g in ("a", "alpha", "beta")[:J] for p in range(P)]
    pm.modelcontext(None).add_coord("location", labels)
    # forward: R v = b (+ u);  back: R' theta = v
    u = pm.Normal("u_whitened", 0.0, 1.0, dims="location")
    u_h = [u[r] for r in range(3)]
    u_g = [u[3 + k * P: 3 + (k + 1) * P] for k in range(J)]
    y_g = _forward(L, b_g)
    y_h = _forward(LS, [b_h[r] - sum(pt.sum(W[r][k] * y_g[k]) for k in range(J)) for r in range(3)])
    h = _backward(LS, [y_h[r] + u_h[r] for r in range(3)])
    groups = _backward(L, [y_g[k] + u_g[k] - sum(W[r][k] * h[r] for r in range(3)) for k in range(J)])
    prior = sum(_normal_logp(h[j], m, sd) for j, (m, sd) in enumerate(top))
    prior = prior + sum(_normal_logp(groups[j], h[j], s_j) for j, s_j in enumerate(spreads))
    log_jac = -sum(pt.sum(pt.log(L[k][k])) for k in range(J)) - sum(pt.log(LS[r][r]) for r in range(3))
    pm.Potential("whitening", prior + log_jac - _normal_logp(u, 0.0, 1.0))
    return h, groups


def _small_cholesky(A):
    """Lower Cholesky factor of a small symmetric matrix given as its lower triangle ``A[i][k]`` (k <= i),
    unrolled: the entries may be vectors (a batch of matrices, elementwise)."""
    import pytensor.tensor as pt

    n = len(A)
    L = [[None] * n for _ in range(n)]
    for i in range(n):
        for k in range(i + 1):
            s = A[i][k] - sum(L[i][m] * L[k][m] for m in range(k))
            L[i][k] = pt.sqrt(s) if i == k else s / L[k][k]
    return L


def _forward(L, b):
    """``L x = b`` for a lower factor from :func:`_small_cholesky`."""
    x = []
    for i in range(len(L)):
        x.append((b[i] - sum(L[i][m] * x[m] for m in range(i))) / L[i][i])
    return x


def _backward(L, b):
    """``L' x = b`` for a lower factor from :func:`_small_cholesky`."""
    n = len(L)
    x = [None] * n
    for i in reversed(range(n)):
        x[i] = (b[i] - sum(L[m][i] * x[m] for m in range(i + 1, n))) / L[i][i]
    return x


def _group(name: str, mu, sigma, parameterization: str):
    """Partially pooled per-distribution values ``name[p] ~ Normal(mu, sigma)``, centred or non-centred."""
    import pymc as pm

    if parameterization == "centred":
        return pm.Normal(name, mu, sigma, dims="pretraining")
    z = pm.Normal(f"z_{name}", 0.0, 1.0, dims="pretraining")
    return pm.Deterministic(name, mu + sigma * z, dims="pretraining")


def transfer_spec(config: ModelConfig, n_groups: int, *, view: bool = False, form: str | None = None):
    """The transfer law spec (``specs/laws/transfer.toml``) that ``config`` states, for data with ``n_groups``
    pre-training distributions: the law ``D_T = k[p] * D_F**alpha[p] * N**beta`` with ``config``'s priors
    (``log k ~ Normal(log_k.mu, log_k.sigma)``, ``alpha``, ``beta ~ Normal(mu, sigma)``, the spreads
    ``Gamma(2, 2 / spread)`` of log k, alpha and beta across distributions, ``sigma ~ HalfNormal``, ``nu ~
    Gamma``), its likelihood as the family, and its variant as the sharing: ``shared_beta`` (k and alpha pooled
    by ``pretraining``, beta shared), ``separate_beta`` (beta pooled by ``pretraining`` too), ``pooled`` or one
    distribution (all shared). ``form`` (``"centred"``/``"non_centred"``; default ``config.parameterization``
    where it is one of them, else the spec's ``"auto"``) applies to every pooled parameter; the engine's
    ``whiten`` argument says how to sample (:func:`engine_form`).

    ``view=True``: the spec that reads a transfer posterior whose k, alpha (and a separate beta) are stored per
    distribution, each distribution's draws as they are (``pooling = "none"``): fits without a population to
    draw a new distribution from (the pooled variant, one distribution, files of version 0.1 and 0.2).
    """
    import dataclasses

    from bayes_scaling.laws.spec import builtin_spec

    law = builtin_spec("transfer")
    pri = config.priors
    hierarchical = n_groups > 1 and config.variant != "pooled"
    by_group = {"k": hierarchical or view, "alpha": hierarchical or view,
                "beta": config.variant == "separate_beta" and (hierarchical or view)}
    prior = {"k": {"median": float(np.exp(pri["log_k"]["mu"])), "sigma": pri["log_k"]["sigma"]},
             "alpha": {"mu": pri["alpha"]["mu"], "sigma": pri["alpha"]["sigma"]},
             "beta": {"mu": pri["beta"]["mu"], "sigma": pri["beta"]["sigma"]}}
    spread = {"k": pri["log_k_spread"]["sigma"], "alpha": pri["alpha_spread"]["sigma"],
              "beta": pri["beta_spread"]["sigma"]}
    if form is None:
        form = config.parameterization if config.parameterization in ("centred", "non_centred") else "auto"
    params = []
    for p in law.parameters.values():
        grouped = by_group.get(p.name, False)
        params.append(dataclasses.replace(
            p, by="pretraining" if grouped else None, pooling="none" if view and grouped else "partial",
            prior=dict(prior[p.name]), spread=spread[p.name], parameterization=form if grouped else "auto"))
    return dataclasses.replace(law, family=config.likelihood, sigma=pri["sigma"]["sigma"],
                               nu_alpha=pri["nu"]["alpha"], nu_beta=pri["nu"]["beta"], parameters=params)


def engine_form(arrays: dict[str, np.ndarray], n_groups: int, config: ModelConfig) -> tuple[str, str]:
    """How the engine draws the transfer spec of ``config`` from these data: the pooled parameters' form and the
    engine's ``whiten``. ``"auto"``: the engine's own choice, as ``bs.fit(data, "transfer")`` (k sampled at the
    data's centre, in the model's own coordinates; centred where every distribution pins its parameters, else
    non-centred: :func:`bayes_scaling.models.spec_model.pinned_by_groups`, the test of
    :func:`resolve_parameterization`); ``"whitened"``: the engine's Laplace whitening (``"laplace"``);
    ``"centred"``/``"non_centred"``: that form, unwhitened. ``arrays``: unused (the engine reads the data)."""
    if config.parameterization == "whitened":
        return "auto", "laplace"
    if config.parameterization in ("centred", "non_centred"):
        return config.parameterization, "none"
    return "auto", "auto"


def parameter_names(config: ModelConfig) -> list[str]:
    """Posterior variables reported in summaries and checked by diagnostics."""
    names = ["k", "log_k", "alpha", "beta", "sigma"]
    if config.likelihood == "student_t":
        names.append("nu")
    return names
