"""Simulated Hernandez-style transfer experiments with known truth (seeded).

The bundled example data set is made here: ``python -m bayes_scaling.simulate`` rewrites it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import laws

__all__ = ["TABLE1", "simulate_transfer"]

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
        "generator": "bayes_scaling.simulate.simulate_transfer",
    }
    return df, meta


DATASETS = Path(__file__).parent / "datasets"
EXAMPLE_SEED = 3


def write_example(directory: Path = DATASETS) -> None:
    """(Re)write the bundled example data set: ``hernandez_synthetic.csv`` and its ``.json`` card."""
    df, meta = simulate_transfer(seed=EXAMPLE_SEED)
    directory.mkdir(parents=True, exist_ok=True)
    df.to_csv(directory / "hernandez_synthetic.csv", index=False, float_format="%.10g")
    (directory / "hernandez_synthetic.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    write_example()
    print(f"wrote {DATASETS / 'hernandez_synthetic.csv'}")
