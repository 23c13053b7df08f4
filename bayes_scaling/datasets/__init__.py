"""Bundled data sets (all SYNTHETIC unless their card says otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

from ..data import TransferData

__all__ = ["load_example", "example_metadata", "EXAMPLE_CSV", "SCRATCH_LOSSES_CSV", "FINETUNE_LOSSES_CSV",
           "load_scratch_losses", "load_finetune_losses", "losses_metadata"]

HERE = Path(__file__).parent
EXAMPLE_CSV = HERE / "hernandez_synthetic.csv"
SCRATCH_LOSSES_CSV = HERE / "hernandez_losses_scratch.csv"
FINETUNE_LOSSES_CSV = HERE / "hernandez_losses_finetune.csv"


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


def load_scratch_losses():
    """SYNTHETIC raw losses of from-scratch runs (``N, D, loss``; Kaplan law, WebText2 values, seeded):
    the input of :func:`bayes_scaling.losslaws.fit_scratch`. Generating parameters: :func:`losses_metadata`.

    >>> load_scratch_losses()[["N", "D", "loss"]].shape
    (48, 3)
    """
    import pandas as pd

    return pd.read_csv(SCRATCH_LOSSES_CSV)


def load_finetune_losses():
    """SYNTHETIC raw losses of fine-tuned runs (``pretraining, N, D_F, loss``; truth: Table 1, with two
    ossified runs), the input of :func:`bayes_scaling.effective.effective_data`. Columns ``true_D_T`` and
    ``true_D_E`` hold the truth (for checks).

    >>> sorted(load_finetune_losses()["pretraining"].unique())
    ['text', 'text+code']
    """
    import pandas as pd

    return pd.read_csv(FINETUNE_LOSSES_CSV)


def losses_metadata() -> dict:
    """Generating parameters of the bundled raw losses (seed, loss law, transfer truth, noise, design)."""
    return json.loads((HERE / "hernandez_losses.json").read_text())
