"""Nothing lost, nothing crashes (issue 16): interrupts, atomic files, malformed fit files, configs and options,
input tables, resources. Each test names the class of the issue it covers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers import digest, one_error_line

import bayes_scaling as bs
from bayes_scaling._atomic import atomic_path, check_output, write_text
from bayes_scaling._interrupts import Interrupted, stop_on_signals
from bayes_scaling.cli import main
from bayes_scaling.data.datasets import EXAMPLE_CSV
from bayes_scaling.errors import (
    ConfigError,
    DataError,
    FitFileError,
    IdentifiabilityWarning,
    OutputError,
)
from bayes_scaling.inference.fitfile import read_tree, write_tree
from bayes_scaling.models.transfer import ModelConfig

EXE = str(Path(sys.executable).with_name("bayes-scaling"))
FAST = ["--draws", "100", "--tune", "100", "--chains", "2"]



def leftovers(folder: Path) -> list[str]:
    """Temporary files of the atomic writer left in ``folder``."""
    return sorted(p.name for p in Path(folder).iterdir() if ".tmp" in p.name)



@pytest.fixture(scope="module")
def fit_file(tmp_path_factory, small_fit):
    path = tmp_path_factory.mktemp("robust") / "fit.nc"
    small_fit.save(path)
    return path


# ---- 2. atomic, safe writes ------------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_atomic_path_keeps_the_old_file_on_any_failure(tmp_path, exc):
    target = tmp_path / "table.csv"
    target.write_text("old,complete\n1,2\n")
    before = digest(target)
    with pytest.raises(type(exc)):
        with atomic_path(target) as tmp:
            tmp.write_text("new,half")   # half written ...
            raise exc                    # ... and then the crash / Ctrl-C
    assert digest(target) == before and leftovers(tmp_path) == []
    write_text(target, "new\n")
    assert target.read_text() == "new\n" and leftovers(tmp_path) == []


def test_fit_file_write_is_atomic(tmp_path, small_fit, monkeypatch):
    path = small_fit.save(tmp_path / "fit.nc")
    before = digest(path)

    def broken(self, filepath, *args, **kwargs):  # writes part of a file (in memory: fitfile.write_netcdf), dies
        filepath.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", broken)
    with pytest.raises(KeyboardInterrupt):
        small_fit.save(path)
    monkeypatch.undo()
    assert digest(path) == before and leftovers(tmp_path) == []
    assert bs.load(path).posterior.sizes["draw"] == 300


def test_export_interrupted_while_writing_keeps_earlier_file(tmp_path, fit_file, monkeypatch, capsys):
    out = tmp_path / "draws.csv"
    assert main(["export", str(fit_file), "--out", str(out)]) == 0
    before = digest(out)
    real = pd.DataFrame.to_csv

    def half_then_ctrl_c(self, path_or_buf=None, *args, **kwargs):
        real(self.iloc[: len(self) // 2], path_or_buf, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_ctrl_c)
    capsys.readouterr()
    assert main(["export", str(fit_file), "--out", str(out)]) == 130
    assert "interrupted by SIGINT" in one_error_line(capsys.readouterr().err)
    assert digest(out) == before and leftovers(tmp_path) == []


def test_sigterm_while_exporting_keeps_earlier_file(tmp_path, fit_file, monkeypatch, capsys):
    out = tmp_path / "draws.nc"
    assert main(["export", str(fit_file), "--out", str(out)]) == 0
    before = digest(out)

    def killed(self, path, *args, **kwargs):   # path: the in-memory file of fitfile.write_netcdf
        path.write(b"\x89HDF half")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", killed)
    capsys.readouterr()
    assert main(["export", str(fit_file), "--out", str(out)]) == 143
    assert "interrupted by SIGTERM" in one_error_line(capsys.readouterr().err)
    assert digest(out) == before and leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the command's handler is gone again


def test_export_refuses_to_overwrite_its_input(fit_file, capsys):
    before = digest(fit_file)
    assert main(["export", str(fit_file), "--out", str(fit_file)]) == 2
    assert "also an input" in one_error_line(capsys.readouterr().err)
    assert digest(fit_file) == before


@pytest.mark.parametrize("args, message", [
    (["fit", EXAMPLE_CSV, "--out", "{tmp}/fit.csv"], "ending in .nc"),
    (["fit", EXAMPLE_CSV, "--out", "{tmp}/afile/fit.nc"], "is not a folder"),
    (["fit", EXAMPLE_CSV, "--out", "{tmp}"], "is a folder"),
    (["fit", "{tmp}/runs.csv", "--out", "{tmp}/runs.csv"], "also an input"),   # the output plan, first
    (["export", "{fit}", "--format", "csv", "--out", "{tmp}/d.nc"], "ending in .csv"),
    (["predict", "{fit}", "--N", "1e8", "--D-F", "1e5", "--out", "{tmp}/p.txt"], "cannot tell the format"),
    (["report", "{fit}", "--out", "{tmp}/afile"], "is a file"),
    (["effective-data", "{tmp}/runs.csv", "{tmp}/ft.csv", "--out", "{tmp}/ft.csv"], "also an input"),
    (["fit-scratch", "{tmp}/runs.csv", "--out", "{tmp}/s.csv"], "ending in .nc"),
])
def test_output_paths_checked_before_the_work(tmp_path, fit_file, capsys, args, message):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "runs.csv").write_bytes(EXAMPLE_CSV.read_bytes())
    (tmp_path / "ft.csv").write_bytes(EXAMPLE_CSV.read_bytes())
    before = digest(tmp_path / "ft.csv")
    argv = [str(a).format(tmp=tmp_path, fit=fit_file) for a in args]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert message in one_error_line(err)
    assert "sampling" not in out and "fitting" not in err  # refused before any fit started
    assert digest(tmp_path / "ft.csv") == before


def test_check_output_same_file_through_another_name(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a\n1\n")
    with pytest.raises(OutputError, match="also an input"):
        check_output(tmp_path / "." / "in.csv", inputs=[src])


# ---- 1. interrupts ---------------------------------------------------------------------------------------




@pytest.mark.usefixtures("default_signals")
def test_stop_on_signals_raises_even_when_the_library_swallows_the_interrupt():
    def sampler_that_returns_partial_draws():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            return "partial chains"  # what nutpie's and PyMC's samplers do
        return "complete"

    with pytest.raises(Interrupted, match="SIGINT while sampling") as info:
        with stop_on_signals("sampling"):
            sampler_that_returns_partial_draws()
    assert info.value.exit_status == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


@pytest.mark.usefixtures("default_signals")
def test_a_sampler_that_goes_on_with_the_next_chain_is_stopped_at_once():
    """PyMC's sequential sampler catches KeyboardInterrupt per chain and starts the next chain; the per-draw
    callback (Signals.check) stops it at the next draw. And an error that compiled code raises because of the
    signal (Numba: SystemError "returned a result with an exception set") is the interrupt too."""
    draws_after = []

    def pymc_like(callback):
        for chain in range(3):
            try:
                for draw in range(1000):
                    if chain == 0 and draw == 10:
                        os.kill(os.getpid(), signal.SIGTERM)
                    if chain > 0:
                        draws_after.append(draw)
                    callback()
                    time.sleep(0.001)
            except KeyboardInterrupt:
                pass

    with pytest.raises(Interrupted, match="SIGTERM while sampling"):
        with stop_on_signals("sampling") as signals:
            pymc_like(signals.check)
    assert len(draws_after) <= 1
    with pytest.raises(Interrupted):
        with stop_on_signals("sampling"):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
            except KeyboardInterrupt:
                raise SystemError("returned a result with an exception set") from None


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    """20,400 runs (the bundled table 200 times): each gradient is slow enough that sampling lasts minutes."""
    path = tmp_path_factory.mktemp("big") / "runs.csv"
    df = pd.read_csv(EXAMPLE_CSV)
    pd.concat([df] * 200, ignore_index=True).to_csv(path, index=False)
    return path


def _sigint_default() -> None:
    """In the child: SIGINT to its default. A test run started in the background (``cmd &``, nohup) ignores
    SIGINT, and a child inherits that (as shells intend for background jobs), so Ctrl-C would not reach it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see sampling start")
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130),
                                         pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)])
