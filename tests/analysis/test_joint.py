"""Joint model of from-scratch and fine-tuned losses: recovery, TransferFit duck-typing, save/load, comparison."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import inside

from bayes_scaling.analysis.joint import compare_with_two_stage, comparison_table
from bayes_scaling.analysis.predictions import predict
from bayes_scaling.data.simulate import simulate_losses
from bayes_scaling.errors import DataError, FitFileError
from bayes_scaling.inference.joint import fit_joint, load_joint_fit

#: these tests exercise the deprecated wrappers fit_scratch / fit_joint (their FutureWarning is tested in test_spec)
pytestmark = pytest.mark.filterwarnings("ignore:fit_(scratch|joint) is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def sim():
    return simulate_losses(seed=21)


@pytest.fixture(scope="module")
def joint(sim):
    scratch, finetune, _ = sim
    return fit_joint(scratch, finetune, law="kaplan", seed=4, draws=300, tune=300, chains=2, progressbar=False,
                     warn=False)


@pytest.mark.slow     # ~50 s on 2 shared cores
def test_joint_chinchilla_with_its_floor_recovers_the_law_and_the_transfer():
    """The built-in joint_chinchilla spec samples the floor as a fraction of the lowest loss over all runs
    (from scratch and fine-tuned): on losses simulated at Epoch AI's Chinchilla values and Table 1's transfer,
    every loss-law and transfer parameter lies in its 95% interval (measured at seed 4: E 1.812 [1.788, 1.836],
    truth 1.817)."""
    scratch, finetune, meta = simulate_losses(seed=21, law="chinchilla")
    fit = fit_joint(scratch, finetune, law="chinchilla", seed=4, draws=300, tune=300, chains=2, progressbar=False,
                    warn=False)
    assert fit.spec.parameters["E"].fraction_of == "min_target"
    s = fit.summary(0.95)
    for name, value in meta["law_params"].items():
        assert inside(s[s.parameter == name].iloc[0], value, 0.95), name
    for p, t in meta["truth"].items():
        for name, value in (("alpha", t["alpha"]), ("log_k", np.log(t["k"]))):
            assert inside(s[(s.parameter == name) & (s.pretraining == p)].iloc[0], value, 0.95), (p, name)
    assert inside(s[s.parameter == "beta"].iloc[0], 0.38, 0.95)
    assert fit.diagnostics.divergences == 0


def test_joint_recovers_transfer_and_law(joint, sim):
    _, _, meta = sim
    s = joint.summary(0.95)
    for p, t in meta["truth"].items():
        row = s[(s.parameter == "alpha") & (s.pretraining == p)].iloc[0]
        assert inside(row, t["alpha"], 0.95), (p, row)
        row = s[(s.parameter == "log_k") & (s.pretraining == p)].iloc[0]
        assert inside(row, np.log(t["k"]), 0.95), (p, row)
    row = s[s.parameter == "beta"].iloc[0]
    assert inside(row, 0.38, 0.95)
    for name, true in meta["law_params"].items():
        row = s[s.parameter == name].iloc[0]
        assert inside(row, true, 0.95), (name, row)
    assert joint.diagnostics.divergences == 0


def test_joint_excludes_non_low_runs_and_is_transferfit_compatible(joint, sim):
    _, finetune, _ = sim
    ft = joint.data.finetune
    assert joint.data.n_used == int((ft["regime"] == "low").sum()) < len(finetune)
    assert "high-data regime" in joint.data.exclusion_report()
    post = joint.posterior
    for v in ("k", "log_k", "alpha"):
        assert post[v].dims == ("chain", "draw", "pretraining")
    assert post["beta"].dims == ("chain", "draw")
    assert {"N_c", "D_c", "alpha_N", "alpha_D", "sigma_scratch", "sigma_finetune"} <= set(post.data_vars)
    assert joint.pretraining == ["text", "text+code"] and joint.data.unit == "characters"
    pred = predict(joint, N=[1e7, 1e8], D_F=[1e5, 1e6])
    assert pred["D_T"].dims == ("chain", "draw", "pretraining", "N", "D_F")
    noisy = predict(joint, N=[1e7], D_F=[1e6], noise=True, seed=1)
    assert np.isfinite(noisy["D_T"]).all() and float(noisy["D_T"].std()) > float(
        predict(joint, N=[1e7], D_F=[1e6])["D_T"].std())
    assert 0 < float(joint.posterior["sigma_D_E"].median()) < 1  # implied noise of log D_E
    # the loss-law part behaves as a ScratchFit
    assert joint.scratch_fit().inverse(3.5, 1e8).dims == ("chain", "draw")


def test_joint_save_load(joint, tmp_path):
    path = joint.save(tmp_path / "joint.nc")
    back = load_joint_fit(path)
    np.testing.assert_array_equal(back.posterior["alpha"].values, joint.posterior["alpha"].values)
    assert back.pretraining == joint.pretraining and back.law == "kaplan"
    assert back.data.n_used == joint.data.n_used and back.data.unit == "characters"
    assert back.data.finetune["excluded"].dtype == bool
    other = back.tree.copy()
    other.attrs["bayes_scaling_kind"] = "transfer"
    other.to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    with pytest.raises(FitFileError, match="not a bayes_scaling joint fit"):
        load_joint_fit(tmp_path / "other.nc")
    # an edited configuration is caught by the hash; a missing one is a FitFileError, not a KeyError
    import xarray as xr

    with xr.open_datatree(path, engine="h5netcdf") as f:
        full = f.load()
    edited = full.copy()
    edited.attrs["config"] = edited.attrs["config"].replace('"kaplan"', '"chinchilla"')
    edited.to_netcdf(tmp_path / "edited.nc", engine="h5netcdf")
    with pytest.raises(FitFileError, match="configuration hash mismatch"):
        load_joint_fit(tmp_path / "edited.nc")
    for attr in ("config", "transfer_config"):
        lacking = full.copy()
        del lacking.attrs[attr]
        lacking.to_netcdf(tmp_path / f"no_{attr}.nc", engine="h5netcdf")
        with pytest.raises(FitFileError, match=attr):
            load_joint_fit(tmp_path / f"no_{attr}.nc")


def test_joint_bad_input(sim):
    scratch, finetune, _ = sim
    with pytest.raises(DataError, match="same unit"):
        fit_joint(scratch.assign(unit="tokens"), finetune, law="kaplan")
    with pytest.raises(DataError, match=r"column 'loss' must be > 0; rows 2"):
        fit_joint(scratch, finetune.assign(loss=np.where(np.arange(len(finetune)) == 2, 0.0, finetune["loss"])))


@pytest.mark.slow
def test_compare_with_two_stage_one_seed():
    """Both approaches produce intervals for every parameter; the joint intervals are narrower on average
    (seeded; the numbers over 10 seeds are in the output of python -m bayes_scaling.analysis.joint, see the README)."""
    res = compare_with_two_stage([0], draws=300, tune=300, chains=2)
    assert set(res["approach"]) == {"joint", "two-stage"} and len(res) == 10
    table = comparison_table(res)
    width = table.pivot_table(index=["parameter", "pretraining"], columns="approach", values="mean_width")
    assert (width["joint"] < width["two-stage"]).mean() >= 0.8
    assert res.loc[res.approach == "joint", "covered"].all()


def test_cli_fit_joint(tmp_path, capsys):
    from bayes_scaling.cli import main
    from bayes_scaling.data.datasets import FINETUNE_LOSSES_CSV, SCRATCH_LOSSES_CSV

    out = tmp_path / "joint.nc"
    rc = main(["fit-joint", str(SCRATCH_LOSSES_CSV), str(FINETUNE_LOSSES_CSV), "--law", "kaplan", "--out",
               str(out), "--draws", "100", "--tune", "100", "--chains", "1"])
    text = capsys.readouterr().out
    assert rc == 0 and "fine-tuned runs: 30 used" in text and "alpha" in text
    assert load_joint_fit(out).pretraining == ["text", "text+code"]
    ran = load_joint_fit(out).backend  # the back end that ran, not the requested "auto"
    assert ran in ("nutpie", "pymc") and f"NUTS back end: {ran}, seed 1;" in text
    assert main(["summary", str(out)]) == 0          # the saved joint fit summarised as the law-spec fit it is
    text = capsys.readouterr().out
    assert text.startswith("JointFit(law='kaplan'") and "78 rows; NUTS back end" in text and "sigma_finetune" in text


def test_fit_joint_is_deprecated_and_names_its_replacement(sim):
    """fit_joint warns (FutureWarning) with the bs.fit call of the joint spec; the package's own callers (the CLI,
    analysis.joint) use the implementation without the warning."""
    import warnings

    from bayes_scaling.errors import DataError
    from bayes_scaling.inference.joint import _fit_joint

    scratch, finetune, _ = sim
    bad = scratch.assign(loss=-1.0)
    with pytest.warns(FutureWarning, match=r'use bs\.fit\(runs, "joint_kaplan", \.\.\.\)'):
        with pytest.raises(DataError, match="loss"):
            fit_joint(bad, finetune, law="kaplan")
    with pytest.warns(FutureWarning, match=r'use bs\.fit\(runs, "joint_chinchilla", \.\.\.\)'):   # the default law
        with pytest.raises(DataError, match="loss"):
            fit_joint(bad, finetune)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        with pytest.raises(DataError, match="loss"):
            _fit_joint(bad, finetune, law="kaplan")


def test_joint_fit_files_of_version_0_2_load(tmp_path):
    """tests/fixtures/v0.2_joint.nc was written by bayes_scaling 0.2.0's fit_joint (the former joint model, 2 chains
    x 40 draws, the bundled losses): it loads with bs.load as a JointFit (legacy), with its summary, its grid
    predictions of D_T and its loss law; saved again it keeps its format and loads the same."""
    from helpers import REPO

    import bayes_scaling as bs

    old = bs.load(REPO / "tests" / "fixtures" / "v0.2_joint.nc")
    assert type(old).__name__ == "JointFit" and old.legacy and old.tree.attrs["bayes_scaling_version"] == "0.2.0"
    assert old.pretraining == ["text", "text+code"] and old.data.n_used == 30
    s = old.summary(0.9)
    assert {"k", "log_k", "alpha", "beta", "N_c", "sigma_scratch", "sigma_finetune"} <= set(s["parameter"])
    post = old.posterior
    pred = predict(old, N=[1e8], D_F=[1e6])
    law = post["k"].sel(pretraining="text") * 1e6 ** post["alpha"].sel(pretraining="text") * 1e8 ** post["beta"]
    np.testing.assert_allclose(pred["D_T"].sel(pretraining="text").values.ravel(),
                               law.transpose("chain", "draw").values.ravel(), rtol=1e-9)
    assert old.scratch_fit().inverse(3.5, 1e8).dims == ("chain", "draw")
    with pytest.raises(FitFileError, match="on a grid only"):
        old.predict({"N": [1e8], "D": [1e6], "pretrained": [1], "pretraining": ["text"]})
    again = bs.load(old.save(tmp_path / "again.nc"))
    assert again.legacy and again.tree.attrs["bayes_scaling_kind"] == "joint"
    np.testing.assert_array_equal(again.posterior["alpha"].values, post["alpha"].values)


def test_joint_spec_maps_the_configuration_or_says_what_cannot():
    """joint_spec: the loss law's likelihood and the priors a spec can hold; with replicates the seed noise per kind
    of run; transfer priors changed from the defaults (the former model placed them at the data's centre) are a
    ConfigError naming them."""
    from bayes_scaling.errors import ConfigError
    from bayes_scaling.inference.joint import joint_spec
    from bayes_scaling.laws.spec import builtin_spec
    from bayes_scaling.models.losslaws import LossLawConfig
    from bayes_scaling.models.transfer import ModelConfig

    plain = joint_spec(LossLawConfig(law="kaplan"))
    assert plain.hash() == builtin_spec("joint_kaplan").hash() and plain.sigma_by == "pretrained"
    spec = joint_spec(LossLawConfig(law="chinchilla", likelihood="student_t",
                                    priors={"alpha_N": {"mu": -2.0, "sigma": 0.5}}), ModelConfig(), replicates=True)
    assert spec.name == "joint_chinchilla" and spec.family == "student_t"
    assert spec.parameters["alpha_N"].prior == pytest.approx({"median": np.exp(-2.0), "sigma": 0.5})
    assert spec.replicates and spec.seed_slope == "N" and spec.sigma_by == "pretrained"
    with pytest.raises(ConfigError, match=r"transfer prior\(s\) beta .*no law-spec form"):
        joint_spec(LossLawConfig(law="kaplan"), ModelConfig(priors={"beta": {"mu": 0.38, "sigma": 0.1}}))
