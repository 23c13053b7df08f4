"""Compile a PyMC model once, sample it many times: nutpie's Rust NUTS on a PyTensor/Numba log density.

``pm.sample(nuts_sampler="nutpie")`` compiles every model with Numba from scratch (~10 s here: Numba cannot
cache nutpie's wrappers, which embed the data). :class:`CompiledSampler` instead

1. compiles the log density + gradient and the trace function (free variables, deterministics and the
   pointwise log-likelihood) with PyTensor's Numba back end, whose machine code is cached on disk
   (``~/.pytensor/.../numba``), keyed by the graph;
2. wraps them in two C callbacks whose source depends only on the graph and the data's ranks and dtypes, so
   Numba caches them too (the data arrive at run time through a table of pointers, not as constants);
3. hands the callbacks to nutpie's Rust NUTS, which calls them without the GIL (chains in parallel threads).

A fresh process therefore loads machine code instead of compiling it, and a second fit in the same process
with new data (``set_data``) reuses everything. Before step 1, the log density, its gradient and the trace are
taken, already rewritten, from a content-addressed disk cache (:func:`graph_cache_dir`; key: the model's graph,
the free variables' shapes, this module's source and the library versions) when an earlier process compiled the
same model: building and rewriting them costs ~1.5 s, linking the cached graphs ~0.5 s. The same graphs are
linked either way (same Numba functions, same draws). Should step 2 fail (a Numba limitation), the sampler falls back
to calling the Numba functions from Python (~10 us a call more); should step 1 fail, to PyTensor's C back end.

Step 3 needs nutpie's private API; it is confined to :mod:`bayes_scaling.inference._nutpie_private`. Where that
differs (a nutpie version outside the tested range), the sampler warns and takes nutpie's public path instead
(``engine == "public"``: ``nutpie.compile_pymc_model(model)``, then ``.with_data(...)`` for new data; slower
to compile, the same posterior).

>>> import pymc as pm
>>> with pm.Model() as m:                                                    # doctest: +SKIP
...     y = pm.Data("y", [0.1, -0.3]); mu = pm.Normal("mu"); pm.Normal("obs", mu, 1, observed=y)
>>> s = CompiledSampler(m)                                                   # doctest: +SKIP
>>> tree = s.sample(draws=500, tune=500, chains=2, seed=1)                   # doctest: +SKIP
>>> s.set_data({"y": [2.0, 2.2]}); tree2 = s.sample(draws=500, tune=500, chains=2, seed=1)  # doctest: +SKIP

Same seed, same data, same settings: bit-identical draws, whatever ``cores`` (nutpie seeds every chain from
``seed``; initial points are jittered by NumPy generators seeded from it too).
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from bayes_scaling._interrupts import stop_on_signals
from bayes_scaling.inference._nutpie_private import PrivateAPIError, native_model, pyfunc_model

__all__ = ["CompiledSampler", "LOGLIK_PREFIX", "GRAPH_CACHE_ENV", "graph_cache_dir"]

LOGLIK_PREFIX = "__loglik__"
_CFUNC_VERSION = "bayes_scaling-cfunc-1"
_SNAPSHOT_VERSION = "bayes_scaling-snapshot-2"


class CompiledSampler:
    """A PyMC model compiled once (log density + gradient, and the trace function) for nutpie's NUTS.

    ``mode``: ``"NUMBA"`` (default) or ``"FAST_RUN"`` (PyTensor's C back end, Python callbacks).
    ``log_likelihood``: also record the pointwise log-likelihood of the observed variables (for LOO).
    After construction, ``engine`` says how nutpie calls the model: ``"cfunc"`` (Numba C callbacks, no
    Python in the sampling loop), ``"python"`` (fallback), or ``"public"`` (nutpie's public
    ``compile_pymc_model``: where its private API differs, see the module docstring); ``compile_seconds`` how
    long it took.
    ``cache``: the folder of the disk cache of rewritten graphs (default :func:`graph_cache_dir`; ``False``: no
    cache); ``graph_cache`` says whether it was ``"hit"``, a ``"miss"`` (then written) or ``"off"``.
    ``affine``: NUTS samples ``z`` with the unconstrained point ``x = shift + factor @ z`` (a linear change of
    variables: the same posterior; :meth:`set_affine` sets ``shift`` and ``factor`` without recompiling, e.g. a
    Laplace whitening, :mod:`bayes_scaling.inference.whiten`); the chains start at ``z = 0`` (``x = shift``),
    jittered, unless :meth:`set_affine` says otherwise. Until then: ``shift`` the model's initial point,
    ``factor`` the identity.
    """

    def __init__(self, model, *, mode: str = "NUMBA", log_likelihood: bool = True, cache=None,
                 affine: bool = False):
        import pytensor
        import pytensor.tensor as pt
        from pymc.pytensorf import compile as compile_pymc
        from pytensor.graph import clone_replace, rewrite_graph

        self.model = model
        self.log_likelihood = log_likelihood
        t0 = time.perf_counter()
        free = list(model.free_RVs)
        value_vars = [model.rvs_to_values[v] for v in free]
        self._value_names = [v.name for v in value_vars]
        self._initial_point_fn = _initial_point_fn(model)
        ip = self._initial_point_fn()
        shapes = [tuple(np.shape(ip[n])) for n in self._value_names]
        sizes = [int(np.prod(s, dtype=int)) for s in shapes]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n_dim = int(offsets[-1])
        x = pt.TensorType("float64", shape=(self.n_dim,))("_unconstrained_point")
        self.affine = bool(affine)
        self._affine: dict[str, Any] = {}
        point = x
        if self.affine:   # x = y + shear expm1(mask (y - shift)), y = shift + factor z; shared: set without recompiling
            n = self.n_dim
            A = self._affine = {
                "shift": pytensor.shared(self.initial_point(0, jitter=False), name="__affine_shift__"),
                "factor": pytensor.shared(np.eye(n), name="__affine_factor__"),
                "shear": pytensor.shared(np.zeros((n, n)), name="__affine_shear__"),
                "mask": pytensor.shared(np.zeros(n), name="__affine_mask__")}
            dy = pt.dot(A["factor"], x)
            point = A["shift"] + dy + pt.dot(A["shear"], pt.expm1(A["mask"] * dy))
            self._start = np.zeros(n)
        replace = {v: point[offsets[i]:offsets[i + 1]].reshape(shapes[i]).astype(v.dtype)
                   for i, v in enumerate(value_vars)}
        self._flat_names = [f"{n}_{i}" if s else n for n, s in zip(self._value_names, shapes, strict=True)
                            for i in range(int(np.prod(s, dtype=int)))]

        self._dims = {}
        for rv in model.observed_RVs:
            self._dims[LOGLIK_PREFIX + rv.name] = tuple(model.named_vars_to_dims.get(rv.name, ()))
        # the rewritten graphs of an earlier compilation of the same model (same graph, same data shapes), from
        # the disk cache: skips building the log density and its gradient and PyTensor's rewrites (~1.5 s)
        folder = graph_cache_dir() if cache is None else (Path(cache) if cache else None)
        key = _graph_cache_key(model, mode, log_likelihood, shapes, self.affine) \
            if folder and mode == "NUMBA" else None
        cached = _load_graphs(folder / f"{key}.pkl", model, self._affine) if key else None
        self.graph_cache = "off" if key is None else "hit" if cached else "miss"
        if cached:
            x, logp_shared, logp_outs, expand_shared, outs, self._names = cached
        else:
            logp = rewrite_graph(model.logp(), include=["canonicalize", "stabilize"])
            grad = pt.concatenate([pt.as_tensor(g).ravel() for g in pt.grad(logp, value_vars)])
            logp_outs = clone_replace([logp, grad], replace)
            if self.affine:   # the gradient in z: J' times the gradient in x, J = (I + shear diag(mask e^..)) factor
                A, g = self._affine, logp_outs[1]
                gy = g + A["mask"] * pt.exp(A["mask"] * dy) * pt.dot(A["shear"].T, g)
                logp_outs = [logp_outs[0], pt.dot(A["factor"].T, gy)]

            # the trace: free variables on their own scale, then deterministics, then the log-likelihood
            wanted = [rv.name for rv in free] + [d.name for d in model.deterministics]
            by_name = {v.name: v for v in model.unobserved_value_vars}
            outs = [by_name[n] for n in wanted if n in by_name]
            self._names = [o.name for o in outs]
            if log_likelihood:
                outs = outs + list(model.logp(vars=model.observed_RVs, sum=False))
                self._names += [LOGLIK_PREFIX + rv.name for rv in model.observed_RVs]
            outs = [pt.as_tensor(o).astype("float64") for o in clone_replace(outs, replace)]
        for n in self._names:
            self._dims.setdefault(n, tuple(model.named_vars_to_dims.get(n, ())))

        with model, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.mode = mode
            try:
                if cached:
                    self._logp_fn = _compile_rewritten(x, logp_shared, logp_outs, mode)
                    self._expand_fn = _compile_rewritten(x, expand_shared, outs, mode)
                else:
                    self._logp_fn = compile_pymc([x], logp_outs, mode=mode, trust_input=True)
                    self._expand_fn = compile_pymc([x], outs, mode=mode, trust_input=True)
                    if key:
                        _save_graphs(folder / f"{key}.pkl", model, [self._logp_fn, self._expand_fn], self._names,
                                     self._affine)
            except Exception:  # noqa: BLE001 - an op without a Numba implementation: use the C back end
                if mode == "FAST_RUN":
                    raise
                self.mode = "FAST_RUN"
                self.graph_cache = "off"
                if cached:  # the graphs from scratch (rewritten for Numba, not for C)
                    self.__init__(model, mode="FAST_RUN", log_likelihood=log_likelihood, cache=False,
                                  affine=affine)
                    return
                self._logp_fn = compile_pymc([x], logp_outs, mode="FAST_RUN", trust_input=True)
                self._expand_fn = compile_pymc([x], outs, mode="FAST_RUN", trust_input=True)
        self._link(t0)

    def _link(self, t0: float) -> None:
        """After the two PyTensor functions are made: their first calls (Numba loads or compiles the machine
        code) and the C callbacks."""
        self._logp_shared = list(self._logp_fn.get_shared())
        self._expand_shared = list(self._expand_fn.get_shared())
        self._shared = list(dict.fromkeys(self._logp_shared + self._expand_shared))
        self._numba = self.mode == "NUMBA" and hasattr(self._logp_fn.vm, "jit_fn")
        x0 = np.zeros(self.n_dim) if self.affine else self.initial_point(0, jitter=False)
        # first calls: Numba loads (or, cold, compiles) the machine code now, not inside the sampler
        self._call_logp()(x0)
        self._call_expand()(x0)
        self.engine = "python"
        self._cfuncs = None
        self._public: tuple | None = None  # (data shapes, nutpie's compiled model) of the public path
        if self._numba:
            try:
                self._cfuncs = self._make_cfuncs()
                self.engine = "cfunc"
            except Exception as exc:  # noqa: BLE001 - any Numba failure: keep the Python callbacks
                warnings.warn(f"nutpie C callbacks unavailable ({type(exc).__name__}: {exc}); "
                              "calling the model from Python (slower)", RuntimeWarning, stacklevel=2)
        self.compile_seconds = time.perf_counter() - t0

    # ---- a snapshot: the sampler without its PyMC model ---------------------------------------------------
    def snapshot(self) -> dict | None:
        """What :meth:`from_snapshot` needs to make this sampler again in another process without PyMC: the
        rewritten graphs with their shared variables' current values (the data, the change of variables), the
        traced names and dims, the initial point, the coordinates and the data groups of the trace. ``None``
        where the sampler does not run on Numba C callbacks (only those are restored)."""
        if self.engine != "cfunc" or self.mode != "NUMBA" or self.model is None:
            return None
        import pickle
        import sys

        graphs = []
        for fn in (self._logp_fn, self._expand_fn):
            fgraph = fn.maker.fgraph
            graphs.append((list(fgraph.inputs), _strip_output_copies(fgraph)))
        limit = sys.getrecursionlimit()
        try:   # pickled apart: read only where the callbacks must be linked from the graphs
            sys.setrecursionlimit(max(limit, 100_000))
            graphs = pickle.dumps(graphs, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            sys.setrecursionlimit(limit)
        observed, constant = self._data_arrays()
        ip = self._initial_point_fn()
        return {"version": _SNAPSHOT_VERSION, "graphs": graphs, "names": list(self._names),
                "dims": dict(self._dims), "value_names": list(self._value_names),
                "initial_point": {n: np.array(ip[n]) for n in self._value_names}, "n_dim": self.n_dim,
                "flat_names": list(self._flat_names), "affine": self.affine,
                "start": None if not self.affine else np.array(self._start), "log_likelihood": self.log_likelihood,
                "coords": self._coords(), "observed": observed, "constant": constant,
                "cfuncs": list(self._cfunc_sources), "table": [np.array(v) for v in self._table_values()],
                "layout": list(self._layout), "table_len": self._table_len,
                "expand_shapes": [np.shape(v) for v in self._call_expand()(self._start if self.affine else
                                                                            self.initial_point(0, jitter=False)).values()]}

    @classmethod
    def from_snapshot(cls, state: dict, fast: bool = True) -> CompiledSampler:
        """The sampler of :meth:`snapshot`, made without the PyMC model (no PyMC import, no graph building or
        rewriting): the same shared values and the same machine code, so the same draws for the same seed. It
        cannot take new data (:meth:`set_data`). ``fast``: the two C callbacks are loaded from Numba's disk cache
        directly (no graphs linked; then the sampler samples, and nothing else: no :meth:`logp_and_gradient`,
        :meth:`set_affine`); where they are not there, or ``fast=False``, the rewritten graphs are linked as the
        first process linked them."""
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ValueError("a snapshot of another version")
        t0 = time.perf_counter()
        self = cls.__new__(cls)
        self.model, self._fixed_values = None, None
        self.log_likelihood = bool(state["log_likelihood"])
        self._value_names = list(state["value_names"])
        ip = {n: np.array(v) for n, v in state["initial_point"].items()}
        self._initial_point_fn = lambda: {n: v.copy() for n, v in ip.items()}
        self.n_dim = int(state["n_dim"])
        self._flat_names = list(state["flat_names"])
        self._names = list(state["names"])
        self._dims = dict(state["dims"])
        self._snapshot = {k: state[k] for k in ("coords", "observed", "constant")}
        self.affine = bool(state["affine"])
        if self.affine:
            self._start = np.array(state["start"], dtype=float)
        self._public = None
        if fast and self._link_cached_cfuncs(state):   # the C callbacks from Numba's cache: no graphs needed
            self.compile_seconds = time.perf_counter() - t0
            return self
        import pickle
        import sys

        limit = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(max(limit, 100_000))
            graphs = pickle.loads(state["graphs"])
        finally:
            sys.setrecursionlimit(limit)
        (x, *logp_shared), logp_outs = graphs[0]
        (x2, *expand_shared), outs = graphs[1]
        own: dict[str, Any] = {}     # one variable per shared name (each graph was pickled with its own copy)
        replace = {x2: x}
        for v in [*logp_shared, *expand_shared]:
            replace[v] = own.setdefault(v.name, v)
        from pytensor.graph.replace import clone_replace

        cloned = clone_replace([*logp_outs, *outs], replace)
        logp_outs, outs = list(cloned[:len(logp_outs)]), list(cloned[len(logp_outs):])
        self._affine = {k: own[f"__affine_{k}__"] for k in ("shift", "factor", "shear", "mask")} \
            if self.affine else {}
        self.mode = "NUMBA"
        self.graph_cache = "snapshot"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._logp_fn = _compile_rewritten(x, [replace[v] for v in logp_shared], logp_outs, "NUMBA")
            self._expand_fn = _compile_rewritten(x, [replace[v] for v in expand_shared], outs, "NUMBA")
        self._link(t0)
        if self.engine != "cfunc":
            raise ValueError("the snapshot's C callbacks are unavailable")
        return self

    def _link_cached_cfuncs(self, state: dict) -> bool:
        """The snapshot's C callbacks from Numba's cache, without their inner functions (which are in the cached
        machine code); False where a callback is not in the cache (it would need compiling: from the graphs)."""
        self._fixed_values = None
        sources = state.get("cfuncs") or []
        if len(sources) != 2 or any(key is None for _, _, key in sources):
            return False
        try:
            cfuncs = tuple(_cfunc(name, src, key, None) for name, src, key in sources)
        except Exception:  # noqa: BLE001 - not cached (or cached by another Numba): link the graphs
            return False
        self._cfuncs, self._cfunc_sources = cfuncs, list(sources)
        self._fixed_values = [np.array(v) for v in state["table"]]
        self._layout, self._table_len = list(state["layout"]), int(state["table_len"])
        self._expand_shapes = [tuple(s) for s in state["expand_shapes"]]
        self._affine, self.mode, self.engine, self._numba = {}, "NUMBA", "cfunc", True
        self.graph_cache = "snapshot"
        return True

    # ---- data -------------------------------------------------------------------------------------------
    def set_data(self, values: dict[str, Any], coords: dict[str, Any] | None = None) -> None:
        """New values of ``pm.Data`` containers (another length along a dim: pass its new ``coords``)."""
        if self.model is None:
            raise ValueError("a sampler made from a snapshot has no PyMC model: its data cannot change")
        import pymc as pm

        with self.model:
            pm.set_data(values, coords=coords)

    def set_affine(self, shift: np.ndarray, factor: np.ndarray, shear: np.ndarray | None = None,
                   mask: np.ndarray | None = None, start: np.ndarray | None = None) -> None:
        """For an ``affine`` sampler: NUTS samples ``z``, with the unconstrained point ::

            x = y + shear @ expm1(mask * (y - shift)),   y = shift + factor @ z

        ``factor`` (n x n) invertible; ``mask`` (0/1, default none) marks coordinates that enter the others through
        ``exp`` (log exponents); ``shear`` (default 0) is nonzero only in the columns of masked coordinates and
        the rows of unmasked ones, so the map's Jacobian determinant is ``det(factor)``, a constant: the same
        posterior in any coordinates. The chains start at ``z = start`` (default 0: ``x = shift``), jittered."""
        if not self.affine:
            raise ValueError("set_affine: this sampler was compiled without affine=True")
        self._require_graphs("set_affine")
        n = self.n_dim
        shift, factor = np.asarray(shift, dtype=float), np.asarray(factor, dtype=float)
        shear = np.zeros((n, n)) if shear is None else np.asarray(shear, dtype=float)
        mask = np.zeros(n) if mask is None else np.asarray(mask, dtype=float)
        if shift.shape != (n,) or factor.shape != (n, n) or shear.shape != (n, n) or mask.shape != (n,):
            raise ValueError(f"set_affine: expected shift and mask ({n},), factor and shear ({n}, {n}); got "
                             f"{shift.shape}, {mask.shape}, {factor.shape}, {shear.shape}")
        on = mask != 0
        if not np.all(np.isin(mask, (0.0, 1.0))) or np.any(shear[:, ~on]) or np.any(shear[on, :]):
            raise ValueError("set_affine: mask must be 0/1 and shear nonzero only in masked columns and unmasked rows")
        A = self._affine
        A["shift"].set_value(shift)
        A["factor"].set_value(np.ascontiguousarray(factor))
        A["shear"].set_value(np.ascontiguousarray(shear))
        A["mask"].set_value(mask)
        self._start = np.zeros(n) if start is None else np.asarray(start, dtype=float).reshape(n)

    def logp_and_gradient(self):
        """``x -> (log density, gradient)`` of the compiled model (for an ``affine`` sampler: in ``z``)."""
        self._require_graphs("logp_and_gradient")
        return self._call_logp()

    def _require_graphs(self, what: str) -> None:
        if getattr(self, "_fixed_values", None) is not None:
            raise ValueError(f"{what}: this sampler was loaded from a snapshot with its C callbacks alone; "
                             "CompiledSampler.from_snapshot(state, fast=False) links its graphs")

    def value_indices(self) -> dict[str, np.ndarray]:
        """Each free variable's positions in the unconstrained point, by its value variable's name (the model's
        order, as :meth:`initial_point` lays them out)."""
        ip = self._initial_point_fn()
        out, start = {}, 0
        for name in self._value_names:
            size = int(np.size(ip[name]))
            out[name] = np.arange(start, start + size)
            start += size
        return out

    def initial_point(self, seed: int, jitter: bool = True) -> np.ndarray:
        """The model's initial point on the unconstrained scale, jittered by U(-1, 1) (as PyMC does)."""
        ip = self._initial_point_fn()
        x = np.concatenate([np.ravel(ip[n]) for n in self._value_names]).astype(float)
        if jitter:
            x = x + np.random.default_rng(seed).uniform(-1.0, 1.0, size=x.shape)
        return x

    # ---- Python callbacks (fallback engine, and the first calls) ----------------------------------------
    def _shared_values(self, shared) -> list[np.ndarray]:
        return [s.get_value(borrow=True) for s in shared]

    def _call_logp(self):
        if self._numba:
            jit, shared = self._logp_fn.vm.jit_fn, self._shared_values(self._logp_shared)

            def logp(x):
                lp, g = jit(x, *shared)[:2]
                return float(lp), np.array(g, dtype=float)
        else:
            fn = self._logp_fn

            def logp(x):
                lp, g = fn(x)
                return float(lp), np.array(g, dtype=float)
        return logp

    def _call_expand(self):
        if self._numba:
            jit, shared = self._expand_fn.vm.jit_fn, self._shared_values(self._expand_shared)
            fn = lambda x: jit(x, *shared)  # noqa: E731
        else:
            fn = self._expand_fn
        names = self._names
        return lambda x: {n: np.array(v, dtype=float) for n, v in zip(names, fn(x), strict=True)}

    # ---- Numba C callbacks ------------------------------------------------------------------------------
    def _make_cfuncs(self):
        """Two ``numba.cfunc`` wrappers (logp+gradient, trace) with nutpie's C signatures, cached on disk."""
        from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

        index = {s: i for i, s in enumerate(self._shared)}
        values = self._shared_values(self._shared)
        layout, o = [], 0  # (offset, ndim, dtype) of each shared array in the pointer table
        for v in values:
            layout.append((o, np.ndim(v), np.asarray(v).dtype))
            o += 1 + np.ndim(v)
        self._table_len = max(o, 1)
        self._layout = [(nd, dt) for _, nd, dt in layout]

        def unpack(shared):
            lines, args = [], []
            for s in shared:
                off, ndim, dtype = layout[index[s]]
                shape = "(" + "".join(f"table[{off + 1 + j}], " for j in range(ndim)) + ")"
                lines.append(f"    d{index[s]} = carray(as_ptr(table[{off}]), {shape}, np.{dtype.name})")
                args.append(f"d{index[s]}")
            return lines, "".join(", " + a for a in args)

        n = self.n_dim
        head = [f"    if dim != {n}:", "        return -1",
                f"    table = carray(user_data_, ({self._table_len},), np.int64)"]
        lines, args = unpack(self._logp_shared)
        src_logp = "\n".join([
            "def logp_c(dim, x_, out_, logp_, user_data_):", *head, *lines,
            f"    x = carray(x_, ({n},))", f"    out = carray(out_, ({n},))", "    lp = carray(logp_, ())",
            "    try:", f"        res = logp_jit(x{args})", "    except Exception:", "        return 1",
            "    lp[()] = res[0][()]", "    out[:] = res[1]",
            "    if not np.all(np.isfinite(out)):", "        return 3",
            "    if not np.isfinite(lp[()]):", "        return 4", "    return 0"])
        lines, args = unpack(self._expand_shared)
        src_expand = "\n".join([
            "def expand_c(dim, expanded, x_, out_, user_data_):", *head, *lines,
            f"    x = carray(x_, ({n},))", "    out = carray(out_, (expanded,))",
            "    try:", f"        res = expand_jit(x{args})", "    except Exception:", "        return -3",
            "    o = 0",
            *[line for k in range(len(self._names)) for line in (
                f"    r = res[{k}].ravel()", "    if o + r.size > expanded:", "        return -2",
                "    out[o:o + r.size] = r", "    o += r.size")],
            "    if o != expanded:", "        return -2", "    return 0"])
        jits = {"logp_jit": self._logp_fn.vm.jit_fn, "expand_jit": self._expand_fn.vm.jit_fn}
        out, self._cfunc_sources = [], []
        for name, src, jit in (("logp_c", src_logp, self._logp_fn.vm.jit_fn),
                               ("expand_c", src_expand, self._expand_fn.vm.jit_fn)):
            inner_key = CACHED_SRC_FUNCTIONS.get(jit.py_func)
            key = None if inner_key is None else \
                hashlib.sha256(f"{_CFUNC_VERSION}\n{inner_key}\n{src}".encode()).hexdigest()
            out.append(_cfunc(name, src, key, jits))
            self._cfunc_sources.append((name, src, key))
        return tuple(out)

    def _table_values(self) -> list[np.ndarray]:
        """The values of the shared variables in the pointer table's order."""
        if getattr(self, "_fixed_values", None) is not None:   # a snapshot linked without its graphs
            return self._fixed_values
        return self._shared_values(self._shared)

    def _pointer_table(self) -> tuple[np.ndarray, list[np.ndarray]]:
        keep, table = [], []
        for v, (ndim, dtype) in zip(self._table_values(), self._layout, strict=True):
            a = np.require(v, dtype=dtype, requirements="C")  # the callbacks were compiled for these
            if a.ndim != ndim:
                raise ValueError(f"data of rank {a.ndim} where the compiled model expects rank {ndim}")
            keep.append(a)
            table.append(a.ctypes.data)
            table.extend(a.shape)
        return np.array(table or [0], dtype=np.int64), keep

    # ---- sampling ---------------------------------------------------------------------------------------
    def sample(self, *, draws: int, tune: int, chains: int, seed: int, target_accept: float = 0.8,
               progressbar: bool = False, cores: int = 1, coords: dict[str, Any] | None = None,
               **nuts_kwargs) -> xr.DataTree:
        """nutpie NUTS: ``chains`` x ``draws`` draws after ``tune`` tuning steps; an ArviZ-style DataTree with
        ``posterior``, ``sample_stats``, ``log_likelihood``, ``observed_data`` and ``constant_data``.
        ``coords`` replaces coordinate values of the model's dims (e.g. new labels, same length)."""
        import pandas as pd

        from bayes_scaling.inference._nutpie_private import import_nutpie, raw_trace_supported, trace_to_tree

        nutpie = import_nutpie()
        x0 = self._start if self.affine else self.initial_point(0, jitter=False)
        shapes = self._expand_shapes if getattr(self, "_fixed_values", None) is not None else \
            [np.shape(v) for v in self._call_expand()(x0).values()]
        from bayes_scaling._system import check_draws_memory

        # nutpie keeps the tuning draws in memory too until the end
        check_draws_memory(draws + tune, chains, sum(int(np.prod(s, dtype=np.int64)) for s in shapes),
                           log_likelihood=self.log_likelihood)
        coords = {**self._coords(), **{k: list(v) for k, v in (coords or {}).items()}}
        dims = {}
        for name, shape in zip(self._names, shapes, strict=True):
            base = name[len(LOGLIK_PREFIX):] if name.startswith(LOGLIK_PREFIX) else name
            dims[name] = _dims_for(base, shape, self._dims.get(name, ()))
            for d, length in zip(dims[name], shape, strict=True):
                coords.setdefault(d, list(range(length)))
        dims = {n: d for n, d in dims.items() if d}
        index = {k: pd.Index(v) for k, v in coords.items()}
        model = None
        if self.engine != "public":
            try:
                build = self._native_model if self.engine == "cfunc" else self._python_model
                model = build(x0, shapes, dims, index)
            except PrivateAPIError as exc:
                warnings.warn(f"{exc}: sampling through nutpie's public compile_pymc_model instead (the same "
                              "posterior; each compilation takes longer)", RuntimeWarning, stacklevel=2)
                self.engine = "public"
        if model is None:
            model = self._public_model()
        # the raw trace, converted here (trace_to_tree): nutpie's conversion would load ArviZ (~2 s)
        raw = self.engine != "public" and raw_trace_supported()
        t0 = time.perf_counter()
        # Ctrl-C / SIGTERM: a blocking nutpie.sample would convert and return the chains so far (slowly, for
        # long runs); here the sampler runs in the background and is cancelled (its draws discarded), and
        # stop_on_signals raises Interrupted, so a partial posterior never reaches a caller
        with stop_on_signals("sampling (nutpie)"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            running = nutpie.sample(model, draws=draws, tune=tune, chains=chains, cores=cores, seed=int(seed),
                                    progress_bar=progressbar, save_warmup=False, target_accept=target_accept,
                                    blocking=False, return_raw_trace=raw, **nuts_kwargs)
            try:
                out = running.wait()
            except BaseException:
                running.cancel()
                raise
        elapsed = time.perf_counter() - t0
        if raw:
            out = trace_to_tree(running, out, index)
        if self.engine == "public":
            out = self._public_trace(out, coords)
        return self._to_tree(out, elapsed, tune, coords)

    def _init_fn(self, x0: np.ndarray):
        def init(seed):
            return x0 + np.random.default_rng(int(seed)).uniform(-1.0, 1.0, size=x0.shape)
        return init

    def _native_model(self, x0, shapes, dims, index):
        table, keep = self._pointer_table()
        sizes = [int(np.prod(s, dtype=int)) for s in shapes]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        slices = [slice(int(offsets[i]), int(offsets[i + 1])) for i in range(len(sizes))]
        index = dict(index)
        index["unconstrained_parameter"] = __import__("pandas").Index(self._flat_names)
        return native_model(
            _n_dim=self.n_dim, dims=dims, _coords=index,
            _shapes={n: tuple(s) for n, s in zip(self._names, shapes, strict=True)},
            compiled_logp_func=self._cfuncs[0], compiled_expand_func=self._cfuncs[1],
            initial_point_func=self._init_fn(x0), shared_data={"keep": keep}, shared_var_keys={},
            user_data=table, n_expanded=int(offsets[-1]),
            shape_info=(list(self._names), slices, [tuple(s) for s in shapes]),
            logp_func=None, expand_func=None, reparameterized_names=[],
        )

    def _python_model(self, x0, shapes, dims, index):
        logp_fn, expand, names = self._call_logp(), self._call_expand(), self._names
        return pyfunc_model(self.n_dim, lambda: logp_fn, lambda seed1, seed2, chain: expand,
                           ["float64"] * len(names), shapes, names, coords=index, dims=dims,
                           make_initial_point_fn=self._init_fn(x0))

    # ---- nutpie's public path (engine "public") ----------------------------------------------------------
    def _public_model(self):
        """``nutpie.compile_pymc_model(model)``, compiled again only when a data shape changed; the current
        ``pm.Data`` values go in through ``with_data``."""
        from bayes_scaling.inference._nutpie_private import import_nutpie

        nutpie = import_nutpie()
        values = {v.name: np.asarray(_value(v)) for v in self.model.data_vars}
        key = tuple((n, v.shape) for n, v in sorted(values.items()))
        if self._public is None or self._public[0] != key:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._public = (key, nutpie.compile_pymc_model(self.model, backend="numba"))
        return self._public[1].with_data(**values)

    def _public_trace(self, out: xr.DataTree, coords: dict) -> xr.DataTree:
        """nutpie's trace of the public path in the layout of the private one: the traced variables, and
        the pointwise log-likelihood (computed by PyMC) under ``LOGLIK_PREFIX`` names."""
        import pymc as pm

        post = out["posterior"].to_dataset()
        post = post.assign_coords({d: coords[d] for d in post.dims
                                   if d in coords and len(coords[d]) == post.sizes[d]})
        keep = [n for n in self._names if n in post.data_vars]
        if self.log_likelihood:
            ll = pm.compute_log_likelihood(xr.DataTree.from_dict({"posterior": post}), model=self.model,
                                           extend_inferencedata=False, progressbar=False)
            ll = ll["log_likelihood"].to_dataset() if isinstance(ll, xr.DataTree) else ll
            post = post.assign({LOGLIK_PREFIX + str(n): ll[n] for n in ll.data_vars})
            keep += [LOGLIK_PREFIX + str(n) for n in ll.data_vars]
        return xr.DataTree.from_dict({"posterior": post[keep], "sample_stats": out["sample_stats"].to_dataset()})

    # ---- the result -------------------------------------------------------------------------------------
    def _coords(self) -> dict[str, list]:
        if self.model is None:
            return {k: list(v) for k, v in self._snapshot["coords"].items()}
        coords = {}
        for name, vals in self.model.coords.items():
            if vals is None:
                vals = range(int(self.model.dim_lengths[name].eval()))
            coords[name] = list(vals)
        return coords

    def _to_tree(self, out: xr.DataTree, elapsed: float, tune: int, coords: dict) -> xr.DataTree:
        from importlib.metadata import version

        post = out["posterior"].to_dataset()
        ll_names = [n for n in post.data_vars if str(n).startswith(LOGLIK_PREFIX)]
        loglik = post[ll_names].rename({n: n[len(LOGLIK_PREFIX):] for n in ll_names})
        post = post[[n for n in self._names if n in post.data_vars and n not in ll_names]]
        attrs = {"inference_library": "nutpie", "inference_library_version": version("nutpie"),
                 "sampling_time": float(elapsed), "tuning_steps": int(tune),
                 "logp_backend": f"pytensor-{self.mode.lower()}", "engine": self.engine}
        post.attrs = attrs
        stats = out["sample_stats"].to_dataset()
        groups = {"posterior": post, "sample_stats": stats}
        if ll_names:
            loglik.attrs = dict(attrs)
            groups["log_likelihood"] = loglik
        groups["observed_data"], groups["constant_data"] = self._data_groups(coords)
        return xr.DataTree.from_dict(groups)

    def _data_groups(self, coords: dict) -> tuple[xr.Dataset, xr.Dataset]:
        """``observed_data`` (the observed variables' values) and ``constant_data`` (the other containers)."""
        observed, constant = self._data_arrays()

        def ds(d):
            used = {dim for dims, _ in d.values() for dim in dims}
            return xr.Dataset(d, coords={k: coords[k] for k in used if k in coords})
        return ds(observed), ds(constant)

    def _data_arrays(self) -> tuple[dict, dict]:
        """``name -> (dims, values)`` of the observed variables and of the other data containers."""
        if self.model is None:
            return dict(self._snapshot["observed"]), dict(self._snapshot["constant"])
        model = self.model
        dims_of = model.named_vars_to_dims
        observed, constant, feeding = {}, {}, set()
        for rv in model.observed_RVs:
            val = model.rvs_to_values[rv]
            feeding.add(val.name)
            v = np.asarray(_value(val))
            observed[rv.name] = (_dims_for(rv.name, v.shape, dims_of.get(rv.name, ())), v)
        for var in model.data_vars:
            if var.name not in feeding:
                v = np.asarray(_value(var))
                constant[var.name] = (_dims_for(var.name, v.shape, dims_of.get(var.name, ())), v)
        return observed, constant


def _cfunc(name: str, src: str, key: str | None, jits: dict | None):
    """The ``numba.cfunc`` of a callback's source (:meth:`CompiledSampler._make_cfuncs`), cached on disk under
    ``key``. ``jits``: the PyTensor functions it calls; ``None``: only from the cache (compiling then fails)."""
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    d = numba.types.double
    sigs = {
        "logp_c": numba.types.int64(numba.types.uint64, numba.types.CPointer(d), numba.types.CPointer(d),
                                    numba.types.CPointer(d), numba.types.voidptr),
        "expand_c": numba.types.int64(numba.types.uint64, numba.types.uint64, numba.types.CPointer(d),
                                      numba.types.CPointer(d), numba.types.voidptr),
    }
    env = {"__name__": __name__, "carray": numba.carray, "as_ptr": _as_voidptr, "np": np,
           **(jits or {"logp_jit": _not_cached, "expand_jit": _not_cached})}
    fn = compile_numba_function_src(src, name, env, cache_key=key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return numba.cfunc(sigs[name], cache=key is not None)(fn)


def _not_cached(*args):  # pragma: no cover - stands for the inner functions of a callback loaded from the cache
    raise RuntimeError("compiled without its inner function")


def _dims_for(name: str, shape: tuple, dims) -> tuple[str, ...]:
    """The model's dims of a variable, or ArviZ-style defaults ``name_dim_0, ...``."""
    dims = tuple(d for d in (dims or ()) if d is not None)
    if len(dims) == len(shape):
        return dims
    return tuple(f"{name}_dim_{i}" for i in range(len(shape)))


def _value(var):
    return var.get_value() if hasattr(var, "get_value") else var.eval()


def _initial_point_fn(model):
    """A function returning the model's (un-jittered) initial point, unconstrained, by value-variable name.

    Reads the ``pm.Data`` containers when called, so it follows :meth:`CompiledSampler.set_data`."""
    from pymc.initial_point import make_initial_point_fn

    fn = make_initial_point_fn(model=model, jitter_rvs=set(), return_transformed=True)
    return lambda: fn(0)


# ---- the disk cache of rewritten graphs ------------------------------------------------------------------

#: environment variable: the folder of the graph cache, or "off"
GRAPH_CACHE_ENV = "BAYES_SCALING_GRAPH_CACHE"
_GRAPH_VERSION = "bayes_scaling-graphs-1"


def graph_cache_dir() -> Path | None:
    """The folder of the disk cache of rewritten log-density graphs: ``$BAYES_SCALING_GRAPH_CACHE`` (``off``:
    none), else ``bayes_scaling_graphs`` in PyTensor's compile folder (beside the Numba and C caches, so that
    ``PYTENSOR_FLAGS=base_compiledir=...`` moves them all)."""
    value = os.environ.get(GRAPH_CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "false", "no") else Path(value)
    from pytensor import config

    return Path(config.compiledir) / "bayes_scaling_graphs"


def _graph_cache_key(model, mode: str, log_likelihood: bool, shapes, affine: bool = False) -> str | None:
    """A content address of what the compiled graphs are made from: the model's graph (every node's op and
    output types, every constant's bytes, every shared variable's name and type; free and observed variables
    with their value variables and transforms, deterministics, potentials), the shapes of the free variables,
    what is traced, this module's source, the versions of the libraries that derive and rewrite the graph and
    PyTensor's flags that change the rewrites.
    ``None`` (not cached) where something describes itself by its address (no stable content)."""
    from importlib.metadata import version

    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import toposort
    from pytensor.tensor.sharedvar import SharedVariable

    parts = [_GRAPH_VERSION, mode, str(bool(log_likelihood)), repr([tuple(s) for s in shapes]), f"affine {affine}",
             hashlib.sha256(Path(__file__).read_bytes()).hexdigest(), repr(getattr(model, "check_bounds", None))]
    parts += [f"{lib} {version(lib)}" for lib in ("pymc", "pytensor", "numba", "numpy")]
    from pytensor import config  # the flags that change what the rewrites do

    parts.append(repr([config.floatX, config.optimizer_including, config.optimizer_excluding,
                       config.optimizer_requiring, config.on_opt_error]))
    ids: dict = {}

    def ident(v) -> str:
        if v in ids:
            return ids[v]
        if isinstance(v, Constant):
            data = np.asarray(v.data)
            content = repr(v.data) if data.dtype == object else hashlib.sha256(data.tobytes()).hexdigest()
            desc = f"const {v.type} {data.dtype} {data.shape} {content}"
        elif isinstance(v, SharedVariable):
            desc = f"shared {v.name} {v.type}"
        else:
            desc = f"input {v.name} {v.type}"
        ids[v] = f"v{len(ids)}"
        parts.append(f"{ids[v]} = {desc}")
        return ids[v]

    rvs = {"free": model.free_RVs, "observed": model.observed_RVs}
    values = [model.rvs_to_values[rv] for group in rvs.values() for rv in group]
    outputs = [*model.free_RVs, *model.observed_RVs, *model.deterministics, *model.potentials, *values]
    for node in toposort(outputs):
        op = node.op
        props = repr(op._props_dict()) if getattr(op, "__props__", None) is not None else str(op)
        ins = [ident(i) for i in node.inputs]
        for o in node.outputs:
            ids[o] = f"v{len(ids)}"
        parts.append(f"{[ids[o] for o in node.outputs]} = {type(op).__module__}.{type(op).__qualname__}"
                     f"{props}({', '.join(ins)}) -> {[str(o.type) for o in node.outputs]}")
    for group, variables in rvs.items():
        for rv in variables:
            t = model.rvs_to_transforms.get(rv)
            tdesc = None if t is None else (f"{type(t).__module__}.{type(t).__qualname__}",
                                            sorted((k, repr(v)) for k, v in vars(t).items() if k != "__doc__"))
            parts.append(f"{group} {rv.name} {ident(rv)} value {ident(model.rvs_to_values[rv])} "
                         f"{model.rvs_to_values[rv].name} transform {tdesc}")
    parts += [f"deterministic {d.name} {ident(d)}" for d in model.deterministics]
    parts += [f"potential {ident(p)}" for p in model.potentials]
    text = "\n".join(parts)
    if " at 0x" in text:  # an object described by its address: no content to key on
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _model_shared(model) -> dict:
    """The model's shared variables (``pm.Data`` containers, mutable dimension lengths) by name."""
    from pytensor.tensor.sharedvar import SharedVariable

    out = {}
    for v in [*model.data_vars, *model.dim_lengths.values()]:
        if isinstance(v, SharedVariable) and v.name:
            out.setdefault(v.name, v)
    return out


def _strip_output_copies(fgraph) -> list:
    from pytensor.compile.ops import DeepCopyOp

    return [o.owner.inputs[0] if o.owner is not None and isinstance(o.owner.op, DeepCopyOp) else o
            for o in fgraph.outputs]


def _save_graphs(path: Path, model, fns, names, extra: dict | None = None) -> None:
    """The rewritten graphs of ``fns`` (compiled PyTensor functions of one input, the point, and the model's
    shared variables) to ``path``; written atomically; nothing when a graph has another shared input."""
    shared = _model_shared(model) | {v.name: v for v in (extra or {}).values()}
    graphs = []
    for fn in fns:
        fgraph = fn.maker.fgraph
        inputs = list(fgraph.inputs)
        if any(shared.get(v.name) is not v for v in inputs[1:]):
            return
        graphs.append((inputs, _strip_output_copies(fgraph)))
    write_cache_file(path, {"version": _GRAPH_VERSION, "graphs": graphs, "names": list(names)})


@contextmanager
def deep_recursion(limit: int = 100_000):
    """Python's recursion limit raised to at least ``limit`` inside the block (pickling and linking deep PyTensor
    graphs), restored after."""
    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def write_cache_file(path: Path, record: dict) -> None:
    """``record`` pickled (deep graphs: a high recursion limit) and written to ``path`` atomically; nothing where
    it does not pickle or the disk refuses (a cache is an optimisation). The graph cache's and the fit cache's
    one writer (:func:`read_cache_file` reads)."""
    import pickle

    try:
        with deep_recursion():
            blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an op that does not pickle: no cache
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    except OSError:  # a read-only or full disk
        pass


def read_cache_file(path: Path, version: str) -> dict | None:
    """The record :func:`write_cache_file` wrote to ``path``, or ``None`` when it is missing, unreadable,
    truncated or of another ``version``."""
    import pickle

    try:
        blob = path.read_bytes()
    except OSError:
        return None
    try:
        with deep_recursion():
            saved = pickle.loads(blob)
    except Exception:  # noqa: BLE001 - truncated, or from another version
        return None
    if not isinstance(saved, dict) or saved.get("version") != version:
        return None
    return saved


def _load_graphs(path: Path, model, extra: dict | None = None):
    """``(point input, logp outputs, trace outputs, trace names)`` from the cache, their shared inputs replaced
    by the model's own (by name; same type), or ``None`` when missing, unreadable or not matching."""
    from pytensor.graph.replace import clone_replace

    saved = read_cache_file(path, _GRAPH_VERSION)   # None: rebuilt and rewritten
    if saved is None:
        return None
    shared = _model_shared(model) | {v.name: v for v in (extra or {}).values()}
    (x, *logp_shared), logp_outs = saved["graphs"][0]
    (x2, *expand_shared), outs = saved["graphs"][1]
    replace = {x2: x}
    for v in [*logp_shared, *expand_shared]:
        own = shared.get(v.name)
        if own is None or own.type != v.type:
            return None
        replace[v] = own
    cloned = clone_replace([*logp_outs, *outs], replace)
    return (x, [replace[v] for v in logp_shared], list(cloned[:len(logp_outs)]),
            [replace[v] for v in expand_shared], list(cloned[len(logp_outs):]), list(saved["names"]))


def _compile_rewritten(x, shared: list, outputs: list, mode: str):
    """A PyTensor function of graphs already rewritten for ``mode``, linked without rewriting them again; its
    inputs the point ``x`` and the ``shared`` variables in their order at the first compilation (so Numba finds
    the same function in its cache)."""
    from pytensor.compile.io import In
    from pytensor.compile.maker import FunctionMaker
    from pytensor.compile.mode import Mode, get_mode

    inputs = [In(variable=x, strict=False)]
    inputs += [In(variable=v, value=v.container, mutable=False, borrow=True, shared=True) for v in shared]
    maker = FunctionMaker(inputs, outputs, Mode(linker=get_mode(mode).linker, optimizer=None),
                          accept_inplace=True, on_unused_input="ignore", trust_input=True)
    return maker.create()

try:
    from numba.core import cgutils as _cgutils
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _as_voidptr(typingctx, src):
        """An integer address as a ``void*`` (to rebuild the data arrays from the pointer table)."""
        sig = _types.voidptr(src)

        def codegen(cgctx, builder, sig, args):
            return builder.inttoptr(args[0], _cgutils.voidptr_t)
        return sig, codegen
except ImportError:  # pragma: no cover - numba comes with nutpie / PyMC's numba extra
    _as_voidptr = None
