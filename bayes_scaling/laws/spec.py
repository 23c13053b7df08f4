"""Law specs: a formula, its target and likelihood, and each parameter's prior, domain and sharing.

A spec is a TOML file (``models/*.toml``) or the same as Python objects::

    [law]
    name    = "chinchilla_by_corpus"
    formula = "E + A / N**alpha + B / D**beta"      # inputs: the data's columns; the rest: parameters
    target  = "loss"

    [likelihood]
    family = "student_t"          # "normal" | "student_t"
    scale  = "log"                # noise on log(target) ("log") or on the target ("identity")

    [parameters.E]
    by = "corpus"                 # varies by a group column: partially pooled (the default) ...
    [parameters.A]
    by = "corpus"
    pooling = "none"              # ... or separate per group
    [parameters.B]
    by = "corpus"
    [parameters.alpha]            # an empty table: shared by all rows, default prior
    [parameters.beta]
    fixed = 0.28                  # or fixed to a value

Two-level pooling: a parameter pooled ``by`` a column *within* a coarser one (pre-trained models within their
families, ``models/laws/rectified_finetuning.toml``): each family's location is drawn around the population's,
each model's around its family's, and each level has its own spread::

    [parameters.beta]
    by     = "model"
    within = "family"              # every model belongs to one family (checked on the data)

Per parameter (all optional): ``domain`` (``"positive"`` default, ``"unit"`` for (0, 1), ``"real"``,
``"negative"`` for (-inf, 0): e.g. the exponent of a falling learning curve, ``models/laws/m4.toml``),
``by`` (a group column), ``within`` (a coarser group column: two-level pooling), ``pooling`` (``"partial"``
default, or ``"none"``), ``fixed``, the prior, ``spread``
(between-group spread on the unconstrained scale, mean of a zero-avoiding Gamma(2) prior; default 0.5) and
``parameterization`` (``"auto"`` default: chosen from the data; ``"centred"``, ``"non_centred"``) and
``fraction_of`` (``"min_target"``, a shared positive parameter only: sampled as ``f = value / min(y)`` over the
fitted rows, ``logit f ~ Normal(logit(mean), sigma)``, prior keys ``mean`` and ``sigma``: a floor below every
observed loss, such as the Chinchilla ``E``; the posterior holds the value and ``NAME_fraction``; a positive
number instead: a fraction of that fixed value, as a frozen spec of the calibration writes it).

A law implicit in its target is given as an ``equation`` instead of a ``formula``, with a ``bracket``: two
expressions of the parameters and columns between which the equation has one root in the target
(:class:`~bayes_scaling.laws.expr.Equation`; the M4 learning-curve law, ``models/laws/m4.toml``)::

    [law]
    equation = "(L - L_inf) / (L_0 - L)**alpha = beta * x**c"
    bracket  = ["L_inf", "L_0"]
    target   = "L"

Priors, in the units a user thinks in (the unconstrained scale is log for positive, logit for unit, ``log(-x)``
for negative):

- positive: ``median`` and ``sigma`` (sd of the log; LogNormal). Defaults: an *exponent* (a parameter on the
  right of ``**``) has median 0.3 and sigma 1 (95%: 0.04 to 2.1); any other positive parameter has sigma 3
  and a median that scales with the data: the least-squares value of the law on the data (fallback: the
  median of the target), so that a law for losses near 2 and one for data sizes near 1e12 both get sensible
  priors without edits; ``median_of = "x"`` (an input column) puts the median at the geometric mean of the
  data's ``x`` instead (e.g. a break of the law in the middle of the data's range);
- negative: ``median`` (< 0) and ``sigma`` (sd of ``log(-x)``): minus a LogNormal. Defaults: an exponent
  median -0.3 and sigma 1, any other negative parameter as a positive one, mirrored;
- unit: ``mean`` (in (0, 1)) and ``sigma`` (sd of the logit). Default 0.5 and 1.5;
- real: ``mu`` and ``sigma`` (Normal). Default: mu at the least-squares value, sigma 10 x (``|mu|`` + sd of target).

The noise: ``[likelihood] sigma`` is the HalfNormal scale of the noise sd (default: the sd of the target on the
likelihood's scale), ``nu`` the Student-t degrees of freedom prior as ``nu_alpha``, ``nu_beta`` (Gamma; default
2, 0.1: mean 20).

Derived quantities (optional): named formulas of the inputs, the parameters, the target and each other, computed
per posterior draw at new points by :meth:`bayes_scaling.inference.fit.Fit.derived` (the target's draws are the
predictions'; checked when the spec is read: unknown names, cycles, and names taken by a column or parameter are
errors)::

    [derived]
    D_E        = "D_F + D_T"          # effective data (models/laws/transfer.toml)
    multiplier = "D_E / D_F"
    fraction   = "D_T / D_E"

Exclusion rules (optional): conditions on the data's columns (:func:`~bayes_scaling.laws.expr.parse_condition`),
each with its reason. Rows that meet one are left out of the fit when the data are read, and reported (an
``ExclusionWarning`` and ``fit.excluded``: the rows, their position in the input and the first rule's reason),
never dropped silently::

    [exclude]
    "D_T <= 0" = "ossification: no positive transfer (D_T <= 0 has no log)"
    'regime != "low"' = "outside the low-data regime, where the transfer law holds"

Replicate runs (optional): with ``[likelihood] replicates = true``, rows that share every input and group
column are runs of one configuration (``c``) with other seeds; they share a run-level term and scatter by a seed
noise (:mod:`bayes_scaling.models.spec_model`)::

    y[c, s] = f(x_c) + delta_c + e[c, s],   delta_c ~ Normal(0, sigma),   e[c, s] ~ Normal(0, sigma_seed)

on the likelihood's scale; ``seed_sigma`` is the HalfNormal scale of ``sigma_seed`` (default: that of ``sigma``).
``seed_slope = "N"`` (an input column, > 0) lets the seed noise vary with it,
``log sigma_seed(x) = log sigma_seed + seed_slope * (log x - c)``, ``c`` the mean of ``log x`` over the fitted rows,
``seed_slope ~ Normal(0, 0.5)``.

A noise scale per level of a column (optional): ``[likelihood] sigma_by = "kind"`` gives each level of the column
``kind`` its own noise sd ``sigma[kind]`` (each with the HalfNormal prior of ``sigma``), and with replicates its own
``sigma_seed[kind]`` (and ``seed_slope[kind]``), with the Student-t family its own ``nu[kind]``; rows of
different levels are never replicates of each other.

A noise scale that varies along a column (optional): ``[likelihood] sigma_slope = "x"`` (a numeric data column,
given for the fitted rows and for every predicted point) makes the noise sd of row ``i``
``sigma_i = sigma * exp(sigma_slope * (x_i - c))``, ``c`` the mean of ``x`` over the fitted rows (``sigma`` is the
noise at ``c``), ``sigma_slope ~ Normal(0, 1)`` per unit of ``x`` (give ``x`` in units where 1 is a large change,
e.g. decades). E.g. IsoFLOP runs far from their budget's optimum that fit the law worse than runs near it:
``x`` the run's distance from the optimum in decades of ``N``. Not with replicates or ``sigma_by``.

The discrepancy (optional; :mod:`bayes_scaling.laws.discrepancy`): the law's error per decade outside the fitted
data, on the log target, added to every prediction (``Fit.predict``)::

    [discrepancy]
    tau    = 0.059            # default when the table is absent (calibrated on Porian et al.'s runs); 0: off
    source = "my backtest"    # where the number came from

>>> spec = LawSpec.from_dict({"law": {"formula": "E + A / N**alpha", "target": "loss"},
...                           "parameters": {"E": {"by": "corpus"}, "A": {}, "alpha": {}}})
>>> spec.inputs, spec.groups
(['N'], ['corpus'])
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from bayes_scaling.errors import ConfigError
from bayes_scaling.laws.discrepancy import Discrepancy
from bayes_scaling.laws.expr import Equation, Formula, eval_condition, parse_condition
from bayes_scaling.laws.validate import (
    check_parameter,
    check_spec,
    derived_order,
    is_finite_number,
    parse_derived,
)

__all__ = ["LawSpec", "Parameter", "MODELS_DIR", "builtin_spec", "builtin_names"]

DOMAINS = ("positive", "unit", "real", "negative")
POOLINGS = ("partial", "none")
PARAMETERIZATIONS = ("auto", "centred", "non_centred")
#: what a parameter may be sampled as a fraction of (``fraction_of``): the smallest target value of the fitted rows
#: (or a positive number: a fixed value)
FRACTIONS_OF = ("min_target",)
FAMILIES = ("normal", "student_t")
SCALES = ("log", "identity")
_PRIOR_KEYS = {"positive": ("median", "sigma"), "unit": ("mean", "sigma"), "real": ("mu", "sigma"),
               "negative": ("median", "sigma")}
_PARAM_KEYS = {"domain", "by", "within", "pooling", "fixed", "spread", "parameterization", "median", "mean", "mu", "sigma",
               "description", "median_of", "fraction_of"}
#: The built-in specs, shipped inside the package (``bayes_scaling/specs``; the repository's ``models/`` points
#: there): ``laws/*.toml`` (law specs), ``transfer.toml`` (the transfer model file), ``experiments/*.toml``.
MODELS_DIR = Path(__file__).resolve().parents[1] / "specs"


def _number(value: Any, what: str, *, positive: bool = False) -> float:
    if not isinstance(value, (int, float)) or not is_finite_number(value):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(f"{what} must be > 0, got {value!r}")
    return float(value)


@dataclass
class Parameter:
    """One parameter of a law: domain, sharing and prior (``None`` entries: the documented defaults)."""

    name: str
    domain: str = "positive"
    by: str | None = None
    pooling: str = "partial"
    fixed: float | None = None
    prior: dict[str, float] = field(default_factory=dict)
    spread: float = 0.5
    parameterization: str = "auto"
    description: str = ""
    #: a coarser group column: the ``by`` groups are pooled within its groups, and those across the population
    within: str | None = None
    #: an input column: the prior median (positive domain) is that column's geometric mean over the data
    median_of: str | None = None
    #: ``"min_target"``: sampled as the fraction ``f = value / min(y)`` of the fitted rows' smallest target
    #: (a floor below every observed loss), ``logit f ~ Normal(logit(mean), sigma)``; a positive number ``c``:
    #: ``f = value / c`` (a fixed scale, as :func:`~bayes_scaling.analysis.calibration.frozen_spec` writes the
    #: former for given data); None: sampled as itself
    fraction_of: str | float | None = None

    def __post_init__(self) -> None:
        where = f"parameter {self.name!r}"
        if self.fraction_of is not None:
            if isinstance(self.fraction_of, str):
                if self.fraction_of not in FRACTIONS_OF:
                    raise ConfigError(f"{where}: fraction_of {self.fraction_of!r} is not one of "
                                      f"{', '.join(FRACTIONS_OF)} or a positive number")
            else:
                self.fraction_of = _number(self.fraction_of, f"{where}: fraction_of", positive=True)
            if self.domain != "positive" or self.by is not None or self.fixed is not None:
                raise ConfigError(f"{where}: fraction_of applies to a free, shared parameter of domain 'positive' "
                                  f"(got domain {self.domain!r}, by {self.by!r}, fixed {self.fixed!r})")
        if self.domain not in DOMAINS:
            raise ConfigError(f"{where}: domain {self.domain!r} is not one of {', '.join(DOMAINS)}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"{where}: pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ConfigError(f"{where}: parameterization {self.parameterization!r} is not one of "
                              f"{', '.join(PARAMETERIZATIONS)}")
        if self.by is not None and (not isinstance(self.by, str) or not self.by):
            raise ConfigError(f"{where}: by must be a column name, got {self.by!r}")
        if self.within is not None:
            if not isinstance(self.within, str) or not self.within:
                raise ConfigError(f"{where}: within must be a column name, got {self.within!r}")
            if self.by is None or self.pooling != "partial":
                raise ConfigError(f"{where}: within = {self.within!r} needs the parameter partially pooled by a "
                                  "finer column (by = ..., pooling = \"partial\")")
            if self.within == self.by:
                raise ConfigError(f"{where}: within must be another column than by ({self.by!r})")
        self.spread = _number(self.spread, f"{where}: spread", positive=True)
        if self.median_of is not None:
            if not isinstance(self.median_of, str) or not self.median_of:
                raise ConfigError(f"{where}: median_of must be an input column's name, got {self.median_of!r}")
            if self.domain != "positive" or self.fixed is not None or "median" in self.prior:
                raise ConfigError(f"{where}: median_of = {self.median_of!r} sets the prior median of a free "
                                  "positive parameter; give it without median or fixed, on domain 'positive'")
        if self.fixed is not None:
            self.fixed = _number(self.fixed, f"{where}: fixed")
            if self.by is not None:
                raise ConfigError(f"{where}: a fixed parameter cannot vary by {self.by!r}")
            self._check_in_domain(self.fixed, "fixed")
        keys = _PRIOR_KEYS["unit" if self.fraction_of is not None else self.domain]
        unknown = set(self.prior) - set(keys)
        if unknown:
            kind = f"fraction_of = {self.fraction_of!r} (the fraction's prior)" if self.fraction_of is not None else \
                f"domain {self.domain!r}"
            raise ConfigError(f"{where}: prior key(s) {', '.join(sorted(unknown))} do not apply to {kind}; "
                              f"use {', '.join(keys)}")
        for k, v in self.prior.items():
            self.prior[k] = _number(v, f"{where}: {k}", positive=k == "sigma" or (k == "median"
                                                                                  and self.domain != "negative"))
        check_parameter(self)
        if self.domain == "negative" and self.prior.get("median", -1.0) >= 0:
            raise ConfigError(f"{where}: median must be < 0 for domain 'negative', got {self.prior['median']!r}")
        if "mean" in self.prior and not 0 < self.prior["mean"] < 1:
            raise ConfigError(f"{where}: mean must be in (0, 1) (a fraction), got {self.prior['mean']!r}")
        if "sigma" in self.prior and not 1e-6 <= self.prior["sigma"] <= 1e3:
            raise ConfigError(f"{where}: sigma {self.prior['sigma']!r} is outside [1e-6, 1e3] (on the "
                              "unconstrained scale a larger or smaller prior makes sampling impossible)")

    def _check_in_domain(self, value: float, what: str) -> None:
        ok = {"positive": value > 0, "unit": 0 < value < 1, "real": True, "negative": value < 0}[self.domain]
        if not ok:
            raise ConfigError(f"parameter {self.name!r}: {what} {value!r} is outside its domain {self.domain!r}")

    @property
    def sharing(self) -> str:
        """``"fixed"``, ``"shared"``, ``"pooled"`` (partially) or ``"separate"``."""
        if self.fixed is not None:
            return "fixed"
        if self.by is None:
            return "shared"
        return "pooled" if self.pooling == "partial" else "separate"

    @property
    def nested(self) -> bool:
        """Pooled by ``by`` within ``within`` (two levels)."""
        return self.within is not None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"domain": self.domain}
        if self.by is not None:
            d["by"] = self.by
            if self.within is not None:
                d["within"] = self.within
            d["pooling"] = self.pooling
            d["spread"] = self.spread
            d["parameterization"] = self.parameterization
        if self.fixed is not None:
            d["fixed"] = self.fixed
        if self.fraction_of is not None:          # absent: left out (the hash of a spec without it is unchanged)
            d["fraction_of"] = self.fraction_of
        d.update(self.prior)
        if self.median_of is not None:
            d["median_of"] = self.median_of
        if self.description:
            d["description"] = self.description
        return d

    @classmethod
    def from_dict(cls, name: str, d: Any) -> Parameter:
        if not isinstance(d, dict):
            raise ConfigError(f"parameter {name!r} must be a table, got {d!r}")
        unknown = set(d) - _PARAM_KEYS
        if unknown:
            raise ConfigError(f"parameter {name!r}: unknown key(s) {', '.join(sorted(unknown))}; expected "
                              f"{', '.join(sorted(_PARAM_KEYS))}")
        prior = {k: d[k] for k in ("median", "mean", "mu", "sigma") if k in d}
        for key in ("domain", "by", "within", "pooling", "parameterization", "description", "median_of"):
            if key in d and not isinstance(d[key], str):
                raise ConfigError(f"parameter {name!r}: {key} must be a string, got {d[key]!r}")
        if "fraction_of" in d and (isinstance(d["fraction_of"], bool)
                                   or not isinstance(d["fraction_of"], (str, int, float))):
            raise ConfigError(f"parameter {name!r}: fraction_of must be a string or a positive number, "
                              f"got {d['fraction_of']!r}")
        return cls(name=name, domain=d.get("domain", "positive"), by=d.get("by"),
                   pooling=d.get("pooling", "partial"), fixed=d.get("fixed"), prior=prior,
                   spread=d.get("spread", 0.5), parameterization=d.get("parameterization", "auto"),
                   description=d.get("description", ""), within=d.get("within"), median_of=d.get("median_of"),
                   fraction_of=d.get("fraction_of"))


@dataclass
class LawSpec:
    """A law: formula, target, likelihood and parameters. See the module docstring for the TOML form.

    >>> spec = LawSpec(formula="k * D_F**alpha * N**beta", target="D_T",
    ...                parameters=[Parameter("k", by="pretraining"), Parameter("alpha", by="pretraining"),
    ...                            Parameter("beta")])
    >>> [p.sharing for p in spec.parameters.values()]
    ['pooled', 'pooled', 'shared']
    """

    formula: str | Formula | Equation
    target: str
    parameters: dict[str, Parameter] | list[Parameter] = field(default_factory=dict)
    family: str = "normal"
    scale: str = "log"
    sigma: float | None = None
    nu_alpha: float = 2.0
    nu_beta: float = 0.1
    name: str = "law"
    description: str = ""
    reference: str = ""
    #: the law's discrepancy outside the data (``tau`` per decade; default
    #: :data:`~bayes_scaling.laws.discrepancy.DEFAULT_TAU`)
    discrepancy: Discrepancy | float | dict | None = None
    #: named derived quantities, name -> formula (text or parsed), in the order given (``[derived]``)
    derived: dict[str, str | Formula] = field(default_factory=dict)
    #: exclusion rules, condition -> reason (``[exclude]``), applied in order when the data are read
    exclude: dict[str, str] = field(default_factory=dict)
    #: replicate runs (rows sharing every input and group column) share a run-level term, plus a seed noise
    replicates: bool = False
    #: HalfNormal scale of the seed noise ``sigma_seed`` (None: that of the noise ``sigma``)
    seed_sigma: float | None = None
    #: an input column along which the log seed noise varies linearly in its log (None: a constant seed noise)
    seed_slope: str | None = None
    #: a column whose levels each get their own noise sd (and seed noise, and Student-t nu); None: one noise
    sigma_by: str | None = None
    #: a numeric column along which the log noise sd varies linearly (None: a constant noise)
    sigma_slope: str | None = None

    def __post_init__(self) -> None:
        if self.discrepancy is None:
            self.discrepancy = Discrepancy()
        elif isinstance(self.discrepancy, dict):
            self.discrepancy = Discrepancy.from_dict(self.discrepancy)
        elif not isinstance(self.discrepancy, Discrepancy):
            self.discrepancy = Discrepancy(self.discrepancy, "given")
        if isinstance(self.formula, Equation):
            if self.formula.target != self.target:
                raise ConfigError(f"equation {self.formula.text!r} is solved for {self.formula.target!r}, but the "
                                  f"target is {self.target!r}")
        elif not isinstance(self.formula, Formula):
            self.formula = Formula.parse(self.formula)
        if isinstance(self.parameters, (list, tuple)):
            self.parameters = {p.name: p for p in self.parameters}
        if not isinstance(self.target, str) or not self.target:
            raise ConfigError(f"target must be a column name, got {self.target!r}")
        if self.family not in FAMILIES:
            raise ConfigError(f"likelihood family {self.family!r} is not one of {', '.join(FAMILIES)}")
        if self.scale not in SCALES:
            raise ConfigError(f"likelihood scale {self.scale!r} is not one of {', '.join(SCALES)}")
        if self.sigma is not None:
            self.sigma = _number(self.sigma, "likelihood sigma", positive=True)
        if not isinstance(self.replicates, bool):
            raise ConfigError(f"likelihood replicates must be true or false, got {self.replicates!r}")
        if self.seed_sigma is not None:
            if not self.replicates:
                raise ConfigError("likelihood seed_sigma applies with replicates = true only")
            self.seed_sigma = _number(self.seed_sigma, "likelihood seed_sigma", positive=True)
        if self.seed_slope is not None:
            if not self.replicates:
                raise ConfigError("likelihood seed_slope applies with replicates = true only")
            if not isinstance(self.seed_slope, str) or self.seed_slope not in self.formula.names \
                    or self.seed_slope in self.parameters:
                raise ConfigError(f"likelihood seed_slope must name an input column of the formula, got "
                                  f"{self.seed_slope!r}")
        if self.sigma_by is not None and (not isinstance(self.sigma_by, str) or not self.sigma_by
                                          or self.sigma_by in self.parameters or self.sigma_by == self.target):
            raise ConfigError(f"likelihood sigma_by must name a data column (not a parameter or the target), got "
                              f"{self.sigma_by!r}")
        if self.sigma_slope is not None:
            if not isinstance(self.sigma_slope, str) or not self.sigma_slope or self.sigma_slope in self.parameters \
                    or self.sigma_slope == self.target:
                raise ConfigError(f"likelihood sigma_slope must name a numeric data column (not a parameter or the "
                                  f"target), got {self.sigma_slope!r}")
            if self.replicates or self.sigma_by is not None:
                raise ConfigError("likelihood sigma_slope applies without replicates and sigma_by")
        self.nu_alpha = _number(self.nu_alpha, "likelihood nu_alpha", positive=True)
        self.nu_beta = _number(self.nu_beta, "likelihood nu_beta", positive=True)
        unused = sorted(set(self.parameters) - self.formula.names)
        if unused:
            raise ConfigError(f"parameter(s) {', '.join(unused)} do not appear in the formula {self.formula.text!r}")
        if not self.parameters:
            raise ConfigError(f"formula {self.formula.text!r}: no parameters declared; add [parameters.NAME] "
                              "tables for the names to fit")
        if not isinstance(self.derived, dict):
            raise ConfigError(f"[derived] must be a table of name = \"formula\", got {self.derived!r}")
        self.derived = {name: parse_derived(name, f) for name, f in self.derived.items()}
        if not isinstance(self.exclude, dict):
            raise ConfigError(f"[exclude] must be a table of \"condition\" = \"reason\", got {self.exclude!r}")
        for cond, reason in self.exclude.items():
            parse_condition(cond, "[exclude] condition")
            if not isinstance(reason, str) or not reason.strip():
                raise ConfigError(f"[exclude] {cond!r}: the reason must be a non-empty string (it is reported for "
                                  f"every row the rule excludes), got {reason!r}")
        if self.target in self.formula.names:
            raise ConfigError(f"target {self.target!r} appears in the formula {self.formula.text!r}")
        for p in self.parameters.values():
            for col in (p.by, p.within):
                if col is not None and col in self.formula.names:
                    raise ConfigError(f"parameter {p.name!r}: group column {col!r} is also used in the formula")
        check_spec(self)      # names the model builder uses, magnitudes of constants (laws/validate.py)

    # ---- structure --------------------------------------------------------------------------------------
    @property
    def inputs(self) -> list[str]:
        """Input columns: the formula's names that are not parameters (sorted)."""
        return sorted(self.formula.names - set(self.parameters))

    @property
    def derived_order(self) -> list[str]:
        """The derived quantities in an order that evaluates each after the ones it uses."""
        return derived_order(self)

    @property
    def groups(self) -> list[str]:
        """Group columns used by any parameter (``by`` and ``within``), in order of first use."""
        cols = [c for p in self.parameters.values() for c in (p.by, p.within) if c is not None]
        return list(dict.fromkeys(cols))

    def exponents(self) -> set[str]:
        """Parameters that appear on the right of ``**`` (their default prior is that of an exponent)."""
        out: set[str] = set()

        def walk(t, in_exp: bool):
            if t[0] == "name":
                if in_exp:
                    out.add(t[1])
            elif t[0] == "**":
                walk(t[1], in_exp)
                walk(t[2], True)
            elif t[0] == "call":
                for a in t[2]:
                    walk(a, in_exp)
            elif t[0] == "neg":
                walk(t[1], in_exp)
            elif t[0] != "num":
                walk(t[1], in_exp)
                walk(t[2], in_exp)

        walk(self.formula.tree, False)
        return out & set(self.parameters)

    def monomial(self) -> tuple[str, tuple[tuple[str, str, int], ...]] | None:
        """The law as one power-law monomial ``c * x_1**(s_1 e_1) * x_2**(s_2 e_2) ...`` (``c`` a parameter, ``x_i``
        input columns, ``e_i`` parameters, ``s_i = -1`` for a power in a denominator; number factors allowed):
        ``(c, ((x_1, e_1, s_1), ...))``, else None (a sum, an equation, a parameter twice, ...).

        >>> builtin_spec("transfer").monomial()
        ('k', (('D_F', 'alpha', 1), ('N', 'beta', 1)))
        """
        if not isinstance(self.formula, Formula):
            return None
        factors: list[tuple[Any, int]] = []

        def walk(t, sign: int) -> None:
            if t[0] in ("*", "/"):
                walk(t[1], sign)
                walk(t[2], sign if t[0] == "*" else -sign)
            else:
                factors.append((t, sign))

        walk(self.formula.tree, 1)
        coefficient, powers = None, []
        for t, sign in factors:
            if t[0] == "num":
                continue
            if t[0] == "name" and t[1] in self.parameters and sign == 1 and coefficient is None:
                coefficient = t[1]
            elif t[0] == "**" and t[1][0] == "name" and t[1][1] not in self.parameters:
                e, s = t[2], sign
                if e[0] == "neg":
                    e, s = e[1], -sign
                if e[0] != "name" or e[1] not in self.parameters:
                    return None
                powers.append((t[1][1], e[1], s))
            else:
                return None
        names = [x for x, _, _ in powers] + [e for _, e, _ in powers]
        if coefficient is None or not powers or len(set(names)) != len(names) or coefficient in names:
            return None
        return coefficient, tuple(powers)

    # ---- I/O --------------------------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | PathLike) -> LawSpec:
        """Read a spec file; errors name the file."""
        from bayes_scaling._toml import read_toml

        doc = read_toml(path)
        try:
            return cls.from_dict(doc)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LawSpec:
        if not isinstance(doc, dict):
            raise ConfigError(f"a law spec must be a table, got {doc!r}")
        unknown = set(doc) - {"law", "likelihood", "parameters", "discrepancy", "derived", "exclude"}
        if unknown:
            raise ConfigError(f"unknown section(s) {', '.join(sorted(unknown))}; expected [law], [likelihood], "
                              "[parameters.NAME], [discrepancy], [derived], [exclude]")
        law, lik, params = doc.get("law"), doc.get("likelihood", {}), doc.get("parameters", {})
        for sec, val in (("law", law), ("likelihood", lik), ("parameters", params)):
            if not isinstance(val, dict):
                raise ConfigError(f"[{sec}] must be a table, got {val!r}")
        missing = [k for k in ("formula", "target") if k not in law and (k != "formula" or "equation" not in law)]
        if missing:
            raise ConfigError(f"[law] needs {' and '.join(missing)} (or, for a law implicit in its target, "
                              "equation and bracket instead of formula)" if "formula" in missing else
                              f"[law] needs {' and '.join(missing)}")
        if "formula" in law and "equation" in law:
            raise ConfigError("[law] has both formula and equation; give one: formula for target = f(inputs), "
                              "equation (with bracket) for a law implicit in its target")
        if "bracket" in law and "equation" not in law:
            raise ConfigError("[law] bracket applies to an equation only; this law has a formula")
        bad = set(law) - {"name", "formula", "equation", "bracket", "target", "description", "reference"}
        if bad:
            raise ConfigError(f"[law]: unknown key(s) {', '.join(sorted(bad))}")
        bad = set(lik) - {"family", "scale", "sigma", "nu_alpha", "nu_beta", "replicates", "seed_sigma",
                          "seed_slope", "sigma_by", "sigma_slope"}
        if bad:
            raise ConfigError(f"[likelihood]: unknown key(s) {', '.join(sorted(bad))}; expected family, scale, "
                              "sigma, nu_alpha, nu_beta, replicates, seed_sigma, seed_slope, sigma_by, sigma_slope")
        for sec, d, keys in (("law", law, ("name", "formula", "equation", "target", "description", "reference")),
                             ("likelihood", lik, ("family", "scale"))):
            for k in keys:
                if k in d and not isinstance(d[k], str):
                    raise ConfigError(f"[{sec}] {k} must be a string, got {d[k]!r}")
        formula = law["formula"] if "formula" in law else \
            Equation.parse(law["equation"], law["target"], law.get("bracket"))
        return cls(formula=formula, target=law["target"], name=law.get("name", "law"),
                   description=law.get("description", ""), reference=law.get("reference", ""),
                   family=lik.get("family", "normal"), scale=lik.get("scale", "log"), sigma=lik.get("sigma"),
                   nu_alpha=lik.get("nu_alpha", 2.0), nu_beta=lik.get("nu_beta", 0.1),
                   replicates=lik.get("replicates", False), seed_sigma=lik.get("seed_sigma"),
                   seed_slope=lik.get("seed_slope"), sigma_by=lik.get("sigma_by"),
                   sigma_slope=lik.get("sigma_slope"),
                   parameters=[Parameter.from_dict(n, d) for n, d in params.items()],
                   discrepancy=Discrepancy.from_dict(doc["discrepancy"]) if "discrepancy" in doc else None,
                   derived=doc.get("derived", {}), exclude=doc.get("exclude", {}))

    def to_dict(self) -> dict[str, Any]:
        law: dict[str, Any] = {"name": self.name, "formula": self.formula.text, "target": self.target}
        if isinstance(self.formula, Equation):
            del law["formula"]
            law.update(equation=self.formula.text, bracket=[end.text for end in self.formula.bracket])
        if self.description:
            law["description"] = self.description
        if self.reference:
            law["reference"] = self.reference
        lik: dict[str, Any] = {"family": self.family, "scale": self.scale}
        if self.sigma is not None:
            lik["sigma"] = self.sigma
        if self.family == "student_t":
            lik.update(nu_alpha=self.nu_alpha, nu_beta=self.nu_beta)
        if self.replicates:
            lik["replicates"] = True
            if self.seed_sigma is not None:
                lik["seed_sigma"] = self.seed_sigma
            if self.seed_slope is not None:       # absent: left out (the hash of a spec without it is unchanged)
                lik["seed_slope"] = self.seed_slope
        if self.sigma_by is not None:             # absent: left out (the hash of a spec without it is unchanged)
            lik["sigma_by"] = self.sigma_by
        if self.sigma_slope is not None:          # absent: left out (the hash of a spec without it is unchanged)
            lik["sigma_slope"] = self.sigma_slope
        out = {"law": law, "likelihood": lik, "parameters": {n: p.to_dict() for n, p in self.parameters.items()}}
        if self.discrepancy != Discrepancy():     # the default is left out (and out of the hash)
            out["discrepancy"] = self.discrepancy.to_dict()
        if self.derived:                          # absent: left out (the hash of a spec without them is unchanged)
            out["derived"] = {n: f.text for n, f in self.derived.items()}
        if self.exclude:
            out["exclude"] = dict(self.exclude)
        return out

    def to_toml(self) -> str:
        def val(v):
            return json.dumps(v) if isinstance(v, (str, list, bool)) else repr(v)

        d = self.to_dict()
        lines = ["[law]", *[f"{k} = {val(v)}" for k, v in d["law"].items()], "", "[likelihood]",
                 *[f"{k} = {val(v)}" for k, v in d["likelihood"].items()]]
        for n, p in d["parameters"].items():
            lines += ["", f"[parameters.{n}]", *[f"{k} = {val(v)}" for k, v in p.items()]]
        if "discrepancy" in d:
            lines += ["", "[discrepancy]", *[f"{k} = {val(v)}" for k, v in d["discrepancy"].items()]]
        if "derived" in d:
            lines += ["", "[derived]", *[f"{k} = {val(v)}" for k, v in d["derived"].items()]]
        if "exclude" in d:
            lines += ["", "[exclude]", *[f"{val(k)} = {val(v)}" for k, v in d["exclude"].items()]]
        return "\n".join(lines) + "\n"

    def exclusions(self, table, what: str = "data"):
        """Apply the ``[exclude]`` rules to ``table``: ``(kept, excluded)``, the rows no rule meets (index
        reset) and the others with ``row`` (their position in ``table``) and ``reason`` (the first rule each
        meets). A rule naming a column ``table`` lacks: a :class:`~bayes_scaling.errors.DataError` naming it.

        >>> spec = builtin_spec("transfer")
        >>> import pandas as pd
        >>> kept, out = spec.exclusions(pd.DataFrame({"pretraining": ["a", "a"], "N": [1e6, 1e6],
        ...                                           "D_F": [1e5, 1e6], "D_T": [2e5, -1e4]}))
        >>> len(kept), out["row"].tolist()
        (1, [1])
        """
        import numpy as np
        import pandas as pd

        from bayes_scaling.errors import DataError

        reason = np.full(len(table), None, dtype=object)
        for cond, why in self.exclude.items():
            tree, columns = parse_condition(cond, "[exclude] condition")
            missing = sorted(columns - set(map(str, table.columns)))
            if missing:
                raise DataError(f"{what}: the exclusion rule {cond!r} needs column(s) {', '.join(missing)}; the "
                                f"columns are {', '.join(map(str, table.columns))}")
            hit = np.broadcast_to(np.asarray(eval_condition(tree, table, f"{what}: exclusion rule {cond!r}"),
                                             dtype=bool), (len(table),))
            reason[hit & (reason == None)] = f"{why} ({cond})"  # noqa: E711  (elementwise)
        out = reason != None  # noqa: E711
        excluded = table.loc[out].copy()
        excluded.insert(0, "row", np.flatnonzero(out))
        excluded["reason"] = reason[out].astype(str)
        return table.loc[~out].reset_index(drop=True), pd.DataFrame(excluded).reset_index(drop=True)

    def hash(self) -> str:
        """A short hash of the spec, stored in fit files."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        share = ", ".join(f"{n}: {p.sharing}" + (f" by {p.by}" if p.by else "")
                          + (f" within {p.within}" if p.within else "") for n, p in self.parameters.items())
        return f"LawSpec({self.name!r}: {self.target} ~ {self.formula.text}; {share})"


def builtin_names() -> list[str]:
    """The names of the built-in law specs (``bayes_scaling/specs/laws/*.toml``), sorted."""
    return sorted(q.stem for q in (MODELS_DIR / "laws").glob("*.toml"))


def builtin_spec(name: str) -> LawSpec:
    """A built-in spec (``"transfer"``, ``"chinchilla"``, ``"kaplan"``, ...: :func:`builtin_names`), or a path to
    a spec file.

    >>> builtin_spec("chinchilla").target
    'loss'
    """
    p = Path(name)
    if p.suffix == ".toml" or p.exists():
        return LawSpec.from_toml(p)
    path = MODELS_DIR / "laws" / f"{name}.toml"
    if not path.exists():
        raise ConfigError(f"no built-in law {name!r}; known: {', '.join(builtin_names()) or '(none found)'}")
    return LawSpec.from_toml(path)
