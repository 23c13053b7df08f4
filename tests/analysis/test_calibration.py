"""Simulation-based calibration: the checks pass for the model as written, fail for a wrong prior, and
the statistics behind them behave as stated."""

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.analysis.calibration import SBCResult, ecdf_band, run_sbc
from bayes_scaling.inference.sampling import available_backends
from bayes_scaling.models.transfer import ModelConfig

FAST = dict(draws=200, tune=200, chains=2, n_rank=49)
needs_nutpie = pytest.mark.skipif("nutpie" not in available_backends(), reason="SBC runs on nutpie")


def _result(ranks: np.ndarray, n_draws: int) -> SBCResult:
    ranks = pd.DataFrame(ranks, columns=[f"p{i}" for i in range(ranks.shape[1])])
    frac = ranks / n_draws
    return SBCResult(ranks=ranks, n_draws=n_draws, in50=(frac > 0.25) & (frac < 0.75),
                     in90=(frac > 0.05) & (frac < 0.95), divergences=np.zeros(len(ranks), int), seconds=0.0)


@pytest.fixture(scope="module")
def sbc_fast():
    return run_sbc(24, seed=11, **FAST)


@needs_nutpie
def test_fast_sbc_passes(sbc_fast):
    res = sbc_fast
    checks = res.checks()
    assert checks["passed"].all(), checks
    assert res.passed
    # every parameter of the hierarchical model (the engine's transfer spec), one column per distribution
    assert {"beta", "sigma", "log_k_at_centre_mu", "log_k_at_centre_sigma", "alpha_mu", "alpha_sigma", "alpha[A]",
            "alpha[B]", "k[A]", "k[B]"} <= set(res.ranks.columns)
    assert res.settings["model"] == "transfer" and res.settings["config"] == ModelConfig().to_dict()
    assert res.ranks.to_numpy().min() >= 0 and res.ranks.to_numpy().max() <= 49
    assert len(res.ranks) == 24
    cov = res.coverage()
    assert cov["coverage90"].between(0.6, 1.0).all() and cov["coverage50"].between(0.15, 0.85).all()


@needs_nutpie
def test_sbc_detects_a_wrong_prior():
    """Simulating from much wider between-distribution spreads than the fitted prior allows: with two
    pre-training distributions the prior dominates the spread, so the fitted posterior is too narrow and
    the ranks pile up at the top. The checks must fail."""
    wrong = ModelConfig(priors={"log_k_spread": {"sigma": 8.0}, "alpha_spread": {"sigma": 0.8}})
    res = run_sbc(24, seed=11, sim_config=wrong, **FAST)
    checks = res.checks()
    assert not res.passed
    assert not checks.loc["log_k_at_centre_sigma", "passed"], checks
    assert checks.loc["log_k_at_centre_sigma", "uniformity_p"] < 1e-4
    assert res.ranks["log_k_at_centre_sigma"].mean() > 0.75 * 49  # truths above most posterior draws


@needs_nutpie
@pytest.mark.slow  # ~30-60 s of worker start-up on 2 cores; test_batch.py checks a cluster against serial SBC
def test_sbc_is_reproducible_across_processes():
    one = run_sbc(4, seed=5, **FAST)
    two = run_sbc(4, seed=5, processes=2, **FAST)
    pd.testing.assert_frame_equal(one.ranks, two.ranks)
    np.testing.assert_array_equal(one.divergences, two.divergences)


