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
