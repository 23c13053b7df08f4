"""Lazy re-exports for package ``__init__`` modules: a name is imported from its module on first use, which
keeps ``import bayes_scaling`` (and the command line's start-up) free of PyMC, matplotlib and SciPy."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
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




#: what a module not loaded yet answers without loading: the import system's own attributes, which it sets
#: before the module's code runs (``__path__`` is not among them: a submodule import must load the package)
_METADATA = frozenset({"__spec__", "__name__", "__file__", "__cached__", "__package__", "__loader__", "__class__"})


class _PendingModule(types.ModuleType):
    """A module from :func:`lazy_module` not loaded yet: reading its import metadata (``_METADATA``) leaves it
    so; any other attribute hands it to LazyLoader's own class (``importlib.util._LazyModule``), which loads it
    and makes it a plain module."""

    def __getattribute__(self, attr):
        if attr in _METADATA:
            return object.__getattribute__(self, attr)
        object.__setattr__(self, "__class__", _LAZY_CLASS[0])
        return getattr(self, attr)


_LAZY_CLASS: list = []  # LazyLoader's module class, taken from the first module it makes


def lazy_module(name: str):
    """``name`` imported lazily (:class:`importlib.util.LazyLoader`): the module object is put in
    ``sys.modules`` now, but its code runs on the first attribute access, after which it *is* the real module
    (the same object as ``import name`` returns, with the same attributes; LazyLoader swaps its class back).

    For a third-party module that imports ``name`` at its top level but needs it only on some paths (nutpie's
    ``sample.py`` imports ArviZ, which is used only when nutpie converts a trace itself). A module already
    imported (or being imported) is returned as it is; ``None`` when ``name`` is not installed.

    One addition to LazyLoader: reading the import metadata (``__spec__``, ``__name__``, ``__file__``, ...) does
    not load the module. An ``import name`` statement reads ``__spec__`` of the module it finds in
    ``sys.modules`` (to wait for a module still being initialised), which would otherwise load the module at
    the importing module's ``import`` line, i.e. at once; and code that scans ``sys.modules`` (e.g.
    ``inspect.getmodule``, which reads every module's ``__file__``) would load it at an arbitrary moment, even
    while one of its own dependencies is half imported (a circular import)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return None
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)  # runs nothing yet: makes ``module`` LazyLoader's lazy module
    if not _LAZY_CLASS:
        _LAZY_CLASS.append(type(module))
    module.__class__ = _PendingModule
    sys.modules[name] = module
    return module


def pending(name: str) -> bool:
    """Whether ``name`` is in ``sys.modules`` as a module of :func:`lazy_module` that has not loaded yet."""
    return type(sys.modules.get(name)) in (_PendingModule, *_LAZY_CLASS)
