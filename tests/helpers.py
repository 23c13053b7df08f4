"""Helpers shared by the test modules: paths, Monte Carlo margins, small seeded fits (computed once per
session), recovery checks and the real data sets the tests read."""

from __future__ import annotations

import hashlib
import itertools
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

import bayes_scaling as bs
from bayes_scaling.analysis.compare import compare_sharing, compare_variants
from bayes_scaling.data.simulate import TABLE1, simulate_law, simulate_transfer
from bayes_scaling.inference.fit import Fit
from bayes_scaling.inference.sampling import TransferFit
from bayes_scaling.laws.spec import LawSpec
from bayes_scaling.models.losslaws import read_epoch_chinchilla
from bayes_scaling.models.transfer import ModelConfig

# ---- Paths and command-line checks -----------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


SHARED_DATA = REPO.parent / "shared" / "data"


def digest(path: Path) -> str:
    """The SHA-256 of a file's bytes (tests that a file was left byte-for-byte as it was)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def one_error_line(err: str) -> str:
    """The one error line of a command (``warning:`` lines, e.g. excluded rows, may come before it)."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---- Monte Carlo margins for tests that compare random estimates (shared by the test modules). -----------
#
# A posterior quantile estimated from S correlated draws has a Monte Carlo standard error; a test that asks
# "is the truth inside the 95% interval" or "is this interval wider than that one" must allow a few of them, or
# it turns on the last digits of the sampler (another numpy, another CPU). Normal approximation of the quantile's
# MCSE (Vehtari et al. 2021, "Rank-normalization, folding, and localization", section 4):
# ``se(q_p) = sd * sqrt(p (1 - p) / ESS) / phi(z_p)``.

#: how many Monte Carlo standard errors a margin allows (about 1 in 370 per side by chance)
K = 3.0


def quantile_mcse(sd: float, ess: float, prob: float) -> float:
    """MCSE of the ``prob`` quantile of draws with standard deviation ``sd`` and effective size ``ess``."""
    ess = max(float(ess), 1.0)
    return float(sd) * np.sqrt(prob * (1 - prob) / ess) / norm.pdf(norm.ppf(prob))


def interval_margin(row, ci_prob: float, k: float = K) -> float:
    """``k`` MCSEs of the endpoints of a summary row's equal-tailed ``ci_prob`` interval (``sd``, ``ess_tail``)."""
    return k * quantile_mcse(row["sd"], row["ess_tail"], (1 - ci_prob) / 2)


def inside(row, value: float, ci_prob: float, k: float = K) -> bool:
    """Whether ``value`` lies in the summary row's ``ci_prob`` interval, widened by its Monte Carlo margin."""
    pct = f"{100 * ci_prob:g}"
    m = interval_margin(row, ci_prob, k)
    return row[f"eti{pct}_lb"] - m <= value <= row[f"eti{pct}_ub"] + m


def draws_inside(draws: np.ndarray, value: float, ci_prob: float, ess: float | None = None, k: float = K) -> bool:
    """The same for raw draws (``ess`` defaults to the number of draws: independent draws)."""
    x = np.asarray(draws, dtype=float).ravel()
    p = (1 - ci_prob) / 2
    lo, hi = np.quantile(x, [p, 1 - p])
    m = k * quantile_mcse(x.std(ddof=1), len(x) if ess is None else ess, p)
    return lo - m <= value <= hi + m


