"""Several laws, one prediction, on real data (../shared/data): the stack against each law and least squares.

    python benchmarks/stack_real.py OUT [--only porian|chinchilla|muennighoff] [--half decide|confirm|all]
                                        [--draws 300] [--configs K] [--tau TAU]

Splits, fixed before any fit (largest budgets held out; the laws see only the runs below):

- Porian et al. (2024) IsoFLOP runs, per configuration (15; rows with fewer tokens than parameters left out):
  fit on budgets <= 6.4e18 FLOPs, hold out 1.28e19 and 2.56e19. Laws: ``chinchilla``, ``kaplan``. The decide half:
  the configurations at even positions of their sorted list (8), the confirm half: odd positions (7).
- Epoch AI's digitised Chinchilla runs: hold out C > 1e21 (decide half). Laws: ``chinchilla``, ``kaplan``.
- Muennighoff et al. (2023) contour grid (C4; runs of at most 4 epochs and 1e9+ tokens; ``U_D`` the unique
  tokens): hold out C > 1e20 (confirm half). Laws: ``chinchilla``, ``kaplan``, ``data_constrained``.

Per split: ``bs.stack`` on the training runs (leave-future-out along C, 3 cuts, 30% of the runs scored; a fit
that has not converged, R-hat > 1.01 or divergences, run again with safer settings) with stacking and pseudo-BMA+
weights (the same LFO scores and fits), each either leaving out a law with a fit that still has not converged
(``stack``, ``stack(pseudo-bma+)``: the default), or only one whose R-hat is above 1.05 (``..., rhat 1.05``), or
weighing every law (``..., all laws``); each law alone (its fit on all training runs), least
squares (``lsq``: the multi-start point fit of the first law on log loss, with a log-normal predictive of the
training residuals' sd, so that it has intervals and a log score) and Epoch's Huber fit (median only). Scores of
the held-out runs as the backtests': median relative error, 50/90% coverage, mean log predictive density of
log(loss), CRPS of log(loss). Writes OUT/points.csv, OUT/weights.csv, OUT/summary.csv.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from backtest_real import DATA, chinchilla, porian  # noqa: E402


def muennighoff() -> pd.DataFrame:
    """The contour grid as backtest_real's, with the unique tokens ``U_D`` the data-constrained law needs."""
    c = pd.read_csv(DATA / "muennighoff2023_datablations" / "datablations_contour_losses.csv")
    c = c[(c["epochs"] <= 4) & (c["token_num"] >= 1e9)]
    return pd.DataFrame({"N": c["num_params"], "D": c["token_num"], "U_D": c["tokens_per_epoch"],
                         "C": c["flops"], "loss": c["openLM_loss"]}).drop_duplicates().reset_index(drop=True)


def splits(only: str | None, half: str, configs: int | None) -> list[dict]:
    out = []
    if only in (None, "porian"):
        for i, (name, g) in enumerate(sorted(porian().items())[:configs]):
            out.append({"dataset": "porian", "split": name, "half": "decide" if i % 2 == 0 else "confirm",
                        "runs": g, "holdout": 6.4e18, "laws": ["chinchilla", "kaplan"]})
    if only in (None, "chinchilla"):
        out.append({"dataset": "chinchilla_epoch", "split": "C > 1e21", "half": "decide", "runs": chinchilla(),
                    "holdout": 1e21, "laws": ["chinchilla", "kaplan"]})
    if only in (None, "muennighoff"):
        out.append({"dataset": "muennighoff", "split": "C > 1e20", "half": "confirm", "runs": muennighoff(),
                    "holdout": 1e20, "laws": ["chinchilla", "kaplan", "data_constrained"]})
    return [s for s in out if half == "all" or s["half"] == half]


def lsq_scores(spec, train: pd.DataFrame, test: pd.DataFrame, seed: int, S: int = 2000) -> pd.DataFrame:
    """Least squares with a predictive: log y ~ Normal(log f(x; theta_lsq), s^2), s the training residuals' RMS."""
    from bayes_scaling.analysis.backtest import (
        _point_predict,
        crps_draws,
        interval_scores,
        log_density_draws,
        lsq_fit,
    )

    vals = lsq_fit(spec, train, seed=seed)
    y_tr = train["loss"].to_numpy(dtype=float)
    s = float(np.sqrt(np.mean((np.log(_point_predict(spec, vals, train)) - np.log(y_tr)) ** 2)))
    mu = np.log(_point_predict(spec, vals, test))
    y = test["loss"].to_numpy(dtype=float)
    logd = mu[None, :] + s * np.random.default_rng(seed).standard_normal((S, len(y)))
    sc = interval_scores(np.exp(logd), y, (0.5, 0.9))
    f = pd.DataFrame({"method": "lsq", "row": np.arange(len(y)), "loss": y, "median": np.exp(mu),
                      "rel_error": np.abs(np.exp(mu) - y) / y, "lpd": log_density_draws(logd, np.log(y)),
                      "crps": crps_draws(logd, np.log(y))})
    for lv in ("50", "90"):
        f[f"cover{lv}"] = sc[f"cover{lv}"].astype(float)
    return f


