"""Engine features any law spec can use: derived quantities, exclusion rules with their reasons, and the
seed-noise likelihood of replicate runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling.errors import ConfigError, DataError, ExclusionWarning
from bayes_scaling.inference.fit import as_spec_fit
from bayes_scaling.laws.spec import LawSpec, builtin_spec

TRANSFER = {"law": {"formula": "k * D_F**alpha * N**beta", "target": "D_T"},
            "parameters": {"k": {"by": "pretraining"}, "alpha": {}, "beta": {}}}

# ---- derived quantities -----------------------------------------------------------------------------------


@pytest.mark.parametrize("derived, message", [
    ({"a": "b + 1", "b": "a * 2"}, r"\[derived\]: a -> b -> a is a cycle"),
    ({"D_E": "D_F + D_X"}, r"\[derived\] D_E = 'D_F \+ D_X': unknown name\(s\) D_X"),
    ({"alpha": "D_F"}, r"\[derived\] alpha: the name is already the parameter 'alpha'"),
    ({"N": "D_F"}, r"\[derived\] N: the name is already the input column 'N'"),
    ({"D_T": "D_F"}, r"\[derived\] D_T: the name is already the target column 'D_T'"),
    ({"pretraining": "D_F"}, r"\[derived\] pretraining: the name is already the group column"),
    ({"log_k": "D_F"}, r"\[derived\] log_k: the name is already the internal variable"),
    ({"sigma": "D_F"}, r"\[derived\] sigma: the name is reserved"),
    ({"x": "D_F +"}, r"\[derived\] x: formula 'D_F \+' is not valid"),
    ({"x": 3}, r"\[derived\] x: expected a formula as a string"),
])
def test_derived_quantities_are_checked_when_the_spec_is_read(derived, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        LawSpec.from_dict({**TRANSFER, "derived": derived})
    path = tmp_path / "bad.toml"
    path.write_text(LawSpec.from_dict(TRANSFER).to_toml() + "\n[derived]\n"
                    + "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in derived.items()) + "\n")
    with pytest.raises(ConfigError) as err:                      # from a file: one line that names it
        LawSpec.from_toml(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_derived_quantities_round_trip_and_order():
    spec = LawSpec.from_dict({**TRANSFER, "derived": {"fraction": "D_T / D_E", "D_E": "D_F + D_T"}})
    assert spec.derived_order == ["D_E", "fraction"]          # each after what it uses
    again = LawSpec.from_dict(spec.to_dict())
    assert again.to_dict() == spec.to_dict() and again.hash() == spec.hash()
    assert LawSpec.from_dict(TRANSFER).hash() != spec.hash()
    assert "derived" not in LawSpec.from_dict(TRANSFER).to_dict()   # a spec without them: hash unchanged


def test_transfer_derived_quantities_equal_the_transfer_path_on_the_same_draws(small_fit):
    """The built-in transfer spec's D_E, multiplier and fraction on a transfer fit's draws are those of
    bs.predict (analysis.predictions) on the same fit: one formula evaluator, the same numbers."""
    from bayes_scaling.analysis.predictions import predict

    N, D_F = [1e7, 3e8], [1e5, 1e7]
    points = pd.DataFrame([{"pretraining": p, "N": n, "D_F": d} for p in small_fit.pretraining for n in N
                           for d in D_F])
    ds = as_spec_fit(small_fit).derived(points)
    old = predict(small_fit, N=N, D_F=D_F)
    for name in ("D_T", "D_E", "multiplier", "fraction"):
        for i, row in points.iterrows():
            a = ds[name].isel(point=i).values
            b = old[name].sel(pretraining=row["pretraining"], N=row["N"], D_F=row["D_F"]).values
            np.testing.assert_allclose(a, b, rtol=1e-10, err_msg=name)
    table = as_spec_fit(small_fit).derived(points, ci_prob=0.9)
    assert list(table["quantity"].unique()) == ["D_T", "D_E", "multiplier", "fraction"]
    assert (table["lo"] <= table["median"]).all() and (table["median"] <= table["hi"]).all()
    frac = table[table["quantity"] == "fraction"]
    assert ((frac["lo"] > 0) & (frac["hi"] < 1)).all()


def test_derived_needs_a_derived_table(small_fit):
    spec = builtin_spec("chinchilla")
    assert not spec.derived
    fit = as_spec_fit(small_fit)
    fit.spec = LawSpec.from_dict({k: v for k, v in fit.spec.to_dict().items() if k != "derived"})
    with pytest.raises(ConfigError, match="declares no derived quantities"):
        fit.derived(pd.DataFrame({"pretraining": ["text"], "N": [1e7], "D_F": [1e5]}))


# ---- exclusion rules with their reasons ---------------------------------------------------------------------


def test_exclusion_rules_are_checked_and_round_trip(tmp_path):
    spec = LawSpec.from_dict({**TRANSFER, "exclude": {"D_T <= 0": "no transfer measured",
                                                      'regime != "low"': "outside the low-data regime"}})
    again = LawSpec.from_toml(_write(tmp_path / "s.toml", spec.to_toml()))
    assert again.exclude == spec.exclude and again.hash() == spec.hash()
    for exclude, message in [({"D_T <=": "x"}, r"\[exclude\] condition 'D_T <=' is not valid"),
                             ({"D_T + 1": "x"}, r"\[exclude\] condition 'D_T \+ 1': BinOp is not a condition"),
                             ({"D_T <= 0": ""}, r"\[exclude\] 'D_T <= 0': the reason must be a non-empty string")]:
        with pytest.raises(ConfigError, match=message):
            LawSpec.from_dict({**TRANSFER, "exclude": exclude})


def _write(path, text):
    path.write_text(text)
    return path


def test_exclusions_name_rows_and_reasons():
    spec = LawSpec.from_dict({**TRANSFER, "exclude": {"D_T <= 0": "no transfer measured",
                                                      'regime != "low"': "outside the low-data regime"}})
    table = pd.DataFrame({"pretraining": ["a"] * 4, "N": [1e6] * 4, "D_F": [1e5, 1e6, 1e7, 1e8],
                          "D_T": [2e5, -1.0, 3e5, -2.0], "regime": ["low", "low", "high", "high"]})
    kept, out = spec.exclusions(table)
    assert kept["D_F"].tolist() == [1e5] and out["row"].tolist() == [1, 2, 3]
    # the first rule a row meets gives its reason, with the rule
    assert out["reason"].tolist() == ["no transfer measured (D_T <= 0)",
                                      'outside the low-data regime (regime != "low")',
                                      "no transfer measured (D_T <= 0)"]
    with pytest.raises(DataError, match=r"data: the exclusion rule 'regime != \"low\"' needs "
                                                    r"column\(s\) regime"):
        spec.exclusions(table.drop(columns="regime"))


@pytest.mark.filterwarnings("ignore::bayes_scaling.errors.ConvergenceWarning")
def test_transfer_spec_excludes_what_fit_transfer_excludes(example_data, tmp_path):
    """The transfer spec's D_T <= 0 rule leaves out the rows bs.TransferData excludes (the bundled data's four
    ossified runs), warns, and keeps them with their reason in fit.excluded (also after save and load)."""
    from bayes_scaling.inference.fit import fit, load

    raw = example_data.table[["pretraining", "N", "D_F", "D_T"]].reset_index(drop=True)
    with pytest.warns(ExclusionWarning, match=r"excluded 4 of 102 rows from the fit: D_T <= 0 \(ossification: no "
                                              r"positive transfer\) \(D_T <= 0\): 4 row\(s\) \[98, 99, 100, 101\]"):
        result = fit(raw, "transfer", seed=1, draws=50, tune=50, chains=1, warn=True)
    expected = np.flatnonzero(example_data.table["excluded"].to_numpy(bool))
    assert result.excluded["row"].tolist() == expected.tolist() == [98, 99, 100, 101]
    assert (result.excluded["D_T"] <= 0).all() and len(result.data) == example_data.n_used
    assert set(result.excluded["reason"]) == {"D_T <= 0 (ossification: no positive transfer) (D_T <= 0)"}
    again = load(result.save(tmp_path / "fit.nc"))
    pd.testing.assert_frame_equal(again.excluded, result.excluded)
    # the transfer fit's own exclusions read the same through its law-spec view
    old = bs.fit_transfer(example_data, seed=1, draws=30, tune=30, chains=1, warn=False)
    assert as_spec_fit(old).excluded["row"].tolist() == expected.tolist()
    with pytest.raises(DataError, match="every row is excluded by the spec's \\[exclude\\] rules"):
        fit(raw.assign(D_T=-1.0), "transfer", seed=1, draws=20, tune=20, chains=1, warn=False)


# ---- replicate runs: a run-level term and a seed noise ------------------------------------------------------

CURVE = {"law": {"formula": "A * x**(-b)", "target": "y"}, "parameters": {"A": {}, "b": {}},
         "likelihood": {"replicates": True}}


def _replicates(seed: int, sigma: float = 0.05, sigma_seed: float = 0.03, n_x: int = 16, n_seeds: int = 4):
    """``log y = log(A x^-b) + delta_x + e``: each configuration x one run-level draw, each seed its own noise."""
    rng = np.random.default_rng(seed)
    x = np.logspace(1, 4, n_x)
    delta = rng.normal(0, sigma, n_x)
    rows = [{"x": xi, "seed": s, "y": 10.0 * xi ** -0.3 * np.exp(d + rng.normal(0, sigma_seed))}
            for xi, d in zip(x, delta, strict=True) for s in range(n_seeds)]
    return pd.DataFrame(rows)


def test_replicates_option_round_trips_and_is_checked():
    spec = LawSpec.from_dict({**CURVE, "likelihood": {"replicates": True, "seed_sigma": 0.1}})
    assert LawSpec.from_dict(spec.to_dict()).hash() == spec.hash() and spec.replicates
    assert "replicates" not in LawSpec.from_dict({**CURVE, "likelihood": {}}).to_dict()["likelihood"]
    with pytest.raises(ConfigError, match="seed_sigma applies with replicates = true only"):
        LawSpec.from_dict({**CURVE, "likelihood": {"seed_sigma": 0.1}})
    with pytest.raises(ConfigError, match="replicates must be true or false"):
        LawSpec.from_dict({**CURVE, "likelihood": {"replicates": "yes"}})
    with pytest.raises(ConfigError, match="'sigma_seed': the name is reserved"):
        LawSpec.from_dict({"law": {"formula": "sigma_seed * x", "target": "y"}, "parameters": {"sigma_seed": {}}})


def test_replicate_cells_and_copies_of_one_run():
    from bayes_scaling.models import spec_model as sm

    spec = LawSpec.from_dict(CURVE)
    data = sm.prepare(spec, _replicates(0, n_x=3, n_seeds=2))
    assert data.cell.tolist() == [0, 0, 1, 1, 2, 2] and data.n_cells == 3
    t = data.cell_table(spec)
    assert t["n"].tolist() == [2, 2, 2] and np.allclose(t["mean"], np.log(data.target).reshape(3, 2).mean(axis=1))
    copies = _replicates(0, n_x=3, n_seeds=2)
    copies["y"] = np.repeat(copies["y"].to_numpy()[::2], 2)
    with pytest.raises(DataError, match=r"replicate runs \(same x\) at rows 0, 1, 2, 3, 4, 5 all have identical "
                                        r"'y' values"):
        sm.prepare(spec, copies)


def test_seed_noise_recovers_the_run_level_term_and_the_seed_noise():
    """Simulated replicates (16 configurations x 4 seeds; run-level sd 0.05, seed sd 0.03, A = 10, b = 0.3):
    each truth lies in its 99% interval (with Monte Carlo margins), the seed noise is told apart from the
    run-level term, and a new run's predictive noise is sqrt(sigma**2 + sigma_seed**2)."""
    from helpers import inside

    from bayes_scaling.inference.fit import fit

    result = fit(_replicates(3), LawSpec.from_dict(CURVE), seed=4, draws=1000, tune=1000, chains=2, warn=False)
    assert result.diagnostics.divergences == 0
    table = result.summary(ci_prob=0.99).set_index("parameter")
    for name, truth in {"A": 10.0, "b": 0.3, "sigma": 0.05, "sigma_seed": 0.03}.items():
        assert inside(table.loc[name], truth, 0.99), (name, table.loc[name].to_dict())
    post = result.posterior
    assert float((post["sigma_seed"] < post["sigma"]).mean()) > 0.9       # the two noises are told apart
    assert set(result.tree["log_likelihood"].dims) >= {"cell"}            # one pointwise term per configuration
    pts = pd.DataFrame({"x": [100.0]})
    noise = np.log(result.predict(pts, kind="observation", seed=1)["y"].values.ravel()) \
        - np.log(result.predict(pts, kind="mean", seed=1)["y"].values.ravel())
    total = np.sqrt(post["sigma"] ** 2 + post["sigma_seed"] ** 2).values.ravel()
    assert abs(noise.std() / np.sqrt(np.mean(total**2)) - 1) < 0.1


