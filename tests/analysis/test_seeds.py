"""Runs with several seeds: replicates in the loss laws and the joint model (seed noise in the likelihood), the
measured seed noise, its propagation into effective data and D_T (two-stage route), ossification, LOSO."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers import inside

from bayes_scaling.analysis.seeds import (
    cell_means,
    effective_data_seeds,
    fit_transfer_seeds,
    jeffreys_interval,
    leave_one_size_out,
    ossification_table,
    ossified_runs,
    seed_noise,
)
from bayes_scaling.data.simulate import KAPLAN_WEBTEXT2, simulate_seeds
from bayes_scaling.errors import DataError
from bayes_scaling.inference.scratch import ScratchFit, fit_scratch
from bayes_scaling.models.losslaws import (
    LossLawConfig,
    build_loss_model,
    read_scratch,
    replicate_cells,
)

#: these tests exercise the deprecated wrappers fit_scratch / fit_joint (their FutureWarning is tested in test_spec)
pytestmark = pytest.mark.filterwarnings("ignore:fit_(scratch|joint) is deprecated:FutureWarning")


def exact_fit(scratch: pd.DataFrame, params=KAPLAN_WEBTEXT2, draws: int = 4) -> ScratchFit:
    """A ScratchFit whose every draw is the truth (regimes without sampling)."""
    post = xr.Dataset({k: (("chain", "draw"), np.full((1, draws), float(v))) for k, v in {**params, "sigma": 0.0}.items()},
                      coords={"chain": [0], "draw": np.arange(draws)})
    tree = xr.DataTree.from_dict({"posterior": post})
    tree.attrs.update(bayes_scaling_kind="scratch", seed=0, unit="characters")
    return ScratchFit(tree, scratch, LossLawConfig(law="kaplan"))


# ---- input: replicates are rows with different seeds ---------------------------------------------------------


def test_seeds_are_replicates_and_copies_are_refused():
    df = pd.DataFrame({"N": [1e6, 1e6, 1e6], "D": [1e8, 1e8, 1e9], "loss": [3.0, 3.1, 2.8], "seed": [0, 1, 0]})
    assert len(read_scratch(df)) == 3                         # different seeds: replicates, accepted
    with pytest.raises(DataError, match=r"N=1e\+06, D=1e\+08 at rows 0, 1 .*one run per \(N, D\) and seed"):
        read_scratch(df.assign(seed=0))                        # the same seed twice: a duplicate
    with pytest.raises(DataError, match=r"replicate runs \(same N, D\) at rows 0, 1 all have identical loss"):
        build_loss_model(read_scratch(df.assign(loss=[3.0, 3.0, 2.8])), LossLawConfig(law="kaplan"))


def test_seed_noise_closed_form_and_cell_means():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 0.02, (40, 3))   # 40 configurations x 3 seeds at one N, known sd 0.02 of log loss
    df = pd.DataFrame({"N": 1e6, "D": np.repeat(np.arange(40) + 1e3, 3), "loss": np.exp(1 + y.ravel()),
                       "seed": np.tile([0, 1, 2], 40)})
    row = seed_noise(df).iloc[0]
    ss = ((y - y.mean(1, keepdims=True)) ** 2).sum()
    assert row["df"] == 80 and row["sd_log_loss"] == pytest.approx(np.sqrt(ss / 80))
    assert row["lb"] < 0.02 < row["ub"] and row["ub"] / row["lb"] < 1.6
    cm = cell_means(df, ["N", "D"])
    assert len(cm) == 40 and (cm["n_seeds"] == 3).all() and cm["seeds"].iloc[0] == "0, 1, 2"
    np.testing.assert_allclose(np.log(cm["loss"]), 1 + y.mean(1))
    one = seed_noise(df[df["seed"] == 0]).iloc[0]          # one seed: nothing measured
    assert one["df"] == 0 and np.isnan(one["sd_log_loss"])


def test_one_seed_model_is_unchanged_and_replicates_add_seed_noise():
    sc, _, _ = simulate_seeds(1, n_seeds=2)
    one = build_loss_model(read_scratch(sc[sc["seed"] == 0]), LossLawConfig(law="kaplan"))[0]
    assert "sigma_seed" not in one.named_vars and one.named_vars_to_dims["log_loss"] == ("scratch_run",)
    two = build_loss_model(read_scratch(sc), LossLawConfig(law="kaplan"))[0]
    assert {"sigma_seed", "seed_slope", "log_loss_seed_scatter"} <= set(two.named_vars)
    assert two.named_vars_to_dims["log_loss"] == ("scratch_cell",) and len(two.coords["scratch_cell"]) == 48
    assert replicate_cells(sc).df == 48


def test_scratch_law_recovers_seed_noise():
    """Known truth: Kaplan's law, seed noise of log loss 0.02 * (N / 1e6)**-0.1 (0.0142 at the centre of log N,
    1e7.5), misfit 0.003, 3 seeds of 32 configurations: the 95% interval of sigma_seed (at the centre) holds the
    truth, its median agrees with the direct pooled estimate (:func:`seed_noise`) within 10%, the seed noise
    falls with N as simulated (the slope itself is loosely pinned by 4 sizes: its 95% interval on this data set,
    [-0.095, 0.013], just misses the true -0.1, as the per-size sample sds do: a slope of -0.054), the law's
    parameters are recovered, sigma is the misfit, no divergences."""
    sc, _, meta = simulate_seeds(3, n_seeds=3, sigma_seed=0.02, seed_slope=-0.1, D=np.logspace(5, np.log10(3e10), 8))
    fit = fit_scratch(sc, law="kaplan", seed=1, draws=300, tune=300, chains=2, progressbar=False, warn=False)
    summ = fit.summary(0.95)
    row = summ[summ.parameter == "sigma_seed"].iloc[0]
    assert inside(row, 0.02 * 10 ** (1.5 * -0.1), 0.95), row
    pooled = seed_noise(sc).query("N == 'all'")["sd_log_loss"].iloc[0]
    assert row["median"] == pytest.approx(pooled, rel=0.1)
    assert float(fit.posterior["seed_slope"].median()) < 0                # it falls with N, as simulated
    for name, true in meta["law_params"].items():
        row = summ[summ.parameter == name].iloc[0]
        assert inside(row, true, 0.95), (name, row)
    assert float(fit.posterior["sigma"].median()) < 0.01          # the misfit, not the seed noise
    assert fit.diagnostics.divergences == 0
    assert fit_scratch(sc[sc["seed"] == 0], law="kaplan", seed=1, draws=50, tune=50, chains=1, progressbar=False,
                       warn=False).seed_noise(1e6) is None       # one seed: no seed noise to report


# ---- the two-stage route: the seed noise of the averages propagated into D_E ------------------------------------


def _coverage(perturb, sims=(0, 1)):
    covs = []
    for s in sims:
        sc, ft, _ = simulate_seeds(s, n_seeds=3, sigma_seed=0.02, sigma=0.0)
        prop = effective_data_seeds(sc, ft, scratch_fit=exact_fit(sc), n_imputations=20, seed=s, perturb=perturb)
        iv = prop.interval(0.9)
        truth = ft.groupby(["pretraining", "N", "D_F"], sort=False)["true_D_E"].first().to_numpy()
        ok = (iv["out_of_range"] == "").to_numpy()
        covs.append(((iv["D_E_lb"] <= truth) & (truth <= iv["D_E_ub"])).to_numpy()[ok])
    return float(np.mean(np.concatenate(covs)))


def test_effective_data_intervals_cover_the_true_D_E():
    """Known truth (Kaplan law, Table 1 transfer, 3 seeds, seed noise 0.02 of log loss): the 90% intervals of D_E
    from the imputations hold the true D_E of about 90% of the configurations (measured 0.87 over 5 data sets,
    40 imputations); redrawing only the fine-tuned losses, not the from-scratch curve, covers fewer (0.74)."""
    both = _coverage(("scratch", "finetune"))
    only_ft = _coverage(("finetune",))
    assert 0.78 <= both <= 0.98, both
    assert only_ft < both - 0.05, (only_ft, both)


def test_one_seed_two_stage_is_unchanged_unless_noise_is_given():
    sc, ft, _ = simulate_seeds(2, n_seeds=1)
    prop = effective_data_seeds(sc, ft, scratch_fit=exact_fit(sc))
    assert prop.imputations == [] and prop.draws is None and "not propagated" in prop.notes[0]
    from bayes_scaling.analysis.effective import effective_data

    plain = effective_data(sc.drop(columns="seed"), ft.drop(columns="seed"), scratch_fit=exact_fit(sc), warn=False)
    np.testing.assert_allclose(prop.base.table["D_E"], plain.table["D_E"])
    given = effective_data_seeds(sc, ft, scratch_fit=exact_fit(sc), noise=0.01, n_imputations=5)
    assert given.n_imputations == 5 and (given.interval()["D_E_ub"] > given.interval()["D_E_lb"]).mean() > 0.8
    with pytest.raises(ValueError, match="n_imputations"):
        effective_data_seeds(sc, ft, scratch_fit=exact_fit(sc), noise=0.01, n_imputations=1)


def test_transfer_fit_over_imputations_widens_beta_and_loso():
    sc, ft, _ = simulate_seeds(4, n_seeds=3, sigma_seed=0.02, sigma=0.002)
    prop = effective_data_seeds(sc, ft, scratch_fit=exact_fit(sc), n_imputations=6, seed=1)
    fit = fit_transfer_seeds(prop, seed=1, draws=200, warn=False)
    from bayes_scaling.inference.sampling import fit_transfer

    plain = fit_transfer(prop.transfer_data(), seed=1, draws=300, warn=False)
    width = {k: float(np.diff(np.quantile(f.posterior["beta"].values, [0.05, 0.95]))[0])
             for k, f in (("pooled", fit), ("plain", plain))}
    assert width["pooled"] > 1.2 * width["plain"], width
    assert fit.posterior.sizes["chain"] == 6 * 4 and fit.diagnostics.divergences == 0
    assert fit.diagnostics.n_samples == 6 * 4 * 200
    lo, hi = np.quantile(fit.posterior["beta"].values, [0.05, 0.95])
    assert lo <= 0.38 <= hi
    loso = leave_one_size_out(prop, full=fit, seed=1, draws=300)
    assert loso["N"].iloc[0] == "none" and len(loso) == 1 + 4 and loso["lb"].iloc[0] == pytest.approx(lo)
    assert loso["inside"].dtype == bool and loso["runs"].iloc[1:].lt(loso["runs"].iloc[0]).all()


# ---- ossification ----------------------------------------------------------------------------------------------


def test_ossification_counts_and_jeffreys_intervals():
    sc = pd.DataFrame({"N": 1e6, "D": [1e3, 1e4, 1e5] * 2, "loss": [3.0, 2.5, 2.0, 3.02, 2.52, 2.02],
                       "seed": [0, 0, 0, 1, 1, 1]})
    # D_F = 1e4: a loss of 2.4 beats the curve at 1e4 (D_T > 0); 2.6 is worse (D_T < 0); 3.5 is above the curve
    ft = pd.DataFrame({"pretraining": "text", "N": 1e6, "D_F": [1e4, 1e4, 1e4], "loss": [2.4, 2.6, 3.5],
                       "seed": [0, 1, 2]})
    runs = ossified_runs(sc, ft)
    assert runs["ossified"].tolist() == [False, True, True] and runs["out_of_range"].tolist() == ["", "", "above_curve"]
    t = ossification_table(sc, ft)
    assert t[["runs", "ossified"]].values.tolist() == [[3, 2]]
    lo, hi = jeffreys_interval(2, 3, 0.9)
    assert t["lb"].iloc[0] == pytest.approx(lo) and t["ub"].iloc[0] == pytest.approx(hi) and 0.2 < lo < 2 / 3 < hi < 1
    assert jeffreys_interval(0, 5)[0] == 0 and jeffreys_interval(5, 5)[1] == 1


# ---- the joint model with replicates --------------------------------------------------------------------------


@pytest.mark.slow
def test_joint_with_seeds_recovers_truth_and_seed_noise():
    """Known truth (Kaplan law, Table 1 transfer, 3 seeds; seed noise 0.01 from scratch and 0.015 fine-tuned,
    misfit 0.003): the 95% intervals hold alpha, log k, beta and both seed noises; the implied noise of log D_E
    includes the seed noise; no divergences."""
    from bayes_scaling.inference.joint import fit_joint

    sc, ft, meta = simulate_seeds(21, n_seeds=3, sigma_seed=0.01, sigma_seed_finetune=0.015)
    fit = fit_joint(sc, ft, law="kaplan", seed=4, draws=500, tune=500, chains=2, progressbar=False, warn=False)
    s = fit.summary(0.95)
    for p, t in meta["truth"].items():
        for par, true in (("alpha", t["alpha"]), ("log_k", np.log(t["k"]))):
            row = s[(s.parameter == par) & (s.pretraining == p)].iloc[0]
            assert inside(row, true, 0.95), (par, p, row)
    row = s[s.parameter == "beta"].iloc[0]
    assert inside(row, 0.38, 0.95)
    for name, true in (("sigma_seed_scratch", 0.01), ("sigma_seed_finetune", 0.015)):
        row = s[s.parameter == name].iloc[0]
        assert inside(row, true, 0.95), (name, row)
    assert fit.posterior["D_E"].sizes["run"] == fit.data.n_used
    assert fit.diagnostics.divergences == 0


@pytest.mark.slow
def test_imputed_beta_intervals_cover_where_the_averaged_fit_does_not():
    """Calibration on 20 simulated data sets (seeds 200-219; Kaplan law, Table 1 transfer, 3 seeds, seed noise
    0.02 of log loss, misfit 0.002; regimes from the true law; 8 imputations): the 90% intervals of beta from the
    pooled imputations held the truth in 19 of 20 (0.95; width 0.26), the plain fit of the seed-averaged runs in
    14 of 20 (0.70; width 0.12): the errors of D_E shared by the runs of one size make the plain fit too sure.
    The pooled intervals are somewhat conservative (the redrawn fine-tuned losses repeat noise the transfer
    fit's sigma already holds). No divergences in the fits returned (the weakly pinned imputations are
    non-centred; 3 of the 180 fits diverged once at target_accept 0.99 and were rerun at 0.999 by bs.fit)."""
    from bayes_scaling.inference.sampling import fit_transfer

    cov = {"pooled": [], "plain": []}
    for s in range(200, 220):
        sc, ft, _ = simulate_seeds(s, n_seeds=3, sigma_seed=0.02, sigma=0.002)
        prop = effective_data_seeds(sc, ft, scratch_fit=exact_fit(sc), n_imputations=8, seed=s - 200)
        fits = {"plain": fit_transfer(prop.transfer_data(), seed=s - 200, warn=False, draws=500),
                "pooled": fit_transfer_seeds(prop, seed=s - 200, warn=False)}
        for k, f in fits.items():
            lo, hi = np.quantile(f.posterior["beta"].values, [0.05, 0.95])
            cov[k].append(lo <= 0.38 <= hi)
            assert f.diagnostics.divergences == 0
    assert np.mean(cov["pooled"]) >= 0.85 and np.mean(cov["plain"]) <= np.mean(cov["pooled"]) - 0.15, cov


@pytest.mark.slow
def test_measured_transfer_report_runs_on_the_bundled_data(tmp_path, capsys):
    """benchmarks/measured_transfer_report.py on the bundled data set: every table and figure is written and
    the printed sections are there (one seed or several)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "measured_transfer_report.py"
    spec = importlib.util.spec_from_file_location("measured_transfer_report", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path), "--imputations", "4"]) == 0
    text = capsys.readouterr().out
    for head in ("seed noise of log loss per size", "alpha and beta, 90% intervals", "leave one size out",
                 "shared vs separate beta (PSIS-LOO)", "ossification per (N, D_F)", "divergences"):
        assert head in text, head
    for name in ("seed_noise", "alpha_beta", "loso_beta", "loo", "ossification", "divergences"):
        assert (tmp_path / f"{name}.csv").is_file(), name
    for name in ("loss_seeds", "transfer_intervals", "loso_beta", "ossification"):
        assert (tmp_path / f"{name}.png").is_file(), name
    # issue 14's bar: every fit of the analysis, default sampler settings, without a divergent transition
    import pandas as pd

    dv = pd.read_csv(tmp_path / "divergences.csv")
    assert len(dv) >= 6 and (dv["divergences"] == 0).all(), dv
    assert (tmp_path / "without_two_smallest.csv").is_file()


def test_doctests():
    import doctest

    from bayes_scaling.analysis import seeds

    assert doctest.testmod(seeds).failed == 0
