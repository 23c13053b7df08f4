"""A law's formula, parsed once and evaluated by NumPy (predictions, plots) and PyTensor (sampling).

The text is parsed by Python's :mod:`ast` and checked against a whitelist; it is never passed to ``eval`` or
``exec``. Allowed:

- numbers, names (input columns and parameters), parentheses;
- ``+ - * / **`` and unary minus;
- the functions in :data:`FUNCTIONS`: ``exp``, ``log``, ``log1p``, ``expm1``, ``log10``, ``sqrt``, ``abs``,
  ``tanh``, ``sigmoid``, ``softplus``, ``minimum``, ``maximum``.

>>> f = Formula.parse("E + A / N**alpha + B / D**beta")
>>> sorted(f.names)
['A', 'B', 'D', 'E', 'N', 'alpha', 'beta']
>>> round(float(f.evaluate({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28,
...                          "N": 7e10, "D": 1.4e12})), 3)
1.937

A law may also be an *equation* in its target (an implicit law), solved numerically for the target within a
bracket: :class:`Equation`. The M4 learning-curve law of Alabdulmohsin et al. (2022),
``(L - L_inf) / (L_0 - L)**alpha = beta * x**c``, has no closed form for ``L``:

>>> m4 = Equation.parse("(L - L_inf) / (L_0 - L)**alpha = beta * x**c", target="L", bracket=("L_inf", "L_0"))
>>> sorted(m4.names)
['L_0', 'L_inf', 'alpha', 'beta', 'c', 'x']
>>> theta = {"L_inf": 0.5, "L_0": 2.3, "alpha": 0.6, "beta": 30.0, "c": -0.5}
>>> L = m4.evaluate({**theta, "x": 1e3})
>>> round(float(L), 4), abs(float(m4.residual({**theta, "x": 1e3, "L": L}))) < 1e-12
(1.3941, True)
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_scaling.errors import ConfigError, DataError

__all__ = ["Formula", "Equation", "parse_condition", "eval_condition", "FUNCTIONS", "BISECTION_STEPS", "MAX_LENGTH", "MAX_DEPTH", "MAX_CONSTANT",
           "parse_expression"]

#: The longest expression text (characters) the parser takes (formulas, bracket ends, holdout conditions).
MAX_LENGTH = 10_000
#: The deepest nesting (parentheses, operators, calls) the parser takes.
MAX_DEPTH = 200
#: The largest magnitude of a number in a formula (and of a fixed value or prior location): beyond it the law's
#: value overflows or loses all precision long before the sampler sees it.
MAX_CONSTANT = 1e100

#: Function name -> number of arguments.
FUNCTIONS: dict[str, int] = {
    "exp": 1, "log": 1, "log1p": 1, "expm1": 1, "log10": 1, "sqrt": 1, "abs": 1, "tanh": 1,
    "sigmoid": 1, "softplus": 1, "minimum": 2, "maximum": 2,
}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def _numpy_fns() -> dict[str, Any]:
    return {
        "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "log10": np.log10,
        "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh, "sigmoid": lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
        "softplus": lambda x: np.logaddexp(0.0, x), "minimum": np.minimum, "maximum": np.maximum,
    }


def _pytensor_fns() -> dict[str, Any]:
    import pytensor.tensor as pt

    return {
        "exp": pt.exp, "log": pt.log, "log1p": pt.log1p, "expm1": pt.expm1, "log10": pt.log10,
        "sqrt": pt.sqrt, "abs": pt.abs, "tanh": pt.tanh, "sigmoid": pt.sigmoid, "softplus": pt.softplus,
        "minimum": pt.minimum, "maximum": pt.maximum,
    }


@dataclass(frozen=True)
class Formula:
    """A parsed formula: ``text``, the ``names`` it uses, and a checked syntax tree.

    Build it with :meth:`parse`; evaluate with :meth:`evaluate` on NumPy arrays or PyTensor tensors.
    """

    text: str
    tree: Any
    names: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Formula:
        """Parse and check ``text``; a :class:`ConfigError` names what is not allowed and where."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"formula must be a non-empty string, got {text!r}")
        node = parse_expression(text.strip(), "formula")
        names: set[str] = set()
        tree = _check(node, text, names)
        return cls(text=text.strip(), tree=tree, names=frozenset(names))

    def check_names(self, columns, parameters) -> None:
        """Every name must be an input column or a parameter; a :class:`ConfigError` names the unknown ones
        and lists the columns and parameters."""
        columns, parameters = list(columns), list(parameters)
        unknown = sorted(self.names - set(columns) - set(parameters))
        if unknown:
            raise ConfigError(
                f"formula {self.text!r}: unknown name(s) {', '.join(unknown)}; input columns are "
                f"{', '.join(columns) or '(none)'} and parameters are {', '.join(parameters) or '(none)'}")
        clash = sorted(set(columns) & set(parameters) & self.names)
        if clash:
            raise ConfigError(f"formula {self.text!r}: {', '.join(clash)} is both an input column and a parameter")

    def evaluate(self, values: Mapping[str, Any], backend: str | None = None):
        """The formula's value for ``values`` (name -> number, array or tensor).

        ``backend``: ``"numpy"`` or ``"pytensor"``; by default PyTensor when any value is a PyTensor variable.
        NumPy arrays broadcast as usual (a parameter with draws along one axis and inputs along another).
        """
        if backend is None:
            backend = "pytensor" if any(type(v).__module__.startswith("pytensor") for v in values.values()) \
                else "numpy"
        fns = _pytensor_fns() if backend == "pytensor" else _numpy_fns()
        missing = sorted(self.names - set(values))
        if missing:
            raise ConfigError(f"formula {self.text!r}: no value for {', '.join(missing)}")
        if backend == "numpy":
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return _eval(self.tree, values, fns)
        return _eval(self.tree, values, fns)

    def __str__(self) -> str:
        return self.text


