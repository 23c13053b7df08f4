"""Every number of the measured-transfer analysis (issue 14), from a sweep folder or the bundled data.

    python benchmarks/measured_transfer_report.py                      # the bundled data set
    python benchmarks/measured_transfer_report.py runs/seeds           # a (finished or partial) sweep folder
    python benchmarks/measured_transfer_report.py runs/seeds --include bayes_scaling/data/datasets
                                                  # seeds 1, 2 of seeds.toml + seed 0 = the bundled v1 runs
    python benchmarks/measured_transfer_report.py DIR --out report/ --imputations 20 --joint

Prints, as tables: the runs per seed and size; the measured seed noise per size (from-scratch and fine-tuned);
alpha per pre-training distribution and beta with 90% intervals (two-stage with the seed noise propagated by
multiple imputation, and the plain fit of the seed-averaged runs); the stability of beta (leave one size out,
each median against the full data's 90% interval); shared against separate beta (PSIS-LOO, elpd difference and
its standard error); ossification per (N, D_F) with Jeffreys intervals across seeds and pre-training
distributions; the divergences of every fit (default sampler settings). Writes the tables (CSV) and four
figures (PNG) to ``--out``: the spread of the loss across seeds, D_T with intervals, a forest plot of the
leave-one-size-out betas, the ossification map. ``--joint`` adds the joint model (Kaplan law; slow: minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayes_scaling as bs
from bayes_scaling.analysis import seeds as S
from bayes_scaling.inference.sampling import _fit_transfer


def load(source: str | None, include: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """``(scratch, finetune, description)`` of a sweep folder or (None) the bundled data set; ``include``: a
    folder of an earlier bundled data set whose runs join the sweep's (e.g. seed 0 of full.toml)."""
    if source is None:
        sc, ft = bs.datasets.load_measured_scratch(), bs.datasets.load_measured_finetune()
        meta = bs.datasets.measured_metadata()
        return sc, ft, f"bundled data set ({meta['runs_finished']} of {meta['runs_planned']} runs)"
    from pathlib import Path

    from bayes_scaling.experiments.card import _included, summarize_sweep, sweep_tables

    sc, ft = sweep_tables(source)
    summ = summarize_sweep(source)
    state = "complete" if summ["complete"] else "PARTIAL"
    what = f"sweep {source} ({state}: {summ['runs_finished']} of {summ['runs_planned']} runs)"
    if include is not None:
        i_sc, i_ft, meta = _included(Path(include), "measured_transfer", set(sc["run_id"]) | set(ft["run_id"]))
        sc, ft = pd.concat([i_sc, sc], ignore_index=True), pd.concat([i_ft, ft], ignore_index=True)
        what += f" + {meta['runs_finished']} runs of {include} (configuration {meta['config'].get('name')})"
    return sc, ft, what


