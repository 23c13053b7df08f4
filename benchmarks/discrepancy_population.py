"""The learnt discrepancy: a population over real data sets, scored leave-one-data-set-out.

    python benchmarks/discrepancy_population.py collect OUT [--draws 1000 --chains 4] [--sets porian/0,...] [--law SPEC]
    python benchmarks/discrepancy_population.py evaluate OUT          # tables: OUT/loso_*.csv
    python benchmarks/discrepancy_population.py ship OUT               # the package's population file

``collect`` runs one backtest per data set of ``benchmarks/discrepancy_splits.toml`` (the splits fixed before
scoring; Porian's 15 IsoFLOP configurations are 15 sets) with nested backtests inside its training runs, and
caches per set: the nested held-out residuals of log(loss), their predictive sd, distance outside and refit
(training rows only), the held-out runs' predictive draws without a discrepancy and their distance, and the
least-squares and Huber point predictions with the least-squares fit's training residual sd. ``evaluate``
scores, per set, predictive distributions that differ only in the discrepancy (docs/validation.md, "A learnt
discrepancy"): none; the fixed 0.059; ``tau`` pooled over the other sets' nested backtests; the set's own nested
``tau``; the log-normal hierarchy of ``tau`` (population from the other sets, updated by the set's own, for
several ``rho``); the drift (slope from the set's own nested backtests, population scales from the other sets'),
plug-in, with the transfer learnt from the other *decide* sets' held-out runs, and without nested backtests of
its own; least squares as a predictive (``Normal(log f_lsq, s_train^2)``). ``ship`` computes the population from
every set and writes ``bayes_scaling/data/datasets/discrepancy_population.json`` with the per-set residuals.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

SPLITS = REPO / "benchmarks" / "discrepancy_splits.toml"


def data_sets() -> dict[str, dict]:
    """Every data set of the splits file: name -> {table, holdout, law, half}."""
    import backtest_real as br

    cfg = tomllib.loads(SPLITS.read_text())
    out = {}
    por = list(br.porian().items())
    half = {i: "decide" for i in cfg["porian"]["decide"]} | {i: "confirm" for i in cfg["porian"]["confirm"]}
    for i, (key, g) in enumerate(por):
        out[f"porian/{i}"] = {"table": g, "holdout": cfg["porian"]["holdout"], "law": cfg["porian"]["law"],
                              "half": half[i], "key": key}
    out["chinchilla_epoch"] = {"table": br.chinchilla(), **{k: cfg["chinchilla_epoch"][k] for k in
                                                             ("holdout", "law", "half")}}
    out["muennighoff"] = {"table": br.muennighoff(), **{k: cfg["muennighoff"][k] for k in ("holdout", "law", "half")}}
    return out


def _cache(out: Path, name: str) -> Path:
    return out / "cache" / f"{name.replace('/', '-')}.pkl"


#: the covariate column of a law spec with ``[likelihood] sigma_slope`` (benchmarks/chinchilla_floor_slope.toml)
OPT_COLUMN = "opt_dist"


def optimum_distance(table: pd.DataFrame, holdout: str, law: str) -> np.ndarray:
    """Each run's distance from its budget's compute optimum, ``|log10(N / N_opt(C))|`` (decades of N),
    ``N_opt(C) = argmin_N f(N, C / (6N))`` of the law fitted by least squares to the split's training runs only
    (so a held-out run's distance uses no held-out loss); ``C = 6 N D``."""
    from bayes_scaling.analysis.backtest import lsq_fit, make_splits
    from bayes_scaling.analysis.compute import optimum_distance as distance
    from bayes_scaling.inference.fit import _as_spec

    spec = _as_spec(law)
    t = table.reset_index(drop=True)
    (split,) = make_splits(t, holdout)
    return distance(spec, lsq_fit(spec, t.iloc[split.train]), t)


def collect_one(name: str, s: dict, draws: int, seed: int = 1, chains: int = 2, whiten: str = "auto") -> dict:
    from bayes_scaling.analysis.backtest import _point_predict, _ungrouped, backtest, lsq_fit, make_splits
    from bayes_scaling.inference.fit import _as_spec

    spec = _as_spec(s["law"])
    if spec.sigma_slope == OPT_COLUMN:
        s = {**s, "table": s["table"].assign(**{OPT_COLUMN: optimum_distance(s["table"], s["holdout"], s["law"])})}
    t0 = time.time()
    res = backtest(s["table"], spec, s["holdout"], seed=seed, draws=draws, tune=draws, chains=chains, whiten=whiten)
    (split,) = make_splits(s["table"].reset_index(drop=True), s["holdout"])
    train = s["table"].reset_index(drop=True).iloc[split.train]
    vals = lsq_fit(spec, train, seed=seed)
    y_tr = train[spec.target].to_numpy(dtype=float)
    s_lsq = float(np.std(np.log(y_tr) - np.log(_point_predict(_ungrouped(spec), vals, train)), ddof=len(vals)))
    (sp,) = res.info["splits"]
    (pred, dist, test) = next(iter(res.draws.values()))
    pts = res.points
    base = {m: pts.loc[pts["method"] == m, "predicted"].to_numpy(dtype=float) for m in ("lsq", "huber")}
    return {"name": name, "half": s["half"], "key": s.get("key", name), "holdout": s["holdout"],
            "nested": sp["nested"], "nested_diagnostics": sp["nested_diagnostics"], "diagnostics": sp["diagnostics"],
            "log_pred": np.log(pred).astype(np.float32), "dist": dist, "y": test[spec.target].to_numpy(dtype=float),
            "test": test, "lsq": base["lsq"], "huber": base["huber"], "s_lsq": s_lsq, "n_train": len(train),
            "seconds": time.time() - t0, "draws": draws, "chains": chains, "whiten": whiten}


def collect(out: Path, sets: list[str] | None, draws: int, chains: int = 2, whiten: str = "auto",
            law: str | None = None) -> None:
    (out / "cache").mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    everything = data_sets()
    for name in (sets or everything):
        s = everything[name] if law is None else {**everything[name], "law": law}
        path = _cache(out, name)
        if path.exists():
            continue
        r = collect_one(name, s, draws, chains=chains, whiten=whiten)
        path.write_bytes(pickle.dumps(r))
        nd = r["nested_diagnostics"]
        print(f"{name} ({r['half']}): {len(r['y'])} held out, {r['seconds']:.0f} s, nested tau-ML data "
              f"{len(r['nested'].get('resid', []))} runs, R-hat {r['diagnostics']['rhat_max']:.3f}, "
              f"{r['diagnostics']['divergences']:.0f} divergences; nested R-hat "
              f"{max((d['rhat_max'] for d in nd), default=float('nan')):.3f}, "
              f"{sum(d['divergences'] for d in nd):.0f} divergences", flush=True)


def load(out: Path) -> dict[str, dict]:
    return {p.stem.replace("-", "/", 1) if p.stem.startswith("porian-") else p.stem: pickle.loads(p.read_bytes())
            for p in sorted((out / "cache").glob("*.pkl"))}


FIXED = 0.059
RHOS = (0.0, 0.5, 0.9, 1.0)
NDRAW = 2000


def _ll(r: dict, rho: float) -> np.ndarray:
    from bayes_scaling.laws.discrepancy import tau_log_likelihood

    n = r["nested"]
    if not n.get("resid"):
        return np.zeros(241)
    return tau_log_likelihood(n["resid"], n["sd"], n["dist"], fold=n.get("fold"), rho=rho)


def _scores(log_draws: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    from bayes_scaling.analysis.backtest import crps_draws, log_density_draws

    ly = np.log(y)
    q = np.quantile(log_draws, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    return {"lpd": log_density_draws(log_draws, ly), "crps": crps_draws(log_draws, ly),
            "cover50": (ly >= q[1]) & (ly <= q[3]), "cover90": (ly >= q[0]) & (ly <= q[4]),
            "rel_error": np.abs(np.exp(q[2]) - y) / y, "width90": np.exp(q[4] - q[0]) - 1}


def _drift_ll(r: dict) -> np.ndarray:
    from bayes_scaling.laws.discrepancy import drift_log_likelihood

    n = r["nested"]
    return drift_log_likelihood(n["resid"], n["sd"], n["dist"]) if n.get("resid") else 0.0


_DRIFT: dict[tuple[int, str], tuple[float, float, float, float]] = {}


def drift_of(sets: dict[str, dict], name: str) -> tuple[float, float, float, float]:
    key = (id(sets), name)
    if key not in _DRIFT:
        _DRIFT[key] = _drift_of(sets, name)
    return _DRIFT[key]


def _drift_of(sets: dict[str, dict], name: str) -> tuple[float, float, float, float]:
    """``(b_mean, b_sd, tau_b, tau_e)`` of set ``name``: its drift slope's posterior from its nested backtests,
    the population scales from the other sets' nested backtests (training runs only)."""
    from bayes_scaling.laws.discrepancy import drift_posterior, population_drift

    tb, te = population_drift([_drift_ll(sets[o]) for o in sets if o != name])
    n = sets[name]["nested"]
    bm, bs = drift_posterior(n["resid"], n["sd"], n["dist"], tb, te) if n.get("resid") else (0.0, tb)
    return bm, bs, tb, te


def transfer_of(sets: dict[str, dict], name: str, mean_change: bool = True) -> dict[str, float]:
    """``(lam, mu, kappa)`` for set ``name`` from the held-out runs of the *decide* sets other than it (so that
    no confirm set's held-out run informs anything); ``mean_change=False``: ``mu = 0`` (the former transfer)."""
    from bayes_scaling.laws.discrepancy import TRANSFER_MU, population_transfer, transfer_log_likelihood

    mu = TRANSFER_MU if mean_change else np.zeros(1)
    lls = []
    for o, r in sets.items():
        if o == name or r["half"] != "decide":
            continue
        bm, bs, _, te = drift_of(sets, o)
        lp = r["log_pred"].astype(float)
        med = np.median(lp, axis=0)
        sd = np.subtract(*np.quantile(lp, [0.8413, 0.1587], axis=0)) / 2
        lls.append(transfer_log_likelihood(np.log(r["y"]) - med, sd, r["dist"], bm, bs, tau_e=te, mu=mu))
    return population_transfer(lls, mu=mu)


def predictives(sets: dict[str, dict], name: str, rho: float | None, seed: int = 0) -> dict[str, np.ndarray]:
    """The held-out log-draws of set ``name`` under each discrepancy (leave-one-data-set-out prior): the
    methods that do not depend on ``rho`` when it is None, else the learnt ``tau`` with that ``rho``."""
    from bayes_scaling.analysis.backtest import calibrate_tau
    from bayes_scaling.laws.discrepancy import population_prior, transfer_slope

    r = sets[name]
    rng = np.random.default_rng(seed)
    lp = r["log_pred"].astype(float)
    lp = lp[np.all(np.isfinite(lp), axis=1)]      # a Student-t draw of the target beyond float range: dropped
    idx = rng.choice(lp.shape[0], NDRAW, replace=lp.shape[0] < NDRAW)
    lp = lp[idx]
    d = r["dist"][None, :]
    z = rng.standard_normal(lp.shape)
    n = r["nested"]
    others = [o for o in sets if o != name]
    if rho is not None:
        prior = population_prior([_ll(sets[o], rho) for o in others])
        post = prior.update(_ll(r, rho))
        return {"population prior": lp + prior.sample(NDRAW, rng)[:, None] * d * z,
                "learnt": lp + post.sample(NDRAW, rng)[:, None] * d * z,
                "_info": {"prior_median": prior.median, "prior_sd": prior.sd, "post_median": post.median,
                          "post_sd": post.sd}}
    tau_ml = calibrate_tau(n["resid"], n["sd"], n["dist"]) if n.get("resid") else 0.0
    cat = lambda k: np.concatenate([np.asarray(sets[o]["nested"].get(k, []), dtype=float) for o in others])  # noqa: E731
    tau_pool = calibrate_tau(cat("resid"), cat("sd"), cat("dist"))
    bm, bs, tb, te = drift_of(sets, name)
    b = bm + bs * rng.standard_normal(NDRAW)
    tr = transfer_of(sets, name)
    m, sd = transfer_slope(bm, bs, **tr)
    bt = m + sd * rng.standard_normal(NDRAW)
    m0, sd0 = transfer_slope(bm, bs, **transfer_of(sets, name, mean_change=False))
    b_old = m0 + sd0 * rng.standard_normal(NDRAW)
    b0 = transfer_slope(0.0, tb, **tr)[1] * rng.standard_normal(NDRAW)   # no nested backtest of its own
    out = {"none": lp, "fixed 0.059": lp + FIXED * d * z, "nested ML": lp + tau_ml * d * z,
           "pooled ML (other sets)": lp + tau_pool * d * z,
           "learnt drift": lp + b[:, None] * d + te * d * z,
           "learnt drift, transfer": lp + bt[:, None] * d + te * d * z,
           "learnt drift, transfer without mean change": lp + b_old[:, None] * d + te * d * z,
           "learnt drift, population only": lp + b0[:, None] * d + te * d * z}
    out["lsq"] = np.log(r["lsq"])[None, :] + r["s_lsq"] * rng.standard_normal(lp.shape)
    out["_info"] = {"tau_ml": tau_ml, "tau_pooled": tau_pool, "drift_tau_b": tb, "drift_tau_e": te,
                    "drift_mean": bm, "drift_sd": bs, **tr}
    return out


def _boot_diff(a: np.ndarray, b: np.ndarray, rng, n: int = 2000, groups=None) -> tuple[float, float]:
    """95% bootstrap interval of mean(a - b) (over points, or over groups when given)."""
    diff = a - b
    if groups is None:
        idx = rng.integers(0, len(diff), (n, len(diff)))
        m = diff[idx].mean(axis=1)
    else:
        ug = np.unique(groups)
        sums = np.array([diff[groups == g].sum() for g in ug])
        cnt = np.array([np.sum(groups == g) for g in ug])
        idx = rng.integers(0, len(ug), (n, len(ug)))
        m = sums[idx].sum(axis=1) / cnt[idx].sum(axis=1)
    return tuple(np.quantile(m, [0.025, 0.975]))


def evaluate(out: Path, hierarchy: bool = True) -> None:
    sets = load(out)
    rows, info = [], []
    for rho in (None, *(RHOS if hierarchy else ())):
        for name, r in sets.items():
            pr = predictives(sets, name, rho)
            inf = pr.pop("_info")
            rho_col = -1.0 if rho is None else rho         # -1: the methods that do not depend on rho
            info.append({"set": name, "half": r["half"], "rho": rho_col, **inf})
            for method, ld in pr.items():
                sc = _scores(ld, r["y"])
                for i in range(len(r["y"])):
                    rows.append({"set": name, "half": r["half"], "rho": rho_col, "method": method,
                                 **{k: float(v[i]) for k, v in sc.items()}})
            for m in ("huber",) if rho is None else ():
                for p, y in zip(r[m], r["y"], strict=True):
                    rows.append({"set": name, "half": r["half"], "rho": rho_col, "method": m,
                                 "rel_error": abs(p - y) / y})
    pts = pd.DataFrame(rows)
    pts.to_csv(out / "loso_points.csv", index=False)
    info = pd.DataFrame(info)
    info.to_csv(out / "loso_tau.csv", index=False)
    rng = np.random.default_rng(0)
    summ = []
    for (half, rho, method), g in pts.groupby(["half", "rho", "method"]):
        row = {"half": half, "rho": rho, "method": method, "n": len(g), "sets": g["set"].nunique(),
               "median_rel_error": g["rel_error"].median(), "mean_rel_error": g["rel_error"].mean()}
        if g["lpd"].notna().any():
            row.update(cov50=g["cover50"].mean(), cov90=g["cover90"].mean(), width90=g["width90"].median(),
                       lpd=g["lpd"].mean(), crps=g["crps"].mean())
            for ref, tag in (("lsq", "lsq"), ("fixed 0.059", "fixed")):
                ls = pts[(pts["half"] == half) & (pts["rho"] == -1) & (pts["method"] == ref)]
                for sc in ("lpd", "crps"):
                    row[f"{sc}_vs_{tag}_lo"], row[f"{sc}_vs_{tag}_hi"] = _boot_diff(
                        g[sc].to_numpy(), ls[sc].to_numpy(), rng, groups=g["set"].to_numpy())
        summ.append(row)
    summ = pd.DataFrame(summ)
    summ.to_csv(out / "loso_summary.csv", index=False)
    per = pts.groupby(["set", "half", "rho", "method"]).agg(
        n=("rel_error", "size"), median_rel_error=("rel_error", "median"), cov50=("cover50", "mean"),
        cov90=("cover90", "mean"), lpd=("lpd", "mean"), crps=("crps", "mean")).reset_index()
    per.to_csv(out / "loso_per_set.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 500):
        print(summ.to_string(index=False, float_format="%.4g"))
        print(info.to_string(index=False, float_format="%.4g"))


def population(sets_json: dict[str, dict]) -> dict[str, float]:
    """The shipped population from the per-set residuals (the file's ``sets``): ``tau_b``, ``tau_e`` from all
    sets' nested backtests, ``lam``, ``kappa`` from all sets' held-out runs given their drift posteriors."""
    from bayes_scaling.laws.discrepancy import (
        drift_log_likelihood,
        drift_posterior,
        population_drift,
        population_transfer,
        transfer_log_likelihood,
        transfer_slope,
    )

    tb, te = population_drift([drift_log_likelihood(**s["nested"]) for s in sets_json.values()])
    lls = []
    for s in sets_json.values():
        bm, bs = drift_posterior(**s["nested"], tau_b=tb, tau_e=te)
        lls.append(transfer_log_likelihood(**s["heldout"], b_mean=bm, b_sd=bs, tau_e=te))
    tr = population_transfer(lls)
    return {"tau_b": tb, "tau_e": te, **tr, "drift_sd": transfer_slope(0.0, tb, **tr)[1]}


def ship(out: Path) -> None:
    """Write the package's population file from the collected sets (every set, both halves)."""
    from bayes_scaling.laws.discrepancy import POPULATION_FILE

    sets = load(out)
    rnd = lambda a: [round(float(x), 6) for x in a]  # noqa: E731
    per = {}
    for name, r in sets.items():
        n = r["nested"]
        lp = r["log_pred"].astype(float)
        med = np.median(lp, axis=0)
        sd = np.subtract(*np.quantile(lp, [0.8413, 0.1587], axis=0)) / 2
        per[name] = {"nested": {"resid": rnd(n["resid"]), "sd": rnd(n["sd"]), "dist": rnd(n["dist"])},
                     "heldout": {"resid": rnd(np.log(r["y"]) - med), "sd": rnd(sd), "dist": rnd(r["dist"])}}
    pop = population(per)
    doc = {**{k: round(v, 6) for k, v in pop.items()},
           "source": f"nested backtests and held-out runs of the Chinchilla law on {len(sets)} real data sets: "
                     "Porian et al. (2024), 15 IsoFLOP configurations; Epoch AI's Chinchilla runs; Muennighoff "
                     "et al. (2023) contour grid (benchmarks/discrepancy_population.py, "
                     f"{r.get('chains', 2)} chains x {r['draws']} draws)",
           "sets": per}
    path = REPO / "bayes_scaling" / "data" / "datasets" / POPULATION_FILE
    path.write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")
    print({k: v for k, v in doc.items() if k != "sets"}, path.stat().st_size, "bytes")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["collect", "evaluate", "ship"])
    ap.add_argument("out")
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--sets", default=None)
    ap.add_argument("--no-hierarchy", action="store_true", help="evaluate: skip the log-normal tau (slow)")
    ap.add_argument("--whiten", default="auto", choices=["auto", "laplace", "none"], help="collect: the fits' whitening")
    ap.add_argument("--law", default=None, help="collect: a spec name or file for every set (default: the splits file's)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.what == "collect":
        collect(out, args.sets.split(",") if args.sets else None, args.draws, args.chains, args.whiten, args.law)
    elif args.what == "evaluate":
        evaluate(out, hierarchy=not args.no_hierarchy)
    else:
        ship(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
