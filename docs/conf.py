"""Sphinx configuration of the documentation site (``make docs``; docs/*.md are its pages).

Besides the usual settings, this file writes the generated pages into ``docs/_generated/`` (not committed):

- the API reference: one page per public module of the package (autodoc, from the docstrings), and one table per
  package of the names it exports (``__all__``), each linked to where it is defined;
- the table of built-in law specs (``models/laws/*.toml``) for the law-spec reference.

The notebooks (``docs/notebooks`` is a link to ``notebooks/``) are executed at build time by myst-nb and
cached by jupyter-cache in ``docs/_build/.jupyter_cache/<key>``: the key hashes the package's sources and
``models/``, so a change to the code re-executes every notebook, and an unchanged tree reuses the outputs.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
GENERATED = DOCS / "_generated"
sys.path.insert(0, str(REPO))

import bayes_scaling  # noqa: E402

project = "bayes_scaling"
author = "the bayes_scaling authors"
copyright = "the bayes_scaling authors, MIT licence"   # noqa: A001 - Sphinx's name
release = version = bayes_scaling.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinxarg.ext",
]
exclude_patterns = ["_build", "_generated/*.md", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]   # *.md: included
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}

html_theme = "pydata_sphinx_theme"
html_title = f"bayes_scaling {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_last_updated_fmt = None

# -- MyST and the notebooks ------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3          # links to headings of other pages, such as (benchmarks.md#performance)

nb_execution_mode = "cache"
nb_execution_timeout = 900        # per cell: a hang guard (each notebook takes about a minute on 2 cores)
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_kernel_rgx_aliases = {".*": "python3"}   # the kernel of this interpreter (ipykernel's native kernel)


def _source_key() -> str:
    """A hash of everything a notebook's outputs depend on in this repository: the package and ``models/``."""
    h = hashlib.sha256()
    files = sorted(p for root in (REPO / "bayes_scaling", REPO / "models") for p in root.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        h.update(str(p.relative_to(REPO)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


_CACHES = DOCS / "_build" / ".jupyter_cache"
nb_execution_cache_path = str(_CACHES / _source_key())


def _prune_caches(app, config) -> None:
    """``config-inited``: remove the caches of earlier sources (they can never match again), keeping the one in
    use (which ``-D nb_execution_cache_path=...`` may name)."""
    keep = Path(config.nb_execution_cache_path).resolve()
    if _CACHES.is_dir():
        for old in _CACHES.iterdir():
            if old.is_dir() and old.resolve() != keep:
                shutil.rmtree(old, ignore_errors=True)

# Figures inline in the notebooks (CI exports MPLBACKEND=Agg for the tests, which would hide them); the kernel
# inherits this process's environment.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

# -- autodoc ---------------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "undoc-members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autoclass_content = "both"
napoleon_google_docstring = True       # the package's docstrings: Args:, Returns:, Raises:
napoleon_numpy_docstring = False

# Warnings are errors (sphinx-build -W): every reference to this package must resolve. Names of other
# libraries cannot be checked offline (intersphinx would download their inventories), so they are ignored.
nitpicky = True
_EXTERNAL = ("np", "numpy", "pd", "pandas", "xr", "xarray", "az", "arviz", "pm", "pymc", "pytensor", "pt",
             "scipy", "matplotlib", "plt", "mpl", "distributed", "dask", "jax", "jnp", "nutpie", "numpyro",
             "squigglepy", "collections", "os", "pathlib", "typing", "concurrent", "argparse", "tomllib",
             "datetime", "io", "contextlib", "enum", "dataclasses", "types", "threading", "signal",
             "numbers", "h5netcdf", "tqdm", "builtins", "ast", "hashlib", "json", "re", "tempfile", "Path",
             "PathLike", "DataFrame", "Series", "DataTree", "Dataset", "DataArray", "ArrayLike", "NDArray", "Figure", "Axes", "Client", "Future",
             "TextIO", "Callable", "Iterable", "Iterator", "Mapping", "Sequence", "Any", "Literal")
nitpick_ignore_regex = [
    (r"py:.*", rf"({'|'.join(map(re.escape, _EXTERNAL))})(\..*)?"),
    (r"py:.*", r"(int|float|str|bool|bytes|dict|list|tuple|set|frozenset|object|type|None|complex|"
               r"Exception|Warning|RuntimeWarning|UserWarning|ValueError|KeyboardInterrupt)"),
]

# Internal links: `make docs` runs docs/check_links.py on the built HTML (every relative link and #anchor must
# exist); Sphinx's linkcheck builder is for external links, which CI cannot reach.

# -- generated pages -------------------------------------------------------------------------------------------
#: The packages whose exported names get a table (the public API of the examples in the README and the docs).
PACKAGES = ["bayes_scaling", "bayes_scaling.data", "bayes_scaling.datasets", "bayes_scaling.laws",
            "bayes_scaling.analysis", "bayes_scaling.output"]
#: Layers whose public (not underscore) modules get a page; the command line has its own reference (cli.md).
LAYERS = ["data", "laws", "models", "inference", "analysis", "output", "experiments"]
#: Packages with a page of their own (their docstring; the names they export are in the tables).
PACKAGE_PAGES = ["bayes_scaling", *(f"bayes_scaling.{layer}" for layer in LAYERS)]


def public_modules() -> list[str]:
    """``bayes_scaling.errors`` and every module of the layers whose name does not start with ``_``."""
    out = ["bayes_scaling.errors"]
    for layer in LAYERS:
        root = REPO / "bayes_scaling" / layer
        for p in sorted(root.iterdir()):
            name = p.stem if p.suffix == ".py" else p.name if (p / "__init__.py").is_file() else None
            if name and not name.startswith("_"):
                out.append(f"bayes_scaling.{layer}.{name}")
    return out


def _package(dotted: str):
    """The package ``dotted``, also where it is an attribute (``bayes_scaling.datasets``), not a module."""
    obj = importlib.import_module("bayes_scaling")
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def _canonical(pkg: str, name: str) -> tuple[str, str, str]:
    """(role, target, summary) of ``pkg.name``: where it is defined, and the first line of its docstring."""
    obj = getattr(_package(pkg), name)
    if inspect.ismodule(obj):
        return "mod", obj.__name__, _first_line(obj.__doc__)
    module = getattr(obj, "__module__", None)
    if module and module.startswith("bayes_scaling") and (inspect.isclass(obj) or inspect.isfunction(obj)):
        return "obj", f"{module}.{obj.__qualname__}", _first_line(obj.__doc__)
    # a constant: documented in the module that defines it (found among the public modules' __all__)
    for mod in public_modules():
        m = importlib.import_module(mod)
        if name in getattr(m, "__all__", ()) and getattr(m, name) is obj:
            return "data", f"{mod}.{name}", ""
    raise RuntimeError(f"{pkg}.{name} is exported but documented nowhere: add its module to docs/conf.py")


def _first_line(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "").split("\n\n")[0].replace("\n", " ").strip()
    return text.replace("|", "\\|")


def _exports(pkg: str) -> list[str]:
    return [n for n in _package(pkg).__all__ if not n.startswith("__")]


def _api_pages() -> dict[str, str]:
    pages: dict[str, str] = {}
    rows = []
    for pkg in PACKAGES:
        alias = pkg.replace("bayes_scaling", "bs")
        lines = [f"## `{alias}`", "", _first_line(_package(pkg).__doc__), "",
                 "| name | defined in | summary |", "|---|---|---|"]
        for name in _exports(pkg):
            role, target, summary = _canonical(pkg, name)
            lines.append(f"| `{alias}.{name}` | {{py:{role}}}`{target}` | {summary} |")
        rows += [*lines, ""]
    pages["api_exports.md"] = "\n".join(rows)
    for mod in PACKAGE_PAGES:      # the names a package exports are documented in their own modules
        pages[f"api/{mod}.rst"] = "\n".join([mod, "=" * len(mod), "", f".. automodule:: {mod}", "   :no-members:",
                                             ""])
    for mod in public_modules():
        pages[f"api/{mod}.rst"] = "\n".join([mod, "=" * len(mod), "", f".. automodule:: {mod}", ""])
    pages["api_modules.md"] = "\n".join(["```{toctree}", ":maxdepth: 1", "",
                                         *[f"_generated/api/{m}" for m in [*PACKAGE_PAGES, *public_modules()]],
                                         "```", ""])
    return pages


def _builtin_laws() -> str:
    from bayes_scaling.laws.spec import LawSpec

    lines = ["| spec | target | formula | parameters (sharing) | reference |", "|---|---|---|---|---|"]
    for path in sorted((REPO / "models" / "laws").glob("*.toml")):
        spec = LawSpec.from_toml(path)
        share = ", ".join(f"`{n}` {p.sharing}" + (f" by `{p.by}`" if p.by else "")
                          for n, p in spec.parameters.items())
        ref = (spec.reference or "").replace("|", "\\|")
        law = f"`{spec.formula.text}`" if len(spec.formula.text) <= 80 else spec.description or "(see the file)"
        lines.append(f"| {{download}}`{path.stem} <../models/laws/{path.name}>` | `{spec.target}` | {law} | "
                     f"{share} | {ref} |")
    return "\n".join(lines) + "\n"


def _functions() -> str:
    from bayes_scaling.laws.expr import FUNCTIONS

    return ", ".join(f"`{n}`" + (f" ({k} arguments)" if k != 1 else "") for n, k in FUNCTIONS.items()) + ".\n"


def _write_generated() -> None:
    """Write the generated pages; a file is rewritten only when its text changes (no needless rebuilds)."""
    pages = {**_api_pages(), "builtin_laws.md": _builtin_laws(), "formula_functions.md": _functions()}
    GENERATED.mkdir(exist_ok=True)
    (GENERATED / "api").mkdir(exist_ok=True)
    for rel, text in pages.items():
        path = GENERATED / rel
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    for path in (GENERATED / "api").iterdir():     # a module that was removed
        if f"api/{path.name}" not in pages:
            path.unlink()


_write_generated()

# -- references inside the package's docstrings ---------------------------------------------------------------
def _resolve_short_reference(app, env, node, contnode):
    """``missing-reference`` for Python objects: the docstrings name objects as a reader of their module would
    (``TransferData``, ``laws.crossover``, ``bs.fit``). Such a name resolves to the one documented object whose
    full name ends with its last part and contains its other parts in order (one in the referring module first).
    A name of an undocumented object that exists in the package (a private helper) stays plain text; any other
    name is left unresolved, and nitpicky mode reports it (a reference to nothing is an error)."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    parts = [p for p in target.replace("bs.", "bayes_scaling.", 1).split(".") if p]
    if not parts:
        return None
    domain = env.get_domain("py")
    objects, types = domain.objects, set(domain.objtypes_for_role(node["reftype"]) or ())

    def fits(name: str) -> bool:
        c = name.split(".")
        if objects[name].objtype not in types:
            return False
        if c[-1] != parts[-1]:
            return False
        it = iter(c[:-1])
        return all(p in it for p in parts[:-1])

    found = [name for name in objects if fits(name)]
    module = node.get("py:module") or ""
    local = [n for n in found if module and n.startswith(module + ".")]
    if len(local) == 1 or len(found) == 1:
        from sphinx.util.nodes import make_refnode

        entry = objects[(local or found)[0]]
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode)
    if _exists_in_package(parts) or _instance_attribute(node, parts):
        return contnode
    return None


def _instance_attribute(node, parts: list[str]) -> bool:
    """Whether ``parts`` names an attribute that the referring class sets in ``__init__`` (``self.NAME = ...``):
    autodoc documents no such attribute, but the name is real."""
    cls = sys.modules.get(node.get("py:module") or "")
    for p in (node.get("py:class") or "").split("."):
        cls = getattr(cls, p, None) if p else None
    if not inspect.isclass(cls) or len(parts) != 1:
        return False
    try:
        return re.search(rf"\bself\.{re.escape(parts[0])}\s*[:=]", inspect.getsource(cls)) is not None
    except (OSError, TypeError):
        return False


def _exists_in_package(parts: list[str]) -> bool:
    """Whether some loaded module of the package has the attribute path ``parts`` (or is that module)."""
    dotted = ".".join(parts)
    for name, mod in list(sys.modules.items()):
        if not name.startswith("bayes_scaling") or mod is None:
            continue
        if name == dotted or name.endswith("." + dotted):
            return True
        # the path relative to this module, or below it when the path starts with the module's name
        rest = parts[len(name.split(".")):] if dotted.startswith(name + ".") else parts
        obj = mod
        for p in rest:
            obj = getattr(obj, p, None)
            if obj is None:
                break
        else:
            return True
    return False


def _napoleon_except_attributes(app, what, name, obj, options, lines) -> None:
    """Napoleon reads an attribute's or property's first line as ``TYPE: description``; the package's
    attributes start with a description (``Input columns: the formula's names ...``), so they are left as written."""
    from sphinx.ext.napoleon import _process_docstring

    if what not in {"attribute", "data", "property"}:
        _process_docstring(app, what, name, obj, options, lines)


def setup(app) -> None:
    from sphinx.ext.napoleon import _process_docstring

    app.connect("config-inited", _prune_caches)
    app.connect("missing-reference", _resolve_short_reference)
    for listener in list(app.events.listeners["autodoc-process-docstring"]):
        if listener.handler is _process_docstring:
            app.disconnect(listener.id)
    app.connect("autodoc-process-docstring", _napoleon_except_attributes)
