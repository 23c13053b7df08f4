"""Helpers shared by the command modules (not options: those are in :mod:`bayes_scaling.cli.cmdoptions`): the
``--out`` check, the printed and ``--json`` summaries of a fit, and the interval tables of ``predict``,
``forecast`` and ``export``."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from bayes_scaling.cli import cmdoptions

__all__ = ["check_out", "emit_fit", "format_big", "format_summary", "interval_table", "posterior_args",
           "print_failures", "print_fit", "print_spec_fit", "print_table", "sampler_kwargs"]


def check_out(args, *inputs, suffixes=None, attr: str = "out"):
    """Check ``--out`` before the long work starts (folder, suffix, not an input); see _atomic.check_output."""
    from bayes_scaling._atomic import check_output

    value = getattr(args, attr)
    return None if value is None else check_output(value, inputs=inputs, suffixes=suffixes,
                                                   what=f"--{attr.replace('_', '-')}")


def format_summary(df: pd.DataFrame, ci_prob: float) -> str:
    """A human table: mean, sd, the equal-tailed interval, ESS, R-hat."""
    pct = f"{100 * ci_prob:g}"
    lo, hi = f"eti{pct}_lb", f"eti{pct}_ub"
    rows = []
    for _, r in df.iterrows():
        big = r["parameter"] == "k"
        fmt = (lambda v: f"{v:.3g}") if big else (lambda v: f"{v:.4f}")
        rows.append({"parameter": r["parameter"], "pretraining": r["pretraining"], "mean": fmt(r["mean"]),
                     "sd": fmt(r["sd"]), f"{pct}% ETI": f"[{fmt(r[lo])}, {fmt(r[hi])}]",
                     "ess_bulk": f"{r['ess_bulk']:.0f}", "ess_tail": f"{r['ess_tail']:.0f}",
                     "r_hat": f"{r['r_hat']:.3f}"})
    return pd.DataFrame(rows).to_string(index=False)


def print_fit(fit, ci_prob: float, out=None) -> None:
    from bayes_scaling.models.transfer import parameter_names

    out = out or sys.stdout
    names = [n for n in parameter_names(fit.config) if n != "log_k"]
    print(f"{fit!r}", file=out)
    print(f"data: {fit.data.source} ({fit.data.n_used} runs used; {fit.data.exclusion_report()}; "
          f"unit: {fit.data.unit})", file=out)
    print(f"NUTS back end: {fit.backend}, seed {fit.seed}; {fit.diagnostics}", file=out)
    if fit.parameterization:
        print("parameterization (chosen from the data): "
              + ", ".join(f"{k} {v}" for k, v in fit.parameterization.items()), file=out)
    print(format_summary(fit.summary(ci_prob, var_names=names), ci_prob), file=out)


def print_spec_fit(fit, ci_prob: float, out=None) -> None:
    out = out or sys.stdout
    print(f"{len(fit.table)} rows; NUTS back end: {fit.backend}, seed {fit.seed}; {fit.diagnostics}", file=out)
    if fit.parameterization:
        print("parameterization (chosen from the data): "
              + ", ".join(f"{k} {v}" for k, v in fit.parameterization.items()), file=out)
    df = fit.summary(ci_prob)
    pct = f"{100 * ci_prob:g}"
    fmt = lambda v: f"{v:.4g}"  # noqa: E731
    rows = [{"parameter": r["parameter"], "group": f"{r['by']}={r['group']}" if r["by"] else "",
             "mean": fmt(r["mean"]), "sd": fmt(r["sd"]),
             f"{pct}% ETI": f"[{fmt(r[f'eti{pct}_lb'])}, {fmt(r[f'eti{pct}_ub'])}]",
             "ess_bulk": f"{r['ess_bulk']:.0f}", "r_hat": f"{r['r_hat']:.3f}"} for _, r in df.iterrows()]
    print(pd.DataFrame(rows).to_string(index=False), file=out)


def emit_fit(fit, ci_prob: float, **info) -> None:
    """``--json``: the posterior summary table and the fit's facts (cli/_output.py)."""
    from bayes_scaling.cli._output import active, emit

    if not active():
        return
    emit("summary", fit.summary(ci_prob), ci_prob=ci_prob, backend=getattr(fit, "backend", None),
         seed=getattr(fit, "seed", None), diagnostics=str(getattr(fit, "diagnostics", "")), **info)


