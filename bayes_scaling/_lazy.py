"""Lazy re-exports for package ``__init__`` modules: a name is imported from its module on first use, which
keeps ``import bayes_scaling`` (and the command line's start-up) free of PyMC, matplotlib and SciPy."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a public name to the module (relative
    to ``package``, e.g. ``"analysis.compute"``) that defines it; a name that maps to ``""`` is that module."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = exports[name]
        if target == "":
            value = importlib.import_module(f"{package}.{name}")
        else:
            value = getattr(importlib.import_module(f"{package}.{target}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__



def lazy_module(name: str):
    """``name`` imported lazily (:class:`importlib.util.LazyLoader`): the module object is put in
    ``sys.modules`` now, but its code runs on the first attribute access, after which it *is* the real module
    (the same object as ``import name`` returns, with the same attributes; LazyLoader swaps its class back).

    For a third-party module that imports ``name`` at its top level but needs it only on some paths (nutpie's
    ``sample.py`` imports ArviZ, which is used only when nutpie converts a trace itself). A module already
    imported (or being imported) is returned as it is; ``None`` when ``name`` is not installed.

    One addition to LazyLoader: reading ``__spec__`` does not load the module. An ``import name`` statement
    reads it of the module it finds in ``sys.modules`` (to wait for a module still being initialised), which
    would otherwise load the module at the importing module's ``import`` line, i.e. at once. Any other
    attribute hands the module back to LazyLoader's class, which loads it."""
    import importlib.util
    import sys
    import types

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return None
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)  # runs nothing yet: makes ``module`` an importlib.util._LazyModule
    lazy_class = type(module)

    class _LazyModuleSpecReadable(types.ModuleType):
        def __getattribute__(self, attr):
            if attr == "__spec__":
                return object.__getattribute__(self, attr)
            object.__setattr__(self, "__class__", lazy_class)  # LazyLoader's own class loads it
            return getattr(self, attr)

    module.__class__ = _LazyModuleSpecReadable
    sys.modules[name] = module
    return module
