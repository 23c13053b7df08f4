"""``fit_joint`` through the engine against the former joint model, on the bundled joint data, in one process.

``python benchmarks/joint_wrapper.py [--draws 1000 --tune 1000 --chains 2 --seed 1 --repeats 2]``

The former joint model (``bayes_scaling/models/joint.py``, removed when ``fit_joint`` became a wrapper of
``bs.fit``) is read from the commit :data:`FORMER` with ``git show`` and run as that version's ``fit_joint`` ran it
(Laplace whitening, nutpie, target_accept 0.9). Both fit the bundled from-scratch (48) and low-data fine-tuned
(30) losses with the Kaplan law, alternately (``--repeats`` times each: the first includes compiling). Printed per
run: the wall time of the whole fit, the sampling time, the minimum bulk ESS over the parameters both report
(``k, alpha`` per distribution, ``beta``, ``N_c, D_c, alpha_N, alpha_D``, ``sigma_scratch``, ``sigma_finetune``)
and ESS/s (that minimum over the whole fit's wall time). ``--reference PATH`` also writes the former model's
posterior medians and sds of those parameters (log scale for positive ones): the numbers the wrapper's acceptance
test compares with (``tests/fixtures/joint_model_reference.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: the last commit with the former joint model
FORMER = "2792dca"
SHARED = ["k", "alpha", "beta", "N_c", "D_c", "alpha_N", "alpha_D", "sigma_scratch", "sigma_finetune"]


def former_module() -> types.ModuleType:
    """``bayes_scaling.models.joint`` as of :data:`FORMER` (it imports only modules that still exist)."""
    source = subprocess.run(["git", "show", f"{FORMER}:bayes_scaling/models/joint.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("former_joint")
    sys.modules["former_joint"] = module     # dataclasses look their module up
    exec(compile(source, "former_joint.py", "exec"), module.__dict__)
    return module


def run_former(data, seed, draws, tune, chains):
    """The former fit_joint's sampling: the joint model, Laplace-whitened, nutpie (target_accept 0.9)."""
    from bayes_scaling.inference.sampling import sample_nuts
    from bayes_scaling.models.losslaws import LossLawConfig, laplace_whitening
    from bayes_scaling.models.transfer import ModelConfig

    former = former_module()
    config, tcfg = LossLawConfig(law="kaplan"), ModelConfig()
    used = data.used.reset_index(drop=True)

    def build(m, L):
        return former.build_joint_model(data.scratch, used, data.pretraining, config, tcfg, m, L)

    m, L = laplace_whitening(build, build(None, None).spec)
    t = time.perf_counter()
    tree = sample_nuts(build(m, L), draws=draws, tune=tune, chains=chains, seed=seed, backend="auto",
                       target_accept=0.9, progressbar=False, log_likelihood=False)
    return tree, time.perf_counter() - t


def min_ess(tree) -> float:
    from bayes_scaling.inference.mcmc_stats import diagnostics_table

    post = tree["posterior"].to_dataset()
    table = diagnostics_table(post, SHARED)
    return float(min(np.min(table[v]["ess_bulk"]) for v in SHARED))


def reference(tree) -> dict:
    post = tree["posterior"].to_dataset()
    out = {}
    for name in SHARED:
        x = post[name]
        for p in (x["pretraining"].values if "pretraining" in x.dims else [None]):
            v = (x.sel(pretraining=p) if p is not None else x).values.ravel()
            v = np.log(v) if np.all(v > 0) else v
            out[name if p is None else f"{name}[{p}]"] = {"median": float(np.median(v)), "sd": float(np.std(v))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--reference", type=Path)
    args = ap.parse_args()
    from bayes_scaling.data.datasets import load_finetune_losses, load_scratch_losses
    from bayes_scaling.inference.joint import _fit_joint, prepare_joint
    from bayes_scaling.models.losslaws import LossLawConfig

    sc, ft = load_scratch_losses(), load_finetune_losses()
    kw = dict(seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains)
    print(f"bundled joint data: {len(sc)} from-scratch + {len(ft)} fine-tuned runs; {args.chains} chains x "
          f"{args.draws} draws, {args.tune} tuning; seed {args.seed}")
    print("| run | path | wall s | sampling s | min bulk ESS | ESS/s | divergences |")
    print("|---|---|---|---|---|---|---|")
    for r in range(args.repeats):
        t = time.perf_counter()
        data = prepare_joint(sc, ft, LossLawConfig(law="kaplan"))
        tree, sampling = run_former(data, **kw)
        wall = time.perf_counter() - t
        ess = min_ess(tree)
        div = int(tree["sample_stats"]["diverging"].sum())
        print(f"| {r + 1} | former joint model | {wall:.1f} | {sampling:.1f} | {ess:.0f} | {ess / wall:.1f} | {div} |")
        if r == 0 and args.reference:
            args.reference.write_text(json.dumps({"settings": kw, "former_commit": FORMER,
                                                  "posterior": reference(tree)}, indent=1) + "\n")
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = _fit_joint(sc, ft, law="kaplan", progressbar=False, warn=False, **kw)
        wall = time.perf_counter() - t
        ess = min_ess(fit.tree)
        st = fit.tree["sample_stats"]
        sampling = float(fit.tree["posterior"].attrs.get("sampling_time", np.nan))
        print(f"| {r + 1} | fit_joint (engine) | {wall:.1f} | {sampling:.1f} | {ess:.0f} | {ess / wall:.1f} | "
              f"{int(st['diverging'].sum())} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
