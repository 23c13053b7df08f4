"""Bundled data sets (all SYNTHETIC unless their card says otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

from bayes_scaling.data.tables import TransferData

__all__ = ["load_example", "example_metadata", "load_corpora", "corpora_metadata", "CORPORA_CSV", "EXAMPLE_CSV", "SCRATCH_LOSSES_CSV", "FINETUNE_LOSSES_CSV",
           "load_scratch_losses", "load_finetune_losses", "losses_metadata",
           "MEASURED_SCRATCH_CSV", "MEASURED_FINETUNE_CSV", "load_measured_scratch", "load_measured_finetune",
           "measured_metadata", "load_muennighoff", "load_muennighoff_paper_fit", "load_lin", "load_mikami", "published_metadata", "list",
           "available"]

HERE = Path(__file__).parent
#: the CSV of :func:`load_example` (synthetic fine-tuned runs with ``D_T``)
EXAMPLE_CSV = HERE / "hernandez_synthetic.csv"
#: the CSV of :func:`load_scratch_losses` (synthetic from-scratch losses)
SCRATCH_LOSSES_CSV = HERE / "hernandez_losses_scratch.csv"
#: the CSV of :func:`load_finetune_losses` (synthetic fine-tuned losses)
FINETUNE_LOSSES_CSV = HERE / "hernandez_losses_finetune.csv"
#: the CSV of :func:`load_measured_scratch` (measured from-scratch losses)
MEASURED_SCRATCH_CSV = HERE / "measured_transfer_scratch.csv"
#: the CSV of :func:`load_corpora` (synthetic runs on three corpora)
CORPORA_CSV = HERE / "corpora_synthetic.csv"
#: the CSV of :func:`load_measured_finetune` (measured fine-tuned losses)
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
    the input of :func:`bayes_scaling.fit_scratch`. Generating parameters: :func:`losses_metadata`.

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


# ---- real published data (licence text and cards beside the CSVs) ----------------------------------------------

_PUBLISHED = {"muennighoff": "muennighoff2023_datablations", "muennighoff_paper_fit": "muennighoff2023_paper_fit",
              "lin": "lin2024_finetuning", "mikami": "mikami2021_synthetic_to_real"}


def published_metadata(name: str) -> dict:
    """The data card (as data) of a bundled published data set: ``"muennighoff"``, ``"muennighoff_paper_fit"``,
    ``"lin"`` or ``"mikami"``
    (source, commit, licence and its files, sha256 of the source files, the selection, columns)."""
    if name not in _PUBLISHED:
        raise KeyError(f"no published data set {name!r}; known: {', '.join(_PUBLISHED)}")
    return json.loads((HERE / f"{_PUBLISHED[name]}.json").read_text())


def load_muennighoff(*, corpus: str | None = None):
    """REAL final losses of Muennighoff et al. (2023)'s runs (``source, corpus, name, N, D, U_D, epochs, loss``):
    the 48 repetition runs and the 229 runs of the C4 contour grid; the input of the ``data_constrained`` law.
    Card: ``muennighoff2023_datablations.md`` (Apache-2.0 / MIT).

    >>> runs = load_muennighoff()
    >>> len(runs), sorted(runs["source"].unique())
    (277, ['contour', 'repetition_runs'])
    """
    import pandas as pd

    out = pd.read_csv(HERE / "muennighoff2023_datablations.csv")
    return out if corpus is None else out[out["corpus"] == corpus].reset_index(drop=True)


def load_muennighoff_paper_fit(*, used: bool | None = None):
    """REAL C4 validation losses of the runs from which Muennighoff et al. (2023) fitted R_D* and R_N*, as in
    their notebook (``name, N, D, U_D, epochs, loss, used, excluded``): 251 runs, ``used = 1`` for the 182 of
    their fit, ``excluded`` saying why for the rest. ``used=True``: those 182 only. Card:
    ``muennighoff2023_paper_fit.md`` (Apache-2.0).

    >>> runs = load_muennighoff_paper_fit(used=True)
    >>> len(runs)
    182
    """
    import pandas as pd

    out = pd.read_csv(HERE / "muennighoff2023_paper_fit.csv", keep_default_na=False)
    if used is not None:
        out = out[out["used"] == int(bool(used))].reset_index(drop=True)
    return out


def load_lin(target: str | None = None):
    """REAL fine-tuning losses of Lin et al. (2024): ``target, model, family, size, D, loss`` (30 models, three
    targets, D = 0 zero-shot, 200 ... 1,638,400 examples); the input of the ``rectified_finetuning`` law. Card:
    ``lin2024_finetuning.md`` (Apache-2.0).

    >>> load_lin("flan")["model"].nunique()
    30
    """
    import pandas as pd

    out = pd.read_csv(HERE / "lin2024_finetuning.csv")
    if target is not None:
        if target not in set(out["target"]):
            raise KeyError(f"no target {target!r}; known: {', '.join(sorted(set(out['target'])))}")
        out = out[out["target"] == target].reset_index(drop=True)
    return out


def load_mikami():
    """REAL synthetic-to-real transfer errors of Mikami et al. (2021): ``config, ptask, fdata, ftask, model,
    realism, x, error`` (29 configurations; x = 0: from scratch, outside the law); the input of the
    ``synthetic_to_real`` law. Card: ``mikami2021_synthetic_to_real.md`` (MIT).

    >>> load_mikami()["config"].nunique()
    29
    """
    import pandas as pd

    return pd.read_csv(HERE / "mikami2021_synthetic_to_real.csv")


def available():
    """Every bundled data set: ``name, kind`` (real or synthetic), ``loader, rows, source, licence, card``.
    Also reachable as ``bs.datasets.list()``.

    >>> sorted(set(available()["kind"]))
    ['real', 'synthetic']
    """
    import pandas as pd

    rows = [
        {"name": "hernandez_synthetic", "kind": "synthetic", "loader": "load_example",
         "rows": _count(EXAMPLE_CSV), "source": "simulated from Hernandez et al. 2021 Table 1 (seeded)",
         "licence": "this package's", "card": "hernandez_synthetic.json"},
        {"name": "hernandez_losses", "kind": "synthetic", "loader": "load_scratch_losses / load_finetune_losses",
         "rows": _count(SCRATCH_LOSSES_CSV) + _count(FINETUNE_LOSSES_CSV),
         "source": "simulated raw losses (Kaplan law, Hernandez Table 1 transfer)", "licence": "this package's",
         "card": "hernandez_losses.json"},
        {"name": "corpora_synthetic", "kind": "synthetic", "loader": "load_corpora", "rows": _count(CORPORA_CSV),
         "source": "simulated Chinchilla law, three corpora", "licence": "this package's",
         "card": "corpora_synthetic.json"},
        {"name": "measured_transfer", "kind": "real", "loader": "load_measured_scratch / load_measured_finetune",
         "rows": _count(MEASURED_SCRATCH_CSV) + _count(MEASURED_FINETUNE_CSV),
         "source": "trained by this package (tiny transformers on Python source)",
         "licence": "this package's (corpora PSF-2.0)", "card": "measured_transfer.md"},
    ]
    loaders = {"muennighoff": "load_muennighoff", "muennighoff_paper_fit": "load_muennighoff_paper_fit",
               "lin": "load_lin", "mikami": "load_mikami"}
    for key, stem in _PUBLISHED.items():
        meta = published_metadata(key)
        rows.append({"name": stem, "kind": meta["kind"], "loader": loaders[key], "rows": _count(HERE / f"{stem}.csv"),
                     "source": f"{meta['paper']}; {meta['source']} @ {meta['commit']}", "licence": meta["licence"],
                     "card": f"{stem}.md"})
    return pd.DataFrame(rows)


def __getattr__(name: str):
    # ``datasets.list()``: an alias of :func:`available`, served here so that the module's own code keeps the
    # builtin ``list``
    if name == "list":
        return available
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _count(path: Path) -> int:
    with open(path) as fh:
        return sum(1 for _ in fh) - 1
