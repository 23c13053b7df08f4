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
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_scaling.errors import ConfigError

__all__ = ["Formula", "FUNCTIONS"]

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
        try:
            node = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ConfigError(f"formula {text!r} is not valid: {exc.msg} at column {exc.offset}") from None
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


def _check(node: ast.AST, text: str, names: set[str]):
    """The whitelisted tree as nested tuples: ('num', v) | ('name', n) | ('neg', x) | (op, a, b) |
    ('call', f, args)."""
    where = f"formula {text!r}"
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ConfigError(f"{where}: only numbers are allowed as constants, got {node.value!r}")
        return ("num", float(node.value))
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
