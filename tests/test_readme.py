"""The README and the documentation's examples run as written, and their numbers are what the code gives.

The README's first ```python block is also what ``.ci/check-wheel`` runs from the installed wheel.
"""

import re

import numpy as np
from helpers import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"


def _python_blocks(path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def _run(code: str, name: str) -> dict:
    env: dict = {}
    exec(compile(code, name, "exec"), env)  # noqa: S102 - our own documentation
    return env


def test_readme_is_a_short_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 160
    assert len(_python_blocks(README)) == 1, "one Python example in the README; the others live in docs/"
    assert "D_T = k * D_F**alpha * N**beta" in text
    for command in ("make demo", "make test", "make test-latest", "make check-wheel", "make lock",
                    "requirements/dev.txt", "bayes-scaling fit", "bayes-scaling summary", "bayes-scaling predict",
                    "bayes-scaling backtest", "bayes-scaling report"):
        assert command in text, command
    # every relative link of the README points to a file of the repository (the docs pages among them)
    links = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t and not t.startswith("#")]
    assert {f"docs/{p.name}" for p in DOCS.glob("*.md") if p.name != "index.md"} <= {t.split("#")[0] for t in links}
    for target in links:
        assert (REPO / target.split("#")[0]).is_file(), target


def test_no_project_status_words_in_user_facing_text():
    """History (what changed, which issue asked for it) belongs in CHANGELOG.md, not in the README or docs."""
    for path in [README, *sorted(DOCS.glob("*.md"))]:
        text = path.read_text()
        assert not re.search(r"\b[Ii]ssue \d+|\(\*\*missed\*\*\)|\bv1\b", text), path.name


def test_readme_example_runs_and_its_claims_hold(tmp_path, monkeypatch):
    import bayes_scaling as bs

    code = _python_blocks(README)[0]
    # the truth quoted in the example's comment is the bundled data set's
    truth = bs.datasets.corpora_metadata()["truth"]
    quoted = re.search(r"alpha, beta \(truth ([\d.]+), ([\d.]+)\)", code)
    assert quoted and (float(quoted.group(1)), float(quoted.group(2))) == (truth["alpha"], truth["beta"])
    monkeypatch.chdir(tmp_path)
    env = _run(code, "README.md")
    fit, new, pred = env["fit"], env["new"], env["pred"]
    assert (tmp_path / "fit.nc").is_file()
    s = fit.summary(ci_prob=0.98)
    for name in ("alpha", "beta"):
        row = s[s.parameter == name].iloc[0]
        assert row["eti98_lb"] <= truth[name] <= row["eti98_ub"], name
    # "The new corpus gets a far wider interval than `web`"
    width = (pred["hi"] - pred["lo"]).to_numpy()
    assert list(new["corpus"]) == ["web", "a new corpus"] and width[1] > 2 * width[0]


def test_law_spec_page_toml_is_the_shipped_spec():
    import tomllib

    from bayes_scaling.laws.spec import LawSpec, builtin_spec

    toml = re.search(r"```toml\n(.*?)```", (DOCS / "law_spec.md").read_text(), re.S).group(1)
    shown, shipped = LawSpec.from_dict(tomllib.loads(toml)), builtin_spec("chinchilla_by_corpus")
    assert shown.to_dict()["parameters"] == shipped.to_dict()["parameters"]
    assert shown.formula.text == shipped.formula.text and shown.family == shipped.family == "student_t"


def test_transfer_example_in_getting_started_runs(tmp_path, monkeypatch):
    code = _python_blocks(DOCS / "getting_started.md")[0]
    assert "bs.fit_transfer" in code
    monkeypatch.chdir(tmp_path)
    env = _run(code, "docs/getting_started.md")
    q = env["pred"]["multiplier"].quantile([0.03, 0.5, 0.97], dim=("chain", "draw")).values.ravel()
    # the comment in the example quotes these numbers
    np.testing.assert_allclose(q, [447, 476, 509], rtol=0.01)
    assert (tmp_path / "fit.nc").is_file()
