"""Analysis of fits: predictions, effective data, compute-optimal sizes, timelines, comparison, checks and
calibration. Each name below is loaded on first use (``bs.analysis.compute_frontier``)."""

from bayes_scaling._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["predict", "NEW", "exchange_rate", "crossover", "crossover_probability", "extrapolation"],
                    "predictions"),
    **dict.fromkeys(["effective_data", "EffectiveData", "restrict_to_low_data", "read_finetune"], "effective"),
    **dict.fromkeys(["loss_law", "spec_loss_laws", "scratch_optimum", "finetune_optimum", "compute_frontier",
                     "smallest_model", "compute_saved", "optimum_distance"], "compute"),
    **dict.fromkeys(["forecast", "forecast_grid", "solve_law"], "timeline"),
    **dict.fromkeys(["compare_variants", "compare_fits", "fit_variants", "beta_evidence", "contrasts", "loo",
                     "pareto_k_table", "log_likelihood", "sharing_variants", "sharing_alternatives", "fit_specs",
                     "compare_sharing", "sharing_evidence", "target_difference"], "compare"),
    **dict.fromkeys(["posterior_predictive", "posterior_predictive_check", "coverage", "loo_pit",
                     "prior_predictive_check"], "checks"),
    **dict.fromkeys(["run_sbc", "SBCDesign", "run_spec_sbc", "frozen_spec", "default_design"], "calibration"),
    "best_group": "best",
    **dict.fromkeys(["select_model", "ModelSelection", "pearson_correlation", "relative_accuracy",
                     "baseline_selection", "lin_table1", "read_lin_table1"], "selection"),
    **dict.fromkeys(["isoflop_optima", "compute_optimal_exponent", "law_exponent", "isoflop_slices", "IsoflopFit"],
                    "isoflop"),
    **dict.fromkeys(["seed_noise", "effective_data_seeds", "fit_transfer_seeds", "leave_one_size_out",
                     "ossified_runs", "ossification_table"], "seeds"),
    **dict.fromkeys(["predictions", "effective", "compute", "timeline", "compare", "checks", "calibration", "best",
                     "isoflop", "seeds", "stacking"], ""),
    **dict.fromkeys(["stack", "Stack", "stacking_weights", "pseudo_bma_weights", "lfo_scores", "lfo_splits"],
                    "stacking"),
    "backtest": "",            # the module: bs.analysis.backtest.backtest(data, model, holdout), .pooled_tau
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
