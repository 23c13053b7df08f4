"""bayes_scaling: Bayesian hierarchical models of scaling laws for transfer.

Hernandez et al. (2021): the effective data transferred by pre-training is ``D_T = k * D_F**alpha * N**beta``,
with ``beta`` shared across pre-training distributions and ``k``, ``alpha`` specific to each.

>>> import bayes_scaling as bs
>>> data = bs.load_example()
>>> fit = bs.fit_transfer(data, seed=1)      # doctest: +SKIP
>>> fit.summary()                            # doctest: +SKIP

The core (data, model, fit) is imported at once; the modules for predictions, comparison, checks, figures,
loss laws and calibration load on first use (``bs.predict``, ``bs.compare``, ...), which keeps the command
line's start-up short.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from bayes_scaling import laws  # noqa: E402
from bayes_scaling.data.datasets import (  # noqa: E402
    example_metadata,
    load_example,
    load_finetune_losses,
    load_scratch_losses,
    losses_metadata,
)
from bayes_scaling.data.simulate import TABLE1, simulate_losses, simulate_transfer  # noqa: E402
from bayes_scaling.data.tables import TransferData  # noqa: E402
from bayes_scaling.errors import (  # noqa: E402
    BayesScalingError,
    ConfigError,
    ConvergenceWarning,
    DataError,
    ExclusionWarning,
    FitFileError,
)
from bayes_scaling.inference.sampling import (  # noqa: E402
    TransferFit,
    available_backends,
    fit_transfer,
    fit_transfer_many,
    load_fit,
)
from bayes_scaling.models.transfer import ModelConfig  # noqa: E402

#: Public names loaded on first use: name -> module that defines it.
_LAZY: dict[str, str] = {
    # from raw losses: from-scratch loss laws, effective data, the joint model
    **dict.fromkeys(["fit_scratch", "ScratchFit", "load_scratch_fit"], "models.losslaws"),
    **dict.fromkeys(["effective_data", "EffectiveData", "restrict_to_low_data"], "analysis.effective"),
    **dict.fromkeys(["fit_joint", "JointFit", "load_joint_fit"], "models.joint"),
    # predictions, derived quantities, compute-efficient sizes, timelines, export
    **dict.fromkeys(["predict", "NEW", "exchange_rate", "crossover", "crossover_probability", "extrapolation"],
                    "analysis.predictions"),
    **dict.fromkeys(["loss_law", "scratch_optimum", "finetune_optimum", "compute_frontier", "smallest_model",
                     "compute_saved"], "analysis.compute"),
    **dict.fromkeys(["forecast", "forecast_grid"], "analysis.timeline"),
    **dict.fromkeys(["to_long", "to_wide", "quantile_table"], "output.export"),
    # comparison, checks, figures, report, calibration
    **dict.fromkeys(["compare_variants", "compare_fits", "fit_variants", "beta_evidence", "contrasts"], "analysis.compare"),
    **dict.fromkeys(["posterior_predictive_check", "coverage", "loo_pit", "prior_predictive_check"], "analysis.checks"),
    "write_report": "output.report",
    "run_sbc": "analysis.calibration",
}
_LAZY_MODULES = {name: path for path in ("data.datasets", "analysis.predictions", "analysis.compute", "analysis.timeline",
                 "output.export", "analysis.compare", "analysis.checks", "output.plots", "output.report",
                 "analysis.calibration", "models.losslaws", "analysis.effective", "models.joint")
                 for name in [path.rpartition(".")[2]]}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f".{_LAZY_MODULES[name]}", __name__)
    else:
        raise AttributeError(f"module 'bayes_scaling' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))


__all__ = [
    "__version__", "laws", "TransferData", "load_example", "example_metadata", "BayesScalingError",
    "ConfigError", "ConvergenceWarning", "DataError", "ExclusionWarning", "FitFileError", "TransferFit",
    "available_backends", "fit_transfer", "fit_transfer_many", "load_fit", "ModelConfig", "TABLE1",
    "simulate_transfer", "simulate_losses", "load_scratch_losses", "load_finetune_losses", "losses_metadata",
    *_LAZY, *_LAZY_MODULES,
]
