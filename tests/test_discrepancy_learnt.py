"""The learnt discrepancy: ``tau`` as a parameter with a hierarchical prior over data sets, updated by a set's
own nested backtests (``bayes_scaling.laws.discrepancy``: ``tau_log_likelihood``, ``TauPrior``,
``population_prior``; ``[discrepancy] tau = "learnt"``; the shipped population file)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_scaling.errors import ConfigError
from bayes_scaling.laws.discrepancy import (
    TAU_GRID,
    Discrepancy,
    TauPrior,
    load_population,
    population_prior,
    tau_log_likelihood,
    widen,
)
from bayes_scaling.laws.spec import LawSpec, builtin_spec

from _mc import K


def nested_set(rng, tau, n=24, folds=2, sd=0.01, rho=0.0):
    """Nested-backtest residuals of a set whose law drifts by ``tau`` per decade: ``folds`` refits of ``n``
    held-out runs each, ``d ~ U(0.1, 1)``; the discrepancy is shared by the runs of a fold with weight ``rho``."""
    r, s, d, f = [], [], [], []
    for k in range(folds):
        dk = rng.uniform(0.1, 1.0, n)
        shared = rng.standard_normal()
        delta = tau * dk * (np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal(n))
        r.append(delta + rng.normal(0, sd, n))
        s.append(np.full(n, sd))
        d.append(dk)
        f.append(np.full(n, k))
    return [np.concatenate(x) for x in (r, s, d, f)]


def test_tau_likelihood_recovers_tau_independent_and_shared():
    rng = np.random.default_rng(3)
    for rho in (0.0, 1.0):
        lls = []
        for _ in range(60):
            r, s, d, f = nested_set(rng, 0.08, rho=rho)
            lls.append(tau_log_likelihood(r, s, d, fold=f, rho=rho))
        ll = np.sum(lls, axis=0)
        tau_hat = TAU_GRID[np.argmax(ll)]
        # 60 sets x 2 folds: the ML estimate within 25% (rho = 1: 120 effective draws of the shared z)
        assert abs(np.log(tau_hat / 0.08)) < 0.25, (rho, tau_hat)
    # a shared draw explains residuals of one sign better than independent ones do
    r, s, d, f = nested_set(np.random.default_rng(0), 0.1, rho=1.0)
    r = np.abs(r)
    best = {rho: tau_log_likelihood(r, s, d, fold=f, rho=rho).max() for rho in (0.0, 1.0)}
    assert best[1.0] > best[0.0]
    with pytest.raises(ValueError, match="rho"):
        tau_log_likelihood(r, s, d, rho=2.0)


def test_learnt_tau_is_narrow_for_low_drift_wide_for_high_drift_and_covers():
    """Simulated data sets with known drift, tau_s ~ LogNormal(log 0.05, 0.8): the population prior from 30
    sets' nested backtests; each new set's tau updated by its own. A low-drift set gets a smaller tau (and
    narrower intervals) than a high-drift one, and held-out runs of new sets are covered at the nominal rate."""
    rng = np.random.default_rng(11)
    mu, sd = np.log(0.05), 0.8
    train = [tau_log_likelihood(*nested_set(rng, np.exp(mu + sd * rng.standard_normal()))[:3],
                                fold=np.repeat([0, 1], 24)) for _ in range(30)]
    prior = population_prior(train)
    assert abs(prior.mu - mu) < 0.5 and 0.4 < prior.sd < 1.4, prior
    low = prior.update(tau_log_likelihood(*nested_set(rng, 0.01)[:3]))
    high = prior.update(tau_log_likelihood(*nested_set(rng, 0.2)[:3]))
    assert low.median < 0.03 < prior.median < 0.1 < high.median
    # coverage of held-out runs (one per new set, d* in [1, 2]: beyond the nested distances) at 50% and 90%
    n_sets, hits50, hits90 = 600, 0, 0
    for _ in range(n_sets):
        tau_s = np.exp(mu + sd * rng.standard_normal())
        r, s, d, f = nested_set(rng, tau_s)
        post = prior.update(tau_log_likelihood(r, s, d, fold=f))
        dstar = rng.uniform(1.0, 2.0)
        y = rng.normal(0, np.hypot(0.01, tau_s * dstar))
        draws = rng.normal(0, 0.01, 4000) + post.sample(4000, rng) * dstar * rng.standard_normal(4000)
        lo90, lo50, hi50, hi90 = np.quantile(draws, [0.05, 0.25, 0.75, 0.95])
        hits50 += lo50 <= y <= hi50
        hits90 += lo90 <= y <= hi90
    for hits, p in ((hits50, 0.5), (hits90, 0.9)):
        margin = K * np.sqrt(p * (1 - p) / n_sets) + 0.02          # + 0.02: the moment-matched posterior
        assert abs(hits / n_sets - p) < margin, (p, hits / n_sets)


def test_population_prior_pools_and_a_flat_likelihood_changes_nothing():
    p = TauPrior(np.log(0.05), 0.5)
    assert p.update(np.zeros(len(TAU_GRID))) == p
    assert p.rms > p.median
    # sets that all say tau = 0.03 precisely: the population median near 0.03 and a narrow spread
    lls = [-0.5 * ((np.log(TAU_GRID) - np.log(0.03)) / 0.05) ** 2 for _ in range(12)]
    pop = population_prior(lls)
    assert abs(np.log(pop.median / 0.03)) < 0.05 and pop.sd < 0.3
    with pytest.raises(ValueError, match="one log-likelihood per data set"):
        population_prior([np.zeros(3)])
    with pytest.raises(ConfigError, match="sd > 0"):
        TauPrior(0.0, -1.0)


def test_widen_takes_one_tau_per_draw():
    rng = np.random.default_rng(0)
    draws = np.ones((5000, 2))
    tau = np.where(np.arange(5000) < 2500, 0.0, 0.2)
    out = np.log(widen(draws, np.array([0.0, 1.0]), tau, rng))
    assert np.all(out[:, 0] == 0) and np.all(out[:2500, 1] == 0)
    assert abs(out[2500:, 1].std() - 0.2) < K * 0.2 / np.sqrt(2 * 2500)
    with pytest.raises(ValueError, match="tau per draw"):
        widen(draws, np.array([0.0, 1.0]), np.ones(3), rng)


def test_spec_learnt_discrepancy_round_trip_and_errors():
    d = Discrepancy.from_dict({"tau": "learnt", "median": 0.02, "sd_log": 0.4, "source": "mine"})
    assert d.learnt and abs(d.tau - 0.02 * np.exp(0.16)) < 1e-9
    spec = builtin_spec("chinchilla")
    doc = spec.to_dict()
    doc["discrepancy"] = d.to_dict()
    s2 = LawSpec.from_dict(doc)
    assert s2.discrepancy == d and s2.hash() != spec.hash() and 'tau = "learnt"' in s2.to_toml()
    rng = np.random.default_rng(0)
    t = s2.discrepancy.tau_draws(20000, rng)
    assert abs(np.median(np.log(t)) - np.log(0.02)) < K * 0.4 * 1.25 / np.sqrt(20000)
    for bad, msg in (({"tau": "lernt"}, '"learnt"'), ({"tau": 0.1, "median": 0.1}, 'go with tau = "learnt"'),
                     ({"tau": "learnt", "median": 0.1}, "both median and sd_log"),
                     ({"tau": "learnt", "median": 0.0, "sd_log": 1}, "median must be > 0"),
                     ({"tau": "learnt", "median": 0.1, "sd_log": 0}, "sd > 0")):
        doc["discrepancy"] = bad
        with pytest.raises(ConfigError, match=msg):
            LawSpec.from_dict(doc)


def test_shipped_population_is_reproduced_from_its_nested_backtests():
    """The shipped prior is :func:`population_prior` of the shipped sets' nested-backtest residuals (the
    script's ``ship``); ``tau = "learnt"`` alone is that prior."""
    pop = load_population()
    lls = [tau_log_likelihood(s["nested"]["resid"], s["nested"]["sd"], s["nested"]["dist"],
                              fold=s["nested"]["fold"], rho=pop["rho"]) for s in pop["sets"].values()]
    again = population_prior(lls)
    assert abs(again.mu - pop["prior"].mu) < 1e-3 and abs(again.sd - pop["prior"].sd) < 1e-3
    for name, s in pop["sets"].items():
        post = again.update(lls[list(pop["sets"]).index(name)])
        assert abs(post.median - s["median"]) < 1e-3 * max(1.0, s["median"] * 1e3), name
    d = Discrepancy.from_dict({"tau": "learnt"})
    assert d.prior == pop["prior"] and "population prior" in d.source
