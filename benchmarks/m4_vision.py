"""The M4 learning-curve law on the vision curves of Alabdulmohsin, Neyshabur & Zhai (2022): extrapolation by the
Bayesian fit (``bs.fit`` with ``m4_error_rate``, its anchored, whitened basis) against a least-squares fit of
the same law, and the discrepancy ``tau`` of both, learnt by nested backtests.

Protocol (the paper's): each (task, model) curve is fitted on its rows with ``Training == 1`` (the early part)
and scored on the rows with ``Training == 0`` (the rest, up to 0.33 decades of x further), by the RMSE of the
log error rate, ``sqrt(mean((log y_pred - log y)^2))`` (the paper's extrapolation loss). The split into halves
is fixed by the sorted curve list: even positions decide, odd ones confirm.

Nested backtest (decide half only, training rows only): each curve's fitted rows are split the same way
again -- fit the rows up to ``x_max / 10**h``, predict the last ``h`` decades (``h``: the curve's own reach of
its held-out part, 0.33) -- and ``tau`` is the value at which the 90% intervals of a new observation,
``log y = log f + noise + Normal(0, (tau d)**2)`` (``d`` decades beyond the fitted x), cover 90% of these
inner held-out points, on average over the curves (each curve weighs the same: one curve's errors are a
smooth trend, not independent draws). The same for least squares (``log f_lsq +- 1.645 sqrt(s**2 +
(tau d)**2)``, ``s`` its residual sd). On the vision curves this nested ``tau`` under-covers the real held-out
points, so ``score`` also calibrates ``tau`` on the decide half's real held-out points (the spec's value) and
scores both on both halves: 90% coverage, mean log score and CRPS of ``log y`` (higher / lower is better), RMSE.

Per curve: fit time (s, warm except the first), max R-hat, divergences, leapfrog steps a draw. The paper's
per-curve M4 numbers are not in the shared data (its README cites their Table 1 without the values), nor in the
paper's repository (its notebook is stored without outputs); their estimator as published, run on the same
rows, is compared in docs/validation.md and tests/laws/test_m4_paper_estimator.py.

    .venv/bin/python benchmarks/m4_vision.py run --half decide --store decide.pkl [--start K] [--limit N]
    .venv/bin/python benchmarks/m4_vision.py run --half confirm --store confirm.pkl
    .venv/bin/python benchmarks/m4_vision.py score decide.pkl confirm.pkl [--tau-bayes 0.15 --tau-lsq 0.162]

The learnt scale (docs/validation.md, "The learnt scale"): every curve's nested split fitted (both halves), the
discrepancy variants scored leaving one task out on the decide half, the chosen one on the confirm half once,
and the package's M4 population written from every curve:

    .venv/bin/python benchmarks/m4_vision.py run --half decide --nested-only --store inner_decide.pkl
    .venv/bin/python benchmarks/m4_vision.py run --half confirm --nested-only --store inner_confirm.pkl
    .venv/bin/python benchmarks/m4_vision.py learnt decide.pkl confirm.pkl --nested inner_*.pkl --half decide \
        --out benchmarks/results/m4_learnt_scale_decide.csv
    .venv/bin/python benchmarks/m4_vision.py learnt ... --half confirm --method "learnt scale" \
        --method "scale rho=1, population only" --out benchmarks/results/m4_learnt_scale_confirm.csv
    .venv/bin/python benchmarks/m4_vision.py learnt-summary benchmarks/results/m4_learnt_scale_{decide,confirm}.csv \
        --out benchmarks/results/m4_learnt_scale_summary.csv
    .venv/bin/python benchmarks/m4_vision.py ship decide.pkl confirm.pkl --nested inner_*.pkl
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "revisiting2022_vision" / "revisiting_vision.csv"
LAW = ("L_inf", "L_0", "alpha", "beta", "c")
Z90 = 1.6448536269514722
#: draws kept per fit for the scores (evenly spaced over the chains)
KEEP = 1000


def curves(path: Path = DATA) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The table and its sorted (task, model) curves."""
    d = pd.read_csv(path)
    return d, sorted(set(zip(d["Task"], d["Model"], strict=True)))


