"""Fine-tuned runs (``pretraining, N, D_F, loss``): reading them, and the data regimes of Hernandez et al. (2021)
with the reasons a run outside the low-data regime is excluded (kept, marked, reported).

Regimes, from ``D(N)`` (the data a from-scratch model of size N needs to get within 1% of its infinite-data
loss): **low** ``D_F <= 0.1 D(N)`` (where the transfer law holds), **medium** ``0.1 D(N) < D_F <= D(N)``,
**high** ``D_F > D(N)``.
"""

from __future__ import annotations

from os import PathLike

import numpy as np
import pandas as pd

from bayes_scaling.data.tables import (
    _resolve_unit,
    check_labels,
    check_numeric,
    read_table,
    require_columns,
    source_name,
)

__all__ = ["LOW_FRACTION", "REGIME_REASONS", "read_finetune", "regime", "exclude_non_low"]

#: low-data regime: D_F <= LOW_FRACTION * D(N) (Hernandez et al. 2021)
LOW_FRACTION = 0.1
REGIME_REASONS = {
    "medium": "medium-data regime: 0.1 D(N) < D_F <= D(N) (the transfer law holds for D_F <= 0.1 D(N))",
    "high": "high-data regime: D_F > D(N) (the transfer law holds for D_F <= 0.1 D(N))",
}


def read_finetune(source: str | PathLike | pd.DataFrame, what: str | None = None) -> pd.DataFrame:
    """Validate a table of fine-tuned runs: ``pretraining``, ``N``, ``D_F``, ``loss`` (> 0, finite)."""
    what = what or source_name(source, "fine-tuned runs")
    df = read_table(source, what=what)
    require_columns(df, ["pretraining", "N", "D_F", "loss"], what)
    df["pretraining"] = check_labels(df, "pretraining", what)
    for col in ("N", "D_F", "loss"):
        df[col] = check_numeric(df, col, what)
    df["unit"] = _resolve_unit(df, None, what)
    return df


def regime(D_F, D_N, low: float = LOW_FRACTION) -> np.ndarray:
    """``"low"`` (``D_F <= low * D(N)``), ``"medium"`` (``<= D(N)``) or ``"high"``.

    >>> regime([1e5, 5e7, 2e8], 1e8).tolist()
    ['low', 'medium', 'high']
    """
    D_F, D_N = np.broadcast_arrays(np.asarray(D_F, float), np.asarray(D_N, float))
    return np.where(D_F <= low * D_N, "low", np.where(D_F <= D_N, "medium", "high")).astype(object)


def exclude_non_low(table: pd.DataFrame, column: str = "regime") -> pd.DataFrame:
    """A copy of ``table`` (columns ``column``, ``excluded``, ``exclusion_reason``) with its medium- and
    high-data runs excluded for their reason (:data:`REGIME_REASONS`); runs already excluded keep their reason.
    The one low-data filter: :func:`restrict_to_low_data`, :meth:`EffectiveData.transfer_table` and the joint
    model use it."""
    t = table.copy()
    labels = t[column].astype(str).to_numpy()
    for name in ("medium", "high"):
        mask = (labels == name) & ~t["excluded"].to_numpy(bool)
        t.loc[mask, "excluded"] = True
        t.loc[mask, "exclusion_reason"] = REGIME_REASONS[name]
    return t
