"""The M4 learning-curve law on the vision curves of Alabdulmohsin, Neyshabur & Zhai (2022): extrapolation by the
Bayesian fit (``bs.fit`` with ``m4_error_rate``, whitened basis) against a least-squares fit of the same law.

Protocol (the paper's): each (task, model) curve is fitted on its rows with ``Training == 1`` (the early part)
and scored on the rows with ``Training == 0`` (the rest), by the RMSE of the log error rate,
``sqrt(mean((log y_pred - log y)^2))`` (the paper's extrapolation loss). The split into halves is fixed by the
sorted curve list: even positions decide (``--half decide``), odd ones confirm (``--half confirm``).

Per curve: fit time (s, warm: the model is compiled once per process), max R-hat, divergences, RMSE of the
posterior median (``kind="mean"``) and of least squares, the 90% interval's coverage of the held-out points
(``kind="observation"``, with the spec's discrepancy) and its mean width (error-rate units). The paper's own
per-curve M4 numbers are not in the shared data (its README cites their Table 1 without the values): the
``paper`` column says so rather than inventing them.

    .venv/bin/python benchmarks/m4_vision.py --half decide [--limit 6] [--draws 500]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "revisiting2022_vision" / "revisiting_vision.csv"


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


def rmse_log(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.log(pred) - np.log(y)) ** 2)))


def one_curve(d, task: str, model: str, *, draws: int, tune: int, seed: int = 1) -> dict:
    import bayes_scaling as bs
    from bayes_scaling.laws.spec import builtin_spec
    from bayes_scaling.models.m4 import least_squares_fit, solve

    spec = builtin_spec("m4_error_rate")
    fit_rows, test = split(d, task, model)
    t0 = time.perf_counter()
    fit = bs.fit(fit_rows, spec, seed=seed, draws=draws, tune=tune, chains=4, warn=False, log_likelihood=False)
    elapsed = time.perf_counter() - t0
    diag = fit.diagnostics
    med = fit.predict(test[["x"]], kind="mean", ci_prob=0.9)["median"].to_numpy()
    obs = fit.predict(test[["x"]], kind="observation", ci_prob=0.9)
    lo, hi = obs["lo"].to_numpy(), obs["hi"].to_numpy()
    y = test["L"].to_numpy()
    lsq = least_squares_fit(spec, fit_rows["x"].to_numpy(), fit_rows["L"].to_numpy())
    pred_lsq = solve(spec, {"x": test["x"].to_numpy(), **{k: lsq[k] for k in ("L_inf", "L_0", "alpha", "beta", "c")}})
    return {"task": task, "model": model, "n_fit": len(fit_rows), "n_test": len(test), "time_s": elapsed,
            "r_hat": diag.r_hat_max, "divergences": diag.divergences, "rmse_bayes": rmse_log(med, y),
            "rmse_lsq": rmse_log(pred_lsq, y), "rmse_paper": "n/a",
            "coverage90": float(np.mean((lo <= y) & (y <= hi))), "width90": float(np.mean(hi - lo))}


def calibrate_tau(d, chosen: list[tuple[str, str]]) -> float:
    """The discrepancy ``tau`` (per decade beyond the fitted x) at which 90% intervals
    ``log f +- 1.645 sqrt(s**2 + (tau d)**2)`` of the least-squares fits of the ``chosen`` curves cover 90% of
    their held-out points, averaged over curves (``s``: the curve's residual sd, ``d`` = log10(x / max fitted
    x)). The coverage of the whole held-out part of a curve, not a likelihood: one curve's errors are a smooth
    trend, not independent draws, and a few curves with large errors would otherwise set ``tau`` for all."""
    from scipy.optimize import brentq

    parts = _lsq_errors(d, chosen)
    return float(np.exp(brentq(lambda lt: _coverage(parts, np.exp(lt)) - 0.9, np.log(1e-4), np.log(10.0),
                               xtol=1e-3)))


def lsq_coverage(d, chosen: list[tuple[str, str]], tau: float) -> float:
    """The least-squares 90% intervals' mean coverage of the held-out points at ``tau`` (as :func:`calibrate_tau`)."""
    return _coverage(_lsq_errors(d, chosen), tau)


