"""`bayes-scaling report FIT.nc --out DIR` end to end: files, HTML with tables, images and diagnostics."""

from __future__ import annotations

import base64
import re

import pytest
from _transfer_fits import shared_truth

from bayes_scaling.cli import main
from bayes_scaling.output.report import write_report

FIGURES = ("transfer", "transfer_fraction", "posteriors", "ppc", "prior_predictive")


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory):
    fit = shared_truth()[2].fits["shared_beta"]
    return fit.save(tmp_path_factory.mktemp("fit") / "fit.nc")


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_with_comparison(fit_file, tmp_path):
    out = tmp_path / "rep"
    path = write_report(fit_file, out, seed=2, draws=150, tune=150, chains=2)
    assert path == out / "report.html"
    for name in FIGURES + ("compare",):
        png = (out / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
    for name in ("summary", "contrasts", "coverage", "comparison", "pareto_k"):
        assert (out / f"{name}.csv").is_file(), name
    page = path.read_text()
    imgs = _images(page)
    assert len(imgs) == len(FIGURES) + 1 and all(i[:4] == b"\x89PNG" for i in imgs)   # self-contained
    assert "<table>" in page and "Posterior summary" in page and "eti94_lb" in page
    assert f"NUTS back end: <b>{shared_truth()[2].fits['shared_beta'].backend}</b>" in page and "divergences" in page
    # exclusions: the 4 ossified rows, by row number and reason
    assert "98 used in the fit" in page and "ossification" in page
    # comparison and the beta question, with numbers
    assert "separate_beta" in page and "pooled" in page
    assert re.search(r"elpd\(separate_beta\) &minus; elpd\(shared_beta\) = <b>[+-]\d+\.\d\d &plusmn; \d+\.\d\d</b>",
                     page)
    assert "P(k_A &gt; k_B)" in page and "SYNTHETIC" in page


def test_cli_no_compare(fit_file, tmp_path, capsys):
    out = tmp_path / "rep2"
    assert main(["report", str(fit_file), "--out", str(out), "--no-compare", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "report.html" in printed
    page = (out / "report.html").read_text()
    assert "Skipped (--no-compare)" in page and not (out / "compare.png").exists()
    assert len(_images(page)) == len(FIGURES)


def test_cli_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.nc"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fit file not found" in err[0]
