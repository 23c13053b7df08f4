"""Bundled data sets (all SYNTHETIC unless their card says otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

from bayes_scaling.data.tables import TransferData

__all__ = ["load_example", "example_metadata", "load_corpora", "corpora_metadata", "CORPORA_CSV", "EXAMPLE_CSV", "SCRATCH_LOSSES_CSV", "FINETUNE_LOSSES_CSV",
           "load_scratch_losses", "load_finetune_losses", "losses_metadata",
           "MEASURED_SCRATCH_CSV", "MEASURED_FINETUNE_CSV", "load_measured_scratch", "load_measured_finetune",
           "measured_metadata"]

HERE = Path(__file__).parent
EXAMPLE_CSV = HERE / "hernandez_synthetic.csv"
SCRATCH_LOSSES_CSV = HERE / "hernandez_losses_scratch.csv"
FINETUNE_LOSSES_CSV = HERE / "hernandez_losses_finetune.csv"
MEASURED_SCRATCH_CSV = HERE / "measured_transfer_scratch.csv"
CORPORA_CSV = HERE / "corpora_synthetic.csv"
MEASURED_FINETUNE_CSV = HERE / "measured_transfer_finetune.csv"


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
    the input of :func:`bayes_scaling.models.losslaws.fit_scratch`. Generating parameters: :func:`losses_metadata`.

    >>> load_scratch_losses()[["N", "D", "loss"]].shape
    (48, 3)
    """
    import pandas as pd

    return pd.read_csv(SCRATCH_LOSSES_CSV)


def load_finetune_losses():
    """SYNTHETIC raw losses of fine-tuned runs (``pretraining, N, D_F, loss``; truth: Table 1, with two
    ossified runs), the input of :func:`bayes_scaling.analysis.effective.effective_data`. Columns ``true_D_T`` and
    ``true_D_E`` hold the truth (for checks).

    >>> sorted(load_finetune_losses()["pretraining"].unique())
    ['text', 'text+code']
    """
    import pandas as pd

    return pd.read_csv(FINETUNE_LOSSES_CSV)


def losses_metadata() -> dict:
    """Generating parameters of the bundled raw losses (seed, loss law, transfer truth, noise, design)."""
    return json.loads((HERE / "hernandez_losses.json").read_text())


def load_measured_scratch():
    """MEASURED (real training runs, not simulated) from-scratch runs of tiny character-level transformers on
    Python source: ``N`` (non-embedding parameters), ``D`` (characters), ``loss`` (held-out nats/character,
    early-stopped), unit characters; made by ``bayes-scaling experiment run --config
    models/experiments/full.toml``. Data card: ``measured_transfer.md``; details: :func:`measured_metadata`.

    >>> sorted(load_measured_scratch()["N"].unique().tolist())[:2]
    [888, 3312]
    """
    import pandas as pd

    return pd.read_csv(MEASURED_SCRATCH_CSV)


def load_measured_finetune():
    """MEASURED fine-tuned runs (``pretraining`` text / text+code, ``N``, ``D_F`` characters of Python, ``loss``
    held-out nats/character, early-stopped; ``loss_step0`` = before fine-tuning): the companion of
    :func:`load_measured_scratch`, input of :func:`bayes_scaling.analysis.effective.effective_data`.

    >>> sorted(load_measured_finetune()["pretraining"].unique())
    ['text', 'text+code']
    """
    import pandas as pd

    return pd.read_csv(MEASURED_FINETUNE_CSV)


def measured_metadata() -> dict:
    """The measured data set's card as data: configuration, corpora (provenance, licence, size, sha256),
    machine, compute and wall time per kind of run, pre-training runs."""
    return json.loads((HERE / "measured_transfer.json").read_text())


def load_corpora():
    """SYNTHETIC from-scratch runs of three corpora (``corpus``, ``N``, ``D``, ``loss``): the Chinchilla law with
    ``E``, ``A``, ``B`` per corpus and shared exponents (truth and seed in :func:`corpora_metadata`); the data of
    the README's law-spec example (``models/laws/chinchilla_by_corpus.toml``).

    >>> runs = load_corpora()
    >>> sorted(runs["corpus"].unique()), len(runs)
    (['books', 'code', 'web'], 108)
    """
    import pandas as pd

    return pd.read_csv(CORPORA_CSV)


def corpora_metadata() -> dict:
    """Generating law, truth, noise, seed and design of :func:`load_corpora`."""
    return json.loads((HERE / "corpora_synthetic.json").read_text())
