"""Figures return their Figure, with labelled (log) axes, legends and units."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from helpers import transfer_shared_truth as shared_truth  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bayes_scaling.analysis.checks import prior_predictive_check  # noqa: E402
from bayes_scaling.output import plots  # noqa: E402


@pytest.fixture(scope="module")
def comparison():
    return shared_truth()[2]


@pytest.fixture(scope="module")
def fit(comparison):
    return comparison.fits["shared_beta"]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _labelled(ax):
    return bool(ax.get_xlabel().strip()) and bool(ax.get_ylabel().strip())


def test_transfer(fit):
    fig = plots.plot_transfer(fit)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert "characters" in ax.get_xlabel()
    assert "characters" in fig.axes[0].get_ylabel()
    assert fig.axes[-1].get_legend() is not None


def test_transfer_fraction(fit):
    fig = plots.plot_transfer_fraction(fit, D_F=[1e5, 1e7])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and _labelled(ax) and "D_T / D_E" in ax.get_ylabel()
    assert ax.get_ylim() == (0, 1)
    labels = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert labels == ["D_F = 1.0e+05 characters", "D_F = 1.0e+07 characters"]
    # more fine-tuning data: a smaller share of transfer (lines ordered as D_F)
    y_small, y_large = (line.get_ydata() for line in ax.get_lines()[:2])
    assert (y_small > y_large).all()
    for y in (y_small, y_large):
        assert ((0 <= y) & (y <= 1)).all()


def test_posteriors(fit, comparison):
    meta = shared_truth()[1]
    fig = plots.plot_posteriors(fit, truth=meta["truth"])
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    k_ax, a_ax, b_ax = fig.axes
    assert k_ax.get_xscale() == "log" and all(_labelled(ax) for ax in fig.axes)
    assert "text" in k_ax.get_legend().get_texts()[0].get_text()
    assert any("true value" in t.get_text() for t in a_ax.get_legend().get_texts())
    assert any("shared" in t.get_text() for t in b_ax.get_legend().get_texts())
    sep = plots.plot_posteriors(comparison.fits["separate_beta"])
    texts = [t.get_text() for t in sep.axes[2].get_legend().get_texts()]
    assert any(t.startswith("text:") for t in texts) and any(t.startswith("text+code:") for t in texts)


def test_ppc(fit):
    fig = plots.plot_ppc(fit, seed=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax, ax2 = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and _labelled(ax)
    assert "characters" in ax.get_xlabel() and "LOO-PIT" in ax2.get_xlabel() and _labelled(ax2)
    assert "coverage" in " ".join(t.get_text() for t in ax.texts)


def test_prior_predictive_and_compare(comparison):
    pri = prior_predictive_check(shared_truth()[0], draws=100, seed=1)
    fig = plots.plot_prior_predictive(pri)
    assert isinstance(fig, Figure) and fig.axes[0].get_yscale() == "log" and _labelled(fig.axes[0])
    fig = plots.plot_compare(comparison)
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and "elpd" in ax.get_xlabel()
    assert {t.get_text().split(" ")[0] for t in ax.get_yticklabels()} == {"shared_beta", "separate_beta", "pooled"}
