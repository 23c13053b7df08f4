"""Output: tidy exports, figures and the HTML report. Each name below is loaded on first use
(``bs.output.plot_transfer``)."""

from bayes_scaling._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["to_long", "to_wide", "quantile_table", "export", "fit_draws"], "exports"),
    **dict.fromkeys(["plot_transfer", "plot_transfer_fraction", "plot_posteriors", "plot_ppc",
                     "plot_prior_predictive", "plot_compare", "plot_compute_frontier", "plot_forecast",
                     "plot_law"], "plots"),
    "write_report": "report",
    "plot_selection": "selection_plots",
    **dict.fromkeys(["quantiles", "quantile_function", "platform_cdf", "to_squigglepy", "sampler", "draw_values",
                     "QuantileFunction", "PlatformCDF", "summarise_outside"], "forecasting"),
    **dict.fromkeys(["plots", "report", "forecasting", "selection_plots"], ""),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
