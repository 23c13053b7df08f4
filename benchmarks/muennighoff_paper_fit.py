"""Muennighoff et al.'s R_D* and R_N*, on the 182 runs they fitted (issue 11; README, "Published laws").

    python benchmarks/muennighoff_paper_fit.py [--draws 1000] [--chains 2]

Their notebook (utils/parametric_fit.ipynb, datablations @ 13701315) fixed E, A, B, alpha = beta at a fit to
Chinchilla's C4 IsoFLOP points and fitted R_D*, R_N* to 182 of their C4 runs by L-BFGS on a Huber (delta 1e-3)
objective in log loss. Here, on the same runs (bundled, ``bs.datasets.load_muennighoff_paper_fit``):

1. their objective at their values, and its minimum from a grid of starts (Nelder-Mead);
2. its profile in R_D* (R_N* minimised at each R_D*);
3. the Bayesian fit of their second stage (Student-t on log loss, the ``data_constrained`` spec's priors);
4. the Bayesian fit with every parameter free (alpha = beta tied).
"""

from __future__ import annotations

import argparse
import time
import warnings


def main(argv=None) -> int:
    from scipy.optimize import minimize

    import bayes_scaling as bs
    from bayes_scaling.data.published import muennighoff_paper_objective, muennighoff_spec, muennighoff_stage1

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    runs = bs.datasets.load_muennighoff_paper_fit(used=True)
    meta = bs.datasets.published_metadata("muennighoff_paper_fit")["published_fit"]
    obj = lambda x: muennighoff_paper_objective(x[0], x[1], runs)   # noqa: E731
    nm = {"method": "Nelder-Mead", "options": {"xatol": 1e-4, "fatol": 1e-12, "maxiter": 2000}}
    print(f"{len(runs)} runs; their objective at R_D* {meta['RD_star']:.4g}, R_N* {meta['RN_star']:.4g}: "
          f"{obj([meta['RD_star'], meta['RN_star']]):.7f} (their notebook: {meta['objective']:.7f})")
    best = min((minimize(obj, [rd, rn], **nm) for rd in (5, 10, 20, 40) for rn in (2, 5, 10)), key=lambda r: r.fun)
    print(f"its minimum from 12 starts: {best.fun:.7f} at R_D* {best.x[0]:.3g}, R_N* {best.x[1]:.3g}")
    print("profile: R_D*, best R_N*, objective")
    for rd in (5, 10, 15.39, 20, 30, 47, 80, 150):
        r = minimize(lambda y, rd=rd: obj([rd, y[0]]), [3.0], **nm)
        print(f"  {rd:7.4g} {r.x[0]:7.3g} {r.fun:.7f}")
    for name, spec in (("stage 2 (E, A, B, alpha = beta fixed at their C4 values)",
                        muennighoff_spec(muennighoff_stage1())), ("all free", muennighoff_spec())):
        t0 = time.time()
        fit = bs.fit(runs, spec, seed=1, draws=args.draws, tune=args.draws, chains=args.chains,
                     warn=False)
        s = fit.summary(ci_prob=0.9).set_index("parameter")
        print(f"\nBayesian, {name}: {time.time() - t0:.0f} s, {fit.diagnostics}")
        for p in s.index:
            print(f"  {p:8s} {s.loc[p, 'median']:10.4g} [{s.loc[p, 'eti90_lb']:.4g}, {s.loc[p, 'eti90_ub']:.4g}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
