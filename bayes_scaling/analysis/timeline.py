"""Timeline-style extrapolation: how much target-task data pre-training saves.

A target task needs ``D_req`` data from scratch for a model of size ``N``. With pre-training only the ``D_F``
solving ``D_F + k * D_F**alpha * N**beta = D_req`` (i.e. ``D_E(D_F) = D_req``, :func:`laws.effective_data`) must
come from the target task. Returned per posterior draw: ``D_F``, the saving ``D_req / D_F`` and, given the
compute per example (unit of data) of the target task, the compute saved ``(D_req - D_F) * compute_per_example``.

Solving: for ``alpha > 0`` and ``k N**beta > 0`` the left side increases strictly in ``D_F`` from 0 to above
``D_req`` at ``D_F = D_req``, so there is exactly one root; it lies in the bracket
``min(D_req/2, (D_req/(2 k N**beta))**(1/alpha)) <= D_F <= min(D_req, (D_req/(k N**beta))**(1/alpha))`` (at the
root one of the two terms is at least ``D_req / 2``), and SciPy's vectorised bracketing root finder
(``scipy.optimize.elementwise.find_root``, Chandrupatla's method) on ``log D_F`` finds it for all draws at
once. Draws with ``alpha <= 0`` (no unique root) are reported: ``solved`` is False there, ``D_F`` is NaN, a
:class:`NoSolutionWarning` gives the count and which draws, and :func:`unsolved` lists them. Nothing is dropped.

``D_req`` and ``N`` may be numbers or arrays of draws from another model (Monte Carlo in, Monte Carlo out): they
are aligned with the posterior draw by draw as documented in :mod:`bayes_scaling.analysis._draws` (one value repeated;
as many values as posterior draws paired in order; otherwise resampled with the seed).

>>> fc = forecast(fit, N=1.75e11, D_req=np.random.default_rng(0).lognormal(np.log(1e12), 1, 4000), seed=1)  # doctest: +SKIP
>>> fc["saving"].quantile([0.05, 0.5, 0.95], dim=("chain", "draw"))       # doctest: +SKIP

**Any law** (:func:`solve_law`): given a fit of any law spec (or a transfer fit, as its law
``D_T = k D_F**alpha N**beta``), a target value ``y*`` of the law's output and the other inputs, the value of one
named input ``x`` with ``f(x; theta) = y*`` per posterior draw, e.g. the data ``D`` that reaches a loss of 2.1 at
``N = 1e9`` under a Chinchilla fit. Per draw the law is evaluated on a grid over the search interval (log-spaced
for an input that is positive in the data); it must be monotone there (else ``status`` 2: no unique solution),
reach ``y*`` (else ``status`` 1: e.g. a loss below the irreducible loss) and be finite (else ``status`` 3);
the grid interval where it crosses ``y*`` brackets the root, which SciPy's bracketing root finder
(``find_root``) finds to machine precision. Unsolved draws are NaN, counted and reported, never dropped.

>>> sol = solve_law(fit, "D", 2.1, at={"N": 1e9})                                        # doctest: +SKIP
>>> sol["D"].quantile([0.05, 0.5, 0.95], dim=("chain", "draw"))                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.analysis._draws import align, as_draws, flat, n_samples, unflat
from bayes_scaling.analysis.predictions import data_range, orders_outside, parameters, positive_grid
from bayes_scaling.errors import format_rows
from bayes_scaling.laws import formulas as laws

__all__ = ["solve_D_F", "forecast", "forecast_grid", "unsolved", "solve_law", "SOLVE_STATUS", "NoSolutionWarning"]

#: ``status`` of :func:`solve_law`: code -> reason
SOLVE_STATUS: dict[int, str] = {
    0: "solved",
    1: "the law does not reach the target within the search interval",
    2: "the law is not monotone in the input over the search interval (no unique solution)",
    3: "the law is not finite over the search interval",
}
#: points of the grid on which :func:`solve_law` checks monotonicity and brackets the root
SOLVE_GRID = 64
#: the default search interval of :func:`solve_law` extends the data's range by this many decades (or, for an
#: input not positive throughout the data, by this many times its width) on each side
SOLVE_WIDEN = 6.0


class NoSolutionWarning(UserWarning):
    """Some posterior draws have no (unique) solution D_F; they are NaN and listed, not dropped."""


def solve_D_F(D_req, N, k, alpha, beta, *, iters: int = 200, log: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``D_F + k D_F**alpha N**beta = D_req`` for ``D_F`` elementwise (numpy arrays that broadcast).

    Returns ``(D_F, solved)`` (``(log D_F, solved)`` with ``log=True``: no underflow for roots below 1e-308);
    ``D_F`` is NaN where ``solved`` is False (``alpha <= 0``, non-finite inputs).
    ``scipy.optimize.elementwise.find_root`` on ``log D_F`` inside the analytic bracket of the module
    docstring (at most ``iters`` iterations): to machine precision.

    >>> d, ok = solve_D_F(1e9, 4e7, 1.9e4, 0.18, 0.38)
    >>> bool(ok), f"{d:.4g}", f"{float(laws.effective_data(d, 4e7, 1.9e4, 0.18, 0.38)):.6g}"
    (True, '4.657e+08', '1e+09')
    """
    D_req, N, k, alpha, beta = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in
                                                     (D_req, N, k, alpha, beta)))
    ok = np.isfinite(D_req) & np.isfinite(N) & np.isfinite(k) & np.isfinite(alpha) & np.isfinite(beta) \
        & (D_req > 0) & (N > 0) & (k > 0) & (alpha > 0)
    from scipy.optimize.elementwise import bracket_root, find_root

    with np.errstate(all="ignore"):
        log_req = np.where(ok, np.log(D_req), 1.0)
        log_k = np.where(ok, np.log(k), 0.0)
        logN = np.where(ok, np.log(N), 0.0)
        a, b = np.where(ok, alpha, 1.0), np.where(ok, beta, 0.0)
        log_kN = laws.log_transfer(log_k, a, b, 0.0, logN)  # log(k N^beta)
        lo = np.minimum(log_req - np.log(2.0), (log_req - np.log(2.0) - log_kN) / a)
        hi = np.minimum(log_req, (log_req - log_kN) / a)

        def excess(m, log_k, a, b, logN, log_req):
            # log D_E(m) - log D_req, with log D_E = log(D_F + D_T) = logaddexp(log D_F, log D_T)
            return np.logaddexp(m, laws.log_transfer(log_k, a, b, m, logN)) - log_req

        args = (log_k, a, b, logN, log_req)
        # the analytic bracket can miss the sign change by rounding where the root sits at one of its ends:
        # bracket_root widens it as far as needed (usually not at all)
        br = bracket_root(excess, lo, hi, args=args)
        res = find_root(excess, br.bracket, args=args, maxiter=iters)
    solved = ok & br.success & res.success
    log_D_F = np.where(solved, res.x, np.nan)
    return (log_D_F if log else np.exp(log_D_F)), solved


