"""Forecasting interop: posterior and forecast draws as quantiles, platform CDFs and squigglepy distributions.

Every function takes draws in any of these forms:

- an ``xarray.DataArray`` with ``chain``/``draw`` dimensions (other dimensions must be selected to one point:
  ``pred["multiplier"].sel(pretraining="text", N=4e7, D_F=3e5)``);
- an ``xarray.Dataset`` and ``var=`` (e.g. a :func:`~bayes_scaling.analysis.timeline.forecast` result,
  ``fc.sel(pretraining="text")`` with ``var="D_F"``);
- a 1-d array, list or pandas Series of draws.

Each result carries **the distance outside the data** in orders of magnitude, ``outside``: a dict such as
``{"N": 2.3, "D_F": 0.0}`` (``> 0`` above the largest value of the fitted data, ``< 0`` below the smallest, 0
inside). It is read from what the draws record: the ``N_orders_outside`` / ``D_F_orders_outside`` coordinates
of :func:`~bayes_scaling.analysis.predictions.predict` and of a spec fit's ``Fit.predict(...)`` (one per
distance column, e.g. ``N``, ``D`` and compute ``C``), and the per-draw variables of the same names of
:func:`~bayes_scaling.analysis.timeline.forecast` (their median over draws, with the 5% and 95% quantiles as
``D_F_5%``, ``D_F_95%``). Tables carry ``outside``, the largest of these in absolute value. Draws that do not
record it (plain arrays) take ``outside=``: a number, a dict, or a row of ``Fit.outside(points)`` /
``Fit.predict(points, ci_prob=...)`` (its ``outside_<column>`` entries).

Each result also carries **the split** of its uncertainty where the draws record it (``Fit.predict``'s draws,
which carry the law's discrepancy outside the data by default; the transfer law's ``predict`` and ``forecast``
with ``discrepancy=``): ``split``, a dict with ``share_parameters``, ``share_noise`` and ``share_discrepancy``
(the parts of the log-scale predictive variance; they sum to 1) and ``tau``; tables get them as columns.
Plain arrays take ``split=`` (a dict or a row of ``Fit.predict(points, ci_prob=...)``).

Platform CDFs follow the form of continuous questions on Metaculus-style platforms: the CDF at 201 points
evenly spaced over the question's range (``scale="log"``: evenly spaced in log), its first value the
probability below the range and ``1 -`` its last value the probability above it. Open bounds keep at least
0.001 outside (the platforms' rule), closed bounds put 0 there (draws beyond a closed bound are dropped and
counted in ``beyond_closed``), and the CDF rises by at least ``min_step`` (5e-5) per step: the empirical CDF
is mixed with a uniform CDF over the range with the smallest weight that guarantees it (``mix_weight``).
Derived-log questions with a ``zero_point`` are not covered.

>>> fc = bs.analysis.forecast(fit, N=1e10, D_req=1e12, seed=1)                               # doctest: +SKIP
>>> cdf = platform_cdf(fc.sel(pretraining="text"), 1e6, 1e12, var="D_F", scale="log")    # doctest: +SKIP
>>> cdf.to_dict()["cdf"][:3], cdf.outside                                                 # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.errors import BayesScalingError

__all__ = ["DEFAULT_PROBS", "draw_values", "summarise_outside", "split_of", "quantiles", "quantile_function", "QuantileFunction",
           "platform_cdf", "PlatformCDF", "to_squigglepy", "sampler"]

#: quantiles asked for by default (the ones forecasting platforms and Squiggle summaries show)
DEFAULT_PROBS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
SAMPLE_DIMS = ("chain", "draw")
_SUFFIX = "_orders_outside"


# ---- draws and the distance outside the data -------------------------------------------------------------


def _outside_from(obj) -> dict[str, float]:
    """``{name: orders}`` from ``*_orders_outside`` coordinates (DataArray) or variables (Dataset)."""
    out = {}
    names = list(obj.coords)
    if isinstance(obj, xr.Dataset):
        names += list(obj.data_vars)
    for name in names:
        if not str(name).endswith(_SUFFIX):
            continue
        v = obj[name]
        extra = [d for d in v.dims if d not in SAMPLE_DIMS]
        if extra:
            continue  # not selected to a point: says nothing about this one
        out.update(summarise_outside(str(name)[: -len(_SUFFIX)], v.values))
    return out


SPLIT_KEYS = ("share_parameters", "share_noise", "share_discrepancy", "tau")


def split_of(draws, *, split=None) -> dict[str, float]:
    """The split of the draws' uncertainty (module docstring): ``share_*`` coordinates of the draws selected to
    one point (or per-draw variables of a forecast: their median), and ``tau`` (coordinate or attribute);
    ``split`` (a dict or a row with those keys) adds to or overrides them. Empty when nothing records it.

    >>> split_of([1.0, 2.0], split={"share_discrepancy": 0.9, "share_parameters": 0.1, "median": 3.0})
    {'share_discrepancy': 0.9, 'share_parameters': 0.1}
    """
    out: dict[str, float] = {}
    if isinstance(draws, xr.DataArray | xr.Dataset):
        names = list(draws.coords) + (list(draws.data_vars) if isinstance(draws, xr.Dataset) else [])
        for k in SPLIT_KEYS:
            if k in names:
                v = np.asarray(draws[k].values, dtype=float).ravel()
                if v.size and np.isfinite(v).any() and (v.size == 1 or draws[k].dims and
                                                        set(draws[k].dims) <= set(SAMPLE_DIMS)):
                    out[k] = float(np.nanmedian(v))
            elif k == "tau" and "tau" in draws.attrs:
                out[k] = float(draws.attrs["tau"])
    if split is not None:
        items = dict(split.iloc[0] if isinstance(split, pd.DataFrame) else split)
        for k, v in items.items():
            if k in SPLIT_KEYS:
                try:
                    out[k] = float(v)
                except (TypeError, ValueError):
                    raise BayesScalingError(f"split[{k!r}] must be a number, got {v!r}") from None
    return out


def summarise_outside(name: str, values) -> dict[str, float]:
    """One distance, or per-draw distances (a forecast's ``D_F``) as their median under ``name`` and their 5%
    and 95% quantiles under ``name_5%`` and ``name_95%`` (a median near 0 can hide draws far outside on both
    sides)."""
    vals = np.asarray(values, dtype=float).ravel()
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return {}
    if np.ptp(vals) == 0:
        return {name: float(vals[0])}
    lo, med, hi = np.quantile(vals, [0.05, 0.5, 0.95])
    return {name: float(med), f"{name}_5%": float(lo), f"{name}_95%": float(hi)}


def _outside_arg(outside) -> dict[str, float]:
    if outside is None:
        return {}
    if isinstance(outside, pd.DataFrame):
        if len(outside) != 1:
            raise BayesScalingError(f"outside: give one row (one point), got a table of {len(outside)} rows")
        outside = outside.iloc[0]
    if isinstance(outside, pd.Series | dict):
        out = {}
        for k, v in dict(outside).items():
            k = str(k)
            if k == "outside":
                continue
            if k.startswith("outside_"):
                k = k[len("outside_"):]
            elif k.endswith(_SUFFIX):
                k = k[: -len(_SUFFIX)]
            elif isinstance(outside, pd.Series):
                continue  # another column of the row (median, lo, N, ...)
            try:
                out[k] = float(v)
            except (TypeError, ValueError):
                raise BayesScalingError(f"outside[{k!r}] must be a number, got {v!r}") from None
        return out
    try:
        return {"point": float(outside)}
    except (TypeError, ValueError):
        raise BayesScalingError(f"outside must be a number, a dict or a row of Fit.outside(...), got "
                                f"{type(outside).__name__}") from None


def draw_values(draws, *, var: str | None = None, outside=None) -> tuple[np.ndarray, dict[str, float]]:
    """The draws as a flat float array (NaN kept) and the distance outside the data, ``{name: orders}``.

    ``outside`` (number, dict or a row of ``Fit.outside``) adds to or overrides what the draws record."""
    found: dict[str, float] = {}
    if isinstance(draws, xr.Dataset):
        if var is None:
            raise BayesScalingError(f"a Dataset needs var= (one of {', '.join(map(str, draws.data_vars))})")
        if var not in draws.data_vars:
            raise BayesScalingError(f"var {var!r} is not in the draws; they have "
                                    f"{', '.join(map(str, draws.data_vars))}")
        found = _outside_from(draws)
        draws = draws[var]
    elif var is not None and not isinstance(draws, xr.DataArray):
        if isinstance(draws, pd.DataFrame):
            if var not in draws.columns:
                raise BayesScalingError(f"var {var!r} is not a column of the table ({', '.join(map(str, draws.columns))})")
            draws = draws[var]
    if isinstance(draws, xr.DataArray):
        extra = {d: n for d, n in draws.sizes.items() if d not in SAMPLE_DIMS}
        if any(n != 1 for n in extra.values()):
            raise BayesScalingError(
                "the draws have more than one point: select one, e.g. .sel("
                + ", ".join(f"{d}=..." for d, n in extra.items() if n != 1) + f") (dims {dict(draws.sizes)})")
        found = {**found, **_outside_from(draws)}
        values = np.asarray(draws.values, dtype=float).ravel()
    else:
        try:
            values = np.asarray(draws, dtype=float)
        except (TypeError, ValueError):
            raise BayesScalingError(f"draws must be numbers, got {type(draws).__name__}") from None
        if values.ndim != 1:
            raise BayesScalingError(f"draws must be 1-d (one point), got shape {values.shape}")
        values = values.ravel()
    if values.size == 0:
        raise BayesScalingError("no draws")
    return values, {**found, **_outside_arg(outside)}


def _finite(values: np.ndarray) -> tuple[np.ndarray, int]:
    ok = np.isfinite(values)
    if not ok.any():
        raise BayesScalingError(f"none of the {values.size} draws is a finite number")
    return np.sort(values[ok]), int((~ok).sum())


def _largest(outside: dict[str, float]) -> float:
    return max((abs(v) for v in outside.values()), default=0.0)


# ---- quantiles -------------------------------------------------------------------------------------------


def _check_probs(probs) -> np.ndarray:
    p = np.atleast_1d(np.asarray(probs, dtype=float))
    if p.ndim != 1 or not len(p) or not np.all((p > 0) & (p < 1)):
        raise BayesScalingError(f"probabilities must be in (0, 1), got {list(np.atleast_1d(probs))}")
    return p


def quantiles(draws, probs=DEFAULT_PROBS, *, var: str | None = None, outside=None, split=None) -> pd.DataFrame:
    """Quantiles of the draws: a table with columns ``quantile``, ``value``, ``outside`` (the largest distance
    outside the data, orders of magnitude), ``outside_<name>`` per recorded input and the split
    (:func:`split_of`: ``share_parameters``, ``share_noise``, ``share_discrepancy``, ``tau``) where recorded;
    ``attrs`` hold ``outside`` (dict), ``split``, ``n_draws`` and ``n_nan`` (non-finite draws, e.g. unsolved
    forecasts, left out).

    >>> quantiles(np.arange(101.0), [0.1, 0.5]).value.tolist()
    [10.0, 50.0]
    """
    values, out = draw_values(draws, var=var, outside=outside)
    v, n_nan = _finite(values)
    p = _check_probs(probs)
    table = pd.DataFrame({"quantile": p, "value": np.quantile(v, p)})
    table["outside"] = _largest(out)
    for k, d in out.items():
        table[f"outside_{k}"] = d
    sp = split_of(draws[var] if isinstance(draws, xr.Dataset) else draws, split=split)
    if isinstance(draws, xr.Dataset):
        sp = {**split_of(draws), **sp}
    for k, v in sp.items():
        table[k] = v
    table.attrs.update(outside=out, split=sp, n_draws=int(values.size), n_nan=n_nan)
    return table


@dataclass
class QuantileFunction:
    """The inverse CDF of the draws (linear interpolation between order statistics): ``q(0.9)``, ``q([.1, .9])``.
    ``outside``: the distance outside the data (orders of magnitude per input); ``n_nan``: draws left out."""

    values: np.ndarray = field(repr=False)
    outside: dict[str, float]
    n_nan: int = 0

    def __call__(self, p):
        q = np.quantile(self.values, _check_probs(p))
        return float(q[0]) if np.ndim(p) == 0 else q

    def cdf(self, x):
        """The empirical CDF: the fraction of draws ``<= x``."""
        f = np.searchsorted(self.values, np.asarray(x, dtype=float), side="right") / len(self.values)
        return float(f) if np.ndim(x) == 0 else f


def quantile_function(draws, *, var: str | None = None, outside=None) -> QuantileFunction:
    """A :class:`QuantileFunction` of the draws (see the module docstring for the forms they may take).

    >>> q = quantile_function([1.0, 2.0, 3.0], outside={"N": 1.5})
    >>> q(0.5), q.outside
    (2.0, {'N': 1.5})
    """
    values, out = draw_values(draws, var=var, outside=outside)
    v, n_nan = _finite(values)
    return QuantileFunction(v, out, n_nan)


# ---- platform CDFs ---------------------------------------------------------------------------------------


@dataclass
class PlatformCDF:
    """A continuous question's CDF: ``cdf`` at the ``x`` points (201 by default) of ``[lower, upper]``."""

    x: np.ndarray
    cdf: np.ndarray
    lower: float
    upper: float
    scale: str
    open_lower: bool
    open_upper: bool
    below: float            # fraction of the (finite) draws below the range
    above: float            # fraction above it
    beyond_closed: float    # fraction dropped beyond a closed bound
    mix_weight: float       # weight of the uniform CDF mixed in for the minimum step
    n_draws: int
    n_nan: int
    outside: dict[str, float]
    split: dict[str, float] = field(default_factory=dict)   # the uncertainty's split (split_of), where recorded

    def to_dict(self) -> dict:
        """JSON-ready: the ``cdf`` list (what a platform's ``continuous_cdf`` takes), the range and the notes."""
        return {"cdf": [float(c) for c in self.cdf], "x": [float(v) for v in self.x],
                "lower": self.lower, "upper": self.upper, "scale": self.scale, "open_lower": self.open_lower,
                "open_upper": self.open_upper, "probability_below": float(self.cdf[0]),
                "probability_above": float(1 - self.cdf[-1]), "draws_below": self.below,
                "draws_above": self.above, "beyond_closed": self.beyond_closed, "mix_weight": self.mix_weight,
                "n_draws": self.n_draws, "n_nan": self.n_nan, "outside": dict(self.outside),
                "outside_max": _largest(self.outside), "split": dict(self.split)}

    def to_frame(self) -> pd.DataFrame:
        """One row per point: ``x``, ``cdf``, and the ``outside`` columns (constant)."""
        df = pd.DataFrame({"x": self.x, "cdf": self.cdf})
        df["outside"] = _largest(self.outside)
        for k, d in self.outside.items():
            df[f"outside_{k}"] = d
        for k, v in self.split.items():
            df[k] = v
        return df


def platform_cdf(draws, lower: float, upper: float, *, scale: str = "linear", open_lower: bool = True,
                 open_upper: bool = True, var: str | None = None, outside=None, split=None, n_points: int = 201,
                 min_step: float = 5e-5, min_tail: float = 0.001) -> PlatformCDF:
    """The CDF of the draws in the form continuous forecasting questions take (module docstring).

    >>> c = platform_cdf(np.linspace(0, 10, 1001), 2, 8)
    >>> len(c.cdf), round(float(c.cdf[0]), 3), round(float(1 - c.cdf[-1]), 3)
    (201, 0.2, 0.2)
    """
    if scale not in ("linear", "log"):
        raise BayesScalingError(f"scale must be 'linear' or 'log', got {scale!r}")
    lower, upper = float(lower), float(upper)
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        raise BayesScalingError(f"the range must be finite with lower < upper, got [{lower!r}, {upper!r}]")
    if scale == "log" and lower <= 0:
        raise BayesScalingError(f"a log-scale range needs lower > 0, got {lower!r}")
    if n_points < 3:
        raise BayesScalingError(f"n_points must be at least 3, got {n_points}")
    values, out = draw_values(draws, var=var, outside=outside)
    v, n_nan = _finite(values)
    n = len(v)
    below = float(np.searchsorted(v, lower, side="left") / n)
    above = float(1 - np.searchsorted(v, upper, side="right") / n)
    inner = v[(v >= lower) & (v <= upper)]
    p0 = min(max(below, min_tail), 1.0) if open_lower else 0.0
    p1 = min(max(above, min_tail), 1.0) if open_upper else 0.0
    beyond = (0.0 if open_lower else below) + (0.0 if open_upper else above)
    steps = n_points - 1
    mass = 1 - p0 - p1
    if mass < min_step * steps:
        raise BayesScalingError(
            f"the range [{lower:g}, {upper:g}] misses the draws: {100 * below:.1f}% lie below it and "
            f"{100 * above:.1f}% above it (median {np.median(v):.4g}); widen the range")
    x = np.geomspace(lower, upper, n_points) if scale == "log" else np.linspace(lower, upper, n_points)
    x[0], x[-1] = lower, upper
    u = np.linspace(0.0, 1.0, n_points)
    if len(inner):
        G = np.searchsorted(inner, x, side="right") / len(inner)
        G[0] = 0.0  # the CDF at lower is the mass below (a draw exactly at lower counts inside)
        G[-1] = 1.0
        w = min(1.0, 1.01 * min_step * steps / mass)
    else:
        G, w = u, 1.0
    cdf = p0 + mass * ((1 - w) * G + w * u)
    return PlatformCDF(x=x, cdf=cdf, lower=lower, upper=upper, scale=scale, open_lower=bool(open_lower),
                       open_upper=bool(open_upper), below=below, above=above, beyond_closed=float(beyond),
                       mix_weight=float(w), n_draws=int(values.size), n_nan=n_nan, outside=out,
                       split={**(split_of(draws) if isinstance(draws, xr.Dataset) else {}),
                              **split_of(draws[var] if isinstance(draws, xr.Dataset) else draws, split=split)})


# ---- squigglepy ------------------------------------------------------------------------------------------


def _squigglepy():
    try:
        import squigglepy as sq
    except ImportError:
        raise BayesScalingError("squigglepy is not installed: pip install 'bayes_scaling[forecast]' "
                                "(or pip install squigglepy)") from None
    return sq


def to_squigglepy(draws, *, var: str | None = None, outside=None, kind: str = "empirical"):
    """A squigglepy distribution of the draws, to use in a squigglepy model (``sq.sample(dist * 6e9, n=...)``).

    ``kind``: ``"empirical"`` (default: ``sq.discrete`` over the draws, equal weights: the posterior itself),
    ``"lognorm"`` (a lognormal with the mean and sd of the draws' log; positive draws) or ``"norm"``.
    Non-finite draws are left out. The distribution gets attributes ``bayes_scaling_outside`` (the distance
    outside the data, orders of magnitude) and ``bayes_scaling_n_nan``. Needs the ``forecast`` extra.
    """
    sq = _squigglepy()
    values, out = draw_values(draws, var=var, outside=outside)
    v, n_nan = _finite(values)
    if kind == "empirical":
        dist = sq.discrete([float(x) for x in v])
    elif kind == "lognorm":
        if np.any(v <= 0):
            raise BayesScalingError(f"kind='lognorm' needs positive draws; {int((v <= 0).sum())} are <= 0")
        lv = np.log(v)
        dist = sq.lognorm(norm_mean=float(lv.mean()), norm_sd=float(max(lv.std(ddof=1), 1e-12)))
    elif kind == "norm":
        dist = sq.norm(mean=float(v.mean()), sd=float(max(v.std(ddof=1), 1e-300)))
    else:
        raise BayesScalingError(f"kind must be 'empirical', 'lognorm' or 'norm', got {kind!r}")
    dist.bayes_scaling_outside = out
    dist.bayes_scaling_n_nan = n_nan
    return dist


def sampler(draws, *, var: str | None = None, outside=None, seed: int | None = None):
    """A sampler of the draws (resampling with replacement, seeded): ``s()`` one draw, ``s(n)`` an array of
    ``n``. Works without squigglepy and inside squigglepy models (a function returning a sample). Attributes:
    ``outside`` and ``n_nan``."""
    values, out = draw_values(draws, var=var, outside=outside)
    v, n_nan = _finite(values)
    rng = np.random.default_rng(seed)

    def sample(n: int | None = None):
        if n is None:
            return float(v[rng.integers(len(v))])
        return v[rng.integers(len(v), size=int(n))]

    sample.outside = out
    sample.n_nan = n_nan
    return sample
