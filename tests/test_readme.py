"""The README's example runs as written, and its numbers are what the code gives."""

import re

import numpy as np

from conftest import REPO


def test_readme_example_runs(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # noqa: S102 - our own README
    q = env["pred"]["multiplier"].quantile([0.03, 0.5, 0.97], dim=("chain", "draw")).values.ravel()
    # the comment in the README quotes these numbers
    np.testing.assert_allclose(q, [446, 476, 510], rtol=0.01)
    assert (tmp_path / "fit.nc").is_file()
