"""The README's example runs as written, and its numbers are what the code gives."""

import re

import numpy as np

from _mc import inside
from conftest import REPO


def test_readme_example_runs(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    code = blocks[0]
    monkeypatch.chdir(tmp_path)
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # noqa: S102 - our own README
    q = env["pred"]["multiplier"].quantile([0.03, 0.5, 0.97], dim=("chain", "draw")).values.ravel()
    # the comment in the README quotes these numbers
    np.testing.assert_allclose(q, [447, 476, 509], rtol=0.01)
    assert (tmp_path / "fit.nc").is_file()


def test_readme_law_spec_example_runs_and_its_toml_is_the_shipped_spec(tmp_path, monkeypatch):
    import tomllib

    from bayes_scaling.laws.spec import LawSpec, builtin_spec

    text = (REPO / "README.md").read_text()
    toml = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    shown, shipped = LawSpec.from_dict(tomllib.loads(toml)), builtin_spec("chinchilla_by_corpus")
    assert shown.to_dict()["parameters"] == shipped.to_dict()["parameters"]
    assert shown.formula.text == shipped.formula.text and shown.family == shipped.family == "student_t"
    code = re.findall(r"```python\n(.*?)```", text, re.S)[1]
    monkeypatch.chdir(tmp_path)
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # noqa: S102 - our own README
    fit, new = env["fit"], env["new"]
    truth = __import__("bayes_scaling").datasets.corpora_metadata()["truth"]
    s = fit.summary(ci_prob=0.98)
    for name in ("alpha", "beta"):
        row = s[s.parameter == name].iloc[0]
        assert inside(row, truth[name], 0.98), name
    pred = fit.predict(new, kind="observation", ci_prob=0.9)
    assert (pred["hi"] - pred["lo"])[1] > (pred["hi"] - pred["lo"])[0]   # a new corpus: far less certain