def test_signal_mid_sampling_saves_nothing_and_keeps_the_old_fit(tmp_path, fit_file, big_csv, sig, status):
    """Fault injection: a real `bayes-scaling fit` process, interrupted while nutpie samples. Before: nutpie
    returned the partial chains and the command saved them over --out, exit 0."""
    out = tmp_path / "fit.nc"
    out.write_bytes(fit_file.read_bytes())
    before = digest(out)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen([EXE, "fit", str(big_csv), "--out", str(out), "--draws", "100000", "--chains", "2",
                             "--no-log-likelihood"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=_sigint_default)
    try:
        assert "sampling" in proc.stdout.readline()
        base = _threads(proc.pid)
        deadline = time.time() + 120
        while _threads(proc.pid) < base + 2 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)  # nutpie starts its worker threads when sampling begins
        assert proc.poll() is None, "the fit ended before it could be interrupted"
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    line = err.strip().splitlines()[-1]
    assert f"interrupted by {signal.Signals(sig).name} while sampling (nutpie)" in line and "Traceback" not in err
    assert digest(out) == before and leftovers(tmp_path) == []
    assert os.listdir(tmpdir) == []  # no compiler sources left in the temp folder (before: ~16 a fit)


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130,
                                                                             marks=pytest.mark.slow)])
