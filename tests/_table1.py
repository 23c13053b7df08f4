"""A minimal "posterior" whose every draw is the paper's Table 1 (closed-form checks of predictions,
compute and timeline). Built as a real :class:`TransferFit` so the production code path is exercised."""

from __future__ import annotations

import numpy as np
import xarray as xr

import bayes_scaling as bs
from bayes_scaling.inference.sampling import TransferFit
from bayes_scaling.models.transfer import ModelConfig

TEXT = {"k": 1.9e4, "alpha": 0.18, "beta": 0.38}
CODE = {"k": 2.1e5, "alpha": 0.096, "beta": 0.38}
CENTRE = (13.0, 16.0)


def table1_fit(*, chains: int = 2, draws: int = 5, hierarchy: bool = True, a_sigma: float = 1e-9,
               alpha_sigma: float = 1e-9, sigma: float = 0.15, alpha_text: float | None = None,
               k_text: float | None = None, beta: float | None = None) -> TransferFit:
    """Every draw = Table 1 (text, text+code). The population (a_mu, alpha_mu) sits at the text values with
    spreads ``a_sigma``, ``alpha_sigma`` (``hierarchy=False`` drops them, like a pooled fit)."""
    text = dict(TEXT, **({"alpha": alpha_text} if alpha_text is not None else {}),
                **({"k": k_text} if k_text is not None else {}), **({"beta": beta} if beta is not None else {}))
    names = ["text", "text+code"]
    shape = (chains, draws)
    c_F, c_N = CENTRE

    def full(v):
        return np.full(shape, float(v))

    log_k = np.stack([full(np.log(text["k"])), full(np.log(CODE["k"]))], axis=-1)
    alpha = np.stack([full(text["alpha"]), full(CODE["alpha"])], axis=-1)
    b = text["beta"]
    a = log_k + alpha * c_F + b * c_N
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "pretraining": names}
    post = xr.Dataset({
        "log_k": (("chain", "draw", "pretraining"), log_k), "k": (("chain", "draw", "pretraining"), np.exp(log_k)),
        "alpha": (("chain", "draw", "pretraining"), alpha), "a": (("chain", "draw", "pretraining"), a),
        "beta": (("chain", "draw"), full(b)), "sigma": (("chain", "draw"), full(sigma)),
        "a_mu": (("chain", "draw"), a[..., 0]), "alpha_mu": (("chain", "draw"), alpha[..., 0]),
    }, coords=coords)
    if hierarchy:
        post["a_sigma"] = (("chain", "draw"), full(a_sigma))
        post["alpha_sigma"] = (("chain", "draw"), full(alpha_sigma))
    tree = xr.DataTree.from_dict({"posterior": post})
    tree.attrs.update(centre_log_D_F=c_F, centre_log_N=c_N, seed=0, backend="fake",
                      bayes_scaling_kind="transfer")
    config = ModelConfig(variant="shared_beta" if hierarchy else "pooled")
    return TransferFit(tree, bs.load_example(), config)
