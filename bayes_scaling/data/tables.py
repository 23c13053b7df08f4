"""Input tables: validation with errors that name the column and the rows, and explicit exclusions.

Row numbers in messages count data rows from 0 (a CSV file's line number is row + 2).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.errors import DataError, ExclusionWarning, IdentifiabilityWarning, format_rows

__all__ = ["TransferData", "read_table", "check_numeric", "source_name"]

UNITS = ("tokens", "characters", "bytes", "examples")


#: columns that hold names, read as text: ``NA``, ``None``, ``null`` there are names, not missing values
#: Label of a new pre-training distribution drawn from the population (the hierarchy), not from the data
#: (:func:`bayes_scaling.analysis.predictions.predict`); reserved: no input table may use it.
NEW = "new (population)"
LABEL_COLUMNS = ("pretraining", "unit", "exclusion_reason", "regime", "flags", "out_of_range", "source")
#: what counts as missing in the other (numeric) columns (pandas' defaults)
_NA_VALUES = sorted(pd._libs.parsers.STR_NA_VALUES)


def _text_columns(path: Path, header: list[str]) -> set[str]:
    """The columns read as text: ``LABEL_COLUMNS``, and those with a value that is neither empty, nor a
    number, nor a missing-value marker (their markers, e.g. a group ``NA``, are names)."""
    text = {c for c in header if c.strip() in LABEL_COLUMNS}
    raw = pd.read_csv(path, keep_default_na=False, na_values=[], dtype=str)
    markers = set(_NA_VALUES) | {""}
    for c in header:
        if c in text or c not in raw.columns:
            continue
        values = raw[c].astype(str).str.strip()
        others = values[~values.isin(markers)]
        if others.empty or not values.isin(markers - {""}).any():
            continue   # numbers (and markers) only, or no marker at all: pandas' own reading
        if pd.to_numeric(others, errors="coerce").isna().any():
            text.add(c)
    return text


def _csv_header(path: Path, what: str) -> list[str]:
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{what}: cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise DataError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None


def _check_column_names(columns, what: str) -> None:
    names = [str(c).strip() for c in columns]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise DataError(f"{what}: column name(s) {', '.join(map(repr, repeated))} appear more than once; "
                        "expected each column once")


#: what the package takes as a table, for the message refusing anything else
TABLE_TYPES = "a pandas DataFrame, a dict of columns or the path of a CSV file"


def source_name(source, default: str) -> str:
    """How messages name a table: its path when it is a file, else ``default`` (e.g. "from-scratch runs"),
    never the repr of a DataFrame or a dict of arrays."""
    return str(source) if isinstance(source, str | PathLike) else default


def as_frame(source, what: str = "table") -> pd.DataFrame:
    """``source`` as a DataFrame when it is one or a dict of columns; an :class:`InputTypeError` (a
    ``TypeError``) naming what is accepted for anything else (a Series, an array, a list, ...). Paths are for
    :func:`read_table`."""
    from bayes_scaling.errors import InputTypeError

    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, dict):
        try:
            return pd.DataFrame(source)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{what}: a dict of columns needs columns of one length ({exc})") from None
    if "\n" in what or len(what) > 200 or what == str(source):  # a caller's str(source) of what it was given
        what = "data"
    raise InputTypeError(f"{what}: expected {TABLE_TYPES}, got {type(source).__module__}."
                         f"{type(source).__qualname__}".replace("builtins.", ""))


def read_table(source: str | PathLike | pd.DataFrame | dict, what: str = "table") -> pd.DataFrame:
    """A DataFrame from a CSV path, a DataFrame (copied) or a dict of columns, indexed 0..n-1; anything else
    is an :class:`~bayes_scaling.errors.InputTypeError` (:func:`as_frame`).

    A column name given twice is an error. In CSV files, text columns keep every value but an empty cell as it
    is: the label columns (``LABEL_COLUMNS``) and any column with a value that is neither a number nor one of
    pandas' missing-value markers (a group column of a law spec such as ``corpus``), so that a group named
    ``NA`` or ``None`` keeps its name; only truly empty cells are missing there. In numeric columns pandas'
    markers (``NA``, ``nan``, ``None``, ...) are missing values."""
    if not isinstance(source, str | PathLike):
        df = as_frame(source, what)
        _check_column_names(df.columns, what)
        df = df.copy()
    else:
        path = Path(source)
        if path.is_dir():
            raise DataError(("" if what == str(path) else f"{what}: ") + f"{path} is a folder; expected a CSV file")
        if not path.is_file():
            raise DataError(f"{what}: file not found: {path}")
        header = _csv_header(path, what)
        _check_column_names(header, what)
        try:
            text = _text_columns(path, header)
            na = {c: ([""] if c in text else _NA_VALUES) for c in header}
            df = pd.read_csv(path, keep_default_na=False, na_values=na, dtype={c: str for c in text})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{what}: cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
        df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise DataError(f"{what}: the table is empty (expected at least one row)")
    return df.reset_index(drop=True)


def require_columns(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{what}: missing column(s) {', '.join(repr(c) for c in missing)}; "
                        f"expected {', '.join(columns)}; found {', '.join(map(str, df.columns)) or 'none'}")


def _not_real_numbers(raw: pd.Series) -> np.ndarray:
    """Row positions of booleans, complex numbers, dates and durations (which ``pd.to_numeric`` would turn into
    1/0, drop the imaginary part of, or count in nanoseconds)."""
    import datetime

    dt = raw.dtype
    api = pd.api.types
    if api.is_bool_dtype(dt) or api.is_complex_dtype(dt) or api.is_datetime64_any_dtype(dt) \
            or api.is_timedelta64_dtype(dt) or isinstance(dt, pd.PeriodDtype):
        return np.flatnonzero(raw.notna().to_numpy())
    if not api.is_object_dtype(dt):
        return np.array([], dtype=int)
    odd = (bool, np.bool_, complex, np.complexfloating, datetime.date, datetime.time, datetime.timedelta,
           np.datetime64, np.timedelta64, pd.Period)
    return np.array([i for i, v in enumerate(raw.to_numpy()) if isinstance(v, odd)], dtype=int)


def check_numeric(df: pd.DataFrame, column: str, what: str, *, positive: bool = True) -> np.ndarray:
    """The column as finite floats (``> 0`` when ``positive``), or a DataError naming the bad rows."""
    raw = df[column]
    odd = _not_real_numbers(raw)
    if len(odd):
        examples = ", ".join(repr(raw.iloc[i]) for i in odd[:3])
        raise DataError(f"{what}: column {column!r} has values that are not real numbers at rows "
                        f"{format_rows(odd)} ({examples}; booleans, complex numbers, dates and times are refused); "
                        "expected numbers")
    values = pd.to_numeric(raw, errors="coerce")
    non_numeric = np.flatnonzero(values.isna().to_numpy() & raw.notna().to_numpy())
    if len(non_numeric):
        examples = ", ".join(repr(raw.iloc[i]) for i in non_numeric[:3])
        raise DataError(f"{what}: column {column!r} has non-numeric values at rows {format_rows(non_numeric)} "
                        f"({examples}); expected numbers")
    arr = values.to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        raise DataError(f"{what}: column {column!r} has missing or infinite values at rows {format_rows(bad)}; "
                        "expected finite numbers")
    if positive:
        bad = np.flatnonzero(arr <= 0)
        if len(bad):
            raise DataError(f"{what}: column {column!r} must be > 0; rows {format_rows(bad)} have "
                            f"{', '.join(f'{arr[i]:g}' for i in bad[:3])}")
    return arr


def check_labels(df: pd.DataFrame, column: str, what: str) -> np.ndarray:
    raw = df[column]
    labels = raw.astype("string").str.strip()
    bad = np.flatnonzero(labels.isna().to_numpy() | (labels == "").fillna(True).to_numpy())
    if len(bad):
        raise DataError(f"{what}: column {column!r} is empty at rows {format_rows(bad)}; "
                        "expected the name of the pre-training distribution")
    return labels.to_numpy(dtype=object)


@dataclass(frozen=True)
class TransferData:
    """Fine-tuned runs: one row per run with ``pretraining``, ``N``, ``D_F`` and ``D_T`` (or ``D_E``).

    ``D_T = D_E - D_F`` is the effective data transferred. Rows with ``D_T <= 0`` (ossification) cannot enter
    the log-scale likelihood: they are kept in :attr:`table` with ``excluded=True`` and a reason, and reported.
    Extra columns are kept. ``unit`` records the unit of data (tokens, characters, ...).

    >>> import bayes_scaling as bs
    >>> data = bs.TransferData.from_frame(
    ...     {"pretraining": ["text", "text"], "N": [1e6, 1e7], "D_F": [1e5, 1e5], "D_T": [2e6, 5e6]})
    >>> data.n_used, data.pretraining
    (2, ('text',))
    """

    table: pd.DataFrame
    unit: str = "tokens"
    source: str = ""
    pretraining: tuple[str, ...] = field(init=False)

    REQUIRED = ("pretraining", "N", "D_F")

    def __post_init__(self) -> None:
        used = self.table.loc[~self.table["excluded"], "pretraining"]
        object.__setattr__(self, "pretraining", tuple(pd.unique(used)))

    # ---- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_csv(cls, path: str | PathLike, unit: str | None = None, *, warn: bool = True) -> TransferData:
        """Read and validate a CSV file (see the class docstring for the columns)."""
        what = source_name(path, "data")
        return cls.from_frame(read_table(path, what=what), unit=unit, source=what, warn=warn)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame | dict, unit: str | None = None, *, source: str = "DataFrame",
                   warn: bool = True) -> TransferData:
        """Validate a DataFrame (or a dict of columns); raises :class:`DataError` on bad input."""
        what = source or "data"
        df = read_table(as_frame(frame, what if isinstance(frame, pd.DataFrame | dict) else "data"), what=what)
        require_columns(df, list(cls.REQUIRED), what)
        if "D_T" not in df.columns and "D_E" not in df.columns:
            raise DataError(f"{what}: needs a column 'D_T' (effective data transferred) or 'D_E' "
                            f"(effective data; then D_T = D_E - D_F); found {', '.join(map(str, df.columns))}")
        unit = _resolve_unit(df, unit, what)
        df["pretraining"] = check_labels(df, "pretraining", what)
        taken = np.flatnonzero(df["pretraining"].to_numpy() == NEW)
        if len(taken):
            raise DataError(f"{what}: column 'pretraining' is {NEW!r} at rows {format_rows(taken)}; that label is "
                            "reserved for a new distribution drawn from the population (predictions); rename "
                            "the distribution")
        df["N"] = check_numeric(df, "N", what)
        df["D_F"] = check_numeric(df, "D_F", what)
        if "D_E" in df.columns:
            df["D_E"] = check_numeric(df, "D_E", what, positive=False)
        if "D_T" in df.columns:
            df["D_T"] = check_numeric(df, "D_T", what, positive=False)
            if "D_E" in df.columns:
                implied = df["D_E"].to_numpy() - df["D_F"].to_numpy()
                bad = np.flatnonzero(~np.isclose(implied, df["D_T"].to_numpy(), rtol=1e-6, atol=0))
                if len(bad):
                    raise DataError(f"{what}: columns 'D_T' and 'D_E' disagree at rows {format_rows(bad)}; "
                                    "expected D_T = D_E - D_F (give one of them, or make them consistent)")
        else:
            df["D_T"] = df["D_E"].to_numpy() - df["D_F"].to_numpy()
        df = _mark_exclusions(df, what)
        data = cls(table=df, unit=unit, source=source)
        if data.n_used == 0:
            raise DataError(f"{what}: no row has D_T > 0, so there is nothing to fit "
                            f"({len(df)} rows, all excluded: {data.exclusion_report()})")
        if warn and data.n_excluded:
            warnings.warn(data.exclusion_report(), ExclusionWarning, stacklevel=2)
        if warn:
            for problem in data.identifiability():
                warnings.warn(f"{what}: {problem}", IdentifiabilityWarning, stacklevel=2)
        return data

    def identifiability(self) -> list[str]:
        """What the used rows cannot tell (the posterior of those parameters is the prior's, or a ridge):
        one N for all runs (beta), one D_F within a distribution (its alpha), a single run in a
        distribution, a constant D_T (only the noise floor)."""
        u = self.used
        out = []
        if u["N"].nunique() == 1:
            out.append(f"all {len(u)} runs used have the same N ({u['N'].iloc[0]:g}): beta cannot be learned "
                       "from these data (its posterior is its prior, and k trades off against it)")
        single = [str(p) for p, g in u.groupby("pretraining", sort=False) if len(g) == 1]
        if single:
            out.append(f"one run only for pre-training distribution(s) {', '.join(single)}: their k and alpha "
                       "cannot both be learned (they come from the hierarchy and the prior)")
        flat = [str(p) for p, g in u.groupby("pretraining", sort=False) if len(g) > 1 and g["D_F"].nunique() == 1]
        if flat:
            out.append(f"one D_F value for all runs of {', '.join(flat)}: their alpha cannot be learned from "
                       "these data")
        if len(u) > 1 and u["D_T"].nunique() == 1:
            out.append(f"D_T is the same ({u['D_T'].iloc[0]:g}) in all {len(u)} runs used: the data say "
                       "nothing about how D_T changes with N or D_F")
        return out

    # ---- views ------------------------------------------------------------------------------------------
    @property
    def used(self) -> pd.DataFrame:
        """The rows that enter the likelihood (``D_T > 0`` and not otherwise excluded)."""
        return self.table.loc[~self.table["excluded"]]

    @property
    def excluded(self) -> pd.DataFrame:
        return self.table.loc[self.table["excluded"]]

    @property
    def n_used(self) -> int:
        return int((~self.table["excluded"]).sum())

    @property
    def n_excluded(self) -> int:
        return int(self.table["excluded"].sum())

    def exclusion_report(self) -> str:
        """How many rows were excluded, which, and why, per pre-training distribution."""
        ex = self.excluded
        if len(ex) == 0:
            return "no rows excluded"
        parts = []
        for (name, reason), grp in ex.groupby(["pretraining", "exclusion_reason"], sort=False):
            parts.append(f"{name}: {len(grp)} row(s) [{format_rows(grp.index.tolist())}] ({reason})")
        return f"excluded {len(ex)} of {len(self.table)} rows from the fit: " + "; ".join(parts)

    def arrays(self) -> dict[str, np.ndarray]:
        """Model inputs of the used rows: ``log_D_F``, ``log_N``, ``log_D_T`` and ``p_idx``."""
        u = self.used
        index = {p: i for i, p in enumerate(self.pretraining)}
        return {
            "log_D_F": np.log(u["D_F"].to_numpy(float)),
            "log_N": np.log(u["N"].to_numpy(float)),
            "log_D_T": np.log(u["D_T"].to_numpy(float)),
            "p_idx": np.array([index[p] for p in u["pretraining"]], dtype=np.int64),
        }

    def with_exclusions(self, mask: np.ndarray, reason: str) -> TransferData:
        """A copy with the rows where ``mask`` is True also excluded, for ``reason``."""
        df = self.table.copy()
        new = np.asarray(mask, bool) & ~df["excluded"].to_numpy()
        df.loc[new, "excluded"] = True
        df.loc[new, "exclusion_reason"] = reason
        return TransferData(table=df, unit=self.unit, source=self.source)

    def __repr__(self) -> str:
        return (f"TransferData({len(self.table)} runs, {self.n_used} used, pretraining={list(self.pretraining)}, "
                f"unit={self.unit!r})")

    # ---- (de)serialisation inside a fit file ------------------------------------------------------------
    def to_dataset(self) -> xr.Dataset:
        df = self.table.copy()
        for c in df.columns:
            if df[c].dtype == object or str(df[c].dtype).startswith("string"):
                df[c] = df[c].astype(str)
        ds = xr.Dataset.from_dataframe(df.rename_axis("run"))
        ds.attrs.update(unit=self.unit, source=self.source)
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> TransferData:
        df = ds.to_dataframe().reset_index(drop=True)
        require_columns(df, ["pretraining", "N", "D_F", "D_T", "excluded", "exclusion_reason"], "stored runs")
        df["excluded"] = df["excluded"].astype(bool)
        df["exclusion_reason"] = df["exclusion_reason"].astype(str).replace({"nan": "", "None": ""})
        return cls(table=df, unit=str(ds.attrs.get("unit", "tokens")), source=str(ds.attrs.get("source", "")))


def _resolve_unit(df: pd.DataFrame, unit: str | None, what: str) -> str:
    if "unit" in df.columns:
        units = pd.unique(df["unit"].astype(str))
        if len(units) != 1:
            raise DataError(f"{what}: column 'unit' mixes {', '.join(map(str, units))}; expected one unit for all rows")
        if unit is not None and unit != units[0]:
            raise DataError(f"{what}: column 'unit' says {units[0]!r} but unit={unit!r} was given")
        unit = str(units[0])
    unit = unit or "tokens"
    if unit not in UNITS:
        raise DataError(f"{what}: unit {unit!r} is not one of {', '.join(UNITS)}")
    return unit


_TRUE = {"true", "1", "1.0", "yes", "y", "t"}
_FALSE = {"false", "0", "0.0", "no", "n", "f", ""}


def check_excluded(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """Validate the columns the package uses for exclusions when the input has them (e.g. a table written by
    ``bayes-scaling effective-data``): ``excluded`` must be true/false (also 1/0, yes/no; empty is false), and
    an ``exclusion_reason`` alone needs ``excluded``. Adds them (nothing excluded) when absent; an excluded row
    without a reason gets "excluded in the input table"."""
    if "exclusion_reason" in df.columns and "excluded" not in df.columns:
        raise DataError(f"{what}: column 'exclusion_reason' without a column 'excluded'; add 'excluded' "
                        "(true/false) or rename the column ('exclusion_reason' is the package's own)")
    if "excluded" not in df.columns:
        df["excluded"] = False
        df["exclusion_reason"] = ""
        return df
    raw = df["excluded"]
    if raw.dtype == bool:
        flags = raw.to_numpy()
    else:
        text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip().str.lower()
        bad = np.flatnonzero(~text.isin(_TRUE | _FALSE).to_numpy())
        if len(bad):
            raise DataError(f"{what}: column 'excluded' must be true or false (or 1/0); rows {format_rows(bad)} "
                            f"have {', '.join(repr(raw.iloc[i]) for i in bad[:3])} (the package uses this "
                            "column for exclusions: rename yours)")
        flags = text.isin(_TRUE).to_numpy()
    df["excluded"] = flags.astype(bool)
    if "exclusion_reason" not in df.columns:
        df["exclusion_reason"] = ""
    reason = df["exclusion_reason"].astype(object).where(df["exclusion_reason"].notna(), "").astype(str)
    df["exclusion_reason"] = np.where(df["excluded"] & (reason.str.strip() == ""), "excluded in the input table",
                                      np.where(df["excluded"], reason, ""))
    return df


def _mark_exclusions(df: pd.DataFrame, what: str = "data") -> pd.DataFrame:
    df = check_excluded(df, what)
    ossified = (df["D_T"].to_numpy() <= 0) & ~df["excluded"].to_numpy()
    df.loc[ossified, "excluded"] = True
    df.loc[ossified, "exclusion_reason"] = "D_T <= 0 (ossification: no positive transfer)"
    return df