def test_signal_before_sampling_saves_nothing(tmp_path, fit_file, sig, status):
    """Fault injection at another point: the signal arrives while the model is built and compiled."""
    out = tmp_path / "fit.nc"
    out.write_bytes(fit_file.read_bytes())
    before = digest(out)
    proc = subprocess.Popen([EXE, "fit", str(EXAMPLE_CSV), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)
    try:
        assert "sampling" in proc.stdout.readline()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert f"interrupted by {signal.Signals(sig).name}" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert digest(out) == before and leftovers(tmp_path) == []


# ---- 3. malformed fit files ------------------------------------------------------------------------------


def _edit(src: Path, dst: Path, fn) -> Path:
    tree = read_tree(src)
    fn(tree)
    tree.to_netcdf(dst, engine="h5netcdf")
    return dst


def _drop_var(group, name):
    def fn(tree):
        tree[group] = xr.DataTree(tree[group].to_dataset().drop_vars(name))
    return fn


def _nan_draws(tree):
    post = tree["posterior"].to_dataset()
    post["beta"][0, :5] = np.nan
    tree["posterior"] = xr.DataTree(post)


def _set_attr(name, value):
    def fn(tree):
        if value is None:
            del tree.attrs[name]
        else:
            tree.attrs[name] = value
    return fn


@pytest.mark.parametrize("edit, message", [
    (_drop_var("posterior", "beta"), "lacks the parameter(s) beta"),
    (_drop_var("transfer_data", "D_F"), "transfer_data group is malformed"),
    (_nan_draws, "'beta' has 5 NaN draw(s)"),
    (_set_attr("seed", None), "needs the attribute(s) seed"),
    (_set_attr("seed", "one"), "attribute 'seed' is 'one'"),
    (_set_attr("config", "{not json"), "attribute 'config' is not valid JSON"),
    (_set_attr("config", json.dumps({"model": 3})), "'model' must be a table"),
    (_set_attr("bayes_scaling_kind", "scratch"), "'scratch'"),
])
def test_malformed_fit_file_one_line_naming_file(tmp_path, fit_file, capsys, edit, message):
    bad = _edit(fit_file, tmp_path / "bad.nc", edit)
    with pytest.raises(FitFileError, match=None) as info:
        bs.load(bad)
    assert message in str(info.value) and str(bad) in str(info.value)
    commands = [["summary", str(bad)]]
    if "beta" in message:  # every command reads fit files the same way; one more suffices
        commands.append(["export", str(bad), "--out", str(tmp_path / "d.csv")])
    for cmd in commands:
        assert main(cmd) == 2
        assert message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "d.csv").exists()


