"""Command-line conveniences: ``--json`` on every command that prints a table, ``--quiet`` (and no progress bars
off a terminal), shell completion (argcomplete, optional)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bayes_scaling._progress import default_progress, is_quiet, quiet
from bayes_scaling.cli import build_parser, main
from bayes_scaling.cli._output import JSON_COMMANDS
from bayes_scaling.data.datasets import EXAMPLE_CSV

FAST = ["--draws", "200", "--tune", "200", "--chains", "2"]


def _leaves(parser, prefix=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(prefix), parser
        return
    for a in subs:
        for name, child in a.choices.items():
            yield from _leaves(child, (*prefix, name))


def test_every_command_takes_quiet_and_table_commands_take_json():
    leaves = dict(_leaves(build_parser()))
    assert JSON_COMMANDS <= {name.split()[0] for name in leaves}
    for name, p in leaves.items():
        assert "--quiet" in p._option_string_actions, name
        assert ("--json" in p._option_string_actions) == (name.split()[0] in JSON_COMMANDS), name


def test_table_printing_commands_all_take_json():
    """A command whose code prints a table (``to_string``/``to_csv(sys.stdout``) must be in JSON_COMMANDS."""
    import bayes_scaling.cli as cli

    modules = Path(cli.__file__).parent
    register_names = {"fit.py": {"fit"}, "summary.py": {"summary"}, "predict.py": {"predict"},
                      "forecast.py": {"forecast"}, "best.py": {"best"}, "calibrate.py": {"calibrate"},
                      "backtest.py": {"backtest"}, "fit_scratch.py": {"fit-scratch"}, "fit_joint.py": {"fit-joint"},
                      "effective_data.py": {"effective-data"}, "quantiles.py": {"quantiles"}, "stack.py": {"stack"},
                      "_common.py": set(),   # its helpers print the tables of the commands above
                      "demo.py": set()}      # a walkthrough writing files, no --json (as before)
    for path in modules.glob("*.py"):
        text = path.read_text()
        if ".to_string(" in text or "to_csv(sys.stdout" in text:
            assert path.name in register_names, f"{path.name} prints a table: add its commands to JSON_COMMANDS"
            assert register_names[path.name] <= JSON_COMMANDS


@pytest.fixture(scope="module")
def fit_json(tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("json") / "fit.nc"
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        code = main(["fit", str(EXAMPLE_CSV), "--out", str(out), *FAST, "--seed", "4", "--json", "--quiet"])
    assert code == 0
    return out, buf.getvalue(), err.getvalue()


def _json(args, capsys):
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def test_fit_json_is_one_document_and_human_lines_go_to_stderr(fit_json):
    path, out, err = fit_json
    doc = json.loads(out)                                    # stdout: the JSON document only
    assert doc["command"] == "fit" and doc["info"]["saved"] == str(path)
    params = {r["parameter"] for r in doc["tables"]["summary"]}
    assert {"k", "alpha", "beta", "sigma"} <= params
    assert "NUTS back end" in err and "r_hat" in err           # the human table moved to stderr


def test_summary_predict_forecast_best_json(fit_json, tmp_path, capsys):
    path = fit_json[0]
    doc, _ = _json(["summary", path, "--json"], capsys)
    assert doc["tables"]["summary"][0]["parameter"] == "k" and doc["info"]["ci_prob"] == 0.94
    doc, _ = _json(["predict", path, "--pretraining", "text", "--N", "4e7", "1e11", "--D-F", "3e5", "--json"],
                   capsys)
    rows = doc["tables"]["intervals"]
    assert [r["N_outside"] for r in rows] == [0.0, 2.0] and 400 < rows[0]["multiplier"] < 560
    doc, _ = _json(["forecast", path, "--N", "1e10", "--D-req", "1e9", "--json"], capsys)
    rows = doc["tables"]["intervals"]
    assert {r["pretraining"] for r in rows} == {"text", "text+code"} and all(r["unsolved"] == 0 for r in rows)
    assert all(r["N_outside"] == 1.0 for r in rows)
    points = tmp_path / "point.csv"
    points.write_text("N,D_F\n1e8,1e6\n")
    doc, _ = _json(["best", path, "--at", points, "--json"], capsys)
    assert sum(r["p_best"] for r in doc["tables"]["best"]) == pytest.approx(1.0)


def test_json_errors_leave_stdout_empty(tmp_path, capsys):
    capsys.readouterr()
    assert main(["summary", str(tmp_path / "missing.nc"), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error" in err


def test_json_output_has_no_nan():
    from bayes_scaling.cli._output import to_jsonable

    doc = to_jsonable({"a": float("nan"), "b": [float("inf"), 1], "c": __import__("numpy").float32(2.5)})
    assert json.dumps(doc, allow_nan=False) == '{"a": null, "b": [null, 1], "c": 2.5}'


# ---- progress bars ---------------------------------------------------------------------------------------


class _Tty:
    def isatty(self):
        return True

    def write(self, text):
        return len(text)

    def flush(self):
        pass


def test_progress_only_on_a_terminal_and_not_quiet(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert default_progress() and not is_quiet()
    with quiet():
        assert not default_progress() and is_quiet()
        with quiet(False):                                   # nested: stays quiet
            assert is_quiet()
    assert default_progress()
    monkeypatch.setattr(sys, "stderr", open(os.devnull, "w"))   # noqa: SIM115 - not a terminal
    assert not default_progress()


def test_quiet_batches_and_samplers(monkeypatch):
    from bayes_scaling.inference.batch import _Progress
    from bayes_scaling.inference.sampling import sampler_settings

    monkeypatch.setattr(sys, "stderr", _Tty())
    assert sampler_settings(10, 10, 1, 1, None)[1] is True
    with quiet():
        assert _Progress(None, 5, "x").bar is None
        assert sampler_settings(10, 10, 1, 1, None)[1] is False
        assert sampler_settings(10, 10, 1, 1, True)[1] is True    # an explicit request still shows


def test_cli_quiet_reaches_the_library(monkeypatch, capsys):
    seen = {}

    def fake(args):
        seen["quiet"] = is_quiet()
        return 0

    parser = build_parser()
    args = parser.parse_args(["summary", "x.nc", "--quiet"])
    args.func = fake
    monkeypatch.setattr("bayes_scaling.cli.build_parser", lambda: _Fixed(parser, args))
    assert main(["summary", "x.nc", "--quiet"]) == 0 and seen["quiet"] is True
    assert not is_quiet()


class _Fixed:
    def __init__(self, parser, args):
        self.parser, self.args = parser, args

    def parse_args(self, argv):
        return self.args


# ---- shell completion ------------------------------------------------------------------------------------


def test_shell_completion_with_argcomplete(tmp_path):
    pytest.importorskip("argcomplete", reason="argcomplete is optional (pip install 'bayes_scaling[completion]')")
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash on this machine")
    script = Path(sys.executable).with_name("bayes-scaling")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "bayes_scaling"]
    out = tmp_path / "completions.txt"

    def complete(line):
        env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
               "_ARGCOMPLETE_IFS": "\v"}
        shell = " ".join(f"'{c}'" for c in cmd) + f" 8>'{out}' 9>/dev/null"
        subprocess.run([bash, "-c", shell], env=env, check=True, timeout=120)
        return out.read_text().split("\v")

    assert "quantiles " in complete("bayes-scaling qua") or "quantiles" in complete("bayes-scaling qua")
    assert any(c.strip() == "--json" for c in complete("bayes-scaling summary --js"))
