"""bayes_scaling: Bayesian (PyMC, NUTS) hierarchical models of scaling laws.

Any law written as a formula (:class:`LawSpec`), with each parameter shared, partially pooled, separate or
fixed across group columns, fitted by :func:`fit`; Hernandez et al.'s transfer law
``D_T = k * D_F**alpha * N**beta`` (beta shared, k and alpha by pre-training distribution) by
:func:`fit_transfer`; the path from raw losses to effective data; predictions that state how far outside the
data they lie.

>>> import bayes_scaling as bs
>>> spec = bs.LawSpec.from_toml("models/laws/chinchilla_by_corpus.toml")    # doctest: +SKIP
>>> fit = bs.fit(runs, spec, seed=1)                                         # doctest: +SKIP
>>> fit.predict(new_runs, kind="observation", ci_prob=0.9)                   # doctest: +SKIP

Layers: ``bs.data`` (tables, simulation, ``bs.datasets``), ``bs.laws`` (formulas, specs), ``bs.models``,
``bs.inference``, ``bs.analysis`` (predictions, compute optima, timelines, comparison, checks, calibration),
``bs.output`` (exports, figures, report). Several laws, one prediction: :func:`stack` (Bayesian stacking on
leave-future-out scores). Heavy modules load on first use, which keeps the command line's
start-up short.
"""

from __future__ import annotations

__version__ = "0.2.0"

from bayes_scaling._system import configure_pytensor as _configure_pytensor  # noqa: E402

_configure_pytensor()  # no fast-math (same seed, same draws, cached or not); generated source in one folder

from bayes_scaling import errors, laws  # noqa: E402
from bayes_scaling._lazy import lazy_exports  # noqa: E402
from bayes_scaling.data.datasets import load_example  # noqa: E402
from bayes_scaling.data.tables import TransferData  # noqa: E402
from bayes_scaling.laws.spec import LawSpec, Parameter  # noqa: E402

#: Public names loaded on first use: name -> module (relative to the package) that defines it; "" = a module.
_EXPORTS = {
    **dict.fromkeys(["fit", "load", "Fit"], "inference.fit"),
    **dict.fromkeys(["fit_transfer"], "inference.sampling"),
    "ModelConfig": "models.transfer",
    **dict.fromkeys(["fit_scratch", "loss_law_spec"], "inference.scratch"),
    "fit_joint": "inference.joint",
    "effective_data": "analysis.effective",
    "predict": "analysis.predictions",
    **dict.fromkeys(["stack", "Stack"], "analysis.stacking"),
    **dict.fromkeys(["compare_variants", "compare_sharing"], "analysis.compare"),
    **dict.fromkeys(["data", "models", "inference", "analysis", "output", "cli"], ""),
    "datasets": "__datasets__",
}
_getattr, _dir = lazy_exports(__name__, {k: v for k, v in _EXPORTS.items() if v != "__datasets__"}, globals())


def __getattr__(name: str):
    if name == "datasets":   # the bundled data sets: bayes_scaling.data.datasets
        import importlib

        value = importlib.import_module("bayes_scaling.data.datasets")
        globals()[name] = value
        return value
    return _getattr(name)


def __dir__() -> list[str]:
    return sorted(set(_dir()) | {"datasets"})


__all__ = [
    "__version__", "fit", "load", "Fit", "LawSpec", "Parameter", "fit_transfer", "TransferData", "ModelConfig",
    "load_example", "fit_scratch", "loss_law_spec", "fit_joint", "effective_data", "predict", "compare_variants",
    "compare_sharing", "stack", "Stack", "datasets",
    "laws", "errors", "data", "models", "inference", "analysis", "output",
]
