"""The nested backtest fits of the learnt-discrepancy population with the built-in Chinchilla spec (floor
``E = f min(loss)``), refitted one by one with one sampler setting changed; per fit the worst R-hat, the
smallest bulk ESS, divergences and the four variables with the highest R-hat.

    python benchmarks/floor_nested_convergence.py OUT.csv [--variant base|ta0.97|nowhiten|d2000] [--seed-shift 0]

The fits are those of ``discrepancy_population.py collect --draws 1000 --chains 4`` (same training rows, the
runs beyond the 85% and 70% quantiles of C held out, same seeds unless shifted): 17 data sets x 2 = 34 fits.
``ta0.97``: target_accept 0.97; ``nowhiten``: no Laplace whitening; ``d2000``: 2000 draws (tuning 1000).
Results: ``benchmarks/results/floor_nested_convergence.csv``; docs/validation.md, "A learnt discrepancy".
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    import discrepancy_population as dp

    from bayes_scaling.analysis.backtest import _nested_tables, fit_diagnostics, make_splits
    from bayes_scaling.inference.fit import _as_spec, fit
    from bayes_scaling.inference.mcmc_stats import diagnostics_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--variant", default="base", choices=["base", "ta0.97", "nowhiten", "d2000"])
    ap.add_argument("--seed-shift", type=int, default=0)
    args = ap.parse_args(argv)
    kw: dict = {"draws": 1000, "tune": 1000, "chains": 4, "whiten": "auto"}
    kw.update({"ta0.97": {"target_accept": 0.97}, "nowhiten": {"whiten": "none"}, "d2000": {"draws": 2000}}
              .get(args.variant, {}))
    rows = []
    for name, s in dp.data_sets().items():
        table = s["table"].reset_index(drop=True)
        (split,) = make_splits(table, s["holdout"])
        train, test = table.iloc[split.train], table.iloc[split.test]
        for k, (tr, _) in enumerate(_nested_tables(train, test, "C", (0.15, 0.3))):
            t0 = time.time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = fit(tr, _as_spec(s["law"]), warn=False, seed=1 + 10 + k + args.seed_shift, progressbar=False,
                        log_likelihood=False, **kw)
            d = fit_diagnostics(f)
            post = f.tree["posterior"].to_dataset()
            names = [v for v in [*f.parameter_names(), "E_fraction"] if v in post]
            rh = {v: float(np.max(np.atleast_1d(t["r_hat"]))) for v, t in diagnostics_table(post, names).items()}
            worst = sorted(rh, key=rh.get, reverse=True)[:4]
            rows.append({"variant": args.variant, "seed_shift": args.seed_shift, "set": name, "half": s["half"],
                         "fit": f"nested {85 if k == 0 else 70}%", "runs": len(tr), "rhat_max": round(d["rhat_max"], 4),
                         "ess_bulk_min": round(d["ess_bulk_min"], 1), "divergences": int(d["divergences"]),
                         "seconds": round(time.time() - t0, 1),
                         "worst": " ".join(f"{v}:{rh[v]:.4f}" for v in worst)})
            print(rows[-1], flush=True)
    out = pd.DataFrame(rows)
    if args.out.exists():
        out = pd.concat([pd.read_csv(args.out), out], ignore_index=True)
    out.to_csv(args.out, index=False)
    print(f"{args.variant}: {(out['variant'].eq(args.variant) & out['seed_shift'].eq(args.seed_shift) & out['rhat_max'].gt(1.01)).sum()} of "
          f"{len(rows)} fits with R-hat > 1.01")
    return 0


if __name__ == "__main__":
    sys.exit(main())
