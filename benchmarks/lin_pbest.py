"""Is P(best) calibrated on real held-out runs? Lin et al.'s three targets, the 6 demo models, 4 budgets.

    python benchmarks/lin_pbest.py [OUT.csv]

For each target (FLAN, WMT19, Gigaword) and budget 1/r (r = 8, 32, 128, 512), ``select_model`` (the whole
rectified law, ``window="all"``, with the demo's sampler) fits the runs with D <= 1,638,400 / r of the 6 models
of ``bayes-scaling demo`` and gives each
model's posterior probability of the lowest loss at 1,638,400 examples, under the law (``p_best``) and with an
independent discrepancy per model (``p_best_discrepancy``). Prints, per case, the selected and actual best
models and the probability each gave the actual best, then the mean log score of the actual best
(``log P(actual best)``, higher is better) for both. Uses the bundled data (offline).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandas as pd


def main(argv=None) -> int:
    import bayes_scaling as bs
    from bayes_scaling.analysis.selection import select_model
    from bayes_scaling.cli.demo import DEMO_LIN_MODELS, DEMO_LIN_SAMPLER

    argv = sys.argv[1:] if argv is None else argv
    warnings.filterwarnings("ignore")
    rows = []
    for target in ("flan", "wmt19", "gigaword"):
        runs = bs.datasets.load_lin(target)
        runs = runs[runs["model"].isin(DEMO_LIN_MODELS)]
        for r in (8, 32, 128, 512):
            t0 = time.time()
            sel = select_model(runs, ratio=r, seed=1, warn=False, window="all", **DEMO_LIN_SAMPLER)
            m = sel.metrics
            rows.append({"target": target, "ratio": r, "selected": sel.selected, "actual_best": m["actual_best"],
                         "p_best": m["p_best_of_actual_best"],
                         "p_best_discrepancy": m["p_best_discrepancy_of_actual_best"],
                         "relative_accuracy": m["relative_accuracy"], "r_hat_max": m["r_hat_max"],
                         "divergences": m["divergences"], "seconds": round(time.time() - t0, 1)})
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    if argv:
        table.to_csv(argv[0], index=False)
    for c in ("p_best", "p_best_discrepancy"):
        score = np.log(np.clip(table[c], 1e-3, 1))
        print(f"{c}: the actual best's probability, mean {table[c].mean():.3f}; mean log score {score.mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
