"""Selections of published real data (``../shared/data`` in development) into the compact tables that the package
bundles (``bayes_scaling/data/datasets/``) and that the reproduction tests fit.

Each function takes the folder of the original files and returns a tidy table; the bundled CSVs were made by
:func:`build` (``python -m bayes_scaling.data.published SHARED_DATA_DIR``), so the data cards and the code agree.

- :func:`muennighoff_final_losses`: the final loss of every run of Muennighoff et al. (2023): the 48 repetition
  runs (C4 and OSCAR, 2.8B / 4.2B / 8.7B parameters, 1 to 44 epochs, last point of each training curve) and the
  229 runs of the data-constrained contour grid (C4). Columns ``source, corpus, name, N, D, U_D, epochs, loss``.
- :func:`muennighoff_stage1`, :func:`muennighoff_spec` and :func:`muennighoff_paper_objective`: Muennighoff et
  al.'s own fit of R_D* and R_N* (their notebook ``utils/parametric_fit.ipynb``) on the 182 runs it used
  (``bs.datasets.load_muennighoff_paper_fit``, transcribed from that notebook: its card).
- :func:`lin_long`: Lin et al. (2024), the three targets in long form: ``target, model, family, size, D, loss``
  (``D`` in examples; 0 = zero-shot).
- :func:`mikami_errors`: Mikami et al. (2021), the configurations of their scaling-law fit (pre-training scale
  64k, fine-tuning ratio 1%, synthetic pre-training): ``error = 1 - max over evaluations of the test metric``
  per configuration and pre-training size ``x`` (``x = 0``: from scratch).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["muennighoff_final_losses", "muennighoff_stage1", "muennighoff_spec", "muennighoff_paper_objective", "lin_long", "mikami_errors", "build", "MUENNIGHOFF_SIZES"]

#: The parameter counts behind the size labels of the repetition runs (those of the same models in the contour
#: grid, which lists exact counts).
MUENNIGHOFF_SIZES = {"2.8B": 2.81e9, "4.2B": 4.2465e9, "8.7B": 8.67e9}


def muennighoff_stage1() -> dict[str, float]:
    """Muennighoff et al.'s first stage, unrounded (fitted to 54 points of Chinchilla's C4 IsoFLOP figure, not to
    their runs): ``E, A, B, alpha, beta`` (A 521, B 1488, E 1.87, alpha = beta 0.353), from the card of
    ``bs.datasets.load_muennighoff_paper_fit``."""
    from bayes_scaling.data.datasets import published_metadata

    meta = published_metadata("muennighoff_paper_fit")["stage1_log_parameters"]
    return {"E": float(np.exp(meta["log_E"])), "A": float(np.exp(meta["log_A"])), "B": float(np.exp(meta["log_B"])),
            "alpha": float(meta["alpha"]), "beta": float(meta["beta"])}


@functools.cache
def _data_constrained():
    from bayes_scaling.laws.spec import builtin_spec

    return builtin_spec("data_constrained")


def muennighoff_spec(fixed: dict[str, float] | None = None):
    """The ``data_constrained`` law as Muennighoff et al. fitted it. Without ``fixed``: every parameter free, with
    alpha = beta tied (one exponent, ``alpha``). With ``fixed`` (e.g. :func:`muennighoff_stage1`): those
    parameters fixed at the given values, the rest (R_D*, R_N*) fitted: their second stage.

    >>> sorted(muennighoff_spec().parameters)
    ['A', 'B', 'E', 'RD_star', 'RN_star', 'alpha']
    """
    from bayes_scaling.laws.spec import LawSpec

    d = _data_constrained().to_dict()
    if fixed is None:
        d["law"]["formula"] = d["law"]["formula"].replace("beta", "alpha")
        del d["parameters"]["beta"]
    else:
        for k, v in fixed.items():
            d["parameters"][k] = {"domain": "positive", "fixed": float(v)}
    return LawSpec.from_dict(d)


def muennighoff_paper_objective(RD_star: float, RN_star: float, runs: pd.DataFrame) -> float:
    """Their second stage's objective: ``sum_i Huber_delta(log L(N_i, D_i, U_D_i) - log loss_i)``, delta = 1e-3,
    with ``L`` the ``data_constrained`` law (``models/laws/data_constrained.toml``) at :func:`muennighoff_stage1`
    and the given decay constants. Their notebook prints 0.0158259 at their R_D* = 15.387756, R_N* = 5.309743.

    >>> import bayes_scaling as bs
    >>> runs = bs.datasets.load_muennighoff_paper_fit(used=True)
    >>> round(muennighoff_paper_objective(15.387756, 5.309743, runs), 7)
    0.0158259
    """
    law = _data_constrained().formula.evaluate(
        {**muennighoff_stage1(), "RD_star": RD_star, "RN_star": RN_star,
         **{c: runs[c].to_numpy(dtype=float) for c in ("N", "D", "U_D")}})
    r = np.abs(np.log(law) - np.log(runs["loss"].to_numpy(dtype=float)))
    delta = 1e-3
    return float(np.sum(np.where(r < delta, 0.5 * r**2, delta * (r - 0.5 * delta))))


def muennighoff_final_losses(folder: str | Path) -> pd.DataFrame:
    folder = Path(folder)
    d = pd.read_csv(folder / "datablations_losses.csv")
    fin = d.sort_values("token_num").groupby(["data", "num_params", "tokens_per_epoch", "epochs"]).tail(1)
    rep = pd.DataFrame({
        "source": "repetition_runs", "corpus": fin["data"].to_numpy(),
        "name": fin["checkpoint"].astype(str).str.rsplit("/", n=1).str[-1].to_numpy(),
        "N": fin["num_params"].map(MUENNIGHOFF_SIZES).to_numpy(),
        "D": (fin["tokens_per_epoch"] * fin["epochs"]).to_numpy(),
        "U_D": fin["tokens_per_epoch"].to_numpy(), "epochs": fin["epochs"].astype(float).to_numpy(),
        "loss": fin["loss"].to_numpy()})
    c = pd.read_csv(folder / "datablations_contour_losses.csv")
    # the contour file's tokens_per_epoch is a constant placeholder; the unique tokens are tokens / epochs (the
    # run names encode params, tokens and unique tokens: '2b88b4b' = 2.8B params, 8B tokens, 4B unique)
    con = pd.DataFrame({
        "source": "contour", "corpus": c["data"].to_numpy(),
        "name": c["model_args"].astype(str).map(lambda s: (re.findall(r"'name': '([^']+)'", s) or [""])[0]),
        "N": c["num_params"].to_numpy(dtype=float), "D": c["token_num"].to_numpy(dtype=float),
        "U_D": (c["token_num"] / c["epochs"]).to_numpy(dtype=float), "epochs": c["epochs"].to_numpy(dtype=float),
        "loss": c["openLM_loss"].to_numpy(dtype=float)})
    out = pd.concat([rep, con], ignore_index=True)
    out["U_D"] = np.round(out["U_D"])
    return out.sort_values(["source", "corpus", "N", "U_D", "D"]).reset_index(drop=True)


def lin_long(folder: str | Path) -> pd.DataFrame:
    folder = Path(folder)
    parts = []
    for target in ("flan", "gigaword", "wmt19"):
        w = pd.read_csv(folder / f"{target}.csv")
        sizes = [c for c in w.columns if re.fullmatch(r"\d+", str(c))]
        long = w.melt(id_vars=["config name", "size", "family"], value_vars=sizes, var_name="D",
                      value_name="loss")
        long.insert(0, "target", target)
        parts.append(long.rename(columns={"config name": "model"}))
    out = pd.concat(parts, ignore_index=True)
    out["D"] = out["D"].astype(int)
    out["size"] = out["size"].astype(float)
    out["loss"] = out["loss"].astype(float).round(4)   # the source: "trust about 3 decimals"
    out = out.dropna(subset=["loss"])
    return out[["target", "model", "family", "size", "D", "loss"]].sort_values(
        ["target", "model", "D"]).reset_index(drop=True)


def mikami_errors(folder: str | Path) -> pd.DataFrame:
    d = pd.read_csv(Path(folder) / "results_finetune.csv")
    s = d[(d["pscale"] == "64k") & (d["fratio"] == 1) & (d["pdata"] != "imagenet")]
    keys = ["ptask", "fdata", "ftask", "model", "pdata"]
    g = s.groupby(keys + ["pretrain.data"], dropna=False)["value"].max().reset_index()
    g = g.rename(columns={"pretrain.data": "x", "pdata": "realism"})
    g["error"] = 1.0 - g["value"]
    g["config"] = g["ptask"] + "/" + g["fdata"] + "-" + g["ftask"] + "/" + g["model"] + "/" + g["realism"]
    g = g.dropna(subset=["x"])
    return g[["config", "ptask", "fdata", "ftask", "model", "realism", "x", "error"]].sort_values(
        ["config", "x"]).reset_index(drop=True)


def build(shared: str | Path, out: str | Path) -> None:
    """Write the three bundled CSVs into ``out`` from the original files under ``shared``."""
    shared, out = Path(shared), Path(out)
    muennighoff_final_losses(shared / "muennighoff2023_datablations").to_csv(
        out / "muennighoff2023_datablations.csv", index=False)
    lin_long(shared / "lin2024_finetuning").to_csv(out / "lin2024_finetuning.csv", index=False)
    mikami_errors(shared / "mikami2021_synthetic_to_real").to_csv(out / "mikami2021_synthetic_to_real.csv",
                                                                  index=False)


if __name__ == "__main__":  # pragma: no cover
    import sys

    build(sys.argv[1], Path(__file__).parent / "datasets")