#: parameters printed with 3 significant digits (the large ones)
BIG = {"k", "A", "B", "N_c", "D_c"}


def format_big(df, ci_prob: float) -> str:
    """:func:`format_summary`, with 3 significant digits for the large parameters (k, A, B, N_c, D_c)."""
    names = [str(p) for p in df["parameter"]]
    out = format_summary(df.assign(parameter=["k" if p in BIG else p for p in names]), ci_prob)
    lines = out.splitlines()
    head, rows = lines[0], lines[1:]
    col = head.index("parameter") + len("parameter")
    width = max(col, *(len(n) for n in names))
    fixed = [" " * (width - col) + head] + [n.rjust(width) + row[col:] for n, row in zip(names, rows, strict=True)]
    return "\n".join(fixed)


def sampler_kwargs(args) -> dict:
    """The sampler options (cmdoptions.sampler) as keyword arguments of the fitting functions."""
    return {"seed": args.seed, "draws": args.draws, "tune": args.tune, "chains": args.chains,
            "backend": args.backend}


def print_failures(exc) -> None:
    """The failed tasks of a :class:`~bayes_scaling.inference.batch.BatchError`, one line each, on stderr."""
    print(f"error: {len(exc.failures)} of {len(exc.results)} tasks failed (the others finished):", file=sys.stderr)
    for f in exc.failures:
        print(f"  {f}", file=sys.stderr)


# ---- predict, forecast, export ------------------------------------------------------------------------

def posterior_args(p: argparse.ArgumentParser) -> None:
    """FIT.nc, ``--pretraining``, ``--seed``, ``--ci`` and ``--csv``: the options of ``predict`` and ``forecast``."""
    p.add_argument("fit", help="FIT.nc written by 'bayes-scaling fit'")
    p.add_argument("--pretraining", nargs="+", default=None, metavar="P",
                   help="pre-training distribution(s) (default: all in the fit); 'new' for a new distribution "
                        "drawn from the hierarchy ('new (population)' when the fit has one named 'new')")
    cmdoptions.seed(p)
    cmdoptions.ci(p, "interval probability")
    p.add_argument("--csv", action="store_true", help="print the interval table as CSV")


def pretraining_names(args, fit=None):
    """The ``--pretraining`` names: ``new`` is a new distribution drawn from the population (``NEW``), unless the
    fit has a distribution named ``new``: then it is that one, and the population is ``"new (population)"`` (a
    label that data cannot use: :meth:`TransferData.from_frame`)."""
    from bayes_scaling.analysis.predictions import NEW

    if args.pretraining is None:
        return None
    real_new = fit is not None and "new" in tuple(getattr(fit, "pretraining", ()))
    names = [NEW if p == NEW or (p == "new" and not real_new) else p for p in args.pretraining]
    repeated = sorted({p for p in names if names.count(p) > 1})
    if repeated:
        from bayes_scaling.errors import BayesScalingError

        raise BayesScalingError(f"--pretraining names {', '.join(map(repr, repeated))} more than once; give "
                                "each distribution once")
    return names


def check_draws_out(args) -> None:
    """``--out`` checked before the work: folder, a suffix of its format, not the fit file itself."""
    from bayes_scaling.output.exports import FORMATS, _format, suffixes_of

    if args.out is None:
        return
    fmt = getattr(args, "format", None)
    if fmt is None:
        from pathlib import Path

        fmt = _format(Path(args.out), None)
    check_out(args, args.fit, *(getattr(args, a, None) for a in ("N_draws", "D_req_draws")),
              suffixes=suffixes_of(fmt) if fmt in FORMATS else None)


