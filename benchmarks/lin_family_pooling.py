"""Does pooling models within their families predict held-out fine-tuning runs better? (issue 11)

    python benchmarks/lin_family_pooling.py OUT.csv [--targets flan wmt19 gigaword] [--ratios 8 64 512]
                                             [--draws 1000] [--tune 1000] [--chains 4]

Lin et al.'s 30 models come from 12 families. For each target and budget 1/r, ``select_model`` fits the whole
rectified law (``window="all"``) to the runs with 0 < D <= 1,638,400 / r twice, with every parameter pooled
across models (``within=None``) and in two
levels, models within families and families across all (``within="family"``), and scores each on the held-out
full-data losses (D = 1,638,400): Pearson r and relative accuracy (Lin et al.'s Table 1 metrics), coverage of the
90% predictive intervals, the mean absolute error of the predicted log loss, the log score of the actual best
model's P(best) (higher is better; also with an independent discrepancy per model of tau = 0.01 ... 0.059 per
decade, ``log_p_best_tau_*``), and the fit's R-hat / bulk ESS / divergences. One row per fit; a summary per
variant at the end. Uses the bundled data (offline).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

#: independent discrepancies per model tried for P(best) (0: the law alone; 0.059: the intervals' tau)
TAUS = (0.0, 0.01, 0.02, 0.03, 0.059)


def main(argv=None) -> int:
    import bayes_scaling as bs
    from bayes_scaling.analysis.best import best_group
    from bayes_scaling.analysis.selection import LIN_FULL_D, select_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--targets", nargs="+", default=["flan", "wmt19", "gigaword"])
    ap.add_argument("--ratios", nargs="+", type=int, default=[8, 64, 512])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = []
    for target in args.targets:
        runs = bs.datasets.load_lin(target)
        for r in args.ratios:
            for within in (None, "family"):
                t0 = time.time()
                sel = select_model(runs, ratio=r, seed=args.seed, warn=False, within=within, window="all",
                                   draws=args.draws, tune=args.tune, chains=args.chains)
                m, t = sel.metrics, sel.table.dropna(subset=["actual"])
                # P(best) of the actual best with an independent discrepancy per model of tau per decade (the
                # part of the law's error not shared by the models: a shared part does not change a ranking)
                taus = {}
                for tau in TAUS:
                    b = best_group(sel.fit, at={"D": LIN_FULL_D}, group="model", seed=args.seed, discrepancy=tau)
                    p = float(b.set_index(b["group"].astype(str)).loc[m["actual_best"], "p_best_discrepancy"])
                    taus[f"log_p_best_tau_{tau:g}"] = float(np.log(max(p, 1e-3)))
                rows.append({"target": target, "ratio": r, "pooling": within or "model",
                             "pearson": m["pearson"], "relative_accuracy": m["relative_accuracy"],
                             "coverage": m["coverage"],
                             "abs_log_error": float(np.mean(np.abs(np.log(t["predicted"] / t["actual"])))),
                             "log_p_actual_best": float(np.log(max(m["p_best_of_actual_best"], 1e-3))),
                             "r_hat_max": m["r_hat_max"], "ess_bulk_min": m["ess_bulk_min"],
                             "divergences": m["divergences"], "seconds": round(time.time() - t0, 1), **taus})
                print(pd.DataFrame(rows[-1:]).round(4).to_string(index=False, header=len(rows) == 1), flush=True)
                pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows)
    cols = ["pearson", "relative_accuracy", "coverage", "abs_log_error", "log_p_actual_best", "r_hat_max",
            "ess_bulk_min", "divergences", "seconds"] + [f"log_p_best_tau_{t:g}" for t in TAUS]
    print("\nmean over the fits:")
    print(table.groupby("pooling")[cols].mean().round(4).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