def forecast(fit, *, N, D_req, pretraining=None, compute_per_example=None, seed: int | None = None,
             discrepancy: float = 0.0) -> xr.Dataset:
    """Posterior of the target-task data ``D_F`` needed with pre-training, the saving ``D_req / D_F`` and the
    compute saved, per pre-training distribution (names in the fit and/or ``predictions.NEW``).

    ``N``, ``D_req`` and ``compute_per_example`` are numbers or 1-d arrays of draws (aligned draw by draw, see
    the module docstring; ``attrs['alignment']`` records how). Dims ``chain``, ``draw``, ``pretraining``.
    Variables: ``D_F``, ``saving``, ``log10_D_F`` and ``log10_saving`` (exact where ``D_F`` underflows: roots
    below one unit of data mean the extrapolated law credits pre-training with nearly everything),
    ``D_T_used`` (``D_req - D_F``), ``compute_saved`` (when
    ``compute_per_example`` is given), ``solved``, the inputs ``N`` and ``D_req`` as aligned, and the distance
    outside the data ``N_orders_outside``, ``D_F_orders_outside`` (orders of magnitude; > 0 above the largest).

    ``discrepancy``: ``tau``, the transfer law's error per decade outside the data on ``log D_T`` (as in
    :func:`~bayes_scaling.analysis.predictions.predict`; default 0: no value is calibrated for the transfer law).
    With ``tau > 0`` each draw's ``k`` is multiplied by ``exp(tau d z)``, ``d`` the larger distance outside the
    data of ``N`` and of the draw's ``D_F`` solved without it, and ``D_F`` is solved again; ``D_F_without_
    discrepancy`` keeps the first solution. Coordinates ``share_parameters`` and ``share_discrepancy`` (per
    ``pretraining``) split the log-scale variance of ``D_F``: ``s_0**2 / s**2`` and the rest, ``s_0`` and ``s``
    the robust sds (:func:`~bayes_scaling.laws.discrepancy.robust_sd`) of ``log D_F`` without and with it.
    """
    from bayes_scaling.laws.discrepancy import check_tau, robust_sd

    tau = check_tau(discrepancy, "discrepancy")
    if compute_per_example is not None:
        cpe = as_draws(compute_per_example, "compute_per_example")
    par = parameters(fit, pretraining, seed=seed)
    S = n_samples(par)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    N_d, how_N = align(as_draws(N, "N"), S, rng, "N")
    R_d, how_R = align(as_draws(D_req, "D_req"), S, rng, "D_req")
    hows = [how_N, how_R]
    k, alpha, beta = (flat(par[n]) for n in ("k", "alpha", "beta"))        # (S, P)
    log_D_F, ok = solve_D_F(R_d[:, None], N_d[:, None], k, alpha, beta, log=True)
    rng_ = data_range(fit)
    log_D_F0 = log_D_F
    if tau > 0:   # the discrepancy of log D_T at the distance of the first solution, then solved again
        d = np.maximum(np.abs(orders_outside(N_d, *rng_["N"]))[:, None],
                       np.abs(orders_outside(log_D_F / np.log(10), *rng_["D_F"], log10=True)))
        d = np.where(np.isfinite(d), d, 0.0)
        z = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2]).standard_normal(k.shape)
        log_D_F, ok = solve_D_F(R_d[:, None], N_d[:, None], k * np.exp(tau * d * z), alpha, beta, log=True)
    D_F = np.exp(log_D_F)
    with np.errstate(over="ignore", divide="ignore"):  # D_F below the smallest float: saving = inf; log10 exact
        saving = R_d[:, None] / D_F
    dims, coords = ("pretraining",), {"pretraining": par["pretraining"].values}
    out = xr.Dataset({
        "D_F": unflat(D_F, par, dims, coords),
        "saving": unflat(saving, par, dims, coords),
        "D_T_used": unflat(R_d[:, None] - D_F, par, dims, coords),
        "log10_D_F": unflat(log_D_F / np.log(10), par, dims, coords),
        "log10_saving": unflat((np.log(R_d[:, None]) - log_D_F) / np.log(10), par, dims, coords),
        "solved": unflat(ok, par, dims, coords),
        "D_F_without_discrepancy": unflat(np.exp(log_D_F0), par, dims, coords),
        "N": unflat(N_d, par),
        "D_req": unflat(R_d, par),
    })
    if compute_per_example is not None:
        c_d, how_c = align(cpe, S, rng, "compute_per_example")
        hows.append(how_c)
        out["compute_saved"] = unflat((R_d[:, None] - D_F) * c_d[:, None], par, dims, coords)
    with np.errstate(all="ignore"):
        s0, s1 = robust_sd(log_D_F0), robust_sd(log_D_F)
        share_p = np.where(s1 > 0, np.minimum(s0**2 / s1**2, 1.0), 1.0)
    out = out.assign_coords(share_parameters=("pretraining", share_p), share_discrepancy=("pretraining", 1 - share_p))
    out.attrs["tau"] = tau
    out["N_orders_outside"] = orders_outside(out["N"], *rng_["N"])
    out["D_F_orders_outside"] = orders_outside(out["log10_D_F"], *rng_["D_F"], log10=True)
    n_bad = int((~ok).sum())
    out.attrs.update(unit=fit.data.unit, alignment="; ".join(hows), n_unsolved=n_bad,
                     seed="" if seed is None else int(seed), data_N_range=list(rng_["N"]),
                     data_D_F_range=list(rng_["D_F"]), equation="D_F + k D_F**alpha N**beta = D_req")
    if n_bad:
        table = unsolved(out)
        warnings.warn(f"forecast: {n_bad} of {ok.size} draw(s) have no unique solution (alpha <= 0) and are NaN: "
                      f"(chain, draw, pretraining) = "
                      f"{format_rows([tuple(r) for r in table[['chain', 'draw', 'pretraining']].values])}",
                      NoSolutionWarning, stacklevel=2)
    return out


