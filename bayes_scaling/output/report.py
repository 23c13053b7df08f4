"""A report of a saved fit for people who do not use Python: figures as PNG and one self-contained HTML page.

``bayes-scaling report FIT.nc --out DIR`` writes into ``DIR`` for a **law-spec fit** (``bs.fit(...).save()``,
``bayes-scaling fit --model NAME``):

- ``law.png`` (the law against its inputs, one curve per group), ``ppc.png`` (posterior predictive check and
  LOO-PIT) and, with the comparison of sharing, ``compare.png``;
- ``summary.csv``, ``coverage.csv``, ``loo.csv`` (PSIS-LOO: elpd, se, p_loo, Pareto k), ``contrasts.csv``
  (between the groups of the first group column), ``comparison.csv`` and ``pareto_k.csv``;
- ``report.html``: the law and each parameter's sharing, the sampler and its diagnostics, the summary table, the
  posterior predictive checks and LOO, the contrasts and the comparison of sharing.

The comparison of sharing refits the spec with one parameter's sharing changed at a time (a parameter that
varies by a group: shared; a shared parameter of a spec with one group column: partially pooled by it; or the
parameters named by ``sharing``), on the data stored in the fit, seeded, modest draws; ``compare=False``
(``--no-compare``) skips it.

For a **transfer fit** (``bs.fit_transfer``): ``transfer.png`` (D_T against D_F), ``transfer_fraction.png``
(D_T / D_E against N), ``posteriors.png`` (k, alpha, beta per pre-training distribution), ``ppc.png``,
``prior_predictive.png`` and, with the variant comparison, ``compare.png``; ``summary.csv``, ``contrasts.csv``,
``coverage.csv`` (and ``comparison.csv``, ``pareto_k.csv``); the variant comparison refits the other variants
(shared_beta, separate_beta, pooled) with the same priors and likelihood.

Every page has its figures embedded (base64), so it can be mailed on its own.

>>> write_report("fit.nc", "report/", seed=1)     # doctest: +SKIP
PosixPath('report/report.html')
"""

from __future__ import annotations

import base64
import html
import io
import json
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling import __version__
from bayes_scaling._atomic import atomic_path, write_bytes, write_text
from bayes_scaling._interval import CI_PROB
from bayes_scaling.errors import ConfigError, FitFileError
from bayes_scaling.inference.fit import Fit, load
from bayes_scaling.inference.sampling import TransferFit
from bayes_scaling.models.transfer import VARIANTS

__all__ = ["write_report"]

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; max-width: 1180px;
       margin: 1.5em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: .88em; margin: .6em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #b3261e; font-weight: 600; }