def usable(sc: pd.DataFrame, ft: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Keep sizes with a from-scratch curve of at least 2 data sizes and fine-tuned runs (a partial sweep's last
    size may have neither yet)."""
    curves = sc.groupby("N")["D"].nunique()
    ok = set(curves[curves >= 2].index) & set(ft["N"])
    notes = [f"N={n:g}: left out (incomplete: {int((sc['N'] == n).sum())} from-scratch, "
             f"{int((ft['N'] == n).sum())} fine-tuned runs)" for n in sorted(set(sc["N"]) | set(ft["N"])) if n not in ok]
    return sc[sc["N"].isin(ok)].reset_index(drop=True), ft[ft["N"].isin(ok)].reset_index(drop=True), notes


def interval(x: np.ndarray, ci: float = 0.9) -> str:
    lo, med, hi = np.quantile(np.asarray(x).ravel(), [(1 - ci) / 2, 0.5, 1 - (1 - ci) / 2])
    return f"{med:.3f} [{lo:.3f}, {hi:.3f}]"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="?", default=None, help="sweep folder (default: the bundled data set)")
    p.add_argument("--out", default="measured_transfer_report", help="folder for the tables and figures")
    p.add_argument("--imputations", type=int, default=20, help="imputations of the seed noise (default 20)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--joint", action="store_true", help="also fit the joint model (Kaplan law; minutes)")
    p.add_argument("--include", default=None, help="folder of an earlier bundled data set whose runs join the "
                   "sweep's (bayes_scaling/data/datasets: seed 0 = full.toml's v1 runs)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=bs.errors.ExclusionWarning)
    sc_all, ft_all, what = load(args.source, args.include)
    sc, ft, notes = usable(sc_all, ft_all)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 20)
    print(f"data: {what}; used: {len(sc)} from-scratch and {len(ft)} fine-tuned runs, sizes "
          f"{', '.join(f'{n:,.0f}' for n in sorted(sc['N'].unique()))}")
    for n in notes:
        print("  " + n)
    tables: dict[str, pd.DataFrame] = {}
    divergences: dict[str, int] = {}

    # ---- runs and seed noise --------------------------------------------------------------------------------
    counts = pd.concat([sc.assign(kind="scratch"), ft.assign(kind="finetune")]).pivot_table(
        index="N", columns=["kind", "seed"], values="loss", aggfunc="size", fill_value=0)
    print("\nruns per size, kind and seed\n" + counts.to_string())
    noise = S.seed_noise(sc, ft)
    tables["seed_noise"] = noise
    print("\nseed noise of log loss per size (pooled within-configuration sd, 90% chi-square interval)\n"
          + noise.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    # ---- the loss law (regimes) and effective data with the seed noise ----------------------------------------
    law_fit = bs.fit_scratch(sc, law="kaplan", seed=args.seed, warn=False, progressbar=False)
    divergences["from-scratch law (Kaplan)"] = law_fit.diagnostics.divergences
    prop = S.effective_data_seeds(sc, ft, scratch_fit=law_fit, n_imputations=args.imputations, seed=args.seed)
    for n in prop.notes:
        print("note: " + n)
    eff = prop.interval(0.9)
    tables["effective_data"] = eff

    # ---- alpha and beta -----------------------------------------------------------------------------------------
    full = S.fit_transfer_seeds(prop, seed=args.seed, warn=False)
    plain = _fit_transfer(prop.transfer_data(), seed=args.seed, warn=False)
    divergences["transfer, seed noise propagated (all imputations)"] = full.diagnostics.divergences
    divergences["transfer, seed-averaged runs"] = plain.diagnostics.divergences
    rows = []
    for name, f in (("two-stage, seed noise propagated", full), ("two-stage, seed-averaged runs only", plain)):
        post = f.posterior
        r = {"fit": name, "runs": f.data.n_used}
        for pt in post["pretraining"].values:
            r[f"alpha[{pt}]"] = interval(post["alpha"].sel(pretraining=pt).values)
        r["beta"] = interval(post["beta"].values)
        rows.append(r)
    ab = pd.DataFrame(rows)
    tables["alpha_beta"] = ab
    print("\nalpha and beta, 90% intervals (median [5%, 95%])\n" + ab.to_string(index=False))

    # ---- leave one size out --------------------------------------------------------------------------------------
    loso = S.leave_one_size_out(prop, full=full, seed=args.seed)
    tables["loso_beta"] = loso
    divergences["leave-one-size-out refits"] = int(loso["divergences"].iloc[1:].sum())
    inside = loso["inside"].iloc[1:]
    print("\nleave one size out: beta (median, 90% interval) against the full data's 90% interval\n"
          + loso.to_string(index=False, float_format=lambda v: f"{v:.3f}")
          + f"\n{int(inside.sum())} of {len(inside)} medians inside the full interval")

    # ---- the split that was fragile with one seed: the two smallest sizes left out together --------------------
    base = prop.transfer_data(None)
    used_N = sorted(base.table.loc[~base.table["excluded"].astype(bool), "N"].unique())
    if len(used_N) >= 4:
        drop = base.table["N"].isin(used_N[:2]).to_numpy()
        two = _fit_transfer(base.with_exclusions(drop, "left out: the two smallest sizes"), seed=args.seed,
                              warn=False)
        divergences["without the two smallest sizes"] = two.diagnostics.divergences
        b2 = two.posterior["beta"].values.ravel()
        lo, hi = loso["lb"].iloc[0], loso["ub"].iloc[0]
        m2 = float(np.median(b2))
        tables["without_two_smallest"] = pd.DataFrame([{"left_out": f"N = {used_N[0]:g}, {used_N[1]:g}",
                                                        "runs": two.data.n_used, "beta": interval(b2),
                                                        "inside_full_90": bool(lo <= m2 <= hi)}])
        print(f"\nwithout the two smallest sizes (N = {used_N[0]:,.0f}, {used_N[1]:,.0f}; {two.data.n_used} runs): "
              f"beta {interval(b2)}; median {'inside' if lo <= m2 <= hi else 'OUTSIDE'} the full 90% interval")

    # ---- shared vs separate beta ---------------------------------------------------------------------------------
    cmp = bs.compare_variants(base, variants=("shared_beta", "separate_beta"), seed=args.seed,
                              warn=False)
    ev = bs.analysis.beta_evidence(cmp, ci_prob=0.9)
    tables["loo"] = cmp.table
    for v, f in cmp.fits.items():
        divergences[f"LOO fit {v}"] = f.diagnostics.divergences
    print(f"\nshared vs separate beta (PSIS-LOO): {ev}")

    # ---- ossification --------------------------------------------------------------------------------------------
    oss = S.ossification_table(sc, ft, scratch_fit=law_fit)
    tables["ossification"] = oss
    print("\nossification per (N, D_F): runs over seeds and pre-training mixes, Jeffreys 90% interval\n"
          + oss.to_string(index=False, float_format=lambda v: f"{v:.2f}"))

    if args.joint:
        joint = bs.fit_joint(sc, ft, law="kaplan", seed=args.seed, warn=False, progressbar=False)
        divergences["joint model (Kaplan)"] = joint.diagnostics.divergences
        s = joint.summary(0.9)
        tables["joint"] = s
        print("\njoint model (Kaplan law), 90% intervals\n" + s[["parameter", "pretraining", "median", "eti90_lb",
                                                                 "eti90_ub", "r_hat"]].to_string(index=False))

    dv = pd.DataFrame({"fit": list(divergences), "divergences": list(divergences.values())})
    tables["divergences"] = dv
    print("\ndivergences (default sampler settings)\n" + dv.to_string(index=False))

    for name, t in tables.items():
        t.to_csv(out / f"{name}.csv", index=False)
    figures(sc, ft, eff, loso, oss, out)
    (out / "report.json").write_text(json.dumps({"data": what, "notes": notes + prop.notes,
                                                 "seconds": round(time.perf_counter() - t0, 1)}, indent=1))
    print(f"\ntables and figures in {out}/; {time.perf_counter() - t0:.0f} s")
    return 0


def figures(sc, ft, eff, loso, oss, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ns = sorted(sc["N"].unique())
    colours = dict(zip(Ns, plt.cm.viridis(np.linspace(0, 0.9, len(Ns))), strict=True))
    # 1. loss against D (scratch) and D_F (fine-tuned), every seed, mean line
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for n, g in sc.groupby("N"):
        axes[0].scatter(g["D"], g["loss"], s=10, color=colours[n])
        m = g.groupby("D")["loss"].apply(lambda v: np.exp(np.log(v).mean()))
        axes[0].plot(m.index, m.values, "-", color=colours[n], label=f"N = {n:,.0f}")
    for (pt, n), g in ft.groupby(["pretraining", "N"]):
        axes[1].scatter(g["D_F"], g["loss"], s=10, color=colours[n], marker="o" if pt == "text" else "s")
        m = g.groupby("D_F")["loss"].apply(lambda v: np.exp(np.log(v).mean()))
        axes[1].plot(m.index, m.values, "-" if pt == "text" else "--", color=colours[n])
    axes[0].set(xscale="log", xlabel="D (characters)", ylabel="held-out loss (nats/char)", title="from scratch: seeds")
    axes[1].set(xscale="log", xlabel="D_F (characters)", title="fine-tuned (o/solid text, s/dashed text+code)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "loss_seeds.png", dpi=110)
    plt.close(fig)
    # 2. D_T with intervals
    fig, ax = plt.subplots(figsize=(6, 4))
    ok = eff[(eff["out_of_range"] == "") & (eff["D_T"] > 0)]
    for (pt, n), g in ok.groupby(["pretraining", "N"]):
        # the point is the seed-averaged runs' D_T; the interval comes from the redraws, and with few
        # imputations it may not contain the point: bars then start at the point
        lo = np.clip(g["D_E_lb"] - g["D_F"], 1e-1, None)
        hi = np.clip(g["D_E_ub"] - g["D_F"], 1e-1, None)
        ax.errorbar(g["D_F"] * (1.04 if pt == "text" else 0.96), g["D_T"], yerr=[np.maximum(g["D_T"] - lo, 0), np.maximum(hi - g["D_T"], 0)],
                    fmt="o" if pt == "text" else "s", color=colours[n], ms=4, capsize=2)
    ax.set(xscale="log", yscale="log", xlabel="D_F (characters)", ylabel="D_T (90% over the seed noise)",
           title="effective data transferred")
    fig.tight_layout()
    fig.savefig(out / "transfer_intervals.png", dpi=110)
    plt.close(fig)
    # 3. LOSO forest
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(loso) + 1))
    lab = ["all sizes"] + [f"without N = {n:,.0f}" for n in loso["N"].iloc[1:]]
    y = np.arange(len(loso))[::-1]
    ax.errorbar(loso["beta"], y, xerr=[np.maximum(loso["beta"] - loso["lb"], 0), np.maximum(loso["ub"] - loso["beta"], 0)], fmt="o", capsize=3)
    ax.axvspan(loso["lb"].iloc[0], loso["ub"].iloc[0], color="grey", alpha=0.2)
    ax.axvline(0.38, ls=":", color="k", label="Table 1: 0.38")
    ax.set_yticks(y, lab)
    ax.set(xlabel="beta (median, 90% interval)", title="leave one size out")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "loso_beta.png", dpi=110)
    plt.close(fig)
    # 4. ossification map
    fig, ax = plt.subplots(figsize=(6, 4))
    piv = oss.pivot_table(index="N", columns="D_F", values="share")
    im = ax.imshow(piv.values, origin="lower", cmap="Reds", vmin=0, vmax=1, aspect="auto")
    for i, n in enumerate(piv.index):
        for j, d in enumerate(piv.columns):
            r = oss[(oss["N"] == n) & (oss["D_F"] == d)]
            if len(r):
                r = r.iloc[0]
                ax.text(j, i, f"{int(r['ossified'])}/{int(r['runs'])}\n[{r['lb']:.2f}, {r['ub']:.2f}]", ha="center",
                        va="center", fontsize=6)
    ax.set_xticks(range(len(piv.columns)), [f"{d:.0e}" for d in piv.columns])
    ax.set_yticks(range(len(piv.index)), [f"{n:,.0f}" for n in piv.index])
    ax.set(xlabel="D_F", ylabel="N", title="ossified runs (D_T <= 0), Jeffreys 90%")
    fig.colorbar(im, ax=ax, label="share")
    fig.tight_layout()
    fig.savefig(out / "ossification.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
