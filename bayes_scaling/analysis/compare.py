"""Comparing model variants (PSIS-LOO) and pre-training distributions (posterior contrasts).

Variants of the transfer law ``D_T = k[p] * D_F**alpha[p] * N**beta`` (see :mod:`bayes_scaling.models.transfer`):

- ``shared_beta``: one beta for every pre-training distribution (the paper's model);
- ``separate_beta``: beta[p] per distribution, partially pooled;
- ``pooled``: one k, alpha and beta for all distributions.

Each is scored by its expected log pointwise predictive density, estimated by Pareto-smoothed importance
sampling leave-one-out cross-validation (PSIS-LOO, ``arviz.loo``/``arviz.compare``): higher ``elpd`` predicts
held-out runs better; ``elpd_diff`` and its standard error ``dse`` say by how much and how surely. Observations
whose Pareto k exceeds 0.7 make the estimate unreliable and are named (row of the data table, pre-training,
N, D_F).

The paper's claim "beta does not depend on the pre-training data" becomes two numbers with uncertainties
(:func:`beta_evidence`): the elpd difference ``separate_beta - shared_beta`` (about 0 or negative: no evidence
for separate betas) and the posterior of ``beta[A] - beta[B]`` in the separate variant.

>>> import bayes_scaling as bs
>>> cmp = compare_variants(bs.load_example(), seed=1, draws=300, tune=300, chains=2)   # doctest: +SKIP
>>> cmp.table[["variant", "elpd", "se", "elpd_diff", "dse"]]                           # doctest: +SKIP
>>> beta_evidence(cmp)                                                                 # doctest: +SKIP
>>> contrasts(cmp.fits["shared_beta"])                                                 # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from bayes_scaling.data.tables import TransferData
from bayes_scaling.errors import BayesScalingError
from bayes_scaling.inference.sampling import TransferFit, fit_transfer
from bayes_scaling.laws import formulas as laws
from bayes_scaling.models.transfer import VARIANTS, ModelConfig

__all__ = ["VARIANTS", "PARETO_K_MAX", "VariantComparison", "BetaEvidence", "loo", "pareto_k_table",
           "fit_variants", "compare_fits", "compare_variants", "beta_evidence", "contrasts"]

#: Pareto k above which a PSIS-LOO term is unreliable (Vehtari et al. 2024).
PARETO_K_MAX = 0.7


def _ensure_log_likelihood(fit: TransferFit):
    """The fit's DataTree with a ``log_likelihood`` group (computed from the rebuilt model if missing)."""
    tree = fit.tree
    if "log_likelihood" in tree.children:
        return tree
    import pymc as pm

    return pm.compute_log_likelihood(tree.copy(), model=fit.build_model(), progressbar=False)


