"""Inference: NUTS back ends and the compiled sampler, diagnostics, the fit objects and fit files (law specs:
:mod:`.fit`; the transfer model: :mod:`.sampling`; loss laws: :mod:`.scratch`; the joint model: :mod:`.joint`)."""
