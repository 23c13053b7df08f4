"""How much of the predictive spread at the held-out runs is observation noise, parameter uncertainty, discrepancy.

    python benchmarks/noise_share.py CACHE OUT [--half decide] [--draws 500 --chains 2]

Per data set of ``benchmarks/discrepancy_splits.toml`` (the ``--half``): the law refitted on the split's training
runs with each noise model -- the Chinchilla floor spec (``benchmarks/chinchilla_floor.toml``: Student-t, nu ~
Gamma(2, 0.1)), the same with nu ~ Gamma(8, 4) (``chinchilla_robust``'s, nu near 2), and the floor spec with the
noise growing with the distance from the budget's optimum (``benchmarks/chinchilla_floor_slope.toml``). At each
held-out run the log-scale sds (:func:`bayes_scaling.laws.discrepancy.variance_split`, 68% half-widths): the
parameters' ``s_p`` (the law's draws, ``kind="mean"``), the noise's ``s_n`` (observation minus mean, same
draws), and the learnt discrepancy's ``s_d`` (the drift with its transfer, leave-one-data-set-out from the floor
spec's collected sets ``CACHE``: ``sqrt(slope_sd**2 + tau_e**2) d``); and ``resid``, the held-out run's residual
around the drift-corrected median of the collected floor fit. Writes ``OUT/noise_share_points.csv`` and
``OUT/noise_share_summary.csv``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

SPECS = {"floor (nu ~ Gamma(2, 0.1))": "chinchilla_floor.toml",
         "floor, nu near 2 (chinchilla_robust's Gamma(8, 4))": "robust",
         "floor, noise growing off the optimum (sigma_slope)": "chinchilla_floor_slope.toml"}


def _spec(key: str):
    from bayes_scaling.laws.spec import LawSpec

    if key == "robust":
        d = LawSpec.from_toml(REPO / "benchmarks" / "chinchilla_floor.toml").to_dict()
        d["law"]["name"] = "chinchilla_floor_robust"
        d["likelihood"].update(nu_alpha=8.0, nu_beta=4.0)
        return LawSpec.from_dict(d)
    return LawSpec.from_toml(REPO / "benchmarks" / key)


def main(argv=None) -> int:
    import discrepancy_population as dp

    from bayes_scaling.analysis.backtest import make_splits
    from bayes_scaling.inference.fit import fit
    from bayes_scaling.laws.discrepancy import robust_sd, transfer_slope

    ap = argparse.ArgumentParser()
    ap.add_argument("cache")
    ap.add_argument("out")
    ap.add_argument("--half", default="decide")
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    collected = dp.load(Path(args.cache))
    everything = dp.data_sets()
    rows = []
    for name, s in everything.items():
        if s["half"] != args.half:
            continue
        r = collected[name]
        bm, bs, _, te = dp.drift_of(collected, name)
        m, sd = transfer_slope(bm, bs, **dp.transfer_of(collected, name))
        med = np.median(r["log_pred"].astype(float), axis=0) + m * r["dist"]
        resid = np.log(r["y"]) - med
        s_d = np.hypot(sd, te) * r["dist"]
        table = s["table"].reset_index(drop=True)
        table = table.assign(**{dp.OPT_COLUMN: dp.optimum_distance(table, s["holdout"], "chinchilla")})
        (split,) = make_splits(table, s["holdout"])
        train, test = table.iloc[split.train], table.iloc[split.test].reset_index(drop=True)
        for label, key in SPECS.items():
            f = fit(train, _spec(key), seed=1, draws=args.draws, tune=args.draws, chains=args.chains, warn=False)
            kw = dict(seed=3, discrepancy=0)
            mean = np.log(f.predict(test, kind="mean", **kw)["loss"].values.reshape(-1, len(test)))
            obs = np.log(f.predict(test, kind="observation", **kw)["loss"].values.reshape(-1, len(test)))
            sp, sn = robust_sd(mean), robust_sd(obs - mean)
            post = f.posterior
            for i in range(len(test)):
                rows.append({"set": name, "spec": label, "run": i, "opt_dist": test[dp.OPT_COLUMN].iloc[i],
                             "dist": r["dist"][i], "s_p": sp[i], "s_n": sn[i], "s_d": s_d[i], "resid": resid[i],
                             "nu_median": float(post["nu"].median()) if "nu" in post else np.nan,
                             "slope_median": float(post["sigma_slope"].median()) if "sigma_slope" in post
                             else np.nan})
            print(name, label, f"s_p {np.median(sp):.4f} s_n {np.median(sn):.4f} s_d {np.median(s_d):.4f} "
                  f"|resid| {np.median(np.abs(resid)):.4f}", flush=True)
    pts = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pts.to_csv(out / "noise_share_points.csv", index=False)
    tot = pts["s_p"] ** 2 + pts["s_n"] ** 2 + pts["s_d"] ** 2
    pts = pts.assign(share_p=pts["s_p"] ** 2 / tot, share_n=pts["s_n"] ** 2 / tot, share_d=pts["s_d"] ** 2 / tot,
                     s_total=np.sqrt(tot), abs_resid=pts["resid"].abs())
    summ = pts.groupby("spec", sort=False).agg(
        runs=("run", "size"), s_p=("s_p", "median"), s_n=("s_n", "median"), s_d=("s_d", "median"),
        share_p=("share_p", "mean"), share_n=("share_n", "mean"), share_d=("share_d", "mean"),
        s_total=("s_total", "median"), abs_resid=("abs_resid", "median"),
        nu_median=("nu_median", "median"), slope_median=("slope_median", "median")).reset_index()
    summ.to_csv(out / "noise_share_summary.csv", index=False)
    per = pts.groupby(["set", "spec"], sort=False).agg(s_p=("s_p", "median"), s_n=("s_n", "median"),
                                                        s_d=("s_d", "median"), abs_resid=("abs_resid", "median"),
                                                        slope=("slope_median", "first")).reset_index()
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 200):
        print(summ.to_string(index=False, float_format="%.4g"))
        print(per.to_string(index=False, float_format="%.4g"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
