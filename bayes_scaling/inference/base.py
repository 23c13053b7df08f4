"""What every fit object shares: the posterior draws in an ``xarray.DataTree`` and the attributes every fit
file records (the NUTS back end that ran, the seed, the parameterization chosen)."""

from __future__ import annotations

import json

import xarray as xr

__all__ = ["FitBase"]


class FitBase:
    """Base of :class:`~bayes_scaling.inference.fit.Fit`, ``TransferFit``, ``ScratchFit`` and ``JointFit``."""

    tree: xr.DataTree

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws (dims ``chain``, ``draw``, ...)."""
        return self.tree["posterior"].to_dataset()

    @property
    def backend(self) -> str:
        """The NUTS back end that ran (``"auto"`` resolved)."""
        return str(self.tree.attrs.get("backend", "unknown"))

    @property
    def seed(self) -> int:
        return int(self.tree.attrs["seed"])

    @property
    def parameterization(self) -> dict[str, str]:
        """``"centred"`` / ``"non_centred"`` per grouped parameter, as used (``{}`` where none or in files of
        version 0.1)."""
        return json.loads(self.tree.attrs.get("parameterization", "{}"))