#: Bisection steps of :meth:`Equation.evaluate` (each halves the bracket, or its log-width for a positive one).
BISECTION_STEPS = 60


@dataclass(frozen=True)
class Equation:
    """A law given as an equation ``lhs = rhs`` in its target, solved for the target within a ``bracket``.

    The residual ``F(target; theta) = lhs - rhs`` must change sign once between the bracket's two ends (formulas
    of the parameters and input columns, in either order). :meth:`evaluate` returns the root, so an equation
    stands wherever a :class:`Formula` does (sampling, predictions, figures):

    - NumPy: :data:`BISECTION_STEPS` vectorised bisection steps, then one secant step in the final bracket;
    - PyTensor: the same bisection steps in a ``scan`` of fixed length, cut from the gradient
      (``disconnected_grad``), then one Newton step at its result ``r``,
      ``L = r - F(r; theta) / F_L(r; theta)`` with ``F_L`` also cut from the gradient. Its derivative is the
      implicit-function theorem's, ``dL/dtheta = -F_theta / F_L``, at the root.

    Bisection is geometric (midpoint ``sqrt(lo * hi)``) where both ends have one sign (an end at 0 counts as the
    smallest normal double), so that a root many orders of magnitude from an end is found to full relative
    precision; arithmetic where the ends differ in sign. Where the
    residual does not change sign between the ends (or is NaN there), the result is NaN: the sampler rejects
    such a point, and :meth:`no_root` finds those rows before fitting.

    ``names``: every name the equation and its bracket use, except the target.

    >>> eq = Equation.parse("y**3 + y = x", target="y", bracket=(0, "x"))
    >>> round(float(eq.evaluate({"x": 10.0})), 12)
    2.0
    """

    text: str
    target: str
    lhs: Formula
    rhs: Formula
    bracket: tuple[Formula, Formula]
    tree: Any
    names: frozenset[str]

    @classmethod
    def parse(cls, text: str, target: str, bracket: Any) -> Equation:
        """Parse ``"lhs = rhs"``; ``target`` must appear in it, ``bracket`` is two expressions (text or
        numbers) without the target. A :class:`ConfigError` says what is wrong."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"equation must be a non-empty string 'lhs = rhs', got {text!r}")
        sides = text.split("=")
        if len(sides) != 2 or not all(side.strip() for side in sides):
            raise ConfigError(f"equation {text!r} must have exactly one '=' with an expression on each side, "
                              "e.g. '(L - L_inf) / (L_0 - L)**alpha = beta * x**c'")
        lhs, rhs = Formula.parse(sides[0]), Formula.parse(sides[1])
        if not isinstance(target, str) or not target:
            raise ConfigError(f"equation {text!r}: the target must be a column name, got {target!r}")
        if target not in lhs.names | rhs.names:
            raise ConfigError(f"equation {text!r}: the target {target!r} does not appear in it; an equation is "
                              f"solved for the target, so write it in {target!r} (or give a formula instead)")
        if bracket is None:
            raise ConfigError(f"equation {text!r}: no bracket given; give bracket = [lower, upper], two "
                              f"expressions of the parameters and columns between which the equation has one "
                              f"root in {target!r} (e.g. [\"L_inf\", \"L_0\"])")
        if isinstance(bracket, (str, bytes)) or not hasattr(bracket, "__len__") or len(bracket) != 2:
            raise ConfigError(f"equation {text!r}: bracket must be a list of two expressions [lower, upper], "
                              f"got {bracket!r}")
        ends = []
        for end in bracket:
            if isinstance(end, bool) or not isinstance(end, (str, int, float)):
                raise ConfigError(f"equation {text!r}: each end of the bracket must be an expression (text) or "
                                  f"a number, got {end!r}")
            if not isinstance(end, str) and (not np.isfinite(end) or abs(end) > MAX_CONSTANT):
                raise ConfigError(f"equation {text!r}: bracket end {end!r} is not a finite number within "
                                  f"{MAX_CONSTANT:g} in magnitude; give finite ends (an expression of the "
                                  "parameters and columns, or a number)")
            f = Formula.parse(end if isinstance(end, str) else repr(float(end)))
            if target in f.names:
                raise ConfigError(f"equation {text!r}: the bracket end {f.text!r} uses the target {target!r}; "
                                  "it must be given by the parameters and columns alone")
            ends.append(f)
        names = (lhs.names | rhs.names | ends[0].names | ends[1].names) - {target}
        return cls(text=f"{lhs.text} = {rhs.text}", target=target, lhs=lhs, rhs=rhs, bracket=tuple(ends),
                   tree=("-", lhs.tree, rhs.tree), names=frozenset(names))

    def check_names(self, columns, parameters) -> None:
        """As :meth:`Formula.check_names`, for the equation and its bracket."""
        Formula.check_names(self, columns, parameters)  # type: ignore[arg-type]  # uses .names and .text only

    def residual(self, values: Mapping[str, Any], backend: str | None = None):
        """``lhs - rhs`` at ``values`` (which include the target)."""
        return Formula.evaluate(self, values, backend)  # type: ignore[arg-type]  # evaluates .tree

    def ends(self, values: Mapping[str, Any], backend: str | None = None) -> tuple[Any, Any]:
        """The bracket's two ends at ``values``."""
        return self.bracket[0].evaluate(values, backend), self.bracket[1].evaluate(values, backend)

    def no_root(self, values: Mapping[str, Any]) -> np.ndarray:
        """NumPy: True where the residual does not change sign between the bracket's ends (or is NaN there)."""
        values = {k: np.asarray(v, dtype=float) for k, v in values.items()}
        a, b = self.ends(values, "numpy")
        fa = self.residual({**values, self.target: a}, "numpy")
        fb = self.residual({**values, self.target: b}, "numpy")
        with np.errstate(invalid="ignore"):
            return ~(np.sign(fa) * np.sign(fb) <= 0)

    def evaluate(self, values: Mapping[str, Any], backend: str | None = None):
        """The target that solves the equation at ``values`` (NumPy arrays broadcast; PyTensor tensors give a
        tensor whose gradient is the implicit-function theorem's). NaN where the bracket holds no root."""
        if backend is None:
            backend = "pytensor" if any(type(v).__module__.startswith("pytensor") for v in values.values()) \
                else "numpy"
        missing = sorted(self.names - set(values))
        if missing:
            raise ConfigError(f"equation {self.text!r}: no value for {', '.join(missing)}")
        if backend == "numpy":
            values = {k: np.asarray(v, dtype=float) for k, v in values.items()}   # NumPy's rules for 1/0
            with np.errstate(all="ignore"):
                return self._solve(values, np, backend)
        import pytensor.tensor as pt

        return self._solve(values, pt, backend)

    def _solve(self, values, m, backend):
        def F(t, vals=values):
            return self.residual({**vals, self.target: t}, backend)

        a, b = self.ends(values, backend)
        fa, fb = F(a), F(b)
        shape_of = m.zeros_like(fa) + m.zeros_like(fb)    # the broadcast shape of the ends and every value
        lo, hi = a + shape_of, b + shape_of
        if backend == "numpy":
            s_lo = np.sign(fa)
            for _ in range(BISECTION_STEPS):
                lo, hi = _bisection_step(lo, hi, s_lo, F, np)
            f_lo, f_hi = F(lo), F(hi)
            secant = lo - f_lo * (hi - lo) / (f_hi - f_lo)
            inside = np.isfinite(secant) & (np.minimum(lo, hi) <= secant) & (secant <= np.maximum(lo, hi))
            root = np.where(inside, secant, _midpoint(lo, hi, np))
            return np.where(np.sign(fa) * np.sign(fb) <= 0, root, np.nan)

        import pytensor
        import pytensor.tensor as pt
        from pytensor.gradient import disconnected_grad

        # the bisection: a scan of BISECTION_STEPS steps (one small compiled loop, not an unrolled graph), cut
        # from the gradient; the values enter as non-sequences
        lo, hi, fa, fb = (disconnected_grad(v) for v in (lo, hi, fa, fb))
        s_lo = pt.sign(fa)
        names = sorted(values)
        consts = [disconnected_grad(pt.as_tensor(values[n])) for n in names]

        def step(lo_, hi_, s_lo_, *cs):
            return _bisection_step(lo_, hi_, s_lo_, lambda t: F(t, dict(zip(names, cs, strict=True))), pt)

        los, his = pytensor.scan(step, outputs_info=[lo, hi], non_sequences=[s_lo, *consts],
                                 n_steps=BISECTION_STEPS, return_updates=False)
        # one Newton step at the bisection's result r, F_L cut from the gradient: dL/dtheta = -F_theta / F_L
        r = disconnected_grad(_midpoint(los[-1], his[-1], pt))
        f_r = F(r)
        slope = disconnected_grad(pt.grad(pt.sum(f_r), r))
        usable = pt.isfinite(f_r) & pt.isfinite(slope) & pt.neq(slope, 0)
        newton = pt.where(usable, f_r / pt.where(usable, slope, 1.0), 0.0)
        return pt.where(s_lo * pt.sign(fb) <= 0, r - newton, np.nan)

    def __str__(self) -> str:
        return self.text