def means_agree(a: np.ndarray, b: np.ndarray, ess_a: float, ess_b: float, k: float = K) -> bool:
    """Whether two posterior means of one quantity (draws ``a``, ``b``, bulk ESS ``ess_a``, ``ess_b``) agree
    within ``k`` Monte Carlo standard errors of their difference, ``sqrt(sd_a**2 / ess_a + sd_b**2 / ess_b)``."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    se = np.sqrt(a.var(ddof=1) / max(float(ess_a), 1.0) + b.var(ddof=1) / max(float(ess_b), 1.0))
    return abs(a.mean() - b.mean()) <= k * se


# ---- A minimal "posterior" whose every draw is the paper's Table 1 (closed-form checks of predictions, ---
# compute and timeline). Built as a real :class:`TransferFit` so the production code path is exercised.

TEXT = {"k": 1.9e4, "alpha": 0.18, "beta": 0.38}


CODE = {"k": 2.1e5, "alpha": 0.096, "beta": 0.38}


CENTRE = (13.0, 16.0)


def table1_fit(*, chains: int = 2, draws: int = 5, hierarchy: bool = True, a_sigma: float = 1e-9,
               alpha_sigma: float = 1e-9, sigma: float = 0.15, alpha_text: float | None = None,
               k_text: float | None = None, beta: float | None = None) -> TransferFit:
    """Every draw = Table 1 (text, text+code). The population (a_mu, alpha_mu) sits at the text values with
    spreads ``a_sigma``, ``alpha_sigma`` (``hierarchy=False`` drops them, like a pooled fit)."""
    text = dict(TEXT, **({"alpha": alpha_text} if alpha_text is not None else {}),
                **({"k": k_text} if k_text is not None else {}), **({"beta": beta} if beta is not None else {}))
    names = ["text", "text+code"]
    shape = (chains, draws)
    c_F, c_N = CENTRE

    def full(v):
        return np.full(shape, float(v))

    log_k = np.stack([full(np.log(text["k"])), full(np.log(CODE["k"]))], axis=-1)
    alpha = np.stack([full(text["alpha"]), full(CODE["alpha"])], axis=-1)
    b = text["beta"]
    a = log_k + alpha * c_F + b * c_N
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "pretraining": names}
    post = xr.Dataset({
        "log_k": (("chain", "draw", "pretraining"), log_k), "k": (("chain", "draw", "pretraining"), np.exp(log_k)),
        "alpha": (("chain", "draw", "pretraining"), alpha), "a": (("chain", "draw", "pretraining"), a),
        "beta": (("chain", "draw"), full(b)), "sigma": (("chain", "draw"), full(sigma)),
        "a_mu": (("chain", "draw"), a[..., 0]), "alpha_mu": (("chain", "draw"), alpha[..., 0]),
    }, coords=coords)
    if hierarchy:
        post["a_sigma"] = (("chain", "draw"), full(a_sigma))
        post["alpha_sigma"] = (("chain", "draw"), full(alpha_sigma))
    tree = xr.DataTree.from_dict({"posterior": post})
    tree.attrs.update(centre_log_D_F=c_F, centre_log_N=c_N, seed=0, backend="fake",
                      bayes_scaling_kind="transfer")
    config = ModelConfig(variant="shared_beta" if hierarchy else "pooled")
    return TransferFit(tree, bs.load_example(), config)


# ---- Small seeded law-spec fits shared by test_compare, test_checks and test_report (computed once per session). ---
#
# The law: Chinchilla's ``loss = E + A / N**alpha + B / D**beta`` on two corpora (5 x 5 runs each), ``E`` partially
# pooled by corpus, ``A``, ``B``, ``alpha`` shared, and ``beta`` either truly shared (0.28) or truly separate (0.25 vs
# 0.31); normal noise of sd 0.01 on log(loss). Each data set is fitted with ``beta`` shared and separate (the same
# two model structures, so each compiles once), 2 chains x 300 draws.

SPEC_SETTINGS = {"draws": 300, "tune": 300, "chains": 2}


SPEC_SIGMA = 0.01


SPEC = LawSpec.from_dict({"law": {"name": "chinchilla_two_corpora", "formula": "E + A / N**alpha + B / D**beta",
                                  "target": "loss"},
                          "parameters": {"E": {"by": "corpus"}, "A": {}, "B": {}, "alpha": {}, "beta": {}}})


SPEC_BASE = {"E": {"c1": 1.8, "c2": 2.0}, "A": 400.0, "B": 1500.0, "alpha": 0.34}


SPEC_SHARED_TRUTH = {**SPEC_BASE, "beta": 0.28}


SPEC_SEPARATE_TRUTH = {**SPEC_BASE, "beta": {"c1": 0.25, "c2": 0.31}}


def spec_design() -> pd.DataFrame:
    return pd.DataFrame([{"corpus": c, "N": n, "D": d} for c, n, d in itertools.product(
        ["c1", "c2"], np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5))])


def _spec_data(truth: dict, seed: int) -> pd.DataFrame:
    spec = SPEC
    if isinstance(truth["beta"], dict):
        doc = SPEC.to_dict()
        doc["parameters"]["beta"] = {"by": "corpus", "pooling": "none"}
        spec = LawSpec.from_dict(doc)
    return simulate_law(spec, spec_design(), truth, SPEC_SIGMA, seed=seed)


@cache
def spec_shared_truth():
    """beta truly shared: data and the comparison of beta shared, separate and fixed at a wrong value (0.40)."""
    data = _spec_data(SPEC_SHARED_TRUTH, seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare_sharing(data, SPEC, "beta", ["shared", "separate", "fixed=0.4"], by="corpus", seed=3,
                              **SPEC_SETTINGS)
    return data, cmp


@cache
def spec_separate_truth():
    """beta truly separate: data and the comparison of beta shared and separate."""
    data = _spec_data(SPEC_SEPARATE_TRUTH, seed=22)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare_sharing(data, SPEC, "beta", ["shared", "separate"], by="corpus", seed=4, **SPEC_SETTINGS)
    return data, cmp


# ---- Small seeded fits shared by test_compare, test_checks, test_plots and test_report (computed once per session). ---
#
# Settings are deliberately small (2 chains x 300 draws) so the default suite stays quick; recovery tolerances in
# the tests are set for that size.

TRANSFER_SETTINGS = {"draws": 300, "tune": 300, "chains": 2}


#: beta truly differs between the pre-training distributions (0.32 vs 0.44), everything else Table 1.
TRANSFER_SEPARATE_TRUTH = {"text": {**TABLE1["text"], "beta": 0.32}, "text+code": {**TABLE1["text+code"], "beta": 0.44}}


def _transfer_data(truth, seed):
    df, meta = simulate_transfer(seed=seed, truth=truth)
    return bs.TransferData.from_frame(df, warn=False), meta


@cache
def transfer_shared_truth():
    """Table 1 truth (beta shared): data, metadata and a comparison of all three variants."""
    data, meta = _transfer_data(TABLE1, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare_variants(data, seed=5, **TRANSFER_SETTINGS)
    return data, meta, cmp


@cache
def transfer_separate_truth():
    """beta differs (TRANSFER_SEPARATE_TRUTH): data, metadata and a comparison of shared_beta vs separate_beta."""
    data, meta = _transfer_data(TRANSFER_SEPARATE_TRUTH, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare_variants(data, variants=("shared_beta", "separate_beta"), seed=6, **TRANSFER_SETTINGS)
    return data, meta, cmp


# ---- Recovery: which parameters' intervals miss the truth ------------------------------------------------

def covered(fit_: Fit, truth: dict, prob: float = 0.98) -> list[str]:
    """Parameters whose central ``prob`` interval misses the truth."""
    s = fit_.summary(ci_prob=prob)
    lo, hi = f"eti{100 * prob:g}_lb", f"eti{100 * prob:g}_ub"
    missed = []
    for name, t in truth.items():
        for g, v in (t.items() if isinstance(t, dict) else [("", t)]):
            r = s[(s.parameter == name) & (s.group == g)].iloc[0]
            if not r[lo] <= v <= r[hi]:
                missed.append(f"{name}[{g}]={v} not in [{r[lo]:.4g}, {r[hi]:.4g}]")
    return missed


# ---- Epoch AI's Chinchilla runs (shared data) and their published 95% intervals --------------------------

CHINCHILLA_CSV = SHARED_DATA / "chinchilla_epoch_svg_extracted.csv"


EPOCH_95 = {"A": (285, 744), "B": (1042, 5810), "E": (1.769, 1.871), "alpha_N": (0.317, 0.373),
            "alpha_D": (0.331, 0.415)}


def epoch_chinchilla():
    if not CHINCHILLA_CSV.is_file():
        pytest.skip(f"real data not found: {CHINCHILLA_CSV} (see ../shared/data/README.md)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_epoch_chinchilla(CHINCHILLA_CSV)


# ---- Runs of a law the Chinchilla law misses outside the data (test_discrepancy, test_discrepancy_learnt) ----

MISFIT_TRUTH = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha_N": 0.34, "alpha_D": 0.28}
MISFIT_EXTRA = 0.05      # the misspecified truth: loss falls by 0.05 per decade of D beyond 1e9 more than Chinchilla's


def misfit_loss(N, D, extra=MISFIT_EXTRA):
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    t = MISFIT_TRUTH
    return t["E"] + t["A"] / N ** t["alpha_N"] + t["B"] / D ** t["alpha_D"] - extra * np.log10(D / 1e9)


def misfit_runs(seed=0, sigma=0.005, extra=MISFIT_EXTRA):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 1e9, 6), 6)
    D = np.tile(np.geomspace(1e9, 1e11, 6), 6)
    return pd.DataFrame({"N": N, "D": D, "loss": misfit_loss(N, D, extra) * np.exp(rng.normal(0, sigma, N.size))})


def lin_law_spec() -> LawSpec:
    """Lin et al.'s rectified law in their own coordinates, ``B / (D_l + D**beta) + E``, every parameter by
    ``model`` and partially pooled (the built-in ``rectified_finetuning`` spec samples the same law
    reparameterized; this one simulates from their parameters and shows how their coordinates sample)."""
    return LawSpec.from_dict({
        "law": {"name": "rectified_finetuning_lin", "formula": "B / (D_l + D**beta) + E", "target": "loss"},
        "likelihood": {"family": "normal", "scale": "log"},
        "parameters": {p: {"by": "model"} for p in ("B", "D_l", "beta", "E")}})


def mikami_law_spec() -> LawSpec:
    """Mikami et al.'s law in their own coordinates, ``c + d / x**a``, every parameter by ``config`` (the built-in
    ``synthetic_to_real`` spec samples it reparameterized)."""
    return LawSpec.from_dict({
        "law": {"name": "synthetic_to_real_mikami", "formula": "c + d / x**a", "target": "error"},
        "likelihood": {"family": "normal", "scale": "log"},
        "parameters": {p: {"by": "config"} for p in ("c", "d", "a")},
        "exclude": {"x <= 0": "x = 0: the law is infinite there"}})
