"""The law's discrepancy outside the data: how far a point lies outside the fitted runs, and how much that adds.

A fitted law is more certain of itself than it deserves outside its data: the law's form is an assumption there.
Every prediction of a law spec therefore carries a **discrepancy** that grows with the distance ``d`` outside
the data (calibrated by backtests, README "Backtests")::

    log y_pred = log f(x; theta) [+ noise] + delta,      delta ~ Normal(0, (tau * d(x))**2)

``tau`` is the law's error per order of magnitude (decade) outside the data, on the log target. It is stored in
the law spec (``[discrepancy] tau``, :class:`bayes_scaling.laws.spec.LawSpec`); ``tau = 0`` turns it off.

**The distance** ``d(x)`` (:func:`outside_table`, the one implementation used by predictions, backtests and
best-group tables): the largest, over the distance columns ``c``, of how far ``x_c`` lies outside
``[min, max]`` of the fitted runs' column ``c``:

- a positive column (all fitted values and ``x_c`` > 0): orders of magnitude, ``log10(x_c / max)`` above,
  ``log10(x_c / min)`` below (signed: + above, - below), 0 inside;
- a column with zeros in the fitted runs and no negative values (e.g. fine-tuning data with a zero-shot row
  ``D = 0``): the same above the largest value; nothing lies below (the range reaches 0);
- any other column: multiples of the range's width, ``(x_c - max) / (max - min)`` above, likewise below.

The distance columns are the law's inputs and, for laws with inputs ``N`` and ``D``, the training compute
``C = 6 N D`` (:func:`bayes_scaling.laws.formulas.training_compute`; computed from N and D, a given column
``C`` is not used): a run at a new compute budget can lie inside the ranges of N and of D and still outside the
data, and compute is what forecasts extrapolate in. A group column is not a distance column.

**The split** of a prediction's uncertainty (:func:`variance_split`): on the log scale, the predictive variance
is ``s_p**2 + s_n**2 + (tau d)**2`` -- the parameters' (the spread of ``log f`` over the posterior draws), the
observation noise's (``kind="observation"`` only) and the discrepancy's. ``s_p`` and ``s_n`` are measured as the
half-width of the central 68.27% interval of their draws (robust to Student-t tails, the sd for a normal);
``share_parameters + share_noise + share_discrepancy = 1``.

>>> import pandas as pd
>>> data = pd.DataFrame({"N": [1e7, 1e9], "D": [1e9, 1e11]})
>>> points = pd.DataFrame({"N": [1e8, 1e9, 1e10], "D": [1e10, 1e11, 1e9]})
>>> outside_table(data, points, ["D", "N"])["outside"].tolist()     # the third: inside N and D, but C = 6e19
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling._numeric import nanquantile
from bayes_scaling.errors import ConfigError

__all__ = ["DEFAULT_TAU", "DEFAULT_SOURCE", "Discrepancy", "distance_columns", "outside_range", "signed_outside",
           "outside_table", "distance_outside", "widen", "variance_split", "robust_sd", "TAU_GRID",
           "tau_log_likelihood", "TauPrior", "population_prior", "load_population", "drift_log_likelihood",
           "population_drift", "drift_posterior", "transfer_log_likelihood", "population_transfer", "transfer_slope",
           "TRANSFER_KEYS", "POPULATIONS", "load_named_population", "population_for_law", "population_summary",
           "learnt_drift", "SCALE_KEYS", "scale_population", "learnt_scale"]

#: Default ``tau`` (per decade outside the data, on log target): the maximum-likelihood value pooled over the
#: nested backtests (training runs only) of Porian et al.'s 15 IsoFLOP configurations with the Chinchilla law
#: (``benchmarks/backtest_real.py``; README "Backtests"): held-out 90% coverage 0.53 -> 0.95 there, 0.61 -> 0.91
#: on Epoch AI's Chinchilla runs and 0.17 -> 0.97 on Muennighoff et al.'s grid (both not used to calibrate it).
DEFAULT_TAU = 0.059
DEFAULT_SOURCE = ("pooled nested backtests of Porian et al. (2024), 15 IsoFLOP configurations, Chinchilla law "
                  "(README, Backtests)")

_Q = (0.5 - 0.682689492137086 / 2, 0.5 + 0.682689492137086 / 2)   # central 68.27%: +-1 sd of a normal


class Discrepancy:
    """A law's discrepancy: ``tau`` per decade outside the data on the log target, and where it came from.

    Fixed (``tau`` a number): ``log y += Normal(0, (tau d)**2)``. Learnt (``tau = "learnt"``): a drift of the
    law per decade outside the data, learnt from nested backtests (:func:`drift_posterior`,
    :func:`bayes_scaling.analysis.backtest.learn_discrepancy`)::

        log y += (drift + drift_sd * u) * d + tau_e * d * z,     u, z ~ Normal(0, 1)

    ``u`` one per predictive draw (shared by all points: the law's error keeps its sign), ``z`` per draw and
    point. ``"learnt"`` alone is the shipped population's (:func:`load_population`: no drift of its own,
    ``drift_sd`` the population's spread of drifts); ``drift``, ``drift_sd``, ``tau_e`` give one's own.
    ``scale_sd`` (optional, default 0): the slope's sd is itself uncertain, log-normal with median ``drift_sd``,
    ``drift_sd * exp(scale_sd * v)``, ``v ~ Normal(0, 1)`` one per draw (a learnt scale,
    :func:`learnt_scale`). :attr:`tau` is then ``sqrt(drift**2 + drift_sd**2 exp(2 scale_sd**2) + tau_e**2)``,
    the fixed value with the same mean square.

    >>> Discrepancy.from_dict({"tau": 0.02, "source": "my backtest"}).tau
    0.02
    >>> Discrepancy().tau == DEFAULT_TAU
    True
    >>> d = Discrepancy.from_dict({"tau": "learnt", "drift": -0.03, "drift_sd": 0.04, "tau_e": 0.0})
    >>> d.learnt, round(d.tau, 3)
    (True, 0.05)
    """

    __slots__ = ("tau", "source", "drift", "drift_sd", "tau_e", "scale_sd")

    def __init__(self, tau: float | str = DEFAULT_TAU, source: str | None = None, *, drift: float | None = None,
                 drift_sd: float | None = None, tau_e: float | None = None, scale_sd: float | None = None):
        if source is not None and not isinstance(source, str):
            raise ConfigError(f"[discrepancy] source must be a string, got {source!r}")
        given = {k: v for k, v in (("drift", drift), ("drift_sd", drift_sd), ("tau_e", tau_e)) if v is not None}
        self.scale_sd = 0.0
        if scale_sd is not None:
            if not isinstance(tau, str) or not given:
                raise ConfigError('[discrepancy] scale_sd goes with tau = "learnt" and drift, drift_sd, tau_e')
            self.scale_sd = check_tau(scale_sd, "[discrepancy] scale_sd")
        if isinstance(tau, str):
            if tau != "learnt":
                raise ConfigError(f'[discrepancy] tau must be a number >= 0 or "learnt", got {tau!r}')
            if given and len(given) != 3:
                raise ConfigError('[discrepancy] tau = "learnt" needs drift, drift_sd and tau_e together, or none '
                                  "(the shipped population's)")
            if not given:
                pop = load_population()
                given = {"drift": 0.0, "drift_sd": pop["drift_sd"], "tau_e": pop["tau_e"]}
                source = source or f"population of real data sets: {pop['source']}"
            from bayes_scaling.laws.validate import is_finite_number

            if not is_finite_number(given["drift"]) or abs(given["drift"]) > MAX_TAU:
                raise ConfigError(f"[discrepancy] drift must be a number in [-{MAX_TAU:g}, {MAX_TAU:g}] (per decade "
                                  f"on the log target), got {given['drift']!r}")
            self.drift = float(given["drift"])
            self.drift_sd = check_tau(given["drift_sd"], "[discrepancy] drift_sd")
            self.tau_e = check_tau(given["tau_e"], "[discrepancy] tau_e")
            self.tau = check_tau(float(np.sqrt(self.drift**2 + self.drift_sd**2 * np.exp(2 * self.scale_sd**2)
                                               + self.tau_e**2)),
                                 "[discrepancy] sqrt(drift^2 + drift_sd^2 exp(2 scale_sd^2) + tau_e^2)")
            self.source = source or ""
            return
        if given:
            raise ConfigError(f'[discrepancy] {", ".join(given)} go with tau = "learnt", got tau = {tau!r}')
        self.drift = self.drift_sd = self.tau_e = None
        self.tau = check_tau(tau, "[discrepancy] tau")
        self.source = DEFAULT_SOURCE if source is None and self.tau == DEFAULT_TAU else (source or "")

    @property
    def learnt(self) -> bool:
        return self.drift is not None

    @classmethod
    def from_dict(cls, d: Any) -> Discrepancy:
        if not isinstance(d, dict):
            raise ConfigError(f"[discrepancy] must be a table, got {d!r}")
        bad = set(d) - {"tau", "source", "drift", "drift_sd", "tau_e", "scale_sd"}
        if bad:
            raise ConfigError(f"[discrepancy]: unknown key(s) {', '.join(sorted(bad))} (drift, drift_sd, tau_e and "
                              'scale_sd go with tau = "learnt"); expected tau, source, drift, drift_sd, tau_e, '
                              "scale_sd")
        if "tau" not in d:
            raise ConfigError('[discrepancy] needs tau (per decade outside the data, on the log target; 0: off; '
                              '"learnt": learnt from nested backtests)')
        return cls(d["tau"], d.get("source"), drift=d.get("drift"), drift_sd=d.get("drift_sd"), tau_e=d.get("tau_e"),
                   scale_sd=d.get("scale_sd"))

    def to_dict(self) -> dict[str, Any]:
        src = {"source": self.source} if self.source else {}
        if self.learnt:
            scale = {"scale_sd": self.scale_sd} if self.scale_sd else {}
            return {"tau": "learnt", "drift": self.drift, "drift_sd": self.drift_sd, "tau_e": self.tau_e, **scale,
                    **src}
        return {"tau": self.tau, **src}

    def slope_draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of the learnt slope per decade, ``drift + drift_sd exp(scale_sd v) u`` (class docstring)."""
        sd = self.drift_sd * (np.exp(self.scale_sd * rng.standard_normal(n)) if self.scale_sd else 1.0)
        return self.drift + sd * rng.standard_normal(n)

    def apply(self, draws: np.ndarray, dist: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draws (samples x points) with the discrepancy (class docstring); ``dist`` per point."""
        if not self.learnt:
            return widen(draws, dist, self.tau, rng)
        slope = self.slope_draws(draws.shape[0], rng)
        out = widen(draws, dist, self.tau_e, rng)
        return out * np.exp(slope[:, None] * np.asarray(dist, dtype=float)[None, :])

    def __eq__(self, other) -> bool:
        key = lambda x: (x.tau, x.source, x.drift, x.drift_sd, x.tau_e, x.scale_sd)   # noqa: E731
        return isinstance(other, Discrepancy) and key(self) == key(other)

    def __repr__(self) -> str:
        if self.learnt:
            scale = f" (log sd {self.scale_sd:g})" if self.scale_sd else ""
            return f"Discrepancy(learnt: drift {self.drift:g} +- {self.drift_sd:g}{scale}, tau_e {self.tau_e:g})"
        return f"Discrepancy(tau={self.tau:g})"


#: The largest ``tau`` accepted: a factor exp(10) (about 22000) per decade is no discrepancy but an overflow
#: (``exp(tau * d * z)`` of a prediction's draws is infinite beyond it).
MAX_TAU = 10.0


def check_tau(tau: Any, what: str = "discrepancy") -> float:
    """``tau`` as a float in [0, :data:`MAX_TAU`] (ConfigError otherwise)."""
    from bayes_scaling.laws.validate import is_finite_number

    if not is_finite_number(tau) or tau < 0:
        raise ConfigError(f"{what} must be a number >= 0 (per decade outside the data; 0: off), got {tau!r}")
    if tau > MAX_TAU:
        raise ConfigError(f"{what} = {tau!r} is beyond {MAX_TAU:g} per decade on the log target (a factor "
                          f"exp({MAX_TAU:g}) per decade): the intervals would overflow; typical values are 0.01-0.2")
    return float(tau)


def distance_columns(inputs: Sequence[str]) -> list[str]:
    """The columns the distance is measured along: the inputs, and ``C`` (= 6 N D) for laws with N and D.

    >>> distance_columns(["D", "N"]), distance_columns(["D_F", "N"])
    (['D', 'N', 'C'], ['D_F', 'N'])
    """
    cols = list(dict.fromkeys(inputs))
    if "N" in cols and "D" in cols and "C" not in cols:
        cols.append("C")
    return cols


def _column(table: pd.DataFrame, c: str, inputs: Sequence[str]) -> np.ndarray | None:
    if c == "C" and "N" in inputs and "D" in inputs and "C" not in inputs:
        from bayes_scaling.laws.formulas import training_compute

        if "N" not in table.columns or "D" not in table.columns:
            return None
        return np.asarray(training_compute(*(pd.to_numeric(table[k], errors="coerce").to_numpy(dtype=float)
                                              for k in ("N", "D"))), dtype=float)
    if c not in table.columns:
        return None
    return pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float)


def outside_range(values, low: float, high: float, *, log10: bool = False):
    """Signed distance of ``values`` outside ``[low, high]`` (module docstring), the one formula of the distance:

    - ``low > 0`` and every value > 0: decades, ``log10(x / high)`` above (> 0), ``log10(x / low)`` below (< 0);
    - ``low == 0 < high`` and no value < 0: ``log10(x / high)`` above, nothing below;
    - otherwise multiples of the width, ``(x - high) / (high - low)`` above, ``(x - low) / (high - low)`` below;

    0 inside, NaN for NaN. Numbers, numpy arrays and DataArrays (``log10=True``: the values are already
    ``log10 x``, e.g. where ``x`` underflows; the range is then positive).

    >>> outside_range(np.array([1e12, 1e6, 1e3]), 1e5, 1e9).tolist()
    [3.0, 0.0, -2.0]
    """
    lo, hi = float(low), float(high)
    if hasattr(values, "dims"):
        import xarray as xr

        x, where = values, xr.where
    else:
        x, where = np.asarray(values, dtype=float), np.where
    with np.errstate(all="ignore"):
        finite = np.asarray(x)[np.isfinite(np.asarray(x))]
        if log10 or (lo > 0 and np.all(finite > 0)):
            lx = x if log10 else np.log10(x)
            lo_, hi_ = np.log10(lo), np.log10(hi)
            out = where(lx > hi_, lx - hi_, where(lx < lo_, lx - lo_, 0.0))
        elif lo == 0 and hi > 0 and np.all(finite >= 0):
            out = where(x > hi, np.log10(x / hi), 0.0)
        else:
            w = (hi - lo) or 1.0
            out = where(x > hi, (x - hi) / w, where(x < lo, (x - lo) / w, 0.0))
    return where(np.isnan(x), np.nan, out)


def signed_outside(values, data_values) -> np.ndarray:
    """Signed distance of ``values`` outside the range of ``data_values`` (:func:`outside_range` of their
    finite minimum and maximum; NaN for NaN values, and all NaN when the data have no finite value).

    >>> signed_outside([1e3, 1e7, 1e1], [1e2, 1e5]).tolist()
    [0.0, 2.0, -1.0]
    >>> signed_outside([0.0, 100.0, 2e5], [0.0, 200.0, 2e4]).tolist()     # zeros in the data: the range reaches 0
    [0.0, 0.0, 1.0]
    """
    x = np.asarray(values, dtype=float).ravel()
    v = np.asarray(data_values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.full(x.shape, np.nan)
    return np.asarray(outside_range(x, float(v.min()), float(v.max())), dtype=float)


def outside_table(data: pd.DataFrame, points: pd.DataFrame, inputs: Sequence[str],
                  extra: Sequence[str] = ()) -> pd.DataFrame:
    """How far each of ``points`` lies outside ``data``: ``outside_<column>`` (signed, module docstring) for each
    distance column (:func:`distance_columns` of ``inputs``, then ``extra`` columns present in both tables),
    and ``outside``, the largest absolute value (0 inside everywhere). Index: ``points``'."""
    out = pd.DataFrame(index=points.index)
    for c in dict.fromkeys([*distance_columns(inputs), *extra]):
        x, v = _column(points, c, inputs), _column(data, c, inputs)
        if x is None or v is None:
            continue
        out[f"outside_{c}"] = signed_outside(x, v)
    out["outside"] = out.abs().max(axis=1).fillna(0.0) if len(out.columns) else 0.0
    return out


def distance_outside(data: pd.DataFrame, points: pd.DataFrame, inputs: Sequence[str],
                     extra: Sequence[str] = ()) -> np.ndarray:
    """``d``: the largest distance of each point outside ``data`` (:func:`outside_table`'s ``outside``)."""
    return outside_table(data, points, inputs, extra)["outside"].to_numpy(dtype=float)


def widen(draws: np.ndarray, dist: np.ndarray, tau: float, rng: np.random.Generator) -> np.ndarray:
    """Draws (samples x points) times ``exp(tau * d * z)``, ``z ~ Normal(0, 1)`` per draw and point: the
    discrepancy added on the log scale. ``dist``: per point (1-d) or per draw and point (the draws' shape).
    ``tau = 0`` returns the draws unchanged (no random numbers used)."""
    tau = check_tau(tau)
    if tau == 0:
        return draws
    d = np.asarray(dist, dtype=float)
    return draws * np.exp(tau * (d[None, :] if d.ndim == 1 else d) * rng.standard_normal(draws.shape))


def robust_sd(log_draws: np.ndarray) -> np.ndarray:
    """Half the width of the central 68.27% interval of each column (the sd for a normal; finite for
    Student-t draws without a variance)."""
    lo, hi = nanquantile(log_draws, _Q, axis=0)
    return (hi - lo) / 2


def variance_split(log_mean: np.ndarray, tau: float, dist: np.ndarray,
                   log_noise: np.ndarray | None = None) -> pd.DataFrame:
    """Per point, the sd of each source on the log scale and its share of ``s_p**2 + s_n**2 + (tau d)**2``
    (module docstring): ``sd_parameters``, ``sd_noise``, ``sd_discrepancy`` and ``share_parameters``,
    ``share_noise``, ``share_discrepancy`` (summing to 1). ``log_mean``: draws of ``log f`` (samples x points);
    ``log_noise``: draws of the noise on the log scale (``None``: no noise, ``kind="mean"``).

    >>> rng = np.random.default_rng(0)
    >>> t = variance_split(rng.normal(0, 0.01, (4000, 2)), 0.05, np.array([0.0, 1.0]))
    >>> t["share_discrepancy"].round(2).tolist()
    [0.0, 0.96]
    """
    sp = robust_sd(log_mean)
    sn = np.zeros_like(sp) if log_noise is None else robust_sd(log_noise)
    sd = check_tau(tau) * np.asarray(dist, dtype=float)
    total = sp**2 + sn**2 + sd**2
    with np.errstate(all="ignore"):
        share = [np.where(total > 0, s**2 / total, np.nan) for s in (sp, sn, sd)]
    return pd.DataFrame({"sd_parameters": sp, "sd_noise": sn, "sd_discrepancy": sd, "share_parameters": share[0],
                         "share_noise": share[1], "share_discrepancy": share[2]})


# ---- a hierarchical log-normal prior of tau over data sets ----------------------------------------------------
# (scored against the fixed tau and the learnt drift in benchmarks/discrepancy_population.py; docs/validation.md:
# it did not beat the fixed tau, so predictions use the drift below)
#: The grid of ``tau`` (per decade, log-spaced) on which the learnt discrepancy's likelihoods, priors and
#: posteriors are evaluated.
TAU_GRID = np.geomspace(1e-3, 1.0, 241)


def tau_log_likelihood(resid, sd, dist, *, fold=None, rho: float = 0.0, taus: np.ndarray = TAU_GRID) -> np.ndarray:
    """``log p(resid | tau)`` at each of ``taus``, from held-out residuals of a law (nested backtests).

    ``resid``: residuals of ``log y`` against the predictive median; ``sd``: the predictive sd of ``log y``;
    ``dist``: the distance outside the fitted runs; ``fold``: which refit each residual comes from. Within a
    fold the residuals are ``Normal(0, S + tau**2 [(1 - rho) diag(d**2) + rho d d^T])``, ``S = diag(sd**2)``:
    ``rho = 0`` independent discrepancies per run, ``rho = 1`` one shared draw (a bias of the whole fold, with
    the sign shared by all its runs), the folds independent.

    >>> rng = np.random.default_rng(1); d = rng.uniform(0.2, 1, 2000)
    >>> ll = tau_log_likelihood(rng.normal(0, np.hypot(0.01, 0.05 * d)), np.full(2000, 0.01), d)
    >>> round(float(TAU_GRID[np.argmax(ll)]), 2)
    0.05
    """
    resid, sd, dist = (np.asarray(a, dtype=float).ravel() for a in (resid, sd, dist))
    fold = np.zeros(len(resid)) if fold is None else np.asarray(fold, dtype=float).ravel()
    ok = np.isfinite(resid) & np.isfinite(sd) & np.isfinite(dist) & np.isfinite(fold)
    resid, sd, dist, fold = resid[ok], np.maximum(sd[ok], 1e-9), np.abs(dist[ok]), fold[ok]
    taus = np.asarray(taus, dtype=float)
    ll = np.zeros(len(taus))
    if not 0 <= rho <= 1:
        raise ValueError(f"rho must be in [0, 1], got {rho!r}")
    for f in np.unique(fold):
        m = fold == f
        r, s2, d = resid[m], sd[m] ** 2, dist[m]
        # Sherman-Morrison on A = S + tau^2 (1 - rho) diag(d^2), plus the rank one tau^2 rho d d^T
        a = s2[None, :] + (taus[:, None] ** 2) * (1 - rho) * d[None, :] ** 2            # taus x runs
        q = np.sum(r[None, :] ** 2 / a, axis=1)
        logdet = np.sum(np.log(a), axis=1)
        if rho > 0:
            u = taus**2 * rho
            dad, dar = np.sum(d[None, :] ** 2 / a, axis=1), np.sum(d[None, :] * r[None, :] / a, axis=1)
            logdet = logdet + np.log1p(u * dad)
            q = q - u * dar**2 / (1 + u * dad)
        ll += -0.5 * (logdet + q + len(r) * np.log(2 * np.pi))
    return ll


class TauPrior:
    """A log-normal distribution of ``tau``: ``log tau ~ Normal(mu, sd)``, on :data:`TAU_GRID`.

    The population prior of a data set's ``tau`` (:func:`population_prior`), or the posterior of one set's
    ``tau`` given its own nested backtests (:meth:`update`, summarised as a log-normal). Used by the
    evaluation of ``benchmarks/discrepancy_population.py``; predictions use the learnt drift.

    >>> p = TauPrior(np.log(0.05), 0.5)
    >>> round(p.median, 3), p.update(np.zeros(len(TAU_GRID))) == p     # a flat likelihood changes nothing
    (0.05, True)
    """

    __slots__ = ("mu", "sd")

    def __init__(self, mu: float, sd: float):
        from bayes_scaling.laws.validate import is_finite_number

        if not is_finite_number(mu) or not is_finite_number(sd) or sd <= 0:
            raise ConfigError(f"a log-normal tau needs a finite mu (log tau) and sd > 0, got mu={mu!r}, sd={sd!r}")
        self.mu, self.sd = float(mu), float(sd)

    @property
    def median(self) -> float:
        return float(np.exp(self.mu))

    @property
    def rms(self) -> float:
        """``sqrt(E[tau**2])``: the fixed ``tau`` with the same discrepancy variance."""
        return float(np.exp(self.mu + self.sd**2))

    def log_weights(self, taus: np.ndarray = TAU_GRID) -> np.ndarray:
        """Log of the grid weights (the grid is uniform in ``log tau``), normalised."""
        lw = -0.5 * ((np.log(taus) - self.mu) / self.sd) ** 2
        return lw - _logsumexp(lw)

    def update(self, loglik: np.ndarray, taus: np.ndarray = TAU_GRID) -> TauPrior:
        """The posterior given ``loglik`` (:func:`tau_log_likelihood` on ``taus``), moment-matched on
        ``log tau``."""
        lw = self.log_weights(taus) + np.asarray(loglik, dtype=float)
        w = np.exp(lw - _logsumexp(lw))
        lt = np.log(taus)
        m = float(np.sum(w * lt))
        return TauPrior(m, max(float(np.sqrt(np.sum(w * (lt - m) ** 2))), 1e-3))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of ``tau`` (capped at :data:`MAX_TAU`)."""
        return np.minimum(np.exp(self.mu + self.sd * rng.standard_normal(n)), MAX_TAU)

    def __eq__(self, other) -> bool:
        return isinstance(other, TauPrior) and np.allclose([self.mu, self.sd], [other.mu, other.sd], atol=1e-9)

    def __repr__(self) -> str:
        return f"TauPrior(median={self.median:.3g}, sd_log={self.sd:.3g})"


def _logsumexp(x: np.ndarray, axis=None):
    from scipy.special import logsumexp

    return logsumexp(x, axis=axis)


def population_prior(logliks: Sequence[np.ndarray], *, taus: np.ndarray = TAU_GRID,
                     sd_scale: float = 1.0) -> TauPrior:
    """The prior of a new data set's ``tau`` from the nested backtests of several: each set ``s`` has its own
    ``tau_s``, ``log tau_s ~ Normal(mu, sd)``; ``loglik_s`` (:func:`tau_log_likelihood`) its evidence. The
    hyper-parameters get a flat prior on ``mu`` and ``sd ~ HalfNormal(sd_scale)``; their posterior on a grid
    is integrated, and the predictive of a new set's ``log tau`` returned as a log-normal (its mean and sd).

    ``p(mu, sd | data) ~ p(sd) prod_s sum_tau exp(loglik_s(tau)) Normal(log tau; mu, sd)``
    """
    lt = np.log(np.asarray(taus, dtype=float))
    L = np.array([np.asarray(ll, dtype=float) for ll in logliks])
    if L.ndim != 2 or L.shape[1] != len(lt) or len(L) == 0:
        raise ValueError("population_prior needs one log-likelihood per data set on the grid taus")
    mus = np.linspace(lt[0], lt[-1], 121)
    sds = np.geomspace(0.05, 4.0, 80)
    M, S = np.meshgrid(mus, sds, indexing="ij")                                         # mu x sd
    logp = -0.5 * ((lt[None, None, :] - M[..., None]) / S[..., None]) ** 2 - np.log(S[..., None])
    logp = logp - _logsumexp(logp, axis=-1)[..., None]                                   # normalised on the grid
    marg = sum(_logsumexp(logp + ll[None, None, :], axis=-1) for ll in L)               # mu x sd
    post = marg - 0.5 * (S / sd_scale) ** 2 + np.log(S)          # HalfNormal(sd) on a log-spaced grid of sd
    w = np.exp(post - _logsumexp(post))
    pred = np.sum(w[..., None] * np.exp(logp), axis=(0, 1))                              # over the tau grid
    m = float(np.sum(pred * lt))
    return TauPrior(m, float(np.sqrt(np.sum(pred * (lt - m) ** 2))))


#: The shipped population (``bayes_scaling/data/datasets/discrepancy_population.json``, written by
#: ``benchmarks/discrepancy_population.py ship``).
POPULATION_FILE = "discrepancy_population.json"


def load_population() -> dict[str, Any]:
    """The shipped population of the learnt discrepancy over real data sets: ``tau_b``, ``tau_e``
    (:func:`population_drift`), ``lam``, ``lam_sd``, ``kappa`` (:func:`population_transfer`), ``drift_sd`` (a new
    data set's drift slope sd without nested backtests: :func:`transfer_slope` of ``(0, tau_b)``), ``source``,
    and ``sets`` (per data set: its nested-backtest and held-out residuals, from which the rest is recomputed)."""
    import json
    from importlib import resources

    return json.loads(resources.files("bayes_scaling.data.datasets").joinpath(POPULATION_FILE).read_text())


# ---- the learnt drift: a shared, signed error of the law per decade outside the data ----------------------------
#: Grids of the drift's population scales: ``tau_b`` (sd of a data set's drift slope ``b``) and ``tau_e`` (the
#: independent discrepancy per run around it), per decade.
DRIFT_TAU_B = np.geomspace(1e-3, 1.0, 61)
DRIFT_TAU_E = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 61)])


def _clean(resid, sd, dist):
    resid, sd, dist = (np.asarray(a, dtype=float).ravel() for a in (resid, sd, dist))
    ok = np.isfinite(resid) & np.isfinite(sd) & np.isfinite(dist)
    return resid[ok], np.maximum(sd[ok], 1e-9), np.abs(dist[ok])


def drift_log_likelihood(resid, sd, dist, *, tau_b: np.ndarray = DRIFT_TAU_B,
                         tau_e: np.ndarray = DRIFT_TAU_E) -> np.ndarray:
    """``log p(resid | tau_b, tau_e)`` on the grid ``tau_b x tau_e`` of the drift model of one data set's
    nested-backtest residuals (all its refits share the slope ``b``)::

        resid_i = b d_i + e_i,   b ~ Normal(0, tau_b**2),   e_i ~ Normal(0, sd_i**2 + tau_e**2 d_i**2)

    i.e. ``resid ~ Normal(0, diag(sd**2 + tau_e**2 d**2) + tau_b**2 d d^T)`` (Sherman-Morrison)."""
    r, s, d = _clean(resid, sd, dist)
    v = s[None, :] ** 2 + (np.asarray(tau_e)[:, None] * d[None, :]) ** 2                  # tau_e x runs
    q, logdet = np.sum(r**2 / v, axis=1), np.sum(np.log(v), axis=1)
    dvd, dvr = np.sum(d**2 / v, axis=1), np.sum(d * r / v, axis=1)
    u = np.asarray(tau_b)[:, None] ** 2                                                   # tau_b x 1
    return -0.5 * (logdet[None, :] + np.log1p(u * dvd[None, :]) + q[None, :]
                   - u * dvr[None, :] ** 2 / (1 + u * dvd[None, :]) + len(r) * np.log(2 * np.pi))


def population_drift(logliks: Sequence[np.ndarray], *, scale: float = 1.0) -> tuple[float, float]:
    """``(tau_b, tau_e)``: the posterior mode over data sets (:func:`drift_log_likelihood` of each, summed),
    with ``HalfNormal(scale)`` priors on both scales."""
    tb, te = DRIFT_TAU_B[:, None], DRIFT_TAU_E[None, :]
    total = np.sum(logliks, axis=0) - 0.5 * (tb / scale) ** 2 - 0.5 * (te / scale) ** 2
    i, j = np.unravel_index(int(np.argmax(total)), total.shape)
    return float(DRIFT_TAU_B[i]), float(DRIFT_TAU_E[j])


def drift_posterior(resid, sd, dist, tau_b: float, tau_e: float) -> tuple[float, float]:
    """The posterior mean and sd of a data set's drift slope ``b`` (per decade, on the log target) given its
    nested-backtest residuals (:func:`drift_log_likelihood`'s model; conjugate normal):
    ``prec = 1 / tau_b**2 + sum d**2 / v``, ``mean = sum(d r / v) / prec``, ``v = sd**2 + tau_e**2 d**2``.

    >>> m, s = drift_posterior([0.05, 0.1], [0.001, 0.001], [0.5, 1.0], tau_b=1.0, tau_e=0.0)
    >>> round(m, 3)
    0.1
    """
    r, s, d = _clean(resid, sd, dist)
    v = s**2 + (tau_e * d) ** 2
    prec = 1.0 / tau_b**2 + np.sum(d**2 / v)
    return float(np.sum(d * r / v) / prec), float(1.0 / np.sqrt(prec))


#: Grids of the drift's transfer from the nested backtests to a forecast: ``lam`` (the share of the nested
#: slope that carries over), ``mu`` (the mean change of slope from the nested backtests to a forecast, per decade)
#: and ``kappa`` (sd of the change of slope around it, per decade).
TRANSFER_LAM = np.linspace(0.0, 1.5, 31)
TRANSFER_MU = np.linspace(-0.15, 0.15, 61)
TRANSFER_KAPPA = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 61)])
#: The keys of :func:`population_transfer`'s summary (the arguments of :func:`transfer_slope` after the slope's)
TRANSFER_KEYS = ("lam", "lam_sd", "kappa", "mu", "mu_sd", "lam_mu_cov")


def transfer_log_likelihood(resid, sd, dist, b_mean: float, b_sd: float, *, tau_e: float = 0.0,
                            lam: np.ndarray = TRANSFER_LAM, mu: np.ndarray = TRANSFER_MU,
                            kappa: np.ndarray = TRANSFER_KAPPA) -> np.ndarray:
    """``log p(resid | lam, mu, kappa)`` on the grid ``lam x mu x kappa``: the held-out residuals of one data
    set's forecast given the drift slope learnt from its nested backtests (posterior ``b_mean``, ``b_sd``:
    :func:`drift_posterior`)::

        resid_i = (lam b + mu + eta) d_i + e_i,   b ~ Normal(b_mean, b_sd**2),   eta ~ Normal(0, kappa**2),
        e_i ~ Normal(0, sd_i**2 + tau_e**2 d_i**2)

    (``b`` and ``eta`` shared by the set's held-out runs). ``mu`` is the slope a forecast gains beyond the
    nested backtests' on average over data sets (without it, a change common to the sets is counted as spread,
    ``kappa``, and every interval widens by it); ``mu = [0]`` leaves it out."""
    r, s, d = _clean(resid, sd, dist)
    lam, mu, kappa = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (lam, mu, kappa))
    v = s**2 + (tau_e * d) ** 2
    dvd, logv = np.sum(d**2 / v), np.sum(np.log(v))
    out = np.empty((len(lam), len(mu), len(kappa)))
    for i, lm in enumerate(lam):
        e = r[None, :] - (lm * b_mean + mu[:, None]) * d[None, :]                          # mu x runs
        dvr, q = np.sum(d * e / v, axis=1)[:, None], np.sum(e**2 / v, axis=1)[:, None]
        u = (kappa**2 + (lm * b_sd) ** 2)[None, :]                                         # 1 x kappa
        out[i] = -0.5 * (logv + np.log1p(u * dvd) + q - u * dvr**2 / (1 + u * dvd) + len(r) * np.log(2 * np.pi))
    return out


def population_transfer(logliks: Sequence[np.ndarray], *, mu: np.ndarray = TRANSFER_MU) -> dict[str, float]:
    """The transfer's posterior over the grid ``lam x mu x kappa`` from the summed
    :func:`transfer_log_likelihood` of several data sets (flat priors on ``lam``, ``mu`` and ``kappa``),
    summarised as ``lam``, ``mu`` (means), ``lam_sd``, ``mu_sd``, ``lam_mu_cov`` and ``kappa``
    (``sqrt(E[kappa**2])``): a plug-in mode would understate the spread with a few data sets. ``mu``: the grid
    the log-likelihoods were computed on (a ``lam x kappa`` array: no mean change of slope)."""
    total = np.sum(logliks, axis=0)
    if total.ndim == 2:
        total, mus = total[:, None, :], np.zeros(1)
    else:
        mus = np.atleast_1d(np.asarray(mu, dtype=float))
    lp = total + np.log(np.gradient(TRANSFER_KAPPA))[None, None, :]  # flat in kappa on the log-spaced grid
    w = np.exp(lp - _logsumexp(lp))
    wl, wm, wk, wlm = w.sum(axis=(1, 2)), w.sum(axis=(0, 2)), w.sum(axis=(0, 1)), w.sum(axis=2)
    lam, mu = float(np.sum(wl * TRANSFER_LAM)), float(np.sum(wm * mus))
    return {"lam": lam, "lam_sd": float(np.sqrt(np.sum(wl * (TRANSFER_LAM - lam) ** 2))),
            "mu": mu, "mu_sd": float(np.sqrt(np.sum(wm * (mus - mu) ** 2))),
            "lam_mu_cov": float(np.sum(wlm * np.outer(TRANSFER_LAM - lam, mus - mu))),
            "kappa": float(np.sqrt(np.sum(wk * TRANSFER_KAPPA**2)))}


def transfer_slope(b_mean: float, b_sd: float, lam: float, lam_sd: float, kappa: float, mu: float = 0.0,
                   mu_sd: float = 0.0, lam_mu_cov: float = 0.0) -> tuple[float, float]:
    """The mean and sd of a forecast's drift slope ``lam b + mu + eta`` given a data set's nested slope
    (``b ~ Normal(b_mean, b_sd**2)``) and the population's transfer (:func:`population_transfer`)::

        mean = lam b_mean + mu,
        var = kappa**2 + (lam**2 + lam_sd**2) b_sd**2 + lam_sd**2 b_mean**2 + mu_sd**2 + 2 b_mean cov(lam, mu)

    ``b_mean = 0``, ``b_sd = tau_b``: a data set without nested backtests of its own.

    >>> transfer_slope(0.1, 0.0, 1.0, 0.0, 0.02)
    (0.1, 0.02)
    >>> round(transfer_slope(0.1, 0.0, 1.0, 0.0, 0.02, mu=-0.03)[0], 6)
    0.07
    """
    var = (kappa**2 + (lam**2 + lam_sd**2) * b_sd**2 + lam_sd**2 * b_mean**2 + mu_sd**2
           + 2 * b_mean * lam_mu_cov)
    return float(lam * b_mean + mu), float(np.sqrt(max(var, 0.0)))


# ---- populations of several laws: the shipped files, a population from per-set residuals, one's own drift --------
#: The shipped populations by name: ``"chinchilla"`` (:data:`POPULATION_FILE`: the Chinchilla law on 17 real data
#: sets) and ``"m4_vision"`` (the M4 learning-curve law on the 72 vision learning curves of Alabdulmohsin et al.
#: 2022, written by ``benchmarks/m4_vision.py ship``).
POPULATIONS = {"chinchilla": POPULATION_FILE, "m4_vision": "discrepancy_population_m4.json"}


def load_named_population(name: str) -> dict[str, Any]:
    """One of the shipped :data:`POPULATIONS` (the same keys as :func:`load_population`'s)."""
    import json
    from importlib import resources

    if name not in POPULATIONS:
        raise ConfigError(f"unknown discrepancy population {name!r}; expected one of {', '.join(POPULATIONS)}")
    return json.loads(resources.files("bayes_scaling.data.datasets").joinpath(POPULATIONS[name]).read_text())


def population_for_law(law: str) -> str:
    """The shipped population a law's learnt discrepancy defaults to: ``"m4_vision"`` for the M4 learning-curve
    laws (names starting ``m4``), ``"chinchilla"`` for the rest.

    >>> population_for_law("m4_error_rate"), population_for_law("kaplan")
    ('m4_vision', 'chinchilla')
    """
    return "m4_vision" if str(law).startswith("m4") else "chinchilla"


def population_summary(sets: dict[str, dict[str, Any]], transfer_sets: Sequence[str] | None = None
                       ) -> dict[str, float]:
    """A population from per-set residuals (``{name: {"nested": {resid, sd, dist}, "heldout": {...}}}``, the
    shipped files' ``sets``): ``tau_b``, ``tau_e`` from every set's nested backtests (:func:`population_drift`),
    the transfer (:data:`TRANSFER_KEYS`) from the held-out residuals of ``transfer_sets`` (default: every set)
    given their drift posteriors (:func:`population_transfer`), and ``drift_sd``, a new set's slope sd without
    nested backtests of its own (:func:`transfer_slope` of ``(0, tau_b)``)."""
    tb, te = population_drift([drift_log_likelihood(**s["nested"]) for s in sets.values()])
    lls = []
    for s in (sets.values() if transfer_sets is None else (sets[k] for k in transfer_sets)):
        bm, bs = drift_posterior(**s["nested"], tau_b=tb, tau_e=te)
        lls.append(transfer_log_likelihood(**s["heldout"], b_mean=bm, b_sd=bs, tau_e=te))
    tr = population_transfer(lls)
    return {"tau_b": tb, "tau_e": te, **tr, "drift_sd": transfer_slope(0.0, tb, **tr)[1]}


def learnt_drift(resid, sd, dist, population: dict[str, Any], source: str = "") -> Discrepancy:
    """A data set's learnt discrepancy from its nested-backtest residuals and a population (a
    :func:`population_summary`, or a shipped file): the slope's posterior (:func:`drift_posterior` with the
    population's ``tau_b``, ``tau_e``) carried to a forecast (:func:`transfer_slope`)::

        drift, drift_sd = transfer_slope(b_mean, b_sd, lam, lam_sd, kappa, mu, mu_sd, lam_mu_cov),   tau_e

    No residuals: the population's own (``b_mean = 0``, ``b_sd = tau_b``). A set whose nested residuals drift
    gets its drift and, through ``lam_sd``, a wider slope sd:

    >>> pop = {"tau_b": 0.05, "tau_e": 0.0, "lam": 1.0, "lam_sd": 0.3, "kappa": 0.02, "mu": 0.0}
    >>> flat, drifting = (learnt_drift(np.full(5, r), np.full(5, 0.005), np.linspace(0.1, 0.3, 5), pop)
    ...                   for r in (0.0, 0.06))
    >>> flat.tau < drifting.tau
    True
    """
    bm, bs = drift_posterior(resid, sd, dist, population["tau_b"], population["tau_e"])
    drift, drift_sd = transfer_slope(bm, bs, **{k: population[k] for k in TRANSFER_KEYS if k in population})
    return Discrepancy("learnt", source or None, drift=drift, drift_sd=drift_sd, tau_e=population["tau_e"])


#: The keys of a population's learnt scale (:func:`scale_population`)
SCALE_KEYS = ("scale_mu", "scale_sd", "scale_ratio", "mean_slope")


def _pooled_ml_tau(parts: Sequence[dict[str, Any]], rho: float) -> float:
    ll = sum(tau_log_likelihood(p["resid"], p["sd"], p["dist"], rho=rho) for p in parts if len(p["resid"]))
    return float(TAU_GRID[int(np.argmax(ll))])


def scale_population(sets: dict[str, dict[str, Any]], heldout_sets: Sequence[str] | None = None,
                     mean_slope: float = 0.0) -> dict[str, float]:
    """The learnt scale's population from per-set residuals (as :func:`population_summary`'s): each set's
    forecast error is one shared slope per decade, ``log y += tau_s d u`` (``u ~ Normal(0, 1)``, the
    residuals' ``rho = 1``), with ``log tau_s ~ Normal(scale_mu, scale_sd)`` over the held-out residuals of
    ``heldout_sets`` (default: every set; :func:`population_prior`); ``scale_ratio``, the pooled
    maximum-likelihood ``tau`` of those held-out residuals over that of every set's nested backtests (a
    forecast's scale per unit of the nested backtests' scale); ``mean_slope`` as given (0: none)."""
    keys = list(sets) if heldout_sets is None else list(heldout_sets)
    prior = population_prior([tau_log_likelihood(**sets[k]["heldout"], rho=1.0) for k in keys])
    ratio = _pooled_ml_tau([sets[k]["heldout"] for k in keys], 1.0) / _pooled_ml_tau(
        [s["nested"] for s in sets.values()], 1.0)
    return {"scale_mu": prior.mu, "scale_sd": prior.sd, "scale_ratio": ratio, "mean_slope": float(mean_slope)}


def learnt_scale(resid, sd, dist, population: dict[str, Any], *, fold=None, source: str = "") -> Discrepancy:
    """A data set's learnt discrepancy scale: the population's log-normal ``tau`` (:func:`scale_population`)
    updated by the set's nested-backtest residuals, read at ``tau / scale_ratio`` (the nested backtests see a
    ``scale_ratio`` times smaller scale than a forecast), ``rho = 1`` (:func:`tau_log_likelihood`)::

        p(tau | nested) ~ LogNormal(tau; scale_mu, scale_sd) p(resid | tau / scale_ratio)

    returned as the drift form with ``drift = mean_slope``, ``drift_sd`` the posterior's median and
    ``scale_sd`` its sd of ``log tau`` (moment-matched), ``tau_e = 0``:
    ``log y += (mean_slope + drift_sd exp(scale_sd v) u) d``. No residuals: the population's own. A set whose
    nested residuals drift a lot gets a wider scale than one whose residuals do not:

    >>> pop = {"scale_mu": np.log(0.1), "scale_sd": 1.0, "scale_ratio": 1.0, "mean_slope": 0.0}
    >>> d = np.linspace(0.05, 0.3, 8)
    >>> flat, drifting = (learnt_scale(s * d, np.full(8, 0.01), d, pop) for s in (0.0, 0.5))
    >>> round(flat.tau, 2), round(drifting.tau, 2)
    (0.1, 0.44)
    """
    prior = TauPrior(population["scale_mu"], population["scale_sd"])
    r = np.asarray(resid, dtype=float).ravel()
    ll = tau_log_likelihood(r, sd, dist, fold=fold, rho=1.0) if len(r) else np.zeros(len(TAU_GRID))
    lt = np.log(TAU_GRID)
    post = prior.update(np.interp(lt - np.log(population["scale_ratio"]), lt, ll)) if len(r) else prior
    return Discrepancy("learnt", source or None, drift=float(population.get("mean_slope", 0.0)),
                       drift_sd=min(post.median, MAX_TAU), tau_e=0.0, scale_sd=post.sd)
