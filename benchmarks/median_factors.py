"""Why the posterior median loses to Huber: held-out median error with one factor changed at a time.

    python benchmarks/median_factors.py OUT [--half decide] [--draws 300]

On the data sets of ``benchmarks/discrepancy_splits.toml`` (the same fixed splits; by default the decide half),
the Chinchilla law is fitted on the training runs with each variant below, and the held-out runs' relative
error of the point prediction is recorded (no discrepancy: it does not move a median):

- likelihood: ``student_t`` with the shipped nu prior Gamma(2, 0.1) (the ``chinchilla`` spec, the reference),
  ``chinchilla_robust`` (nu ~ Gamma(8, 4), near 2), ``normal``;
- exponent priors: the default LogNormal(median 0.3, sigma 1) against a wide one (sigma 3);
- the point summary of the reference fit: the predictive median of a new run, the median of the law's draws,
  the mean of the law's draws, the law at the posterior median of the parameters, the law at the draw of the
  highest log posterior density (a MAP found by the sampler);
- least squares and Huber (from ``discrepancy_population.py collect``'s cache, the same training runs).

Partial pooling is not a factor on these sets: each is one corpus (one group), so nothing is pooled.
Writes OUT/factors_points.csv and OUT/factors.csv.
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


def variants() -> dict[str, object]:
    from bayes_scaling.laws.spec import builtin_spec

    base = builtin_spec("chinchilla").to_dict()
    normal = {**base, "likelihood": {**base["likelihood"], "family": "normal"}}
    normal["likelihood"].pop("nu_alpha", None)
    normal["likelihood"].pop("nu_beta", None)
    wide = {**base, "parameters": {**base["parameters"], "alpha_N": {"median": 0.3, "sigma": 3.0},
                                   "alpha_D": {"median": 0.3, "sigma": 3.0}}}
    return {"student_t (reference)": "chinchilla", "student_t nu near 2 (chinchilla_robust)": "chinchilla_robust",
            "normal": normal, "wide exponent priors (sigma 3)": wide}


def summaries(f, test: pd.DataFrame) -> dict[str, np.ndarray]:
    """Point predictions of the held-out runs from one fit."""
    obs = f.predict(test, kind="observation", seed=5, discrepancy=0)[f.spec.target].values.reshape(-1, len(test))
    law = f.predict(test, kind="mean", seed=5, discrepancy=0)[f.spec.target].values.reshape(-1, len(test))
    post = f.posterior
    names = [p for p in f.spec.parameters]
    inputs = {c: test[c].to_numpy(dtype=float) for c in f.spec.inputs}
    med = {p: float(post[p].median()) for p in names}
    lp = f.tree["sample_stats"]["logp"].values.ravel()
    best = int(np.argmax(lp))
    mode = {p: float(post[p].values.ravel()[best]) for p in names}
    ev = lambda v: np.asarray(f.spec.formula.evaluate({**inputs, **v}, backend="numpy"), dtype=float)  # noqa: E731
    return {"predictive median": np.median(obs, axis=0), "median of the law's draws": np.median(law, axis=0),
            "mean of the law's draws": np.mean(law, axis=0), "law at the posterior median": ev(med),
            "law at the highest-density draw": ev(mode)}


def main(argv=None) -> int:
    import discrepancy_population as dp

    from bayes_scaling.analysis.backtest import make_splits
    from bayes_scaling.inference.fit import fit as fit_law

    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--half", default="decide")
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--cache", default=None, help="discrepancy_population.py's OUT (lsq and huber)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = dp.load(Path(args.cache)) if args.cache else {}
    rows = []
    for name, s in dp.data_sets().items():
        if s["half"] != args.half:
            continue
        table = s["table"].reset_index(drop=True)
        (split,) = make_splits(table, s["holdout"])
        train, test = table.iloc[split.train].reset_index(drop=True), table.iloc[split.test].reset_index(drop=True)
        y = test["loss"].to_numpy(dtype=float)
        for vname, spec in variants().items():
            f = fit_law(train, spec, seed=1, draws=args.draws, tune=args.draws, chains=2, progressbar=False,
                        log_likelihood=False, warn=False)
            d = f.diagnostics
            sums = summaries(f, test)
            keep = sums if vname.startswith("student_t (reference)") else {"predictive median": sums["predictive median"]}
            for sname, p in keep.items():
                rows += [{"set": name, "variant": vname, "summary": sname, "rel_error": abs(pi - yi) / yi,
                          "rhat_max": float(d.r_hat_max), "divergences": float(d.divergences)}
                         for pi, yi in zip(p, y, strict=True)]
            print(f"{name} {vname}: {np.median(np.abs(sums['predictive median'] - y) / y):.4f} "
                  f"(R-hat {float(d.r_hat_max):.3f})", flush=True)
        if name in cache:
            for m in ("lsq", "huber"):
                rows += [{"set": name, "variant": m, "summary": "point fit", "rel_error": abs(pi - yi) / yi}
                         for pi, yi in zip(cache[name][m], y, strict=True)]
    pts = pd.DataFrame(rows)
    pts.to_csv(out / "factors_points.csv", index=False)
    tab = pts.groupby(["variant", "summary"]).agg(n=("rel_error", "size"), median_rel_error=("rel_error", "median"),
                                                 mean_rel_error=("rel_error", "mean")).reset_index()
    per_set = pts.groupby(["variant", "summary", "set"])["rel_error"].median().unstack("set")
    tab = tab.merge(per_set.reset_index(), on=["variant", "summary"])
    tab.to_csv(out / "factors.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(tab.to_string(index=False, float_format="%.4f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