.note { color: #555; font-size: .9em; } figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
code, pre { background: #f6f8fa; padding: .1em .3em; } pre { padding: .6em; overflow-x: auto; }
"""


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if np.isnan(v):
            return ""
        a = abs(v)
        return f"{v:.3g}" if (a >= 1e4 or (0 < a < 1e-3)) else f"{v:.4g}"
    return html.escape(str(v))


def _table(df: pd.DataFrame, left: tuple[str, ...] = ()) -> str:
    cols = list(df.columns)
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in cols)
    body = []
    for _, r in df.iterrows():
        cells = "".join(f'<td class="{"l" if c in left else ""}">{_fmt(r[c])}</td>' for c in cols)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def _coverage_section(fit, out: Path, seed: int, add, what: str) -> None:
    """In-sample and leave-one-out coverage (``coverage.csv``) and the LOO-PIT test, for any fit."""
    from bayes_scaling.analysis import checks

    cov = checks.coverage(fit, ci_probs=(0.5, 0.9), seed=seed)
    _csv(cov, out / "coverage.csv")
    pit = checks.loo_pit(fit, seed=seed)
    add(f"<p>Share of the observed {what} inside their central predictive intervals (in-sample: posterior "
        "predictive; loo: leave-one-out, from LOO-PIT). A calibrated model is within about two binomial "
        "standard errors of nominal.</p>")
    add(_table(cov))
    add(f"<p>LOO-PIT against Uniform(0, 1): Kolmogorov-Smirnov distance {pit.ks_statistic:.3f}, "
        f"p = {pit.ks_pvalue:.2f} (approximate).</p>")


#: the columns of a PSIS-LOO comparison shown in a report
_COMPARISON_COLUMNS = ["variant", "rank", "elpd", "se", "elpd_diff", "dse", "p_worse", "p_loo", "weight",
                       "n_pareto_k_bad", "max_pareto_k", "divergences", "r_hat_max", "ess_bulk_min"]


def _comparison_section(comparison, refits: dict, out: Path, add, what: str, groups: tuple,
                        note: str = "") -> None:
    """A PSIS-LOO comparison of a fit and its refits (``comparison.csv``, ``pareto_k.csv``): the table, the
    observations (``what``: run or row, named by ``groups``) with Pareto k > 0.7, and refits that did not converge."""
    _csv(comparison.table, out / "comparison.csv")
    _csv(comparison.pareto, out / "pareto_k.csv")
    add(_table(comparison.table[_COMPARISON_COLUMNS], left=("variant",)))
    add(f'<p class="note">elpd: expected log predictive density of a left-out {what} (higher is better), se its '
        "standard error; elpd_diff: difference to the best variant, dse its standard error; p_worse: "
        f"P(worse than the best), normal approximation; p_loo: effective number of parameters.{note}</p>")
    if len(comparison.pareto):
        add(f'<p class="bad">{what.capitalize()}s with Pareto k &gt; 0.7:</p>'
            + _table(comparison.pareto, left=("variant", *groups)))
    for name, f in refits.items():
        d = f.diagnostics
        if not d.ok:
            add(f'<p class="bad">refit {html.escape(name)}: {html.escape(str(d))}. Its LOO estimate is rougher; '
                "rerun the report with more --draws/--tune to tighten it.</p>")


def _figure(fig, out: Path, name: str, caption: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    png = buf.getvalue()
    write_bytes(out / f"{name}.png", png)
    b64 = base64.b64encode(png).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
            f"<figcaption class=\"note\">{html.escape(caption)} (file <code>{name}.png</code>)</figcaption></figure>")


def write_report(fit: Fit | TransferFit | str | PathLike, out: str | PathLike, *, compare: bool = True,
                 seed: int = 1, draws: int = 500, tune: int = 500, chains: int = 2, backend: str | None = None,
                 ci_prob: float = CI_PROB, progressbar: bool = False, sharing: list[str] | None = None) -> Path:
    """Write figures, CSV tables and ``report.html`` for ``fit`` (a law-spec or transfer fit, or the path of a
    saved one) into ``out``; return the path of the HTML page. ``seed``, ``draws``, ``tune``, ``chains`` and
    ``backend`` (default: the fit's) set the refits of the comparison and the seeded predictive checks;
    ``sharing`` (law-spec fits): the parameters whose sharing the comparison changes (default: see the module
    docstring)."""
    import logging

    import pymc  # noqa: F401  (importing PyMC sets its logger's level: import first, then quiet it)

    pymc_log = logging.getLogger("pymc")
    level = pymc_log.level
    if not progressbar:
        pymc_log.setLevel(logging.WARNING)  # no "Sampling: [...]" chatter in the CLI
    try:
        source = "" if isinstance(fit, (Fit, TransferFit)) else str(fit)
        if source:
            fit = load(fit)
        if isinstance(fit, Fit) and not isinstance(fit, TransferFit):
            return _write_spec(fit, out, source=source, compare=compare, sharing=sharing, seed=seed, draws=draws,
                               tune=tune, chains=chains, backend=backend, ci_prob=ci_prob, progressbar=progressbar)
        if not isinstance(fit, TransferFit):
            raise FitFileError(f"{source or 'fit'}: a report covers law-spec fits (bs.fit, bayes-scaling fit) and "
                               f"transfer fits, not a {type(fit).__name__}")
        if sharing:
            raise ConfigError("sharing applies to law-spec fits; a transfer fit's report compares its variants")
        return _write(fit, out, source=source, compare=compare, seed=seed, draws=draws, tune=tune, chains=chains,
                      backend=backend, ci_prob=ci_prob, progressbar=progressbar)
    finally:
        pymc_log.setLevel(level)


def _write(fit, out, *, source, compare, seed, draws, tune, chains, backend, ci_prob, progressbar) -> Path:
    import warnings

    from bayes_scaling.analysis import checks
    from bayes_scaling.analysis import compare as cmp_mod
    from bayes_scaling.errors import ConvergenceWarning
    from bayes_scaling.output import plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data, cfg = fit.data, fit.config
    unit = data.unit
    pct = f"{100 * ci_prob:g}"
    post = fit.posterior
    parts: list[str] = []
    add = parts.append

    # ---- header, data, sampler ------------------------------------------------------------------------
    add("<h1>Scaling laws for transfer: D<sub>T</sub> = k &middot; D<sub>F</sub><sup>&alpha;</sup> &middot; "
        "N<sup>&beta;</sup></h1>")
    add(f'<p class="note">bayes_scaling {__version__}; fit file: <code>{html.escape(source or "(in memory)")}'
        f'</code>; data: <code>{html.escape(data.source)}</code>; unit of data: <b>{html.escape(unit)}</b>. '
        "D<sub>T</sub> is the effective data transferred by pre-training, D<sub>F</sub> the fine-tuning data, "
        "N the model's non-embedding parameters (Hernandez et al. 2021).</p>")
    if "synthetic" in data.table.columns and bool(data.table["synthetic"].astype(str).str.lower()
                                                  .isin(["true", "1"]).all()):
        add('<p class="bad">These data are SYNTHETIC (simulated), not measurements.</p>')
    diag = fit.diagnostics
    add("<h2>Model and sampler</h2>")
    add(f"<p>Variant <b>{html.escape(cfg.variant)}</b>, likelihood <b>{html.escape(cfg.likelihood)}</b>, "
        f"{html.escape(cfg.parameterization)} hierarchy; {len(fit.pretraining)} pre-training distribution(s): "
        f"{html.escape(', '.join(fit.pretraining))}.</p>")
    add(f"<p>NUTS back end: <b>{html.escape(fit.backend)}</b>; seed {fit.seed}; {post.sizes['chain']} chains "
        f"&times; {post.sizes['draw']} draws after {html.escape(str(fit.tree.attrs.get('tune', '?')))} tuning "
        f"steps; target_accept {html.escape(str(fit.tree.attrs.get('target_accept', '?')))}.</p>")
    cls = "ok" if diag.ok else "bad"
    add(f'<p class="{cls}">{html.escape(str(diag))}</p>')
    for prob in diag.problems():
        add(f'<p class="bad">&bull; {html.escape(prob)}</p>')
    add(f"<details><summary>Priors (model file)</summary><pre>{html.escape(cfg.to_toml())}</pre></details>")

    add("<h2>Data and exclusions</h2>")
    add(f"<p>{len(data.table)} runs in the table, {data.n_used} used in the fit. "
        f"{html.escape(data.exclusion_report())}.</p>")
    if data.n_excluded:
        ex = data.excluded[["pretraining", "N", "D_F", "D_T", "exclusion_reason"]].reset_index(names="row")
        add(_table(ex, left=("pretraining", "exclusion_reason")))
        add('<p class="note">Rows count data rows from 0 (a CSV line number is row + 2).</p>')

    # ---- summary and figures ----------------------------------------------------------------------------
    add("<h2>Posterior summary</h2>")
    summary = fit.summary(ci_prob)
    _csv(summary, out / "summary.csv")
    add(_table(summary.drop(columns=["by", "group"]), left=("parameter", "pretraining")))   # the same labels
    add(f'<p class="note">Mean, sd, median and the equal-tailed {pct}% interval of each parameter; '
        "ess_bulk/ess_tail: effective sample sizes; r_hat: rank-normalised R-hat (ok below 1.01).</p>")
    add(_figure(plots.plot_transfer(fit, ci_prob=ci_prob), out, "transfer",
                f"D_T against D_F, one line per model size: posterior median and {pct}% band; points are runs."))
    add(_figure(plots.plot_transfer_fraction(fit, ci_prob=ci_prob), out, "transfer_fraction",
                "Fraction of the effective data that comes from transfer, D_T / D_E, against model size."))
    add(_figure(plots.plot_posteriors(fit, ci_prob=ci_prob), out, "posteriors",
                "Posterior densities of k, alpha and beta per pre-training distribution."))

    # ---- checks -------------------------------------------------------------------------------------
    add("<h2>Posterior and prior predictive checks</h2>")
    _coverage_section(fit, out, seed, add, "runs")
    own_pareto = cmp_mod.pareto_k_table(fit)
    if len(own_pareto):
        add(f"<p class=\"bad\">{len(own_pareto)} run(s) with PSIS-LOO Pareto k &gt; 0.7 (influential; LOO "
            "unreliable for them):</p>" + _table(own_pareto, left=("pretraining",)))
    else:
        add("<p class=\"ok\">Every run has PSIS-LOO Pareto k &le; 0.7.</p>")
    add(_figure(plots.plot_ppc(fit, ci_prob=0.9, seed=seed), out, "ppc",
                "Posterior predictive check (left) and LOO-PIT (right)."))
    prior = checks.prior_predictive_check(data, cfg, seed=seed)
    add(f"<p>Prior predictive: {prior.coverage['observed'].iloc[0]:.0%} of the runs lie inside the 90% prior "
        f"predictive interval of D_T, which spans about {prior.orders_90:.0f} orders of magnitude: the priors "
        "are weakly informative on the scale of the data.</p>")
    add(_table(prior.parameters, left=("parameter", "pretraining")))
    add(_figure(plots.plot_prior_predictive(prior), out, "prior_predictive",
                "Prior predictive 90% interval of D_T at every observed run, with the observation."))

    # ---- contrasts ------------------------------------------------------------------------------------
    if len(fit.pretraining) > 1:
        add("<h2>Contrasts between pre-training distributions</h2>")
        con = cmp_mod.contrasts(fit, ci_prob=ci_prob)
        _csv(con, out / "contrasts.csv")
        add(_table(con, left=("A", "B", "quantity", "kind", "unit")))
        add(f'<p class="note">eti_lb/eti_ub: equal-tailed {pct}% interval; probability rows give the posterior '
            "probability in the column mean. D_F* is where the two transfer curves cross (shared beta): below it "
            "the distribution with the smaller alpha transfers more.</p>")

    # ---- variants -------------------------------------------------------------------------------------
    add("<h2>Comparison of model variants (PSIS-LOO)</h2>")
    if not compare:
        add('<p class="note">Skipped (--no-compare).</p>')
    elif len(fit.pretraining) < 2:
        add('<p class="note">Skipped: the variants differ only with several pre-training distributions.</p>')
    else:
        others = [v for v in VARIANTS if v != cfg.variant]
        backend = backend or (fit.backend if fit.backend in ("pymc", "nutpie", "numpyro") else "auto")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported below, per variant
            refits = cmp_mod.fit_variants(data, variants=others, config=cfg, seed=seed, draws=draws, tune=tune,
                                          chains=chains, backend=backend, progressbar=progressbar)
        fits = {cfg.variant: fit, **refits}
        comparison = cmp_mod.compare_fits({v: fits[v] for v in VARIANTS})
        add(f"<p>The variant <b>{html.escape(cfg.variant)}</b> is the fit above; "
            f"{html.escape(', '.join(others))} were refitted on the same runs with the same priors "
            f"({chains} chains &times; {draws} draws, {tune} tuning steps, seed {seed}, back end "
            f"{html.escape(refits[others[0]].backend)}). shared_beta: one beta for every distribution (the paper's "
            "model); separate_beta: beta per distribution; pooled: one k, alpha, beta for all.</p>")
        _comparison_section(comparison, refits, out, add, "run", ("pretraining",))
        ev = cmp_mod.beta_evidence(comparison, ci_prob=ci_prob)
        add("<h3>Does beta depend on the pre-training data?</h3>")
        add(f"<p>elpd(separate_beta) &minus; elpd(shared_beta) = <b>{ev.elpd_diff:+.2f} &plusmn; {ev.dse:.2f}</b> "
            f"(SE); P(separate betas predict better) &asymp; {ev.p_separate_better:.2f}.</p>")
        if ev.note:
            add(f'<p class="note">{html.escape(ev.note)}.</p>')
        add(_table(ev.differences, left=("A", "B", "quantity")))
        add(f'<p class="note">Posterior of beta[A] &minus; beta[B] in the separate_beta variant: mean, sd, '
            f"median, {pct}% interval and P(&gt; 0). An interval around 0 and an elpd difference within about "
            "two SE of 0 support the paper's reading that beta does not depend on the pre-training data.</p>")
        add(_figure(plots.plot_compare(comparison), out, "compare", "PSIS-LOO elpd differences of the variants."))

    add(f'<hr><p class="note">Configuration hash {html.escape(str(fit.tree.attrs.get("config_hash", "")))}; '
        f"pre-training order {html.escape(json.dumps(fit.pretraining))}.</p>")
    return _page(parts, out)


def _page(parts: list[str], out: Path) -> Path:
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>bayes_scaling report</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    path = out / "report.html"
    write_text(path, page)
    return path


def _write_spec(fit: Fit, out, *, source, compare, sharing, seed, draws, tune, chains, backend, ci_prob,
                progressbar) -> Path:
    """The report of a law-spec fit (see the module docstring)."""
    import warnings

    import matplotlib.pyplot as plt

    from bayes_scaling.analysis import compare as cmp_mod
    from bayes_scaling.errors import ConvergenceWarning
    from bayes_scaling.laws.expr import Equation
    from bayes_scaling.output import plots

    spec, data = fit.spec, fit.data
    alternatives = cmp_mod.sharing_alternatives(spec, sharing) if compare else {}   # bad names: before any work
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pct = f"{100 * ci_prob:g}"
    post = fit.posterior
    parts: list[str] = []
    add = parts.append
    esc = html.escape

    # ---- header, law, sampler -------------------------------------------------------------------------
    law = spec.formula.text if isinstance(spec.formula, Equation) else f"{spec.target} = {spec.formula.text}"
    add(f"<h1>{esc(spec.name)}: <code>{esc(law)}</code></h1>")
    groups = ", ".join(f"{g} ({len(fit.labels.get(g, []))} groups)" for g in spec.groups) or "none"
    add(f'<p class="note">bayes_scaling {__version__}; fit file: <code>{esc(source or "(in memory)")}</code>; '
        f"{len(data)} rows; inputs {esc(', '.join(spec.inputs))}; target <b>{esc(spec.target)}</b>; group columns "
        f"{esc(groups)}.</p>")
    if spec.description:
        add(f"<p>{esc(spec.description)}</p>")
    if "synthetic" in data.columns and bool(data["synthetic"].astype(str).str.lower().isin(["true", "1"]).all()):
        add('<p class="bad">These data are SYNTHETIC (simulated), not measurements.</p>')
    add("<h2>Model and sampler</h2>")
    add(f"<p>Likelihood <b>{esc(spec.family)}</b> noise on the <b>{esc(spec.scale)}</b> scale of the target. "
        "Each parameter's sharing across the groups:</p>")
    rows = []
    for name, p in spec.parameters.items():
        prior = "fixed" if p.fixed is not None else (", ".join(f"{k} {v:g}" for k, v in p.prior.items())
                                                     or "default")
        rows.append({"parameter": name, "domain": p.domain, "sharing": p.sharing, "by": p.by or "",
                     "within": p.within or "", "fixed": p.fixed if p.fixed is not None else float("nan"),
                     "prior": prior, "parameterization": fit.parameterization.get(name, "")})
    add(_table(pd.DataFrame(rows), left=("parameter", "domain", "sharing", "by", "within", "prior",
                                         "parameterization")))
    diag = fit.diagnostics
    add(f"<p>NUTS back end: <b>{esc(fit.backend)}</b>; seed {fit.seed}; {post.sizes['chain']} chains "
        f"&times; {post.sizes['draw']} draws after {esc(str(fit.tree.attrs.get('tune', '?')))} tuning "
        f"steps; target_accept {esc(str(fit.tree.attrs.get('target_accept', '?')))}.</p>")
    add(f'<p class="{"ok" if diag.ok else "bad"}">{esc(str(diag))}</p>')
    for prob in diag.problems():
        add(f'<p class="bad">&bull; {esc(prob)}</p>')
    add(f"<details><summary>Law spec (TOML)</summary><pre>{esc(spec.to_toml())}</pre></details>")

    # ---- summary and the law ----------------------------------------------------------------------------
    add("<h2>Posterior summary</h2>")
    summary = fit.summary(ci_prob)
    _csv(summary, out / "summary.csv")
    add(_table(summary.drop(columns=["pretraining"]), left=("parameter", "by", "group")))   # the same labels
    add(f'<p class="note">Mean, sd, median and the equal-tailed {pct}% interval of each parameter (per group '
        "where it varies); ess_bulk/ess_tail: effective sample sizes; r_hat: rank-normalised R-hat (ok below "
        "1.01).</p>")
    shown = spec.inputs[:2]
    fig, axes = plt.subplots(1, len(shown), figsize=(6.5 * len(shown), 4.4), squeeze=False)
    for ax, x in zip(axes[0], shown, strict=True):
        plots.plot_law(fit, x, ci_prob=ci_prob, ax=ax)
    fig.tight_layout()
    add(_figure(fig, out, "law", f"The fitted law against {' and '.join(shown)}: posterior median and {pct}% "
                "band of the law's value, one curve per group at its median of the other inputs; points are the "
                "rows; grey: beyond the data."))

    # ---- checks and LOO ---------------------------------------------------------------------------------
    add("<h2>Posterior predictive checks and PSIS-LOO</h2>")
    _coverage_section(fit, out, seed, add, "rows")
    own = cmp_mod.loo(fit)
    own_pareto = cmp_mod.pareto_k_table(fit, loo_result=own)
    k = np.asarray(own.pareto_k).ravel()
    loo_table = pd.DataFrame([{"elpd_loo": float(own.elpd), "se": float(own.se), "p_loo": float(own.p),
                               "n": len(k), "n_pareto_k_bad": len(own_pareto), "max_pareto_k": float(k.max())}])
    _csv(loo_table, out / "loo.csv")
    add("<p>PSIS-LOO: the expected log predictive density of a left-out row, summed over rows (on the "
        f"likelihood's scale, {'log ' if spec.scale == 'log' else ''}{esc(spec.target)}), with its standard error "
        "and the effective number of parameters:</p>")
    add(_table(loo_table))
    if len(own_pareto):
        add(f'<p class="bad">{len(own_pareto)} row(s) with PSIS-LOO Pareto k &gt; 0.7 (influential; LOO '
            "unreliable for them):</p>" + _table(own_pareto, left=tuple(spec.groups)))
    else:
        add('<p class="ok">Every row has PSIS-LOO Pareto k &le; 0.7.</p>')
    add(_figure(plots.plot_ppc(fit, ci_prob=0.9, seed=seed), out, "ppc",
                "Posterior predictive check (left) and LOO-PIT (right)."))

    # ---- contrasts ----------------------------------------------------------------------------------------
    by = spec.groups[0] if spec.groups else None
    if by is not None and len(fit.labels.get(by, [])) > 1 and any(
            p.by == by and p.fixed is None for p in spec.parameters.values()):
        add(f"<h2>Contrasts between the groups of {esc(by)}</h2>")
        con = cmp_mod.contrasts(fit, by=by, ci_prob=ci_prob)
        _csv(con, out / "contrasts.csv")
        add(_table(con, left=("A", "B", "quantity", "kind", "unit")))
        add(f'<p class="note">eti_lb/eti_ub: equal-tailed {pct}% interval; probability rows give the posterior '
            "probability in the column mean.</p>")

    # ---- comparison of sharing ----------------------------------------------------------------------------
    add("<h2>Comparison of sharing (PSIS-LOO)</h2>")
    if not compare:
        add('<p class="note">Skipped (--no-compare).</p>')
    elif not alternatives:
        add('<p class="note">Skipped: no parameter of this spec can change its sharing (no group column, or '
            "every parameter fixed).</p>")
    else:
        backend = backend or (fit.backend if fit.backend in ("pymc", "nutpie", "numpyro") else "auto")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported below, per variant
            refits = cmp_mod.fit_specs(data, alternatives, seed=seed, draws=draws, tune=tune, chains=chains,
                                       backend=backend, progressbar=progressbar, warn=False)
        comparison = cmp_mod.compare_fits({"as fitted": fit, **refits})
        add(f"<p>The fit above (<b>as fitted</b>) against the same law with one parameter's sharing changed, "
            f"each refitted on the same rows with the same priors ({chains} chains &times; {draws} draws, {tune} "
            f"tuning steps, seed {seed}, back end {esc(next(iter(refits.values())).backend)}). shared: one value "
            "for every row; pooled: a value per group, partially pooled.</p>")
        _comparison_section(comparison, refits, out, add, "row", tuple(spec.groups),
                            " A difference within about two dse of 0 (or under 4 in absolute value) does not prefer "
                            "either sharing.")
        add(_figure(plots.plot_compare(comparison), out, "compare",
                    "PSIS-LOO elpd differences of the fit as fitted and its variants of sharing."))

    add(f'<hr><p class="note">Spec hash {esc(str(fit.tree.attrs.get("spec_hash", "")))}; group order '
        f"{esc(json.dumps(fit.labels))}.</p>")
    return _page(parts, out)
