"""The package's one module for third-party internals: nutpie's private API (everything else uses
``nutpie.sample`` and ``nutpie.compile_pymc_model``, public), and two internals of xarray and Dask that a fresh
process otherwise pays for (:func:`no_distributed_import`, :func:`defer_dask_array_check`).

:class:`~bayes_scaling.inference.compiled.CompiledSampler` compiles a model once with PyTensor's Numba back end
(cached on disk) and hands nutpie its own callbacks, which nutpie's public API cannot take:

- :func:`native_model`: ``nutpie.compile_pymc.CompiledPyMCModel`` around two Numba C callbacks (no Python in
  the sampling loop; the data arrive through a pointer table, so new data need no recompilation);
- :func:`pyfunc_model`: ``nutpie.compiled_pyfunc.from_pyfunc`` around Python callbacks.

- :func:`import_nutpie`: ``import nutpie`` with ArviZ deferred (nutpie's ``sample.py`` imports it at module
  level, ~2 s, though it uses it only to convert a trace, which :func:`trace_to_tree` does here instead);
- :func:`trace_to_tree`: nutpie's raw (Arrow) trace as ``posterior`` and ``sample_stats`` datasets, the same
  arrays as nutpie's own conversion (its ``_add_arrow_data``), without ArviZ.

Both check what they rely on (the module, the class, its exact dataclass fields, the tested nutpie versions)
and raise :class:`PrivateAPIError` when anything differs. The sampler then falls back to nutpie's public path
(``compile_pymc_model(model).with_data(...)``: nutpie compiles the model itself, ~10 s, not cached) with a
warning, so another nutpie version is slower, never wrong or a traceback.

The xarray/Dask helpers fall back to the libraries' own behaviour (slower, the same result) where their internals
differ.

Tested with nutpie 0.16.9 to 0.16.11 (``pyproject.toml`` pins ``nutpie>=0.16.9,<0.17``): 0.16.0-0.16.8 lack the
``reparameterized_names`` field (and, before 0.16.9, support for ArviZ 1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from typing import Any

__all__ = ["PrivateAPIError", "TESTED_NUTPIE", "native_model", "pyfunc_model", "nutpie_version", "import_nutpie",
           "raw_trace_supported", "trace_to_tree", "no_distributed_import", "defer_dask_array_check"]

#: modules that nutpie imports at its top level but that the compiled path never uses (ArviZ: only for nutpie's
#: own trace conversion; pyarrow: loaded by pandas anyway when installed, else on first use)
DEFERRED_BY_NUTPIE = ("arviz", "pyarrow")

#: nutpie versions whose private API this module was tested with: [low, high)
TESTED_NUTPIE = ((0, 16, 9), (0, 17, 0))


class PrivateAPIError(RuntimeError):
    """nutpie's private API is not what this module expects (another nutpie version)."""


def nutpie_version() -> tuple[int, ...]:
    from importlib.metadata import version

    parts = []
    for p in version("nutpie").split(".")[:3]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _check_version() -> None:
    v = nutpie_version()
    if not TESTED_NUTPIE[0] <= v < TESTED_NUTPIE[1]:
        raise PrivateAPIError(f"nutpie {'.'.join(map(str, v))} is outside the tested range "
                              f">={'.'.join(map(str, TESTED_NUTPIE[0]))},<{'.'.join(map(str, TESTED_NUTPIE[1]))}")


def _compiled_pymc_model_class():
    try:
        from nutpie.compile_pymc import CompiledPyMCModel
    except ImportError as exc:
        raise PrivateAPIError(f"nutpie.compile_pymc.CompiledPyMCModel: {exc}") from exc
    return CompiledPyMCModel


def native_model(**fields: Any):
    """``nutpie.compile_pymc.CompiledPyMCModel(**fields)``, the fields checked against the class first."""
    _check_version()
    CompiledPyMCModel = _compiled_pymc_model_class()
    if not dataclasses.is_dataclass(CompiledPyMCModel):
        raise PrivateAPIError("nutpie.compile_pymc.CompiledPyMCModel is no longer a dataclass")
    known = {f.name: f for f in dataclasses.fields(CompiledPyMCModel)}
    unknown = sorted(set(fields) - set(known))
    missing = sorted(n for n, f in known.items() if n not in fields and f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)
    if unknown or missing:
        raise PrivateAPIError(f"nutpie.compile_pymc.CompiledPyMCModel fields differ (unknown to it: {unknown}; "
                              f"not given: {missing})")
    return CompiledPyMCModel(**fields)


