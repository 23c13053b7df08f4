"""Backtests on the real data in ../shared/data (issue 12): held-out coverage of the law's predictive intervals.

    python benchmarks/backtest_real.py OUT [--only porian|chinchilla] [--draws 400] [--configs K]

Porian et al. (2024) IsoFLOP runs, per configuration (15): fit on budgets <= 6.4e18 FLOPs, hold out the larger
budgets (1.28e19, 2.56e19); rows with fewer tokens than parameters (early-training points) are left out.
Epoch AI's digitised Chinchilla runs: hold out the runs above 1e21 FLOPs. Muennighoff et al. (2023) contour grid
(C4; runs of at most 4 epochs and 1e9+ tokens): hold out the runs above 1e20 FLOPs. Lin et al. (2024)
fine-tuning curves (the bundled copy; per target, 30 pre-trained models): the ``rectified_finetuning`` law, the
three largest fine-tuning sizes (409,600 to 1,638,400 examples) held out. Candidates (issue 12, item 2):
``chinchilla`` (the default spec: Student-t noise), ``budget_offset`` (a random multiplicative offset per budget,
``o[budget]``, partially pooled; a new budget gets a draw from the population) and ``rectified`` (Lin's data).
Methods: ``bayes`` (the default predictions, with the spec's discrepancy), ``bayes(no discrepancy)``,
``bayes+discrepancy`` (nested ``tau``), ``bayes+discrepancy(pooled)`` (``tau`` pooled over the nested backtests of
Porian's configurations, or of Lin's targets), ``lsq``, ``huber``. Writes OUT/points_*.csv, OUT/per_config.csv and
OUT/summary.csv.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
KEYS = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_type"]

BUDGET_OFFSET = {
    "law": {"name": "chinchilla_budget_offset", "formula": "o * (E + A / N**alpha_N + B / D**alpha_D)",
            "target": "loss"},
    "likelihood": {"family": "student_t", "scale": "log"},
    "parameters": {"o": {"by": "budget", "median": 1.0, "sigma": 0.05, "spread": 0.01},
                   "E": {}, "A": {}, "B": {}, "alpha_N": {}, "alpha_D": {}},
}


def porian() -> dict[str, pd.DataFrame]:
    d = pd.read_csv(DATA / "porian2024_isoflops" / "isoflop_points.csv")
    d = d.rename(columns={"D_tokens": "D", "flops": "C"})
    d = d[d["D"] >= d["N"]]
    d["budget"] = d["C"].map(lambda c: f"{c:.3g}")
    return {"/".join(map(str, k)): g[["N", "D", "C", "budget", "loss"]].reset_index(drop=True)
            for k, g in d.groupby(KEYS)}


def chinchilla() -> pd.DataFrame:
    c = pd.read_csv(DATA / "chinchilla_epoch_svg_extracted.csv")
    out = pd.DataFrame({"N": c["Model Size"], "C": c["Training FLOP"], "loss": c["loss"]})
    out["D"] = out["C"] / (6 * out["N"])
    out = out.sort_values("loss").iloc[:-5]          # Epoch dropped the five highest-loss runs
    return out.reset_index(drop=True)


def muennighoff() -> pd.DataFrame:
    """The data-constrained contour grid (C4), runs of at most 4 epochs (where repeated data is nearly as good
    as new) and at least 1e9 tokens: the Chinchilla law with D = tokens seen."""
    c = pd.read_csv(DATA / "muennighoff2023_datablations" / "datablations_contour_losses.csv")
    c = c[(c["epochs"] <= 4) & (c["token_num"] >= 1e9)]
    return pd.DataFrame({"N": c["num_params"], "D": c["token_num"], "C": c["flops"],
                         "loss": c["openLM_loss"]}).drop_duplicates().reset_index(drop=True)


def lin() -> dict[str, pd.DataFrame]:
    """Lin et al. (2024) fine-tuning curves (the bundled copy of ../shared/data/lin2024_finetuning): per target,
    30 pre-trained models, D = 0 (zero-shot) .. 1,638,400 examples; the rectified law, partially pooled by model."""
    import bayes_scaling as bs

    d = bs.datasets.load_lin()
    return {t: g[["model", "D", "loss"]].reset_index(drop=True) for t, g in d.groupby("target")}


def main(argv=None) -> int:
    from bayes_scaling.analysis.backtest import backtest, pooled_tau

    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--only", choices=["porian", "chinchilla", "muennighoff", "lin"], default=None)
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--configs", type=int, default=None, help="first K Porian configurations only")
    ap.add_argument("--candidates", default="chinchilla,budget_offset,rectified")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cands = {"chinchilla": "chinchilla", "budget_offset": BUDGET_OFFSET, "rectified": "rectified_finetuning"}
    cands = {k: v for k, v in cands.items() if k in args.candidates.split(",")}
    jobs = []
    if args.only in (None, "porian"):
        for name, g in list(porian().items())[: args.configs]:
            jobs += [("porian", name, g, "C > 6.4e18", c) for c in cands if c != "rectified"]
    if args.only in (None, "chinchilla"):
        jobs += [("chinchilla_epoch", "all", chinchilla(), "C > 1e21", c) for c in cands if c == "chinchilla"]
    if args.only in (None, "muennighoff"):
        jobs += [("muennighoff", "c4 contour", muennighoff(), "C > 1e20", c) for c in cands if c == "chinchilla"]
    if args.only in (None, "lin"):
        # hold out the three largest fine-tuning sizes (409,600 .. 1,638,400 examples: up to 0.9 decades beyond)
        jobs += [("lin", target, g, "D > 204800", c) for target, g in lin().items() for c in cands if c == "rectified"]
    rows, done = [], []
    for ds, name, g, holdout, cand in jobs:
        t = time.time()
        res = backtest(g, cands[cand], holdout, seed=1, draws=args.draws, tune=args.draws, chains=2)
        done.append((ds, name, cand, res, time.time() - t))
        r = res.table.set_index("method")
        print(f"{ds} {name} {cand}: cov90 {r.loc['bayes', 'coverage90']:.2f} (default tau) / without "
              f"{r.loc['bayes(no discrepancy)', 'coverage90']:.2f} / nested "
              f"{r.loc['bayes+discrepancy', 'coverage90']:.2f}; err {r.loc['bayes', 'median_rel_error']:.4f} "
              f"(huber {r.loc['huber', 'median_rel_error']:.4f}); tau {r.loc['bayes+discrepancy', 'tau']:.3g} "
              f"(R-hat {r.loc['bayes', 'rhat_max']:.3f}, bulk ESS {r.loc['bayes', 'ess_bulk_min']:.0f}, "
              f"{r.loc['bayes', 'divergences']:.0f} divergences; {time.time() - t:.0f} s)", flush=True)
    # one tau pooled over the nested backtests (training rows only) of all Porian configurations of a candidate
    for cand in cands:
        pr = [res for ds, _, c, res, _ in done if ds in ("porian", "lin") and c == cand]
        tau = pooled_tau(pr) if pr else None
        print(f"pooled tau ({cand}, nested backtests of Porian's configurations / Lin's targets): {tau}", flush=True)
        for i, (ds, name, c, res, sec) in enumerate(done):
            if c == cand and tau is not None:
                done[i] = (ds, name, c, res.rescore(tau, "bayes+discrepancy(pooled)"), sec)
    for ds, name, cand, res, sec in done:
        pts = res.points.assign(dataset=ds, config=name, candidate=cand)
        pts.to_csv(out / f"points_{ds}_{cand}_{name.replace('/', '-')}.csv", index=False)
        rows.append(res.table.assign(dataset=ds, config=name, candidate=cand, seconds=sec))
    per = pd.concat(rows)
    allpts = pd.concat([pd.read_csv(p) for p in sorted(out.glob("points_*.csv"))])
    summ = []
    for (ds, cand, method), g in allpts.groupby(["dataset", "candidate", "method"]):
        r = {"dataset": ds, "candidate": cand, "method": method, "n_test": len(g),
             "median_rel_error": g["rel_error"].median()}
        for lv in ("50", "80", "90", "95"):
            r[f"coverage{lv}"] = g[f"cover{lv}"].mean()
            r[f"width{lv}"] = g[f"width{lv}"].median()
        r["lpd"], r["crps"] = g["lpd"].mean(), g["crps"].mean()
        if "rhat_max" in g:        # the fits' convergence (bayes methods): worst R-hat and ESS, all divergences
            fits = g.groupby(["config", "split"])[["rhat_max", "ess_bulk_min", "divergences"]].first()
            r["rhat_max"], r["ess_bulk_min"] = fits["rhat_max"].max(), fits["ess_bulk_min"].min()
            r["divergences"] = fits["divergences"].sum() if fits["divergences"].notna().any() else float("nan")
        summ.append(r)
    summ = pd.DataFrame(summ)
    summ.attrs["machine"] = f"{platform.machine()} {platform.processor()} Python {sys.version.split()[0]}"
    summ.to_csv(out / "summary.csv", index=False)
    per.to_csv(out / "per_config.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summ.to_string(index=False, float_format="%.4g"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
