"""`bayes-scaling report FIT.nc --out DIR` end to end: files, HTML with tables, images and diagnostics."""

from __future__ import annotations

import base64
import re

import pytest
from helpers import transfer_shared_truth as shared_truth

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


# ---- a law-spec fit ---------------------------------------------------------------------------------------

SPEC_FILES = ("report.html", "summary.csv", "coverage.csv", "loo.csv", "contrasts.csv", "comparison.csv",
              "pareto_k.csv", "law.png", "ppc.png", "compare.png")


@pytest.fixture(scope="module")
def spec_fit_file(tmp_path_factory):
    """Chinchilla on two corpora with beta truly separate, fitted separate (tests/_spec_fits.py)."""
    from helpers import spec_separate_truth as separate_truth

    return separate_truth()[1].fits["separate"].save(tmp_path_factory.mktemp("specfit") / "fit.nc")


def test_report_of_a_spec_fit(spec_fit_file, tmp_path, capsys):
    """`bayes-scaling report` on a law-spec fit file: exit 0, every file, and the comparison of sharing ranks the
    fit as fitted (beta separate, the truth) ahead of beta shared by many standard errors."""
    import pandas as pd

    out = tmp_path / "rep"
    assert main(["report", str(spec_fit_file), "--out", str(out), "--sharing", "beta", "--seed", "2",
                 "--draws", "200", "--tune", "200"]) == 0
    assert "report.html" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(SPEC_FILES)
    page = (out / "report.html").read_text()
    assert len(_images(page)) == 3 and "Posterior summary" in page and "eti94_lb" in page
    assert "chinchilla_two_corpora" in page and "Comparison of sharing" in page and "divergences" in page
    cmp = pd.read_csv(out / "comparison.csv").set_index("variant")
    assert list(cmp.index) == ["as fitted", "beta shared"]
    assert cmp.loc["beta shared", "elpd_diff"] < -4 * cmp.loc["beta shared", "dse"]
    loo = pd.read_csv(out / "loo.csv").iloc[0]
    assert loo["n"] == 50 and loo["elpd_loo"] == pytest.approx(cmp.loc["as fitted", "elpd"])
    cov = pd.read_csv(out / "coverage.csv")
    assert list(cov["nominal"]) == [0.5, 0.9] and (cov["n"] == 50).all()
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["parameter"]) >= {"E", "A", "B", "alpha", "beta", "sigma"}
    assert set(pd.read_csv(out / "contrasts.csv")["quantity"]) >= {"E_A - E_B", "beta_A - beta_B"}


def test_report_of_a_spec_fit_without_comparison(spec_fit_file, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", str(spec_fit_file), "--out", str(out), "--no-compare"]) == 0
    assert not (out / "comparison.csv").exists() and (out / "ppc.png").is_file() and (out / "loo.csv").is_file()
    assert "Skipped (--no-compare)" in (out / "report.html").read_text()


def test_report_sharing_errors(spec_fit_file, fit_file, tmp_path, capsys):
    assert main(["report", str(spec_fit_file), "--out", str(tmp_path / "a"), "--sharing", "gamma"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'gamma'" in err[0] and "not in the spec" in err[0]
    assert not (tmp_path / "a" / "report.html").exists()
    assert main(["report", str(fit_file), "--out", str(tmp_path / "b"), "--sharing", "beta"]) == 2
    assert "law-spec fits" in capsys.readouterr().err
