"""The documentation site (``make docs``): its internal-link checker, the law-spec reference against the code, and
a notebook page, rendered by headless Chromium, showing its figures.

The Chromium test builds the site as ``make docs`` does (``docs/_build/html``: about 1.5 min when the notebook
cache is current, 15 min from scratch on 2 busy cores: hence ``slow``; CI runs it right after ``make docs``). It skips, saying why, where Sphinx (the ``docs`` extra) or Chromium (Debian's ``chromium``) is
not installed.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
from helpers import REPO

DOCS = REPO / "docs"
SITE = DOCS / "_build" / "html"
sys.path.insert(0, str(DOCS))
from check_links import broken_links  # noqa: E402


# ---- the link checker --------------------------------------------------------------------------------------
def test_link_checker_reports_each_broken_link_and_passes_good_ones(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "img.png").write_bytes(b"\x89PNG")
    (tmp_path / "index.html").write_text(
        '<html><body><h1 id="top">t</h1>'
        '<a href="sub/page.html#here">ok</a> <a href="#top">ok</a> <img src="img.png"> <a href="sub/">ok</a>'
        '<a href="https://example.org/x">external, not followed</a> <a href="mailto:a@b.c">mail</a>'
        '<a href="missing.html">bad file</a> <a href="sub/page.html#nowhere">bad anchor</a>'
        '<img src="gone.png"> <a href="../outside.html">outside</a></body></html>')
    (tmp_path / "sub" / "page.html").write_text('<p id="here">x</p><a href="../index.html#top">back</a>')
    (tmp_path / "sub" / "index.html").write_text("<p>folder index</p>")
    broken = broken_links(tmp_path)
    assert [b.split(": ", 1)[1] for b in broken] == [
        "missing.html (no such file)",
        "sub/page.html#nowhere (no anchor #nowhere in sub/page.html)",
        "gone.png (no such file)",
        "../outside.html (outside the site)",
    ], broken
    assert broken[0].startswith("index.html:1: ")


def test_link_checker_refuses_a_folder_without_a_site(tmp_path):
    with pytest.raises(FileNotFoundError, match="no HTML files"):
        broken_links(tmp_path)
    result = subprocess.run([sys.executable, str(DOCS / "check_links.py"), str(tmp_path / "absent")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "no such folder" in result.stderr


# ---- the law-spec reference --------------------------------------------------------------------------------
def _documented_keys(section: str) -> set[str]:
    """Keys in the first column of the table under ``### `[section]``` of docs/law_spec.md."""
    text = (DOCS / "law_spec.md").read_text()
    body = re.search(rf"^### `\[{re.escape(section)}\]`\n(.*?)(?=^### |\Z)", text, re.S | re.M)
    assert body, f"law_spec.md has no section [{section}]"
    rows = [line for line in body.group(1).splitlines() if line.startswith("| `")]
    return {k for row in rows for k in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def _expected_in_error(doc: dict) -> set[str]:
    from bayes_scaling.errors import ConfigError
    from bayes_scaling.laws.spec import LawSpec

    with pytest.raises(ConfigError, match="unknown key") as err:
        LawSpec.from_dict(doc)
    return set(re.split(r",\s*", re.search(r"expected (.*)$", str(err.value)).group(1)))


BASE = {"law": {"formula": "E + A / N**alpha", "target": "loss"}, "parameters": {"E": {}, "A": {}, "alpha": {}}}


def test_law_spec_reference_lists_exactly_the_keys_the_code_takes():
    from bayes_scaling.laws.spec import _PARAM_KEYS, LawSpec

    assert _documented_keys("parameters.NAME") == _PARAM_KEYS
    assert _documented_keys("likelihood") == _expected_in_error({**BASE, "likelihood": {"zzz": 1}})
    assert _documented_keys("discrepancy") == _expected_in_error({**BASE, "discrepancy": {"tau": 0.1, "zzz": 1}})
    law_keys = _documented_keys("law")
    assert {"formula", "equation", "bracket", "target"} <= law_keys    # (the built-in specs use them)
    for key in law_keys - {"formula", "equation", "bracket", "target"}:   # the text keys are taken
        LawSpec.from_dict({**BASE, "law": {**BASE["law"], key: "text"}})
    with pytest.raises(Exception, match="unknown key"):
        LawSpec.from_dict({**BASE, "law": {**BASE["law"], "zzz": "text"}})


def test_every_builtin_spec_uses_only_documented_keys():
    sections = {"law": _documented_keys("law"), "likelihood": _documented_keys("likelihood"),
                "discrepancy": _documented_keys("discrepancy")}
    params = _documented_keys("parameters.NAME")
    for path in sorted((REPO / "models" / "laws").glob("*.toml")):
        doc = tomllib.loads(path.read_text())
        for name, table in doc.items():
            if name == "parameters":
                for p, keys in table.items():
                    assert set(keys) <= params, (path.name, p, set(keys) - params)
            elif name in ("derived", "exclude"):   # keys: the quantities' names, the rules; the table is documented
                assert f"### `[{name}]`" in (REPO / "docs" / "law_spec.md").read_text(), path.name
            else:
                assert set(table) <= sections[name], (path.name, name, set(table) - sections[name])


# ---- the built site in a browser ---------------------------------------------------------------------------
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


_PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.querySelectorAll("img")].map(i => (
    {src: i.getAttribute("src"), w: i.naturalWidth, h: i.naturalHeight, complete: i.complete}));
  const pre = document.createElement("pre");
  pre.id = "figure-probe";
  pre.textContent = JSON.stringify(imgs);
  document.body.appendChild(pre);
});
</script>"""


def _rendered_images(page, browser: str) -> list[dict]:
    """Every <img> of ``page`` as Chromium loaded it: src, natural width and height (0 when it did not load)."""
    probe = page.with_name(f"_probe_{page.name}")     # beside the page: its relative links hold
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    try:
        out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--virtual-time-budget=15000", "--dump-dom", probe.as_uri()],
                             capture_output=True, text=True, timeout=180)
    finally:
        probe.unlink()
    found = re.search(r'<pre id="figure-probe"[^>]*>(.*?)</pre>', out.stdout, re.S)   # (the theme adds attributes)
    assert found, f"chromium printed no probe (exit {out.returncode}): {out.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
def test_a_notebook_page_shows_its_figures_in_chromium():
    pytest.importorskip("sphinx", reason="the docs extra is not installed (make docs installs it)")
    pytest.importorskip("myst_nb", reason="the docs extra is not installed (make docs installs it)")
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
                            str(DOCS), str(SITE)], capture_output=True, text=True, cwd=REPO)
    assert build.returncode == 0, build.stderr[-5000:]

    # the quickstart's figures (matplotlib, inline PNG outputs that myst-nb writes to _images/): each loads
    page = SITE / "notebooks" / "01_quickstart.html"
    figures = [i for i in _rendered_images(page, browser) if "_images/" in (i["src"] or "")]
    assert len(figures) >= 2, f"the quickstart page shows {len(figures)} figures (its two plots expected)"
    assert all(i["src"].endswith(".png") and i["complete"] and i["w"] > 100 and i["h"] > 100 for i in figures), \
        figures


def test_the_figure_probe_sees_an_image_that_does_not_load(tmp_path):
    """The check above can fail: an <img> whose file is missing has no size in Chromium."""
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    (tmp_path / "ok.png").write_bytes(_PNG_2x3)
    page = tmp_path / "page.html"
    page.write_text('<html><body><img src="ok.png"><img src="missing.png"></body></html>')
    assert [(i["src"], i["w"], i["h"]) for i in _rendered_images(page, browser)] == [
        ("ok.png", 2, 3), ("missing.png", 0, 0)]


#: a valid 2 x 3 RGBA PNG (the smallest test image)
_PNG_2x3 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000030806000000b9eade810000001149444154789c63f8cfc0f01f"
    "8419301800a1790bf54dc49a070000000049454e44ae426082")