#: The stand-in for an end at 0 in geometric bisection (the smallest normal double).
_TINY = float(np.finfo(float).tiny)


def _midpoint(lo, hi, m):
    """The bisection's midpoint on NumPy arrays or PyTensor tensors (``m``): geometric where both ends have one
    sign (``sqrt`` of each end: no overflow; an end at 0 counts as :data:`_TINY`), so that 60 steps find a root
    anywhere in [0, 1e300] to full relative precision; arithmetic where the ends differ in sign."""
    sign = m.where(lo + hi < 0, -1.0, 1.0)
    geometric = m.sqrt(m.maximum(m.abs(lo), _TINY)) * m.sqrt(m.maximum(m.abs(hi), _TINY))
    return m.where(lo * hi >= 0, sign * geometric, 0.5 * (lo + hi))


def _bisection_step(lo, hi, s_lo, F, m):
    """One bisection step on NumPy arrays or PyTensor tensors (``m``): keep the half whose ends' residuals differ
    in sign. ``s_lo``: the sign of the residual at the first end. A NaN residual moves ``hi`` to the midpoint."""
    mid = _midpoint(lo, hi, m)
    keep_hi = m.sign(F(mid)) * s_lo > 0       # the midpoint is on lo's side: the root lies in [mid, hi]
    return m.where(keep_hi, mid, lo), m.where(keep_hi, hi, mid)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 80 else repr(text[:60] + "...") + f" ({len(text)} characters)"


