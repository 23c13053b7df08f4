"""The spec validator (bayes_scaling/laws/validate.py, the parser's limits in laws/expr.py): every case fails with
one clear ConfigError/DataError before any PyTensor graph is built or any sampling starts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_scaling.analysis.backtest import parse_holdout
from bayes_scaling.errors import ConfigError, DataError
from bayes_scaling.inference.fit import fit
from bayes_scaling.laws.discrepancy import Discrepancy
from bayes_scaling.laws.expr import MAX_DEPTH, MAX_LENGTH, Formula
from bayes_scaling.laws.spec import LawSpec, Parameter


def _doc(formula="E + A / N**alpha", params=None, target="loss", **sections):
    return {"law": {"formula": formula, "target": target},
            "parameters": params if params is not None else {"E": {}, "A": {}, "alpha": {}}, **sections}


def _table(n=12, **extra):
    N = np.logspace(6, 9, n)
    df = pd.DataFrame({"N": N, "loss": 1.7 + 400 * N**-0.34, "g": np.where(np.arange(n) % 2, "a", "b")})
    for k, v in extra.items():
        df[k] = v
    return df


# ---- names -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("doc, message", [
    (_doc(params={"E": {"by": "chain"}, "A": {}, "alpha": {}}), "group column 'chain'.*reserved"),
    (_doc(params={"E": {"by": "draw"}, "A": {}, "alpha": {}}), "group column 'draw'.*reserved"),
    (_doc(params={"E": {"by": "row"}, "A": {}, "alpha": {}}), "group column 'row'.*reserved"),
    (_doc("sigma + A / N**alpha", {"sigma": {}, "A": {}, "alpha": {}}), "parameter 'sigma'.*reserved"),
    (_doc("nu + A / N**alpha", {"nu": {}, "A": {}, "alpha": {}}), "parameter 'nu'.*reserved"),
    (_doc("E + A / sigma**alpha", {"E": {}, "A": {}, "alpha": {}}), "input column 'sigma'.*reserved"),
    (_doc("A * log_A / N**alpha", {"A": {}, "log_A": {}, "alpha": {}}), "parameter 'log_A'.*internal .*'A'"),
    (_doc("E + A / N**alpha + log_E", {"E": {}, "A": {}, "alpha": {}}), "input column 'log_E'.*internal"),
    (_doc(params={"E": {"by": "g"}, "A": {}, "alpha": {}, "log_E_mu": {}}, formula="E + A / N**alpha * log_E_mu"),
     "parameter 'log_E_mu'.*internal .*'E'"),
    (_doc("E + A / N**alpha", target="sigma"), "target column 'sigma'.*reserved"),
    (_doc("E + A / idx__g**alpha"), "double underscore"),
    (_doc(params={"E": {"by": "alpha"}, "A": {}, "alpha": {}}), "group column 'alpha' is also used in the formula"),
    (_doc(params={"E": {"by": "loss"}, "A": {}, "alpha": {}}), "group column 'loss' is also the target"),
])
def test_names_that_collide_with_internal_names(doc, message):
    with pytest.raises(ConfigError, match=message):
        LawSpec.from_dict(doc)


def test_a_spec_file_error_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[law]\nformula = "E + A / N**alpha"\ntarget = "loss"\n'
                    '[parameters.E]\nby = "chain"\n[parameters.A]\n[parameters.alpha]\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: group column 'chain'"):
        LawSpec.from_toml(path)


# ---- parser limits ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("(" * 300 + "N" + ")" * 300, "nests parentheses 300 deep"),
    ("+".join(["N"] * 400), f"more than {MAX_DEPTH} deep"),
    ("**".join(["N"] * 400), f"more than {MAX_DEPTH} deep"),
    ("-" * 5000 + "N", "too deeply nested"),
    ("exp(" * 250 + "N" + ")" * 250, "nests parentheses"),
    ("A * N" + " + A" * 6000, f"at most {MAX_LENGTH}"),
    ("A * N + " + "1" * 400, "of 400 digits"),
    ("A * N + 1e999", "not finite"),
    ("A * N * 1e200", "beyond"),
])
def test_parser_limits(text, message):
    with pytest.raises(ConfigError, match=message):
        Formula.parse(text)


def test_holdout_limits():
    with pytest.raises(ConfigError, match="holdout .*nests parentheses"):
        parse_holdout("(" * 300 + "N > 1" + ")" * 300)
    with pytest.raises(ConfigError, match="holdout .*deep"):
        parse_holdout(" & ".join(["(N > 1)"] * 400))
    with pytest.raises(ConfigError, match="holdout .*of 400 digits"):
        parse_holdout("N > " + "9" * 400)
    with pytest.raises(ConfigError, match="holdout .*not a finite number"):
        parse_holdout("N > 1e999")
    with pytest.raises(ConfigError, match="holdout .*characters"):
        parse_holdout("N > " + "1" * 20000)


@pytest.mark.parametrize("bracket", [[0, float("inf")], [float("-inf"), 1.0], [0, float("nan")]])
def test_bracket_ends_must_be_finite(bracket):
    doc = {"law": {"equation": "y**3 + y = a * x", "target": "y", "bracket": bracket}, "parameters": {"a": {}}}
    with pytest.raises(ConfigError, match="bracket end"):
        LawSpec.from_dict(doc)


# ---- constants and priors --------------------------------------------------------------------------------

@pytest.mark.parametrize("params, message", [
    ({"E": {}, "A": {"fixed": 1e308}, "alpha": {}}, "fixed = 1e.308 is outside the sane range"),
    ({"E": {"by": "g", "spread": 1e-320}, "A": {}, "alpha": {}}, "spread"),
    ({"E": {"median": 1e308}, "A": {}, "alpha": {}}, "median = 1e.308"),
    ({"E": {"median": 1e-320}, "A": {}, "alpha": {}}, "median"),
    ({"E": {"fixed": 1.7, "median": 1.7}, "A": {}, "alpha": {}}, "either fixed .* or a prior"),
    ({"E": {"fixed": 1.7, "sigma": 1.0}, "A": {}, "alpha": {}}, "either fixed .* or a prior"),
])
def test_constants_and_priors_in_a_sane_range(params, message):
    with pytest.raises(ConfigError, match=message):
        LawSpec.from_dict(_doc(params=params))


@pytest.mark.parametrize("tau", [1e300, float("inf"), 11.0])
def test_discrepancy_tau_in_a_sane_range(tau):
    with pytest.raises(ConfigError, match="tau"):
        LawSpec.from_dict(_doc(discrepancy={"tau": tau}))
    with pytest.raises(ConfigError, match="tau"):
        Discrepancy(tau)


def test_cli_tau_in_a_sane_range():
    import argparse

    from bayes_scaling.cli import build_parser
    from bayes_scaling.cli.cmdoptions import tau

    assert tau("0.1") == 0.1
    with pytest.raises(argparse.ArgumentTypeError, match=r"\[0, 10\]"):
        tau("1e300")
    # every --tau of the command line is this option
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            if "--tau" in action.option_strings:
                assert action.type is tau, name


def test_likelihood_constants_in_a_sane_range():
    with pytest.raises(ConfigError, match="likelihood sigma"):
        LawSpec.from_dict(_doc(likelihood={"sigma": 1e-320}))


# ---- the law at the prior medians, on the data (fit() fails before building the model) -----------------------

@pytest.mark.parametrize("doc, table, message", [
    (_doc("E + A * exp(N)", {"E": {}, "A": {}}), _table(), r"not finite at the prior medians .* on 12 of 12 rows, at rows 0, 1, .*row 0: inf"),
    (_doc("A / N**N**N**N", {"A": {}}), _table(), "parameter 'A' does not change the law on any row"),
    (_doc("E + 0 * A / N**alpha", {"E": {}, "A": {}, "alpha": {}}), _table(),
     "parameter 'A' does not change the law"),
    (_doc("E - A * N", {"E": {"median": 1.0, "sigma": 0.1}, "A": {"median": 1.0, "sigma": 0.1}}), _table(),
     r"<= 0 at the prior medians .* rows"),
])
def test_law_at_prior_medians(doc, table, message):
    with pytest.raises(DataError, match=message):
        fit(table, LawSpec.from_dict(doc), seed=1, draws=10, tune=10, chains=1, progressbar=False)


def test_data_error_names_the_data_file(tmp_path):
    path = tmp_path / "runs.csv"
    _table().to_csv(path, index=False)
    with pytest.raises(DataError, match=r"runs\.csv: the law"):
        fit(path, LawSpec.from_dict(_doc("E + A * exp(N)", {"E": {}, "A": {}})), seed=1, draws=10, tune=10, chains=1,
            progressbar=False)


def test_the_checks_pass_on_a_sound_law():
    from bayes_scaling.laws.validate import check_on_data
    from bayes_scaling.models import spec_model as sm

    spec = LawSpec.from_dict(_doc(params={"E": {"by": "g"}, "A": {}, "alpha": {}}))
    data = sm.prepare(spec, _table())
    check_on_data(spec, data, sm.default_priors(spec, data))


# ---- a distribution named "new" ----------------------------------------------------------------------------

def test_a_distribution_named_like_the_population_is_refused():
    from bayes_scaling.analysis.predictions import NEW
    from bayes_scaling.data.tables import TransferData

    rows = {"pretraining": [NEW, "text"], "N": [1e6, 1e7], "D_F": [1e5, 1e5], "D_T": [2e6, 5e6]}
    with pytest.raises(DataError, match="reserved for a new distribution drawn from the population"):
        TransferData.from_frame(rows)


def test_cli_new_addresses_a_real_distribution_named_new():
    import argparse

    from bayes_scaling.analysis.predictions import NEW
    from bayes_scaling.cli._common import pretraining_names as _names

    class FakeFit:
        pretraining = ("new", "text")

    assert _names(argparse.Namespace(pretraining=["new", "text"])) == [NEW, "text"]   # no fit: the population
    assert _names(argparse.Namespace(pretraining=["new", "text"]), FakeFit()) == ["new", "text"]
    assert _names(argparse.Namespace(pretraining=[NEW]), FakeFit()) == [NEW]
    assert _names(argparse.Namespace(pretraining=["new"]), type("F", (), {"pretraining": ("a",)})()) == [NEW]


# ---- random formulas: a ConfigError or a Formula, nothing else -----------------------------------------------

_ATOMS = st.sampled_from(["N", "A", "alpha", "1", "0", "2.5", "1e999", "1e-400", "9" * 50, "sigma", "log_A",
                          "x__y", "exp", "(", ")", ""])
_FORMULAS = st.recursive(
    _ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", " ", ",", "=", "&", "<"]), inner)
        .map("".join),
        st.tuples(st.sampled_from(["(", "-", "exp(", "log(", "minimum(", "f(", "-(-"]), inner,
                  st.sampled_from([")", "", ", N)", "))"])).map("".join),
        st.tuples(st.integers(0, 400), inner).map(lambda t: "(" * t[0] + t[1] + ")" * t[0]),
        st.tuples(st.integers(0, 300), inner).map(lambda t: "**".join([t[1]] * max(t[0], 1))),
    ),
    max_leaves=40)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_FORMULAS)
def test_random_formulas_raise_only_config_errors(text):
    try:
        f = Formula.parse(text)
    except ConfigError:
        return
    try:
        LawSpec(formula=f, target="y", parameters=[Parameter(n) for n in sorted(f.names)])
    except ConfigError:
        pass


@pytest.mark.parametrize("param, message", [
    ({"median_of": "z"}, "median_of = 'z' is not an input column of the law; its inputs are x"),
    ({"median_of": "x", "median": 3.0}, "give it without median or fixed"),
    ({"median_of": "x", "domain": "real"}, "on domain 'positive'"),
    ({"median_of": 3}, "median_of must be a string"),
])
def test_median_of_names_an_input_column(param, message):
    """``median_of``: the prior median of a free positive parameter at an input column's geometric mean; a
    column that is not an input, or a clash with ``median``/the domain: a ConfigError naming it."""
    doc = {"law": {"formula": "a * (x / d)**(-c)", "target": "y"}, "parameters": {"a": {}, "c": {}, "d": param}}
    with pytest.raises(ConfigError, match=message):
        LawSpec.from_dict(doc)
    ok = LawSpec.from_dict({**doc, "parameters": {"a": {}, "c": {}, "d": {"median_of": "x", "sigma": 0.5}}})
    assert ok.parameters["d"].median_of == "x"
    assert LawSpec.from_dict(ok.to_dict()).parameters["d"].median_of == "x"           # round trip