def split(d: pd.DataFrame, task: str, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's fit and extrapolation rows of one curve, as columns ``x``, ``L``."""
    cur = d[(d["Task"] == task) & (d["Model"] == model)]
    out = [pd.DataFrame({"x": c["Seen Examples"].to_numpy(float), "L": c["Loss"].to_numpy(float)})
           for c in (cur[cur["Training"] == 1], cur[cur["Training"] == 0])]
    return out[0], out[1]


def nested(fit_rows: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fitted rows split as the curve is: those up to ``x_max / 10**h`` and the last ``h`` decades
    (``h = log10(max held-out x / max fitted x)``)."""
    h = np.log10(test["x"].max() / fit_rows["x"].max())
    cut = fit_rows["x"].max() / 10**h
    inner = fit_rows["x"] <= cut
    return fit_rows[inner].reset_index(drop=True), fit_rows[~inner].reset_index(drop=True)


def one_fit(fit_rows: pd.DataFrame, test: pd.DataFrame, *, seed: int = 1, **kw) -> dict:
    """Fit ``fit_rows`` (Bayes and least squares) and keep what scoring ``test`` needs."""
    import bayes_scaling as bs
    from bayes_scaling.laws.spec import builtin_spec
    from bayes_scaling.models.m4 import least_squares_fit, solve

    spec = builtin_spec("m4_error_rate")
    t0 = time.perf_counter()
    fit = bs.fit(fit_rows, spec, seed=seed, chains=4, warn=False, log_likelihood=False, **kw)
    elapsed = time.perf_counter() - t0
    diag, post = fit.diagnostics, fit.posterior
    S = post.sizes["chain"] * post.sizes["draw"]
    idx = np.linspace(0, S - 1, min(S, KEEP)).astype(int)
    th = {k: post[k].values.reshape(-1)[idx][:, None] for k in (*LAW, "sigma")}
    xt = test["x"].to_numpy()
    lsq = least_squares_fit(spec, fit_rows["x"].to_numpy(), fit_rows["L"].to_numpy())
    stats = fit.tree["sample_stats"].to_dataset()
    return {"n_fit": len(fit_rows), "n_test": len(test), "time_s": elapsed, "r_hat": diag.r_hat_max,
            "divergences": diag.divergences, "ess_bulk": diag.ess_bulk_min,
            "steps": float(stats["n_steps"].mean()) if "n_steps" in stats else np.nan,
            "logf": np.log(solve(spec, {"x": xt[None, :], **{k: th[k] for k in LAW}})),
            "sigma": th["sigma"][:, 0], "d": np.maximum(np.log10(xt / fit_rows["x"].max()), 0.0),
            "logy": np.log(test["L"].to_numpy()),
            "lsq_logf": np.log(solve(spec, {"x": xt, **{k: lsq[k] for k in LAW}})), "lsq_sigma": lsq["sigma"]}


def run(half: str, store: str, limit: int | None = None, nested_fits: bool = True, start: int = 0,
        nested_only: bool = False, **kw) -> list[dict]:
    """Fit the curves ``start:start + limit`` of ``half`` (and, on the decide half, their nested split),
    printing a line each and pickling the records to ``store`` as it goes. ``nested_only``: only the nested
    split, on either half (the learnt scale's evidence of each curve, ``learnt``)."""
    d, all_curves = curves()
    chosen = {"decide": all_curves[0::2], "confirm": all_curves[1::2]}[half]
    records = []
    for task, model in chosen[start:start + limit] if limit else chosen[start:]:
        fit_rows, test = split(d, task, model)
        rec = {"task": task, "model": model, "half": half}
        if not nested_only:
            rec["outer"] = one_fit(fit_rows, test, **kw)
        if (half == "decide" and nested_fits) or nested_only:
            inner_fit, inner_test = nested(fit_rows, test)
            if len(inner_fit) >= 6 and len(inner_test) >= 1:
                rec["inner"] = one_fit(inner_fit, inner_test, **kw)
        records.append(rec)
        for part in ("outer", "inner"):
            if part in rec:
                r = rec[part]
                print(f"{task:8s} {model:10s} {part:5s} n={r['n_fit']:3d}/{r['n_test']:3d} {r['time_s']:6.1f} s  "
                      f"R-hat {r['r_hat']:.4f}  div {r['divergences']:2d}  steps {r['steps']:4.1f}  RMSE bayes "
                      f"{rmse(np.median(r['logf'], 0), r['logy']):.4f} lsq {rmse(r['lsq_logf'], r['logy']):.4f}  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
        with open(store, "wb") as fh:
            pickle.dump(records, fh)
    return records


def rmse(logpred: np.ndarray, logy: np.ndarray) -> float:
    return float(np.sqrt(np.mean((logpred - logy) ** 2)))


def _predictive(r: dict, tau: float, seed: int = 0) -> np.ndarray:
    """Draws of a new observation's log error rate at the held-out points (noise and discrepancy added)."""
    rng = np.random.default_rng(seed)
    z1, z2 = rng.standard_normal(r["logf"].shape), rng.standard_normal(r["logf"].shape)
    return r["logf"] + r["sigma"][:, None] * z1 + tau * r["d"][None, :] * z2


def coverage(r: dict, tau: float, method: str = "bayes") -> float:
    """The 90% intervals' coverage of one curve's held-out points at ``tau``."""
    if method == "lsq":
        half = Z90 * np.sqrt(r["lsq_sigma"] ** 2 + (tau * r["d"]) ** 2)
        return float(np.mean(np.abs(r["logy"] - r["lsq_logf"]) <= half))
    lo, hi = np.quantile(_predictive(r, tau), [0.05, 0.95], axis=0)
    return float(np.mean((lo <= r["logy"]) & (r["logy"] <= hi)))


def calibrate(records: list[dict], part: str = "inner", method: str = "bayes", target: float = 0.9) -> float:
    """``tau`` at which the mean over curves of the 90% coverage of ``part``'s held-out points is ``target``."""
    from scipy.optimize import brentq

    rs = [rec[part] for rec in records if part in rec]
    f = lambda lt: np.mean([coverage(r, np.exp(lt), method) for r in rs]) - target  # noqa: E731
    if f(np.log(1e-4)) >= 0:
        return 0.0
    return float(np.exp(brentq(f, np.log(1e-4), np.log(10.0), xtol=1e-3)))


def log_score(r: dict, tau: float, method: str = "bayes") -> float:
    """Mean log predictive density of the held-out log error rates (Bayes: the mixture over the draws)."""
    from scipy.special import logsumexp
    from scipy.stats import norm

    if method == "lsq":
        return float(np.mean(norm.logpdf(r["logy"], r["lsq_logf"], np.sqrt(r["lsq_sigma"] ** 2 + (tau * r["d"]) ** 2))))
    sd = np.sqrt(r["sigma"][:, None] ** 2 + (tau * r["d"][None, :]) ** 2)
    lp = norm.logpdf(r["logy"][None, :], r["logf"], sd)
    return float(np.mean(logsumexp(lp, axis=0) - np.log(lp.shape[0])))


def crps(r: dict, tau: float, method: str = "bayes") -> float:
    """Mean CRPS of the held-out log error rates (Bayes: from the predictive draws; least squares: the normal's
    closed form)."""
    from scipy.stats import norm

    if method == "lsq":
        s = np.sqrt(r["lsq_sigma"] ** 2 + (tau * r["d"]) ** 2)
        z = (r["logy"] - r["lsq_logf"]) / s
        return float(np.mean(s * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))))
    x = np.sort(_predictive(r, tau), axis=0)
    n = x.shape[0]
    term1 = np.mean(np.abs(x - r["logy"][None, :]), axis=0)
    w = (2 * np.arange(1, n + 1) - n - 1)[:, None]
    term2 = np.sum(w * x, axis=0) / n**2                    # E|X - X'| / 2 from the sorted draws
    return float(np.mean(term1 - term2))


def score(records: list[dict], tau_bayes: float, tau_lsq: float, part: str = "outer") -> pd.DataFrame:
    """Per curve: diagnostics, RMSE, 90% coverage, log score and CRPS, Bayes and least squares."""
    rows = []
    for rec in records:
        if part not in rec:
            continue
        r = rec[part]
        rows.append({"half": rec["half"], "task": rec["task"], "model": rec["model"], "n_fit": r["n_fit"],
                     "n_test": r["n_test"], "time_s": r["time_s"], "r_hat": r["r_hat"],
                     "divergences": r["divergences"], "steps": r["steps"],
                     "rmse_bayes": rmse(np.median(r["logf"], 0), r["logy"]), "rmse_lsq": rmse(r["lsq_logf"], r["logy"]),
                     "cov_bayes": coverage(r, tau_bayes), "cov_lsq": coverage(r, tau_lsq, "lsq"),
                     "logs_bayes": log_score(r, tau_bayes), "logs_lsq": log_score(r, tau_lsq, "lsq"),
                     "crps_bayes": crps(r, tau_bayes), "crps_lsq": crps(r, tau_lsq, "lsq")})
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame) -> str:
    ok = table["rmse_bayes"] <= table["rmse_lsq"] + 1e-4
    return (f"{len(table)} curves: median time {table['time_s'].median():.1f} s (max {table['time_s'].max():.1f}); "
            f"R-hat <= 1.01 on {int((table['r_hat'] <= 1.01).sum())} (max {table['r_hat'].max():.4f}); 0 "
            f"divergences on {int((table['divergences'] == 0).sum())}; steps a draw {table['steps'].mean():.1f}; "
            f"RMSE mean Bayes {table['rmse_bayes'].mean():.4f} LSQ {table['rmse_lsq'].mean():.4f} (Bayes <= LSQ + "
            f"1e-4 on {int(ok.sum())}); 90% coverage Bayes {table['cov_bayes'].mean():.3f} LSQ "
            f"{table['cov_lsq'].mean():.3f}; log score Bayes {table['logs_bayes'].mean():.3f} LSQ "
            f"{table['logs_lsq'].mean():.3f}; CRPS Bayes {table['crps_bayes'].mean():.5f} LSQ "
            f"{table['crps_lsq'].mean():.5f}")


# ---- the learnt scale: a population over curves (leave one task out) and each curve's own nested backtest -------
#: the least-squares predictive's fixed tau (its 90% coverage on the first 18 decide curves) and the spec's former
#: fixed tau, the baselines of ``learnt``
TAU_LSQ, TAU_FIXED = 0.162, 0.15
Z50 = 0.6744897501960817


def load_records(stores: list[str], nested_stores: list[str] = ()) -> list[dict]:
    """The records of ``stores`` with the nested fits of ``nested_stores`` (``run --nested-only``) merged in."""
    recs = {(r["task"], r["model"]): dict(r) for path in stores for r in pickle.load(open(path, "rb"))}
    for path in nested_stores:
        for r in pickle.load(open(path, "rb")):
            if (r["task"], r["model"]) in recs:
                recs[r["task"], r["model"]].pop("inner", None)
                if "inner" in r:
                    recs[r["task"], r["model"]]["inner"] = r["inner"]
    return [recs[k] for k in sorted(recs)]


def residuals(r: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Held-out residuals of one fit as the learnt discrepancy takes them: ``resid`` (log y minus the median of
    the predictive of a new observation), ``sd`` (half its central 68.27% width), ``dist`` (decades beyond the
    fitted x)."""
    rng = np.random.default_rng(seed)
    lp = r["logf"] + r["sigma"][:, None] * rng.standard_normal(r["logf"].shape)
    lo, med, hi = np.quantile(lp, [0.15865525393145707, 0.5, 0.8413447460685429], axis=0)
    return {"resid": r["logy"] - med, "sd": (hi - lo) / 2, "dist": r["d"]}


def per_curve_sets(records: list[dict]) -> dict[str, dict]:
    """``{task/model: {"nested": ..., "heldout": ...}}`` (:func:`residuals`; no nested fit: empty)."""
    empty = {"resid": np.zeros(0), "sd": np.zeros(0), "dist": np.zeros(0)}
    return {f"{r['task']}/{r['model']}": {"nested": residuals(r["inner"]) if "inner" in r else empty,
                                          "heldout": residuals(r["outer"])} for r in records}


def _draw_scores(r: dict, slope: np.ndarray, tau: np.ndarray | float, seed: int = 0) -> dict[str, float]:
    """Scores of one curve's held-out points under the Bayesian predictive with a discrepancy of slope ``slope``
    (per draw) and scale ``tau`` (per draw, or one): ``log y = log f + slope d + Normal(0, sigma**2 + (tau d)**2)``.
    The log score is the mixture's density over the draws; CRPS and the intervals from one draw each."""
    from scipy.special import logsumexp
    from scipy.stats import norm

    from bayes_scaling.analysis.backtest import crps_draws

    rng = np.random.default_rng(seed)
    d = r["d"][None, :]
    mean = r["logf"] + np.asarray(slope, dtype=float).reshape(-1, 1) * d
    sd = np.sqrt(r["sigma"][:, None] ** 2 + (np.asarray(tau, dtype=float).reshape(-1, 1) * d) ** 2)
    draws = mean + sd * rng.standard_normal(mean.shape)
    q = np.quantile(draws, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    y = r["logy"]
    lp = logsumexp(norm.logpdf(y[None, :], mean, sd), axis=0) - np.log(mean.shape[0])
    return {"rmse": rmse(q[2], y), "cov90": float(np.mean((q[0] <= y) & (y <= q[4]))),
            "cov50": float(np.mean((q[1] <= y) & (y <= q[3]))), "logs": float(np.mean(lp)),
            "crps": float(np.mean(crps_draws(draws, y))), "width90": float(np.median(q[4] - q[0]))}


def _lsq_scores(r: dict, tau: float = TAU_LSQ) -> dict[str, float]:
    from scipy.stats import norm

    s = np.sqrt(r["lsq_sigma"] ** 2 + (tau * r["d"]) ** 2)
    z = (r["logy"] - r["lsq_logf"]) / s
    return {"rmse": rmse(r["lsq_logf"], r["logy"]), "cov90": float(np.mean(np.abs(z) <= Z90)),
            "cov50": float(np.mean(np.abs(z) <= Z50)), "logs": float(np.mean(norm.logpdf(z) - np.log(s))),
            "crps": float(np.mean(s * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)))),
            "width90": float(np.median(2 * Z90 * s))}


def _pooled_tau(parts: list[dict], rho: float = 0.0) -> float:
    """The maximum-likelihood ``tau`` pooled over several curves' residuals (each curve one fold)."""
    from bayes_scaling.laws.discrepancy import TAU_GRID, tau_log_likelihood

    ll = sum(tau_log_likelihood(p["resid"], p["sd"], p["dist"], rho=rho) for p in parts)
    return float(TAU_GRID[int(np.argmax(ll))])


def _shifted(ll: np.ndarray, k: float) -> np.ndarray:
    """``ll(tau / k)`` on the tau grid (log-linear interpolation; the edges held)."""
    from bayes_scaling.laws.discrepancy import TAU_GRID

    lt = np.log(TAU_GRID)
    return np.interp(lt - np.log(k), lt, ll)


_TASK_CACHE: dict[str, dict] = {}


def learnt_variants(records: list[dict], sets: dict[str, dict], name: str, rng: np.random.Generator,
                    rhos: tuple[float, ...] = (0.0, 1.0)) -> tuple[dict[str, tuple], dict[str, float]]:
    """Per discrepancy variant, ``(slope draws, tau draws or one tau)`` for curve ``name`` (task/model), every
    population learnt leaving its task out: nested residuals of the other tasks' curves (both halves: training
    rows only), held-out residuals of the other tasks' *decide* curves."""
    from bayes_scaling.laws.discrepancy import (
        learnt_drift,
        learnt_scale,
        population_prior,
        population_summary,
        scale_population,
        tau_log_likelihood,
    )

    task = name.split("/")[0]
    half = {f"{r['task']}/{r['model']}": r["half"] for r in records}
    others = {k: v for k, v in sets.items() if k.split("/")[0] != task}
    decide = [k for k in others if half[k] == "decide"]
    S = records[0]["outer"]["logf"].shape[0]
    zero = np.zeros(S)
    if task not in _TASK_CACHE:   # what depends on the task only
        nested = [others[k]["nested"] for k in others if len(others[k]["nested"]["resid"])]
        _TASK_CACHE[task] = {"pop": population_summary(others, transfer_sets=decide),
                             "tau_pool": _pooled_tau([others[k]["heldout"] for k in decide]),
                             "ratio": {rho: _pooled_tau([others[k]["heldout"] for k in decide], rho)
                                       / _pooled_tau(nested, rho) for rho in rhos},
                             "scale": scale_population(others, decide),
                             "priors": {rho: population_prior([tau_log_likelihood(**others[k]["heldout"], rho=rho)
                                                               for k in decide]) for rho in rhos}}
    pop, tau_pool = _TASK_CACHE[task]["pop"], _TASK_CACHE[task]["tau_pool"]
    own = sets[name]["nested"]
    out = {"fixed 0.15": (zero, TAU_FIXED)}
    out["fixed, pooled ML of the other tasks"] = (zero, tau_pool)
    info = {"tau_pooled": tau_pool, **{f"pop_{k}": v for k, v in pop.items()}}
    for tag, res in (("population only", {"resid": [], "sd": [], "dist": []}), ("own nested", own)):
        d = learnt_drift(res["resid"], res["sd"], res["dist"], pop)
        out[f"drift, {tag}"] = (d.drift + d.drift_sd * rng.standard_normal(S), d.tau_e)
        info[f"drift_{tag.split()[0]}"], info[f"drift_sd_{tag.split()[0]}"] = d.drift, d.drift_sd
    for rho in rhos:
        prior, k_ratio = _TASK_CACHE[task]["priors"][rho], _TASK_CACHE[task]["ratio"][rho]
        ll = (tau_log_likelihood(**own, rho=rho) if len(own["resid"]) else np.zeros(241))
        post = prior.update(_shifted(ll, k_ratio))
        out[f"scale rho={rho:g}, population only"] = (zero, prior.sample(S, rng))
        if rho != 1:   # rho = 1: the learnt scale below
            out[f"scale rho={rho:g}, own nested x ratio"] = (zero, post.sample(S, rng))
        info[f"ratio_rho{rho:g}"] = k_ratio
        info[f"prior_median_rho{rho:g}"], info[f"post_median_rho{rho:g}"] = prior.median, post.median
        info[f"post_rms_rho{rho:g}"] = post.rms
    # as shipped (learnt_scale, Discrepancy.slope_draws): one slope draw per predictive draw
    sc = _TASK_CACHE[task]["scale"]
    scales = {}
    for tag, mean in (("", 0.0), (", population mean slope", pop["mu"])):
        scales[tag] = d = learnt_scale(own["resid"], own["sd"], own["dist"], {**sc, "mean_slope": mean})
        out[f"learnt scale{tag}"] = (d.slope_draws(S, rng), 0.0)
        info[f"learnt_scale{tag.replace(', population mean slope', '_mean')}"] = d.tau
    out["learnt scale, one normal at its rms"] = (scales[""].tau * rng.standard_normal(S), 0.0)
    return out, info


def learnt(records: list[dict], half: str, methods: list[str] | None = None, seed: int = 0
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per curve of ``half`` and discrepancy variant (:func:`learnt_variants`; ``methods``: only these), the
    scores of its held-out points, with least squares (``tau`` 0.162) beside; and the variants' settings."""
    sets = per_curve_sets(records)
    rng = np.random.default_rng(seed)
    rows, infos = [], []
    for rec in records:
        if rec["half"] != half:
            continue
        name = f"{rec['task']}/{rec['model']}"
        variants, info = learnt_variants(records, sets, name, rng)
        infos.append({"curve": name, **info})
        base = {"half": half, "task": rec["task"], "family": rec["task"].split("_")[0], "model": rec["model"],
                "n_nested": len(sets[name]["nested"]["resid"]), "n_test": rec["outer"]["n_test"]}
        rows.append({**base, "method": "least squares", **_lsq_scores(rec["outer"])})
        for m, (slope, tau) in variants.items():
            if methods is None or m in methods or m == "fixed 0.15":
                rows.append({**base, "method": m, **_draw_scores(rec["outer"], slope, tau, seed)})
    return pd.DataFrame(rows), pd.DataFrame(infos)


def boot_diff(table: pd.DataFrame, method: str, ref: str, col: str, n: int = 2000, seed: int = 0
              ) -> tuple[float, float]:
    """95% bootstrap interval (over curves) of the mean of ``col``'s per-curve difference ``method - ref``."""
    a = table[table["method"] == method].set_index(["task", "model"])[col]
    b = table[table["method"] == ref].set_index(["task", "model"])[col]
    diff = (a - b.loc[a.index]).to_numpy()
    idx = np.random.default_rng(seed).integers(0, len(diff), (n, len(diff)))
    return tuple(float(v) for v in np.quantile(diff[idx].mean(axis=1), [0.025, 0.975]))


def learnt_summary(table: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Mean over curves of each score, per method (and per ``by``), with bootstrap intervals against least
    squares of the mean log score and CRPS differences."""
    keys = ["method"] if by is None else [by, "method"]
    out = table.groupby(keys, sort=False)[["cov90", "cov50", "rmse", "logs", "crps", "width90"]].mean().reset_index()
    if by is None:
        for col in ("logs", "crps"):
            iv = [boot_diff(table, m, "least squares", col) if m != "least squares" else (np.nan, np.nan)
                  for m in out["method"]]
            out[f"{col}_vs_lsq_lo"], out[f"{col}_vs_lsq_hi"] = zip(*iv, strict=True)
    return out


def learnt_tables(per_curve: pd.DataFrame) -> pd.DataFrame:
    """The summary of ``learnt``'s per-curve tables (both halves): per half (and ``all`` for the methods scored on
    both) and task family (and ``all``), the mean over curves of each score, with 95% bootstrap intervals (over
    curves) of the log score and CRPS differences against least squares and the fixed 0.15."""
    both = set.intersection(*(set(g["method"]) for _, g in per_curve.groupby("half")))
    parts = [*per_curve.groupby("half"), ("all", per_curve[per_curve["method"].isin(both)])]
    rows = []
    for half, t in parts:
        for fam, g in [("all", t), *t.groupby("family")]:
            for m, gm in g.groupby("method", sort=False):
                row = {"half": half, "family": fam, "method": m, "curves": len(gm),
                       **gm[["cov90", "cov50", "rmse", "logs", "crps", "width90"]].mean().to_dict()}
                if fam == "all":
                    for ref, tag in (("least squares", "lsq"), ("fixed 0.15", "fixed")):
                        for col in ("logs", "crps"):
                            lo, hi = boot_diff(g, m, ref, col) if m != ref else (np.nan, np.nan)
                            row[f"{col}_vs_{tag}_lo"], row[f"{col}_vs_{tag}_hi"] = lo, hi
                rows.append(row)
    return pd.DataFrame(rows)


def ship(records: list[dict], path: Path | None = None) -> dict:
    """Write the package's M4 population (every curve of both halves) with the per-curve residuals."""
    import json

    from bayes_scaling.laws.discrepancy import POPULATIONS, population_summary, scale_population

    sets = per_curve_sets(records)
    rnd = lambda a: [round(float(x), 4) for x in a]  # noqa: E731
    per = {k: {part: {c: rnd(v[part][c]) for c in ("resid", "sd", "dist")} for part in ("nested", "heldout")}
           for k, v in sets.items()}
    pop = {**population_summary(per), **scale_population(per)}
    doc = {**{k: round(v, 6) for k, v in pop.items()},
           "source": f"nested backtests and held-out points of the M4 law (m4_error_rate) on {len(per)} vision "
                     "learning curves of Alabdulmohsin, Neyshabur & Zhai (2022), the paper's split "
                     "(benchmarks/m4_vision.py ship; data: google-research revisiting_neural_scaling_laws, Apache-2.0, "
                     "LICENSE-revisiting2022-Apache-2.0.txt)", "sets": per}
    path = path or Path(__file__).resolve().parents[1] / "bayes_scaling" / "data" / "datasets" / POPULATIONS["m4_vision"]
    path.write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")
    print({k: v for k, v in doc.items() if k != "sets"}, path.stat().st_size, "bytes")
    return doc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="fit the curves of a half, pickle the records")
    r.add_argument("--half", choices=("decide", "confirm"), default="decide")
    r.add_argument("--store", required=True)
    r.add_argument("--start", type=int, default=0, help="skip the first START curves of the half")
    r.add_argument("--limit", type=int, default=None, help="fit N curves (from START)")
    r.add_argument("--draws", type=int, default=1000)
    r.add_argument("--tune", type=int, default=None, help="default: bs.fit's for M4 (300)")
    r.add_argument("--no-nested", action="store_true", help="skip the nested backtests' fits")
    r.add_argument("--nested-only", action="store_true", help="fit only the nested backtests (either half)")
    s = sub.add_parser("score", help="calibrate tau on the decide records' nested backtests, score all records")
    s.add_argument("stores", nargs="+")
    s.add_argument("--out", default=None, help="also write the per-curve table as CSV")
    s.add_argument("--tau-bayes", type=float, default=None, help="score at this tau (with --tau-lsq), no calibration")
    s.add_argument("--tau-lsq", type=float, default=None, help="least squares' tau (with --tau-bayes)")
    lr = sub.add_parser("learnt", help="score the learnt scales on one half (leave one task out)")
    lr.add_argument("stores", nargs="+")
    lr.add_argument("--nested", nargs="+", required=True, help="stores of run --nested-only (both halves)")
    lr.add_argument("--half", choices=("decide", "confirm"), default="decide")
    lr.add_argument("--method", action="append", default=None, help="score only this variant (confirm: the chosen)")
    lr.add_argument("--out", default=None, help="write the per-curve table as CSV")
    ls = sub.add_parser("learnt-summary", help="summarise learnt's per-curve CSVs (both halves) into one CSV")
    ls.add_argument("csvs", nargs="+")
    ls.add_argument("--out", required=True)
    sh = sub.add_parser("ship", help="write the package's M4 population from every curve")
    sh.add_argument("stores", nargs="+")
    sh.add_argument("--nested", nargs="+", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "learnt-summary":
        summ = learnt_tables(pd.concat([pd.read_csv(c) for c in args.csvs], ignore_index=True))
        summ.to_csv(args.out, index=False, float_format="%.5g")
        with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 500):
            print(summ.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return
    if args.cmd in ("learnt", "ship"):
        records = load_records(args.stores, args.nested)
        if args.cmd == "ship":
            ship(records)
            return
        table, info = learnt(records, args.half, args.method)
        with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 500):
            print(info.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
            print(learnt_summary(table).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
            print(learnt_summary(table, "family").to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if args.out:
            table.to_csv(args.out, index=False, float_format="%.6g")
        return
    if args.cmd == "run":
        run(args.half, args.store, args.limit, not args.no_nested, args.start, args.nested_only, draws=args.draws,
            tune=args.tune)
        return
    records = [rec for path in args.stores for rec in pickle.load(open(path, "rb"))]
    decide = [rec for rec in records if rec["half"] == "decide"]
    pd.set_option("display.width", 250)
    if any("inner" in rec for rec in decide) and args.tau_bayes is None:
        tau_b, tau_l = calibrate(decide, "inner", "bayes"), calibrate(decide, "inner", "lsq")
        print(f"tau from the nested backtests of {sum('inner' in rec for rec in decide)} decide curves: Bayes "
              f"{tau_b:.4f}, least squares {tau_l:.4f} per decade")
        print("nested backtests (decide):", summarize(score(decide, tau_b, tau_l, "inner")))
        for half in ("decide", "confirm"):
            t = score([rec for rec in records if rec["half"] == half], tau_b, tau_l)
            if len(t):
                print(f"{half} held-out at the nested tau:", summarize(t))
    if args.tau_bayes is not None and args.tau_lsq is not None:   # fixed (e.g. the spec's), not retuned
        tau_b, tau_l = args.tau_bayes, args.tau_lsq
        print(f"tau fixed: Bayes {tau_b:.4f}, least squares {tau_l:.4f} per decade")
    else:   # the spec's tau: calibrated on the decide half's held-out points (the nested one under-covers them)
        tau_b, tau_l = calibrate(decide, "outer", "bayes"), calibrate(decide, "outer", "lsq")
        print(f"tau from the held-out points of {len(decide)} decide curves: Bayes {tau_b:.4f}, least squares "
              f"{tau_l:.4f} per decade")
    tables = []
    for half in ("decide", "confirm"):
        t = score([rec for rec in records if rec["half"] == half], tau_b, tau_l)
        if len(t):
            print(t.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
            print(f"{half} held-out at the decide-calibrated tau:", summarize(t))
            tables.append(t)
    if args.out and tables:
        pd.concat(tables).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
