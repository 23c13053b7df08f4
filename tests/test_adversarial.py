"""Property-based (Hypothesis) tests of the readers and the config parser: whatever the input, the result is
a valid object or the package's own one-line error, never another exception (issue 16)."""

from __future__ import annotations

import contextlib
import csv
import io
import tomllib
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import bayes_scaling as bs
from bayes_scaling.errors import BayesScalingError, ConfigError, DataError, FitFileError
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


# ---- damaged fit files: every read ends, with the fit or one error ------------------------------------------


@pytest.fixture(scope="module")
def fit_bytes(tmp_path_factory, small_fit):
    """A small fit file's bytes (ending with the package's digest line) and the tree it holds."""
    from bayes_scaling.inference.fitfile import read_tree

    path = tmp_path_factory.mktemp("damage") / "fit.nc"
    small_fit.save(path)
    return path.read_bytes(), read_tree(path)


@contextlib.contextmanager
def watchdog(seconds: float):
    """End the test process with the stacks printed should the block hang (a read stuck in the HDF5 library
    holds Python's lock: no exception, signal or pytest timeout could stop it; faulthandler's thread can)."""
    import faulthandler

    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def _same_fit(tree, original) -> bool:
    post, ref = tree["posterior"].to_dataset(), original["posterior"].to_dataset()
    return tree.attrs == original.attrs and set(post.data_vars) == set(ref.data_vars) and all(
        np.array_equal(post[v].values, ref[v].values, equal_nan=True) for v in ref.data_vars)


FILLS = {"zeros": lambda n, _: bytes(n), "ones": lambda n, _: b"\xff" * n, "random": lambda n, r: r.randbytes(n)}


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@example(offset=768, length=64, fill="zeros", digest=True)     # a zeroed heap of dimension lists: HDF5 looped
@example(offset=768, length=64, fill="zeros", digest=False)    # forever in that read, holding Python's lock
@given(offset=st.one_of(st.integers(0, 12_000), st.integers(0, 10**7)), length=st.sampled_from([1, 8, 64, 512]),
       fill=st.sampled_from(sorted(FILLS)), digest=st.booleans())
def test_damaged_fit_file_read_ends_with_the_fit_or_one_error(tmp_path_factory, monkeypatch, fit_bytes, offset,
                                                               length, fill, digest):
    """Bytes overwritten anywhere (mostly in the HDF5 metadata, the first 12 kB): the read ends within seconds.
    With the file's digest (every file this version writes) it is the fit itself when no byte changed, else
    the one error "a checksum does not match"; without it (an older file) it is a fit or a FitFileError,
    never a hang (the structure is read first in a separate process with a time limit) or another exception."""
    import random
    import time

    from bayes_scaling.inference import fitfile

    raw, original = fit_bytes
    if not digest:
        raw = raw[:-fitfile.DIGEST_SIZE]
    offset %= len(raw)
    damaged = bytearray(raw)
    damaged[offset:offset + length] = FILLS[fill](len(damaged[offset:offset + length]), random.Random(offset))
    path = tmp_path_factory.mktemp("damaged") / "fit.nc"
    path.write_bytes(bytes(damaged))
    monkeypatch.setattr(fitfile, "STRUCTURE_TIMEOUT", 5.0)
    start = time.monotonic()
    try:
        with watchdog(120):
            tree = fitfile.read_tree(path)
    except FitFileError as exc:
        tree = None
        assert str(path) in str(exc) and "\n" not in str(exc)
        if digest:
            assert bytes(damaged) != raw and "a checksum does not match" in str(exc)
    assert time.monotonic() - start < 30
    if digest and tree is not None:
        assert bytes(damaged) == raw and _same_fit(tree, original)


def test_damaged_fit_file_at_the_command_line(tmp_path, fit_bytes):
    """The case that hung: 64 zero bytes at offset 768 of a file without the digest (``summary`` in a process
    of its own, as a user runs it): exit status 2, one line naming the file, within the time limit (the time limit's
    message where HDF5 loops, as it did on files of 0.2; where those bytes now fall on the stored spec, the
    reader's message that names it)."""
    import subprocess
    import sys
    import time

    from bayes_scaling.inference.fitfile import DIGEST_SIZE

    raw = bytearray(fit_bytes[0][:-DIGEST_SIZE])
    raw[768:832] = bytes(64)
    path = tmp_path / "fit.nc"
    path.write_bytes(bytes(raw))
    command = ("import sys; from bayes_scaling.inference import fitfile; fitfile.STRUCTURE_TIMEOUT = 5.0; "
               "from bayes_scaling_launch import main; sys.exit(main())")   # the executable, a shorter limit
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", command, "summary", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr and str(path) in lines[0], done.stderr
    assert "did not end within 5 s" in lines[0] or "is not valid JSON" in lines[0], lines[0]
    assert time.monotonic() - start < 60
