"""bayes_scaling: Bayesian hierarchical models of scaling laws for transfer.

Hernandez et al. (2021): the effective data transferred by pre-training is ``D_T = k * D_F**alpha * N**beta``,
with ``beta`` shared across pre-training distributions and ``k``, ``alpha`` specific to each.

>>> import bayes_scaling as bs
>>> data = bs.load_example()
>>> fit = bs.fit_transfer(data, seed=1)      # doctest: +SKIP
>>> fit.summary()                            # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import laws  # noqa: E402
from .data import TransferData  # noqa: E402
from .datasets import example_metadata, load_example  # noqa: E402
from .errors import (  # noqa: E402
    BayesScalingError,
    ConfigError,
    ConvergenceWarning,
    DataError,
    ExclusionWarning,
    FitFileError,
)
from .inference import TransferFit, available_backends, fit_transfer, load_fit  # noqa: E402
from .models import ModelConfig  # noqa: E402
from .simulate import TABLE1, simulate_transfer  # noqa: E402

__all__ = [
    "__version__", "laws", "TransferData", "load_example", "example_metadata", "BayesScalingError",
    "ConfigError", "ConvergenceWarning", "DataError", "ExclusionWarning", "FitFileError", "TransferFit",
    "available_backends", "fit_transfer", "load_fit", "ModelConfig", "TABLE1", "simulate_transfer",
]