def pyfunc_model(*args: Any, **kwargs: Any):
    """``nutpie.compiled_pyfunc.from_pyfunc(*args, **kwargs)``."""
    _check_version()
    try:
        from nutpie.compiled_pyfunc import from_pyfunc
    except ImportError as exc:
        raise PrivateAPIError(f"nutpie.compiled_pyfunc.from_pyfunc: {exc}") from exc
    try:
        return from_pyfunc(*args, **kwargs)
    except TypeError as exc:  # another signature
        raise PrivateAPIError(f"nutpie.compiled_pyfunc.from_pyfunc: {exc}") from exc


def import_nutpie():
    """``import nutpie``, with the modules of ``DEFERRED_BY_NUTPIE`` not yet imported put in ``sys.modules``
    lazily (:func:`bayes_scaling._lazy.lazy_module`): nutpie's ``import arviz`` then costs nothing, and ArviZ
    loads, as the real module, the first time anything uses it (nutpie's own trace conversion, the fallback of
    :func:`trace_to_tree`, or ``bayes_scaling.analysis.compare``)."""
    import sys

    if "nutpie" not in sys.modules:
        from bayes_scaling._lazy import lazy_module

        for name in DEFERRED_BY_NUTPIE:
            lazy_module(name)
    import nutpie

    return nutpie


def raw_trace_supported() -> bool:
    """Whether :func:`trace_to_tree` can convert this nutpie's raw trace (``nutpie.sample(...,
    return_raw_trace=True)``); else the sampler lets nutpie convert the trace (with ArviZ)."""
    try:
        _check_version()
        from nutpie.sample import _add_arrow_data, _BackgroundSampler  # noqa: F401
    except (PrivateAPIError, ImportError):
        return False
    return True


#: sample statistics nutpie leaves out of its trace unless the setting (a path in its settings) is on
#: (nutpie.sample._BackgroundSampler._extract)
_SKIPPED_STATS = {
    "store_gradient": ["gradient"],
    "store_unconstrained": ["unconstrained_draw"],
    "adapt_options.mass_matrix_options.store_mass_matrix": ["mass_matrix_inv", "mass_matrix_eigvals",
                                                            "mass_matrix_stds"],
    "store_divergences": ["divergence_start", "divergence_end", "divergence_momentum",
                          "divergence_start_gradient"],
    "store_transformed": ["transformed_position", "transformed_gradient", "transformation_mu"],
}


def trace_to_tree(running, results, coords: dict):
    """The trace of a finished ``nutpie.sample(..., blocking=False, return_raw_trace=True, save_warmup=False)``
    (``running``, and ``results = running.wait()``) as an ``xarray.DataTree`` with ``posterior`` and
    ``sample_stats`` (tuning draws left out), as nutpie's own conversion would give it: the arrays come from
    nutpie's ``_add_arrow_data``; ``coords`` (dim -> values) label the dims. Where anything differs from what
    this expects, nutpie converts the trace itself (with ArviZ; the same draws)."""
    defer_dask_array_check()
    taken = _TakenTrace(results)  # nutpie hands the trace out once: kept for the fallback
    try:
        return _trace_to_tree(running, taken, coords)
    except (AttributeError, KeyError, TypeError, ValueError, ImportError, AssertionError) as exc:
        try:
            running._return_raw_trace = False
            return running._extract(taken)
        except Exception:  # noqa: BLE001 - report the first failure
            raise PrivateAPIError(f"nutpie's raw trace: {type(exc).__name__}: {exc}") from exc


class _TakenTrace:
    """nutpie's raw trace (``PyTrace``), its Arrow batches taken once and kept (nutpie gives them out once)."""

    def __init__(self, results):
        self._results, self._batches = results, None

    def is_arrow(self) -> bool:
        return bool(self._results.is_arrow())

    def is_zarr(self) -> bool:
        return bool(self._results.is_zarr())

    def get_arrow_trace(self):
        if self._batches is None:
            self._batches = self._results.get_arrow_trace()
        return self._batches


