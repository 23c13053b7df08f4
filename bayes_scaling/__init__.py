"""bayes_scaling: Bayesian hierarchical models of scaling laws for transfer.

Hernandez et al. (2021): the effective data transferred by pre-training is ``D_T = k * D_F**alpha * N**beta``,
with ``beta`` shared across pre-training distributions and ``k``, ``alpha`` specific to each.

>>> import bayes_scaling as bs
>>> data = bs.load_example()
>>> fit = bs.fit_transfer(data, seed=1)      # doctest: +SKIP
>>> fit.summary()                            # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import (  # noqa: E402
    calibration,
    checks,
    compare,
    compute,
    export,
    laws,  # noqa: E402
    plots,
    predictions,
    timeline,
)
from .checks import coverage, loo_pit, posterior_predictive_check, prior_predictive_check  # noqa: E402
from .compare import beta_evidence, compare_fits, compare_variants, contrasts, fit_variants  # noqa: E402
from .compute import (  # noqa: E402
    compute_frontier,
    compute_saved,
    finetune_optimum,
    loss_law,
    scratch_optimum,
    smallest_model,
)
from .data import TransferData  # noqa: E402
from .datasets import (  # noqa: E402
    example_metadata,
    load_example,
    load_finetune_losses,
    load_scratch_losses,
    losses_metadata,
)
from .effective import EffectiveData, effective_data, restrict_to_low_data  # noqa: E402
from .errors import (  # noqa: E402
    BayesScalingError,
    ConfigError,
    ConvergenceWarning,
    DataError,
    ExclusionWarning,
    FitFileError,
)
from .export import quantile_table, to_long, to_wide  # noqa: E402
from .inference import TransferFit, available_backends, fit_transfer, fit_transfer_many, load_fit  # noqa: E402
from .joint import JointFit, fit_joint, load_joint_fit  # noqa: E402
from .losslaws import ScratchFit, fit_scratch, load_scratch_fit  # noqa: E402
from .models import ModelConfig  # noqa: E402
from .predictions import NEW, crossover, crossover_probability, exchange_rate, extrapolation, predict  # noqa: E402
from .report import write_report  # noqa: E402
from .simulate import TABLE1, simulate_losses, simulate_transfer  # noqa: E402
from .timeline import forecast, forecast_grid  # noqa: E402

__all__ = [
    "__version__", "laws", "TransferData", "load_example", "example_metadata", "BayesScalingError",
    "ConfigError", "ConvergenceWarning", "DataError", "ExclusionWarning", "FitFileError", "TransferFit",
    "available_backends", "fit_transfer", "load_fit", "ModelConfig", "TABLE1", "simulate_transfer",
    "fit_transfer_many", "simulate_losses", "load_scratch_losses", "load_finetune_losses", "losses_metadata",
    # from raw losses: from-scratch loss laws, effective data, the joint model
    "fit_scratch", "ScratchFit", "load_scratch_fit", "effective_data", "EffectiveData", "restrict_to_low_data",
    "fit_joint", "JointFit", "load_joint_fit",
    # predictions, derived quantities, compute-efficient sizes, timelines, export (modules: predictions,
    # compute, timeline, export)
    "predictions", "compute", "timeline", "export", "predict", "NEW", "exchange_rate", "crossover",
    "crossover_probability", "extrapolation", "loss_law", "scratch_optimum", "finetune_optimum",
    "compute_frontier", "smallest_model", "compute_saved", "forecast", "forecast_grid", "to_long", "to_wide",
    "quantile_table",
    # comparison, checks, figures, report
    "compare", "checks", "plots", "calibration", "compare_variants", "compare_fits", "fit_variants", "beta_evidence",
    "contrasts", "posterior_predictive_check", "coverage", "loo_pit", "prior_predictive_check", "write_report",
]
