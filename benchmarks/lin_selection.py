"""Lin et al. (2024) Table 1 with a Bayesian column: choose the model to fine-tune from small runs.

    python benchmarks/lin_selection.py OUT [--targets flan wmt19 gigaword] [--ratios 8 16 ...] [--draws 1000]
                                           [--tune 1000] [--chains 4] [--window power_phase|all] [--published PATH]
    python benchmarks/lin_selection.py OUT --combine     # OUT/table1.csv from the per-target files

For each target and budget ratio 1/r, ``bs.analysis.select_model`` fits the runs with 0 < D <= 1,638,400 / r
(by default each model's power-phase runs, as Lin et al.'s AtS chooses them, with the partially pooled power law
``bs.analysis.selection.power_phase_spec``; ``--window all``: every run, the whole rectified law) and predicts
each model's loss at 1,638,400. In the same run: Lin et al.'s AtS recomputed from the data
(``baseline_selection(..., "ats")``), their other baselines, and their published Table 1 values. The sampler
settings default to ``bs.fit``'s (1000 draws x 4 chains after 1000 tuning steps); each row records the fit's max
R-hat, min bulk ESS, divergences and ``converged`` (R-hat <= 1.01, no divergence). Writes OUT/<target>_<r>.csv
(per model: P(best), predicted loss, predictive interval, actual), OUT/table1_<target>.csv (Pearson correlation
and relative accuracy beside AtS and the baselines) and, with --combine, OUT/table1.csv (and a summary of Bayes
minus published AtS). Uses the bundled data (offline); the published values come from
../shared/data/lin2024_finetuning/published_selection_table1.tex when it is there.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO.parent / "shared" / "data" / "lin2024_finetuning" / "published_selection_table1.tex"


def main(argv=None) -> int:
    import bayes_scaling as bs
    from bayes_scaling.analysis.selection import LIN_RATIOS, lin_table1

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--targets", nargs="+", default=["flan", "wmt19", "gigaword"])
    ap.add_argument("--ratios", nargs="+", type=int, default=list(LIN_RATIOS))
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--published", default=str(PUBLISHED))
    ap.add_argument("--window", default="power_phase", choices=["power_phase", "all"])
    ap.add_argument("--combine", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.combine:
        parts = [pd.read_csv(p) for p in sorted(out.glob("table1_*.csv"))]
        table = pd.concat(parts, ignore_index=True)
        table.to_csv(out / "table1.csv", index=False)
        print(table.to_string(index=False))
        _summary(table)
        return 0
    published = args.published if Path(args.published).is_file() else None
    data = bs.datasets.load_lin()
    for t in args.targets:
        t0 = time.time()
        table, sels = lin_table1(data, targets=[t], ratios=args.ratios, published=published, seed=args.seed,
                                 draws=args.draws, tune=args.tune, chains=args.chains, warn=False,
                                 window=args.window)
        diag = {}
        for (tt, r), sel in sels.items():
            sel.table.to_csv(out / f"{tt}_{r}.csv", index=False)
            d = sel.fit.diagnostics
            diag[r] = {"max_rhat": d.r_hat_max, "min_ess_bulk": d.ess_bulk_min,
                       "divergences": d.divergences, "coverage": sel.metrics["coverage"],
                       "p_best_of_actual_best": sel.metrics["p_best_of_actual_best"],
                       "p_best_discrepancy_of_actual_best": sel.metrics["p_best_discrepancy_of_actual_best"],
                       "p_best_discrepancy_selected": float(sel.table.loc[0, "p_best_discrepancy"]),
                       "p_best_law_selected": float(sel.table.loc[0, "p_best"])}
        table = table.join(pd.DataFrame(diag).T, on="ratio")
        table.to_csv(out / f"table1_{t}.csv", index=False)
        table.insert(3, "seconds", (time.time() - t0) / len(args.ratios))
        print(f"{t}: {time.time() - t0:.0f} s")
        print(table.to_string(index=False), flush=True)
        _summary(table)
    return 0


def _summary(table: pd.DataFrame) -> None:
    """Per target and metric: Bayes minus AtS (recomputed, and published when there), worst and mean."""
    cols = [c for c in ("ats", "published_ats") if c in table.columns]
    for (t, metric), g in table.groupby(["target", "metric"], sort=False):
        parts = [f"{c}: min {(g['bayes'] - g[c]).min():+.3f}, mean {(g['bayes'] - g[c]).mean():+.3f}" for c in cols]
        print(f"{t} {metric}: Bayes minus " + "; ".join(parts) + f"; max R-hat {g['max_rhat'].max():.4f}, "
              f"min ESS {g['min_ess_bulk'].min():.0f}, divergences {int(g['divergences'].sum())}")


if __name__ == "__main__":
    raise SystemExit(main())
