"""The spec validator: checks run before any PyTensor graph exists, so that a bad spec or a law that cannot be
sampled on the data fails at once with one line naming the file, the parameter or column and what was expected
(documented in ``docs/law_spec.md``, "Checked before sampling").

Two stages:

- :func:`check_spec` (spec only; from :class:`~bayes_scaling.laws.spec.LawSpec` itself, so from ``from_dict``
  and ``from_toml``, whose errors name the file): names that would collide with the names the model builder
  creates (:func:`internal_names`: ``log_A``, ``log_A_mu``, ``sigma``, ``nu``, the ``row`` dimension, the
  ``chain`` and ``draw`` dimensions of the posterior, ``idx__``/``prior__``/``observed__``/``__loglik__``
  prefixes), with each other (a group column that is also an input, the target or a parameter), and the
  magnitude of every constant (the formula's numbers, fixed values, prior locations and scales, spreads, the
  likelihood's constants). The parser's own limits (length, nesting, finite numbers) are in
  :func:`~bayes_scaling.laws.expr.parse_expression`; a parameter's (``fixed`` or a prior, not both; spread) in
  :class:`~bayes_scaling.laws.spec.Parameter` through :func:`check_parameter`.
- :func:`check_on_data` (``fit()``, after the priors are set and before the model is built): every prior
  location finite; at the prior medians (every parameter at its prior location, or fixed), each free parameter
  must change the law's value on at least one row (a finite-difference check), and the law's value must be
  finite on every row, and > 0 for a log-scale likelihood; a :class:`~bayes_scaling.errors.DataError` names the
  rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_scaling.errors import ConfigError, DataError, format_rows
from bayes_scaling.laws.expr import MAX_CONSTANT

__all__ = ["is_finite_number", "RESERVED", "internal_names", "check_parameter", "check_spec", "check_on_data", "MIN_EFFECT",
           "parse_derived", "check_derived", "derived_order"]

#: Names the model or its posterior uses for itself, and what for.
RESERVED: dict[str, str] = {
    "sigma": "the noise sd of the likelihood",
    "nu": "the Student-t degrees of freedom",
    "row": "the dimension of the data rows",
    "chain": "the posterior's chain dimension",
    "draw": "the posterior's draw dimension",
    "sigma_seed": "the seed noise sd of replicate runs",
    "cell": "the dimension of the replicate runs' configurations",
}
#: A parameter must change the law's value by at least this much (relative) on some row when it moves by 1%.
MIN_EFFECT = 1e-10
_SPREAD_RANGE = (1e-6, 1e3)


def is_finite_number(value: Any) -> bool:
    """A real number (not a bool) that is finite as a float (an int too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return bool(np.isfinite(float(value)))
    except OverflowError:
        return False


def _unconstrained(name: str, domain: str) -> str:
    return {"positive": f"log_{name}", "unit": f"logit_{name}", "real": name, "negative": f"log_neg_{name}"}[domain]


def internal_names(spec) -> dict[str, str]:
    """Every variable name the model builder (:func:`~bayes_scaling.models.spec_model.build_spec_model`) creates
    for the spec's parameters besides the parameters themselves, and which parameter it belongs to."""
    out: dict[str, str] = {}
    for p in spec.parameters.values():
        if p.fixed is not None:
            continue
        u = _unconstrained(p.name, p.domain)
        names = [] if u == p.name else [u]
        if p.fraction_of is not None:
            names = [f"logit_{p.name}_fraction", f"{p.name}_fraction"]
        if p.name == (spec.monomial() or ("",))[0]:   # a coefficient sampled at the data's centre
            names.append(f"{u}_at_centre")
        if p.by is not None and p.pooling == "partial":
            names += [f"{n}_{s}" for n in names if n.endswith("_at_centre") for s in ("mu", "sigma", "z")]
            names += [f"{u}_mu", f"{u}_sigma", f"{u}_z"]
            if p.within is not None:
                names += [f"{u}_sigma_{p.within}", f"{u}_{p.within}_z", f"{u}_{p.within}", f"{p.name}_{p.within}"]
        for n in names:
            out.setdefault(n, f"an internal variable of parameter {p.name!r}")
    return out


def _magnitude(value: float, what: str, *, allow_zero: bool = True) -> None:
    """``value`` finite, at most :data:`MAX_CONSTANT` in magnitude and not a denormal-small nonzero number."""
    v = abs(float(value))
    if not np.isfinite(v) or v > MAX_CONSTANT or (0 < v < 1 / MAX_CONSTANT) or (v == 0 and not allow_zero):
        raise ConfigError(f"{what} = {value!r} is outside the sane range: a finite number with magnitude between "
                          f"{1 / MAX_CONSTANT:g} and {MAX_CONSTANT:g}{'' if not allow_zero else ' (or 0)'}; "
                          "rescale the law or the data's units")


def check_parameter(p) -> None:
    """One parameter's own checks: ``fixed`` or a prior (not both), the magnitudes of its constants."""
    where = f"parameter {p.name!r}"
    if p.fixed is not None and p.prior:
        raise ConfigError(f"{where}: fixed = {p.fixed!r} together with a prior ({', '.join(sorted(p.prior))}); "
                          "give either fixed (a constant) or a prior (a free parameter), not both")
    if not _SPREAD_RANGE[0] <= p.spread <= _SPREAD_RANGE[1]:
        raise ConfigError(f"{where}: spread {p.spread!r} is outside [{_SPREAD_RANGE[0]:g}, {_SPREAD_RANGE[1]:g}] "
                          "(the between-group spread on the unconstrained scale)")
    if p.fixed is not None:
        _magnitude(p.fixed, f"{where}: fixed")
    for k in ("median", "mean", "mu"):
        if k in p.prior:
            _magnitude(p.prior[k], f"{where}: {k}")


def check_spec(spec) -> None:
    """The spec-only checks (see the module docstring); a :class:`ConfigError` names the clash or constant."""
    params, inputs, groups = list(spec.parameters), spec.inputs, spec.groups
    kinds = {**{g: "group column" for g in groups}, **{c: "input column" for c in inputs},
             spec.target: "target column", **{n: "parameter" for n in params}}
    for name, kind in kinds.items():
        if name in RESERVED:
            raise ConfigError(f"{kind} {name!r}: the name is reserved ({RESERVED[name]}); rename it"
                              + (" (in the data and the spec)" if "column" in kind else ""))
        if "__" in name:
            raise ConfigError(f"{kind} {name!r}: names with a double underscore are reserved for the model's "
                              "internal data (idx__, prior__, observed__, __loglik__); rename it")
    internal = internal_names(spec)
    for name, kind in kinds.items():
        if name in internal:
            raise ConfigError(f"{kind} {name!r} has the name of {internal[name]} (the model builder names its "
                              "unconstrained and hierarchical variables log_, logit_, log_neg_ + the name, with "
                              "_mu, _sigma, _z suffixes); rename it")
    for g in groups:
        if g == spec.target:
            raise ConfigError(f"group column {g!r} is also the target")
        if g in spec.parameters:
            raise ConfigError(f"group column {g!r} is also a parameter's name; rename one of them")
    for n in params:
        check_parameter(spec.parameters[n])
        col = spec.parameters[n].median_of
        if col is not None and col not in inputs:
            raise ConfigError(f"parameter {n!r}: median_of = {col!r} is not an input column of the law; its "
                              f"inputs are {', '.join(inputs)}")
    for what, v in (("likelihood sigma", spec.sigma), ("likelihood nu_alpha", spec.nu_alpha),
                    ("likelihood nu_beta", spec.nu_beta)):
        if v is not None:
            _magnitude(v, what, allow_zero=False)
    check_derived(spec, {**kinds, **{n: "internal variable" for n in internal}})


def parse_derived(name: Any, formula: Any):
    """One ``[derived]`` entry: ``name`` an identifier, ``formula`` a formula (text or parsed)."""
    from bayes_scaling.laws.expr import Formula

    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"[derived]: name {name!r} is not a valid name (letters, digits, _; not starting with a "
                          "digit)")
    if isinstance(formula, Formula):
        return formula
    if not isinstance(formula, str):
        raise ConfigError(f"[derived] {name}: expected a formula as a string, got {formula!r}")
    try:
        return Formula.parse(formula)
    except ConfigError as exc:
        raise ConfigError(f"[derived] {name}: {exc}") from None


