"""The laws are written once and must give the same numbers in numpy and in PyTensor."""

import doctest

import numpy as np
import pytest

from bayes_scaling import laws


def test_doctests():
    from bayes_scaling.laws import formulas  # the package re-exports them; the docstrings live here

    result = doctest.testmod(formulas)
    assert result.attempted >= 5 and result.failed == 0


def test_table1_closed_forms():
    # Hernandez et al. Table 1, text -> Python; values quoted in the reference and in issue 4
    assert laws.multiplier(3e5, 4e7, 1.9e4, 0.18, 0.38) == pytest.approx(475.6, abs=0.05)
    assert laws.exchange_rate(0.18, 0.38, 100) == pytest.approx(8.9, abs=0.05)
    assert laws.crossover(1.9e4, 0.18, 2.1e5, 0.096) == pytest.approx(2.6e12, rel=0.02)
    # at the crossover the two transfer curves are equal (for any N, beta shared)
    d = laws.crossover(1.9e4, 0.18, 2.1e5, 0.096)
    assert laws.transfer(d, 1e8, 1.9e4, 0.18, 0.38) == pytest.approx(laws.transfer(d, 1e8, 2.1e5, 0.096, 0.38))


def test_fraction_and_effective_data_identities():
    D_F, N = np.logspace(4, 9, 6), 1e7
    D_T = laws.transfer(D_F, N, 2e4, 0.2, 0.4)
    np.testing.assert_allclose(laws.effective_data(D_F, N, 2e4, 0.2, 0.4), D_F + D_T)
    np.testing.assert_allclose(laws.transfer_fraction(D_F, N, 2e4, 0.2, 0.4), D_T / (D_F + D_T))
    # the multiplier falls with D_F when alpha < 1
    assert np.all(np.diff(laws.multiplier(D_F, N, 2e4, 0.2, 0.4)) < 0)


@pytest.mark.parametrize("law, inverse, params", [
    (laws.chinchilla_loss, laws.chinchilla_inverse,
     dict(E=1.817, A=482.0, B=2085.0, alpha_N=0.348, alpha_D=0.366)),
    (laws.kaplan_loss, laws.kaplan_inverse, dict(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)),
])
def test_loss_law_inverse_round_trip(law, inverse, params):
    N = np.array([1e6, 1e7, 1e8, 1e9])[:, None]
    D = np.logspace(6, 11, 5)[None, :]
    L = law(N, D, **params)
    np.testing.assert_allclose(inverse(L, N, **params), np.broadcast_to(D, L.shape), rtol=1e-8)
    # below the infinite-data loss of that N, no amount of data reaches it
    floor = law(N, np.inf, **params)
    assert np.all(np.isfinite(inverse(floor * 1.01, N, **params)))
    assert np.all(np.isinf(inverse(floor * 0.99, N, **params)))


def test_same_formula_in_pytensor():
    import pytensor.tensor as pt

    log_k, alpha, beta = pt.dscalar("log_k"), pt.dscalar("alpha"), pt.dscalar("beta")
    x, n = pt.dvector("x"), pt.dvector("n")
    out = laws.log_transfer(log_k, alpha, beta, x, n).eval(
        {log_k: 9.0, alpha: 0.2, beta: 0.4, x: np.array([1.0, 2.0]), n: np.array([3.0, 4.0])})
    np.testing.assert_allclose(out, laws.log_transfer(9.0, 0.2, 0.4, np.array([1.0, 2.0]), np.array([3.0, 4.0])))
    L = pt.dvector("L")
    got = laws.chinchilla_inverse(L, 1e8, 1.817, 482.0, 2085.0, 0.348, 0.366).eval({L: np.array([2.5, 1.0])})
    want = laws.chinchilla_inverse(np.array([2.5, 1.0]), 1e8, 1.817, 482.0, 2085.0, 0.348, 0.366)
    np.testing.assert_allclose(got, want)
