"""Exceptions and warnings raised by bayes_scaling (the CLI turns each error into one line, exit status 2)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["BayesScalingError", "DataError", "InputTypeError", "ConfigError", "FitFileError", "OutputError",
           "ConvergenceWarning",
           "ExclusionWarning", "IdentifiabilityWarning"]


class BayesScalingError(ValueError):
    """Base class of the package's user-facing errors."""


class DataError(BayesScalingError):
    """An input table is unusable: names the column, the offending rows and what was expected."""


class InputTypeError(DataError, TypeError):
    """An argument of the wrong type (also a ``TypeError``): a table given as something other than a DataFrame, a
    dict of columns or the path of a CSV file; a fit file or model given as something other than a path or its
    object. The message names what is accepted."""


class ConfigError(BayesScalingError):
    """A model configuration (priors, likelihood, TOML file) is invalid."""


class FitFileError(BayesScalingError):
    """A saved fit cannot be read or lacks what the requested operation needs."""


class OutputError(BayesScalingError):
    """An output path is unusable (a folder, the wrong suffix, an input of the same command, not writable)."""


class ConvergenceWarning(UserWarning):
    """NUTS diagnostics (R-hat, ESS, divergences) are outside their thresholds."""


class ExclusionWarning(UserWarning):
    """Rows were excluded from a fit; the message lists them."""


class IdentifiabilityWarning(UserWarning):
    """The data cannot inform a parameter (e.g. all runs share one N: beta); the message names what."""


def format_rows(rows: Sequence, limit: int = 8) -> str:
    """``'3, 7, 9'`` or ``'3, 7, 9, ... (12 rows in all)'``: row labels for error messages."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown if len(rows) <= limit else f"{shown}, ... ({len(rows)} rows in all)"
