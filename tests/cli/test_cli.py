"""The command line end to end: exit codes, files, one-line errors without tracebacks."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bayes_scaling.cli import main
from bayes_scaling.data.datasets import EXAMPLE_CSV

FAST = ["--draws", "200", "--tune", "200", "--chains", "2"]


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "fit.nc"
    assert main(["fit", str(EXAMPLE_CSV), "--out", str(out), *FAST, "--seed", "4"]) == 0
    return out


def test_fit_prints_table_and_saves(tmp_path, capsys):
    out = tmp_path / "f.nc"
    code, stdout, err = run(["fit", EXAMPLE_CSV, "--out", out, *FAST, "--ci", "0.9"], capsys)
    assert code == 0 and out.is_file()
    assert "90% ETI" in stdout and "NUTS back end:" in stdout and "r_hat" in stdout
    for name in ("k", "alpha", "beta", "sigma"):
        assert any(line.strip().startswith(name) for line in stdout.splitlines())
    assert "excluded 4 of 102 rows" in err  # ossified runs reported on stderr


def test_summary_and_csv(fitted, capsys):
    code, stdout, _ = run(["summary", fitted], capsys)
    assert code == 0 and "94% ETI" in stdout
    code, stdout, _ = run(["summary", fitted, "--csv"], capsys)
    assert code == 0
    assert stdout.splitlines()[0].startswith("parameter,by,group,pretraining,mean,sd")   # every fit's summary


def test_student_t_and_model_file(tmp_path, capsys):
    model = tmp_path / "m.toml"
    model.write_text('[model]\nlikelihood = "student_t"\n[priors.beta]\nmu = 0.38\nsigma = 0.05\n')
    code, stdout, _ = run(["fit", EXAMPLE_CSV, "--out", tmp_path / "t.nc", *FAST, "--model", model], capsys)
    assert code == 0 and "likelihood='student_t'" in stdout and "nu" in stdout


@pytest.mark.parametrize("content, message", [
    ("pretraining,N,D_F,D_T\ntext,1e6,1e5,1e6\ntext,-1,1e5,1e6\n", "column 'N' must be > 0; rows 1"),
    ("pretraining,N,D_F\ntext,1e6,1e5\n", "needs a column 'D_T'"),
    ("pretraining,N,D_F,D_T\ntext,1e6,abc,1e6\n", "column 'D_F' has non-numeric values at rows 0"),
    ("pretraining,N,D_F,D_T\n", "empty"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = run(["fit", path, "--out", tmp_path / "x.nc"], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_arguments(tmp_path, capsys):
    code, _, err = run(["summary", tmp_path / "missing.nc"], capsys)
    assert code == 2 and "not found" in err
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(EXAMPLE_CSV), "--out", "x.nc", "--draws", "0"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(EXAMPLE_CSV), "--out", "x.nc", "--likelihood", "cauchy"])
    assert exc.value.code == 2


def test_demo_writes_summary_and_plot(tmp_path, capsys):
    code, stdout, _ = run(["demo", "--out", tmp_path, *FAST], capsys)
    assert code == 0 and "SYNTHETIC" in stdout
    for name in ("fit.nc", "summary.csv", "summary.txt", "transfer.png"):
        assert (tmp_path / name).stat().st_size > 0
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary["parameter"]) >= {"k", "alpha", "beta", "sigma"}
    assert "truth" in (tmp_path / "summary.txt").read_text()
    # the real bundled data set (Lin et al. 2024): P(best) per model beside the actual full-data losses
    assert "REAL data" in stdout
    table = pd.read_csv(tmp_path / "selection_lin_flan.csv")
    assert len(table) == 6 and table["p_best"].sum() == pytest.approx(1.0) and table["actual"].notna().all()
    assert (tmp_path / "selection_lin_flan.png").stat().st_size > 0


def test_console_script_in_a_fresh_process(tmp_path):
    """The installed `bayes-scaling` entry point: exit codes and no traceback."""
    exe = shutil.which("bayes-scaling") or str(Path(sys.executable).with_name("bayes-scaling"))
    bad = tmp_path / "bad.csv"
    bad.write_text("pretraining,N,D_F,D_T\ntext,0,1e5,1e6\n")
    res = subprocess.run([exe, "fit", str(bad), "--out", str(tmp_path / "x.nc")], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "'N' must be > 0" in res.stderr
    res = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "bayes-scaling" in res.stdout


# ---- the shared options (cli/cmdoptions.py) and the module layout ---------------------------------------------
def _leaf_parsers(parser, prefix=()):
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(prefix), parser
    for a in subs:
        for name, child in a.choices.items():
            yield from _leaf_parsers(child, (*prefix, name))


def test_shared_options_have_one_default_everywhere():
    """--ci, --seed, the sampler's options: the same type and default in every command that takes them."""
    from bayes_scaling.cli import build_parser, cmdoptions

    leaves = dict(_leaf_parsers(build_parser()))
    with_ci = {n for n, p in leaves.items() if "--ci" in p._option_string_actions}
    with_seed = {n for n, p in leaves.items() if "--seed" in p._option_string_actions}
    assert {"fit", "summary", "fit-scratch", "fit-joint", "effective-data", "predict", "forecast", "best",
            "report"} <= with_ci
    assert {"fit", "demo", "predict", "forecast", "export", "best", "report", "calibrate", "backtest"} <= with_seed
    for name in with_ci:
        action = leaves[name]._option_string_actions["--ci"]
        assert action.default == cmdoptions.CI == 0.94 and action.type is cmdoptions.probability, name
    for name in with_seed:
        assert leaves[name]._option_string_actions["--seed"].default == cmdoptions.SEED == 1, name
    for name, p in leaves.items():
        for opt in ("--draws", "--tune", "--chains", "--workers"):
            if opt in p._option_string_actions:
                assert p._option_string_actions[opt].type is cmdoptions.positive_int, (name, opt)
        if "--backend" in p._option_string_actions:
            assert tuple(p._option_string_actions["--backend"].choices) == cmdoptions.BACKENDS, name


def test_each_command_in_the_module_named_after_it():
    from bayes_scaling.cli import build_parser

    for name, p in _leaf_parsers(build_parser()):
        module = p.get_default("func").__module__
        assert module == f"bayes_scaling.cli.{name.split()[0].replace('-', '_')}", (name, module)