def fmt_number(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.3g}"


def interval_table(ds, quantities: list[str], ci: float, keys: list[str]) -> pd.DataFrame:
    """One row per grid point: for each quantity its median and equal-tailed ``ci`` interval (columns
    ``<q>``, ``<q>_lo``, ``<q>_hi``), plus ``n_nan`` where some draws have no value."""
    import xarray as xr

    from bayes_scaling._numeric import nanquantile

    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    out = None
    for q in quantities:
        da = ds[q]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        draws = da.transpose("chain", "draw", *other).values.reshape(-1, *(da.sizes[d] for d in other))
        with np.errstate(all="ignore"):   # xarray's quantile: NumPy's nanquantile, one point at a time
            qs = xr.DataArray(nanquantile(draws, [lo, 0.5, hi], axis=0), dims=("quantile", *other),
                              coords={"quantile": [lo, 0.5, hi], **{d: da[d].values for d in other}})
        df = qs.to_dataframe(name=q).reset_index().pivot_table(index=[k for k in keys if k in qs.dims],
                                                               columns="quantile", values=q, dropna=False)
        df.columns = [f"{q}_lo", q, f"{q}_hi"]
        out = df if out is None else out.join(df)
    out = out.reset_index()
    if "pretraining" in out:  # the dataset's order, not alphabetical
        order = {p: i for i, p in enumerate(ds["pretraining"].values)}
        out = out.sort_values(by=[k for k in keys if k in out], key=lambda c: c.map(order) if c.name ==
                              "pretraining" else c, kind="stable").reset_index(drop=True)
    return out


def print_table(table: pd.DataFrame, quantities: list[str], ci: float, as_csv: bool, extra: list[str]) -> None:
    if as_csv:
        table.to_csv(sys.stdout, index=False)
        return
    pct = f"{100 * ci:g}%"
    view = pd.DataFrame({c: table[c].map(lambda v: fmt_number(v) if isinstance(v, float) else v)
                         for c in table.columns if c not in extra and not any(
                             c in (f"{q}", f"{q}_lo", f"{q}_hi") for q in quantities)})
    for q in quantities:
        view[f"{q} median [{pct}]"] = [f"{fmt_number(m)} [{fmt_number(a)}, {fmt_number(b)}]"
                                       for m, a, b in zip(table[q], table[f"{q}_lo"], table[f"{q}_hi"], strict=True)]
    for c in extra:
        view[c] = table[c].map(lambda v: f"{v:+.2f}" if isinstance(v, float) and np.isfinite(v) else str(v))
    print(view.to_string(index=False))


def shares_table(ds, keys: list[str]) -> pd.DataFrame:
    """The ``share_parameters`` / ``share_discrepancy`` coordinates of ``ds`` as a table over ``keys``."""
    cols = [c for c in ("share_parameters", "share_discrepancy") if c in ds.coords]
    if not cols:
        return pd.DataFrame(columns=keys)
    dims = list(ds[cols[0]].dims)
    index = pd.MultiIndex.from_product([ds[d].values for d in dims], names=dims) if dims else pd.RangeIndex(1)
    out = pd.DataFrame({c: ds[c].transpose(*dims).values.ravel() for c in cols}, index=index)
    out = out.reset_index() if dims else out
    return out[[k for k in keys if k in out.columns] + cols]


def read_draws_column(path: str, column: str):
    from bayes_scaling.data.tables import check_numeric, read_table
    from bayes_scaling.errors import DataError

    df = read_table(path, what=path)
    if column not in df.columns:
        if len(df.columns) != 1:
            raise DataError(f"{path}: expected a column {column!r} (or a single column); found "
                            f"{', '.join(map(str, df.columns))}")
        column = df.columns[0]
    return check_numeric(df, column, path)