def test_garbage_and_truncated_fit_files(tmp_path, fit_file, capsys):
    (tmp_path / "garbage.nc").write_bytes(b"this is not netCDF\n" * 10)
    (tmp_path / "cut.nc").write_bytes(fit_file.read_bytes()[:5000])
    for name in ("garbage.nc", "cut.nc"):
        assert main(["summary", str(tmp_path / name)]) == 2
        assert "cannot read" in one_error_line(capsys.readouterr().err)


def _fake(kind: str, post: dict, attrs: dict, **groups) -> xr.DataTree:
    ds = xr.Dataset({k: (("chain", "draw"), np.full((2, 10), v)) for k, v in post.items()})
    tree = xr.DataTree.from_dict({"posterior": ds})
    tree.attrs.update(bayes_scaling_kind=kind, **attrs)
    return tree


def test_scratch_and_joint_fit_files_are_checked(tmp_path):
    from bayes_scaling.inference.joint import load_joint_fit
    from bayes_scaling.inference.scratch import load_scratch_fit
    from bayes_scaling.models.losslaws import LossLawConfig

    cfg = json.dumps(LossLawConfig().to_dict())
    runs = xr.Dataset({"N": ("scratch_run", [1e6, 1e7]), "D": ("scratch_run", [1e8, 1e9]),
                       "loss": ("scratch_run", [3.0, 2.5])})
    full = {"E": 1.7, "A": 400.0, "B": 400.0, "alpha_N": 0.3, "alpha_D": 0.3, "sigma": 0.01}
    write_tree(_fake("scratch", full, {"config": cfg, "seed": 1}), tmp_path / "ok.nc", scratch_data=runs)
    assert load_scratch_fit(tmp_path / "ok.nc").law == "chinchilla"
    partial = {k: v for k, v in full.items() if k != "alpha_D"}
    write_tree(_fake("scratch", partial, {"config": cfg, "seed": 1}), tmp_path / "s.nc", scratch_data=runs)
    with pytest.raises(FitFileError, match=r"s\.nc: the posterior lacks the parameter\(s\) alpha_D"):
        load_scratch_fit(tmp_path / "s.nc")
    write_tree(_fake("joint", full, {"config": cfg, "seed": 1}), tmp_path / "j.nc", scratch_data=runs,
               finetune_data=runs.rename(scratch_run="finetune_run"))
    with pytest.raises(FitFileError, match=r"j\.nc: a joint fit file needs the attribute\(s\) transfer_config"):
        load_joint_fit(tmp_path / "j.nc")


# ---- 4. configs and options ------------------------------------------------------------------------------