def test_uniformity_statistics():
    rng = np.random.default_rng(0)
    uniform = _result(rng.integers(0, 100, size=(200, 3)), 99)
    assert (uniform.uniformity()["p_value"] > 0.001).all()
    assert (uniform.ecdf_max_deviation() < ecdf_band(200, 99, 0.999)).all()
    # ranks piled at both ends (an over-confident posterior): chi-square and ECDF both reject
    piled = _result(np.where(rng.random((200, 3)) < 0.5, rng.integers(0, 10, (200, 3)),
                             rng.integers(90, 100, (200, 3))), 99)
    assert (piled.uniformity()["p_value"] < 1e-10).all()
    assert not piled.checks()["passed"].any()
    # closed form: 4 bins of 100 values with counts 10, 10, 10, 10 -> chi2 0; 40, 0, 0, 0 -> chi2 120
    flat = _result(np.repeat([[0], [30], [60], [90]], 10, axis=0), 99)
    u = flat.uniformity(bins=4)
    assert u.loc["p0", "chi2"] == 0 and u.loc["p0", "df"] == 3
    assert _result(np.zeros((40, 1), int), 99).uniformity(bins=4).loc["p0", "chi2"] == pytest.approx(120)


def test_ecdf_band_shrinks_with_more_simulations():
    assert ecdf_band(400, 99, 0.99) < ecdf_band(100, 99, 0.99) < ecdf_band(25, 99, 0.99)
    assert ecdf_band(100, 99, 0.5) < ecdf_band(100, 99, 0.99)
    # Kolmogorov: the 95% band for n uniform draws is about 1.36 / sqrt(n)
    assert ecdf_band(400, 999, 0.95) == pytest.approx(1.36 / np.sqrt(400), rel=0.1)


@needs_nutpie
def test_ecdf_plot(sbc_fast):
    from matplotlib.figure import Figure

    fig = sbc_fast.plot_ecdf()
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == sbc_fast.ranks.shape[1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_rank"):
        run_sbc(5, draws=10, chains=1, n_rank=99)
    with pytest.raises(ValueError, match="n_sims"):
        run_sbc(1)


@pytest.mark.slow
@needs_nutpie
def test_full_sbc_100_simulations():
    """The benchmark-grade run: the transfer law spec of fit_transfer's default ModelConfig by bs.fit at
    target_accept 0.99 (k sampled at the data's centre, the pooled form the fit chooses itself for each
    simulated data set: spec_model.pinned_by_groups; a divergent fit rerun at 0.999) on the weak design
    (2 distributions x 4 N x 4 D_F): 100 simulations, 2 x 400 draws each, ranks among 99 draws. Every check
    passes, and at most 3 fits of 100 keep a divergence (measured: 5 before the rerun, 1 after; 43 with k at
    D_F = N = 1 in the centred form)."""
    res = run_sbc(100, seed=2026)
    assert {"log_k_at_centre_mu", "log_k_at_centre_sigma"} <= set(res.ranks.columns)
    checks = res.checks()
    assert checks["passed"].all(), checks
    assert (res.divergences > 0).sum() <= 3, res.divergences


@needs_nutpie
def test_calibrate_command(tmp_path, capsys):
    from bayes_scaling.cli import main

    out = tmp_path / "sbc"
    # --workers 1: in this process (the default, a local Dask cluster, is tested in test_batch.py)
    code = main(["calibrate", "--sims", "8", "--draws", "100", "--tune", "100", "--ranks-of", "19",
                 "--out", str(out), "--seed", "3", "--workers", "1"])
    text = capsys.readouterr().out
    assert "NUTS back end: nutpie" in text and "beta" in text
    ranks = pd.read_csv(out / "ranks.csv", index_col="simulation")
    assert ranks.shape[0] == 8 and ranks.to_numpy().max() <= 19
    assert (out / "sbc_ecdf.png").stat().st_size > 10_000
    # the exit status is the verdict of the checks written: 0 and PASS when all pass, else 1 and FAIL
    passed = pd.read_csv(out / "checks.csv")["passed"].astype(bool)
    assert code == (0 if passed.all() else 1)
    assert f"{'PASS' if passed.all() else 'FAIL'}: {passed.sum()}/{len(passed)} parameters calibrated" in text
    assert main(["calibrate", "--sims", "4", "--ranks-of", "5000", "--out", str(out)]) == 2
    assert "cannot exceed" in capsys.readouterr().err