# ---- a noise scale per level of a column (sigma_by) ---------------------------------------------------------

LEVELS = {"a": {"sigma": 0.01, "sigma_seed": 0.04}, "b": {"sigma": 0.05, "sigma_seed": 0.01}}


def _levels(seed: int, n_x: int = 14, n_seeds: int = 3) -> pd.DataFrame:
    """Replicates of ``y = 10 x^-0.3`` in two kinds of run, each with its own run-level and seed noise (LEVELS)."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, sd in LEVELS.items():
        for xi in np.logspace(1, 4, n_x):
            delta = rng.normal(0, sd["sigma"])
            rows += [{"x": xi, "kind": kind, "y": 10.0 * xi ** -0.3 * np.exp(delta + rng.normal(0, sd["sigma_seed"]))}
                     for _ in range(n_seeds)]
    return pd.DataFrame(rows)


def test_sigma_by_round_trips_and_is_checked():
    from bayes_scaling.models import spec_model as sm

    spec = LawSpec.from_dict({**CURVE, "likelihood": {"replicates": True, "sigma_by": "kind"}})
    assert spec.sigma_by == "kind" and LawSpec.from_dict(spec.to_dict()).hash() == spec.hash()
    assert "sigma_by" not in LawSpec.from_dict(CURVE).to_dict()["likelihood"]     # absent: the hash is unchanged
    for bad in ("A", "y", 3):
        with pytest.raises(ConfigError, match="sigma_by must name a data column"):
            LawSpec.from_dict({**CURVE, "likelihood": {"sigma_by": bad}})
    runs = _levels(0, n_x=2, n_seeds=2)
    data = sm.prepare(spec, runs)
    assert data.labels == {"kind": ["a", "b"]} and data.index["kind"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert data.cell.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]          # rows of two levels are never one configuration
    with pytest.raises(DataError, match="'kind'"):
        sm.prepare(spec, runs.drop(columns="kind"))
    # an input column as sigma_by: its levels get their own dimension, <column>_level
    joint = builtin_spec("joint_kaplan")
    assert joint.sigma_by == "pretrained" and sm.noise_dim(joint) == "pretrained_level"


def test_sigma_by_recovers_each_levels_noise_and_seed_noise():
    """Simulated replicates in two kinds of run (14 configurations x 3 seeds each; run-level sd 0.01 and 0.05, seed
    sd 0.04 and 0.01): each level's sigma and sigma_seed lie in their 99% intervals (with Monte Carlo margins), the
    levels are told apart, and a new run's predictive noise is its level's sqrt(sigma**2 + sigma_seed**2); a level
    the fit has not seen is a DataError naming the column."""
    from helpers import inside

    from bayes_scaling.inference.fit import fit

    spec = LawSpec.from_dict({**CURVE, "likelihood": {"replicates": True, "sigma_by": "kind"}})
    result = fit(_levels(5), spec, seed=2, draws=500, tune=500, chains=2, warn=False)
    assert result.diagnostics.divergences == 0
    table = result.summary(ci_prob=0.99).set_index(["parameter", "group"])
    for kind, truth in LEVELS.items():
        for name, value in truth.items():
            assert inside(table.loc[(name, kind)], value, 0.99), (name, kind, table.loc[(name, kind)].to_dict())
    post = result.posterior
    assert float((post["sigma"].sel(kind="b") > post["sigma"].sel(kind="a")).mean()) > 0.95
    assert float((post["sigma_seed"].sel(kind="a") > post["sigma_seed"].sel(kind="b")).mean()) > 0.95
    pts = pd.DataFrame({"x": [100.0, 100.0], "kind": ["a", "b"]})
    noise = np.log(result.predict(pts, kind="observation", seed=1)["y"].values) \
        - np.log(result.predict(pts, kind="mean", seed=1)["y"].values)
    for i, kind in enumerate(pts["kind"]):
        total = np.sqrt(post["sigma"].sel(kind=kind) ** 2 + post["sigma_seed"].sel(kind=kind) ** 2).values.ravel()
        assert abs(noise[..., i].std() / np.sqrt(np.mean(total**2)) - 1) < 0.1, kind
    with pytest.raises(DataError, match=r"column 'kind' .* not seen at rows 0"):
        result.predict(pd.DataFrame({"x": [100.0], "kind": ["c"]}), kind="observation")