def unsolved(result: xr.Dataset) -> pd.DataFrame:
    """The draws of a :func:`forecast` (or :func:`forecast_grid`, :func:`solve_law`) result without a solution:
    chain, draw, pretraining (and scenario), the aligned inputs and the reason. Empty when every draw was
    solved."""
    bad = ~result["solved"]
    if "status" in result:       # solve_law: the reason per draw
        df = result["status"].to_dataframe(name="status").reset_index()
        df = df[df["status"] != 0].reset_index(drop=True)
        df["reason"] = df["status"].map(SOLVE_STATUS)
        return df
    df = bad.to_dataframe(name="unsolved").reset_index()
    df = df[df["unsolved"]].drop(columns="unsolved")
    inputs = [v for v in ("N", "D_req") if v in result.data_vars]
    if inputs:
        extra = result[inputs].to_dataframe().reset_index()[["chain", "draw", *inputs]]
        df = df.merge(extra, on=["chain", "draw"], how="left")
    df["reason"] = "alpha <= 0 or non-finite parameters: D_F + k D_F**alpha N**beta = D_req has no unique root"
    return df.reset_index(drop=True)


def forecast_grid(fit, *, N, D_req, pretraining=None, compute_per_example=None,
                  seed: int | None = None, discrepancy: float = 0.0) -> xr.Dataset:
    """:func:`forecast` for every scenario of a grid of fixed values ``N`` x ``D_req`` (each a number or a
    list): dims ``chain``, ``draw``, ``pretraining``, ``N``, ``D_req``. One seed for all scenarios (so a new
    distribution's draws are the same in each). ``discrepancy``: as in :func:`forecast` (the ``share_*``
    coordinates per ``pretraining``, ``N``, ``D_req``)."""
    Ns = positive_grid(N, "N").values
    Rs = positive_grid(D_req, "D_req").values
    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoSolutionWarning)
        for n in Ns:
            rows.append(xr.concat([forecast(fit, N=n, D_req=r, pretraining=pretraining,
                                            compute_per_example=compute_per_example, seed=seed,
                                            discrepancy=discrepancy)
                                   .drop_vars(["N", "D_req"]) for r in Rs], dim=xr.DataArray(Rs, dims="D_req")))
    out = xr.concat(rows, dim=xr.DataArray(Ns, dims="N")).assign_coords(N=Ns, D_req=Rs)
    rng_ = data_range(fit)
    out = out.drop_vars("N_orders_outside").assign_coords(N_orders_outside=("N", orders_outside(Ns, *rng_["N"])))
    out = out.transpose("chain", "draw", "pretraining", "N", "D_req")
    out.attrs.update(n_unsolved=int((~out["solved"]).sum()), alignment="fixed scenarios (N x D_req grid)")
    if caught:
        warnings.warn(f"forecast_grid: {out.attrs['n_unsolved']} draw(s) x scenarios have no unique solution "
                      "(NaN; see the solved variable)", NoSolutionWarning, stacklevel=2)
    return out