def parse_expression(text: str, what: str = "formula") -> ast.AST:
    """``ast.parse(text, mode="eval").body`` within limits: at most :data:`MAX_LENGTH` characters and
    :data:`MAX_DEPTH` levels of nesting; a :class:`ConfigError` (never a RecursionError or MemoryError) says
    which limit and where (``what``: "formula", "holdout", ...)."""
    if len(text) > MAX_LENGTH:
        raise ConfigError(f"{what} {_shown(text)} is {len(text)} characters long; at most {MAX_LENGTH} are "
                          "allowed")
    level = deepest = 0
    for ch in text:               # parentheses first: CPython's own limit would give a puzzling message
        level += ch in "([{"
        level -= ch in ")]}"
        deepest = max(deepest, level)
    if deepest > MAX_DEPTH:
        raise ConfigError(f"{what} {_shown(text)} nests parentheses {deepest} deep; at most {MAX_DEPTH} levels "
                          "are allowed")
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise ConfigError(f"{what} {_shown(text)} is not valid: {exc.msg} at column {exc.offset}") from None
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{what} {_shown(text)} is too deeply nested or too long to parse "
                          f"({type(exc).__name__}); at most {MAX_DEPTH} levels and {MAX_LENGTH} characters") from None
    stack = [(node, 1)]
    while stack:                  # iterative: the depth check itself must not recurse
        n, d = stack.pop()
        if d > MAX_DEPTH:
            raise ConfigError(f"{what} {_shown(text)} nests operations more than {MAX_DEPTH} deep (e.g. a long "
                              f"chain of + or **); at most {MAX_DEPTH} levels are allowed: split it or use "
                              "parentheses to balance it")
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(n)
                     if not isinstance(c, (ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)))
    return node


