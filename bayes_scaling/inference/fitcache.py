"""The start-up cache of a law-spec fit: what :func:`bayes_scaling.fit` prepares before NUTS, kept on disk.

Before the first draw, a fit builds the PyMC model (importing PyMC), derives and links its log density, seeks
the Laplace whitening's mode and Hessian (:mod:`bayes_scaling.inference.whiten`) and chooses the pooled
parameters' form: about 1.5 s of a 3 s fit of the bundled data in a fresh process. All of it is a function of
the spec, the data and the settings, so it is kept in a content-addressed file (:func:`fit_key`; beside the
graph cache, :func:`~bayes_scaling.inference.compiled.graph_cache_dir`): a fresh process that fits the same
data again reads the sampler's snapshot (:meth:`~bayes_scaling.inference.compiled.CompiledSampler.snapshot`:
the rewritten graphs, the data and the change of variables) and the choice, links the graphs to the Numba
functions cached on disk, and samples: no PyMC, no graph building, no mode search. The sampler is the one the
first process used, value for value, so the draws are the same for the same seed (tested).

Key: the spec, every ``pm.Data`` value (bytes), the groups, the priors, the parameterizations tried, the
pointwise log-likelihood and the ``whiten`` setting, the source of the package's ``laws``, ``models`` and
``inference`` modules, the versions of the libraries and PyTensor's flags that change the rewrites. A file
that is missing, unreadable or of another version is a miss (the fit runs as without it and writes a new
one). The folder: :func:`cache_dir` (``$BAYES_SCALING_FIT_CACHE``; ``off`` switches this cache off, and
``$BAYES_SCALING_GRAPH_CACHE=off`` both; the test suite runs without it, as its tests patch the steps it skips).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["fit_key", "load", "save", "cache_dir", "SUFFIX", "FIT_CACHE_ENV"]

#: the suffix of the cache's files (in the graph cache's folder)
SUFFIX = ".fit"
_VERSION = "bayes_scaling-fitcache-1"
_LIBRARIES = ("pymc", "pytensor", "numba", "numpy", "nutpie")
_SOURCES: list[str] = []


def _source_digest() -> str:
    """SHA-256 of the source of the modules that make the model, the sampler and the whitening (read once)."""
    if not _SOURCES:
        root = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256()
        for folder in ("laws", "models", "inference"):
            for path in sorted((root / folder).glob("*.py")):
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
        _SOURCES.append(digest.hexdigest())
    return _SOURCES[0]


def _pytensor_settings() -> str:
    """PyTensor's settings as given (``$PYTENSOR_FLAGS`` and the configuration files), read without importing
    it: another setting (of the rewrites, the float type) is another key."""
    parts = [f"PYTENSOR_FLAGS={os.environ.get('PYTENSOR_FLAGS', '')}"]
    for name in os.environ.get("PYTENSORRC", "~/.pytensorrc").split(os.pathsep):
        try:
            parts.append(f"{name}: {Path(name).expanduser().read_text()}")
        except OSError:
            parts.append(f"{name}: none")
    return "\n".join(parts)


def fit_key(plan, log_likelihood: bool, whiten: str) -> str:
    """The content address of a law-spec fit's start (module docstring): ``plan`` a
    :class:`~bayes_scaling.models.spec_model.ModelPlan`."""
    from importlib.metadata import version

    parts = [_VERSION, json.dumps(plan.spec.to_dict(), sort_keys=True, default=str),
             json.dumps({"priors": plan.priors, "noise": plan.noise, "parameterization": plan.parameterization,
                         "exponents": plan.exponents, "attempts": plan.attempts,
                         "labels": plan.data.labels, "cells": plan.data.n_cells, "rows": plan.data.n},
                        sort_keys=True, default=str),
             f"log_likelihood {bool(log_likelihood)} whiten {whiten}", _source_digest(), _pytensor_settings()]
    parts += [f"{lib} {version(lib)}" for lib in _LIBRARIES]
    for name, value in sorted(plan.values().items()):
        a = np.asarray(value)
        content = repr(value) if a.dtype == object else hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
        parts.append(f"{name} {a.dtype} {a.shape} {content}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


#: environment variable: the folder of the start-up cache, or "off" (default: the graph cache's folder)
FIT_CACHE_ENV = "BAYES_SCALING_FIT_CACHE"


def cache_dir() -> Path | None:
    """The folder of the start-up cache: ``$BAYES_SCALING_FIT_CACHE`` (``off``: none), else the graph cache's
    (:func:`~bayes_scaling.inference.compiled.graph_cache_dir`, itself off with ``$BAYES_SCALING_GRAPH_CACHE=off``)."""
    from bayes_scaling.inference.compiled import graph_cache_dir

    value = os.environ.get(FIT_CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "false", "no") else Path(value)
    return graph_cache_dir()


def _path(key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"{key}{SUFFIX}"


def load(key: str) -> tuple[Any, dict[str, str], Any] | None:
    """``(sampler, parameterization, whitening)`` of the fit with this key, the sampler made from its snapshot
    with the change of variables set; ``None`` when there is no usable file."""
    from bayes_scaling.inference.compiled import CompiledSampler, deep_recursion, read_cache_file
    from bayes_scaling.inference.whiten import Whitening

    path = _path(key)
    saved = None if path is None else read_cache_file(path, _VERSION)
    if saved is None:
        return None
    try:
        with deep_recursion():
            sampler = CompiledSampler.from_snapshot(saved["sampler"])
    except Exception:  # noqa: BLE001 - a snapshot that does not load, a Numba failure: the fit runs without it
        return None
    choice = Whitening(**saved["choice"])
    return sampler, dict(saved["parameterization"]), choice


def save(key: str, sampler, parameterization: dict[str, str], choice) -> None:
    """Write the fit's start (atomically); nothing where the sampler has no snapshot, an object does not
    pickle or the disk refuses (the cache is an optimisation)."""
    path = _path(key)
    state = sampler.snapshot() if hasattr(sampler, "snapshot") else None
    if path is None or state is None:
        return
    record = {"version": _VERSION, "sampler": state, "parameterization": dict(parameterization),
              "choice": {"method": choice.method, "reason": choice.reason, "adaptation": choice.adaptation,
                         "shift": choice.shift, "factor": choice.factor, "seconds": 0.0,
                         "target_accept": choice.target_accept}}
    from bayes_scaling.inference.compiled import write_cache_file

    write_cache_file(path, record)