# ---- any law ---------------------------------------------------------------------------------------------


def _solve_groups(fit, group) -> pd.DataFrame:
    """One row of group columns per group to solve for: ``group`` (a label, or {column: label}), else the
    combinations of the fit's data."""
    from bayes_scaling.errors import BayesScalingError

    cols = fit.spec.groups
    if not cols:
        if group is not None:
            raise BayesScalingError(f"{fit.spec.name!r} has no group columns; leave out the group")
        return pd.DataFrame(index=[0])
    if group is None:
        return fit.table[cols].astype(str).drop_duplicates().sort_values(cols).reset_index(drop=True)
    if not isinstance(group, dict):
        if len(cols) > 1:
            raise BayesScalingError(f"{fit.spec.name!r} varies by {', '.join(cols)}: give the group as "
                                    "{column: label}")
        group = {cols[0]: group}
    if set(group) != set(cols):
        raise BayesScalingError(f"group: expected a label for each of {', '.join(cols)}, got {group!r}")
    return pd.DataFrame({c: [str(group[c])] for c in cols})


def solve_law(fit, solve: str, target, at: dict[str, float] | None = None, *, group=None,
              bounds: tuple[float, float] | None = None, seed: int | None = None) -> xr.Dataset:
    """Posterior of the input ``solve`` at which the law reaches ``target``: per draw, ``x`` with
    ``f(x, at; theta) = target`` (module docstring: grid, monotonicity check, bracketed root).

    Args:
        fit: a fitted law spec (:class:`~bayes_scaling.inference.fit.Fit`) or a transfer fit (its law
            ``D_T = k D_F**alpha N**beta``, :func:`~bayes_scaling.inference.fit.as_spec_fit`).
        solve: the input column to solve for (one of the spec's inputs).
        target: the value(s) of the law's output (a number or a list: dimension ``target``).
        at: the values of the other inputs (numbers).
        group: one group of a spec with group columns (a label or ``{column: label}``; a label the fit has not
            seen draws a new group of a pooled parameter, seeded by ``seed``); default: every group of the fit
            (dimension ``group``).
        bounds: the search interval of ``solve``; default: the data's range widened by :data:`SOLVE_WIDEN`
            decades on each side (by that many widths for an input not positive throughout the data).

    Returns:
        A dataset with dims ``chain``, ``draw``, (``group``), ``target``: the solution (named ``solve``, NaN
        where unsolved), ``solved``, ``status`` (:data:`SOLVE_STATUS`) and ``<solve>_orders_outside`` (the
        distance outside the fitted data: orders of magnitude, + above); attributes ``n_unsolved``, the count
        per reason, ``equation``, ``bounds``. Unsolved draws raise a :class:`NoSolutionWarning` with the
        counts; :func:`unsolved` lists them.

    >>> sol = solve_law(fit, "D", [2.1, 2.3], at={"N": 1e9})             # doctest: +SKIP
    >>> int(sol.attrs["n_unsolved"])                                     # doctest: +SKIP
    0
    """
    from scipy.optimize.elementwise import find_root

    from bayes_scaling.errors import BayesScalingError
    from bayes_scaling.inference.fit import as_spec_fit
    from bayes_scaling.laws.discrepancy import signed_outside
    from bayes_scaling.models import spec_model as sm

    fit = as_spec_fit(fit)
    spec = fit.spec
    if solve not in spec.inputs:
        raise BayesScalingError(f"cannot solve for {solve!r}: the inputs of {spec.name!r} "
                                f"({spec.target} = {spec.formula.text}) are {', '.join(spec.inputs)}")
    at = dict(at or {})
    missing = [c for c in spec.inputs if c != solve and c not in at]
    extra = [c for c in at if c not in spec.inputs or c == solve]
    if missing or extra:
        raise BayesScalingError(f"give the value of every input of {spec.name!r} other than {solve}"
                                + (f"; missing {', '.join(missing)}" if missing else "")
                                + (f"; not another input: {', '.join(extra)}" if extra else ""))
    fixed = {c: float(as_draws(v, c, positive=False)[0]) if np.ndim(v) == 0 else np.nan for c, v in at.items()}
    bad = [c for c, v in fixed.items() if not np.isfinite(v)]
    if bad:
        raise BayesScalingError(f"at: {', '.join(bad)} must be one finite number each")
    targets = as_draws(target, "target", positive=False)
    data_x = fit.table[solve].to_numpy(dtype=float)
    positive = bool(np.all(data_x > 0))
    if bounds is None:
        lo_d, hi_d = float(data_x.min()), float(data_x.max())
        if positive:
            lo, hi = lo_d / 10**SOLVE_WIDEN, hi_d * 10**SOLVE_WIDEN
        else:
            w = (hi_d - lo_d) or 1.0
            lo, hi = lo_d - SOLVE_WIDEN * w, hi_d + SOLVE_WIDEN * w
    else:
        lo, hi = (float(b) for b in bounds)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi) or (positive and lo <= 0):
            raise BayesScalingError(f"bounds must be finite with low < high{' and low > 0' if positive else ''} "
                                    f"({solve} is positive in the data: solved on the log scale), got {bounds!r}")
    rows = _solve_groups(fit, group)
    table = rows.assign(**fixed, **{solve: 1.0})
    new = sm.prepare(spec, table, what="group", labels=fit.labels, target=False)
    params = fit._param_draws(new, np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3]))  # (S, G)
    names = list(params)
    S, G, T = next(iter(params.values())).shape[0], len(rows), len(targets)
    shape = (S, G, T)
    vals = [np.broadcast_to(params[n][:, :, None], shape) for n in names]
    tgt = np.broadcast_to(targets[None, None, :], shape)
    to_x = np.exp if positive else (lambda u: u)
    from_x = np.log if positive else (lambda x: x)

    def law(u, *v):
        with np.errstate(all="ignore"):
            f = spec.formula.evaluate({**fixed, **dict(zip(names, v, strict=True)), solve: to_x(u)},
                                      backend="numpy")
        return np.asarray(f, dtype=float) * np.ones(np.shape(u))

    grid = np.linspace(from_x(lo), from_x(hi), SOLVE_GRID)
    f = law(np.broadcast_to(grid, shape + (SOLVE_GRID,)), *(v[..., None] for v in vals))   # (S, G, T, K)
    finite = np.isfinite(f).all(axis=-1)
    step = np.diff(f, axis=-1)
    monotone = (step >= 0).all(axis=-1) | (step <= 0).all(axis=-1)
    r = f - tgt[..., None]
    cross = (np.sign(r[..., :-1]) * np.sign(r[..., 1:]) <= 0)                           # (S, G, T, K-1)
    reached = cross.any(axis=-1)
    k = np.argmax(cross, axis=-1)
    status = np.where(~finite, 3, np.where(~monotone, 2, np.where(~reached, 1, 0)))
    ok = status == 0
    a, b = grid[k], grid[k + 1]

    def resid(u, t, *v):
        return law(u, *v) - t

    with np.errstate(all="ignore"):
        res = find_root(resid, (a, b), args=(tgt, *vals))
    ok &= res.success
    status = np.where((status == 0) & ~res.success, 3, status)
    x = np.where(ok, to_x(np.where(ok, res.x, 0.0)), np.nan)
    dims = ("group", "target")
    gnames = [", ".join(f"{c}={r[c]}" for c in spec.groups) if len(spec.groups) > 1 else
              (str(r[spec.groups[0]]) if spec.groups else "") for _, r in rows.iterrows()]
    coords = {"group": gnames, "target": targets}
    like = fit.posterior
    out = xr.Dataset({solve: unflat(x, like, dims, coords), "solved": unflat(ok, like, dims, coords),
                      "status": unflat(status, like, dims, coords)})
    out[f"{solve}_orders_outside"] = unflat(signed_outside(x, data_x).reshape(x.shape), like, dims, coords)
    if not spec.groups:
        out = out.squeeze("group", drop=True)
    counts = {SOLVE_STATUS[c]: int((status == c).sum()) for c in (1, 2, 3)}
    n_bad = int((~ok).sum())
    shown = ", ".join(f"{c} = {v:g}" for c, v in fixed.items())
    out.attrs.update(n_unsolved=n_bad, **{f"n_status_{c}": int((status == c).sum()) for c in (1, 2, 3)},
                     equation=f"{spec.target}({solve}{', ' + shown if shown else ''}) = target, "
                              f"{spec.target} = {spec.formula.text}",
                     law=spec.name, solve=solve, target_name=spec.target, bounds=[lo, hi],
                     scale="log" if positive else "linear", at=json.dumps(fixed),
                     seed="" if seed is None else int(seed))
    if n_bad:
        why = "; ".join(f"{n}: {why}" for why, n in counts.items() if n)
        warnings.warn(f"solve_law: {n_bad} of {ok.size} (posterior draws x groups x targets) have no solution for "
                      f"{solve} in "
                      f"[{lo:.4g}, {hi:.4g}] and are NaN ({why}); see the status variable and unsolved()",
                      NoSolutionWarning, stacklevel=2)
    return out
