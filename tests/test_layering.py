"""The package's folders form one pipeline, data -> laws -> models -> inference -> analysis -> output (then
experiments/ and cli/ on top), and a module imports only its own layer or the ones below it: every import of
every module is read (ast), the ones inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_scaling"
#: the layers, lowest first; modules at the package's top (errors, _toml, _system, ...) are below all of them
LAYERS = ("data", "laws", "models", "inference", "analysis", "output", "experiments", "cli")


def _layer(module: str) -> int:
    """The rank of a ``bayes_scaling`` module (-1: the package's top-level helpers, below every layer)."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """``(line, module)`` for each ``bayes_scaling`` module that the file ``path`` of ``module`` imports
    (``from bayes_scaling import x`` names the subpackage ``x`` where it is one)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "bayes_scaling"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:   # relative: resolved against this module's package
                pkg = module.split(".")[: -node.level]
                base = ".".join(pkg + ([base] if base else []))
            if base.split(".")[0] != "bayes_scaling":
                continue
            if base == "bayes_scaling":
                out += [(node.lineno, f"bayes_scaling.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, base))
    return out


def upward_imports(root: Path = PACKAGE) -> list[str]:
    """Each import of a higher layer, as ``file:line: layer imports module``; ``cli/``, ``__init__`` and
    ``__main__`` files are exempt (the command line is the top; a package's ``__init__`` lists its public names
    lazily)."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        if path.name in ("__init__.py", "__main__.py") or rel.parts[1] == "cli":
            continue
        mod = ".".join(rel.with_suffix("").parts)
        rank = _layer(mod)
        for line, target in _imports(path, mod):
            if _layer(target) > rank:
                bad.append(f"{rel}:{line}: {LAYERS[rank] if rank >= 0 else 'top level'} imports {target}")
    return bad


#: Upward imports not yet removed, each with why it is there (file, imported module). The test fails on any other
#: one and on an entry that no longer occurs (so the list only shrinks).
KNOWN = {
    # simulating data from a law needs the law: data/simulate.py would belong above laws/ (its users: ~20 files)
    ("bayes_scaling/data/simulate.py", "bayes_scaling.laws"),
    ("bayes_scaling/data/simulate.py", "bayes_scaling.laws.formulas"),
    # the published Muennighoff et al. fit as a law spec
    ("bayes_scaling/data/published.py", "bayes_scaling.laws.spec"),
    # a convenience method drawing the backtest's calibration figure (output.plots.plot_calibration does it too)
    ("bayes_scaling/analysis/backtest.py", "bayes_scaling.output.plots"),
}


def test_no_module_imports_a_higher_layer():
    found = upward_imports()
    pairs = {(line.split(":")[0], line.rsplit(" ", 1)[1]) for line in found}
    bad = [line for line in found if (line.split(":")[0], line.rsplit(" ", 1)[1]) not in KNOWN]
    assert not bad, "upward imports (data -> laws -> models -> inference -> analysis -> output):\n" + "\n".join(bad)
    assert not KNOWN - pairs, f"no longer imported, remove from KNOWN: {sorted(KNOWN - pairs)}"


def test_the_walk_finds_an_upward_import_inside_a_function(tmp_path):
    """The check itself: a lazy import of a higher layer inside a function is found; a downward one is not."""
    pkg = tmp_path / "bayes_scaling"
    (pkg / "models").mkdir(parents=True)
    (pkg / "models" / "m.py").write_text("from bayes_scaling.laws import expr\n\n\ndef f():\n"
                                         "    from bayes_scaling.inference.fit import fit\n    return fit\n")
    (pkg / "cli").mkdir()
    (pkg / "cli" / "c.py").write_text("from bayes_scaling.output import report\n")
    assert upward_imports(pkg) == ["bayes_scaling/models/m.py:5: models imports bayes_scaling.inference.fit"]


@pytest.mark.parametrize("module, rank", [("bayes_scaling.errors", -1), ("bayes_scaling.data.tables", 0),
                                          ("bayes_scaling.analysis.effective", 4)])
def test_layer_ranks(module, rank):
    assert _layer(module) == rank


def _follow(spec, action) -> list[tuple[str, list[str]]]:
    """The modules of this package that ``spec`` enters while ``action()`` runs, in order: a call whose
    arguments hold ``spec`` (not as ``self``: the spec's own methods are the spec's) enters its module unless a
    frame of that module is already on the stack (a module calling lower layers and going on has not been
    left). Each entry: ``(module, the functions that received the spec there)``."""
    import sys

    entries: list[tuple[str, list[str]]] = []

    def on_stack(frame, module: str) -> bool:
        frame = frame.f_back
        while frame is not None:
            if frame.f_globals.get("__name__") == module:
                return True
            frame = frame.f_back
        return False

    def profile(frame, event, arg):
        if event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("bayes_scaling"):
            return
        code = frame.f_code
        names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        if not any(frame.f_locals.get(n) is spec for n in names if n != "self"):
            return
        if entries and entries[-1][0] == module:
            if code.co_name not in entries[-1][1]:
                entries[-1][1].append(code.co_name)
        elif not on_stack(frame, module):
            entries.append((module, [code.co_name]))

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return entries


def _reentered(entries) -> dict[str, int]:
    from collections import Counter

    return {m: n for m, n in Counter(m for m, _ in entries).items() if n > 1}


def test_a_spec_enters_each_module_once_from_fit_to_the_saved_file(tmp_path):
    """Following a spec from ``bs.fit`` to the saved file: ``inference.fit`` hands it down once to the models
    (one plan: data, priors, parameterization, checks), and no module is entered twice."""
    import warnings

    import bayes_scaling as bs
    from bayes_scaling.laws.spec import builtin_spec

    spec = builtin_spec("chinchilla_by_corpus")
    runs = bs.datasets.load_corpora()

    def fit_and_save():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bs.fit(runs, spec, seed=1, draws=30, tune=30, chains=1, progressbar=False)
        fit.save(tmp_path / "fit.nc")

    entries = _follow(spec, fit_and_save)
    assert (tmp_path / "fit.nc").exists()
    modules = [m for m, _ in entries]
    assert modules[0] == "bayes_scaling.inference.fit" and "bayes_scaling.models.spec_model" in modules
    assert _reentered(entries) == {}, entries


def test_following_a_spec_finds_a_module_entered_twice():
    """The tracer itself: preparing, checking in laws and then setting priors from outside re-enters the models."""
    import bayes_scaling as bs
    from bayes_scaling.laws.spec import builtin_spec
    from bayes_scaling.laws.validate import check_on_data
    from bayes_scaling.models import spec_model as sm

    spec = builtin_spec("chinchilla_by_corpus")
    runs = bs.datasets.load_corpora()

    def piecewise():
        data = sm.prepare(spec, runs)
        priors = sm.default_priors(spec, data)
        check_on_data(spec, data, priors)
        sm.noise_prior(spec, data)

    assert _reentered(_follow(spec, piecewise)) == {"bayes_scaling.models.spec_model": 2}
    assert _reentered(_follow(spec, lambda: sm.plan(spec, runs))) == {}
