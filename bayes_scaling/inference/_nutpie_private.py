"""The only module that touches nutpie's private API; everything else uses ``nutpie.sample`` and
``nutpie.compile_pymc_model`` (public).

:class:`~bayes_scaling.inference.compiled.CompiledSampler` compiles a model once with PyTensor's Numba back end
(cached on disk) and hands nutpie its own callbacks, which nutpie's public API cannot take:

- :func:`native_model`: ``nutpie.compile_pymc.CompiledPyMCModel`` around two Numba C callbacks (no Python in
  the sampling loop; the data arrive through a pointer table, so new data need no recompilation);
- :func:`pyfunc_model`: ``nutpie.compiled_pyfunc.from_pyfunc`` around Python callbacks.

Both check what they rely on (the module, the class, its exact dataclass fields, the tested nutpie versions)
and raise :class:`PrivateAPIError` when anything differs. The sampler then falls back to nutpie's public path
(``compile_pymc_model(model).with_data(...)``: nutpie compiles the model itself, ~10 s, not cached) with a
warning, so another nutpie version is slower, never wrong or a traceback.

Tested with nutpie 0.16.9 to 0.16.11 (``pyproject.toml`` pins ``nutpie>=0.16.9,<0.17``): 0.16.0-0.16.8 lack the
``reparameterized_names`` field (and, before 0.16.9, support for ArviZ 1).
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["PrivateAPIError", "TESTED_NUTPIE", "native_model", "pyfunc_model", "nutpie_version"]

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