def check_derived(spec, taken: dict[str, str]) -> None:
    """The derived quantities' names are new (not a column, parameter, reserved or internal name: ``taken``,
    name -> what it is), each formula uses only inputs, parameters, the target and other derived quantities,
    and none depends on itself (a cycle). A :class:`ConfigError` names the quantity."""
    derived = spec.derived
    for name in derived:
        if name in RESERVED:
            raise ConfigError(f"[derived] {name}: the name is reserved ({RESERVED[name]}); rename it")
        if "__" in name:
            raise ConfigError(f"[derived] {name}: names with a double underscore are reserved; rename it")
        if name in taken:
            raise ConfigError(f"[derived] {name}: the name is already the {taken[name]} {name!r}; a derived "
                              "quantity needs a new name")
    known = set(spec.inputs) | set(spec.parameters) | {spec.target} | set(derived)
    for name, f in derived.items():
        unknown = sorted(f.names - known)
        if unknown:
            raise ConfigError(f"[derived] {name} = {f.text!r}: unknown name(s) {', '.join(unknown)}; a derived "
                              f"quantity may use the inputs ({', '.join(spec.inputs) or 'none'}), the parameters "
                              f"({', '.join(spec.parameters)}), the target {spec.target!r} and other derived "
                              "quantities")
    derived_order(spec)


