"""What the checks and comparisons need of a fit, one definition for a transfer fit (``TransferFit``) and a
law-spec fit (:class:`~bayes_scaling.inference.fit.Fit`) alike: the observed variable of the model (its name in
the ``log_likelihood`` and ``posterior_predictive`` groups and its scale), a table naming each observation, and
the PyMC model the fit was drawn from (rebuilt from what the fit records: data, priors, parameterization).

- transfer: the observed variable is ``D_T`` (``log_D_T`` in files of versions 0.1 and 0.2) (``log D_T ~ Normal/StudentT(log(k D_F**alpha N**beta), sigma)``),
  one observation per run used (excluded runs skipped), named by ``row``, ``pretraining``, ``N``, ``D_F``, ``D_T``;
- law spec: the observed variable is the spec's target (``log y`` or ``y`` by the likelihood's scale:
  :mod:`bayes_scaling.models.spec_model`), one observation per row of the data, named by ``row``, the group
  columns, the inputs and the target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_scaling.errors import BayesScalingError

__all__ = ["Observed", "observed", "build_model", "check_kind"]


@dataclass(frozen=True)
class Observed:
    """The observations of a fit: ``var`` (the observed variable's name in the model), ``target`` (the column
    of the observed quantity), ``log`` (the likelihood is on ``log(target)``), ``rows`` (one row per observation:
    ``row`` of the data table, the group columns, the inputs, the target), ``groups`` (group columns), ``unit``."""

    var: str
    target: str
    log: bool
    rows: pd.DataFrame
    groups: tuple[str, ...]
    unit: str = ""

    @property
    def values(self) -> np.ndarray:
        """The observations on the likelihood's scale."""
        y = self.rows[self.target].to_numpy(dtype=float)
        return np.log(y) if self.log else y

    def to_scale(self, y):
        """The likelihood's scale of values of the target."""
        return np.log(y) if self.log else np.asarray(y, dtype=float)

    def from_scale(self, v):
        """Values of the target from values on the likelihood's scale."""
        return np.exp(v) if self.log else np.asarray(v, dtype=float)


def check_kind(fit, what: str = "this analysis") -> None:
    """A :class:`BayesScalingError` for fits other than a transfer or law-spec fit."""
    from bayes_scaling.inference.fit import Fit
    from bayes_scaling.inference.sampling import TransferFit

    if not isinstance(fit, (Fit, TransferFit)):
        raise BayesScalingError(f"{what} needs a law-spec fit (bs.fit) or a transfer fit (bs.fit_transfer), got "
                                f"{type(fit).__name__}")


def observed(fit) -> Observed:
    """The :class:`Observed` of a transfer or law-spec fit."""
    from bayes_scaling.inference.sampling import TransferFit

    check_kind(fit)
    if isinstance(fit, TransferFit):
        used = fit.data.used
        rows = pd.DataFrame({"row": used.index.to_numpy(), "pretraining": used["pretraining"].to_numpy(),
                             "N": used["N"].to_numpy(float), "D_F": used["D_F"].to_numpy(float),
                             "D_T": used["D_T"].to_numpy(float)})
        return Observed(fit.observed_name, "D_T", True, rows, ("pretraining",), fit.data.unit)
    spec, data = fit.spec, fit.table
    cols = [c for c in dict.fromkeys([*spec.groups, *spec.inputs, spec.target])]
    rows = pd.concat([pd.DataFrame({"row": np.arange(len(data))}), data[cols].reset_index(drop=True)], axis=1)
    return Observed(spec.target, spec.target, spec.scale == "log", rows, tuple(spec.groups))


def build_model(fit):
    """The PyMC model the fit's draws come from (the transfer model with its configuration, or the spec's model
    with the priors, noise prior and parameterization the fit recorded)."""
    from bayes_scaling.inference.sampling import TransferFit

    check_kind(fit)
    if isinstance(fit, TransferFit):
        return fit.build_model()
    from bayes_scaling.models import spec_model as sm

    attrs = fit.tree.attrs
    missing = [a for a in ("priors", "noise_prior", "labels") if a not in attrs]
    if missing:
        raise BayesScalingError(f"this fit does not record {', '.join(missing)}: its model cannot be rebuilt for "
                                "posterior predictive checks; refit it with bs.fit")
    prepared = sm.prepare(fit.spec, fit.table, labels=fit.labels)
    param = json.loads(attrs.get("parameterization", "{}"))
    return sm.build_spec_model(fit.spec, prepared, fit.priors, param, float(attrs["noise_prior"]), fit.centring)
