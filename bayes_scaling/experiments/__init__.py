"""Measured transfer: a small-scale, reproducible replication of Hernandez et al. (2021) on this machine.

Tiny character-level transformers (JAX, optional extra ``experiments``) trained from scratch on Python, pre-trained
on English prose (``text``) or prose + C (``text+code``) and fine-tuned on Python; every run early-stopped on
held-out Python loss and appended to a resumable CSV. Corpora come with every Python installation
(:mod:`.corpora`). Command line: ``bayes-scaling experiment run --config models/experiments/full.toml --out DIR``.

>>> from bayes_scaling.experiments import load_config, plan_runs
>>> len(plan_runs(load_config()))   # the built-in smoke configuration
18
"""

from __future__ import annotations

from bayes_scaling.experiments.corpora import CORPORA, Corpus, load_corpus
from bayes_scaling.experiments.sweep import (
           MIXES,
           SMOKE_CONFIG,
           EarlyStopping,
           RunSpec,
           export_tables,
           load_config,
           plan_runs,
           run_sweep,
)

__all__ = ["CORPORA", "Corpus", "load_corpus", "MIXES", "SMOKE_CONFIG", "EarlyStopping", "RunSpec",
           "export_tables", "load_config", "plan_runs", "run_sweep"]
