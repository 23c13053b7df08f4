"""Inference: NUTS back ends and the compiled sampler, diagnostics, the fit objects and fit files."""
