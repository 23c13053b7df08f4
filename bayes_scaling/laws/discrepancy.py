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
           "outside_table",
           "distance_outside", "widen", "variance_split", "robust_sd"]

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

    >>> Discrepancy.from_dict({"tau": 0.02, "source": "my backtest"}).tau
    0.02
    >>> Discrepancy().tau == DEFAULT_TAU
    True
    """

    __slots__ = ("tau", "source")

    def __init__(self, tau: float = DEFAULT_TAU, source: str | None = None):
        self.tau = check_tau(tau, "[discrepancy] tau")
        if source is not None and not isinstance(source, str):
            raise ConfigError(f"[discrepancy] source must be a string, got {source!r}")
        self.source = DEFAULT_SOURCE if source is None and self.tau == DEFAULT_TAU else (source or "")

    @classmethod
    def from_dict(cls, d: Any) -> Discrepancy:
        if not isinstance(d, dict):
            raise ConfigError(f"[discrepancy] must be a table, got {d!r}")
        bad = set(d) - {"tau", "source"}
        if bad:
            raise ConfigError(f"[discrepancy]: unknown key(s) {', '.join(sorted(bad))}; expected tau, source")
        if "tau" not in d:
            raise ConfigError("[discrepancy] needs tau (per decade outside the data, on the log target; 0: off)")
        return cls(d["tau"], d.get("source"))

    def to_dict(self) -> dict[str, Any]:
        return {"tau": self.tau, **({"source": self.source} if self.source else {})}

    def __eq__(self, other) -> bool:
        return isinstance(other, Discrepancy) and (self.tau, self.source) == (other.tau, other.source)

    def __repr__(self) -> str:
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
