"""``--json`` and ``--quiet`` for every command (the options: :func:`bayes_scaling.cli.cmdoptions.add_common_options`).

``--quiet`` (every command): no progress bars (``bayes_scaling._progress``); they never show when stderr is not
a terminal anyway. ``--json`` (the commands that print a table, :data:`JSON_COMMANDS`): stdout carries one JSON
document and nothing else; the human lines go to stderr. A command hands its tables to :func:`emit`; the
document is ``{"command": ..., "tables": {name: [records]}, "info": {...}}`` with NaN and infinities as
``null``. Nothing is printed to stdout when the command fails (the error line on stderr, exit status 2).
"""

from __future__ import annotations

import json
import math
import sys
from contextlib import contextmanager, redirect_stdout

import numpy as np
import pandas as pd

__all__ = ["JSON_COMMANDS", "active", "emit", "session", "to_jsonable"]

#: commands that print a table, and so take --json
JSON_COMMANDS = frozenset({"fit", "summary", "predict", "forecast", "best", "calibrate", "backtest",
                           "fit-scratch", "fit-joint", "effective-data", "quantiles", "stack"})

_DOC: list[dict] = []


def to_jsonable(value):
    """Numbers, strings, lists and dicts only: NaN/inf -> None, numpy scalars -> Python, tables -> records."""
    if isinstance(value, pd.DataFrame):
        return [to_jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or isinstance(value, int | str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def active() -> bool:
    """True while a ``--json`` command runs (to skip work only the JSON document needs)."""
    return bool(_DOC)


def emit(name: str, table=None, **info) -> None:
    """Hand a table (DataFrame) and/or facts to the JSON document (a no-op without ``--json``)."""
    if not _DOC:
        return
    doc = _DOC[-1]
    if table is not None:
        doc["tables"][name] = to_jsonable(table)
    for k, v in info.items():
        doc["info"][k] = to_jsonable(v)


@contextmanager
def session(args):
    """Run a command under ``--quiet`` and ``--json`` (see the module docstring)."""
    from bayes_scaling._progress import quiet

    as_json = bool(getattr(args, "json", False))
    with quiet(bool(getattr(args, "quiet", False))):
        if not as_json:
            yield
            return
        real = sys.stdout
        _DOC.append({"command": args.command, "tables": {}, "info": {}})
        try:
            with redirect_stdout(sys.stderr):
                yield
            doc = _DOC[-1]
        finally:
            _DOC.pop()
        json.dump(doc, real, allow_nan=False)
        real.write("\n")
        real.flush()