def _trace_to_tree(running, results, coords: dict):
    import json

    import numpy as np
    import xarray as xr
    from nutpie import __version__
    from nutpie.sample import _add_arrow_data

    if not results.is_arrow():
        raise ValueError("not an Arrow trace")
    settings = running._settings.as_dict()

    def nested(name):
        value = settings["settings"]
        for part in name.split("."):
            if part not in value:
                return False
            value = value[part]
        return value

    skip = [n for setting, names in _SKIPPED_STATS.items() if not nested(setting) for n in names]
    draw_batches, stat_batches = results.get_arrow_trace()
    n_chains = len(draw_batches)
    if n_chains != len(stat_batches):
        raise ValueError("as many draw batches as stat batches expected")
    n_tune = [int(stat.column("tuning").to_numpy().sum()) for stat in stat_batches]
    n_post = max(draw.num_rows - t for draw, t in zip(draw_batches, n_tune, strict=True))
    posterior, stats, dims = {}, {}, {}
    for chain, (draw, stat, t) in enumerate(zip(draw_batches, stat_batches, n_tune, strict=True)):
        if draw.num_rows != stat.num_rows:
            raise ValueError("draws and stats of different lengths")
        _add_arrow_data(posterior, n_post, draw.slice(t, draw.num_rows - t), chain, n_chains, dims, [])
        _add_arrow_data(stats, n_post, stat.slice(t, stat.num_rows - t), chain, n_chains, dims, skip)

    def dataset(values: dict, attrs: dict):
        variables, used = {}, set()
        for name, array in values.items():
            if name in ("chain", "draw"):  # the chain and draw numbers: the coordinates (ArviZ drops them too)
                continue
            named = [str(d) for d in (dims.get(name) or [])]
            extra = array.ndim - 2
            var_dims = ("chain", "draw", *(named if len(named) == extra else
                                           [f"{name}_dim_{i}" for i in range(extra)]))
            used.update(var_dims[2:])
            variables[name] = (var_dims, array)
        labels = {"chain": np.arange(n_chains), "draw": np.arange(n_post)}
        labels.update({d: coords[d] for d in used if d in coords})
        return xr.Dataset(variables, coords=labels, attrs=attrs)

    attrs = {"inference_library": "nutpie", "inference_library_version": __version__,
             "inference_library_settings": json.dumps(settings)}
    return xr.DataTree.from_dict({"posterior": dataset(posterior, {}), "sample_stats": dataset(stats, attrs)})


# ---- xarray and Dask ----------------------------------------------------------------------------------------

#: the modules xarray's writer imports to ask Dask which scheduler is active (and Dask, whether a distributed
#: client runs)
_DISTRIBUTED = ("dask", "distributed", "dask.distributed")


@contextlib.contextmanager
def no_distributed_import():
    """xarray's writer asks Dask which scheduler is active, and Dask imports ``distributed`` to ask whether a
    client runs (~0.4 s, the larger part of writing a fit in a fresh process). No client can run in a process
    that has not imported ``distributed``, nor any Dask scheduler in one that has not imported ``dask``: there
    the import of what is not loaded yet is answered "not installed" for the write (what both libraries expect
    of a machine without them; they catch the ImportError), and the answer, no client, no scheduler (xarray's
    default lock), is the same; so is the file, byte for byte (``tests/inference/test_startup.py``). What is
    loaded already is left as it is."""
    blocked = [name for name in _DISTRIBUTED if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None   # type: ignore[assignment]  # an import of it: ModuleNotFoundError
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


class _DaskArrayTypeLater:
    """xarray's record of the Dask array module (``xarray.namedarray.pycompat``) until ``dask.array`` is
    loaded: the array type is ``()`` while it is not (no Dask array can exist then), the real record from then
    on; any other attribute (module, version, available) loads it at once, as xarray would have."""

    def __init__(self, pycompat) -> None:
        self._pycompat = pycompat

    def _real(self):
        real = self._pycompat.DuckArrayModule("dask")
        self._pycompat._cached_duck_array_modules["dask"] = real
        return real

    @property
    def type(self) -> tuple:
        return self._real().type if "dask.array" in sys.modules else ()

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._real(), name)


def defer_dask_array_check() -> None:
    """xarray asks, for every variable it makes, whether the data is a Dask array, and imports ``dask.array`` to
    know (and ``dask`` for each index it makes: together ~0.3 s of a fresh ``bayes-scaling fit``, where Dask is
    installed). Until something loads them no Dask array or collection can exist, so the answer "no" needs no
    import: xarray's record of the module is replaced by :class:`_DaskArrayTypeLater`, which becomes the real
    one when ``dask.array`` is loaded, and its ``is_dask_collection`` answers "no" while ``dask`` is not loaded
    (then asks Dask). Nothing happens where xarray has looked already or where its internals differ."""
    try:
        from xarray.namedarray import pycompat
    except ImportError:   # pragma: no cover - another xarray layout: its own import, slower
        return
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    if isinstance(cache, dict) and "dask" not in cache and hasattr(pycompat, "DuckArrayModule"):
        cache["dask"] = _DaskArrayTypeLater(pycompat)
    try:
        from xarray.namedarray import utils
    except ImportError:   # pragma: no cover
        return
    asked = getattr(utils, "is_dask_collection", None)
    if callable(asked) and not getattr(asked, "_until_dask_loads", False):
        def is_dask_collection(x) -> bool:   # no Dask collection before Dask is imported
            return sys.modules.get("dask") is not None and asked(x)

        is_dask_collection._until_dask_loads = True   # type: ignore[attr-defined]
        utils.is_dask_collection = is_dask_collection