@pytest.mark.parametrize("toml, message", [
    ("model = 3\n", "'model' must be a table"),
    ("priors = [1, 2]\n", "'priors' must be a table"),
    ('[model]\nlikelihood = ["normal"]\n', "model.likelihood must be a string"),
    ("[priors.beta]\nsigma = 1e-300\n", "outside the sane range [0.0001, 10000]"),
    ("[priors.sigma]\nsigma = 1e300\n", "outside the sane range [0.0001, 10000]"),
    ("[priors.log_k]\nmu = 1e9\n", "outside the sane range [-1000, 1000]"),
    ("[priors.beta.deep.deeper]\nx = 1\n", "unknown parameter(s) deep"),
    ("[priors]\nbeta = 0.4\n", "prior 'beta' must be a table"),
    ("[priors.beta]\nsigma = \"wide\"\n", "sigma must be a finite number"),
    ("\xff\xfe", "not UTF-8"),
])
def test_model_file_errors_name_the_file(tmp_path, capsys, toml, message):
    path = tmp_path / "m.toml"
    path.write_bytes(toml.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_toml(path)
    assert message in str(info.value) and "m.toml" in str(info.value)
    assert main(["fit", str(EXAMPLE_CSV), "--out", str(tmp_path / "f.nc"), "--model", str(path)]) == 2
    assert message in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("extra, message", [
    (["--seed", str(2**32)], "seed must be an integer from 0 to 4294967295"),
    (["--seed", "-1"], "seed must be an integer from 0"),
    (["--draws", str(10**13)], "GB of draws in memory"),
    (["--draws", "1e13"], "GB of draws in memory"),
    (["--chains", str(10**9)], "GB of draws in memory"),
    (["--tune", str(10**9)], "beyond the limit of 10000000"),
    (["--tune", str(5 * 10**6), "--chains", "64"], "GB of draws in memory"),  # nutpie keeps tuning draws too
])
def test_sampler_settings_refused_up_front(tmp_path, capsys, extra, message):
    t0 = time.perf_counter()
    assert main(["fit", str(EXAMPLE_CSV), "--out", str(tmp_path / "f.nc"), *extra]) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert time.perf_counter() - t0 < 60 and not (tmp_path / "f.nc").exists()  # no 80 TB allocation


def test_memory_estimate_names_the_log_likelihood():
    from bayes_scaling.inference.sampling import sampler_settings

    with pytest.raises(ValueError, match=r"about [\d.e+]+ GB of draws.*--no-log-likelihood"):
        sampler_settings(10**9, 1000, 4, 1, False, values_per_draw=500_000, log_likelihood=True)


@pytest.mark.parametrize("args, message", [
    (["predict", "{fit}", "--N", "-1e8", "--D-F", "1e5"], "expected a finite number > 0, got '-1e8'"),
    (["predict", "{fit}", "--N", "1e8", "--D-F", "-.5"], "got '-.5'"),
    (["forecast", "{fit}", "--N", "-inf", "--D-req", "1e12"], "got '-inf'"),
    (["predict", "{fit}", "--N", "1e8", "--D-F", "1e5", "--pretraining", "text", "text"],
     "--pretraining names 'text' more than once"),
    (["export", "{fit}", "--out", "{tmp}/d.csv", "--pretraining", "new", "new"], "more than once"),
])
def test_cli_options(tmp_path, fit_file, capsys, args, message):
    argv = [a.format(fit=fit_file, tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) if message.startswith("expected") or "got '" in message else _no_exit():
        code = main(argv)
        assert code == 2
    assert message in one_error_line(capsys.readouterr().err)


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---- 5. input tables -------------------------------------------------------------------------------------


def test_duplicate_column_names(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    path.write_text("pretraining,N,D_F,D_T,N\ntext,1e6,1e5,1e6,2e6\n")
    with pytest.raises(DataError, match="column name\\(s\\) 'N' appear more than once"):
        bs.TransferData.from_csv(path)
    assert main(["fit", str(path), "--out", str(tmp_path / "f.nc")]) == 2
    assert "'N' appear more than once" in one_error_line(capsys.readouterr().err)
    frame = pd.DataFrame([["text", 1e6, 1e5, 1e6, 1e6]], columns=["pretraining", "N", "D_F", "D_T", "D_T"])
    with pytest.raises(DataError, match="'D_T' appear more than once"):
        bs.TransferData.from_frame(frame)


ROWS = "text,1e6,1e5,2e6\ntext,1e7,1e6,5e6\n"


@pytest.mark.parametrize("header, extra, message", [
    ("excluded", [",maybe", ",no"], "column 'excluded' must be true or false"),
    ("exclusion_reason", [",mine", ",mine"], "'exclusion_reason' without a column 'excluded'"),
])
def test_columns_the_package_uses_are_validated(tmp_path, header, extra, message):
    lines = ROWS.splitlines()
    path = tmp_path / "runs.csv"
    path.write_text(f"pretraining,N,D_F,D_T,{header}\n" + "\n".join(a + b for a, b in zip(lines, extra, strict=True)) + "\n")
    with pytest.raises(DataError, match=message):
        bs.TransferData.from_csv(path)


def test_user_excluded_column_is_honoured(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("pretraining,N,D_F,D_T,excluded\ntext,1e6,1e5,2e6,no\ntext,1e7,1e6,5e6,yes\n"
                    "text,1e8,1e5,9e6,\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = bs.TransferData.from_csv(path)
    assert data.table["excluded"].tolist() == [False, True, False]
    assert data.table["exclusion_reason"].tolist()[1] == "excluded in the input table"


@pytest.mark.parametrize("name", ["NA", "None", "null", "nan", "N/A", "NULL"])
def test_na_like_names_are_names(tmp_path, name):
    path = tmp_path / "runs.csv"
    path.write_text(f"pretraining,N,D_F,D_T\n{name},1e6,1e5,2e6\n{name},1e7,1e6,5e6\nother,1e6,1e5,3e6\n"
                    "other,1e7,1e6,8e6\n")
    data = bs.TransferData.from_csv(path, warn=False)
    assert data.pretraining == (name, "other")
    back = bs.TransferData.from_dataset(data.to_dataset())
    assert back.pretraining == (name, "other")


def test_na_in_numeric_columns_is_still_missing(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("pretraining,N,D_F,D_T\ntext,NA,1e5,2e6\n")
    with pytest.raises(DataError, match="column 'N' has missing or infinite values at rows 0"):
        bs.TransferData.from_csv(path)


@pytest.mark.parametrize("rows, message", [
    ({"pretraining": ["a", "a", "b", "b"], "N": [1e6] * 4, "D_F": [1e5, 1e6, 1e5, 1e6],
      "D_T": [1e6, 2e6, 3e6, 4e6]}, "same N (1e+06): beta cannot be learned"),
    ({"pretraining": ["a", "b", "b"], "N": [1e6, 1e6, 1e7], "D_F": [1e5, 1e5, 1e6],
      "D_T": [1e6, 2e6, 3e6]}, "one run only for pre-training distribution(s) a"),
    ({"pretraining": ["a", "a"], "N": [1e6, 1e7], "D_F": [1e5, 1e5], "D_T": [1e6, 2e6]},
     "one D_F value for all runs of a: their alpha"),
    ({"pretraining": ["a", "a"], "N": [1e6, 1e7], "D_F": [1e5, 1e6], "D_T": [1e6, 1e6]},
     "D_T is the same (1e+06) in all 2 runs"),
])
def test_unidentifiable_data_warn_with_what_cannot_be_learned(rows, message):
    with pytest.warns(IdentifiabilityWarning, match=message.replace("(", r"\(").replace(")", r"\)")
                      .replace("+", r"\+")):
        bs.TransferData.from_frame(rows)


def test_bundled_data_is_identifiable():
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        bs.TransferData.from_csv(EXAMPLE_CSV, warn=True)


# ---- 6. resources ----------------------------------------------------------------------------------------


def test_no_log_likelihood_fit_file(tmp_path, fit_file, capsys):
    with_ll, without_ll = fit_file, tmp_path / "without.nc"   # fit_file: 2 chains x 300 draws, log-likelihood
    assert main(["fit", str(EXAMPLE_CSV), "--out", str(without_ll), "--draws", "300", "--tune", "300",
                 "--chains", "2", "--no-log-likelihood"]) == 0
    assert "log_likelihood" in read_tree(with_ll).children
    assert "log_likelihood" not in read_tree(without_ll).children
    assert without_ll.stat().st_size < with_ll.stat().st_size
    assert main(["summary", str(without_ll)]) == 0