def _check(node: ast.AST, text: str, names: set[str]):
    """The whitelisted tree as nested tuples: ('num', v) | ('name', n) | ('neg', x) | (op, a, b) |
    ('call', f, args)."""
    where = f"formula {_shown(text)}"
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ConfigError(f"{where}: only numbers are allowed as constants, got {node.value!r}")
        try:
            value = float(node.value)
        except OverflowError:
            value = float("inf")
        if not np.isfinite(value) or abs(value) > MAX_CONSTANT:
            shown = str(node.value) if len(str(node.value)) <= 30 else f"of {len(str(node.value))} digits"
            raise ConfigError(f"{where}: the number {shown} is not finite or beyond {MAX_CONSTANT:g} in magnitude; "
                              "rescale the law (e.g. give the inputs in other units)")
        return ("num", value)
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise ConfigError(f"{where}: {node.id} is a function; call it as {node.id}(...)")
        names.add(node.id)
        return ("name", node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _check(node.operand, text, names)
        return ("neg", inner) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return (_BINOPS[type(node.op)], _check(node.left, text, names), _check(node.right, text, names))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            fn = ast.unparse(node.func)
            raise ConfigError(f"{where}: function {fn!r} is not allowed; allowed: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise ConfigError(f"{where}: {node.func.id}() takes positional arguments only")
        if len(node.args) != FUNCTIONS[node.func.id]:
            raise ConfigError(f"{where}: {node.func.id}() takes {FUNCTIONS[node.func.id]} argument(s), "
                              f"got {len(node.args)}")
        return ("call", node.func.id, tuple(_check(a, text, names) for a in node.args))
    what = {ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Compare: "comparisons",
            ast.BoolOp: "and/or", ast.Lambda: "lambda", ast.IfExp: "if/else"}.get(type(node))
    shown = ast.unparse(node)
    raise ConfigError(f"{where}: {what or type(node).__name__} is not allowed ({shown!r}); use numbers, names, "
                      f"+ - * / ** and {', '.join(FUNCTIONS)}")


def _eval(t, values, fns):
    kind = t[0]
    if kind == "num":
        return t[1]
    if kind == "name":
        return values[t[1]]
    if kind == "neg":
        return -_eval(t[1], values, fns)
    if kind == "call":
        return fns[t[1]](*(_eval(a, values, fns) for a in t[2]))
    a, b = _eval(t[1], values, fns), _eval(t[2], values, fns)
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if kind == "/":
        return a / b
    return a ** b


# ---- conditions: comparisons of columns, for holdouts and exclusion rules -----------------------------------

_CMP = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}


def parse_condition(text: str, what: str = "condition") -> tuple[Any, frozenset[str]]:
    """Parse a condition on a table's columns: comparisons (``> >= < <= == !=``) of a column with a number or a
    quoted label (or another column), joined by ``& | ~`` (or ``and or not``) and parentheses, e.g.
    ``(C > 9e19) & (N >= 1e9)`` or ``regime != "low"``. Returns the checked tree and the columns it names; a
    :class:`ConfigError` starting with ``what`` and the text says what is not allowed.

    >>> tree, columns = parse_condition("D_T <= 0")
    >>> sorted(columns)
    ['D_T']
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{what} must be a non-empty condition such as 'D_T <= 0', got {text!r}")
    text = text.strip()
    node = parse_expression(text, what)
    names: set[str] = set()
    tree = _check_bool(node, text, names, what)
    return tree, frozenset(names)


def eval_condition(tree: Any, table, what: str = "condition") -> np.ndarray:
    """The rows of ``table`` (a DataFrame) where the condition from :func:`parse_condition` holds; a column
    compared with a number must be numeric (a :class:`DataError` names it)."""
    return _eval_condition(tree, table, what)


def _bad(text, node, why: str, what: str = "condition"):
    raise ConfigError(f"{what} {text!r}: {why} ({ast.unparse(node)!r}); use comparisons of columns with "
                      "numbers or quoted labels (> >= < <= == !=), joined by & | ~ and parentheses")


def _check_bool(node, text, names, what):
    if isinstance(node, ast.BoolOp):
        op = "&" if isinstance(node.op, ast.And) else "|"
        parts = [_check_bool(v, text, names, what) for v in node.values]
        out = parts[0]
        for p in parts[1:]:
            out = (op, out, p)
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        op = "&" if isinstance(node.op, ast.BitAnd) else "|"
        return (op, _check_bool(node.left, text, names, what), _check_bool(node.right, text, names, what))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
        return ("~", _check_bool(node.operand, text, names, what))
    if isinstance(node, ast.Compare):
        items = [_check_value(v, text, names, what) for v in [node.left, *node.comparators]]
        if not any(i[0] == "col" for i in items):
            _bad(text, node, "a comparison must involve a column", what)
        parts = []
        for op, a, b in zip(node.ops, items[:-1], items[1:], strict=True):
            if type(op) not in _CMP:
                _bad(text, node, f"operator {type(op).__name__} is not allowed", what)
            if "str" in (a[0], b[0]) and type(op) not in (ast.Eq, ast.NotEq):
                _bad(text, node, "labels can only be compared with == or !=", what)
            parts.append(("cmp", _CMP[type(op)], a, b))
        out = parts[0]
        for p in parts[1:]:
            out = ("&", out, p)
        return out
    _bad(text, node, f"{type(node).__name__} is not a condition", what)


def _check_value(node, text, names, what):
    if isinstance(node, ast.Name):
        names.add(node.id)
        return ("col", node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ("str", node.value)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        try:
            finite = bool(np.isfinite(float(node.value)))
        except OverflowError:
            finite = False
        if not finite:
            shown = str(node.value) if len(str(node.value)) <= 30 else f"of {len(str(node.value))} digits"
            raise ConfigError(f"{what} {text[:80]!r}: the number {shown} is not a finite number")
        return ("num", float(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _check_value(node.operand, text, names, what)
        if inner[0] != "num":
            _bad(text, node, "a sign applies to numbers only", what)
        return ("num", -inner[1] if isinstance(node.op, ast.USub) else inner[1])
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        _bad(text, node, "& and | bind tighter than comparisons; put each comparison in parentheses, "
                         "e.g. (N < 2) | (C >= 5e20), or use and/or", what)
    _bad(text, node, f"{type(node).__name__} is not a column, a number or a quoted label", what)


def _eval_condition(t, table, what):
    kind = t[0]
    if kind == "~":
        return ~np.asarray(_eval_condition(t[1], table, what), dtype=bool)
    if kind in ("&", "|"):
        a = np.asarray(_eval_condition(t[1], table, what), dtype=bool)
        b = np.asarray(_eval_condition(t[2], table, what), dtype=bool)
        return a & b if kind == "&" else a | b
    _, op, a, b = t

    def val(v):
        if v[0] == "col":
            s = table[v[1]]
            other = b if v is a else a
            if other[0] == "str":
                return s.astype(str).to_numpy()
            import pandas as pd

            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            if np.isnan(x).any() and not s.isna().any():
                raise DataError(f"{what}: column {v[1]!r} is not numeric; compare it with a quoted label")
            return x
        return v[1]

    x, y = val(a), val(b)
    with np.errstate(invalid="ignore"):
        return {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
                "==": np.equal, "!=": np.not_equal}[op](x, y)
