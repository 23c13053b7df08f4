"""Property-based (Hypothesis) tests of the readers and the config parser: whatever the input, the result is
a valid object or the package's own one-line error, never another exception (issue 16)."""

from __future__ import annotations

import csv
import io
import tomllib
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayes_scaling as bs
from bayes_scaling.errors import BayesScalingError, ConfigError, DataError
from bayes_scaling.models.transfer import DEFAULT_PRIORS, ModelConfig

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])

COLUMNS = ["pretraining", "N", "D_F", "D_T", "D_E", "unit", "excluded", "exclusion_reason", "extra", "N "]
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
    st.sampled_from(["1e6", "-1e8", "0", "1e400", "nan", "inf", "-inf", "NA", "None", "", " ", "1,5", "0x10",
                     "1e-320", "true"]),
)
CELLS = st.one_of(NUMBERS, st.text(max_size=8),
                  st.sampled_from(["text", "NA", "None", "null", "N/A", "tokens", "characters", "yes", "no"]))


@st.composite
def csv_tables(draw):
    cols = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=7))
    if draw(st.booleans()):
        cols = ["pretraining", "N", "D_F", draw(st.sampled_from(["D_T", "D_E"]))] + cols
    n = draw(st.integers(0, 6))
    rows = [[draw(CELLS) for _ in cols] for _ in range(n)]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(cols)
    writer.writerows(rows)
    text = buf.getvalue()
    if draw(st.booleans()):  # a damaged file: cut anywhere, or odd bytes
        text = text[: draw(st.integers(0, len(text)))]
    return text


def _outcome(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn()
        except BayesScalingError as exc:
            assert str(exc).strip(), "an error needs a message"
            return exc


@SETTINGS
@given(text=csv_tables())
def test_transfer_csv_reader_never_crashes(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "runs.csv"
    path.write_text(text)
    res = _outcome(lambda: bs.TransferData.from_csv(path))
    if isinstance(res, bs.TransferData):
        used = res.used
        assert len(used) >= 1 and (used["D_T"] > 0).all() and (used["N"] > 0).all() and (used["D_F"] > 0).all()
        assert np.isfinite(used[["N", "D_F", "D_T"]].to_numpy(float)).all()
        assert res.table["excluded"].dtype == bool
        back = bs.TransferData.from_dataset(res.to_dataset())   # what a fit file stores, read back
        assert back.pretraining == res.pretraining
    else:
        assert isinstance(res, DataError)


@SETTINGS
@given(text=csv_tables())
def test_scratch_and_finetune_readers_never_crash(tmp_path_factory, text):
    from bayes_scaling.analysis.effective import read_finetune
    from bayes_scaling.models.losslaws import read_scratch

    path = tmp_path_factory.mktemp("csv") / "runs.csv"
    path.write_text(text.replace("D_T", "loss").replace("D_E", "D"))
    for reader in (read_scratch, read_finetune):
        res = _outcome(lambda: reader(path))  # noqa: B023
        assert isinstance(res, (pd.DataFrame, BayesScalingError))


@SETTINGS
@given(names=st.lists(st.text(min_size=1, max_size=6).filter(lambda s: s.strip() and "," not in s
                                                             and "\n" not in s and "\r" not in s
                                                             and '"' not in s),
                      min_size=1, max_size=3, unique_by=lambda s: s.strip()))
def test_distribution_names_survive_csv(tmp_path_factory, names):
    """Any name (NA, None, nan, ...) is read back as the same name."""
    path = tmp_path_factory.mktemp("names") / "runs.csv"
    rows = [f"{n},{N},{F},{T}" for n in names for N, F, T in ((1e6, 1e5, 2e6), (1e7, 1e6, 9e6))]
    path.write_text("pretraining,N,D_F,D_T\n" + "\n".join(rows) + "\n")
    data = bs.TransferData.from_csv(path, warn=False)
    assert data.pretraining == tuple(n.strip() for n in names)


# ---- configs ---------------------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**400, 10**400), st.floats(), st.text(max_size=5))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=10)
PRIOR_NAMES = st.sampled_from([*DEFAULT_PRIORS, "gamma", ""])
PARAMS = st.sampled_from(["mu", "sigma", "alpha", "beta", "nu", "x"])


@st.composite
def config_docs(draw):
    doc = {}
    if draw(st.booleans()):
        doc["model"] = draw(st.one_of(VALUES, st.fixed_dictionaries(
            {}, optional={"likelihood": st.sampled_from(["normal", "student_t", "cauchy"]) | VALUES,
                          "variant": st.sampled_from(["shared_beta", "pooled"]) | VALUES,
                          "parameterization": st.sampled_from(["centred", "non_centred"]) | VALUES})))
    if draw(st.booleans()):
        doc["priors"] = draw(st.one_of(VALUES, st.dictionaries(
            PRIOR_NAMES, st.one_of(VALUES, st.dictionaries(PARAMS, st.one_of(
                st.floats(), st.integers(-10**5, 10**5), VALUES), max_size=3)), max_size=4)))
    if draw(st.integers(0, 4)) == 0:
        doc[draw(st.text(max_size=5))] = draw(VALUES)
    return doc


@SETTINGS
@given(doc=config_docs())
def test_config_parser_never_crashes(doc):
    try:
        cfg = ModelConfig.from_dict(doc, where="m.toml")
    except ConfigError as exc:
        assert "m.toml" in str(exc)
        return
    for name, params in cfg.priors.items():      # what passes is within the documented bounds
        for key, value in params.items():
            assert np.isfinite(value)
            if key != "mu":
                assert 1e-4 <= value <= 1e4, (name, key, value)
    assert ModelConfig.from_dict(cfg.to_dict()).hash() == cfg.hash()   # and round-trips


@SETTINGS
@given(text=st.text(max_size=120))
def test_toml_reader_never_crashes(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "m.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # lone surrogates: bytes that are not UTF-8
    try:
        ModelConfig.from_toml(path)
    except ConfigError as exc:
        assert "m.toml" in str(exc)


@pytest.mark.parametrize("text", ['[model]\nlikelihood = "normal"\n[model.x]\n',
                                  "[[priors]]\nbeta = 1\n", "priors.beta.sigma = [0.1]\n",
                                  "priors.beta.sigma = 1979-05-27\n"])
def test_toml_shapes_that_are_valid_toml_but_not_configs(tmp_path, text):
    tomllib.loads(text)  # valid TOML ...
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="m.toml"):  # ... but not a model file
        ModelConfig.from_toml(path)