def _coverage(parts, tau: float) -> float:
    z90 = 1.6448536269514722
    return float(np.mean([np.mean(np.abs(e) <= z90 * np.sqrt(s**2 + (tau * dist) ** 2)) for e, dist, s in parts]))


def _lsq_errors(d, chosen):
    """Per curve: the held-out log errors of the least-squares fit, their decades beyond the fitted x, its sd."""
    from bayes_scaling.laws.spec import builtin_spec
    from bayes_scaling.models.m4 import least_squares_fit, solve

    spec = builtin_spec("m4_error_rate")
    parts = []
    for task, model in chosen:
        fit_rows, test = split(d, task, model)
        lsq = least_squares_fit(spec, fit_rows["x"].to_numpy(), fit_rows["L"].to_numpy())
        pred = solve(spec, {"x": test["x"].to_numpy(), **{k: lsq[k] for k in ("L_inf", "L_0", "alpha", "beta", "c")}})
        e = np.log(test["L"].to_numpy()) - np.log(pred)
        dist = np.maximum(np.log10(test["x"].to_numpy() / fit_rows["x"].max()), 0.0)
        parts.append((e, dist, lsq["sigma"]))
    return parts


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", choices=("decide", "confirm", "all"), default="decide")
    ap.add_argument("--limit", type=int, default=None, help="the first N curves of the half")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--out", default=None, help="also write the table as CSV")
    ap.add_argument("--check-tau", type=float, default=None, help="only print the least-squares 90%% coverage "
                    "of the half's held-out points at this tau (lsq_coverage)")
    ap.add_argument("--calibrate", action="store_true", help="only print the discrepancy tau of the half's "
                    "least-squares extrapolation errors (calibrate_tau)")
    args = ap.parse_args(argv)
    d, all_curves = curves()
    chosen = {"decide": all_curves[0::2], "confirm": all_curves[1::2], "all": all_curves}[args.half]
    if args.calibrate:
        print(f"tau per decade ({args.half} half, {len(chosen)} curves): {calibrate_tau(d, chosen):.4f}")
        return pd.DataFrame()
    if args.check_tau is not None:
        print(f"least-squares 90% coverage at tau {args.check_tau} ({args.half} half, {len(chosen)} curves): "
              f"{lsq_coverage(d, chosen, args.check_tau):.3f}")
        return pd.DataFrame()
    chosen = chosen[: args.limit] if args.limit else chosen
    rows = []
    for task, model in chosen:
        rows.append(one_curve(d, task, model, draws=args.draws, tune=args.tune))
        r = rows[-1]
        print(f"{task:8s} {model:10s} n={r['n_fit']:3d}/{r['n_test']:3d} {r['time_s']:6.1f} s  R-hat {r['r_hat']:.3f}  "
              f"div {r['divergences']:3d}  RMSE bayes {r['rmse_bayes']:.4f} lsq {r['rmse_lsq']:.4f}  "
              f"cov90 {r['coverage90']:.2f} width {r['width90']:.3f}", flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    ok = table["rmse_bayes"] <= table["rmse_lsq"] + 1e-4
    print(f"\n{len(table)} curves: median time {table['time_s'].median():.1f} s; max R-hat <= 1.01 on "
          f"{int((table['r_hat'] <= 1.01).sum())}; 0 divergences on {int((table['divergences'] == 0).sum())}; "
          f"Bayes RMSE <= LSQ on {int(ok.sum())}; mean RMSE Bayes {table['rmse_bayes'].mean():.4f}, LSQ "
          f"{table['rmse_lsq'].mean():.4f}; mean 90% coverage {table['coverage90'].mean():.3f}")
    if args.out:
        table.to_csv(args.out, index=False)
    return table


if __name__ == "__main__":
    main()