#: (weights, the R-hat above which a law is left out, the label): the stack's variants on one set of fits
VARIANTS = [("stacking", 1.01, ""), ("stacking", 1.05, "rhat 1.05"), ("stacking", np.inf, "all laws"),
            ("pseudo-bma+", 1.01, "pseudo-bma+"), ("pseudo-bma+", 1.05, "pseudo-bma+, rhat 1.05"),
            ("pseudo-bma+", np.inf, "pseudo-bma+, all laws")]


def variant(st, method: str, limit: float, seed: int):
    """The stack with other weights on the same LFO scores and fits: ``method``, leaving out a law with a fit
    whose R-hat (after the refit) is above ``limit`` or that has divergences (``limit`` inf: none; none
    converged: all weighed)."""
    from bayes_scaling.analysis.stacking import _weights

    d = st.diagnostics
    bad = {k for k in st.laws if np.isfinite(limit)
           and ((d.loc[d["law"] == k, "rhat_max"] > limit) | (d.loc[d["law"] == k, "divergences"] > 0)).any()}
    keep = np.array([k not in bad for k in st.laws])
    if not keep.any():
        keep[:] = True
    w = _weights(st.lpd, method, seed, keep)
    return dataclasses.replace(st, weights=pd.Series(w, index=st.laws, name="weight"),
                               info={**st.info, "method": method},
                               excluded={k: "left out" for k in st.laws if not keep[st.laws.index(k)]})


def run_split(sp: dict, draws: int, seed: int = 1, tau: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    from bayes_scaling.analysis.backtest import _point_predict, huber_fit
    from bayes_scaling.analysis.stacking import stack
    from bayes_scaling.laws.spec import builtin_spec

    runs = sp["runs"]
    train = runs[runs["C"] <= sp["holdout"]].reset_index(drop=True)
    test = runs[runs["C"] > sp["holdout"]].reset_index(drop=True)
    st = stack(train, sp["laws"], order_by="C", cuts=3, scored=0.3, seed=seed, draws=draws, tune=draws, chains=2,
               discrepancy=tau)
    a = st.score(test, seed=seed)
    frames = [a]
    for method, limit, tag in VARIANTS:
        if (method, limit) == ("stacking", 1.01):
            continue                                                      # st itself
        v = variant(st, method, limit, seed)
        b = v.score(test, seed=seed)
        frames.append(b[b["method"] == "stack"].assign(method=f"stack({tag})" if tag else "stack"))
    spec = builtin_spec(sp["laws"][0])
    frames.append(lsq_scores(spec, train, test, seed))
    hub = _point_predict(spec, huber_fit(spec, train), test)
    y = test["loss"].to_numpy(dtype=float)
    frames.append(pd.DataFrame({"method": "huber", "row": np.arange(len(y)), "loss": y, "median": hub,
                                "rel_error": np.abs(hub - y) / y}))
    pts = pd.concat(frames, ignore_index=True).assign(dataset=sp["dataset"], split=sp["split"], half=sp["half"])
    t = st.table.assign(dataset=sp["dataset"], split=sp["split"], half=sp["half"], n_train=len(train),
                        n_test=len(test))
    return pts, t


def summarise(pts: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (half, method), g in pts.groupby(["half", "method"]):
        rows.append({"half": half, "method": method, "n_test": len(g), "median_rel_error": g["rel_error"].median(),
                     "mean_rel_error": g["rel_error"].mean(), "coverage50": g["cover50"].mean(),
                     "coverage90": g["cover90"].mean(), "lpd": g["lpd"].mean(), "crps": g["crps"].mean()})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--only", choices=["porian", "chinchilla", "muennighoff"], default=None)
    ap.add_argument("--half", choices=["decide", "confirm", "all"], default="all")
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--configs", type=int, default=None, help="first K Porian configurations only")
    ap.add_argument("--tau", type=float, default=None, help="the predictions' discrepancy (default: each spec's)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    all_pts, all_w = [], []
    for sp in splits(args.only, args.half, args.configs):
        t0 = time.time()
        try:
            pts, w = run_split(sp, args.draws, tau=args.tau)
        except Exception as exc:  # noqa: BLE001 - one split's failure is reported, the others still run
            print(f"{sp['dataset']} {sp['split']} ({sp['half']}): FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        all_pts.append(pts)
        all_w.append(w.assign(seconds=time.time() - t0))
        r = pts.groupby("method")[["rel_error", "cover90", "lpd", "crps"]].agg(
            {"rel_error": "median", "cover90": "mean", "lpd": "mean", "crps": "mean"})
        wt = ", ".join(f"{k} {v:.2f}" for k, v in zip(w["law"], w["weight"], strict=True) if k != "stack")
        print(f"{sp['dataset']} {sp['split']} ({sp['half']}): weights {wt}; "
              + "; ".join(f"{m}: err {r.loc[m, 'rel_error']:.4f} cov90 {r.loc[m, 'cover90']:.2f} "
                          f"lpd {r.loc[m, 'lpd']:.3f} crps {r.loc[m, 'crps']:.4f}" for m in r.index)
              + f" ({time.time() - t0:.0f} s; worst R-hat {w['rhat_max'].max():.3f})", flush=True)
        pd.concat(all_pts).to_csv(out / "points.csv", index=False)       # after every split: partial results
        pd.concat(all_w).to_csv(out / "weights.csv", index=False)
    summ = summarise(pd.concat(all_pts))
    summ.to_csv(out / "summary.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summ.to_string(index=False, float_format="%.4g"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