def loo(fit: TransferFit):
    """PSIS-LOO of a fit (``arviz.loo`` with pointwise values): ``.elpd``, ``.se``, ``.p``, ``.pareto_k``."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*|.*[Ee]stimated shape.*")
        return az.loo(_ensure_log_likelihood(fit), pointwise=True, var_name="log_D_T")


def pareto_k_table(fit: TransferFit, threshold: float = PARETO_K_MAX, loo_result=None) -> pd.DataFrame:
    """Observations whose PSIS-LOO Pareto k exceeds ``threshold``: row of the data table (0-based, as in
    error messages), pretraining, N, D_F, D_T and k, worst first. Empty when every k is fine."""
    res = loo_result if loo_result is not None else loo(fit)
    k = np.asarray(res.pareto_k).ravel()
    used = fit.data.used
    bad = np.flatnonzero(k > threshold)
    out = pd.DataFrame({
        "row": used.index.to_numpy()[bad], "pretraining": used["pretraining"].to_numpy()[bad],
        "N": used["N"].to_numpy(float)[bad], "D_F": used["D_F"].to_numpy(float)[bad],
        "D_T": used["D_T"].to_numpy(float)[bad], "pareto_k": k[bad],
    })
    return out.sort_values("pareto_k", ascending=False, ignore_index=True)


def fit_variants(data: TransferData, *, variants: tuple[str, ...] | list[str] = VARIANTS,
                 config: ModelConfig | None = None, seed: int = 0, draws: int = 1000, tune: int = 1000,
                 chains: int = 4, backend: str = "auto", target_accept: float | None = None,
                 progressbar: bool = False, warn: bool = True) -> dict[str, TransferFit]:
    """Fit each variant to the same data with the same priors/likelihood (``config``) and the same seed."""
    base = config or ModelConfig()
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise BayesScalingError(f"variants: unknown {', '.join(map(repr, unknown)) or '(none given)'}; "
                                f"expected some of {', '.join(VARIANTS)}")
    fits = {}
    for v in variants:
        cfg = ModelConfig(likelihood=base.likelihood, variant=v, parameterization=base.parameterization,
                          priors=base.priors)
        fits[v] = fit_transfer(data, config=cfg, seed=seed, draws=draws, tune=tune, chains=chains,
                               backend=backend, target_accept=target_accept, progressbar=progressbar, warn=warn)
    return fits


@dataclass
class VariantComparison:
    """PSIS-LOO comparison of fitted variants.

    ``table``: one row per variant, best first: ``rank``, ``elpd`` (higher is better) and its ``se``,
    ``elpd_diff`` (this variant minus the best) and ``dse`` (its standard error), ``p_worse`` (normal
    approximation of P(this variant predicts worse than the best)), ``p_loo`` (effective number of parameters),
    ``weight`` (stacking), ``n_pareto_k_bad`` (observations with k > 0.7), and the NUTS diagnostics of each fit.
    ``pareto``: the observations with k > 0.7, named (variant, row, pretraining, N, D_F, D_T, pareto_k).
    """

    fits: dict[str, TransferFit]
    table: pd.DataFrame
    pareto: pd.DataFrame
    loo: dict = field(repr=False, default_factory=dict)

    def __str__(self) -> str:
        cols = ["variant", "rank", "elpd", "se", "elpd_diff", "dse", "p_worse", "p_loo", "n_pareto_k_bad",
                "divergences", "r_hat_max"]
        return self.table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}")


def compare_fits(fits: dict[str, TransferFit], threshold: float = PARETO_K_MAX) -> VariantComparison:
    """Compare already-fitted models (same data) by PSIS-LOO; see :class:`VariantComparison`."""
    import arviz as az

    if len(fits) < 2:
        raise BayesScalingError(f"compare needs at least two fits, got {len(fits)}")
    n_obs = {name: f.data.n_used for name, f in fits.items()}
    if len(set(n_obs.values())) != 1:
        raise BayesScalingError(f"fits were made on different data (runs used: {n_obs}); LOO compares models "
                                "on the same observations")
    loos = {name: loo(f) for name, f in fits.items()}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*|.*[Ee]stimated shape.*")
        cmp = az.compare(loos, round_to="none")
    rows, pareto = [], []
    for name in cmp.index:
        r = cmp.loc[name]
        diag = fits[name].diagnostics
        bad = pareto_k_table(fits[name], threshold, loos[name])
        pareto.append(bad.assign(variant=name))
        rows.append({
            "variant": name, "rank": int(r["rank"]), "elpd": float(r["elpd"]), "se": float(r["se"]),
            "elpd_diff": float(r["elpd_diff"]), "dse": float(r["dse"]),
            "p_worse": float(r["p_worse"]) if pd.notna(r["p_worse"]) else 0.0,
            "p_loo": float(r["p"]), "weight": float(r["weight"]), "n_pareto_k_bad": len(bad),
            "max_pareto_k": float(np.max(np.asarray(loos[name].pareto_k))),
            "note": str(r.get("diag_diff", "") or ""), "backend": fits[name].backend,
            "divergences": diag.divergences, "r_hat_max": diag.r_hat_max, "ess_bulk_min": diag.ess_bulk_min,
        })
    pareto_df = pd.concat(pareto, ignore_index=True) if pareto else pd.DataFrame()
    pareto_df = pareto_df[["variant"] + [c for c in pareto_df.columns if c != "variant"]]
    return VariantComparison(fits=fits, table=pd.DataFrame(rows), pareto=pareto_df, loo=loos)


def compare_variants(data: TransferData, *, variants: tuple[str, ...] | list[str] = VARIANTS,
                     config: ModelConfig | None = None, seed: int = 0, draws: int = 1000, tune: int = 1000,
                     chains: int = 4, backend: str = "auto", target_accept: float | None = None,
                     threshold: float = PARETO_K_MAX, progressbar: bool = False,
                     warn: bool = True) -> VariantComparison:
    """Fit every variant on ``data`` (seeded, same settings) and compare them by PSIS-LOO.

    >>> cmp = compare_variants(bs.load_example(), seed=1, draws=300, tune=300, chains=2)   # doctest: +SKIP
    >>> print(cmp)                                                                         # doctest: +SKIP
    """
    if not isinstance(data, TransferData):
        raise BayesScalingError(f"compare_variants needs a TransferData, got {type(data).__name__}")
    if len(data.pretraining) < 2:
        raise BayesScalingError(f"the variants differ only with several pre-training distributions; the data "
                                f"have one ({data.pretraining[0]!r})")
    fits = fit_variants(data, variants=variants, config=config, seed=seed, draws=draws, tune=tune,
                        chains=chains, backend=backend, target_accept=target_accept, progressbar=progressbar,
                        warn=warn)
    return compare_fits(fits, threshold)


# ---- beta: does it depend on the pre-training data? -------------------------------------------------------


@dataclass
class BetaEvidence:
    """Evidence on "beta does not depend on the pre-training data".

    ``elpd_diff = elpd(separate_beta) - elpd(shared_beta)`` with standard error ``dse``: positive and several
    ``dse`` away from 0 means separate betas predict held-out runs better. ``p_separate_better`` is its normal
    approximation ``Phi(elpd_diff / dse)`` (unreliable when ``|elpd_diff| < 4``: see ``note``). ``differences``: posterior of ``beta[A] - beta[B]`` in the separate
    variant for every pair (mean, sd, equal-tailed interval, P(> 0)).
    """

    elpd_diff: float
    dse: float
    p_separate_better: float
    differences: pd.DataFrame
    ci_prob: float
    note: str = ""

    def __str__(self) -> str:
        head = (f"elpd(separate_beta) - elpd(shared_beta) = {self.elpd_diff:+.2f} +- {self.dse:.2f} (SE); "
                f"P(separate better) ~ {self.p_separate_better:.2f}")
        lines = [head] + ([f"  note: {self.note}"] if self.note else [])
        pct = f"{100 * self.ci_prob:g}"
        for _, r in self.differences.iterrows():
            lines.append(f"beta[{r['A']}] - beta[{r['B']}] = {r['mean']:+.3f} (sd {r['sd']:.3f}; {pct}% "
                         f"[{r['eti_lb']:+.3f}, {r['eti_ub']:+.3f}]; P(> 0) = {r['p_gt_0']:.2f})")
        return "\n".join(lines)


def beta_evidence(comparison: VariantComparison, ci_prob: float = 0.94) -> BetaEvidence:
    """Answer "does beta depend on the pre-training data?" with numbers and their uncertainty (needs the
    ``shared_beta`` and ``separate_beta`` variants in ``comparison``)."""
    import arviz as az

    missing = [v for v in ("shared_beta", "separate_beta") if v not in comparison.fits]
    if missing:
        raise BayesScalingError(f"beta_evidence needs the variant(s) {', '.join(missing)} in the comparison")
    loos = comparison.loo
    cmp = az.compare({"shared_beta": loos["shared_beta"], "separate_beta": loos["separate_beta"]},
                     reference="shared_beta", round_to="none")
    diff, dse = float(cmp.loc["separate_beta", "elpd_diff"]), float(cmp.loc["separate_beta", "dse"])
    p_better = float(stats.norm.cdf(diff / dse)) if dse > 0 else float(diff > 0)
    post = comparison.fits["separate_beta"].posterior
    names = [str(p) for p in post["pretraining"].values]
    rows = []
    for a, b in combinations(names, 2):
        d = (post["beta"].sel(pretraining=a) - post["beta"].sel(pretraining=b)).values.ravel()
        rows.append({"A": a, "B": b, "quantity": "beta_A - beta_B", **_describe(d, ci_prob),
                     "p_gt_0": float(np.mean(d > 0))})
    note = ("|elpd_diff| < 4: the two variants predict about equally well; the normal approximation behind "
            "P(separate better) is unreliable for such small differences (Sivula et al. 2022)") if abs(diff) < 4 else ""
    return BetaEvidence(diff, dse, p_better, pd.DataFrame(rows), ci_prob, note)


# ---- contrasts between pre-training distributions ---------------------------------------------------------


def _describe(x: np.ndarray, ci_prob: float) -> dict[str, float]:
    lo, hi = (1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2
    finite = x[np.isfinite(x)]
    with np.errstate(invalid="ignore"):
        return {"mean": float(np.mean(finite)) if len(finite) == len(x) else float("nan"),
                "sd": float(np.std(finite, ddof=1)) if len(finite) == len(x) else float("nan"),
                "median": float(np.quantile(x, 0.5)), "eti_lb": float(np.quantile(x, lo)),
                "eti_ub": float(np.quantile(x, hi))}


def contrasts(fit: TransferFit, pairs: list[tuple[str, str]] | None = None, ci_prob: float = 0.94) -> pd.DataFrame:
    """Posterior contrasts between pre-training distributions A and B, one tidy table.

    One row per (A, B, quantity): ``k_A / k_B``, ``log k_A - log k_B``, ``alpha_A - alpha_B``,
    ``alpha_A / alpha_B``, ``beta_A - beta_B`` (separate-beta fits), the crossover
    ``D_F* = (k_B / k_A) ** (1 / (alpha_A - alpha_B))`` (:func:`laws.crossover`; shared beta only) and its
    ``log10``, then the probabilities ``P(k_A > k_B)``, ``P(alpha_A < alpha_B)`` and
    ``P(data_min <= D_F* <= data_max)`` (column ``mean``). Columns: ``A``, ``B``, ``quantity``, ``kind``
    (difference, ratio, crossover, probability), ``mean``, ``sd``, ``median``, ``eti_lb``, ``eti_ub`` (equal-tailed
    ``ci_prob`` interval), ``unit``. ``pairs`` defaults to every pair in the fit's order.

    Ratios and the crossover are heavy-tailed: read the median and interval (mean and sd are NaN where a draw is
    infinite). The crossover direction: below D_F* the distribution with the smaller alpha transfers more.

    >>> contrasts(fit).query("kind == 'probability'")       # doctest: +SKIP
    """
    post = fit.posterior
    names = [str(p) for p in post["pretraining"].values]
    if pairs is None:
        pairs = list(combinations(names, 2))
    for a, b in pairs:
        unknown = [p for p in (a, b) if p not in names]
        if unknown or a == b:
            raise BayesScalingError(f"contrast ({a!r}, {b!r}): expected two different distributions of the fit "
                                    f"({', '.join(map(repr, names))})")
    shared_beta = "pretraining" not in post["beta"].dims
    lo_D, hi_D = float(fit.data.used["D_F"].min()), float(fit.data.used["D_F"].max())
    unit = fit.data.unit
    rows = []

    def draws(var, p):
        return post[var].sel(pretraining=p).values.ravel()

    def add(a, b, quantity, kind, x, unit_=""):
        rows.append({"A": a, "B": b, "quantity": quantity, "kind": kind, **_describe(x, ci_prob), "unit": unit_})

    def add_p(a, b, quantity, p):
        rows.append({"A": a, "B": b, "quantity": quantity, "kind": "probability", "mean": float(p),
                     "sd": float("nan"), "median": float("nan"), "eti_lb": float("nan"), "eti_ub": float("nan"),
                     "unit": ""})

    for a, b in pairs:
        lk_a, lk_b = draws("log_k", a), draws("log_k", b)
        al_a, al_b = draws("alpha", a), draws("alpha", b)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            add(a, b, "k_A / k_B", "ratio", np.exp(lk_a - lk_b))
            add(a, b, "log k_A - log k_B", "difference", lk_a - lk_b)
            add(a, b, "alpha_A - alpha_B", "difference", al_a - al_b)
            add(a, b, "alpha_A / alpha_B", "ratio", al_a / al_b)
            if not shared_beta:
                add(a, b, "beta_A - beta_B", "difference", draws("beta", a) - draws("beta", b))
            else:
                star = laws.crossover(np.exp(lk_a), al_a, np.exp(lk_b), al_b)
                add(a, b, "D_F* (crossover)", "crossover", star, unit)
                rows[-1].update(mean=float("nan"), sd=float("nan"))  # heavy-tailed: read median and interval
                add(a, b, "log10 D_F*", "crossover", np.log10(star), f"log10 {unit}")
        add_p(a, b, "P(k_A > k_B)", np.mean(lk_a > lk_b))
        add_p(a, b, "P(alpha_A < alpha_B)", np.mean(al_a < al_b))
        if not shared_beta:
            add_p(a, b, "P(beta_A > beta_B)", np.mean(draws("beta", a) > draws("beta", b)))
        else:
            add_p(a, b, f"P({lo_D:.3g} <= D_F* <= {hi_D:.3g}) (inside the data)",
                  np.mean((star >= lo_D) & (star <= hi_D)))
    out = pd.DataFrame(rows)
    out.attrs.update(ci_prob=ci_prob, variant=fit.config.variant)
    return out
