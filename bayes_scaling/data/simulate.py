"""Simulated Hernandez-style transfer experiments with known truth (seeded).

The bundled example data set is made here: ``python -m bayes_scaling.data.simulate`` rewrites it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling._atomic import atomic_path, write_text
from bayes_scaling.laws import formulas as laws

__all__ = ["TABLE1", "simulate_transfer", "KAPLAN_WEBTEXT2", "EPOCH_CHINCHILLA", "simulate_losses",
           "simulate_seeds", "simulate_law"]

#: Hernandez et al. (2021), Table 1 (characters of Python as the unit of data).
TABLE1: dict[str, dict[str, float]] = {
    "text": {"k": 1.9e4, "alpha": 0.18, "beta": 0.38},
    "text+code": {"k": 2.1e5, "alpha": 0.096, "beta": 0.38},
}


def simulate_transfer(seed: int = 0, *, truth: dict[str, dict[str, float]] | None = None,
                      N: np.ndarray | None = None, D_F: np.ndarray | None = None, sigma: float = 0.15,
                      n_ossified: int = 4, unit: str = "characters") -> tuple[pd.DataFrame, dict]:
    """A table of fine-tuned runs with ``D_T = k * D_F**alpha * N**beta * exp(noise)``, noise ~ Normal(0, sigma).

    Defaults: the paper's Table 1 as truth, ``N`` over 4 orders of magnitude (1e5 .. 1e9, 7 sizes) and ``D_F``
    over 3 (1e5 .. 1e8 characters, 7 sizes) for every pre-training distribution, plus ``n_ossified`` runs of the
    smallest models at the largest D_F whose transfer is negative (D_T <= 0, as the paper saw for small models in
    the high-data regime). Returns ``(table, metadata)``; metadata records every generating parameter.

    >>> df, meta = simulate_transfer(seed=1)
    >>> len(df), meta["truth"]["text"]["alpha"], bool((df["D_T"] <= 0).sum() == 4)
    (102, 0.18, True)
    """
    rng = np.random.default_rng(seed)
    truth = truth or TABLE1
    N = np.logspace(5, 9, 7) if N is None else np.asarray(N, float)
    D_F = np.logspace(5, 8, 7) if D_F is None else np.asarray(D_F, float)
    rows = []
    for name, t in truth.items():
        for n in N:
            for d in D_F:
                d_t = laws.transfer(d, n, t["k"], t["alpha"], t["beta"]) * np.exp(rng.normal(0.0, sigma))
                rows.append({"pretraining": name, "N": n, "D_F": d, "D_T": d_t, "ossified": False})
    # ossified runs: small models, more fine-tuning data than the low-data regime allows, negative transfer
    names = list(truth)
    for i in range(n_ossified):
        name = names[i % len(names)]
        n = N[i // (2 * len(names)) % len(N)]
        d = D_F.max() * (3.0 + i)
        rows.append({"pretraining": name, "N": n, "D_F": d, "D_T": -float(rng.uniform(0.01, 0.2)) * d,
                     "ossified": True})
    df = pd.DataFrame(rows)
    df["D_E"] = df["D_F"] + df["D_T"]
    df["synthetic"] = True
    df["unit"] = unit
    meta = {
        "description": "SYNTHETIC data: a simulated Hernandez et al. (2021)-style transfer experiment, "
                       "not measurements. Truth = the paper's Table 1 unless stated.",
        "seed": seed, "truth": truth, "sigma": sigma, "unit": unit, "n_ossified": n_ossified,
        "N": N.tolist(), "D_F": D_F.tolist(),
        "generator": "bayes_scaling.data.simulate.simulate_transfer",
    }
    return df, meta


DATASETS = Path(__file__).parent / "datasets"
EXAMPLE_SEED = 3


def write_example(directory: Path = DATASETS) -> None:
    """(Re)write the bundled example data set: ``hernandez_synthetic.csv`` and its ``.json`` card."""
    df, meta = simulate_transfer(seed=EXAMPLE_SEED)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / "hernandez_synthetic.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")
    write_text(directory / "hernandez_synthetic.json", json.dumps(meta, indent=2) + "\n")


# ---- raw losses (from-scratch grid and fine-tuned runs) -------------------------------------------------

#: Kaplan et al. (2020), WebText2 fit of L(N, D) (loss in nats/token).
KAPLAN_WEBTEXT2: dict[str, float] = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
#: Epoch AI's refit of Chinchilla's L(N, D) (Besiroglu et al. 2024).
EPOCH_CHINCHILLA: dict[str, float] = {"E": 1.817, "A": 482.0, "B": 2085.0, "alpha_N": 0.348, "alpha_D": 0.366}


def simulate_losses(seed: int = 0, *, law: str = "kaplan", law_params: dict[str, float] | None = None,
                    truth: dict[str, dict[str, float]] | None = None, N: np.ndarray | None = None,
                    D: np.ndarray | None = None, D_F: np.ndarray | None = None, sigma: float = 0.005,
                    n_ossified: int = 2, unit: str = "characters") -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Raw losses with known truth: a from-scratch grid and fine-tuned runs.

    - From scratch: ``loss = L(N, D) * exp(e)``, ``e ~ Normal(0, sigma)``, on the grid ``N x D``.
    - Fine-tuned: ``loss = L(N, D_F + D_T) * exp(e)`` with ``D_T = k[p] * D_F**alpha[p] * N**beta`` (``truth``,
      default the paper's Table 1), on the grid ``pretraining x N x D_F``; plus ``n_ossified`` runs of the
      smallest model at ``D_F`` = 3 and 10 x D(N) (high-data regime) that did *worse* than from scratch:
      ``loss = L(N, v D_F)``, ``v ~ Uniform(0.02, 0.1)``, i.e. ``D_T = -(1 - v) D_F < 0``.

    ``L`` is ``law`` ("kaplan", default Kaplan's WebText2 values, or "chinchilla", Epoch's refit).
    Defaults: N = 1e6 .. 1e9 (4 sizes), D = 1e5 .. 3e10 (12 sizes), D_F = 1e5 .. 1e8 (4 sizes).
    Returns ``(scratch, finetune, metadata)``; the fine-tuned table carries the true ``D_T`` and ``D_E`` as
    ``true_D_T``/``true_D_E`` (for checks; the pipeline never reads them).

    >>> scratch, finetune, meta = simulate_losses(seed=1)
    >>> len(scratch), len(finetune), meta["law"]
    (48, 34, 'kaplan')
    """
    from bayes_scaling.laws.formulas import converged_data, law_loss

    rng = np.random.default_rng(seed)
    truth = truth or TABLE1
    if law_params is None:
        law_params = KAPLAN_WEBTEXT2 if law == "kaplan" else EPOCH_CHINCHILLA
    N = np.logspace(6, 9, 4) if N is None else np.asarray(N, float)
    D = np.logspace(5, np.log10(3e10), 12) if D is None else np.asarray(D, float)
    D_F = np.logspace(5, 8, 4) if D_F is None else np.asarray(D_F, float)
    rows = [{"N": n, "D": d, "loss": float(law_loss(law, n, d, law_params)) * np.exp(rng.normal(0, sigma))}
            for n in N for d in D]
    scratch = pd.DataFrame(rows)
    scratch["unit"] = unit
    scratch["synthetic"] = True
    rows = []
    for name, t in truth.items():
        for n in N:
            for d in D_F:
                d_t = float(laws.transfer(d, n, t["k"], t["alpha"], t["beta"]))
                loss = float(law_loss(law, n, d + d_t, law_params)) * np.exp(rng.normal(0, sigma))
                rows.append({"pretraining": name, "N": n, "D_F": d, "loss": loss, "true_D_T": d_t,
                             "true_D_E": d + d_t})
    names = list(truth)
    n0 = float(N.min())
    D_N = float(converged_data(law, n0, law_params))
    for i in range(n_ossified):
        d = D_N * (3.0, 10.0)[i % 2] * (1 + i // 2)
        v = float(rng.uniform(0.02, 0.1))
        loss = float(law_loss(law, n0, d * v, law_params)) * np.exp(rng.normal(0, sigma))
        rows.append({"pretraining": names[i % len(names)], "N": n0, "D_F": d, "loss": loss,
                     "true_D_T": -(1 - v) * d, "true_D_E": v * d})
    finetune = pd.DataFrame(rows)
    finetune["unit"] = unit
    finetune["synthetic"] = True
    meta = {
        "description": "SYNTHETIC raw losses: a simulated from-scratch grid and fine-tuned runs whose losses follow "
                       f"the {law} loss law at D_F + D_T with D_T = k D_F**alpha N**beta; not measurements.",
        "seed": seed, "law": law, "law_params": law_params, "truth": truth, "sigma_log_loss": sigma,
        "n_ossified": n_ossified, "unit": unit, "N": N.tolist(), "D": D.tolist(), "D_F": D_F.tolist(),
        "generator": "bayes_scaling.data.simulate.simulate_losses",
    }
    return scratch, finetune, meta


def simulate_seeds(seed: int = 0, *, n_seeds: int = 3, sigma_seed: float = 0.01, seed_slope: float = 0.0,
                   sigma_seed_finetune: float | None = None, sigma: float = 0.003, **kwargs
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Raw losses of configurations trained with ``n_seeds`` seeds each, with known seed noise.

    Every configuration of :func:`simulate_losses` (``sigma``: its noise, shared by the configuration's seeds,
    the law's misfit there) is run ``n_seeds`` times: ``loss_cs = loss_c * exp(e_cs)``,
    ``e_cs ~ Normal(0, sigma_seed(N))``, ``sigma_seed(N) = sigma_seed * (N / N_min)**seed_slope`` (from-scratch
    runs; fine-tuned runs: ``sigma_seed_finetune``, default ``sigma_seed``, same slope). A ``seed`` column
    (0 .. n_seeds-1) marks the replicates; ``kwargs`` go to :func:`simulate_losses` (``n_ossified`` defaults
    to 0 here).

    >>> sc, ft, meta = simulate_seeds(1, n_seeds=2)
    >>> len(sc), sorted(sc["seed"].unique().tolist()), meta["sigma_seed"]
    (96, [0, 1], 0.01)
    """
    kwargs.setdefault("n_ossified", 0)
    scratch, finetune, meta = simulate_losses(seed, sigma=sigma, **kwargs)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 14]))
    n_min = float(scratch["N"].min())
    s_ft = sigma_seed if sigma_seed_finetune is None else sigma_seed_finetune
    out = []
    for table, s0 in ((scratch, sigma_seed), (finetune, s_ft)):
        reps = []
        for k in range(n_seeds):
            t = table.copy()
            scale = s0 * (t["N"].to_numpy(float) / n_min) ** seed_slope
            t["loss"] = t["loss"] * np.exp(rng.normal(0.0, 1.0, len(t)) * scale)
            t["seed"] = k
            reps.append(t)
        out.append(pd.concat(reps, ignore_index=True))
    meta = dict(meta, n_seeds=n_seeds, sigma_seed=sigma_seed, sigma_seed_finetune=s_ft, seed_slope=seed_slope,
                description=meta["description"] + f" Each configuration run with {n_seeds} seeds: seed noise "
                f"of log loss {sigma_seed:g} (fine-tuned {s_ft:g}) x (N / N_min)**{seed_slope:g}.",
                generator="bayes_scaling.data.simulate.simulate_seeds")
    return out[0], out[1], meta


LOSSES_SEED = 5


def write_losses_example(directory: Path = DATASETS) -> None:
    """(Re)write the bundled raw-loss data set: ``hernandez_losses_scratch.csv``, ``..._finetune.csv`` and the
    card ``hernandez_losses.json``."""
    scratch, finetune, meta = simulate_losses(seed=LOSSES_SEED)
    directory.mkdir(parents=True, exist_ok=True)
    for name, table in (("hernandez_losses_scratch.csv", scratch), ("hernandez_losses_finetune.csv", finetune)):
        with atomic_path(directory / name) as tmp:
            table.to_csv(tmp, index=False, float_format="%.10g")
    meta["files"] = ["hernandez_losses_scratch.csv", "hernandez_losses_finetune.csv"]
    write_text(directory / "hernandez_losses.json", json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    write_example()
    write_losses_example()
    print(f"wrote {DATASETS / 'hernandez_synthetic.csv'} and the raw-loss files hernandez_losses_*")


def simulate_law(spec, design: pd.DataFrame, truth: dict, sigma: float, *, seed: int = 0,
                 nu: float | None = None) -> pd.DataFrame:
    """Runs simulated from a law spec (:class:`~bayes_scaling.laws.spec.LawSpec`): ``design`` holds the input
    and group columns; ``truth`` maps each parameter to a value, or (for one varying by a column) to a dict
    group -> value; noise ``sigma`` on the spec's likelihood scale (Student-t with ``nu`` if given). Returns
    ``design`` with the target column added.

    >>> from bayes_scaling.laws.spec import LawSpec
    >>> spec = LawSpec.from_dict({"law": {"formula": "A * x**b", "target": "y"},
    ...                           "parameters": {"A": {}, "b": {"domain": "real"}}})
    >>> simulate_law(spec, pd.DataFrame({"x": [1.0, 2.0]}), {"A": 2.0, "b": 1.0}, 0.0)["y"].tolist()
    [2.0, 4.0]
    """
    from bayes_scaling.laws.formulas import observation_noise

    rng = np.random.default_rng(seed)
    values = {c: design[c].to_numpy(dtype=float) for c in spec.inputs}
    for name, p in spec.parameters.items():
        if p.fixed is not None:
            values[name] = p.fixed
        elif p.by is not None:
            t = truth[name]
            values[name] = design[p.by].map(t).to_numpy(dtype=float) if isinstance(t, dict) else float(t)
        else:
            values[name] = float(truth[name])
    f = np.asarray(spec.formula.evaluate(values, backend="numpy"), dtype=float) * np.ones(len(design))
    y = observation_noise(f[None, :], sigma, rng, nu=nu, log=spec.scale == "log")[0]
    out = design.copy()
    out[spec.target] = y
    return out