def derived_order(spec) -> list[str]:
    """The derived quantities sorted so that each comes after those it uses; a :class:`ConfigError` names a
    cycle (``a -> b -> a``)."""
    derived = spec.derived
    order: list[str] = []
    state: dict[str, int] = {}      # 1: being visited, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise ConfigError(f"[derived]: {' -> '.join(cycle)} is a cycle (each needs the other); define one of "
                              "them from the inputs, parameters or target")
        state[name] = 1
        for dep in sorted(derived[name].names & set(derived)):
            visit(dep, path + [name])
        state[name] = 2
        order.append(name)

    for name in derived:
        visit(name, [])
    return order


def _natural(loc: float, domain: str) -> float:
    with np.errstate(all="ignore"):
        if domain == "positive":
            return float(np.exp(loc))
        if domain == "negative":
            return float(-np.exp(loc))
        if domain == "unit":
            return float(1.0 / (1.0 + np.exp(-loc)))
    return float(loc)


def _law(spec, values: dict[str, Any], n: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        f = np.asarray(spec.formula.evaluate(values, backend="numpy"), dtype=float)
    return np.broadcast_to(f, (n,))


def _fraction_value(u: float, data, p) -> float:
    """A ``fraction_of`` parameter's value at ``u`` on its unconstrained (logit) scale: ``c / (1 + exp(-u))``,
    ``c`` the smallest target (``"min_target"``) or the given number."""
    c = np.min(data.target) if isinstance(p.fraction_of, str) else p.fraction_of
    return float(c / (1.0 + np.exp(-u)))


def check_on_data(spec, data, priors: dict[str, tuple[float, float]], what: str = "data") -> None:
    """The data-dependent checks (see the module docstring); ``data``: a
    :class:`~bayes_scaling.models.spec_model.SpecData`, ``priors``: each free parameter's ``(location, scale)``
    on its unconstrained scale."""
    base: dict[str, Any] = dict(data.inputs)
    for p in spec.parameters.values():
        if p.fixed is not None:
            base[p.name] = p.fixed
            continue
        loc, scale = priors[p.name]
        value = _natural(loc, p.domain) if p.fraction_of is None else _fraction_value(loc, data, p)
        if not (np.isfinite(loc) and np.isfinite(scale) and scale > 0 and np.isfinite(value)
                and abs(value) <= MAX_CONSTANT):
            raise ConfigError(f"parameter {p.name!r}: its prior (location {loc!r}, scale {scale!r} on the "
                              f"unconstrained scale, median {value:.4g}) is not finite or beyond {MAX_CONSTANT:g}; "
                              "give a prior (median/mean/mu and sigma) in a sane range")
        base[p.name] = value
    n = data.n
    f0 = _law(spec, base, n)
    at = ", ".join(f"{k} = {base[k]:.4g}" for k in spec.parameters)
    bad = np.flatnonzero(~np.isfinite(f0))
    if len(bad):
        raise DataError(f"{what}: the law {spec.formula.text!r} is not finite at the prior medians ({at}) on "
                        f"{len(bad)} of {n} rows, at rows {format_rows(bad)} (row {bad[0]}: {float(f0[bad[0]])!r}); "
                        "rescale the inputs, or give priors whose medians keep it finite")
    for p in spec.parameters.values():
        if p.fixed is not None:
            continue
        loc = priors[p.name][0]
        step = 0.01 * max(1.0, abs(loc)) if p.domain == "real" else 0.01
        lo, hi = dict(base), dict(base)
        if p.fraction_of is None:
            lo[p.name], hi[p.name] = _natural(loc - step, p.domain), _natural(loc + step, p.domain)
        else:
            lo[p.name], hi[p.name] = _fraction_value(loc - step, data, p), _fraction_value(loc + step, data, p)
        with np.errstate(all="ignore"):
            delta = np.abs(_law(spec, hi, n) - _law(spec, lo, n))
            moves = np.isfinite(delta) & (delta > MIN_EFFECT * np.abs(f0))
        if not moves.any():
            raise DataError(f"{what}: parameter {p.name!r} does not change the law on any row at the prior "
                            f"medians ({at}): {spec.formula.text!r} does not depend on it there (e.g. it is "
                            "multiplied by 0 or divided by an overflowing power); remove or fix it, or rewrite "
                            "the law")
    if spec.scale == "log":
        bad = np.flatnonzero(f0 <= 0)
        if len(bad):
            raise DataError(f"{what}: the law {spec.formula.text!r} is <= 0 at the prior medians ({at}) on "
                            f"{len(bad)} of {n} rows, at rows {format_rows(bad)} (row {bad[0]}: {f0[bad[0]]:.4g}); "
                            "a log-scale likelihood needs it > 0: give priors whose medians keep it positive, "
                            "or scale = \"identity\"")
