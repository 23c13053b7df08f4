"""Porian et al.'s compute-optimal exponent ``a`` (N_opt ~ C**a) for their 15 configurations, by two routes
(issue 11), beside their bootstrap intervals (``published_fits.csv``); and why a naive Chinchilla-law fit of the
tuned RefinedWeb configuration disagrees with them.

    python benchmarks/compute_optimal_exponent.py OUT [--draws 1000] [--configs K] [--only table|why]

- route 2, IsoFLOP minima (:func:`bs.analysis.compute_optimal_exponent`): ``joint`` (parabolas and the power law
  in one model) and ``drawwise`` (a line through each posterior draw of the minima);
- route 1, a fitted loss law (the ``chinchilla`` spec, :func:`bs.analysis.law_exponent`): on all rows ("naive")
  and on the rows with at least as many tokens as parameters (``D >= N``: early-training points left out).

``why`` refits the tuned RefinedWeb configuration (validation loss) with one change at a time. Writes
OUT/table.csv, OUT/why.csv; prints both.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "porian2024_isoflops"
KEYS = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_type"]
TUNED_RW = ("rw", "tuned", "short", "const", "standard", "val")


def configurations() -> dict[tuple, pd.DataFrame]:
    d = pd.read_csv(DATA / "isoflop_points.csv").rename(columns={"D_tokens": "D", "flops": "C"})
    return {k: g[["N", "D", "C", "loss"]].reset_index(drop=True) for k, g in d.groupby(KEYS)}


def published() -> pd.DataFrame:
    p = pd.read_csv(DATA / "published_fits.csv")
    return p.set_index(KEYS)[["n_exponent_point", "n_exponent_boot_p2.5", "n_exponent_boot_p97.5"]]


def _interval(draws, prob=0.95) -> tuple[float, float, float]:
    x = np.asarray(draws).ravel()
    lo, med, hi = np.quantile(x, [(1 - prob) / 2, 0.5, (1 + prob) / 2])
    return float(med), float(lo), float(hi)


def route2(runs, method, draws, seed, **kw) -> dict:
    import bayes_scaling as bs

    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bs.analysis.compute_optimal_exponent(runs, method=method, seed=seed, draws=draws, tune=draws,
                                                   chains=2, progressbar=False, warn=False,
                                                   **{"on_sparse": "drop", **kw})
    e = res.exponent(0.95)
    dg = res.diagnostics
    notes = "; ".join(sorted({str(w.message)[:120] for w in caught if "left out" in str(w.message)}))
    notes = notes.replace("isoflop: ", "")
    return {"a": e["median"], "lo": e["lo"], "hi": e["hi"], "budgets": len(res.budgets),
            "runs": int(res.runs["used"].sum()), "divergences": dg.divergences, "ess_bulk": dg.ess_bulk_min,
            "r_hat": dg.r_hat_max, "seconds": time.perf_counter() - t, "notes": notes}


def route1(runs, draws, seed, spec="chinchilla") -> dict:
    import bayes_scaling as bs

    t = time.perf_counter()
    fit = bs.fit(runs, spec, seed=seed, draws=draws, tune=draws, chains=2, progressbar=False, warn=False)
    ex = bs.analysis.law_exponent(fit)
    a, lo, hi = _interval(ex["a"].values)
    dg = fit.diagnostics
    return {"a": a, "lo": lo, "hi": hi, "runs": len(runs), "divergences": dg.divergences, "ess_bulk": dg.ess_bulk_min,
            "r_hat": dg.r_hat_max, "seconds": time.perf_counter() - t,
            **{f"med_{p}": float(fit.posterior[p].median()) for p in ("E", "A", "B", "alpha_N", "alpha_D")}}


def table(out: Path, draws: int, configs: int | None) -> pd.DataFrame:
    pub = published()
    rows = []
    for i, (key, runs) in enumerate(list(configurations().items())[:configs]):
        row = dict(zip(KEYS, key, strict=True))
        p = pub.loc[key]
        row.update(published=p["n_exponent_point"], pub_lo=p["n_exponent_boot_p2.5"], pub_hi=p["n_exponent_boot_p97.5"])
        for name, res in (("joint", route2(runs, "joint", draws, i)), ("drawwise", route2(runs, "drawwise", draws, i)),
                          ("law_all", route1(runs, draws, i)),
                          ("law_DgeN", route1(runs[runs["D"] >= runs["N"]].reset_index(drop=True), draws, i))):
            row.update({f"{name}_{k}": v for k, v in res.items()})
        rows.append(row)
        print("/".join(key), {k: round(v, 3) for k, v in row.items() if k.endswith(("_a", "published"))},
              flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "table.csv", index=False)
    return df


def why(out: Path, draws: int) -> pd.DataFrame:
    """The tuned RefinedWeb configuration, one change at a time."""
    import bayes_scaling as bs

    runs = configurations()[TUNED_RW]
    late = runs[runs["D"] >= runs["N"]].reset_index(drop=True)
    window, _ = bs.analysis.isoflop_slices(runs)
    near = window[window["used"]][["N", "D", "C", "loss"]].reset_index(drop=True)
    normal = bs.LawSpec.from_dict({"law": {"name": "chinchilla_normal", "formula": "E + A / N**alpha_N + B / D**alpha_D",
                                           "target": "loss"}, "likelihood": {"family": "normal", "scale": "log"},
                                   "parameters": {p: {} for p in ("E", "A", "B", "alpha_N", "alpha_D")}})
    cases = [
        ("route 1", "all 121 runs (naive)", lambda: route1(runs, draws, 1)),
        ("route 1", "D >= N (early-training points out)", lambda: route1(late, draws, 1)),
        ("route 1", "D >= N, C >= 1e17", lambda: route1(late[late["C"] >= 1e17].reset_index(drop=True), draws, 1)),
        ("route 1", "D >= N, C <= 1.6e18", lambda: route1(late[late["C"] <= 1.6e18].reset_index(drop=True), draws, 1)),
        ("route 1", "runs near each minimum only (route 2's windows)", lambda: route1(near, draws, 1)),
        ("route 1", "D >= N, Normal noise on log loss", lambda: route1(late, draws, 1, spec=normal)),
        ("route 2 joint", "window 0.5 decades (default)", lambda: route2(runs, "joint", draws, 1)),
        ("route 2 joint", "window 0.3 decades", lambda: route2(runs, "joint", draws, 1, window=0.3, min_points=3)),
        ("route 2 joint", "window 0.8 decades", lambda: route2(runs, "joint", draws, 1, window=0.8)),
        ("route 2 joint", "window 0.5, D >= N", lambda: route2(late, "joint", draws, 1)),
        ("route 2 joint", "C >= 1e17", lambda: route2(runs[runs["C"] >= 1e17], "joint", draws, 1)),
        ("route 2 joint", "C <= 1.6e18", lambda: route2(runs[runs["C"] <= 1.6e18], "joint", draws, 1)),
        ("route 2 drawwise", "window 0.5 decades", lambda: route2(runs, "drawwise", draws, 1)),
    ]
    rows = []
    for route, change, run in cases:
        res = run()
        rows.append({"route": route, "change": change, **res})
        print(route, "|", change, "|", {k: round(v, 3) for k, v in res.items() if isinstance(v, float)}, flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "why.csv", index=False)
    return df


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--configs", type=int, default=None)
    ap.add_argument("--only", choices=["table", "why"], default=None)
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    import bayes_scaling as bs

    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"bayes_scaling {bs.__version__}", flush=True)
    t = time.perf_counter()
    if args.only in (None, "why"):
        why(args.out, args.draws)
    if args.only in (None, "table"):
        table(args.out, args.draws, args.configs)
    print(f"total {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
