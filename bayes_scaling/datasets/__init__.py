"""Bundled data sets (all SYNTHETIC unless their card says otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

from ..data import TransferData

__all__ = ["load_example", "example_metadata", "EXAMPLE_CSV"]

HERE = Path(__file__).parent
EXAMPLE_CSV = HERE / "hernandez_synthetic.csv"


def load_example(*, warn: bool = False) -> TransferData:
    """The bundled simulated Hernandez-style experiment (Table 1 values as truth, seeded; synthetic).

    Its ossified runs (D_T <= 0) are excluded from fits and listed by ``data.exclusion_report()``.

    >>> data = load_example()
    >>> data.pretraining, data.n_excluded
    (('text', 'text+code'), 4)
    """
    return TransferData.from_csv(EXAMPLE_CSV, warn=warn)


def example_metadata() -> dict:
    """Generating parameters of the bundled example (seed, truth, noise, design)."""
    return json.loads((HERE / "hernandez_synthetic.json").read_text())
